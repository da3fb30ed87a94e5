"""Store layer: the zarr layout, opening markets, the synthetic market, ingest and verify."""

from quantdask.io.calendar import trading_calendar
from quantdask.io.ingest import IngestError, append, ingest
from quantdask.io.qlib import ingest_qlib, to_qlib
from quantdask.io.store import StoreError, as_market, open_market, open_panel
from quantdask.io.synthetic import synthetic_market
from quantdask.io.vendor import read_vendor_daily
from quantdask.io.verify import VerifyReport, verify

__all__ = [
    "IngestError",
    "StoreError",
    "VerifyReport",
    "append",
    "as_market",
    "ingest",
    "ingest_qlib",
    "open_market",
    "open_panel",
    "read_vendor_daily",
    "synthetic_market",
    "to_qlib",
    "trading_calendar",
    "verify",
]
