"""Sweep benchmark: 1 vs 2 worker processes, scheduler overhead per task, and a simulated large
cluster (many worker processes on loopback) showing how tasks and graph size grow with the grid.

Run from the repository root::

    python bench/bench_sweep.py                 # 200 cells on a 1000 x 500 panel
    python bench/bench_sweep.py --quick         # 40 cells, smaller panel (a smoke run)

All ratios are measured side by side in one run. Each cell computes a rolling-mean factor
(bottleneck) and its daily rank IC against forward returns; cells share the panel through
``qd.sweep(..., data=panel)`` (scattered to every worker once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import bottleneck as bn
import cloudpickle
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quantdask as qd
from quantdask.sweep.core import parse_grid, run_cell


def make_panel(n_dates: int, n_assets: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ret = rng.normal(0, 0.02, size=(n_dates, n_assets))
    ret[rng.random(ret.shape) < 0.03] = np.nan
    return ret


def factor_ic(ret: np.ndarray, window: int, horizon: int) -> dict[str, float]:
    """Reversal factor (minus the ``window``-day mean return) vs ``horizon``-day forward return."""
    factor = -bn.move_mean(ret, window, min_count=window, axis=0)
    fwd = np.roll(bn.move_sum(ret, horizon, min_count=horizon, axis=0), -horizon, axis=0)
    fwd[-horizon:] = np.nan
    ok = np.isfinite(factor) & np.isfinite(fwd)
    keep = ok.sum(axis=1) >= 10
    fr = bn.nanrankdata(np.where(ok, factor, np.nan)[keep], axis=1)
    rr = bn.nanrankdata(np.where(ok, fwd, np.nan)[keep], axis=1)
    fr = fr - np.nanmean(fr, axis=1, keepdims=True)
    rr = rr - np.nanmean(rr, axis=1, keepdims=True)
    ic = np.nansum(fr * rr, axis=1) / np.sqrt(np.nansum(fr**2, axis=1) * np.nansum(rr**2, axis=1))
    return {"ic_mean": float(ic.mean()), "ic_ir": float(ic.mean() / ic.std(ddof=1))}


def grid_of(n_cells: int) -> dict[str, list[int]]:
    n_h = 10 if n_cells >= 50 else 5
    n_w = max(1, n_cells // n_h)
    return {"window": [5 + 5 * i for i in range(n_w)], "horizon": list(range(1, n_h + 1))}


def timed_sweep(client, func, grid, data, tmp: Path, name: str) -> float:
    store = tmp / f"{name}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    ds = qd.sweep(func, grid, store=store, data=data, client=client, progress=False)
    elapsed = time.perf_counter() - t0
    assert ds.attrs["n_failed"] == 0, ds.attrs["failures"]
    return elapsed


def cluster(n_workers: int, threads: int = 1):
    from distributed import Client

    return Client(
        n_workers=n_workers,
        threads_per_worker=threads,
        processes=True,
        dashboard_address=":0",
        memory_limit="2GiB",
    )


def bench_scaling(args, tmp: Path) -> None:
    panel = make_panel(args.dates, args.assets)
    grid = grid_of(args.cells)
    n = len(parse_grid(grid)[1])
    t0 = time.perf_counter()
    run_cell(factor_ic, panel, {"window": 20, "horizon": 5})
    per_cell = time.perf_counter() - t0
    print(f"\n## 1 vs 2 workers: {n} cells, panel {args.dates} x {args.assets}")
    print(f"one cell in-process: {per_cell * 1e3:.0f} ms")
    times, cores_used = {}, {}
    for n_workers in (1, 2):
        with cluster(n_workers) as client:
            timed_sweep(client, factor_ic, {"window": [5], "horizon": [1, 2]}, panel, tmp, "warm")
            cpu0 = sum(client.run(_cpu_seconds).values())
            times[n_workers] = timed_sweep(client, factor_ic, grid, panel, tmp, f"w{n_workers}")
            cpu = sum(client.run(_cpu_seconds).values()) - cpu0
            cores_used[n_workers] = cpu / times[n_workers]
        print(
            f"{n_workers} worker(s) x 1 thread: {times[n_workers]:.2f} s "
            f"({times[n_workers] / n * 1e3:.0f} ms/cell); the workers obtained "
            f"{cores_used[n_workers]:.2f} cores of CPU time on average"
        )
    print(f"speedup 2 vs 1 workers: {times[1] / times[2]:.2f}x (target >= 1.8x)")
    print(f"CPU obtained by 2 workers vs 1: {cores_used[2] / cores_used[1]:.2f}x")


def bench_overhead(args, tmp: Path) -> None:
    print("\n## scheduler overhead per task (2 workers x 1 thread)")
    with cluster(2) as client:
        client.submit(abs, -1).result()
        n_tasks = 2000 if not args.quick else 500
        t0 = time.perf_counter()
        client.gather(client.map(abs, range(-n_tasks, 0), pure=False))
        per_task = (time.perf_counter() - t0) / n_tasks
        print(f"client.map of {n_tasks} no-op tasks: {per_task * 1e3:.2f} ms/task")
        n_cells = 200 if not args.quick else 50
        grid = {"k": list(range(n_cells))}
        elapsed = timed_sweep(client, _noop, grid, None, tmp, "noop")
        print(
            f"qd.sweep of {n_cells} no-op cells (incl. one zarr cell write each + result): "
            f"{elapsed / n_cells * 1e3:.2f} ms/cell"
        )


def _cpu_seconds() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def _noop(data, k):
    return float(k)


def _tiny(data, window, horizon):
    return {"s": float(window * horizon + data[0])}


def bench_large(args, tmp: Path) -> None:
    n_workers = 8 if not args.quick else 4
    print(f"\n## simulated large cluster: {n_workers} worker processes x 2 threads on loopback")
    print("| cells | tasks on scheduler | graph bytes (pickled cells) | wall s | ms/cell |")
    print("|---:|---:|---:|---:|---:|")
    with cluster(n_workers, threads=2) as client:
        sizes = (10, 100, 1000) if not args.quick else (10, 100)
        data = np.ones(4)
        for n in sizes:
            grid = grid_of(n)
            cells = parse_grid(grid)[1]
            graph_bytes = sum(len(cloudpickle.dumps((run_cell, _tiny, "data", c))) for c in cells)
            peak = {"tasks": 0}
            stop = {"flag": False}

            import threading

            def poll(peak=peak, stop=stop):
                while not stop["flag"]:
                    k = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
                    peak["tasks"] = max(peak["tasks"], k)
                    time.sleep(0.25)

            th = threading.Thread(target=poll)
            th.start()
            try:
                elapsed = timed_sweep(client, _tiny, grid, data, tmp, f"large{n}")
            finally:
                stop["flag"] = True
                th.join()
            print(
                f"| {len(cells)} | {peak['tasks']} | {graph_bytes} | {elapsed:.2f} | "
                f"{elapsed / len(cells) * 1e3:.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--dates", type=int, default=5000)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--only", choices=["scaling", "overhead", "large"], default=None)
    args = parser.parse_args()
    if args.quick:
        args.cells, args.dates, args.assets = 40, 500, 300
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="qd-bench-sweep-") as tmp:
        tmp_path = Path(tmp)
        if args.only in (None, "scaling"):
            bench_scaling(args, tmp_path)
        if args.only in (None, "overhead"):
            bench_overhead(args, tmp_path)
        if args.only in (None, "large"):
            bench_large(args, tmp_path)


if __name__ == "__main__":
    main()
