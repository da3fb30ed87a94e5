"""The expression core against independent references written here.

* Every operator under ``semantics="strict"`` against a direct numpy / pandas / scipy
  computation per asset column (``rolling(window).apply`` over full windows, ``shift``,
  ``ewm``, ``np.polyfit``, ``scipy.stats.linregress``, ``percentileofscore``, ...).
* ``semantics="qlib"`` against pandas ``rolling(window, min_periods=1)`` on each
  instrument's span (qlib has no rows before listing or after the last bar), with qlib's
  ``IdxMax``, ``WMA``, ``Corr`` guard and comparisons.
* Lookbacks derived from the tree: by hand, and "enough and not more" on random trees.
* One graph: each chunk of an input read once from a counting zarr store, common
  subexpressions once, nothing computed while the graph is built.
* Registered expression factors, labels and missing inputs.

The panel is hand-made: suspensions (NaN), a late listing and an early delisting, ties, and
a column whose level jumps between ~1e-3 and ~1e6 and back.
"""

from __future__ import annotations

import random
from collections import Counter

import dask
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr
import zarr
import zarr.storage

import quantdask as qd
from quantdask.expression import Field, count_nodes, evaluate, parse
from quantdask.expression import nodes as N
from quantdask.expression import window as W
from quantdask.io.store import zarr_quiet

N_DATES = 60
ASSETS = ["A", "B", "C", "D", "E"]


def _panel() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(12)
    n = N_DATES
    walk = np.exp(np.cumsum(rng.normal(0, 0.02, (n, len(ASSETS))), axis=0))
    close = 10.0 * walk
    close[[8, 20, 21, 22, 41], 1] = np.nan  # B: suspensions
    level = np.where((np.arange(n) >= 20) & (np.arange(n) < 40), 1e6, 1e-3)
    close[:, 2] = level * walk[:, 2]  # C: ~1e-3, ~1e6, ~1e-3
    close[:7, 3] = np.nan  # D: listed on row 7
    close[25:31, 3] = np.nan  # D: a six-day suspension
    close[54:, 3] = np.nan  # D: last bar on row 53
    close[:, 4] = np.tile([1.0, 3.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 2.0, 2.0], n // 10)  # E: ties
    close[33, 4] = np.nan
    missing = np.isnan(close)
    high = close * (1.0 + rng.uniform(0.0, 0.03, close.shape))
    vol = rng.uniform(1e3, 1e5, close.shape)
    vol[missing] = np.nan
    vol[12:18, 0] = 5e4  # A: a flat volume stretch (qlib's Corr guard)
    pre = np.vstack([close[:1], close[:-1]])
    adj = np.ones_like(close)
    adj[30:, 0] = 1.5  # A: an adjustment event (qlib's $close is adjusted)
    amount = close * vol / 10.0
    return {
        "close": close,
        "high": high,
        "vol": vol,
        "pre_close": pre,
        "adj_factor": adj,
        "amount": amount,
    }


def _dataset(chunks: dict[str, int] | None = None) -> xr.Dataset:
    dates = pd.bdate_range("2021-01-04", periods=N_DATES)
    ds = xr.Dataset(
        {k: (("date", "asset"), v) for k, v in _panel().items()},
        coords={"date": dates, "asset": ASSETS},
    )
    return ds.chunk(chunks or {"date": 25, "asset": 3})


def build_market() -> xr.DataTree:
    return xr.DataTree.from_dict({"daily": _dataset()})


@pytest.fixture(scope="module")
def market() -> xr.DataTree:
    return build_market()


def frame(market: xr.DataTree, field: str) -> pd.DataFrame:
    return market["daily"][field].to_pandas()


def via_compute(market: xr.DataTree, formula: str, **kw) -> pd.DataFrame:
    ds = qd.compute(market, [qd.expr(formula, name="x", **kw)])
    return ds["x"].to_pandas()


def via_evaluate(market: xr.DataTree, formula: str, semantics: str = "strict") -> pd.DataFrame:
    out = evaluate({"x": parse(formula)}, market, semantics=semantics)
    return out["x"].to_pandas()


def check(got: pd.DataFrame, want: pd.DataFrame, rtol: float, atol: float = 0.0) -> None:
    """Same NaN cells and values within tolerance, column by column (each on its own scale)."""
    want = want.astype(np.float64)
    assert list(got.columns) == list(want.columns)
    for col in want.columns:
        g, w = got[col].to_numpy(), want[col].to_numpy()
        bad = np.flatnonzero(np.isnan(g) != np.isnan(w))
        assert bad.size == 0, (
            f"{col}: NaN differs at rows {bad.tolist()}: got {g[bad]} want {w[bad]}"
        )
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=col)
    assert np.isfinite(got.to_numpy()).sum() >= 10  # the comparison is not vacuous


