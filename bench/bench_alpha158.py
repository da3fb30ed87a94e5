"""Benchmark: Alpha158 (strict and qlib semantics), side by side with qlib, and full-market.

Two parts, on a 2-worker ``LocalCluster`` (processes, 1 thread each) started before any timing,
after a warm-up run that compiles the numba kernels in each worker:

1. **Same instruments and dates as qlib.** A qlib data directory (default: the shared
   40-instrument fixture ``../shared/fixtures/qlib_alpha158/qlib_data``, else the committed
   3-instrument one; ``--qlib-assets N`` writes ``N`` stocks of the synthetic bench market
   over ``--qlib-start``..end with :func:`quantdask.to_qlib` instead) is ingested with
   :func:`quantdask.ingest_qlib` (timed on its own), then ``qd.compute(market,
   qd.factor_set("alpha158", semantics=...))`` is timed as graph build + compute to memory.
   With ``--qlib-python`` (an interpreter with pyqlib, e.g. a separate venv: ``python -m venv
   /tmp/qlibenv && /tmp/qlibenv/bin/pip install pyqlib``; never a dependency of quantdask),
   qlib's own ``Alpha158`` handler (no processors) runs on the same directory and the same
   stocks in a subprocess: its time is the handler's construction (loading and computing
   every feature, and its default label), after ``qlib.init``; its peak memory the summed RSS
   of its process tree. Ours: the summed RSS of the 2 workers plus this process.
2. **Whole market into a float32 store.** Alpha158 for every stock of the synthetic market
   (reduced: 500 stocks, 2012-2019; ``--full``: 5,500 x 2005-2025, ~5,100 dates), written
   with ``qd.to_zarr(..., dtype="float32")``, for the market cut after the middle of its
   calendar and for the whole of it: wall time (graph build included) and the peak summed
   RSS of the workers (sampled every 0.1 s), which should not grow with the number of dates.

Usage::

    python bench/bench_alpha158.py                       # reduced
    python bench/bench_alpha158.py --full                # 5,500 stocks x ~5,100 dates
    python bench/bench_alpha158.py --qlib-python /tmp/qlibenv/bin/python --qlib-assets 300 \\
        --qlib-start 2020-01-01                          # 300 stocks over 2020-2025 vs qlib
    python bench/bench_alpha158.py --skip-store          # only part 1

Synthetic markets are built under ``/tmp/quantdask-bench/`` when absent (as
``bench/bench_factors.py`` builds them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import psutil

import quantdask as qd
from quantdask.io.qlib import qlib_to_ts_code

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_factors import BENCH_DIR, PeakRSS, market_path

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURE = REPO.parent / "shared" / "fixtures" / "qlib_alpha158" / "qlib_data"
SMALL_FIXTURE = REPO / "tests" / "data" / "qlib_alpha158" / "qlib_data"
SEMANTICS = ("strict", "qlib")

#: Run in the pyqlib interpreter: qlib's Alpha158 handler on a data directory.
QLIB_SCRIPT = r"""
import json, sys, time
args = json.loads(sys.argv[1])
import qlib
from qlib.contrib.data.handler import Alpha158
qlib.init(provider_uri=args["provider_uri"], region="cn", kernels=args["kernels"])
t = time.perf_counter()
h = Alpha158(instruments=args["instruments"], start_time=args["start"], end_time=args["end"],
             infer_processors=[], learn_processors=[])
