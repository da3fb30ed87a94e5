"""DTW timing benchmark: pruning on/off end to end, and per-distance speed vs dtaidistance (C).

Run: ``python bench/bench_dtw.py`` (full size: 5,000 days, m = 60, all dates) or
``python bench/bench_dtw.py --days 1500`` while developing. Every ratio is measured in one
run, single-threaded (dask's synchronous scheduler, dtaidistance with ``parallel=False``).

Figures:

1. ``qd.dtw_timing`` over every date of one index-like series (random walk, or an index of
   a market store with ``--market PATH --index CODE``, or the real SSE Composite 000001.SH
   1990-2011 with ``--real [DATA_DIR]``, by default from the repository's ``examples/data``),
   window 60, horizon 20, k 10, Sakoe-Chiba radius 6: wall time with LB_Keogh pruning and
   without (full DTW against every candidate), and the number of full DTW computations each
   did.
2. Per distance, on the same pairs (all pairs of 300 z-scored 60-day windows, radius 6):
   our numba kernel (a compiled loop over the pairs) vs ``dtaidistance.dtw.
   distance_matrix_fast(..., window=7, use_pruning=False, parallel=False)`` (its C loop
   over the same pairs; ``window = radius + 1``), and per call from Python
   (``qd.dtw_distance`` vs ``dtaidistance.dtw.distance_fast``).
3. End to end against a brute-force C search: dtaidistance (C) distances from a query to
   every candidate, timed on a sample of dates and scaled to all candidate pairs, vs our
   pruned search.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import dask
import numba
import numpy as np
import pandas as pd
from dtaidistance import dtw as dd

import quantdask as qd
from quantdask.kernels import dtw as K


@numba.njit(nogil=True)
def _all_pairs(x, lo, hi):
    n = x.shape[0]
    out = np.empty(n * (n - 1) // 2)
    p = 0
    for i in range(n):
        for j in range(i + 1, n):
            out[p] = np.sqrt(K.dtw_sq(x[i], x[j], lo, hi, np.inf))
            p += 1
    return out


def series(days: int, market: str | None, index: str, real: str | None = None) -> pd.Series:
    if real:
        path = Path(real) / "hikyuu_daily_8_securities_1990_2011.csv.gz"
        frame = pd.read_csv(path, usecols=["ts_code", "trade_date", "close"])
        frame = frame[frame["ts_code"] == "000001.SH"]
        close = pd.Series(
            frame["close"].to_numpy(float), index=pd.DatetimeIndex(frame["trade_date"])
        )
        return close.iloc[-days:]
    if market:
        m = qd.open_market(market)
        close = m["index"].to_dataset()["close"].sel(index=index).to_series().dropna()
        return close.iloc[-days:]
    g = np.random.default_rng(0)
    return pd.Series(
        3000 * np.exp(np.cumsum(g.normal(0.0002, 0.013, days))),
        index=pd.bdate_range("2005-01-04", periods=days),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=5000)
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--horizon", type=int, default=20)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--radius", type=int, default=6)
    ap.add_argument("--market", default=None)
    ap.add_argument("--index", default="000300.SH")
    ap.add_argument(
        "--real",
        nargs="?",
        const=str(Path(__file__).resolve().parents[1] / "examples" / "data"),
        help="use the real SSE Composite (000001.SH, 1990-2011) from this data directory",
    )
    a = ap.parse_args()
    p = series(a.days, a.market, a.index, a.real)
    kw = dict(window=a.window, horizon=a.horizon, k=a.k, radius=a.radius)
    qd.dtw_timing(p.iloc[:300], **kw)  # compile / load the numba cache
    qd.dtw_timing(p.iloc[:300], **kw, prune=False)

    print(
        f"series: {'SSE Composite 000001.SH (real)' if a.real else 'synthetic'} "
        f"{p.index[0]:%Y-%m-%d}..{p.index[-1]:%Y-%m-%d}, {len(p)} days, window {a.window}, horizon {a.horizon}, k {a.k}, radius {a.radius}"
    )
    with dask.config.set(scheduler="sync"):
        t0 = time.perf_counter()
        pruned = qd.dtw_timing(p, **kw)
        t_pruned = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = qd.dtw_timing(p, **kw, prune=False)
        t_full = time.perf_counter() - t0
    cols = ["expected_return", "dispersion", "signal"]
    same = pruned[cols].equals(full[cols])
    n_pairs = int(full["n_dtw"].sum())
    print(
        f"dtw_timing all dates, pruned   : {t_pruned:8.2f} s, {int(pruned['n_dtw'].sum()):>11,} full DTW"
    )
    print(f"dtw_timing all dates, unpruned : {t_full:8.2f} s, {n_pairs:>11,} full DTW")
    print(
        f"pruning speed-up               : {t_full / t_pruned:8.2f} x  (identical output: {same})"
    )

    # per distance, same pairs
    x = np.asarray(p, dtype=np.float64)
    wins = K.normalized_windows(x, a.window, K.NORM_ZSCORE)[a.window - 1 :]
    sel = wins[np.linspace(0, len(wins) - 1, 300).astype(int)]
    lo, hi = K.band(a.window, a.window, K.SAKOE_CHIBA, radius=a.radius)
    _all_pairs(sel[:3], lo, hi)
    t0 = time.perf_counter()
    ours = _all_pairs(sel, lo, hi)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = dd.distance_matrix_fast(
        sel, window=a.radius + 1, use_pruning=False, parallel=False, compact=True
    )
    t_theirs = time.perf_counter() - t0
    assert np.allclose(ours, theirs, rtol=1e-10), "distances differ from dtaidistance"
    npair = len(ours)
    print(
        f"per distance ({npair:,} pairs)   : ours {t_ours / npair * 1e6:6.2f} us, dtaidistance C "
        f"{t_theirs / npair * 1e6:6.2f} us, ratio dtaidistance/ours {t_theirs / t_ours:5.2f}"
    )
    reps = 2000
    t0 = time.perf_counter()
    for i in range(reps):
        qd.dtw_distance(sel[i % 300], sel[(i + 1) % 300], constraint="sakoe_chiba", radius=a.radius)
    t_o = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for i in range(reps):
        dd.distance_fast(sel[i % 300], sel[(i + 1) % 300], window=a.radius + 1, use_pruning=False)
    t_t = (time.perf_counter() - t0) / reps
    print(
        f"per call from Python           : ours {t_o * 1e6:6.2f} us, dtaidistance {t_t * 1e6:6.2f} us, "
        f"ratio {t_t / t_o:5.2f}"
    )

    # brute-force C search on sampled dates, scaled to every candidate pair
    dates = np.linspace(a.window + a.horizon + a.k, len(x) - 1, 40).astype(int)
    done = 0
    t0 = time.perf_counter()
    for t in dates:
        n_c = t - a.horizon - (a.window - 1) + 1
        block = np.vstack([wins[t - a.window + 1], wins[:n_c]])
        dd.distance_matrix_fast(
            block,
            window=a.radius + 1,
            use_pruning=False,
            parallel=False,
            compact=True,
            block=((0, 1), (1, n_c + 1)),
        )
        done += n_c
    t_c = (time.perf_counter() - t0) / done * n_pairs
    print(
        f"brute-force C search (est.)    : {t_c:8.2f} s, ratio vs our pruned search "
        f"{t_c / t_pruned:5.2f} x"
    )


if __name__ == "__main__":
    main()