# --------------------------------------------------------------------------------------
# strict references (per column, full windows only)
# --------------------------------------------------------------------------------------


def roll(df: pd.DataFrame, w: int, fn) -> pd.DataFrame:
    """``fn`` over every full window (pandas calls it only when all ``w`` rows are valid)."""
    return df.rolling(w).apply(fn, raw=True)


def roll2(x: pd.DataFrame, y: pd.DataFrame, w: int, fn) -> pd.DataFrame:
    """``fn(xw, yw)`` where both windows are fully valid."""
    out = pd.DataFrame(np.nan, index=x.index, columns=x.columns)
    for col in x.columns:
        a, b = x[col].to_numpy(), y[col].to_numpy()
        for t in range(w - 1, len(a)):
            xa, yb = a[t - w + 1 : t + 1], b[t - w + 1 : t + 1]
            if np.isfinite(xa).all() and np.isfinite(yb).all():
                out.iloc[t, out.columns.get_loc(col)] = fn(xa, yb)
    return out


def _slope(w: np.ndarray) -> float:
    return np.polyfit(np.arange(len(w)), w, 1)[0]


def _resi(w: np.ndarray) -> float:
    t = np.arange(len(w))
    return w[-1] - np.polyval(np.polyfit(t, w, 1), t[-1])


def _rsq(w: np.ndarray) -> float:
    return scipy.stats.linregress(np.arange(len(w)), w).rvalue ** 2


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return np.nan
    return np.corrcoef(a, b)[0, 1]


def _nan_where_missing(out: pd.DataFrame, *inputs: pd.DataFrame) -> pd.DataFrame:
    for x in inputs:
        out = out.where(x.notna())
    return out


