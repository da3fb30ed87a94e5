"""Chunk layout benchmark: the stored layout vs whole-time and whole-cross-section chunks.

A synthetic-like ``(date, asset)`` float64 field (a random-walk close with NaN before
listing and on suspended days) is written to zarr three times:

* ``stored``        ``schema.DATE_CHUNK`` x ``schema.ASSET_CHUNK`` (the market store layout)
* ``whole-time``    all dates x 64 assets
* ``cross-section`` 64 dates x all assets

and two typical jobs read it back with the threaded scheduler:

* ``roll20``   a strict 20-day rolling mean along ``date``: ``dask.array.map_overlap`` with
  a trailing (19, 0) depth and ``bottleneck.move_mean``, then a sum (forces every chunk);
* ``roll250``  the same with a 250-day window (depth 249 exceeds a 64-date chunk, so the
  cross-section layout has to overlap several neighbouring chunks);
* ``cs_rank``  a cross-sectional rank per date (``bottleneck.nanrankdata`` over assets),
  which needs all assets of a date in one chunk: the stored layout rechunks each date block
  into slabs of 64 dates x all assets (each slab reads ceil(N / ASSET_CHUNK) stored chunks
  of one date block), whole-time chunks need a full all-to-all rechunk.

Figures are wall times (best of ``--repeat``) and ratios to the stored layout, one run.

Usage::

    python bench/bench_layout.py              # 2,500 dates x 2,000 assets
    python bench/bench_layout.py --full       # 5,000 dates x 5,500 assets
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import bottleneck as bn
import dask
import dask.array as da
import numpy as np
import zarr

from quantdask.io import schema

WINDOW = 20
#: A yearly window (the longest lookback of the factor library).
LONG_WINDOW = 250
#: Dates per slab when a cross-sectional job rechunks to all assets.
CS_DATES = 64


def make_field(n_dates: int, n_assets: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.standard_t(4, (n_dates, n_assets)) * 0.015
    x = 10.0 * np.exp(np.cumsum(r, axis=0))
    listed = rng.integers(0, n_dates // 2, n_assets)
    x[np.arange(n_dates)[:, None] < listed[None, :]] = np.nan
    x[rng.random((n_dates, n_assets)) < 0.02] = np.nan
    return x


def write(path: Path, x: np.ndarray, chunks: tuple[int, int]) -> None:
    arr = zarr.create_array(
        str(path), shape=x.shape, chunks=chunks, dtype="float64", fill_value=np.nan
    )
    arr[:] = x


def rolling(a: da.Array, window: int = WINDOW) -> float:
    def move(block: np.ndarray) -> np.ndarray:
        return bn.move_mean(block, window, axis=0)  # strict: min_count = window

    out = a.map_overlap(move, depth={0: (window - 1, 0), 1: 0}, boundary="none", dtype=a.dtype)
    return float(da.nansum(out).compute())


def rolling_long(a: da.Array) -> float:
    return rolling(a, LONG_WINDOW)


def cs_rank(a: da.Array) -> float:
    if a.chunks[1][0] != a.shape[1]:
        # The planned rechunk: slabs of CS_DATES dates x all assets (no-op for cross-section).
        a = a.rechunk({0: CS_DATES, 1: -1})
    out = a.map_blocks(lambda b: bn.nanrankdata(b, axis=1), dtype=a.dtype)
    return float(da.nansum(out).compute())


def timed(fn, a: da.Array) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = fn(a)
    return time.perf_counter() - t0, value


def main() -> None:
    ap = argparse.ArgumentParser(description="chunk layout benchmark")
    ap.add_argument("--dates", type=int, default=2500)
    ap.add_argument("--assets", type=int, default=2000)
    ap.add_argument("--full", action="store_true", help="5,000 dates x 5,500 assets")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if args.full:
        args.dates, args.assets = 5000, 5500
    T, N = args.dates, args.assets
    layouts = {
        "stored": (schema.DATE_CHUNK, schema.ASSET_CHUNK),
        "whole-time": (T, 64),
        "cross-section": (64, N),
    }
    jobs = {"roll20": rolling, "cs_rank": cs_rank, "roll250": rolling_long}
    tmp = Path(tempfile.mkdtemp(prefix="qd-bench-layout-"))
    try:
        x = make_field(T, N)
        for name, chunks in layouts.items():
            write(tmp / name, x, chunks)
        # Reference values (plain numpy) so every layout is checked, not just timed.
        ref = {
            "roll20": float(np.nansum(bn.move_mean(x, WINDOW, axis=0))),
            "cs_rank": float(np.nansum(bn.nanrankdata(x, axis=1))),
            "roll250": float(np.nansum(bn.move_mean(x, LONG_WINDOW, axis=0))),
        }
        del x
        print(
            f"field: {T} dates x {N} assets float64 ({T * N * 8 / 2**20:.0f} MiB), "
            f"threads scheduler, {args.workers} workers, best of {args.repeat}"
        )
        # Repeats are interleaved across layouts so machine-load drifts hit all alike.
        runs = {name: {job: [] for job in jobs} for name in layouts}
        with dask.config.set(scheduler="threads", num_workers=args.workers):
            for _ in range(args.repeat):
                for name in layouts:
                    a = da.from_zarr(str(tmp / name))
                    for job, fn in jobs.items():
                        t, v = timed(fn, a)
                        assert np.isclose(v, ref[job], rtol=1e-9), (name, job, v, ref[job])
                        runs[name][job].append(t)
        best = {name: {job: min(ts) for job, ts in r.items()} for name, r in runs.items()}
        print(
            f"{'layout':<14} {'chunks':>10}"
            + "".join(f" {j + ' s':>10}" for j in jobs)
            + f" {'all s':>8}   ratio to stored"
        )
        base = best["stored"]
        for name, b in best.items():
            c = layouts[name]
            ratios = ", ".join(f"{j} x{b[j] / base[j]:.2f}" for j in jobs)
            total = sum(b.values())
            print(
                f"{name:<14} {f'{c[0]}x{c[1]}':>10}"
                + "".join(f" {b[j]:10.2f}" for j in jobs)
                + f" {total:8.2f}   {ratios}, all x{total / sum(base.values()):.2f}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
