"""IC, rank IC, ic_summary, ic_decay and rank autocorrelation against scipy references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import quantdask as qd
from quantdask.testing import raise_if_dask_computes


def random_pair(seed: int = 1, n_dates: int = 40, n_assets: int = 23, nan_share: float = 0.2):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-06-01", periods=n_dates)
    assets = [f"{i:06d}.SZ" for i in range(n_assets)]
    x = rng.normal(size=(n_dates, n_assets))
    y = 0.3 * x + rng.normal(size=(n_dates, n_assets))
    x[rng.random(x.shape) < nan_share] = np.nan
    y[rng.random(y.shape) < nan_share] = np.nan
    x[3, :] = np.nan  # a date with no factor at all
    y[5, :-2] = np.nan  # a date with only two pairs at most
    x[7, :] = 1.0  # a constant cross-section
    x[9, :4] = 0.5  # ties
    coords = {"date": dates, "asset": assets}
    fx = xr.DataArray(x, dims=("date", "asset"), coords=coords, name="factor")
    fy = xr.DataArray(y, dims=("date", "asset"), coords=coords, name="fwd_ret_1")
    return fx, fy


def scipy_ic(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    for t in range(x.shape[0]):
        ok = np.isfinite(x[t]) & np.isfinite(y[t])
        if ok.sum() < 3 or np.ptp(x[t][ok]) == 0 or np.ptp(y[t][ok]) == 0:
            continue
        fn = stats.spearmanr if method == "spearman" else stats.pearsonr
        out[t] = fn(x[t][ok], y[t][ok])[0]
    return out


@pytest.mark.parametrize("method", ["spearman", "pearson"])
@pytest.mark.parametrize("chunks", [None, {"date": 7}, {"date": 7, "asset": 5}])
def test_ic_matches_scipy(method, chunks):
    fx, fy = random_pair()
    if chunks:
        fx, fy = fx.chunk(chunks), fy.chunk(chunks)
    got = qd.ic(fx, fy, method=method)
    assert got.dims == ("date",)
    want = scipy_ic(fx.values, fy.values, method)
    np.testing.assert_allclose(got.values, want, rtol=1e-10, atol=1e-12)
    assert np.isnan(want[3]) and np.isnan(want[5]) and np.isnan(want[7])
    assert np.isfinite(want).sum() > 30


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_ic_by_group_matches_scipy(method):
    fx, fy = random_pair(seed=4, n_assets=31, nan_share=0.1)
    rng = np.random.default_rng(5)
    codes = rng.choice([0, 801010, 801780, 801880], size=fx.shape)
    group = xr.DataArray(codes, dims=fx.dims, coords=fx.coords)
    got = qd.ic(fx.chunk({"date": 7}), fy.chunk({"date": 7}), method=method, group=group)
    assert got.dims == ("date", "group")
    assert list(got["group"].values) == [801010, 801780, 801880]
    for g in (801010, 801780, 801880):
        member = codes == g
        want = scipy_ic(
            np.where(member, fx.values, np.nan), np.where(member, fy.values, np.nan), method
        )
        np.testing.assert_allclose(got.sel(group=g).values, want, rtol=1e-10, atol=1e-12)
    explicit = qd.ic(fx, fy, method=method, group=group, groups=[801780])
    np.testing.assert_allclose(
        explicit.sel(group=801780).values, got.sel(group=801780).values, rtol=1e-12
    )


def test_ic_is_lazy():
    fx, fy = random_pair()
    fx, fy = fx.chunk({"date": 7}), fy.chunk({"date": 7})
    group = xr.full_like(fx, 801010, dtype=np.int32)
    with raise_if_dask_computes():
        out = qd.ic(fx, fy)
        qd.ic(fx, fy, method="pearson")
        qd.ic(fx, fy, group=group, groups=[801010])
        qd.rank_autocorrelation(fx)
    assert out.chunks is not None


def test_ic_summary_hand_checked():
    values = np.array([0.1, 0.2, -0.1, np.nan, 0.4])
    dates = pd.bdate_range("2021-01-04", periods=5)
    s = qd.ic_summary(xr.DataArray(values, dims="date", coords={"date": dates}, name="rank_ic"))
    row = s.loc["rank_ic"]
    # finite: 0.1, 0.2, -0.1, 0.4 -> mean 0.15
    # deviations -0.05, 0.05, -0.25, 0.25 -> squares sum 0.13 -> var 0.13/3
    std = np.sqrt(0.13 / 3)
    assert row["mean"] == pytest.approx(0.15)
    assert row["std"] == pytest.approx(std)
    assert row["ir"] == pytest.approx(0.15 / std)
    assert row["t_stat"] == pytest.approx(0.15 / (std / 2.0))
    assert row["positive"] == pytest.approx(0.75)
    assert row["count"] == 4


def test_ic_summary_rows_per_group_and_dataset():
    dates = pd.bdate_range("2021-01-04", periods=3)
    da = xr.DataArray(
        [[0.1, -0.2], [0.3, -0.4], [0.2, np.nan]],
        dims=("date", "group"),
        coords={"date": dates, "group": [1, 2]},
    )
    s = qd.ic_summary(da)
    assert list(s.index) == [1, 2]
    assert s.loc[1, "mean"] == pytest.approx(0.2)
    assert s.loc[2, "mean"] == pytest.approx(-0.3)
    assert s.loc[2, "count"] == 2
    ds = xr.Dataset({"a": da.isel(group=0, drop=True), "b": da.isel(group=1, drop=True)})
    s2 = qd.ic_summary(ds)
    assert list(s2.index) == ["a", "b"]
    assert s2.loc["b", "positive"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="date"):
        qd.ic_summary(da.rename(date="time"))


def test_ic_bad_input():
    fx, fy = random_pair()
    with pytest.raises(ValueError, match="method"):
        qd.ic(fx, fy, method="kendall")
    with pytest.raises(TypeError, match="factor"):
        qd.ic(fx.values, fy)
    with pytest.raises(ValueError, match="asset"):
        qd.ic(fx.rename(asset="stock"), fy)


def test_ic_decay_matches_scipy_on_pandas_forward():
    from test_forward import random_daily

    ds = random_daily(seed=3, n_dates=70, n_assets=25)
    rng = np.random.default_rng(8)
    fac = xr.DataArray(rng.normal(size=ds["close"].shape), dims=("date", "asset"))
    fac = fac.assign_coords(ds["close"].coords)
    dec = qd.ic_decay(fac.chunk({"date": 9}), ds.chunk({"date": 9}), horizons=(1, 3))
    assert set(dec.dims) == {"horizon", "date"}
    close = ds["close"].to_pandas()
    gross = (close / ds["pre_close"].to_pandas()).fillna(1.0)
    up = ds["up_limit"].to_pandas()
    blocked = close.isna() | ds["suspended"].to_pandas() | (up.notna() & (close >= up - 0.005))
    for h in (1, 3):
        fwd = gross.rolling(h).apply(np.prod, raw=True).shift(-(1 + h)) - 1.0
        fwd = fwd.where(~blocked.shift(-1, fill_value=True))
        want = scipy_ic(fac.values, fwd.to_numpy(), "spearman")
        np.testing.assert_allclose(dec.sel(horizon=h).values, want, rtol=1e-9, atol=1e-12)


def test_rank_autocorrelation_matches_scipy():
    fx, _ = random_pair(seed=11, nan_share=0.1)
    got = qd.rank_autocorrelation(fx.chunk({"date": 7}), lag=2)
    x = fx.values
    want = np.full(x.shape[0], np.nan)
    for t in range(2, x.shape[0]):
        a, b = x[t], x[t - 2]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 3 and np.ptp(a[ok]) > 0 and np.ptp(b[ok]) > 0:
            want[t] = stats.spearmanr(a[ok], b[ok])[0]
    np.testing.assert_allclose(got.values, want, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="lag"):
        qd.rank_autocorrelation(fx, lag=0)


def test_reversal_factor_has_positive_rank_ic_on_synthetic_market(market):
    daily = market["daily"]
    close = daily["close"]
    reversal = -(close / close.shift(date=20) - 1.0)
    fwd = qd.forward_returns(market, periods=(20,))
    rank_ic = qd.ic(reversal, fwd["fwd_ret_20"])
    summary = qd.ic_summary(rank_ic)
    assert summary.loc["rank_ic", "count"] > 1000
    assert summary.loc["rank_ic", "mean"] > 0.0
    assert summary.loc["rank_ic", "t_stat"] > 2.0


@pytest.mark.distributed
def test_ic_and_quantiles_on_a_local_cluster():
    from distributed import Client, LocalCluster

    fx, fy = random_pair(seed=21, n_dates=60)
    fx, fy = fx.chunk({"date": 13}), fy.chunk({"date": 13})
    want_ic = scipy_ic(fx.values, fy.values, "spearman")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        rank_ic, qret = client.compute(
            [qd.ic(fx, fy), qd.quantile_returns(fx, fy, quantiles=3)], sync=True
        )
    np.testing.assert_allclose(rank_ic.values, want_ic, rtol=1e-10, atol=1e-12)
    local = qd.quantile_returns(fx, fy, quantiles=3).compute(scheduler="sync")
    np.testing.assert_allclose(qret.values, local.values, rtol=1e-12)


# --- factor_report: every horizon and both ICs in one pass -----------------------------


def three_horizons(seed: int = 31, n_dates: int = 45, n_assets: int = 29):
    """A factor and three forward-return panels with different NaN masks, ties, a constant
    cross-section and tied returns."""
    fx, _ = random_pair(seed=seed, n_dates=n_dates, n_assets=n_assets)
    rng = np.random.default_rng(seed + 1)
    fwd = {}
    for h in (1, 5, 20):
        y = 0.2 * np.nan_to_num(fx.values) + rng.normal(size=fx.shape)
        y[rng.random(y.shape) < 0.1 + 0.01 * h] = np.nan
        y[-h:, :] = np.nan  # windows past the end
        fwd[f"fwd_ret_{h}"] = (("date", "asset"), y)
    fwd["fwd_ret_5"][1][11, :6] = 0.25  # tied returns
    return fx, xr.Dataset(fwd, coords=fx.coords)


@pytest.mark.parametrize(
    ("chunks", "date_chunk"),
    [(None, None), ({"date": 7, "asset": 5}, None), ({"date": 7, "asset": 5}, 4)],
)
def test_factor_report_ic_matches_scipy(chunks, date_chunk):
    fx, fwd = three_horizons()
    if chunks:
        fx, fwd = fx.chunk(chunks), fwd.chunk(chunks)
    rep = qd.factor_report(fx, fwd, quantiles=None, date_chunk=date_chunk)
    assert rep["rank_ic"].dims == ("horizon", "date")
    assert list(rep["horizon"].values) == [1, 5, 20]
    assert "quantile_returns" not in rep
    rep = rep.compute()
    for h in (1, 5, 20):
        y = fwd[f"fwd_ret_{h}"].values
        for method, var in (("spearman", "rank_ic"), ("pearson", "ic")):
            want = scipy_ic(fx.values, y, method)
            got = rep[var].sel(horizon=h).values
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
            assert np.isnan(got[[3, 7]]).all()  # no factor; constant factor
            assert np.isfinite(want).sum() > 15


def test_factor_report_agrees_with_separate_calls_and_is_lazy():
    fx, fwd = three_horizons(seed=5)
    fx, fwd = fx.chunk({"date": 9}), fwd.chunk({"date": 9})
    with raise_if_dask_computes():
        rep = qd.factor_report(fx, fwd, quantiles=3, methods=("spearman",))
    assert set(rep.data_vars) == {"rank_ic", "quantile_returns"}
    assert rep["quantile_returns"].dims == ("horizon", "date", "quantile")
    with raise_if_dask_computes(max_computes=1):
        rep = rep.compute()
    for h in (1, 5, 20):
        f = fwd[f"fwd_ret_{h}"]
        np.testing.assert_array_equal(rep["rank_ic"].sel(horizon=h).values, qd.ic(fx, f).values)
        np.testing.assert_array_equal(
            rep["quantile_returns"].sel(horizon=h).values,
            qd.quantile_returns(fx, f, quantiles=3).values,
        )


def test_factor_report_single_dataarray_and_bad_input():
    fx, fy = random_pair(seed=2)
    rep = qd.factor_report(fx, fy, quantiles=None, methods="pearson")
    assert list(rep["horizon"].values) == [1]  # from the name fwd_ret_1
    other = qd.factor_report(fx, fy.rename("label"), quantiles=2, methods=())
    assert list(other["horizon"].values) == ["label"] and set(other.data_vars) == {
        "quantile_returns"
    }
    np.testing.assert_allclose(
        rep["ic"].isel(horizon=0).values, scipy_ic(fx.values, fy.values, "pearson"), rtol=1e-10
    )
    with pytest.raises(ValueError, match="methods"):
        qd.factor_report(fx, fy, methods=("kendall",))
    with pytest.raises(ValueError, match="nothing to compute"):
        qd.factor_report(fx, fy, methods=(), quantiles=None)
    with pytest.raises(TypeError, match="forward"):
        qd.factor_report(fx, fy.values)
    with pytest.raises(ValueError, match="forward has no variables"):
        qd.factor_report(fx, xr.Dataset())
    with pytest.raises(ValueError, match="date_chunk"):
        qd.factor_report(fx, fy, date_chunk=0)
    with pytest.raises(ValueError, match="bucket_on"):
        qd.factor_report(fx, fy, bucket_on="forward")
    with pytest.raises(ValueError, match="dims"):
        qd.factor_report(fx.expand_dims(k=2), fy)


def test_rank_ic_with_near_ties_matches_scipy():
    """Values that differ only in their last mantissa bits (and exact ties, signed zeros)
    are ranked exactly: the sort keys drop low bits and re-sort those runs by value."""
    rng = np.random.default_rng(17)
    n_dates, n_assets = 12, 300
    x = 1.0 + rng.integers(0, 60, (n_dates, n_assets)) * 2.220446049250313e-16
    x[1] = 1.0 + np.arange(n_assets)[::-1] * 1e-15  # one long run of distinct near-equal values
    x[2] = rng.choice([0.0, -0.0, 5e-324, -5e-324, 1e-300], n_assets)
    x[3, rng.random(n_assets) < 0.3] = np.nan
    y = rng.normal(size=(n_dates, n_assets)) + (x - 1.0) * 1e13
    dates = pd.bdate_range("2021-01-04", periods=n_dates)
    coords = {"date": dates, "asset": [f"{i:06d}.SZ" for i in range(n_assets)]}
    fx = xr.DataArray(x, dims=("date", "asset"), coords=coords)
    fy = xr.DataArray(y, dims=("date", "asset"), coords=coords, name="fwd_ret_1")
    want = scipy_ic(x, y, "spearman")
    assert np.isfinite(want).all()
    np.testing.assert_allclose(qd.ic(fx, fy).values, want, rtol=1e-10, atol=1e-12)
    rep = qd.factor_report(fx.chunk({"date": 5}), fy.chunk({"date": 5}), quantiles=4)
    np.testing.assert_allclose(rep["rank_ic"].isel(horizon=0).values, want, rtol=1e-10)


def test_rank_ic_by_group_on_wide_dates_matches_scipy():
    """700-asset dates: the within-group ranks take the radix (group, value) row sort."""
    rng = np.random.default_rng(23)
    n_dates, n_assets = 6, 700
    x = rng.normal(size=(n_dates, n_assets))
    x[:, :100] = np.round(x[:, :100], 1)  # ties
    x[:, 100:160] = 1.0 + rng.integers(0, 9, (n_dates, 60)) * 2.220446049250313e-16  # near-ties
    x[:, 160:164] = [-0.0, 0.0, -0.0, 0.0]
    y = 0.2 * x + rng.normal(size=x.shape)
    x[rng.random(x.shape) < 0.15] = np.nan
    table = np.array([0, *(801010 + 10 * np.arange(31))])
    codes = table[rng.integers(0, len(table), size=x.shape)]
    dates = pd.bdate_range("2022-03-01", periods=n_dates)
    coords = {"date": dates, "asset": [f"{i:06d}.SH" for i in range(n_assets)]}
    fx = xr.DataArray(x, dims=("date", "asset"), coords=coords, name="factor")
    fy = xr.DataArray(y, dims=("date", "asset"), coords=coords, name="fwd_ret_1")
    group = xr.DataArray(codes, dims=fx.dims, coords=fx.coords)
    got = qd.ic(fx.chunk({"date": 4}), fy.chunk({"date": 4}), group=group)
    assert list(got["group"].values) == list(table[1:])
    for g in table[1:]:
        member = codes == g
        want = scipy_ic(np.where(member, x, np.nan), np.where(member, y, np.nan), "spearman")
        np.testing.assert_allclose(got.sel(group=g).values, want, rtol=1e-10, atol=1e-12)