# (formula, reference(c, v, h)) with c = close, v = vol, h = high as DataFrames
STRICT = {
    "Mean": ("Mean($close, 5)", lambda c, v, h: roll(c, 5, np.mean)),
    "Sum": ("Sum($close, 7)", lambda c, v, h: roll(c, 7, np.sum)),
    "Std": ("Std($close, 6)", lambda c, v, h: roll(c, 6, lambda w: np.std(w, ddof=1))),
    "Var": ("Var($close, 6)", lambda c, v, h: roll(c, 6, lambda w: np.var(w, ddof=1))),
    "Skew": (
        "Skew($close, 10)",
        lambda c, v, h: roll(c, 10, lambda w: scipy.stats.skew(w, bias=False)),
    ),
    "Kurt": (
        "Kurt($close, 10)",
        lambda c, v, h: roll(c, 10, lambda w: scipy.stats.kurtosis(w, bias=False)),
    ),
    "Max": ("Max($high, 5)", lambda c, v, h: roll(h, 5, np.max)),
    "Min": ("Min($close, 5)", lambda c, v, h: roll(c, 5, np.min)),
    "Med": ("Med($close, 6)", lambda c, v, h: roll(c, 6, np.median)),
    "Quantile": (
        "Quantile($close, 7, 0.3)",
        lambda c, v, h: roll(c, 7, lambda w: np.quantile(w, 0.3)),
    ),
    "Mad": ("Mad($close, 6)", lambda c, v, h: roll(c, 6, lambda w: np.mean(np.abs(w - w.mean())))),
    "Count": (
        "Count($close, 5)",
        lambda c, v, h: c.notna().astype(float).rolling(5).sum(),
    ),
    "Rank": (
        "Rank($close, 6)",
        lambda c, v, h: roll(
            c, 6, lambda w: scipy.stats.percentileofscore(w, w[-1], kind="rank") / 100
        ),
    ),
    "Percentile": (
        "Percentile($close, 6)",
        lambda c, v, h: roll(c, 6, lambda w: scipy.stats.percentileofscore(w, w[-1], kind="mean")),
    ),
    # 1-based position from the oldest row, ties to the most recent row
    "IdxMax": ("IdxMax($close, 5)", lambda c, v, h: roll(c, 5, lambda w: 5 - np.argmax(w[::-1]))),
    "IdxMin": ("IdxMin($close, 5)", lambda c, v, h: roll(c, 5, lambda w: 5 - np.argmin(w[::-1]))),
    "WMA": (
        "WMA($close, 5)",
        lambda c, v, h: roll(c, 5, lambda w: np.average(w, weights=np.arange(1, 6))),
    ),
    "EMA": ("EMA($close, 4)", lambda c, v, h: c.ewm(span=4, adjust=True, min_periods=4).mean()),
    "Slope": ("Slope($close, 8)", lambda c, v, h: roll(c, 8, _slope)),
    "Rsquare": ("Rsquare($close, 8)", lambda c, v, h: roll(c, 8, _rsq)),
    "Resi": ("Resi($close, 8)", lambda c, v, h: roll(c, 8, _resi)),
    "Corr": ("Corr($close, $vol, 6)", lambda c, v, h: roll2(c, v, 6, _corr)),
    "Cov": (
        "Cov($close, $vol, 6)",
        lambda c, v, h: roll2(c, v, 6, lambda a, b: np.cov(a, b)[0, 1]),
    ),
    "Ref": ("Ref($close, 3)", lambda c, v, h: c.shift(3)),
    "Delta": ("Delta($close, 2)", lambda c, v, h: c - c.shift(2)),
    "FFill": ("FFill($close, 2)", lambda c, v, h: c.ffill(limit=2)),
    "PercentileAll": (
        "PercentileAll($close, 20)",
        lambda c, v, h: c.expanding(20).apply(
            lambda w: (
                scipy.stats.percentileofscore(w[np.isfinite(w)], w[-1], kind="mean")
                if np.isfinite(w[-1])
                else np.nan
            ),
            raw=True,
        ),
    ),
    "Neg": ("-$close", lambda c, v, h: -c),
    "Add": ("$close + $high", lambda c, v, h: c + h),
    "Sub": ("$close - $high", lambda c, v, h: c - h),
    "Mul": ("$close * $vol", lambda c, v, h: c * v),
    "Div": ("$close / $high", lambda c, v, h: c / h),
    "Power": ("Power($close, 0.5)", lambda c, v, h: c**0.5),
    "Abs": ("Abs(Delta($close, 1))", lambda c, v, h: (c - c.shift(1)).abs()),
    "Sign": ("Sign(Delta($close, 1))", lambda c, v, h: np.sign(c - c.shift(1))),
    "Log": ("Log($close - 10)", lambda c, v, h: np.log((c - 10).where(c > 10))),
    "Greater": ("Greater($close, Ref($close, 1))", lambda c, v, h: np.maximum(c, c.shift(1))),
    "Less": ("Less($close, Ref($close, 1))", lambda c, v, h: np.minimum(c, c.shift(1))),
    "Gt": (
        "$close > Ref($close, 1)",
        lambda c, v, h: _nan_where_missing((c > c.shift(1)).astype(float), c, c.shift(1)),
    ),
    "Ge": (
        "$close >= Ref($close, 1)",
        lambda c, v, h: _nan_where_missing((c >= c.shift(1)).astype(float), c, c.shift(1)),
    ),
    "Lt": (
        "$close < Ref($close, 1)",
        lambda c, v, h: _nan_where_missing((c < c.shift(1)).astype(float), c, c.shift(1)),
    ),
    "Le": (
        "$close <= Ref($close, 1)",
        lambda c, v, h: _nan_where_missing((c <= c.shift(1)).astype(float), c, c.shift(1)),
    ),
    "Eq": (
        "$close == Ref($close, 1)",
        lambda c, v, h: _nan_where_missing((c == c.shift(1)).astype(float), c, c.shift(1)),
    ),
    "Ne": (
        "$close != Ref($close, 1)",
        lambda c, v, h: _nan_where_missing((c != c.shift(1)).astype(float), c, c.shift(1)),
    ),
    "And": (
        "($close > 2) & ($vol > 5e4)",
        lambda c, v, h: _nan_where_missing(((c > 2) & (v > 5e4)).astype(float), c, v),
    ),
    "Or": (
        "($close > 2) | ($vol > 5e4)",
        lambda c, v, h: _nan_where_missing(((c > 2) | (v > 5e4)).astype(float), c, v),
    ),
    "Not": ("Not($close > 2)", lambda c, v, h: _nan_where_missing((c <= 2).astype(float), c)),
    "If": (
        "If($close > Ref($close, 1), $high, -$vol)",
        lambda c, v, h: pd.DataFrame(
            np.where(c > c.shift(1), h, -v), index=c.index, columns=c.columns
        ).where(c.notna() & c.shift(1).notna()),
    ),
}

# moments over windows mixing 1e6 and 1e-3 values lose digits in any algorithm's last
# steps (and in the references'): relative tolerance per operator
RTOL = {"Skew": 1e-6, "Kurt": 1e-6, "Slope": 1e-7, "Rsquare": 1e-7, "Resi": 1e-6, "Corr": 1e-8}
# a slope / residual of exactly 0 (the ties column) is ~1e-16 in np.polyfit
ATOL = {"Slope": 1e-12, "Resi": 1e-12, "Rsquare": 1e-12}


def test_strict_table_covers_every_operator():
    assert set(STRICT) == set(N.OPERATORS)


