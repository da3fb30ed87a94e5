"""Section-1 market-state factors against pandas / scipy / plain-loop references.

Most checks run on a small hand-built market tree (6 stocks, 3 indices, 1,600 trading days, so
the 5-year windows produce values), chunked at 7 dates to exercise chunk edges; a few run on
the session's synthetic ``market`` fixture.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import quantdask as qd

N_DATES = 1600
ASSETS = ["600000.SH", "600001.SH", "000001.SZ", "000002.SZ", "300001.SZ", "688001.SH"]
INDICES = ["000300.SH", "000905.SH", "000985.CSI"]


def build_tree(seed: int = 1, chunk: int = 97) -> xr.DataTree:
    """A small market tree with every field the section-1 factors read."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2012-01-02", periods=N_DATES).astype("datetime64[ns]")
    n, m = N_DATES, len(ASSETS)
    raw = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0))
    # exact zero returns now and then (they break streaks)
    flat = rng.random((n, m)) < 0.03
    for t in range(1, n):
        raw[t, flat[t]] = raw[t - 1, flat[t]]
    adj = np.ones((n, m))
    adj[700:, 1] = 1.5  # a corporate action on stock 1
    adj[1200:, 3] = 1.1
    close = raw / adj  # unadjusted close drops on the ex-date
    suspended = np.zeros((n, m), dtype=bool)
    suspended[300:320, 2] = True
    suspended[1500:1503, 4] = True
    close[suspended] = np.nan
    close[:200, 5] = np.nan  # listed later
    high = close * (1 + rng.uniform(0, 0.03, (n, m)))
    low = close * (1 - rng.uniform(0, 0.03, (n, m)))
    # pre_close: previous traded close, adjusted into today's share basis
    pre_close = np.full((n, m), np.nan)
    for j in range(m):
        last = np.nan
        last_adj = np.nan
        for t in range(n):
            if not np.isnan(close[t, j]):
                pre_close[t, j] = last * last_adj / adj[t, j]
                last, last_adj = close[t, j], adj[t, j]
    traded = ~np.isnan(close)
    amount = np.where(traded, rng.uniform(1e4, 1e6, (n, m)), np.nan)
    turnover_rate = np.where(traded, rng.uniform(0.1, 8, (n, m)), np.nan)
    float_share = np.where(traded, rng.uniform(1e4, 5e5, (n, m)), np.nan)
    pe = np.where(traded, rng.uniform(5, 60, (n, m)), np.nan)
    pe[1300:1400, 0] = np.nan  # a loss-making stretch
    pb = np.where(traded, rng.uniform(-0.5, 4, (n, m)), np.nan)
    dv = np.where(traded, rng.uniform(0, 6, (n, m)), np.nan)
    daily = xr.Dataset(
        {
            "close": (("date", "asset"), close),
            "high": (("date", "asset"), high),
            "low": (("date", "asset"), low),
            "pre_close": (("date", "asset"), pre_close),
            "adj_factor": (("date", "asset"), np.where(traded, adj, np.nan)),
            "amount": (("date", "asset"), amount),
            "turnover_rate": (("date", "asset"), turnover_rate),
            "float_share": (("date", "asset"), float_share),
            "pe_ttm": (("date", "asset"), pe),
            "pb": (("date", "asset"), pb),
            "dv_ttm": (("date", "asset"), dv),
        },
        coords={"date": dates, "asset": ASSETS},
    )
    k = len(INDICES)
    iclose = 1000 * np.exp(np.cumsum(rng.normal(0, 0.012, (n, k)), axis=0))
    iclose[5:9, 0] = iclose[4, 0]  # a run of unchanged closes
    ipre = np.vstack([np.full((1, k), np.nan), iclose[:-1]])
    weight = rng.uniform(0, 1, (n, k, m)) * (rng.random((n, k, m)) < 0.6)
    weight[:, 2, :] = 1.0  # the all-share index holds everything
    weight = weight / np.maximum(weight.sum(axis=2, keepdims=True), 1e-12)
    weight[:30, 1, :] = np.nan  # index 1 starts later
    index = xr.Dataset(
        {
            "close": (("date", "index"), iclose),
            "high": (("date", "index"), iclose * (1 + rng.uniform(0, 0.02, (n, k)))),
            "low": (("date", "index"), iclose * (1 - rng.uniform(0, 0.02, (n, k)))),
            "pre_close": (("date", "index"), ipre),
            "amount": (("date", "index"), rng.uniform(1e7, 1e8, (n, k))),
            "pe_ttm": (("date", "index"), 12 + np.cumsum(rng.normal(0, 0.1, (n, k)), axis=0)),
            "pb": (("date", "index"), rng.uniform(0.8, 3, (n, k))),
            "dv_ttm": (("date", "index"), rng.uniform(1, 4, (n, k))),
            "weight": (("date", "index", "asset"), weight),
        },
        coords={"date": dates, "index": INDICES, "asset": ASSETS},
    )
    y10 = 3 + np.cumsum(rng.normal(0, 0.01, n))
    y10[30:33] = np.nan  # carried forward
    y10[60:70] = np.nan  # longer than the carry limit
    macro = xr.Dataset({"cgb_10y": ("date", y10)}, coords={"date": dates})
    return xr.DataTree.from_dict(
        {
            "daily": daily.chunk({"date": chunk, "asset": 4}),
            "index": index.chunk({"date": chunk, "asset": 4}),
            "macro": macro.chunk({"date": chunk}),
        }
    )


