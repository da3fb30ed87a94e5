"""The expression core against pandas / scipy, derived lookbacks, formula round trips.

References are written here independently: per-column ``pandas.rolling`` (strict windows),
``scipy.stats.percentileofscore`` for ``Rank``, ``numpy.polyfit`` for ``Slope`` / ``Resi``.
The market is a hand-made in-memory tree with suspensions (NaN) and a level jump of nine
orders of magnitude inside one column.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr

import quantdask as qd
from quantdask.expression import OPERATORS, Const, Field, FormulaError, parse
from quantdask.expression.window import Corr, Mean, Ref

N_DATES, N_ASSETS = 80, 4


def build_market() -> xr.DataTree:
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2021-01-04", periods=N_DATES)
    assets = [f"00000{i}.SZ" for i in range(1, N_ASSETS + 1)]
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (N_DATES, N_ASSETS)), axis=0))
    close[40:, 2] *= 1e9  # a level jump inside one column
    close[10:13, 1] = np.nan  # a suspension
    close[:5, 3] = np.nan  # listed later
    high = close * (1 + rng.uniform(0, 0.03, close.shape))
    vol = rng.uniform(1e3, 1e5, close.shape)
    vol[np.isnan(close)] = np.nan
    pre = np.vstack([close[:1] * 0.99, close[:-1]])
    data = {
        "close": close,
        "high": high,
        "vol": vol,
        "pre_close": pre,
        "adj_factor": np.ones_like(close),
    }
    coords = {"date": dates, "asset": assets}
    ds = xr.Dataset({k: (("date", "asset"), v) for k, v in data.items()}, coords=coords).chunk(
        {"date": 30, "asset": 2}
    )
    return xr.DataTree.from_dict({"daily": ds})


@pytest.fixture(scope="module")
def market() -> xr.DataTree:
    return build_market()


def frame(market: xr.DataTree, field: str) -> pd.DataFrame:
    return market["daily"][field].to_pandas()


def value(market: xr.DataTree, formula: str, **kw) -> pd.DataFrame:
    f = qd.expr(formula, name="x", **kw)
    return qd.compute(market, [f])["x"].to_pandas()


def check(got: pd.DataFrame, want: pd.DataFrame, rtol: float = 1e-9) -> None:
    np.testing.assert_array_equal(got.isna().to_numpy(), want.isna().to_numpy())
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=rtol, atol=0, equal_nan=True)
    assert got.notna().to_numpy().sum() > 20


@pytest.mark.parametrize(
    ("formula", "ref"),
    [
        ("Mean($close, 5)", lambda c, v: c.rolling(5).mean()),
        ("Sum($close, 7) / $close", lambda c, v: c.rolling(7).sum() / c),
        ("Std($close, 10)", lambda c, v: c.rolling(10).std()),
        ("Var($vol, 10)", lambda c, v: v.rolling(10).var()),
        ("Skew($close, 20)", lambda c, v: c.rolling(20).skew()),
        ("Kurt($close, 20)", lambda c, v: c.rolling(20).kurt()),
        ("Max($high, 5) - Min($close, 5)", None),
        ("Med($close, 9)", lambda c, v: c.rolling(9).median()),
        ("Quantile($close, 10, 0.8)", lambda c, v: c.rolling(10).quantile(0.8)),
        ("Ref($close, 3)", lambda c, v: c.shift(3)),
        ("Delta($close, 2)", lambda c, v: c - c.shift(2)),
        ("Corr($close, $vol, 10)", lambda c, v: c.rolling(10).corr(v)),
        ("Cov($close, $vol, 10)", lambda c, v: c.rolling(10).cov(v)),
        (
            "Mad($close, 6)",
            lambda c, v: c.rolling(6).apply(lambda w: np.mean(np.abs(w - w.mean()))),
        ),
        (
            "WMA($close, 5)",
            lambda c, v: c.rolling(5).apply(lambda w: np.average(w, weights=np.arange(1, 6))),
        ),
        (
            "Rank($close, 8)",
            lambda c, v: c.rolling(8).apply(
                lambda w: scipy.stats.percentileofscore(w, w[-1], kind="rank") / 100, raw=True
            ),
        ),
        (
            "IdxMax($close, 6)",
            # 1-based from the oldest row; ties to the most recent row
            lambda c, v: c.rolling(6).apply(lambda w: 6 - np.argmax(w[::-1]), raw=True),
        ),
        (
            "Slope($close, 10)",
            lambda c, v: c.rolling(10).apply(
                lambda w: np.polyfit(np.arange(10), w, 1)[0], raw=True
            ),
        ),
        (
            "Resi($close, 10)",
            lambda c, v: c.rolling(10).apply(
                lambda w: w[-1] - np.polyval(np.polyfit(np.arange(10), w, 1), 9), raw=True
            ),
        ),
        ("EMA($close, 5)", lambda c, v: c.ewm(span=5, adjust=True, min_periods=5).mean()),
        ("If($close > Ref($close, 1), 1, -1)", None),
    ],
)
def test_strict_ops_match_pandas(market, formula, ref):
    c, v, h = frame(market, "close"), frame(market, "vol"), frame(market, "high")
    if formula.startswith("Max("):
        want = h.rolling(5).max() - c.rolling(5).min()
    elif formula.startswith("If("):
        prev = c.shift(1)
        want = pd.DataFrame(np.where(c > prev, 1.0, -1.0), index=c.index, columns=c.columns)
        want = want.where(c.notna() & prev.notna())
    else:
        want = ref(c, v)
    # the level jump: compare each column on its own scale
    rtol = 1e-6 if formula.startswith(("Kurt", "Skew", "Resi", "Slope")) else 1e-9
    check(value(market, formula), want, rtol=rtol)


def test_qlib_semantics_windows_and_comparisons(market):
    c = frame(market, "close")
    got = value(market, "Mean($close, 5)", semantics="qlib")
    want = c.astype(np.float32).astype(np.float64).rolling(5, min_periods=1).mean()
    # before listing (column 4's first rows) qlib has no row: NaN
    check(got, want, rtol=1e-6)
    up = value(market, "Mean($close > Ref($close, 1), 3)", semantics="qlib")
    c32 = c.astype(np.float32)
    cmp = (c32 > c32.shift(1)).astype(float).where(c.ffill().notna())
    check(up, cmp.rolling(3, min_periods=1).mean(), rtol=1e-9)


def test_qlib_idxmax_counts_nan_as_extreme_and_oldest_ties():
    dates = pd.bdate_range("2021-01-04", periods=6)
    close = np.array([[1.0], [3.0], [np.nan], [3.0], [2.0], [2.0]])
    ds = xr.Dataset(
        {
            "close": (("date", "asset"), close),
            "adj_factor": (("date", "asset"), np.ones_like(close)),
        },
        coords={"date": dates, "asset": ["000001.SZ"]},
    )
    m = xr.DataTree.from_dict({"daily": ds})
    got = value(m, "IdxMax($close, 3)", semantics="qlib")["000001.SZ"].to_numpy()
    # windows: [1] [1,3] [1,3,nan] [3,nan,3] [nan,3,2] [3,2,2] -> np.argmax + 1
    want = [
        np.argmax(w) + 1
        for w in ([1], [1, 3], [1, 3, np.nan], [3, np.nan, 3], [np.nan, 3, 2], [3, 2, 2])
    ]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("formula", "lookback"),
    [
        ("$close", 0),
        ("Mean(Ref($close, 3), 5)", 7),
        ("Corr($close, Mean($vol, 10), 20)", 28),
        ("Mean($close, 5) / Std(Delta($close, 1), 20)", 20),
        ("Rank(Slope($close, 10), 5) + Ref($high, 2)", 13),
    ],
)
def test_lookback_is_derived_from_the_tree(formula, lookback):
    assert parse(formula).lookback == lookback
    assert qd.expr(formula, name="x").lookback == lookback


def test_lookback_is_enough_and_not_more(market):
    f = qd.expr("Corr($close, Mean($vol, 10), 20) + Ref($high, 4)", name="x")
    dates = market["daily"].to_dataset().indexes["date"]
    start = dates[40]
    whole = qd.compute(market, [f])["x"].sel(date=slice(start, None)).to_pandas()
    part = qd.compute(market, [f], start=start)["x"].to_pandas()
    pd.testing.assert_frame_equal(part, whole)
    # one row less of history than the lookback changes the first value
    short = market.sel(date=slice(dates[40 - f.lookback + 1], None))
    first = f(short).to_pandas().loc[start]
    assert first.isna().all() and whole.loc[start].notna().any()


def _instance(cls):
    args = []
    for fld in fields(cls):
        if fld.type == "Expr":
            args.append(Field("close") if not args else Mean(Field("vol"), 3))
        elif fld.name == "q":
            args.append(0.25)
        elif fld.name == "periods":
            args.append(2)
        else:
            args.append(5)
    return cls(*args)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_every_operator_prints_a_formula_that_parses_back(name):
    e = _instance(OPERATORS[name])
    assert parse(e.formula()) == e
    nested = Corr(e, Ref(e, 1), 10) / (Const(2.0) - e)
    assert parse(nested.formula()) == nested


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("Mean($close, 5", 14),
        ("Foo($close)", 0),
        ("Mean($close, 2.5)", 13),
        ("$a < $b < $c", 8),
        ("1 +* 2", 3),
        ("__import__('os')", 11),
        ("$", 0),
        ("Mean($close)", 0),
    ],
)
def test_formula_errors_name_position(text, position):
    with pytest.raises(FormulaError) as err:
        parse(text)
    assert err.value.position == position
    assert "position" in str(err.value)


def test_future_reference_only_as_label(market):
    with pytest.raises(ValueError, match="look ahead"):
        qd.expr("Ref($close, -2) / Ref($close, -1) - 1")
    lab = qd.expr("Ref($close, -2) / Ref($close, -1) - 1", label=True, name="ret2")
    assert lab.variable == "fwd_ret2"
    c = frame(market, "close")
    check(qd.compute(market, [lab])["fwd_ret2"].to_pandas(), c.shift(-2) / c.shift(-1) - 1)


def test_missing_input_is_named(market):
    with pytest.raises(qd.MissingInputError, match="pe_ttm"):
        qd.compute(market, [qd.expr("$pe_ttm / $close", name="x")])


def test_registered_expression_factor_derives_lookback_and_inputs():
    @qd.register_factor("tmp_expr_mom", override=True)
    def tmp_expr_mom(*, n: int = 10):
        return Field("adj_close") / Ref(Field("adj_close"), n) - 1

    try:
        f = qd.factor("tmp_expr_mom", n=7)
        assert f.lookback == 7
        assert f.inputs() == ("daily/close", "daily/adj_factor")
        assert f.formula == "$adj_close / Ref($adj_close, 7) - 1"
        with pytest.raises(TypeError, match="derived"):
            qd.register_factor("tmp_expr_bad", lookback=3, override=True)(tmp_expr_mom)
    finally:
        qd.factors.unregister_factor("tmp_expr_mom")


def test_common_subexpressions_share_one_graph(market):
    fs = [qd.expr(f"Mean($close, {w}) / $close", name=f"ma{w}") for w in (5, 10, 20)]
    fs.append(qd.expr("Mean($close, 5) - Std($close, 5)", name="band"))
    ds = qd.compute(market, fs)
    graph = dict(ds.__dask_graph__())
    names = {str(k[0]) for k in graph if isinstance(k, tuple)}
    means = {n.split("-")[1] for n in names if n.startswith("ts_mean-")}
    assert len(means) == 3  # Mean($close, 5) once for ma5 and band
    assert len({n for n in names if n.startswith("ts_std-")}) >= 1
    reads = {n for n in names if n.startswith("xarray-close")}
    assert len(reads) == 1  # one read of close for all four expressions