@pytest.mark.parametrize("op", sorted(STRICT))
def test_strict_operator_matches_reference(market, op):
    formula, ref = STRICT[op]
    c, v, h = frame(market, "close"), frame(market, "vol"), frame(market, "high")
    with np.errstate(all="ignore"):
        want = ref(c, v, h)
    rtol, atol = RTOL.get(op, 1e-9), ATOL.get(op, 0.0)
    got = via_compute(market, formula)
    check(got, want, rtol=rtol, atol=atol)
    check(via_evaluate(market, formula), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    ("formula", "ref"),
    [
        ("$close / ($close - $close)", lambda c: c / (c - c)),
        ("Log($close - 10)", lambda c: np.log((c - 10).where(c > 10))),
        ("Power($close - 10, 0.5)", lambda c: (c - 10) ** 0.5),
        ("Log($close - 10)", None),
    ],
)
def test_undefined_values_compute_without_numpy_warnings(market, formula, ref, recwarn):
    """Division by 0, logs and roots of negatives give inf / NaN quietly when computed (an
    ``np.errstate`` around building a lazy graph does not cover its computation)."""
    c = frame(market, "close")
    semantics = "qlib" if ref is None else "strict"
    got = via_compute(market, formula, semantics=semantics)
    runtime = [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert not runtime, [str(w.message) for w in runtime]
    if ref is not None:
        with np.errstate(all="ignore"):
            want = ref(c)
        np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


def test_strict_level_jump_column_is_exact_after_the_jump(market):
    """After 20 rows at ~1e6, windows at ~1e-3 are as accurate as on their own."""
    c = frame(market, "close")[["C"]]
    tail = c.iloc[40:]
    for formula, fn in [
        ("Std($close, 5)", lambda w: np.std(w, ddof=1)),
        ("Mean($close, 5)", np.mean),
        ("Skew($close, 5)", lambda w: scipy.stats.skew(w, bias=False)),
        ("Slope($close, 5)", _slope),
        ("Mad($close, 5)", lambda w: np.mean(np.abs(w - w.mean()))),
    ]:
        got = via_compute(market, formula)[["C"]].iloc[44:]
        want = roll(tail, 5, fn).iloc[4:]
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-7, err_msg=formula)


# --------------------------------------------------------------------------------------
# qlib references: pandas rolling(window, min_periods=1) on each instrument's span
# --------------------------------------------------------------------------------------


def qlib_inputs(market: xr.DataTree) -> dict[str, pd.DataFrame]:
    """qlib's view: adjusted prices as float32 (values cast back to float64)."""
    d = market["daily"].to_dataset()
    adj = d["adj_factor"]

    def f32(x: xr.DataArray) -> pd.DataFrame:
        return x.astype(np.float32).astype(np.float64).to_pandas()

    return {"close": f32(d["close"] * adj), "high": f32(d["high"] * adj), "vol": f32(d["vol"])}


def per_span(close: pd.DataFrame, fn, *others: pd.DataFrame) -> pd.DataFrame:
    """``fn(series, *other series)`` on each column restricted to its span (first to last
    valid close), NaN outside: qlib's instruments have rows only there."""
    out = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    for col in close.columns:
        valid = close[col].notna().to_numpy()
        lo, hi = np.flatnonzero(valid)[[0, -1]]
        span = [s[col].iloc[lo : hi + 1] for s in (close, *others)]
        out.iloc[lo : hi + 1, out.columns.get_loc(col)] = fn(*span).to_numpy()
    return out


def _qlib_idx(ext):
    return lambda s: s.rolling(5, min_periods=1).apply(lambda w: ext(w) + 1, raw=True)


def _qlib_wma(w: np.ndarray) -> float:
    weights = np.arange(len(w)) + 1.0
    weights /= weights.sum()
    return np.nanmean(weights * w)


def _qlib_rank(w: np.ndarray) -> float:
    if np.isnan(w[-1]):
        return np.nan
    v = w[~np.isnan(w)]
    return scipy.stats.percentileofscore(v, v[-1], kind="rank") / 100


def _qlib_corr(x: pd.Series, y: pd.Series) -> pd.Series:
    out = x.rolling(6, min_periods=1).corr(y)
    flat = np.isclose(x.rolling(6, min_periods=1).std(), 0, atol=2e-5) | np.isclose(
        y.rolling(6, min_periods=1).std(), 0, atol=2e-5
    )
    return out.where(~flat)


def _cmp(op):
    return lambda a, b: op(a, b).astype(float)  # numpy: False on NaN


