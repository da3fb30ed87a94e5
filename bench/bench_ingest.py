"""Ingest benchmarks: a tushare-layout DataFrame, and a vendor dump of per-stock CSV files.

Usage:

* ``python bench/bench_ingest.py N_ASSETS N_DAYS [OUT_DIR]``: ingest a synthetic
  tushare-layout history from a DataFrame, append one day, verify; print times and sizes.
  The appended day's undo journal size is the extra I/O an append pays for being
  all-or-nothing.
* ``python bench/bench_ingest.py vendor N_ASSETS N_DATES [OUT_DIR] [--encoding E] [--keep]
  [--stages]``: write a synthetic vendor dump, one CSV per stock (a title line, Chinese
  headers, codes ``sh600000``, volume in shares, amount in CNY, a per-row name; GBK by
  default), then time side by side, each in a fresh subprocess with its own peak RSS:
  (a) a serial ``pd.read_csv`` of every file (default engine, told the encoding and the
  title line), (b) ``qd.read_vendor_daily`` of the directory, (c) ``qd.ingest`` of the
  directory. ``--stages`` also samples the RSS of (c) every 10 ms and reports the peak
  inside each step of the ingest (parsing the inputs, each date block, the writes).
  ``--keep`` keeps the dump (and reuses one of the same size).

The full-size run of the issue is ``vendor 4800 2500`` (about 11.9 M rows, 1.1 GB of CSV).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

import quantdask as qd

#: The vendor layout of the dump: Chinese header -> our name.
VENDOR_COLUMNS = {
    "股票代码": "ts_code",
    "股票名称": "name",
    "交易日期": "trade_date",
    "开盘价": "open",
    "最高价": "high",
    "最低价": "low",
    "收盘价": "close",
    "前收盘价": "pre_close",
    "成交量": "vol",
    "成交额": "amount",
}
VENDOR_UNITS = {"vol": "shares", "amount": "yuan"}


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


# --------------------------------------------------------------------------------------------
# Vendor dump of per-stock CSV files


def _vendor_code(i: int) -> tuple[str, str]:
    """(vendor spelling, stock name) of the i-th synthetic stock: SH main, SZ main, ChiNext."""
    if i % 3 == 0:
        return f"sh{600000 + i // 3:06d}", "浦发银行"
    if i % 3 == 1:
        return f"sz{i // 3:06d}", "平安银行"
    return f"sz{300000 + i // 3:06d}", "宁德时代"


def write_vendor_dump(
    d: Path, n_assets: int, n_dates: int, *, encoding: str = "gbk", seed: int = 0
) -> int:
    """Write one CSV per stock in a vendor layout; returns the number of rows written.

    Each stock trades every session except ~1% random suspensions; closes follow a random
    walk in cents with ``pre_close`` the previous traded close; every 40th stock is ST (its
    name prefixed ``*ST``) for its second half.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dates = qd.trading_calendar("2005-01-04", "2040-01-01")[:n_dates]
    date_text = pa.array(dates.strftime("%Y-%m-%d").tolist())
    header = ",".join(VENDOR_COLUMNS) + "\n"
    rows = 0
    for i in range(n_assets):
        code, name = _vendor_code(i)
        keep = rng.random(n_dates) > 0.01
        n = int(keep.sum())
        # within every board's limit (ST 5%) after rounding to cents; prices 2.2-45 CNY
        walk = np.clip(np.cumsum(np.clip(rng.normal(0, 0.015, n), -0.04, 0.04)), -1.5, 1.5)
        close = np.round(10 * np.exp(walk), 2)
        pre = np.concatenate([[close[0]], close[:-1]])
        hi = np.round(close * (1 + rng.random(n) * 0.02), 2)
        lo = np.round(np.minimum(close, pre) * (1 - rng.random(n) * 0.02), 2)
        hi = np.maximum(hi, np.maximum(close, pre))
        shares = rng.integers(10_000, 50_000_000, n) // 100 * 100
        names = np.full(n, name, dtype=object)
        if i % 40 == 0:
            names[n // 2 :] = "*ST" + name[:2]
        table = pa.table(
            {
                "code": pa.array(np.full(n, code, dtype=object)),
                "name": pa.array(names),
                "date": date_text.filter(pa.array(keep)),
                "open": pre,
                "high": hi,
                "low": lo,
                "close": close,
                "pre_close": pre,
                "vol": shares,
                "amount": np.round(shares * close, 2),
            }
        )
        buf = pa.BufferOutputStream()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        text = f"{name} ({code}) 日线行情 不复权\n" + header + buf.getvalue().to_pybytes().decode()
        (d / f"{code}.csv").write_bytes(text.encode(encoding))
        rows += n
    return rows


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def _child(step: str, dump: str, store: str, encoding: str, stages: bool) -> None:
    """One timed step in this (fresh) process; prints a JSON line."""
    base = _rss_mib()
    use0 = resource.getrusage(resource.RUSAGE_SELF)  # CPU of the step: user and kernel
    result: dict[str, object] = {"step": step, "rss_after_imports_mib": base}
    if step == "pandas":
        files = sorted(Path(dump).glob("*.csv"))
        t = time.perf_counter()
        n = 0
        for f in files:
            n += len(pd.read_csv(f, encoding=encoding, skiprows=1))
        result["seconds"] = time.perf_counter() - t
        result["rows"] = n
    elif step == "read":
        t = time.perf_counter()
        df = qd.read_vendor_daily(dump, columns=VENDOR_COLUMNS, units=VENDOR_UNITS)
        result["seconds"] = time.perf_counter() - t
        result["rows"] = len(df)
        result["frame_mib"] = df.memory_usage(deep=False).sum() / 2**20
    else:
        sampler = _StageSampler() if stages else None
        t = time.perf_counter()
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            qd.ingest(store, daily=dump, columns=VENDOR_COLUMNS, units=VENDOR_UNITS)
        result["seconds"] = time.perf_counter() - t
        result["warnings"] = [str(w.message)[:160] for w in caught]
        if sampler is not None:
            result["stages"] = sampler.stop()
        result["rows"] = None
    result["peak_rss_mib"] = _rss_mib()
    use = resource.getrusage(resource.RUSAGE_SELF)
    result["user_s"], result["sys_s"] = use.ru_utime - use0.ru_utime, use.ru_stime - use0.ru_stime
    print("RESULT " + json.dumps(result, ensure_ascii=False))


class _StageSampler:
    """RSS per step of an ingest: wraps ingest helpers, samples RSS every 10 ms.

    For each wrapped function: total seconds, the peak RSS while it was the innermost
    wrapped function running, and the largest RSS growth from its entry to its exit (memory
    it left allocated: its result, or what it freed to nobody).
    """

    STEPS = (
        "_load",
        "_codes",
        "_dates",
        "_numeric",
        "_no_duplicates",
        "_st_from_names",
        "_parse_inputs",
        "_off_calendar",
        "_calendar",
        "_asset_codes",
        "_new_assets",
        "_last_traded_bar",
        "_rules",
        "_daily_dataset",
        "_index_dataset",
        "_write_tree",
        "_apply",
        "_rows_by_group",
        "_with_positions",
        "_group_rows",
        "_take",
    )

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.ing = importlib.import_module("quantdask.io.ingest")
        self.vendor = importlib.import_module("quantdask.io.vendor")
        self.current = "other"
        self.stats: dict[str, dict[str, float]] = {}
        self.saved: dict[tuple[object, str], object] = {}
        for mod, name in [(self.ing, s) for s in self.STEPS] + [(self.vendor, "read_table")]:
            if callable(getattr(mod, name, None)):
                self._wrap(mod, name)
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _stat(self, name: str) -> dict[str, float]:
        return self.stats.setdefault(name, {"calls": 0, "seconds": 0.0, "peak": 0.0, "grew": 0.0})

    def _rss(self) -> float:
        return self.proc.memory_info().rss / 2**20

    def _wrap(self, mod: object, name: str) -> None:
        fn = getattr(mod, name)
        self.saved[(mod, name)] = fn

        def wrapped(*args: object, **kwargs: object) -> object:
            outer, self.current = self.current, name
            before, t = self._rss(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                st = self._stat(name)
                after = self._rss()
                st["calls"] += 1
                st["seconds"] += time.perf_counter() - t
                st["peak"] = max(st["peak"], after)
                st["grew"] = max(st["grew"], after - before)
                self.current = outer

        setattr(mod, name, wrapped)

    def _sample(self) -> None:
        while self.running:
            st = self._stat(self.current)
            st["peak"] = max(st["peak"], self._rss())
            time.sleep(0.01)

    def stop(self) -> dict[str, dict[str, float]]:
        self.running = False
        self.thread.join()
        for (mod, name), fn in self.saved.items():
            setattr(mod, name, fn)
        return {k: {m: round(v, 2) for m, v in st.items()} for k, st in self.stats.items()}


def _run_child(step: str, dump: Path, store: Path, encoding: str, stages: bool) -> dict:
    shutil.rmtree(store, ignore_errors=True)
    cmd = [sys.executable, __file__, "_child", step, str(dump), str(store), encoding]
    cmd += ["--stages"] if stages else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"{step} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(line[len("RESULT ") :])


def vendor_main(argv: list[str]) -> None:
    flags = {a for a in argv if a.startswith("--") and a != "--encoding"}
    args = [a for a in argv if not a.startswith("--")]
    encoding = "gbk"
    if "--encoding" in argv:
        encoding = argv[argv.index("--encoding") + 1]
        args.remove(encoding)
    n_assets, n_dates = int(args[0]), int(args[1])
    out = Path(args[2] if len(args) > 2 else "/tmp/quantdask-bench-vendor")
    dump = out / f"dump-{n_assets}x{n_dates}-{encoding}"
    store = out / "vendor.zarr"
    if not (dump.is_dir() and "--keep" in flags):
        shutil.rmtree(dump, ignore_errors=True)
        t = time.perf_counter()
        write_vendor_dump(dump, n_assets, n_dates, encoding=encoding)
        print(f"wrote {n_assets} files in {time.perf_counter() - t:.0f} s")
    n_bytes = sum(f.stat().st_size for f in dump.iterdir())
    print(f"dump: {dump} ({n_assets:,} files, {n_bytes / 2**20:,.0f} MiB, {encoding})")
    print("load average before the runs: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    res = {
        s: _run_child(s, dump, store, encoding, "--stages" in flags)
        for s in ("pandas", "read", "ingest")
    }
    base = res["pandas"]["seconds"]
    rows = res["pandas"]["rows"]
    assert res["read"]["rows"] == rows, (res["read"]["rows"], rows)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"rows: {rows:,}; cores: {os.cpu_count()}; load average {load} (1, 5, 15 min)")
    print("| step | time | x serial pd.read_csv | CPU user + sys | peak RSS | RSS after imports |")
    print("|---|---|---|---|---|---|")
    labels = {
        "pandas": "(a) serial `pd.read_csv` of every file",
        "read": "(b) `qd.read_vendor_daily(dir)`",
        "ingest": "(c) `qd.ingest(daily=dir)`",
    }
    for s, r in res.items():
        print(
            f"| {labels[s]} | {r['seconds']:.1f} s | {r['seconds'] / base:.2f} | "
            f"{r['user_s']:.1f} + {r['sys_s']:.1f} s | "
            f"{r['peak_rss_mib']:,.0f} MiB | {r['rss_after_imports_mib']:,.0f} MiB |"
        )
    print(f"read_vendor_daily frame: {res['read']['frame_mib']:,.0f} MiB")
    for w in res["ingest"]["warnings"]:
        print(f"ingest warning: {w}")
    if "stages" in res["ingest"]:
        print("ingest steps: calls, seconds, peak RSS inside, largest growth entry->exit")
        for k, v in res["ingest"]["stages"].items():
            print(
                f"  {k}: {v['calls']:.0f} calls, {v['seconds']:.1f} s, "
                f"peak {v['peak']:,.0f} MiB, grew {v['grew']:+,.0f} MiB"
            )
    shutil.rmtree(store, ignore_errors=True)
    if "--keep" not in flags:
        shutil.rmtree(dump, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "vendor":
        vendor_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(*sys.argv[2:6], stages="--stages" in sys.argv)
    else:
        main()
