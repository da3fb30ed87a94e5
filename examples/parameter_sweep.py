"""Sweep a reversal factor's window and holding horizon over a synthetic A-share market.

    python examples/parameter_sweep.py                       # local cluster sized to the machine
    python examples/parameter_sweep.py --scheduler tcp://host:8786 --store /shared/sweep.zarr

Every cell computes ``-ts_mean(daily return, window)`` with quantdask's ops, its daily rank
IC against ``horizon``-day forward returns (``qd.forward_returns`` / ``qd.ic``) and returns
summary metrics; the loaded panel is shipped to the cluster once (``data=``). Without
``--market`` and ``--store`` both stores live in ``./qd-sweep-example/`` of the working
directory, so re-running the same command resumes: the market is reused and finished cells
are read back, not recomputed (the last line says how many were computed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dask
import xarray as xr

import quantdask as qd


def reversal_ic(daily: xr.Dataset, window: int, horizon: int) -> dict[str, float]:
    """IC mean, IC IR and share of positive IC of the ``window``-day reversal factor."""
    factor = -qd.ts_mean(qd.daily_returns(daily), window=window)
    fwd = qd.forward_returns(daily, periods=[horizon])[f"fwd_ret_{horizon}"]
    ic = qd.ic(factor, fwd, method="spearman").compute(scheduler="sync")
    ic = ic.dropna("date")
    return {
        "ic_mean": float(ic.mean()),
        "ic_ir": float(ic.mean() / ic.std()),
        "ic_positive": float((ic > 0).mean()),
    }


#: Default home of the example's market and sweep stores (in the working directory).
WORK = Path("qd-sweep-example")
MARKET = {"n_assets": 200, "start": "2018-01-01", "end": "2020-12-31", "seed": 1}


def _market(path: Path) -> Path:
    """The example's synthetic market at ``path``: reused when built with ``MARKET``."""
    if path.exists() and qd.open_market(path).attrs.get("synthetic") == MARKET:
        return path
    return qd.synthetic_market(path, overwrite=path.exists(), **MARKET)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler", help="scheduler address (default: a local cluster)")
    p.add_argument("--market", help="market store (default: build a small synthetic one)")
    p.add_argument("--store", help=f"sweep store (default: {WORK}/sweep.zarr)")
    p.add_argument("--plot", help="write the IC IR heat map to this PNG file")
    args = p.parse_args()

    market = args.market or _market(WORK / "market.zarr")
    store = Path(args.store or WORK / "sweep.zarr")
    done = qd.open_sweep(store).attrs["n_ok"] if store.exists() else 0
    if args.scheduler:
        client = qd.connect(args.scheduler)
    else:  # the workers' scratch space next to the stores, not in the temporary directory
        with dask.config.set({"temporary-directory": str(WORK.resolve())}):
            client = qd.connect()
    try:
        fields = ["close", "pre_close", "suspended", "up_limit"]
        daily = qd.open_panel(market)[fields]
        ds = qd.sweep(
            reversal_ic, {"window": [5, 10, 20, 60], "horizon": [1, 5, 20]}, store=store, data=daily
        )
        print(qd.sweep_summary(ds).round(4).to_string(index=False))
        n = ds.attrs["n_cells"]
        print(f"cells: {n - done} computed, {done} read back from {store}")
        if args.plot:
            import matplotlib

            matplotlib.use("Agg")
            ax = qd.plot_sweep(ds, "ic_ir", x="window", y="horizon")
            ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
            print(f"heat map: {args.plot}")
    finally:
        client.close()


if __name__ == "__main__":
    main()