QLIB = {
    "Mean": ("Mean($close, 5)", lambda s: s.rolling(5, min_periods=1).mean()),
    "Sum": ("Sum($close, 5)", lambda s: s.rolling(5, min_periods=1).sum()),
    "Std": ("Std($close, 5)", lambda s: s.rolling(5, min_periods=1).std()),
    "Var": ("Var($close, 5)", lambda s: s.rolling(5, min_periods=1).var()),
    "Max": ("Max($close, 5)", lambda s: s.rolling(5, min_periods=1).max()),
    "Min": ("Min($close, 5)", lambda s: s.rolling(5, min_periods=1).min()),
    "Med": ("Med($close, 5)", lambda s: s.rolling(5, min_periods=1).median()),
    "Quantile": ("Quantile($close, 5, 0.8)", lambda s: s.rolling(5, min_periods=1).quantile(0.8)),
    "Count": ("Count($close, 5)", lambda s: s.rolling(5, min_periods=1).count()),
    "Ref": ("Ref($close, 2)", lambda s: s.shift(2)),
    "Delta": ("Delta($close, 2)", lambda s: s - s.shift(2)),
    "EMA": ("EMA($close, 5)", lambda s: s.ewm(span=5, adjust=True, min_periods=1).mean()),
    "IdxMax": ("IdxMax($close, 5)", _qlib_idx(np.argmax)),
    "IdxMin": ("IdxMin($close, 5)", _qlib_idx(np.argmin)),
    "WMA": ("WMA($close, 5)", lambda s: s.rolling(5, min_periods=1).apply(_qlib_wma, raw=True)),
    "Rank": ("Rank($close, 5)", lambda s: s.rolling(5, min_periods=1).apply(_qlib_rank, raw=True)),
    "Corr": ("Corr($close, $vol, 6)", "corr"),
    "Gt": ("$close > Ref($close, 1)", lambda s: _cmp(np.greater)(s, s.shift(1))),
    "Le": ("$close <= Ref($close, 1)", lambda s: _cmp(np.less_equal)(s, s.shift(1))),
    "Eq": ("$close == Ref($close, 1)", lambda s: _cmp(np.equal)(s, s.shift(1))),
    "Mean of Gt": (
        "Mean($close > Ref($close, 1), 3)",
        lambda s: _cmp(np.greater)(s, s.shift(1)).rolling(3, min_periods=1).mean(),
    ),
    "And": (
        "($close > 2) & ($close < 10)",
        lambda s: ((s > 2) & (s < 10)).astype(float),
    ),
    "Not": ("Not($close > 2)", lambda s: (~(s > 2)).astype(float)),
}


@pytest.mark.parametrize("op", list(QLIB))
def test_qlib_operator_matches_pandas_on_the_span(market, op):
    formula, ref = QLIB[op]
    q = qlib_inputs(market)
    with np.errstate(all="ignore"):
        if ref == "corr":
            want = per_span(q["close"], _qlib_corr, q["vol"])
        else:
            want = per_span(q["close"], ref)
    got = via_compute(market, formula, semantics="qlib")
    check(got, want, rtol=1e-6, atol=1e-12)
    check(via_evaluate(market, formula, semantics="qlib"), want, rtol=1e-6, atol=1e-12)
    in_memory = xr.DataTree.from_dict({"daily": market["daily"].to_dataset().compute()})
    check(via_evaluate(in_memory, formula, semantics="qlib"), want, rtol=1e-6, atol=1e-12)


def test_qlib_reference_sees_the_cases(market):
    """The hand-made panel exercises what the qlib rules are about."""
    q = qlib_inputs(market)
    d = q["close"]["D"]
    assert d.iloc[25:31].isna().all()  # a suspension longer than the 5-row windows
    e = q["close"]["E"].iloc[:5].to_numpy()
    assert (e == e.max()).sum() == 2  # ties inside one window
    flat = q["vol"]["A"].rolling(6, min_periods=1).std()
    assert (np.isclose(flat, 0, atol=2e-5)).any()  # Corr's guard fires


