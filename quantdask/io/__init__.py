"""Store layer: the zarr layout, opening markets, the synthetic market, ingest and verify."""

from quantdask.io.store import StoreError, as_market, open_market, open_panel

__all__ = ["StoreError", "as_market", "open_market", "open_panel"]
