"""Benchmark the grouped cross-section kernels: old two-argsort row order vs the radix key sort.

Two parts, side by side in one run:

1. **Kernels** on ``--block-dates`` x ``--assets`` blocks (default 1,024 x 5,500) with 31
   Shenwan industry codes and 20% NaN. ``old`` is the previous kernel kept *in this script*
   (``_row_order``: a numba mergesort argsort by value, then a stable one by group, per row);
   ``new`` is :mod:`quantdask.kernels.cross` (one radix sort of (group, value, column) keys
   per row, from :mod:`quantdask.kernels.rank`). Both builds are timed: ``serial`` (what a
   dask task runs: ``cs_*`` split date blocks to ~2M cells, 256 x 5,500) and ``parallel``
   (``prange`` over rows, what a direct call on a >= 4M-cell block picks). The results are
   checked bit for bit (old == new) in the same run.
2. **End to end**: ``qd.cs_rank(x, group=industry)`` on an in-memory dask panel of
   ``--dates`` x ``--assets`` (default 5,000 x 5,500, stored chunks 1,024 x 512), threaded
   scheduler, result computed to numpy; the same with the old kernel patched in; and pandas
   ``groupby(["date", "group"])["x"].rank(pct=True)`` on the long frame (frame building not
   timed), on ``--pandas-assets`` assets and scaled linearly to the whole panel (0 = all).

Run::

    python bench/bench_cs_group.py                    # full size (about 2-3 minutes)
    python bench/bench_cs_group.py --dates 1000 --block-dates 256 --pandas-assets 500

Times are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import dask
import dask.array as da
import numba
import numpy as np
import pandas as pd
import xarray as xr

import quantdask as qd
from quantdask.io import schema
from quantdask.kernels import cross
from quantdask.kernels._dual import dual as _dual
from quantdask.kernels.rank import rank_rows

# --- the previous grouped kernels (quantdask/kernels/cross.py before the radix key sort) ----


@numba.njit(cache=True, nogil=True)
def _row_order(vals, grp):
    """Indices of the valid cells of a row sorted by (group, value), and their count."""
    n = vals.shape[0]
    idx = np.empty(n, dtype=np.int64)
    k = 0
    for j in range(n):
        if grp[j] != 0 and not np.isnan(vals[j]):
            idx[k] = j
            k += 1
    idx = idx[:k]
    v = np.empty(k)
    for u in range(k):
        v[u] = vals[idx[u]]
    o1 = np.argsort(v, kind="mergesort")
    idx = idx[o1]
    g = np.empty(k, dtype=np.int64)
    for u in range(k):
        g[u] = grp[idx[u]]
    o2 = np.argsort(g, kind="mergesort")
    return idx[o2], k


@numba.njit(cache=True, nogil=True)
def _segment_end(order, grp, start, k):
    g = grp[order[start]]
    end = start + 1
    while end < k and grp[order[end]] == g:
        end += 1
    return end


@numba.njit(cache=True, nogil=True)
def _avg_ranks(vals, order, start, end, ranks):
    u = start
    while u < end:
        w = u + 1
        while w < end and vals[order[w]] == vals[order[u]]:
            w += 1
        r = 0.5 * ((u - start + 1) + (w - start))
        for z in range(u, w):
            ranks[order[z]] = r
        u = w


@_dual
def _old_rank(values, groups, pct, nbuckets):
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i]
        grp = groups[i]
        order, k = _row_order(vals, grp)
        ranks = np.full(n, np.nan)
        start = 0
        while start < k:
            end = _segment_end(order, grp, start, k)
            _avg_ranks(vals, order, start, end, ranks)
            size = end - start
            for u in range(start, end):
                j = order[u]
                if nbuckets > 0:
                    out[i, j] = np.floor((ranks[j] - 1.0) * nbuckets / size) + 1.0
                elif pct:
                    out[i, j] = ranks[j] / size
                else:
                    out[i, j] = ranks[j]
            start = end
    return out


@_dual
def _old_zscore(values, groups):
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i]
        grp = groups[i]
        order, k = _row_order(vals, grp)
        start = 0
        while start < k:
            end = _segment_end(order, grp, start, k)
            size = end - start
            mu = 0.0
            for u in range(start, end):
                mu += vals[order[u]]
            mu /= size
            ss = 0.0
            for u in range(start, end):
                d = vals[order[u]] - mu
                ss += d * d
            sd = np.sqrt(ss / size)
            if sd > 0.0:
                for u in range(start, end):
                    j = order[u]
                    out[i, j] = (vals[j] - mu) / sd
            start = end
    return out


@numba.njit(cache=True, nogil=True)
def _sorted_quantile(sorted_vals, q):
    k = sorted_vals.shape[0]
    pos = q * (k - 1)
    lo = int(np.floor(pos))
    frac = pos - lo
    v = sorted_vals[lo]
    if frac > 0.0 and lo + 1 < k:
        v = v + frac * (sorted_vals[lo + 1] - v)
    return v


@_dual
def _old_winsorize_quantile(values, groups, lower, upper):
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i]
        grp = groups[i]
        order, k = _row_order(vals, grp)
        start = 0
        while start < k:
            end = _segment_end(order, grp, start, k)
            seg = np.empty(end - start)
            for u in range(start, end):
                seg[u - start] = vals[order[u]]
            lo = _sorted_quantile(seg, lower)
            hi = _sorted_quantile(seg, upper)
            for u in range(start, end):
                j = order[u]
                out[i, j] = min(max(vals[j], lo), hi)
            start = end
    return out


@_dual
def _old_winsorize_mad(values, groups, n_mad, scale):
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i]
        grp = groups[i]
        order, k = _row_order(vals, grp)
        start = 0
        while start < k:
            end = _segment_end(order, grp, start, k)
            size = end - start
            seg = np.empty(size)
            for u in range(start, end):
                seg[u - start] = vals[order[u]]
            med = _sorted_quantile(seg, 0.5)
            dev = np.sort(np.abs(seg - med))
            mad = scale * _sorted_quantile(dev, 0.5)
            lo = med - n_mad * mad
            hi = med + n_mad * mad
            for u in range(start, end):
                j = order[u]
                out[i, j] = min(max(vals[j], lo), hi)
            start = end
    return out


@_dual
def _old_neutralize(values, groups, mcap, use_mcap):
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i].copy()
        grp = groups[i]
        if use_mcap:
            for j in range(n):
                if np.isnan(mcap[i, j]):
                    vals[j] = np.nan
        order, k = _row_order(vals, grp)
        xd = np.full(n, np.nan)
        md = np.full(n, np.nan)
        sxm = 0.0
        smm = 0.0
        start = 0
        while start < k:
            end = _segment_end(order, grp, start, k)
            size = end - start
            mx = 0.0
            mm = 0.0
            for u in range(start, end):
                j = order[u]
                mx += vals[j]
                if use_mcap:
                    mm += mcap[i, j]
            mx /= size
            mm /= size
            for u in range(start, end):
                j = order[u]
                xd[j] = vals[j] - mx
                if use_mcap:
                    md[j] = mcap[i, j] - mm
                    sxm += xd[j] * md[j]
                    smm += md[j] * md[j]
            start = end
        beta = sxm / smm if (use_mcap and smm > 0.0) else 0.0
        for u in range(k):
            j = order[u]
            out[i, j] = xd[j] - beta * md[j] if use_mcap else xd[j]
    return out


def old_cs_rank_kernel(values: np.ndarray, groups: np.ndarray | None, pct: bool) -> np.ndarray:
    """The previous ``cross.cs_rank_kernel`` (grouped path), for the end-to-end baseline."""
    if groups is None:
        return rank_rows(values, pct=bool(pct))
    v = np.ascontiguousarray(values, dtype=np.float64)
    return _old_rank(v, np.ascontiguousarray(groups, dtype=np.int64), bool(pct), 0)


# --- harness ------------------------------------------------------------------------------------


def best(fn: Callable[[], object], repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def panel(n_dates: int, n_assets: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values (t-distributed, 20% NaN), Shenwan L1 codes (31 groups), log market caps."""
    rng = np.random.default_rng(seed)
    x = rng.standard_t(4, size=(n_dates, n_assets))
    x[rng.random(x.shape) < 0.2] = np.nan
    codes = np.array(sorted(schema.SW_L1), dtype=np.int64)
    g = codes[rng.integers(0, len(codes), size=(n_dates, n_assets))]
    mcap = rng.normal(23.0, 1.0, size=(n_dates, n_assets))
    return x, g, mcap