def test_qlib_idxmax_small_cases():
    """np.argmax on the raw window within the span: NaN is the extreme, ties to the oldest."""
    dates = pd.bdate_range("2021-01-04", periods=8)
    close = np.array([[np.nan], [1.0], [3.0], [np.nan], [3.0], [2.0], [2.0], [np.nan]])
    ds = xr.Dataset(
        {"close": (("date", "asset"), close), "adj_factor": (("date", "asset"), close * 0 + 1)},
        coords={"date": dates, "asset": ["X"]},
    )
    m = xr.DataTree.from_dict({"daily": ds})
    got = via_compute(m, "IdxMax($close, 3)", semantics="qlib")["X"].to_numpy()
    span = [[1.0], [1, 3], [1, 3, np.nan], [3, np.nan, 3], [np.nan, 3, 2], [3, 2, 2]]
    want = [np.nan, *(np.argmax(w) + 1 for w in span), np.nan]
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------------------
# lookbacks
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "lookback"),
    [
        ("$close", 0),
        ("5", 0),
        ("$close / $open - 1", 0),
        ("Ref($close, 3)", 3),
        ("Mean(Ref($close, 3), 5)", 7),
        ("Corr($close, Mean($vol, 10), 20)", 28),
        ("Corr(Mean($close, 10), Ref($vol, 4), 20)", 28),
        ("Mean($close, 5) / Std(Delta($close, 1), 20)", 20),
        ("Rank(Slope($close, 10), 5) + Ref($high, 2)", 13),
        ("Quantile(Max($close, 3), 4, 0.5)", 5),
        ("If($close > Ref($close, 7), Sum($vol, 2), 0)", 7),
        ("FFill(Ref($close, 1), 5)", 6),
        ("Delta(Delta($close, 1), 1)", 2),
        ("Mean(Mean(Mean($close, 2), 2), 2)", 3),
    ],
)
def test_lookback_by_hand(formula, lookback):
    assert parse(formula).lookback == lookback
    assert qd.expr(formula, name="x").lookback == lookback


def test_ema_lookback_brings_the_omitted_weight_below_tolerance():
    from quantdask.ops.ts import EWM_WEIGHT_TOL

    for span in (2, 5, 12, 60):
        lb = parse(f"EMA($close, {span})").lookback
        decay = 1 - 2 / (span + 1)
        assert decay**lb < EWM_WEIGHT_TOL <= decay ** (lb - 1)
        assert parse(f"Ref(EMA($close, {span}), 2)").lookback == lb + 2
        assert parse(f"EMA(Mean($close, 3), {span})").lookback == lb + 2


def test_unbounded_lookback_propagates():
    e = parse("Mean(PercentileAll($close, 5), 3)")
    assert e.lookback >= N.UNBOUNDED
    assert qd.expr(e, name="x").lookback >= N.UNBOUNDED


_WINDOWED = [W.Mean, W.Sum, W.Std, W.Max, W.Min, W.Med, W.Mad, W.Rank, W.WMA, W.Slope, W.Resi]
_WINDOWED += [W.IdxMax, W.Skew]


def random_expr(rng: random.Random, depth: int) -> N.Expr:
    """A random causal tree over $close / $vol / $high with strict windows."""
    if depth == 0:
        return Field(rng.choice(["close", "vol", "high"]))
    kind = rng.random()
    if kind < 0.55:
        cls = rng.choice(_WINDOWED)
        return cls(random_expr(rng, depth - 1), rng.randint(2, 6))
    if kind < 0.7:
        return W.Ref(random_expr(rng, depth - 1), rng.randint(1, 4))
    if kind < 0.8:
        cls = rng.choice([W.Corr, W.Cov])
        return cls(random_expr(rng, depth - 1), random_expr(rng, depth - 1), rng.randint(3, 6))
    if kind < 0.9:
        return W.Delta(random_expr(rng, depth - 1), rng.randint(1, 3))
    cls = rng.choice([N.Add, N.Sub, N.Mul, N.Div])
    return cls(random_expr(rng, depth - 1), random_expr(rng, depth - 1))


def _lookback_market() -> xr.DataTree:
    """No NaN (so every window is valid and one row less of history shows)."""
    ds = _dataset()
    ds = ds.isel(asset=[0, 2, 4])
    for k in ds.data_vars:
        ds[k] = ds[k].fillna(1.0)
    ds["close"] = ds["close"] + xr.DataArray(np.arange(N_DATES) % 7 * 0.1, dims="date")
    return xr.DataTree.from_dict({"daily": ds})


@pytest.mark.parametrize("seed", range(12))
def test_lookback_is_enough_and_not_more(seed):
    rng = random.Random(seed)
    tree = random_expr(rng, rng.randint(1, 3))
    if tree.lookback == 0:
        tree = W.Mean(tree, 3)
    m = _lookback_market()
    dates = m["daily"].to_dataset().indexes["date"]
    lb = tree.lookback
    i0 = min(lb + 3, N_DATES - 5)
    assert lb < i0
    f = qd.expr(tree, name="x")
    whole = qd.compute(m, [f])["x"].isel(date=slice(i0, None))
    # only `lookback` rows before start: the same values
    trimmed = m.sel(date=slice(dates[i0 - lb], None))
    part = qd.compute(trimmed, [f], start=dates[i0])["x"]
    xr.testing.assert_allclose(part, whole, rtol=1e-9)
    assert np.isfinite(whole.isel(date=0).values).any()
    # one row less: the first date changes (NaN where a strict window runs out)
    short = m.sel(date=slice(dates[i0 - lb + 1], None))
    first = qd.compute(short, [f], start=dates[i0])["x"].isel(date=0).values
    expect = whole.isel(date=0).values
    assert not np.array_equal(first, expect, equal_nan=True), tree.formula()


