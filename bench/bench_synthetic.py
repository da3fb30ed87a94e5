"""Time and peak memory of ``qd.synthetic_market`` at a given size.

Usage::

    python bench/bench_synthetic.py                      # 800 assets, 2019-2024 (the demo)
    python bench/bench_synthetic.py --assets 2000 --start 2015-01-01 --end 2024-12-31
    python bench/bench_synthetic.py --full               # 5,500 assets x ~5,000 dates

The numba kernels are warmed up on a tiny market first, so the figures are the build itself.
Peak memory is the process's peak resident set size (psutil, sampled every 20 ms, and
``ru_maxrss``), reported as the increase over the RSS before the build. The store is
written under ``--dir`` (default: a temporary directory, removed afterwards).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

import quantdask as qd


class PeakRSS:
    """Sample this process's resident set size in a background thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=int, default=800)
    ap.add_argument("--start", default="2019-01-01")
    ap.add_argument("--end", default="2024-12-31")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full", action="store_true", help="5,500 assets, 2005-01-01..2025-12-31")
    ap.add_argument("--dir", default=None, help="where to write the store (kept)")
    args = ap.parse_args()
    if args.full:
        args.assets, args.start, args.end = 5500, "2005-01-01", "2025-12-31"

    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="qd-bench-synth-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        qd.synthetic_market(
            tmp / "warmup.zarr", n_assets=20, start="2020-01-01", end="2020-03-31", overwrite=True
        )
        shutil.rmtree(tmp / "warmup.zarr")
        n_dates = len(qd.trading_calendar(args.start, args.end))
        path = tmp / "market.zarr"
        base = psutil.Process().memory_info().rss
        with PeakRSS() as peak:
            t0 = time.perf_counter()
            qd.synthetic_market(
                path,
                n_assets=args.assets,
                start=args.start,
                end=args.end,
                seed=args.seed,
                overwrite=True,
                progress=True,
            )
            elapsed = time.perf_counter() - t0
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t0 = time.perf_counter()
        tree = qd.open_market(path)
        t_open = time.perf_counter() - t0
        cells = args.assets * n_dates
        print(
            f"synthetic_market: {args.assets} assets x {n_dates} dates "
            f"({cells / 1e6:.2f}M stock-days, {args.start}..{args.end})"
        )
        print(f"  build time      {elapsed:8.1f} s  ({cells / elapsed / 1e6:.2f}M stock-days/s)")
        print(
            f"  peak RSS        {peak.peak / 2**20:8.0f} MiB  "
            f"(+{(peak.peak - base) / 2**20:.0f} MiB over {base / 2**20:.0f} MiB before; "
            f"ru_maxrss {maxrss / 2**20:.0f} MiB)"
        )
        print(f"  store on disk   {_du(path) / 2**20:8.0f} MiB")
        print(f"  open_market     {t_open:8.2f} s  ({len(tree['daily'].data_vars)} daily fields)")
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
