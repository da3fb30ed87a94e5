"""Point-in-time fundamentals and scoring models: quantdask vs pandas ``merge_asof``.

Usage::

    python bench/bench_fundamentals.py kernel            # PIT kernel at 5,500 x 5,000
    python bench/bench_fundamentals.py models [STORE]    # align / ttm / factors / models

``models`` builds ``/tmp/qd_bench_m500.zarr`` (500 assets, 2012-2019) when no store is given.
The pandas baseline keeps the latest *announced* record per (date, asset) with no
restatement rule and no TTM, so it does less work than quantdask.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import dask
import numpy as np
import pandas as pd

import quantdask as qd
from quantdask.fundamentals.pit import pit_views


def kernel(n_assets: int = 5500, n_dates: int = 5000, n_q: int = 84) -> None:
    """Time the point-in-time kernel at full A-share scale (CPU time, one thread)."""
    rng = np.random.default_rng(0)
    asset = np.repeat(np.arange(n_assets), n_q)
    period = np.tile(np.arange(n_q) + 2004 * 4, n_assets)
    row = np.clip(
        (np.tile(np.arange(n_q), n_assets) + 1) * n_dates // n_q
        + rng.integers(-20, 40, asset.size),
        0,
        n_dates + 10,
    )
    value = rng.normal(100, 10, asset.size)
    restated = rng.random(asset.size) < 0.05
    asset, period = np.r_[asset, asset[restated]], np.r_[period, period[restated]]
    row = np.r_[row, row[restated] + rng.integers(1, 250, restated.sum())]
    value = np.r_[value, value[restated] + 1]
    views = [(1, 0), (1, 4), (0, 0)]
    pit_views(
        asset[:100], row[:100], period[:100], value[:100], n_dates=10, n_assets=2, views=views
    )
    t = time.process_time()
    order = np.argsort(asset, kind="stable")
    a, r, p, v = asset[order], row[order], period[order], value[order]
    for lo in range(0, n_assets, 512):
        i, j = np.searchsorted(a, [lo, lo + 512])
        pit_views(
            a[i:j] - lo,
            r[i:j],
            p[i:j],
            v[i:j],
            n_dates=n_dates,
            n_assets=min(512, n_assets - lo),
            views=views,
        )
    print(
        f"PIT kernel {n_assets} x {n_dates}, {a.size:,} records: {time.process_time() - t:.2f} s CPU"
    )


def _timed(label: str, fn: Callable[[], object], repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    print(f"{label:50s} {best:6.2f} s")
    return best


def models(store: Path | None = None) -> None:
    """Time alignment, TTM, two factors and the four shipped models on a synthetic market."""
    if store is None:
        store = Path("/tmp/qd_bench_m500.zarr")
        if not store.exists():
            qd.synthetic_market(store, n_assets=500, start="2012-01-01", end="2019-12-31", seed=2)
    m = qd.open_market(store)
    daily = m["daily"]
    with dask.config.set(scheduler="threads", num_workers=2):
        t_qd = _timed("qd.align(revenue)", lambda: qd.align(m, "revenue").values)
        rec = (
            m["fundamentals"]
            .to_dataset()[["asset", "ann_date", "end_date", "revenue"]]
            .compute()
            .to_dataframe()
        )
        assets = pd.Index(daily["asset"].values.astype(str))
        cal = pd.DatetimeIndex(daily["date"].values)

        def pandas_align() -> np.ndarray:
            r = rec.assign(
                asset=rec["asset"].astype(str), avail=rec["ann_date"] + pd.Timedelta(days=1)
            )
            left = pd.DataFrame(
                {
                    "date": np.repeat(cal.values, len(assets)),
                    "asset": np.tile(assets.values, len(cal)),
                }
            )
            joined = pd.merge_asof(
                left,
                r[["avail", "asset", "revenue"]].sort_values("avail"),
                left_on="date",
                right_on="avail",
                by="asset",
            )
            return joined.pivot(index="date", columns="asset", values="revenue").to_numpy()

        t_pd = _timed("pandas merge_asof + pivot", pandas_align)
        print(f"{'ratio pandas / quantdask':50s} {t_pd / t_qd:6.1f}x")
        _timed("qd.ttm(revenue)", lambda: qd.ttm(m, "revenue").values)
        for name in ("roe_ttm", "lifecycle"):
            _timed(name, lambda name=name: qd.factor(name)(m).values)
        dates = qd.rebalance_dates(m, "M")[12:]
        for name in qd.models.shipped_models():
            overrides = {"universe": {"index": None}} if name == "soe" else None
            model = qd.load_model(name, overrides=overrides)
            _timed(
                f"{name}.scores ({len(dates)} dates)", lambda model=model: model.scores(m, dates), 1
            )


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "models"
    if what == "kernel":
        kernel()
    else:
        models(Path(sys.argv[2]) if len(sys.argv) > 2 else None)