def test_compute_with_start_reads_only_the_lookback(market):
    """qd.compute(start=) slices the market to lookback rows before start itself."""
    f = qd.expr("Corr($close, Mean($vol, 10), 20) + Ref($high, 4)", name="x")
    dates = market["daily"].to_dataset().indexes["date"]
    start = dates[40]
    whole = qd.compute(market, [f])["x"].sel(date=slice(start, None))
    part = qd.compute(market, [f], start=start)
    xr.testing.assert_allclose(part["x"], whole)
    graph = dict(part.__dask_graph__())
    sizes = [v.shape[0] for v in graph.values() if isinstance(v, np.ndarray) and v.ndim == 2]
    assert not sizes or max(sizes) <= 25


def test_ema_start_equals_whole_history_within_the_tolerance():
    m = _lookback_market()
    dates = m["daily"].to_dataset().indexes["date"]
    f = qd.expr("EMA($close, 3)", name="x")
    lb = f.lookback
    whole = qd.compute(m, [f])["x"].isel(date=slice(lb, None))
    part = qd.compute(m.sel(date=slice(dates[0 + 1], None)), [f], start=dates[lb])["x"]
    xr.testing.assert_allclose(part, whole, rtol=1e-5)


# --------------------------------------------------------------------------------------
# one graph: each chunk read once, common subexpressions once, nothing computed
# --------------------------------------------------------------------------------------


