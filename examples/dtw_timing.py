"""DTW similarity timing on an index: signal, back-test, and a small parameter sweep.

    python examples/dtw_timing.py                          # small synthetic market, threads
    python examples/dtw_timing.py --market /data/market.zarr --index 000300.SH --cluster

For every date the last ``window`` days of the index (z-scored path) are matched by DTW
(Sakoe-Chiba band) against every earlier window whose ``horizon`` days had already ended; the
``k`` nearest give a weighted expected return and dispersion, and the signal goes long when
the expected return exceeds ``threshold`` x dispersion, short below minus that. The signal at
t is held from t to t + 1. With ``--cluster`` the date blocks (and the sweep cells) run on a
local dask.distributed cluster.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

import quantdask as qd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--market", help="market store (default: build a small synthetic one)")
    ap.add_argument("--index", default="000300.SH")
    ap.add_argument(
        "--start", default="2017-01-01", help="back-test start (history before it still matches)"
    )
    ap.add_argument(
        "--cluster", action="store_true", help="run on a local dask.distributed cluster"
    )
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = a.market
        if path is None:
            path = str(Path(tmp) / "market.zarr")
            qd.synthetic_market(path, n_assets=200, start="2012-01-01", end="2019-12-31", seed=1)
        market = qd.open_market(path)
        close = market["index"].to_dataset()["close"].sel(index=a.index).to_series().dropna()

        client = None
        if a.cluster:
            from distributed import Client

            client = Client(n_workers=2, threads_per_worker=1, dashboard_address=":0")
        try:
            sig = qd.dtw_timing(close, window=60, horizon=20, k=10, radius=6, threshold=0.25)
            print(sig.dropna().tail())
            bt = qd.timing_backtest(sig, close[close.index >= pd.Timestamp(a.start)])
            keys = ["total_return", "excess_total_return", "max_drawdown", "sharpe", "hit_rate"]
            print({k: round(bt.metrics[k], 4) for k in keys})

            grid = {
                "window": [40, 60],
                "horizon": [10, 20],
                "k": [5, 10],
                "constraint": ["sakoe_chiba"],
                "radius": [3, 6],
                "start": [a.start],
            }
            ds = qd.dtw_sweep(close, grid, store=str(Path(tmp) / "sweep.zarr"), client=client)
            table = ds[["total_return", "excess_total_return", "max_drawdown", "sharpe"]]
            print(table.to_dataframe().sort_values("sharpe", ascending=False).head())
        finally:
            if client is not None:
                client.close()


if __name__ == "__main__":
    main()
