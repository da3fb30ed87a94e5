"""Back-test + factor analytics at A-share scale: quantdask vs pandas long format.

quantdask: ``qd.forward_returns`` (1, 5, 20 days) and ``qd.factor_report`` (rank IC and
Pearson IC and 5-bucket quantile returns for every horizon; the factor is ranked once per date)
in one dask compute, then ``qd.select_weights`` (top 50, monthly) and ``qd.backtest`` (A-share
rules, costs, equal-weight benchmark) and ``qd.metrics``. ``--separate`` times the analytics
the older way instead (``qd.ic`` x2 and ``qd.quantile_returns`` per horizon, one compute).

Baseline: the same analytics the way they are usually written in pandas long format:
``groupby("asset")`` shifts for forward returns, ``groupby("date").apply(spearmanr / corr)``
for IC, ``groupby(["date", "bucket"])`` for quantile returns, ``groupby("date").nlargest`` for
selection and a groupby/cumprod back-test (drift only: no tradability rules, no costs, so the
baseline does less work than quantdask).

Both start from in-memory data (a dense panel for quantdask, a long DataFrame for pandas);
building the data is not timed. The ratio is measured in one run. Peak memory: resident set
size sampled every 50 ms while each side runs, minus the resident size just before it
(quantdask runs before the long DataFrame is built, so its figure excludes that frame).

    python bench/bench_portfolio.py            # reduced: 1,000 assets x 1,000 days
    python bench/bench_portfolio.py --full     # 5,500 assets x 4,850 days (20 years)
    python bench/bench_portfolio.py --full --portfolio-only   # select + back-test only
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time

import dask
import numpy as np
import pandas as pd
import psutil
import xarray as xr
from scipy import stats

import quantdask as qd
from quantdask.io.schema import ASSET_CHUNK, DATE_CHUNK

HORIZONS = (1, 5, 20)
TOP = 50


def make_market(n_assets: int, n_days: int, seed: int = 0) -> tuple[xr.DataTree, xr.DataArray]:
    """Random A-share-like panel: listings, suspensions, +/-10% limits, and a factor."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2005-01-04", periods=n_days)
    assets = [f"{600000 + i:06d}.SH" for i in range(n_assets)]
    r = rng.normal(0.0003, 0.022, size=(n_days, n_assets))
    r = np.clip(r, -0.1, 0.1)
    close = 10.0 * np.cumprod(1 + r, axis=0)
    listed = np.arange(n_days)[:, None] >= rng.integers(0, n_days // 2, n_assets)[None, :]
    suspended = listed & (rng.random((n_days, n_assets)) < 0.01)
    close = np.where(listed & ~suspended, close, np.nan)
    prev = pd.DataFrame(close).ffill().shift(1).to_numpy()
    pre = np.where(np.isfinite(close), prev, np.nan)
    first = np.isfinite(close) & ~np.isfinite(prev)
    pre[first] = close[first]
    up = np.where(listed, np.round(pre * 1.1, 2), np.nan)
    down = np.where(listed, np.round(pre * 0.9, 2), np.nan)
    # a 20-day momentum factor (known at the close of t)
    ret = np.nan_to_num(close / pre - 1)
    cs = np.cumsum(ret, axis=0)
    mom = np.full(cs.shape, np.nan)
    mom[20:] = cs[20:] - cs[:-20]
    mom = np.where(np.isfinite(close), mom + rng.normal(0, 0.01, mom.shape), np.nan)
    chunks = {"date": DATE_CHUNK, "asset": ASSET_CHUNK}
    ds = xr.Dataset(
        {
            "close": (("date", "asset"), close),
            "pre_close": (("date", "asset"), pre),
            "up_limit": (("date", "asset"), up),
            "down_limit": (("date", "asset"), down),
            "suspended": (("date", "asset"), suspended),
        },
        coords={"date": dates, "asset": assets},
    ).chunk(chunks)
    factor = xr.DataArray(mom, dims=("date", "asset"), coords=ds.coords, name="mom").chunk(chunks)
    return xr.DataTree.from_dict({"daily": ds}), factor


class PeakRSS:
    """Peak resident set size of this process above its size at entry, sampled every 50 ms."""

    def __enter__(self) -> PeakRSS:
        self._proc = psutil.Process(os.getpid())
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def extra_gib(self) -> float:
        return (self.peak - self.base) / 2**30


def run_quantdask(tree: xr.DataTree, factor: xr.DataArray, *, separate: bool = False) -> dict:
    mem = PeakRSS().__enter__()
    fwd = qd.forward_returns(tree, periods=HORIZONS)
    t0 = time.perf_counter()
    if separate:
        lazy = {}
        for h in HORIZONS:
            f = fwd[f"fwd_ret_{h}"]
            lazy[f"ic_spearman_{h}"] = qd.ic(factor, f, method="spearman")
            lazy[f"ic_pearson_{h}"] = qd.ic(factor, f, method="pearson")
            lazy[f"qret_{h}"] = qd.quantile_returns(factor, f, quantiles=5)
        (done,) = dask.compute(lazy)
    else:
        # the fast path: every horizon, both ICs and the quantile returns in one pass
        rep = qd.factor_report(factor, fwd, quantiles=5).compute()
        done = {}
        for h in HORIZONS:
            done[f"ic_spearman_{h}"] = rep["rank_ic"].sel(horizon=h, drop=True)
            done[f"ic_pearson_{h}"] = rep["ic"].sel(horizon=h, drop=True)
            done[f"qret_{h}"] = rep["quantile_returns"].sel(horizon=h, drop=True)
    t1 = time.perf_counter()
    mem.__exit__(None, None, None)
    reb = qd.rebalance_dates(tree, "M")[1:]
    w = qd.select_weights(factor, dates=reb, top=TOP)
    res = qd.backtest(tree, w, costs=qd.Costs(), benchmark="equal")
    done["metrics"] = res.metrics()
    done["returns"] = res.returns
    done["timing"] = {"analytics": t1 - t0, "portfolio": time.perf_counter() - t1}
    done["analytics_peak_gib"] = mem.extra_gib
    return done


def run_pandas(df: pd.DataFrame, rebalance: pd.DatetimeIndex) -> dict:
    out = {}
    df = df.sort_values(["asset", "date"])
    g = df.groupby("asset", sort=False)
    df["logg"] = np.log1p(df["ret"].fillna(0.0))
    df["cum"] = g["logg"].cumsum()
    entry = g["cum"].shift(-1)
    entry_ok = g["blocked"].shift(-1) == False  # noqa: E712 (NaN at the end -> False)
    for h in HORIZONS:
        df[f"fwd_{h}"] = np.expm1(g["cum"].shift(-(1 + h)) - entry).where(entry_ok)
    by_date = df.groupby("date", sort=True)
    for h in HORIZONS:
        col = f"fwd_{h}"

        def spear(x, col=col):
            x = x[["factor", col]].dropna()
            return stats.spearmanr(x["factor"], x[col]).statistic if len(x) > 2 else np.nan

        def pears(x, col=col):
            return x["factor"].corr(x[col])

        out[f"ic_spearman_{h}"] = by_date.apply(spear)
        out[f"ic_pearson_{h}"] = by_date.apply(pears)
        sub = df[["date", "factor", col]].dropna(subset=["factor"])
        sub["bucket"] = sub.groupby("date")["factor"].transform(
            lambda x: pd.qcut(x.rank(method="first"), 5, labels=False)
        )
        out[f"qret_{h}"] = sub.groupby(["date", "bucket"])[col].mean().unstack()
    # top-N selection per rebalance date, then a groupby/cumprod drift back-test
    sel = df[df["date"].isin(rebalance)].dropna(subset=["factor"])
    top = sel.sort_values(["date", "factor"], ascending=[True, False]).groupby("date").head(TOP)
    top = top.assign(w=1.0 / top.groupby("date")["asset"].transform("size"))
    d = df[["date", "asset", "ret"]].copy()
    # a day belongs to the holding period of the last rebalance strictly before it
    d["period"] = rebalance.searchsorted(d["date"].to_numpy(), side="left") - 1
    top["period"] = rebalance.get_indexer(top["date"])
    m = d.merge(top[["period", "asset", "w"]], on=["period", "asset"], how="inner")
    m = m.sort_values(["period", "asset", "date"])
    m["growth"] = m.groupby(["period", "asset"])["ret"].transform(
        lambda x: (1 + x.fillna(0)).cumprod()
    )
    m["value"] = m["w"] * m["growth"]
    nav_in_period = m.groupby(["period", "date"])["value"].sum()
    prev = nav_in_period.groupby(level="period").shift(1).fillna(1.0)
    daily = (nav_in_period / prev - 1).droplevel("period").sort_index()
    out["returns"] = daily
    out["metrics"] = qd.metrics(daily)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="5,500 assets x 4,850 days")
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1000)
    parser.add_argument(
        "--quantdask-only", action="store_true", help="skip the pandas baseline (profiling)"
    )
    parser.add_argument(
        "--separate",
        action="store_true",
        help="analytics as separate qd.ic / qd.quantile_returns calls (the old way)",
    )
    parser.add_argument(
        "--portfolio-only",
        action="store_true",
        help="time only select_weights + backtest + metrics (twice: numba load, then warm)",
    )
    args = parser.parse_args()
    n_assets, n_days = (5500, 4850) if args.full else (args.assets, args.days)
    print(f"panel: {n_assets} assets x {n_days} days, monthly rebalance, top {TOP}")
    t0 = time.perf_counter()
    tree, factor = make_market(n_assets, n_days)
    if args.portfolio_only:
        reb = qd.rebalance_dates(tree, "M")[1:]
        for _ in range(2):
            t0 = time.perf_counter()
            w = qd.select_weights(factor, dates=reb, top=TOP)
            t1 = time.perf_counter()
            res = qd.backtest(tree, w, costs=qd.Costs(), benchmark="equal")
            t2 = time.perf_counter()
            res.metrics()
            t3 = time.perf_counter()
            print(
                f"select_weights {t1 - t0:.2f} s, backtest {t2 - t1:.2f} s "
                f"({res.holdings.shape[0]} days x {res.holdings.shape[1]} held assets), "
                f"metrics {t3 - t2:.2f} s"
            )
        return
    print(f"data built in {time.perf_counter() - t0:.1f} s (not timed)")

    with PeakRSS() as mem_qd:
        t0 = time.perf_counter()
        q = run_quantdask(tree, factor, separate=args.separate)
        t_qd = time.perf_counter() - t0
    how = "separate calls" if args.separate else "factor_report"
    print(
        f"quantdask  (fwd + IC x2 + quantiles x3 horizons [{how}], select + backtest): "
        f"{t_qd:8.2f} s, peak +{mem_qd.extra_gib:.2f} GiB"
    )
    print(
        f"  of which analytics {q['timing']['analytics']:.2f} s "
        f"(peak +{q['analytics_peak_gib']:.2f} GiB), "
        f"select_weights + backtest + metrics {q['timing']['portfolio']:.2f} s"
    )
    if args.quantdask_only:
        return

    t0 = time.perf_counter()
    long = xr.Dataset(
        {
            "ret": tree["daily"]["close"] / tree["daily"]["pre_close"] - 1,
            "factor": factor,
            "blocked": ~np.isfinite(tree["daily"]["close"])
            | tree["daily"]["suspended"]
            | (tree["daily"]["close"] >= tree["daily"]["up_limit"] - 1e-9),
        }
    ).compute()
    df = long.to_dataframe().reset_index()
    del long
    # rows from listing on (suspended days stay, as rows without a price)
    df = df[df.groupby("asset")["ret"].transform(lambda x: x.notna().cummax())]
    print(f"long frame built in {time.perf_counter() - t0:.1f} s (not timed); rows: {len(df):,}")

    reb = qd.rebalance_dates(tree, "M")[1:]
    with PeakRSS() as mem_pd:
        t0 = time.perf_counter()
        p = run_pandas(df, reb)
        t_pd = time.perf_counter() - t0
    print(
        f"pandas long format (same analytics, drift-only backtest):         {t_pd:8.2f} s, "
        f"peak +{mem_pd.extra_gib:.2f} GiB"
    )
    print(f"speed-up: {t_pd / t_qd:.1f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"process peak RSS (data + long frame + both runs): {peak:.2f} GiB")

    # the two agree on the analytics
    for h in HORIZONS:
        a = q[f"ic_spearman_{h}"].to_pandas()
        b = p[f"ic_spearman_{h}"].reindex(a.index)
        ok = np.isfinite(a) & np.isfinite(b)
        diff = float(np.abs(a[ok] - b[ok]).max())
        print(
            f"  rank IC {h:>2}d: mean qd {a.mean():+.4f}  pandas {b.mean():+.4f}  max |diff| {diff:.1e}"
        )
    m = q["metrics"]
    print(
        f"  backtest: annual {m['annual_return']:+.2%}, sharpe {m['sharpe']:.2f}, "
        f"max dd {m['max_drawdown']:.2%}, turnover {m['turnover']:.1f}/yr"
    )


if __name__ == "__main__":
    main()