@pytest.fixture(scope="module")
def tree() -> xr.DataTree:
    return build_tree()


def frame(tree: xr.DataTree, node: str, field: str) -> pd.DataFrame:
    da = tree[node][field]
    return pd.DataFrame(da.values, index=da["date"].values, columns=da[da.dims[1]].values)


def price(tree: xr.DataTree, level: str, field: str) -> pd.DataFrame:
    if level == "asset":
        return frame(tree, "daily", field) * frame(tree, "daily", "adj_factor")
    return frame(tree, "index", field)


def returns(tree: xr.DataTree, level: str) -> pd.DataFrame:
    node = "daily" if level == "asset" else "index"
    return frame(tree, node, "close") / frame(tree, node, "pre_close") - 1


def value(tree: xr.DataTree, name: str, level: str, **params) -> pd.DataFrame:
    da = qd.factor(name, **params)(tree, level=level).compute()
    return pd.DataFrame(da.values, index=da["date"].values, columns=da[level].values)


def check(got: pd.DataFrame, ref: pd.DataFrame, *, min_valid: int = 10) -> None:
    ref = ref.reindex(index=got.index, columns=got.columns)
    np.testing.assert_array_equal(got.isna().to_numpy(), ref.isna().to_numpy())
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-9, atol=1e-9)
    assert np.isfinite(got.to_numpy()).sum() >= min_valid


LEVELS = ["asset", "index"]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("window", [5, 20, 250])
def test_close_vs_ma(tree, level, window):
    c = price(tree, level, "close")
    ma = c.rolling(window).mean()
    check(value(tree, "close_vs_ma", level, window=window), (c - ma) / ma * 100)


@pytest.mark.parametrize("level", LEVELS)
def test_close_vs_high_low(tree, level):
    c = price(tree, level, "close")
    hh = price(tree, level, "high").rolling(250).max()
    ll = price(tree, level, "low").rolling(250).min()
    check(value(tree, "close_vs_high", level), (c - hh) / hh * 100)
    ll60 = price(tree, level, "low").rolling(60).min()
    check(value(tree, "close_vs_low", level, window=60), (c - ll60) / ll60 * 100)
    check(value(tree, "close_vs_low", level), (c - ll) / ll * 100)


@pytest.mark.parametrize("level", LEVELS)
def test_return_moments(tree, level):
    r = returns(tree, level)
    check(value(tree, "ret_skew", level, window=60), r.rolling(60).skew())
    check(value(tree, "ret_kurt", level, window=60), r.rolling(60).kurt())
    skew = r.rolling(250).skew()
    check(value(tree, "ret_skew_vs_5y", level), skew - skew.rolling(1250).mean())
    kurt = r.rolling(250).kurt()
    check(value(tree, "ret_kurt_vs_5y", level), kurt - kurt.rolling(1250).mean())


