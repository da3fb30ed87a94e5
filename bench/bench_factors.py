"""Benchmark: the whole section-1 market-state library, all stocks and all indices.

Computes every factor the daily snapshot shows (streaks D..Y, close vs MA 5..250, vs 250-day
high/low, turnover, amount share, skew/kurtosis and their 5-year differences, risk premium with
percentiles, bands and the signal, PE-TTM and dividend-yield percentiles 1y/5y/all, below-book
ratio) for every stock (``level="asset"``) and every broad index (``level="index"``), and
writes the results with ``qd.to_zarr``, on a 2-worker ``LocalCluster`` (processes, 1 thread
each). It does this for two history lengths (the market cut after the middle of its calendar,
then the whole market) and reports wall time and the peak resident memory of the worker processes (sampled every
0.1 s), to show that peak memory does not grow with the number of dates.

Usage::

    python bench/bench_factors.py            # reduced: 500 stocks, 2012-2019
    python bench/bench_factors.py --full     # 5,500 stocks x ~5,000 dates (2005-2025)

The synthetic market is built under ``/tmp/quantdask-bench/`` when absent (the full one takes
a while and ~10 GB of disk).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

import quantdask as qd
from quantdask.factors.snapshot import snapshot_factors

BENCH_DIR = Path(os.environ.get("QUANTDASK_BENCH_DIR", "/tmp/quantdask-bench"))


class PeakRSS:
    """Sample the summed RSS of some processes in a background thread."""

    def __init__(self, pids: list[int], interval: float = 0.1) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.interval = interval
        self.peak_total = 0
        self.peak_single = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = []
            for p in self.procs:
                try:
                    sizes.append(p.memory_info().rss)
                except psutil.Error:
                    sizes.append(0)
            self.peak_total = max(self.peak_total, sum(sizes))
            self.peak_single = max(self.peak_single, max(sizes))
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def market_path(n_assets: int, start: str, end: str) -> Path:
    path = BENCH_DIR / f"market_{n_assets}_{start[:4]}_{end[:4]}.zarr"
    if not path.exists():
        from quantdask.io.synthetic import synthetic_market

        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        print(f"building {path} ...", flush=True)
        t = time.perf_counter()
        synthetic_market(path, n_assets=n_assets, start=start, end=end, seed=0)
        print(f"  built in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def run(client, path: Path, last: pd.Timestamp, out_dir: Path) -> dict[str, float]:
    """The whole library over the store's history up to ``last`` (a shorter or longer market)."""
    market = qd.open_market(path).sel(date=slice(None, last))
    factors = snapshot_factors()
    pids = list(client.run(os.getpid).values())
    t0 = time.perf_counter()
    with PeakRSS(pids) as mem:
        graphs = {level: qd.compute(market, factors, level=level) for level in ("asset", "index")}
        t_graph = time.perf_counter() - t0
        for level, ds in graphs.items():
            qd.to_zarr(ds, out_dir / f"{level}.zarr", mode="w")
    wall = time.perf_counter() - t0
    n_dates = graphs["asset"].sizes["date"]
    return {
        "dates": n_dates,
        "assets": graphs["asset"].sizes["asset"],
        "variables": len(factors),
        "graph_s": t_graph,
        "wall_s": wall,
        "peak_workers_mib": mem.peak_total / 2**20,
        "peak_one_worker_mib": mem.peak_single / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="5,500 stocks x 2005-2025")
    parser.add_argument("--assets", type=int, default=None)
    parser.add_argument("--start", default=None)
    parser.add_argument("--end", default=None)
    parser.add_argument("--memory-limit", default="4GiB", help="per worker")
    args = parser.parse_args(argv)
    n_assets = args.assets or (5500 if args.full else 500)
    start = args.start or ("2005-01-01" if args.full else "2012-01-01")
    end = args.end or ("2025-12-31" if args.full else "2019-12-31")
    path = market_path(n_assets, start, end)

    from dask.distributed import Client, LocalCluster

    dates = pd.DatetimeIndex(qd.open_market(path)["daily"]["date"].values)
    half = dates[len(dates) // 2 - 1]
    out_dir = Path(tempfile.mkdtemp(prefix="bench-factors-", dir="/tmp"))
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=args.memory_limit,
        dashboard_address=None,
    )
    client = Client(cluster)
    rows = []
    try:
        # warm-up on a short market: numba kernels compile once in each worker process
        run(client, path, dates[min(len(dates) - 1, 300)], out_dir)
        idle = sum(psutil.Process(p).memory_info().rss for p in client.run(os.getpid).values())
        print(f"workers' RSS after warm-up: {idle / 2**20:.0f} MiB", flush=True)
        for label, last in (("half history", half), ("full history", dates[-1])):
            res = run(client, path, last, out_dir)
            res["run"] = label
            rows.append(res)
            print(
                f"{label}: {res['dates']} dates x {res['assets']} stocks + indices, "
                f"{res['variables']} factors x 2 levels: {res['wall_s']:.1f} s "
                f"(graph {res['graph_s']:.1f} s), peak RSS of 2 workers "
                f"{res['peak_workers_mib']:.0f} MiB (one worker max "
                f"{res['peak_one_worker_mib']:.0f} MiB)",
                flush=True,
            )
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(out_dir, ignore_errors=True)
    a, b = rows
    print(
        f"dates x{b['dates'] / a['dates']:.2f} -> time x{b['wall_s'] / a['wall_s']:.2f}, "
        f"peak memory x{b['peak_workers_mib'] / a['peak_workers_mib']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
