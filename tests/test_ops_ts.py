"""Time-series ops against pandas / scipy / plain-loop references, chunk edges, laziness."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import quantdask as qd
from quantdask.testing import raise_if_dask_computes

N_DATES = 83
N_ASSETS = 5


def _panel(seed: int = 0, nan_frac: float = 0.15, n_dates: int = N_DATES) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n_dates, N_ASSETS))
    a[rng.random(a.shape) < nan_frac] = np.nan
    a[10:35, 1] = np.nan  # a long suspension, longer than several chunks
    a[:, 4] = np.nan  # never traded
    a[60, 4] = 1.0
    return a


def _da(a: np.ndarray, chunks: dict | None = None) -> xr.DataArray:
    dates = pd.bdate_range("2020-01-01", periods=a.shape[0])
    x = xr.DataArray(
        a,
        dims=("date", "asset"),
        coords={"date": dates, "asset": [f"{i:06d}.SZ" for i in range(a.shape[1])]},
        name="x",
    )
    return x.chunk(chunks or {"date": 7, "asset": 2})


# -------------------------------------------------------------------------------------
# plain references (pandas column-wise, loops where pandas has no equivalent)
# -------------------------------------------------------------------------------------


def _roll(df: pd.DataFrame, w: int, mp: int):
    return df.rolling(w, min_periods=mp)


def _loop(df: pd.DataFrame, w: int, mp: int, fn) -> np.ndarray:
    """Apply ``fn(valid_window_values, today_value)`` over each trailing window, plain loops."""
    a = df.to_numpy()
    out = np.full(a.shape, np.nan)
    for j in range(a.shape[1]):
        for t in range(a.shape[0]):
            win = a[max(0, t - w + 1) : t + 1, j]
            valid = win[~np.isnan(win)]
            if len(valid) >= mp:
                out[t, j] = fn(win, valid, a[t, j])
    return out


def _argext(win, valid, today, *, fn) -> float:
    # rows since the extreme, most recent occurrence on ties
    target = fn(valid)
    pos = np.flatnonzero(win == target)[-1]
    return float(len(win) - 1 - pos)


def _rank_ref(df: pd.DataFrame, w: int, mp: int) -> np.ndarray:
    r = _roll(df, w, mp).rank(method="average").to_numpy()
    k = _roll(df, w, mp).count().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(k > 1, (r - 1) / (k - 1), 0.5)
    out[np.isnan(r) | df.isna().to_numpy()] = np.nan
    return out


def _pctl(win, valid, today):
    if np.isnan(today):
        return np.nan
    return scipy.stats.percentileofscore(valid, today, kind="mean")


REFERENCES = {
    # op name: (reference(df, window, min_periods) -> ndarray, extra kwargs)
    "ts_mean": (lambda df, w, mp: _roll(df, w, mp).mean().to_numpy(), {}),
    "ts_sum": (lambda df, w, mp: _roll(df, w, mp).sum().to_numpy(), {}),
    "ts_std": (lambda df, w, mp: _roll(df, w, mp).std().to_numpy(), {}),
    "ts_var": (lambda df, w, mp: _roll(df, w, mp).var().to_numpy(), {}),
    "ts_min": (lambda df, w, mp: _roll(df, w, mp).min().to_numpy(), {}),
    "ts_max": (lambda df, w, mp: _roll(df, w, mp).max().to_numpy(), {}),
    "ts_skew": (lambda df, w, mp: _roll(df, w, mp).skew().to_numpy(), {}),
    "ts_kurt": (lambda df, w, mp: _roll(df, w, mp).kurt().to_numpy(), {}),
    "ts_quantile": (lambda df, w, mp: _roll(df, w, mp).quantile(0.3).to_numpy(), {"q": 0.3}),
    "ts_rank": (_rank_ref, {}),
    "ts_argmax": (lambda df, w, mp: _loop(df, w, mp, lambda *a: _argext(*a, fn=np.max)), {}),
    "ts_argmin": (lambda df, w, mp: _loop(df, w, mp, lambda *a: _argext(*a, fn=np.min)), {}),
    "ts_percentile": (lambda df, w, mp: _loop(df, w, mp, _pctl), {}),
}
WINDOWS = [(3, None), (10, None), (20, 12), (20, 1), (1, None)]


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize(("window", "min_periods"), WINDOWS)
def test_moving_vs_reference(name: str, window: int, min_periods: int | None) -> None:
    a = _panel(seed=1)
    ref_fn, kw = REFERENCES[name]
    mp = window if min_periods is None else min_periods
    if name in ("ts_skew", "ts_kurt") and window < 4:
        window, mp = 4, 4
    expected = ref_fn(pd.DataFrame(a), window, mp)
    op = getattr(qd, name)
    out = op(_da(a), window=window, min_periods=min_periods, **kw)
    assert out.chunks == _da(a).chunks
    assert out.dims == ("date", "asset")
    np.testing.assert_allclose(out.values, expected, rtol=1e-7, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize(("window", "min_periods"), [(25, None), (40, 10), (60, 1)])
@pytest.mark.parametrize("traded_only", [False, True])
def test_rank_long_window_vs_pandas(
    window: int, min_periods: int | None, traded_only: bool
) -> None:
    """Windows past ``RANK_BOTTLENECK_MAX_WINDOW`` take the Fenwick-tree path; ties included."""
    from quantdask.kernels.moving import RANK_BOTTLENECK_MAX_WINDOW

    assert window > RANK_BOTTLENECK_MAX_WINDOW
    a = np.round(_panel(seed=5, nan_frac=0.2, n_dates=150) * 2) / 2  # many ties
    mp = window if min_periods is None else min_periods
    if traded_only:
        expected = np.full(a.shape, np.nan)
        for j in range(a.shape[1]):
            col = pd.Series(a[:, j])
            res = _rank_ref(col.dropna().reset_index(drop=True).to_frame(), window, mp)[:, 0]
            expected[col.notna().to_numpy(), j] = res
    else:
        expected = _rank_ref(pd.DataFrame(a), window, mp)
    out = qd.ts_rank(_da(a), window=window, min_periods=min_periods, traded_only=traded_only)
    np.testing.assert_allclose(out.values, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("window", [6, 20])
@pytest.mark.parametrize("name", ["ts_mean", "ts_skew", "ts_percentile", "ts_argmax", "ts_rank"])
def test_traded_only_vs_reference(name: str, window: int) -> None:
    """traded_only: the window counts only valid rows; NaN output on the others.

    Window 20 carries more traded rows than one date chunk (7) holds.
    """
    a = _panel(seed=2, nan_frac=0.3)
    ref_fn, kw = REFERENCES[name]
    expected = np.full(a.shape, np.nan)
    for j in range(a.shape[1]):
        col = pd.Series(a[:, j])
        valid = col.dropna().reset_index(drop=True)
        res = ref_fn(valid.to_frame(), window, window)[:, 0]
        expected[col.notna().to_numpy(), j] = res
    out = getattr(qd, name)(_da(a), window=window, traded_only=True, **kw)
    np.testing.assert_allclose(out.values, expected, rtol=1e-7, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("name", ["ts_corr", "ts_cov"])
@pytest.mark.parametrize(("window", "min_periods"), [(5, None), (15, 8)])
def test_two_input_vs_pandas(name: str, window: int, min_periods: int | None) -> None:
    a = _panel(seed=3)
    b = _panel(seed=4) + 0.5 * np.nan_to_num(a)
    mp = window if min_periods is None else min_periods
    expected = np.column_stack(
        [
            getattr(pd.Series(a[:, j]).rolling(window, min_periods=mp), name.removeprefix("ts_"))(
                pd.Series(b[:, j])
            ).to_numpy()
            for j in range(N_ASSETS)
        ]
    )
    out = getattr(qd, name)(_da(a), _da(b), window=window, min_periods=min_periods)
    np.testing.assert_allclose(out.values, expected, rtol=1e-7, atol=1e-9, equal_nan=True)


def test_two_input_traded_only() -> None:
    a = _panel(seed=5, nan_frac=0.3)
    b = _panel(seed=6, nan_frac=0.3)
    window = 5
    expected = np.full(a.shape, np.nan)
    for j in range(N_ASSETS):
        both = ~np.isnan(a[:, j]) & ~np.isnan(b[:, j])
        sa, sb = pd.Series(a[both, j]), pd.Series(b[both, j])
        expected[both, j] = sa.rolling(window).corr(sb).to_numpy()
    out = qd.ts_corr(_da(a), _da(b), window=window, traded_only=True)
    np.testing.assert_allclose(out.values, expected, rtol=1e-7, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("periods", [1, 3, 7, 9, 90])
@pytest.mark.parametrize("traded_only", [False, True])
def test_shift_ops(periods: int, traded_only: bool) -> None:
    a = np.abs(_panel(seed=7)) + 0.1
    x = _da(a)
    expected = {}
    for name in ("ts_delay", "ts_delta", "ts_pct_change"):
        expected[name] = np.full(a.shape, np.nan)
    for j in range(N_ASSETS):
        s = pd.Series(a[:, j])
        if traded_only:
            s = s.dropna()
        prev = s.shift(periods)
        vals = {"ts_delay": prev, "ts_delta": s - prev, "ts_pct_change": s / prev - 1}
        for name, v in vals.items():
            expected[name][s.index.to_numpy(), j] = v.to_numpy()
    for name, exp in expected.items():
        out = getattr(qd, name)(x, periods=periods, traded_only=traded_only)
        np.testing.assert_allclose(out.values, exp, rtol=1e-12, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("traded_only", [False, True])
@pytest.mark.parametrize(("span", "min_periods"), [(5, None), (12, 1)])
def test_ewm_mean_vs_pandas(traded_only: bool, span: int, min_periods: int | None) -> None:
    a = _panel(seed=8)
    mp = span if min_periods is None else min_periods
    df = pd.DataFrame(a)
    expected = df.ewm(span=span, min_periods=mp, adjust=True, ignore_na=traded_only).mean()
    expected = expected.to_numpy().copy()
    if traded_only:
        expected[np.isnan(a)] = np.nan
    out = qd.ts_ewm_mean(_da(a), span=span, min_periods=min_periods, traded_only=traded_only)
    np.testing.assert_allclose(out.values, expected, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert qd.ts_ewm_mean.lookback(alpha=0.5) == 20  # 0.5**20 < 1e-6 <= 0.5**19


# -------------------------------------------------------------------------------------
# streaks
# -------------------------------------------------------------------------------------


def _streak_ref(close: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """Independent reference: rebuild the bar closes before each date and walk back."""
    out = np.full(close.shape, np.nan)
    for j in range(close.shape[1]):
        for t in range(close.shape[0]):
            if np.isnan(close[t, j]):
                continue
            bars = []
            for p in np.unique(pid[:t]):
                if p == pid[t]:
                    continue
                rows = np.flatnonzero((pid[:t] == p) & ~np.isnan(close[:t, j]))
                if len(rows):
                    bars.append(close[rows[-1], j])
            series = [*bars, close[t, j]]
            if len(series) < 2:
                continue
            signs = np.sign(np.diff(series))
            last = signs[-1]
            if last == 0:
                out[t, j] = 0.0
                continue
            k = 0
            for s in signs[::-1]:
                if s != last:
                    break
                k += 1
            out[t, j] = last * k
    return out


@pytest.mark.parametrize("freq", ["D", "W", "M", "Q", "Y"])
def test_streak_vs_loop(freq: str) -> None:
    rng = np.random.default_rng(11)
    n = 400 if freq in ("Q", "Y") else 120
    steps = rng.choice([-1.0, 0.0, 1.0, 1.0], size=(n, 4))
    close = 100 + np.cumsum(steps, axis=0)
    close[rng.random(close.shape) < 0.1] = np.nan
    close[30:70, 2] = np.nan
    x = _da(close, {"date": 7, "asset": 3})
    pid = qd.ops.period_ids(x["date"].values, freq)
    out = qd.ts_streak(x, freq=freq)
    assert out.chunks == x.chunks
    np.testing.assert_array_equal(out.values, _streak_ref(close, pid))


def test_streak_hand_case() -> None:
    c = _da(np.array([[1.0, 2, 3, np.nan, 4, 4, 3, 2, 2.5]]).T, {"date": 2})
    np.testing.assert_array_equal(
        qd.ts_streak(c).values[:, 0], [np.nan, 1, 2, np.nan, 3, 0, -1, -2, 1]
    )


def test_period_ids_weeks_and_months() -> None:
    dates = pd.to_datetime(["2024-01-05", "2024-01-08", "2024-01-14", "2024-01-15", "2024-02-01"])
    w = qd.ops.period_ids(dates.values, "W")
    assert w[1] == w[2] != w[0] and w[3] == w[2] + 1
    m = qd.ops.period_ids(dates.values, "M")
    assert list(np.diff(m)) == [0, 0, 0, 1]


# -------------------------------------------------------------------------------------
# shapes, chunks, numpy input, errors, laziness, lookback, look-ahead
# -------------------------------------------------------------------------------------


def test_numpy_backed_1d_and_3d() -> None:
    a = _panel(seed=9)
    x1 = xr.DataArray(a[:, 0], dims="date")
    np.testing.assert_allclose(
        qd.ts_mean(x1, window=4).values,
        pd.Series(a[:, 0]).rolling(4).mean().to_numpy(),
        equal_nan=True,
    )
    # (asset, field, date) order and a third dim: same answer per series
    x3 = xr.DataArray(np.stack([a.T, -a.T], axis=1), dims=("asset", "field", "date"))
    x3 = x3.chunk({"date": 5, "asset": 3})
    out = qd.ts_max(x3, window=9)
    assert out.dims == x3.dims and out.chunks == x3.chunks
    expected = pd.DataFrame(-a).rolling(9).max().to_numpy().T
    np.testing.assert_allclose(out.isel(field=1).values, expected, equal_nan=True)


def test_bad_input_errors() -> None:
    x = _da(_panel())
    with pytest.raises(ValueError, match="window"):
        qd.ts_mean(x, window=0)
    with pytest.raises(ValueError, match="min_periods"):
        qd.ts_mean(x, window=3, min_periods=4)
    with pytest.raises(ValueError, match="dimension 'time'"):
        qd.ts_mean(x, window=3, dim="time")
    with pytest.raises(TypeError, match="DataArray"):
        qd.ts_mean(np.ones(4), window=3)
    with pytest.raises(ValueError, match="q must"):
        qd.ts_quantile(x, window=3, q=1.5)
    with pytest.raises(ValueError, match="freq"):
        qd.ts_streak(x, freq="H")
    with pytest.raises(ValueError, match="span or alpha"):
        qd.ts_ewm_mean(x)
    with pytest.raises(TypeError):
        qd.ts_mean(x, 3)  # window is keyword-only


def test_lookback() -> None:
    assert qd.ts_mean.lookback(window=20) == 19
    assert qd.ops.lookback(qd.ts_skew, window=250) == 249
    assert qd.ops.lookback(qd.ts_mean, window=20, traded_only=True) == 38
    assert qd.ts_delay.lookback(periods=5) == 5
    assert qd.ts_streak.lookback(freq="D") == 21
    assert qd.cs_rank.lookback() == 0
    with pytest.raises(TypeError):
        qd.ops.lookback(len)


def _all_ops(x: xr.DataArray, y: xr.DataArray) -> list[xr.DataArray]:
    outs = [getattr(qd, n)(x, window=12, **REFERENCES[n][1]) for n in sorted(REFERENCES)] + [
        getattr(qd, n)(x, window=12, traded_only=True) for n in ("ts_mean", "ts_skew")
    ]
    outs += [qd.ts_corr(x, y, window=9), qd.ts_cov(x, y, window=9, traded_only=True)]
    outs += [qd.ts_delay(x), qd.ts_delta(x, periods=2), qd.ts_pct_change(x, traded_only=True)]
    outs += [qd.ts_ewm_mean(x, span=10), qd.ts_streak(x), qd.ts_streak(x, freq="M")]
    return outs


def test_building_graphs_computes_nothing() -> None:
    x = _da(_panel())
    y = _da(_panel(seed=3))
    with raise_if_dask_computes():
        outs = _all_ops(x, y)
        outs.append(qd.cs_rank(x))
        for o in outs:
            assert o.shape == x.shape


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(t=st.integers(min_value=0, max_value=N_DATES - 1), seed=st.integers(0, 3))
def test_truncation_never_changes_past_values(t: int, seed: int) -> None:
    """Look-ahead: computing on data cut after date t gives the same values up to t."""
    a = _panel(seed=seed)
    full = _da(a, {"date": 7, "asset": -1})
    cut = _da(a[: t + 1], {"date": 7, "asset": -1})
    outs_full = dask.compute(*_all_ops(full, full * 0.5 + 1), scheduler="sync")
    outs_cut = dask.compute(*_all_ops(cut, cut * 0.5 + 1), scheduler="sync")
    for o_full, o_cut in zip(outs_full, outs_cut, strict=True):
        np.testing.assert_allclose(
            o_cut.values, o_full.values[: t + 1], rtol=1e-9, atol=1e-12, equal_nan=True
        )


def test_chunking_does_not_change_values() -> None:
    a = _panel(seed=10)
    for name in ("ts_skew", "ts_percentile", "ts_mean"):
        one = getattr(qd, name)(_da(a, {"date": -1, "asset": -1}), window=30).values
        many = getattr(qd, name)(_da(a, {"date": 4, "asset": 1}), window=30).values
        np.testing.assert_allclose(many, one, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_daily_returns() -> None:
    close = np.array([[10.0, 11.0, np.nan, 12.1], [5.0, 5.5, 5.5, 6.05]]).T
    pre = np.array([[9.0, 10.0, 11.0, 11.0], [5.0, 5.0, 5.5, 5.5]]).T
    susp = np.array([[False, False, True, False], [False, False, True, False]]).T
    ds = xr.Dataset(
        {
            "close": (("date", "asset"), close),
            "pre_close": (("date", "asset"), pre),
            "suspended": (("date", "asset"), susp),
        }
    ).chunk({"date": 2})
    with raise_if_dask_computes():
        r = qd.daily_returns(ds)
    expected = np.array([[10 / 9 - 1, 0.1, np.nan, 0.1], [0.0, 0.1, np.nan, 0.1]]).T
    np.testing.assert_allclose(r.values, expected, equal_nan=True)
    assert r.name == "ret"
    with pytest.raises(ValueError, match="pre_close"):
        qd.daily_returns(ds.drop_vars("pre_close"))


# -------------------------------------------------------------------------------------
# real prices and the synthetic store
# -------------------------------------------------------------------------------------


def test_real_prices_vs_references(real_data_dir) -> None:
    """Real index and stock closes (hikyuu, Apache-2.0) with real suspensions and holidays."""
    df = pd.read_csv(
        real_data_dir / "hikyuu_daily_8_securities_1990_2011.csv.gz", parse_dates=["trade_date"]
    )
    close = df.pivot(index="trade_date", columns="ts_code", values="close").loc["2005":]
    x = xr.DataArray(
        close.to_numpy(),
        dims=("date", "asset"),
        coords={"date": close.index.values, "asset": close.columns.to_numpy()},
    ).chunk({"date": 200})
    ret = close.pct_change(fill_method=None)
    np.testing.assert_allclose(
        qd.ts_skew(qd.ts_pct_change(x), window=250).values,
        ret.rolling(250).skew().to_numpy(),
        rtol=1e-7,
        atol=1e-10,
        equal_nan=True,
    )
    np.testing.assert_allclose(
        qd.ts_percentile(x, window=500, min_periods=250).values,
        _loop(close, 500, 250, _pctl),
        rtol=1e-10,
        equal_nan=True,
    )
    tail = x.sel(date=slice("2010-06-01", None))
    pid = qd.ops.period_ids(tail["date"].values, "M")
    np.testing.assert_array_equal(
        qd.ts_streak(tail, freq="M").values, _streak_ref(tail.values, pid)
    )


def test_ops_on_synthetic_store_keep_stored_chunks(market) -> None:
    daily = market["daily"].to_dataset()
    close = daily["close"]
    ret = qd.daily_returns(daily)
    with raise_if_dask_computes():
        ma = qd.ts_mean(close, window=20)
        sk = qd.ts_skew(ret, window=60, traded_only=True)
    assert ma.chunks == close.chunks and sk.chunks == close.chunks
    c = close.to_pandas()
    np.testing.assert_allclose(ma.values, c.rolling(20).mean().to_numpy(), equal_nan=True)
    r = ret.to_pandas()
    expected = np.full(r.shape, np.nan)
    for j, col in enumerate(r.columns):
        s = r[col].dropna()
        expected[r[col].notna().to_numpy(), j] = s.rolling(60).skew().to_numpy()
    np.testing.assert_allclose(sk.values, expected, rtol=1e-7, atol=1e-10, equal_nan=True)


@pytest.mark.distributed
def test_ops_on_local_cluster_processes() -> None:
    """Overlap, carried-state scans and cs ops run on real worker processes (pickled graphs)."""
    from distributed import Client, LocalCluster

    x = _da(_panel(seed=12))

    def build(x: xr.DataArray) -> list[xr.DataArray]:
        return [
            qd.ts_mean(x, window=12),
            qd.ts_skew(x, window=12, traded_only=True),
            qd.ts_streak(x, freq="W"),
            qd.ts_ewm_mean(x, span=5),
            qd.cs_rank(x),
        ]

    expected = dask.compute(*build(x), scheduler="sync")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        got = dask.compute(*build(x))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g.values, e.values)


def test_streak_frequencies_in_one_graph_do_not_collide() -> None:
    """Different freqs share step function and input: their dask keys must still differ."""
    rng = np.random.default_rng(13)
    close = 100 + np.cumsum(rng.choice([-1.0, 1.0], size=(150, 3)), axis=0)
    x = _da(close, {"date": 40, "asset": 3})
    outs = dask.compute(*(qd.ts_streak(x, freq=f) for f in ("D", "W", "M")))
    for f, out in zip(("D", "W", "M"), outs, strict=True):
        pid = qd.ops.period_ids(x["date"].values, f)
        np.testing.assert_array_equal(out.values, _streak_ref(close, pid), err_msg=f)


@pytest.mark.parametrize("head_rows", [0, 1, 19, 64])
@pytest.mark.parametrize(("window", "min_periods"), [(1, 1), (20, 20), (20, 3), (90, 30)])
def test_date_major_kernels_vs_pandas(head_rows: int, window: int, min_periods: int) -> None:
    """The date-major twins (time on axis 0, history passed as ``head``) against pandas."""
    from quantdask.kernels import moving

    a = _panel(seed=9, nan_frac=0.2, n_dates=150)
    a[100:140, 2] = 3.25  # a constant stretch: zero variance, NaN skew / kurtosis
    df = pd.DataFrame(a)
    head = a[:head_rows] if head_rows else None
    for name in ("sum", "mean", "var", "std", "skew", "kurt", "max", "min"):
        expected = getattr(df.rolling(window, min_periods=min_periods), name)().to_numpy()
        out = getattr(moving, f"dm_move_{name}")(a[head_rows:], window, min_periods, head=head)
        np.testing.assert_allclose(
            out, expected[head_rows:], rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=name
        )


@pytest.mark.parametrize("name", ["ts_percentile", "ts_rank"])
def test_order_stat_with_infinities(name: str) -> None:
    """``+/-inf`` are values to the order-statistic ops (as in scipy / pandas), NaN is missing."""
    a = _panel(seed=11, nan_frac=0.1, n_dates=120)
    a[[5, 40, 41, 90], 0] = np.inf
    a[[7, 60], 2] = -np.inf
    window = 30
    if name == "ts_percentile":
        expected = _loop(pd.DataFrame(a), window, window, _pctl)
    else:
        expected = _rank_ref(pd.DataFrame(a), window, window)
    out = getattr(qd, name)(_da(a), window=window)
    np.testing.assert_allclose(out.values, expected, rtol=1e-12, atol=1e-12, equal_nan=True)