class CountingStore(zarr.storage.LocalStore):
    """A local zarr v3 store counting ``get`` calls per key."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.counts: Counter[str] = Counter()

    async def get(self, key, prototype, byte_range=None):
        self.counts[key] += 1
        return await super().get(key, prototype, byte_range)

    def with_read_only(self, read_only: bool = False):  # keep counting through reopen
        return self


@pytest.fixture(scope="module")
def counting_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("counting") / "market.zarr"
    ds = _dataset({"date": 20, "asset": 2})
    ds = ds.assign_coords(asset=ds.indexes["asset"].astype(object))
    with zarr_quiet():
        xr.DataTree.from_dict({"daily": ds}).to_zarr(path, zarr_format=3, consolidated=True)
    return path


def _chunk_reads(store: CountingStore, field: str) -> Counter[str]:
    prefix = f"daily/{field}/c/"
    return Counter({k: n for k, n in store.counts.items() if k.startswith(prefix)})


def test_thirty_windowed_ops_read_each_close_chunk_once(counting_store):
    store = CountingStore(counting_store, read_only=True)
    m = xr.open_datatree(store, engine="zarr", chunks={})
    store.counts.clear()
    formulas = []
    for w in (2, 3, 5, 10, 20):
        for op in ("Mean", "Std", "Max", "Min", "Rank", "Slope"):
            formulas.append(f"{op}($close, {w}) / $close")
    assert len(formulas) == 30
    fs = [qd.expr(t, name=f"f{i}") for i, t in enumerate(formulas)]
    ds = qd.compute(m, fs)
    assert not _chunk_reads(store, "close")  # building the graph reads no chunk
    ds.compute(scheduler="sync")
    reads = _chunk_reads(store, "close")
    n_chunks = 3 * 3  # 60 dates / 20, 5 assets / 2
    assert len(reads) == n_chunks, sorted(reads)
    assert set(reads.values()) == {1}, reads
    assert not _chunk_reads(store, "vol")  # fields no expression reads are not read


def test_common_subexpressions_appear_once_in_the_graph(market):
    shared = "Mean($close, 5)"
    formulas = [f"{shared} / $close", f"{shared} - Std($close, 5)", f"Ref({shared}, 1)"]
    trees = [parse(t) for t in formulas]
    total, distinct = count_nodes(trees)
    # sizes 4 (/ Mean $close $close) + 5 (- Mean $close Std $close) + 3 (Ref Mean $close);
    # distinct: $close, Mean, /, Std, -, Ref
    assert (total, distinct) == (12, 6)
    fs = [qd.expr(t, name=f"f{i}") for i, t in enumerate(formulas)]
    graph = dict(qd.compute(market, fs).__dask_graph__())

    def means(graph) -> set[str]:  # the tokens of ts_mean layers ("ts_mean-<token>-<i>")
        return {
            k[0].split("-")[1]
            for k in graph
            if isinstance(k, tuple) and k[0].startswith("ts_mean-")
        }

    assert len(means(graph)) == 1, means(graph)
    # the same as one expression alone: sharing, not recomputation
    assert means(dict(qd.compute(market, [fs[0]]).__dask_graph__())) == means(graph)


def _raise_on_compute(*args, **kwargs):
    raise AssertionError("a dask computation ran while the graph was built")


def test_building_expression_factors_computes_nothing(counting_store):
    m = qd.open_market(counting_store)
    fs = [
        qd.expr("Corr($close, $vol, 5) + Rank($high, 5)", name="a"),
        qd.expr("EMA($close, 5) / Slope($close, 10)", name="b"),
        qd.expr("If($close > Ref($close, 1), IdxMax($close, 5), 0)", name="c"),
        qd.expr("Mean($close, 3)", name="d", semantics="qlib"),
        qd.expr("WMA($close, 4) > 0", name="e", semantics="qlib"),
    ]
    dates = m["daily"].to_dataset().indexes["date"]
    with dask.config.set(scheduler=_raise_on_compute):
        ds = qd.compute(m, fs, start=dates[20])
        evaluate({"x": parse("IdxMin($close, 4)")}, m, semantics="qlib")
    assert ds["b"].attrs["formula"] == "EMA($close, 5) / Slope($close, 10)"
    assert ds["d"].attrs["semantics"] == "qlib" and ds["a"].attrs["semantics"] == "strict"
    assert np.isfinite(ds["a"].values).any()


# --------------------------------------------------------------------------------------
# registry, labels, missing inputs
# --------------------------------------------------------------------------------------


def test_registered_expression_factor_derives_lookback_and_inputs(market):
    @qd.register_factor("tmp_expression_ratio", override=True)
    def tmp_expression_ratio(*, fast: int = 5, slow: int = 20):
        return W.Mean(Field("close"), fast) / W.Mean(W.Ref(Field("vol"), 2), slow)

    try:
        f = qd.factor("tmp_expression_ratio", fast=3, slow=10)
        assert f.lookback == 11
        assert set(f.inputs()) == {"daily/close", "daily/vol"}
        assert f.formula == "Mean($close, 3) / Mean(Ref($vol, 2), 10)"
        c, v = frame(market, "close"), frame(market, "vol")
        want = c.rolling(3).mean() / v.shift(2).rolling(10).mean()
        got = qd.compute(market, [f])[f.variable].to_pandas()
        check(got, want, rtol=1e-9)
        assert qd.factor("tmp_expression_ratio").lookback == 21
    finally:
        qd.factors.unregister_factor("tmp_expression_ratio")


def test_registered_expression_factor_refuses_a_declared_lookback():
    def tmp_expression_declared(*, n: int = 5):
        return W.Mean(Field("close"), n)

    with pytest.raises(TypeError, match="derived"):
        qd.register_factor("tmp_expression_declared", lookback=4, override=True)(
            tmp_expression_declared
        )
    with pytest.raises(KeyError):
        qd.factor("tmp_expression_declared")


def test_registered_expression_factor_refuses_the_future():
    @qd.register_factor("tmp_expression_future", override=True)
    def tmp_expression_future(*, n: int = 2):
        return W.Ref(Field("close"), -n) / Field("close") - 1

    try:
        with pytest.raises(ValueError, match="look ahead"):
            qd.factor("tmp_expression_future")
    finally:
        qd.factors.unregister_factor("tmp_expression_future")


def test_label_is_named_fwd_and_reads_the_future(market):
    with pytest.raises(ValueError, match="label=True"):
        qd.expr("Ref($close, -2) / $close - 1")
    with pytest.raises(ValueError, match="label=True"):
        qd.expr("Mean(Ref($close, -1), 3)")
    lab = qd.expr("Ref($close, -2) / Ref($close, -1) - 1", label=True)
    assert lab.variable.startswith("fwd_")
    named = qd.expr("Ref($close, -2) / Ref($close, -1) - 1", label=True, name="ret")
    assert named.variable == "fwd_ret"
    c = frame(market, "close")
    dates = c.index
    got = qd.compute(market, [named], end=dates[50])["fwd_ret"].to_pandas()
    # the label at the last returned date reads two rows past `end`
    check(got, (c.shift(-2) / c.shift(-1) - 1).iloc[:51], rtol=1e-12)


def test_missing_inputs_are_named(market):
    with pytest.raises(qd.MissingInputError) as err:
        qd.compute(market, [qd.expr("$pe_ttm / $close + Mean($turnover_rate, 3)", name="x")])
    msg = str(err.value)
    assert "pe_ttm" in msg and "turnover_rate" in msg
    assert "daily/close" not in msg.replace("daily/close/", "")
    # the missing inputs of every factor, in one error
    with pytest.raises(qd.MissingInputError) as err:
        qd.compute(market, [qd.expr("$open", name="a"), qd.expr("$low", name="b")])
    assert "open" in str(err.value) and "low" in str(err.value)