def test_turnover_and_below_book_index(tree):
    w = tree["index"]["weight"].values
    fs = frame(tree, "daily", "float_share").to_numpy()
    tr = frame(tree, "daily", "turnover_rate").to_numpy()
    pb = frame(tree, "daily", "pb").to_numpy()
    dates = tree["index"]["date"].values
    ref_t = pd.DataFrame(np.nan, index=dates, columns=INDICES)
    ref_b = pd.DataFrame(np.nan, index=dates, columns=INDICES)
    for t in range(0, N_DATES, 37):  # plain loop reference on a sample of dates
        for i, code in enumerate(INDICES):
            members = [j for j in range(len(ASSETS)) if w[t, i, j] > 0]
            ok = [j for j in members if not np.isnan(fs[t, j]) and not np.isnan(tr[t, j])]
            if ok:
                ref_t.loc[dates[t], code] = sum(fs[t, j] * tr[t, j] for j in ok) / sum(
                    fs[t, j] for j in ok
                )
            known = [j for j in members if not np.isnan(pb[t, j])]
            if known:
                ref_b.loc[dates[t], code] = (
                    100 * sum(1 for j in known if 0 < pb[t, j] < 1) / len(known)
                )
    got_t = value(tree, "turnover", "index").iloc[::37]
    got_b = value(tree, "below_book_ratio", "index").iloc[::37]
    check(got_t, ref_t.iloc[::37])
    check(got_b, ref_b.iloc[::37])
    # index 1 has no weights before day 30: missing, not zero
    assert got_t.iloc[0]["000905.SH"] != got_t.iloc[0]["000905.SH"]


def test_asset_level_simple_fields(tree):
    check(value(tree, "turnover", "asset"), frame(tree, "daily", "turnover_rate"))
    pb = frame(tree, "daily", "pb")
    check(
        value(tree, "below_book_ratio", "asset"),
        ((pb > 0) & (pb < 1)).astype(float).mul(100).where(pb.notna()),
    )
    check(value(tree, "pe_ttm", "asset"), frame(tree, "daily", "pe_ttm"))
    check(value(tree, "dv_ttm", "index"), frame(tree, "index", "dv_ttm"))


@pytest.mark.parametrize("level", LEVELS)
def test_amount_share(tree, level):
    node = "daily" if level == "asset" else "index"
    total = frame(tree, "index", "amount")["000985.CSI"]
    check(value(tree, "amount_share", level), frame(tree, node, "amount").div(total, axis=0) * 100)


def risk_premium_ref(tree: xr.DataTree, level: str) -> pd.DataFrame:
    node = "daily" if level == "asset" else "index"
    y10 = tree["macro"]["cgb_10y"].to_pandas().ffill(limit=5)
    return (100 / frame(tree, node, "pe_ttm")).sub(y10, axis=0)


def percentile_ref(x: pd.DataFrame, window: int, min_periods: int | None = None) -> pd.DataFrame:
    """Percentile of the last value in its window: ``scipy.stats.percentileofscore(kind="mean")``.

    Checked with scipy on a sample of cells, computed for all cells with numpy sliding windows.
    """
    min_periods = window if min_periods is None else min_periods
    arr = x.to_numpy()
    pad = np.vstack([np.full((window - 1, arr.shape[1]), np.nan), arr])
    win = np.lib.stride_tricks.sliding_window_view(pad, window, axis=0)  # (t, asset, window)
    last = arr[:, :, None]
    valid = ~np.isnan(win)
    k = valid.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = 100 * ((win < last).sum(axis=2) + 0.5 * (win == last).sum(axis=2)) / k
    pct[(k < min_periods) | np.isnan(arr)] = np.nan
    rng = np.random.default_rng(0)
    for t, j in zip(rng.integers(0, len(arr), 40), rng.integers(0, arr.shape[1], 40), strict=True):
        if np.isfinite(pct[t, j]):
            ref = stats.percentileofscore(win[t, j][valid[t, j]], arr[t, j], kind="mean")
            assert abs(ref - pct[t, j]) < 1e-9
    return pd.DataFrame(pct, index=x.index, columns=x.columns)