def bench_kernels(x: np.ndarray, g: np.ndarray, mcap: np.ndarray, repeat: int) -> None:
    args = cross._grouped(x, g)
    ops = {
        "rank (pct)": ((cross._rank, (1, 0)), (_old_rank, (True, 0))),
        "quantile (q=5)": ((cross._rank, (2, 5)), (_old_rank, (False, 5))),
        "zscore": ((cross._zscore, ()), (_old_zscore, ())),
        "winsorize quantile": (
            (cross._winsorize_quantile, (0.01, 0.99)),
            (_old_winsorize_quantile, (0.01, 0.99)),
        ),
        "winsorize MAD": (
            (cross._winsorize_mad, (3.0, 1.4826)),
            (_old_winsorize_mad, (3.0, 1.4826)),
        ),
        "neutralize (+ log mcap)": (
            (cross._neutralize, (mcap, True)),
            (_old_neutralize, (mcap, True)),
        ),
    }
    r, n = x.shape
    print(f"\nkernels on {r} x {n} blocks, 31 groups, 20% NaN (best of {repeat}; ratio old/new)")
    print(f"{'op':26s} {'build':9s} {'old':>9s} {'new':>9s} {'ratio':>7s}  same")
    for name, ((new, new_extra), (old, old_extra)) in ops.items():
        for build in ("serial", "parallel"):
            fn_new = getattr(new, build)
            fn_old = getattr(old, build)
            out_new = fn_new(*args, *new_extra)  # compile / warm
            out_old = fn_old(x, g, *old_extra)
            same = np.array_equal(out_new.view(np.uint64), out_old.view(np.uint64))
            t_old = best(lambda f=fn_old, e=old_extra: f(x, g, *e), repeat)
            t_new = best(lambda f=fn_new, e=new_extra: f(*cross._grouped(x, g), *e), repeat)
            print(
                f"{name:26s} {build:9s} {t_old:8.3f}s {t_new:8.3f}s {t_old / t_new:6.2f}x  {same}"
            )
    t_prep = best(lambda: cross._grouped(x, g), repeat)
    print(f"(new includes the key layout prep, group_codes on the block: {t_prep * 1e3:.1f} ms)")


