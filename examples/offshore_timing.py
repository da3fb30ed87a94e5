"""Offshore-flow timing: A50 futures basis, futures and Hong Kong ETF divergence.

    python examples/offshore_timing.py                          # small synthetic market
    python examples/offshore_timing.py --market /data/market.zarr

The market's ``offshore`` node (a50_spot, a50_fut, a50_etf in HKD, hkd_cny) gives three
trailing z-scored components (basis in % of spot, 5-day futures-minus-spot return, 5-day
ETF-in-CNY-minus-spot return); their mean gives a long / flat / short signal, traded on the
SSE 50 (000016.SH) long-only and long-short, the signal at t held from t to t + 1.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import quantdask as qd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--market", help="market store (default: build a small synthetic one)")
    ap.add_argument("--index", default="000016.SH")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = a.market
        if path is None:
            path = str(Path(tmp) / "market.zarr")
            qd.synthetic_market(path, n_assets=200, start="2014-01-01", end="2019-12-31", seed=3)
        market = qd.open_market(path)
        res = qd.offshore_backtest(market, index=a.index, z_window=60, short_window=5)
        print(
            res["signal"][["basis", "fut_divergence", "etf_divergence", "score", "signal"]].tail()
        )
        keys = ["annual_return", "sharpe", "max_drawdown", "hit_rate", "profit_loss_ratio"]
        for name in ("long_only", "long_short"):
            m = res[name].metrics
            print(name, {k: round(m[k], 4) for k in keys})


if __name__ == "__main__":
    main()
