"""Factor analytics: per-date rank IC + quintile returns, quantdask vs pandas long format.

Usage: ``python bench/bench_analytics.py [DATES] [ASSETS]`` (default 1000 x 5500).

Both results are asserted equal in the same run; the printed ratio is pandas time / ours.
"""

from __future__ import annotations

import sys
import time

import dask
import numpy as np
import pandas as pd
import xarray as xr

import quantdask as qd


def main(n_dates: int = 1000, n_assets: int = 5500) -> None:
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2005-01-04", periods=n_dates)
    assets = [f"{i:06d}.SZ" for i in range(n_assets)]
    f = rng.normal(size=(n_dates, n_assets))
    y = 0.01 * f + rng.normal(0, 0.02, (n_dates, n_assets))
    f[rng.random(f.shape) < 0.1] = np.nan
    y[rng.random(y.shape) < 0.05] = np.nan
    coords = {"date": dates, "asset": assets}
    chunks = {"date": 256, "asset": 512}
    fx = xr.DataArray(f, dims=("date", "asset"), coords=coords).chunk(chunks)
    fy = xr.DataArray(y, dims=("date", "asset"), coords=coords).chunk(chunks)
    with dask.config.set(scheduler="threads", num_workers=2):
        t = time.perf_counter()
        ic_q, qr_q = dask.compute(qd.ic(fx, fy), qd.quantile_returns(fx, fy, quantiles=5))
        t_qd = time.perf_counter() - t

    index = pd.MultiIndex.from_product([dates, assets], names=["date", "asset"])
    df = pd.DataFrame({"factor": f.ravel(), "fwd": y.ravel()}, index=index)
    t = time.perf_counter()
    d = df.dropna(subset=["factor"])
    ic_pd = (
        d.dropna()
        .groupby(level="date")
        .apply(lambda g: g["factor"].corr(g["fwd"], method="spearman"))
    )
    d = d.assign(
        q=d.groupby(level="date")["factor"].transform(
            lambda s: pd.qcut(s.rank(), 5, labels=False) + 1
        )
    )
    qr_pd = d.groupby([d.index.get_level_values("date"), "q"])["fwd"].mean().unstack()
    t_pd = time.perf_counter() - t

    assert np.allclose(ic_q.values, ic_pd.to_numpy(), atol=1e-10)
    assert np.allclose(qr_q.values, qr_pd.to_numpy(), atol=1e-12)
    print(
        f"{n_dates} x {n_assets}: quantdask {t_qd:.2f} s, pandas long format {t_pd:.2f} s, "
        f"ratio {t_pd / t_qd:.1f}x"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