def bench_end_to_end(n_dates: int, n_assets: int, pandas_assets: int, repeat: int) -> None:
    x, g, _ = panel(n_dates, n_assets, seed=1)
    dates = pd.bdate_range("2005-01-04", periods=n_dates)
    assets = [f"{i:06d}.SZ" for i in range(n_assets)]
    coords = {"date": dates, "asset": assets}
    chunks = (schema.DATE_CHUNK, schema.ASSET_CHUNK)
    fx = xr.DataArray(da.from_array(x, chunks=chunks), dims=("date", "asset"), coords=coords)
    fg = xr.DataArray(
        da.from_array(g.astype(np.int32), chunks=chunks), dims=("date", "asset"), coords=coords
    )
    print(f"\nend to end: qd.cs_rank(x, group=industry) on {n_dates} x {n_assets} in memory")
    with dask.config.set(scheduler="threads"):
        _ = qd.cs_rank(fx.isel(date=slice(0, 300)), group=fg.isel(date=slice(0, 300))).values
        _ = old_cs_rank_kernel(x[:8], g[:8], True)  # compile the old kernel's serial build
        t_new = best(lambda: qd.cs_rank(fx, group=fg).values, repeat)
        new_vals = qd.cs_rank(fx, group=fg).values
        new_kernel = cross.cs_rank_kernel
        cross.cs_rank_kernel = old_cs_rank_kernel  # ops.cs looks the kernel up at call time
        try:
            t_old = best(lambda: qd.cs_rank(fx, group=fg).values, repeat)
            old_vals = qd.cs_rank(fx, group=fg).values
        finally:
            cross.cs_rank_kernel = new_kernel
    same = np.array_equal(new_vals, old_vals, equal_nan=True)
    m = n_assets if pandas_assets <= 0 else min(pandas_assets, n_assets)
    df = pd.DataFrame(
        {
            "date": np.repeat(dates.values, m),
            "asset": np.tile(np.arange(m), n_dates),
            "group": g[:, :m].ravel(),
            "x": x[:, :m].ravel(),
        }
    )
    t_pd = best(lambda: df.groupby(["date", "group"])["x"].rank(pct=True), 1)
    ref = df.groupby(["date", "group"])["x"].rank(pct=True).to_numpy().reshape(n_dates, m)
    sub = cross.cs_rank_kernel(x[:, :m], g[:, :m], True)  # the same assets as pandas
    agree = np.allclose(ref, sub, rtol=1e-14, atol=0, equal_nan=True)
    scale = n_assets / m
    t_pd_full = t_pd * scale
    print(f"quantdask, threaded scheduler, new kernel   {t_new:8.2f} s")
    print(
        f"quantdask, threaded scheduler, old kernel   {t_old:8.2f} s   old/new {t_old / t_new:.2f}x"
    )
    print(f"  results identical (old == new): {same}")
    print(
        f"pandas groupby([date, group]).rank(pct=True) {t_pd_full:8.2f} s"
        f"   ({t_pd:.2f} s on {m} assets x {scale:.2f})   pandas/new {t_pd_full / t_new:.1f}x"
    )
    print(f"  pandas agrees with quantdask on those assets: {agree}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dates", type=int, default=5000)
    p.add_argument("--assets", type=int, default=5500)
    p.add_argument("--block-dates", type=int, default=1024)
    p.add_argument("--pandas-assets", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    print(f"numba threads: {numba.get_num_threads()}")
    x, g, mcap = panel(a.block_dates, a.assets, seed=0)
    bench_kernels(x, g, mcap, a.repeat)
    del x, g, mcap
    bench_end_to_end(a.dates, a.assets, a.pandas_assets, max(1, a.repeat - 1))


if __name__ == "__main__":
    main()