@pytest.mark.parametrize("level", LEVELS)
def test_risk_premium_family(tree, level):
    rp = risk_premium_ref(tree, level)
    check(value(tree, "risk_premium", level), rp)
    for k in (-2, 0, 1):
        band = rp.rolling(250).mean() + k * rp.rolling(250).std()
        check(value(tree, "risk_premium_band", level, k=k), band)
    pct = percentile_ref(rp, 250)
    check(value(tree, "risk_premium_pct", level, window=250), pct)
    pct5 = percentile_ref(rp, 1250)
    sig = np.sign(pct5.gt(80).astype(float) - pct5.lt(20).astype(float)).where(pct5.notna())
    check(value(tree, "equity_bond_signal", level), sig)


@pytest.mark.parametrize("level", LEVELS)
def test_valuation_percentiles(tree, level):
    node = "daily" if level == "asset" else "index"
    pe = frame(tree, node, "pe_ttm")
    check(value(tree, "pe_ttm_pct", level, window=250), percentile_ref(pe, 250))
    check(value(tree, "pe_ttm_pct", level, window="all"), percentile_ref(pe, N_DATES, 250))
    dv = frame(tree, node, "dv_ttm")
    check(value(tree, "dv_ttm_pct", level, window=60), percentile_ref(dv, 60))


