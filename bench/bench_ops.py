"""Benchmark quantdask ops against the I/O floor, pandas long format and naive xarray.

For a representative set of ops (MA deviation, 250-day high, 250-day return skew, daily
streak, cross-section rank), every variant reads its inputs from the same zarr store and
writes its output to zarr, side by side in one run:

Every variant writes its output with the compressors ``qd.to_zarr`` uses
(``quantdask.io.schema.output_compressors``: Blosc LZ4 + shuffle), in its own chunks.

* ``floor``: zarr read of the inputs + zarr write of the op's outputs, no compute (the
  output values are computed beforehand and held in memory, in the op's output chunks; the
  read and the write run in one graph). Compressors work harder on some values than others,
  so the older proxy, rewriting the input field, is printed beside it ("input rewritten");
* ``quantdask``: ``qd.ts_*`` / ``qd.cs_rank`` on ``xr.open_zarr`` (threads scheduler);
* ``xarray``: the obvious xarray code on the same store (``.rolling(date=n).mean()``,
  rolling power means for skew, ``.rank("asset")``); no xarray equivalent for the streak;
* ``pandas``: long format (one row per date and asset, sorted by asset) and
  ``groupby("asset").rolling(n)`` (cumsum-run trick for the streak, ``groupby("date").rank``
  for the cross-section rank), timed in memory (the "pandas" column) and with the zarr ->
  long-frame load added ("pandas+load"). By default pandas runs on the whole panel;
  ``--pandas-assets`` times it on a subset of assets and scales the time linearly.
* ``in memory``: the quantdask op on the panel already in memory (stored chunks), result
  kept in memory: the compute-to-compute comparison with the "pandas" column.

Run::

    python bench/bench_ops.py                 # 2,000 dates x 1,500 assets (default)
    python bench/bench_ops.py --full          # 5,000 dates x 5,500 assets (A-share scale)

The store is written under ``/tmp`` (``--store``) and removed afterwards unless ``--keep``.
Times are the best of ``--repeat`` runs. A layout micro-benchmark (``move_mean(250)`` on
one stored block: bottleneck strided along ``date``, bottleneck on a time-contiguous
transposed copy, and quantdask's date-major kernel on the block as stored) is printed first,
then the moment-kernel micro-benchmark: per-block times of the current two-stack kernels
against the running-sum kernels they replaced (``kernels/moving.py`` of ``--baseline-rev``,
read with ``git show`` into a temporary module), for the 20- and 250-day mean/std/skew on a
1,024 x 512 block in the stored layout (date-major, history rows as ``head``) and time-last
(bottleneck for mean/std in the baseline), old and new timed alternately::

    python bench/bench_ops.py --micro-only                 # the micro-benchmarks only
    python bench/bench_ops.py --kernels baseline ...       # the op table on the old kernels
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import bottleneck as bn
import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

import quantdask as qd
from quantdask.io.schema import ASSET_CHUNK, DATE_CHUNK, output_compressors
from quantdask.io.store import zarr_quiet
from quantdask.kernels import moving
from quantdask.kernels.moving import dm_move_mean

#: The commit whose running-sum moment kernels the micro-benchmark compares against.
BASELINE_REV = "45da81a"


def build_store(path: Path, n_dates: int, n_assets: int, seed: int = 0) -> None:
    """Random-walk close/high/low with ~3% suspended cells, stored chunks as the schema."""
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0, 0.02, size=(n_dates, n_assets))
    close = 10.0 * np.exp(np.cumsum(ret, axis=0))
    high = close * (1.0 + np.abs(rng.normal(0.0, 0.01, size=close.shape)))
    low = close * (1.0 - np.abs(rng.normal(0.0, 0.01, size=close.shape)))
    off = rng.random(close.shape) < 0.03
    for a in (close, high, low):
        a[off] = np.nan
    ds = xr.Dataset(
        {k: (("date", "asset"), v) for k, v in {"close": close, "high": high, "low": low}.items()},
        coords={
            "date": pd.bdate_range("2005-01-04", periods=n_dates),
            "asset": [f"{i:06d}.SZ" for i in range(n_assets)],
        },
    ).chunk({"date": DATE_CHUNK, "asset": ASSET_CHUNK})
    with zarr_quiet():
        ds.to_zarr(path, mode="w", consolidated=True)


def open_store(path: Path) -> xr.Dataset:
    with zarr_quiet():
        return xr.open_zarr(path, consolidated=True)


def write(arr: xr.DataArray | da.Array, out: Path, *, compute: bool = True) -> object:
    """Store ``arr`` with the compressors ``qd.to_zarr`` uses, in its own chunks."""
    data = arr.data if isinstance(arr, xr.DataArray) else arr
    irregular = any(len(set(c[:-1])) > 1 or c[-1] > c[0] for c in data.chunks)
    if irregular:  # naive xarray rolling returns irregular chunks; zarr needs regular ones
        data = data.rechunk({0: DATE_CHUNK, 1: data.chunks[1][0]})
    shutil.rmtree(out, ignore_errors=True)
    with zarr_quiet():
        target = zarr.create_array(
            str(out),
            shape=data.shape,
            chunks=tuple(c[0] for c in data.chunks),
            dtype=data.dtype,
            compressors=output_compressors(),
        )
        return da.store(data, target, lock=False, compute=compute)


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# --- quantdask ----------------------------------------------------------------------------


def qd_ops() -> dict[str, tuple[tuple[str, ...], Callable[[xr.Dataset], xr.DataArray]]]:
    return {
        "ma_dev_20": (("close",), lambda d: d["close"] / qd.ts_mean(d["close"], window=20) - 1),
        "high_250": (("high",), lambda d: qd.ts_max(d["high"], window=250)),
        "skew_250": (("close",), lambda d: qd.ts_skew(qd.ts_pct_change(d["close"]), window=250)),
        "streak_D": (("close",), lambda d: qd.ts_streak(d["close"])),
        "cs_rank": (("close",), lambda d: qd.cs_rank(d["close"])),
    }


# --- naive xarray -------------------------------------------------------------------------


def _xr_skew(c: xr.DataArray) -> xr.DataArray:
    r = c / c.shift(date=1) - 1
    n = 250
    m1 = r.rolling(date=n).mean()
    m2 = (r**2).rolling(date=n).mean()
    m3 = (r**3).rolling(date=n).mean()
    var = m2 - m1**2
    g1 = (m3 - 3 * m1 * m2 + 2 * m1**3) / var**1.5
    return g1 * np.sqrt(n * (n - 1)) / (n - 2)


def xr_ops() -> dict[str, Callable[[xr.Dataset], xr.DataArray] | None]:
    return {
        "ma_dev_20": lambda d: d["close"] / d["close"].rolling(date=20).mean() - 1,
        "high_250": lambda d: d["high"].rolling(date=250).max(),
        "skew_250": lambda d: _xr_skew(d["close"]),
        "streak_D": None,
        "cs_rank": lambda d: d["close"].chunk({"asset": -1}).rank("asset", pct=True),
    }


# --- pandas long format -------------------------------------------------------------------


def _pd_streak(df: pd.DataFrame) -> pd.Series:
    c = df["close"].dropna()
    sign = np.sign(c.groupby(level="asset").diff())
    brk = (sign != sign.groupby(level="asset").shift()).astype(int)
    run = brk.groupby(level="asset").cumsum()
    k = sign.groupby([sign.index.get_level_values("asset"), run]).cumcount() + 1
    return (sign * k).where(sign.notna())


def pd_ops() -> dict[str, Callable[[pd.DataFrame], object]]:
    def roll(df: pd.DataFrame, col: str, n: int):
        return df[col].groupby(level="asset").rolling(n)

    def skew(df: pd.DataFrame):
        r = df["close"].groupby(level="asset").pct_change(fill_method=None)
        return r.groupby(level="asset").rolling(250).skew()

    return {
        "ma_dev_20": lambda df: (
            df["close"].to_numpy() / roll(df, "close", 20).mean().to_numpy() - 1
        ),
        "high_250": lambda df: roll(df, "high", 250).max(),
        "skew_250": skew,
        "streak_D": _pd_streak,
        "cs_rank": lambda df: df["close"].groupby(level="date").rank(pct=True),
    }


def long_frame(ds: xr.Dataset, n_assets: int, fields: tuple[str, ...]) -> pd.DataFrame:
    sub = ds[list(fields)].isel(asset=slice(0, n_assets)).compute()
    df = sub.to_dataframe()  # (date, asset) index
    return df.reorder_levels(["asset", "date"]).sort_index()


def layout_micro(n_dates: int = DATE_CHUNK + 249, n_assets: int = ASSET_CHUNK) -> None:
    a = np.random.default_rng(1).normal(size=(n_dates, n_assets))
    t_strided = best(lambda: bn.move_mean(a, 250, axis=0), 5)

    def transposed():
        b = np.ascontiguousarray(a.T)
        out = bn.move_mean(b, 250, axis=-1)
        return np.ascontiguousarray(out.T)

    t_copy = best(transposed, 5)
    head, body = a[: n_dates - DATE_CHUNK], a[n_dates - DATE_CHUNK :]
    dm_move_mean(body, 250, 250, head=head)  # compile / load from the numba cache
    t_dm = best(lambda: dm_move_mean(body, 250, 250, head=head), 5)
    print(
        f"layout: move_mean(250) on one {n_dates}x{n_assets} block: bottleneck along date "
        f"(strided) {t_strided * 1e3:.1f} ms, bottleneck on a transposed copy (+ back) "
        f"{t_copy * 1e3:.1f} ms ({t_strided / t_copy:.2f}x), quantdask date-major kernel "
        f"{t_dm * 1e3:.1f} ms ({t_strided / t_dm:.2f}x)"
    )


def load_baseline(rev: str):
    """``quantdask/kernels/moving.py`` at ``rev`` as an importable module (numba caches it)."""
    repo = Path(__file__).resolve().parents[1]
    src = subprocess.run(
        ["git", "-C", str(repo), "show", f"{rev}:quantdask/kernels/moving.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    root = Path(tempfile.gettempdir()) / f"quantdask-moving-{rev}"
    root.mkdir(exist_ok=True)
    name = f"qd_moving_{rev}"
    path = root / f"{name}.py"
    if not path.exists() or path.read_text() != src:
        path.write_text(src)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(name)


def moments_micro(base, repeat: int = 7) -> None:
    """Per-block times, baseline running sums vs the two-stack kernels, timed alternately."""
    rng = np.random.default_rng(2)
    print(
        f"moment kernels per {DATE_CHUNK}x{ASSET_CHUNK} block (baseline = {BASELINE_REV} "
        "running sums; best of",
        repeat,
        "runs, old and new alternated):",
    )
    print("| kernel | window | layout | baseline | two-stack | new/old |")
    print("|---|---|---|---|---|---|")
    for w in (20, 250):
        n = DATE_CHUNK + w - 1
        a = 10.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, size=(n, ASSET_CHUNK)), axis=0))
        a[rng.random(a.shape) < 0.03] = np.nan
        head, body = a[: w - 1], a[w - 1 :]
        tl = np.ascontiguousarray(a.T)  # time-last: (assets, history + block)
        for name in ("mean", "std", "skew"):
            dm_old, dm_new = getattr(base, f"dm_move_{name}"), getattr(moving, f"dm_move_{name}")
            tl_old, tl_new = getattr(base, f"move_{name}"), getattr(moving, f"move_{name}")
            cases = {
                "date-major": (
                    partial(dm_old, body, w, w, head=head),
                    partial(dm_new, body, w, w, head=head),
                ),
                "time-last": (partial(tl_old, tl, w, w), partial(tl_new, tl, w, w)),
            }
            for layout, (old, new) in cases.items():
                old(), new()  # compile / load from the numba cache
                t_old, t_new = [], []
                for _ in range(repeat):
                    for fn, ts in ((old, t_old), (new, t_new)):
                        t = time.perf_counter()
                        fn()
                        ts.append(time.perf_counter() - t)
                to, tn = min(t_old), min(t_new)
                print(
                    f"| {name} | {w} | {layout} | {to * 1e3:.2f} ms | {tn * 1e3:.2f} ms "
                    f"| {tn / to:.2f} |",
                    flush=True,
                )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dates", type=int, default=2000)
    p.add_argument("--assets", type=int, default=1500)
    p.add_argument("--full", action="store_true", help="5,000 dates x 5,500 assets")
    p.add_argument("--store", default="/tmp/quantdask-bench-ops")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--pandas-assets", type=int, default=None)
    p.add_argument(
        "--xarray-assets",
        type=int,
        default=None,
        help="time naive xarray on this many assets and scale linearly (it is slow)",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", nargs="*", default=None, help="subset of op names")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--baseline-rev", default=BASELINE_REV, help="commit of the old kernels")
    p.add_argument("--micro-only", action="store_true", help="only the kernel micro-benchmarks")
    p.add_argument(
        "--kernels",
        choices=["current", "baseline"],
        default="current",
        help="run the op table on the current moment kernels or on --baseline-rev's",
    )
    args = p.parse_args()
    base = load_baseline(args.baseline_rev)
    if args.micro_only:
        layout_micro()
        moments_micro(base)
        return
    if args.kernels == "baseline":  # the ops look their date-major twin up at call time
        for tl_kernel, dm_kernel in list(moving.DATE_MAJOR.items()):
            moving.DATE_MAJOR[tl_kernel] = getattr(base, dm_kernel.__name__)
        print(f"op table on the moment kernels of {args.baseline_rev}")
    if args.full:
        args.dates, args.assets = 5000, 5500
    pandas_assets = min(args.pandas_assets or args.assets, args.assets)
    xr_assets = min(args.xarray_assets or args.assets, args.assets)

    root = Path(args.store)
    root.mkdir(parents=True, exist_ok=True)
    store = root / "market.zarr"
    t = time.perf_counter()
    build_store(store, args.dates, args.assets)
    print(
        f"store: {args.dates} dates x {args.assets} assets float64, chunks "
        f"{DATE_CHUNK}x{ASSET_CHUNK}, built in {time.perf_counter() - t:.1f} s at {store}"
    )
    layout_micro()
    moments_micro(base)

    ours, naive, pand = qd_ops(), xr_ops(), pd_ops()
    names = args.only or list(ours)
    rows = []
    with dask.config.set(scheduler="threads", num_workers=args.workers):
        for name in names:
            fields, fn = ours[name]
            out = root / f"out-{name}.zarr"

            def floor_proxy(fields=fields, out=out):
                d = open_store(store)
                write(d[fields[0]], out)

            def ours_run(fn=fn, out=out):
                write(fn(open_store(store)), out)

            # the exact floor: read every input chunk and write the op's own output values
            # (computed beforehand, held in memory in the op's output chunks), one graph
            result = fn(open_store(store)).data.persist()

            def floor(fields=fields, out=out, result=result):
                d = open_store(store)
                reads = [d[f].data.sum() for f in fields]
                write_and = write(result, out, compute=False)
                dask.compute(write_and, *reads)

            t_proxy = best(floor_proxy, args.repeat)
            t_floor = best(floor, args.repeat)
            del result
            t_ours = best(ours_run, args.repeat)
            # the same op on data already in memory (stored chunks), result kept in memory:
            # the compute-to-compute comparison with pandas, which also starts from memory
            in_mem = (
                open_store(store)[list(fields)]
                .compute()
                .chunk({"date": DATE_CHUNK, "asset": ASSET_CHUNK})
            )
            t_mem = best(lambda fn=fn, in_mem=in_mem: fn(in_mem).compute(), args.repeat)
            del in_mem
            t_xr = None
            if naive[name] is not None:
                xfn = naive[name]

                def xr_run(xfn=xfn, out=out):
                    write(xfn(open_store(store).isel(asset=slice(0, xr_assets))), out)

                t_xr = best(xr_run, args.repeat) * args.assets / xr_assets
            t_load = time.perf_counter()
            frame = long_frame(open_store(store), pandas_assets, fields)
            t_load = time.perf_counter() - t_load
            pfn = pand[name]
            scale = args.assets / pandas_assets
            t_pd = best(lambda pfn=pfn, frame=frame: pfn(frame), 1) * scale
            t_pd_io = t_pd + t_load * scale
            rows.append((name, t_floor, t_ours, t_xr, t_pd, t_pd_io, t_mem, t_proxy))
            xr_txt = f"{t_xr:7.2f} s ({t_xr / t_ours:5.1f}x)" if t_xr else "    n/a         "
            print(
                f"{name:10s} floor {t_floor:6.2f} s (input rewritten: {t_proxy:6.2f} s) | "
                f"quantdask {t_ours:6.2f} s "
                f"({t_ours / t_floor:4.2f}x floor) | xarray {xr_txt} | "
                f"pandas {t_pd:7.2f} s ({t_pd / t_ours:5.1f}x), with load {t_pd_io:7.2f} s "
                f"({t_pd_io / t_ours:5.1f}x) | in memory: quantdask {t_mem:6.2f} s, "
                f"pandas/qd {t_pd / t_mem:5.1f}x",
                flush=True,
            )
    print(
        "\n| op | I/O floor | (input rewritten) | quantdask | qd/floor | naive xarray | xarray/qd "
        "| pandas | pandas/qd | pandas+load | (pandas+load)/qd | qd in memory "
        "| pandas/(qd in memory) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, t_floor, t_ours, t_xr, t_pd, t_pd_io, t_mem, t_proxy in rows:
        xr_cols = f"{t_xr:.2f} s | {t_xr / t_ours:.1f}x" if t_xr else "n/a | n/a"
        print(
            f"| {name} | {t_floor:.2f} s | {t_proxy:.2f} s | {t_ours:.2f} s | "
            f"{t_ours / t_floor:.2f}x | {xr_cols} | "
            f"{t_pd:.2f} s | {t_pd / t_ours:.1f}x | {t_pd_io:.2f} s | {t_pd_io / t_ours:.1f}x | "
            f"{t_mem:.2f} s | {t_pd / t_mem:.1f}x |"
        )
    if xr_assets < args.assets:
        print(f"(naive xarray timed on {xr_assets} assets, scaled x{args.assets / xr_assets:.2f})")
    if pandas_assets < args.assets:
        print(
            f"(pandas timed on {pandas_assets} assets, scaled x{args.assets / pandas_assets:.2f})"
        )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