df = h.fetch(col_set="feature")
print(json.dumps({"handler_s": time.perf_counter() - t, "rows": len(df), "cols": df.shape[1]}))
"""


class TreeRSS(PeakRSS):
    """Peak summed RSS of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__([pid], interval)
        self.root = psutil.Process(pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                procs = []
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_total = max(self.peak_total, total)
            time.sleep(self.interval)


def worker_pids(client) -> list[int]:
    return list(client.run(os.getpid).values())


def qlib_dir(args: argparse.Namespace) -> tuple[Path, str]:
    """The qlib data directory of part 1 and how it was made."""
    if args.qlib_dir:
        return Path(args.qlib_dir), "given"
    if not args.qlib_assets:
        root = SHARED_FIXTURE if SHARED_FIXTURE.is_dir() else SMALL_FIXTURE
        return root, "fixture"
    source = market_path(args.assets_full, "2005-01-01", "2025-12-31")
    root = BENCH_DIR / f"qlib_{args.qlib_assets}_{args.qlib_start[:4]}"
    if not root.exists():
        market = qd.open_market(source)
        market = market.isel(asset=slice(0, args.qlib_assets)).sel(
            date=slice(args.qlib_start, None)
        )
        t = time.perf_counter()
        qd.to_qlib(market, root)
        print(f"qd.to_qlib -> {root}: {time.perf_counter() - t:.1f} s", flush=True)
    return root, f"{args.qlib_assets} stocks of {source.name} from {args.qlib_start}"


def stock_codes(root: Path) -> list[str]:
    """The stock codes of ``instruments/all.txt`` (qlib codes; indices left out)."""
    lines = (root / "instruments" / "all.txt").read_text().splitlines()
    codes = sorted({line.split("\t")[0] for line in lines if line.strip()})
    return [c for c in codes if qlib_to_ts_code(c)[1] == "stock"]


def run_memory(client, market, semantics: str) -> dict[str, float]:
    """Alpha158 graph build + compute to this process's memory."""
    pids = worker_pids(client)
    me = psutil.Process()
    before = me.memory_info().rss
    t0 = time.perf_counter()
    with PeakRSS(pids) as mem, PeakRSS([os.getpid()]) as local:
        ds = qd.compute(market, qd.factor_set("alpha158", semantics=semantics))
        t_graph = time.perf_counter() - t0
        ds = ds.compute()
    wall = time.perf_counter() - t0
    return {
        "graph_s": t_graph,
        "wall_s": wall,
        "cells": ds.sizes["date"] * ds.sizes["asset"],
        "peak_mib": (mem.peak_total + local.peak_total) / 2**20,
        "peak_workers_mib": mem.peak_total / 2**20,
        "client_growth_mib": (local.peak_total - before) / 2**20,
    }


def run_qlib(python: str, root: Path, codes: list[str], dates: pd.DatetimeIndex) -> dict:
    payload = {
        "provider_uri": str(root),
        "instruments": codes,
        "start": str(dates[0].date()),
        "end": str(dates[-1].date()),
        "kernels": 2,
    }
    proc = subprocess.Popen(
        [python, "-c", QLIB_SCRIPT, json.dumps(payload)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with TreeRSS(proc.pid) as mem:
        out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"qlib failed:\n{err[-3000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res["peak_mib"] = mem.peak_total / 2**20
    return res


def run_store(client, path: Path, last: pd.Timestamp, out: Path, semantics: str) -> dict:
    market = qd.open_market(path).sel(date=slice(None, last))
    t0 = time.perf_counter()
    with PeakRSS(worker_pids(client)) as mem:
        ds = qd.compute(market, qd.factor_set("alpha158", semantics=semantics))
        t_graph = time.perf_counter() - t0
        qd.to_zarr(ds, out, mode="w", dtype="float32")
    wall = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {
        "dates": ds.sizes["date"],
        "assets": ds.sizes["asset"],
        "graph_s": t_graph,
        "wall_s": wall,
        "store_gib": size / 2**30,
        "peak_workers_mib": mem.peak_total / 2**20,
        "peak_one_worker_mib": mem.peak_single / 2**20,
    }


def part_vs_qlib(client, args: argparse.Namespace, scratch: Path) -> None:
    root, how = qlib_dir(args)
    store = scratch / "from_qlib.zarr"
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qd.IngestWarning)
        qd.ingest_qlib(root, store)
    t_ingest = time.perf_counter() - t
    market = qd.open_market(store)
    daily = market["daily"].to_dataset(inherit=False)
    dates = pd.DatetimeIndex(daily["date"].values)
    print(
        f"[vs qlib] {root} ({how}): {daily.sizes['asset']} stocks x {len(dates)} dates; "
        f"qd.ingest_qlib {t_ingest:.1f} s (not in the times below)",
        flush=True,
    )
    ours = {}
    for semantics in args.semantics:
        res = run_memory(client, market, semantics)
        ours[semantics] = res
        print(
            f"  quantdask alpha158 semantics={semantics}: {res['wall_s']:.2f} s "
            f"(graph {res['graph_s']:.2f} s) to memory, peak RSS {res['peak_mib']:.0f} MiB "
            f"(2 workers {res['peak_workers_mib']:.0f} MiB + this process)",
            flush=True,
        )
    if not args.qlib_python:
        print("  qlib: not timed (pass --qlib-python /path/to/python-with-pyqlib)")
        return
    codes = stock_codes(root)
    q = run_qlib(args.qlib_python, root, codes, dates)
    print(
        f"  qlib Alpha158 handler: {q['handler_s']:.2f} s ({q['rows']} rows x {q['cols']}), "
        f"peak RSS {q['peak_mib']:.0f} MiB (process tree)",
        flush=True,
    )
    for semantics, res in ours.items():
        print(
            f"  speed-up semantics={semantics}: x{q['handler_s'] / res['wall_s']:.1f}, "
            f"memory x{res['peak_mib'] / q['peak_mib']:.2f} of qlib's"
        )


def part_store(client, args: argparse.Namespace, scratch: Path) -> None:
    n_assets = args.assets or (5500 if args.full else 500)
    start = "2005-01-01" if args.full else "2012-01-01"
    end = "2025-12-31" if args.full else "2019-12-31"
    path = market_path(n_assets, start, end)
    dates = pd.DatetimeIndex(qd.open_market(path)["daily"]["date"].values)
    for semantics in args.semantics:
        rows = []
        for label, last in (("half history", dates[len(dates) // 2 - 1]), ("full", dates[-1])):
            out = scratch / f"alpha158_{semantics}.zarr"
            res = run_store(client, path, last, out, semantics)
            shutil.rmtree(out, ignore_errors=True)
            rows.append(res)
            print(
                f"[store] semantics={semantics} {label}: {res['dates']} dates x "
                f"{res['assets']} stocks x 158 -> float32 store ({res['store_gib']:.2f} GiB): "
                f"{res['wall_s']:.1f} s (graph {res['graph_s']:.1f} s), peak RSS of 2 workers "
                f"{res['peak_workers_mib']:.0f} MiB (one worker max "
                f"{res['peak_one_worker_mib']:.0f} MiB)",
                flush=True,
            )
        a, b = rows
        print(
            f"  dates x{b['dates'] / a['dates']:.2f} -> time x{b['wall_s'] / a['wall_s']:.2f}, "
            f"peak memory x{b['peak_workers_mib'] / a['peak_workers_mib']:.2f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="part 2 on 5,500 stocks x 2005-2025")
    parser.add_argument("--assets", type=int, default=None, help="part 2 market size")
    parser.add_argument("--semantics", default="strict,qlib", help="comma-separated")
    parser.add_argument("--qlib-python", default=None, help="interpreter with pyqlib")
    parser.add_argument("--qlib-dir", default=None, help="a qlib data directory for part 1")
    parser.add_argument("--qlib-assets", type=int, default=0, help="stocks to write for part 1")
    parser.add_argument("--qlib-start", default="2020-01-01")
    parser.add_argument("--skip-store", action="store_true", help="only part 1")
    parser.add_argument("--skip-qlib", action="store_true", help="only part 2")
    parser.add_argument("--memory-limit", default="4GiB", help="per worker")
    args = parser.parse_args(argv)
    args.semantics = [s.strip() for s in args.semantics.split(",") if s.strip()]
    args.assets_full = 5500

    from dask.distributed import Client, LocalCluster

    scratch = Path(tempfile.mkdtemp(prefix="bench-alpha158-", dir="/tmp"))
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=args.memory_limit,
        dashboard_address=None,
    )
    client = Client(cluster)
    try:
        # warm-up: numba kernels compile (or load from cache) once in each worker process
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", qd.IngestWarning)
            qd.ingest_qlib(SMALL_FIXTURE, scratch / "warm.zarr")
        warm = qd.open_market(scratch / "warm.zarr")
        for semantics in args.semantics:
            qd.compute(warm, qd.factor_set("alpha158", semantics=semantics)).compute()
        shutil.rmtree(scratch / "warm.zarr")
        if not args.skip_qlib:
            part_vs_qlib(client, args, scratch)
        if not args.skip_store:
            part_store(client, args, scratch)
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