def streak_ref(close: pd.DataFrame, pre_close: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Plain-loop streak of period-to-date bars (calendar periods of the trading dates).

    A bar's move is the product of the raw daily ratios ``close / pre_close`` since the last
    completed bar's last traded day; a relative move within 1e-9 is unchanged. Days with a
    close but no ratio show NaN and move nothing.
    """
    idx = pd.DatetimeIndex(close.index)
    if freq == "D":
        period = np.arange(len(idx))
    else:
        period = idx.to_period({"W": "W", "M": "M", "Q": "Q", "Y": "Y"}[freq]).asi8
    out = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    c_arr, p_arr = close.to_numpy(), pre_close.reindex_like(close).to_numpy()
    for j in range(c_arr.shape[1]):
        bars: list[tuple[int, float]] = []  # (period, growth at its last traded day)
        streaks: list[float] = []
        growth = 1.0
        for t in range(c_arr.shape[0]):
            if np.isnan(c_arr[t, j]):
                continue
            ratio = c_arr[t, j] / p_arr[t, j]
            known = bool(np.isfinite(ratio) and ratio > 0)
            growth *= ratio if known else 1.0
            if bars and bars[-1][0] == period[t]:
                bars.pop()
                streaks.pop()
            if not bars:
                s = np.nan
            else:
                move = growth / bars[-1][1] - 1.0
                prev = streaks[-1]
                if move > 1e-9:
                    s = prev + 1 if prev > 0 else 1.0
                elif move < -1e-9:
                    s = prev - 1 if prev < 0 else -1.0
                else:
                    s = 0.0
            bars.append((period[t], growth))
            streaks.append(s)
            if known:
                out.iloc[t, j] = s
    return out


def streak_inputs(tree: xr.DataTree, level: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    node = "daily" if level == "asset" else "index"
    return frame(tree, node, "close"), frame(tree, node, "pre_close")


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("freq", ["D", "W", "M", "Q", "Y"])
def test_streak(tree, level, freq):
    check(value(tree, "streak", level, freq=freq), streak_ref(*streak_inputs(tree, level), freq))


def test_bad_params(tree):
    with pytest.raises(ValueError, match="freq"):
        qd.factor("streak", freq="H")
    with pytest.raises(ValueError, match="window"):
        qd.factor("close_vs_ma", window=0)
    with pytest.raises(ValueError, match="'all'"):
        qd.factor("pe_ttm_pct", window="max")
    no_macro = xr.DataTree.from_dict({"daily": tree["daily"].to_dataset()})
    with pytest.raises(ValueError, match="cgb_10y"):
        qd.factor("risk_premium")(no_macro)
    with pytest.raises(ValueError, match="index/weight"):
        qd.factor("turnover")(no_macro, level="index")


def test_streak_frequencies_in_one_graph(tree):
    """Streaks of several frequencies computed together keep their own values."""
    fs = [qd.factor("streak", freq=f) for f in ("D", "W", "M")]
    dates = tree["index"]["date"].values
    ds = qd.compute(tree, fs, start=dates[1000], level="index").compute()
    for f in fs:
        ref = streak_ref(*streak_inputs(tree, "index"), f.params["freq"]).iloc[1000:]
        got = ds[f.variable].to_pandas()
        check(got, ref)


# -- item 6: up/down from the vendor's close vs pre_close, not adjusted closes ----------------
# Two stocks with the same raw prices; on day 5 (Monday of week 2) a 0.20 dividend goes ex:
# pre_close 9.80 after a 10.00 close, and the stock closes unchanged at 9.80. Stock 0's
# adjustment factor is the exact chain prev_close / pre_close = 10 / 9.8, so its adjusted
# close 9.8 * (10 / 9.8) is 10 + 1 ulp; stock 1's vendor factor is rounded to 1.020, so its
# adjusted close is 9.996. Both days are unchanged (streak 0), and so is week 2 as a bar.
EX_CLOSE = [9.0, 9.2, 9.4, 9.6, 9.8, 10.0, 9.8, 9.9, 9.8, 9.8, 9.8, 9.7, 9.9, 9.9, 10.0, 10.0]
EX_PRE = [8.9, 9.0, 9.2, 9.4, 9.6, 9.8, 9.8, 9.8, 9.9, 9.8, 9.8, 9.8, 9.7, 9.9, 9.9, 10.0]


def _ex_dividend_tree(chunk: int) -> xr.DataTree:
    # dates: Friday 2023-12-29, then Monday 2024-01-01 .. Friday 2024-01-19 (3 full weeks)
    dates = pd.DatetimeIndex(["2023-12-29", *pd.bdate_range("2024-01-01", periods=15)])
    close = np.array(EX_CLOSE)
    pre = np.array(EX_PRE)
    ex = 6  # Monday 2024-01-08
    adj = np.ones((len(dates), 2))
    adj[ex:, 0] = 10.0 / 9.8
    adj[ex:, 1] = 1.020
    assert close[ex] * adj[ex, 0] > close[ex - 1] * adj[ex - 1, 0]  # 1 ulp above
    assert close[ex] * adj[ex, 1] < close[ex - 1] * adj[ex - 1, 1]
    daily = xr.Dataset(
        {
            "close": (("date", "asset"), np.c_[close, close]),
            "pre_close": (("date", "asset"), np.c_[pre, pre]),
            "adj_factor": (("date", "asset"), adj),
        },
        coords={"date": dates.astype("datetime64[ns]"), "asset": ["600000.SH", "600001.SH"]},
    ).chunk({"date": chunk})
    return xr.DataTree.from_dict({"daily": daily})


#: Expected streaks (hand-computed): daily from each row's close vs pre_close; weekly from
#: the week so far vs the last week's close (compounded raw returns; week 0 is the Friday).
EX_STREAK_D = [np.nan, 1, 2, 3, 4, 5, 0, 1, -1, 0, 0, -1, 1, 0, 1, 0]
EX_STREAK_W = [np.nan, 1, 1, 1, 1, 1, 0, 2, 0, 0, 0, -1, 1, 1, 1, 1]


@pytest.mark.parametrize("chunk", [3, 16])
@pytest.mark.parametrize(("freq", "expected"), [("D", EX_STREAK_D), ("W", EX_STREAK_W)])
def test_streak_ex_dividend_unchanged_day(chunk, freq, expected):
    got = qd.factor("streak", freq=freq)(_ex_dividend_tree(chunk)).values
    ref = np.array(expected, dtype=float)
    np.testing.assert_array_equal(got[:, 0], ref)
    np.testing.assert_array_equal(got[:, 1], ref)


def test_streak_through_compute_from_a_later_start():
    """compute() with a start after the ex-date gives the same values (all history read)."""
    from quantdask.testing import raise_if_dask_computes

    tree = _ex_dividend_tree(4)
    dates = tree["daily"]["date"].values
    with raise_if_dask_computes():  # building the graph reads nothing
        ds = qd.compute(tree, [qd.factor("streak", freq=f) for f in ("D", "W")], start=dates[8])
    np.testing.assert_array_equal(ds["streak_D"].values[:, 0], EX_STREAK_D[8:])
    np.testing.assert_array_equal(ds["streak_W"].values[:, 1], EX_STREAK_W[8:])
