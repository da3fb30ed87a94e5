"""Ingest a synthetic tushare-layout history, append one day, verify; print times and sizes.

Usage: ``python bench/bench_ingest.py N_ASSETS N_DAYS [OUT_DIR]``. The appended day's undo
journal size is the extra I/O an append pays for being all-or-nothing.
"""

from __future__ import annotations

import importlib
import os
import resource
import shutil
import sys
import time

import numpy as np
import pandas as pd

import quantdask as qd


def main() -> None:
    n_assets, n_days = int(sys.argv[1]), int(sys.argv[2])
    out = sys.argv[3] if len(sys.argv) > 3 else "/tmp/quantdask-bench-ingest"
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    rng = np.random.default_rng(0)
    sh = [f"{600000 + i:06d}.SH" for i in range(min(n_assets, 4000))]
    sz = [f"{i:06d}.SZ" for i in range(n_assets - len(sh))]
    codes = sh + sz
    dates = qd.trading_calendar("2015-01-01", "2040-01-01")[: n_days + 1]

    def frame(ds: pd.DatetimeIndex) -> pd.DataFrame:
        idx = pd.MultiIndex.from_product([ds, codes], names=["trade_date", "ts_code"])
        idx = idx.to_frame(index=False)
        c = 10 + rng.random(len(idx))
        return pd.DataFrame(
            {
                "ts_code": idx.ts_code,
                "trade_date": idx.trade_date.dt.strftime("%Y%m%d"),
                **{"open": c, "high": c * 1.02, "low": c * 0.98, "close": c, "pre_close": c},
                **{"vol": 100.0, "amount": 1e3},
            }
        )

    hist, day = frame(dates[:-1]), frame(dates[-1:])
    path = os.path.join(out, "m.zarr")
    t = time.perf_counter()
    qd.ingest(path, daily=hist)
    t_ingest = time.perf_counter() - t

    ing = importlib.import_module("quantdask.io.ingest")
    begin = ing._journal.begin
    saved: dict[str, float] = {}

    def spy(store, files):
        files = [f for f in files if os.path.exists(os.path.join(store, f))]
        saved["n"] = len(files)
        saved["mib"] = sum(os.path.getsize(os.path.join(store, f)) for f in files) / 2**20
        return begin(store, files)

    ing._journal.begin = spy
    t = time.perf_counter()
    qd.append(path, daily=day)
    t_append = time.perf_counter() - t
    ing._journal.begin = begin
    t = time.perf_counter()
    ok = qd.verify(path).ok
    t_verify = time.perf_counter() - t
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(
        f"assets={n_assets} days={n_days} rows={len(hist):,}: ingest {t_ingest:.1f} s, "
        f"append 1 day {t_append:.2f} s (journal {saved['n']} files, {saved['mib']:.1f} MiB), "
        f"verify {t_verify:.1f} s ok={ok}, store {size / 2**20:.0f} MiB, peak RSS {peak:.0f} MiB"
    )
    shutil.rmtree(out)


if __name__ == "__main__":
    main()
