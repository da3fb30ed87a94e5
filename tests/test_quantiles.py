"""Quantile buckets, quantile returns, spread and factor turnover against pandas references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import quantdask as qd
from quantdask.testing import raise_if_dask_computes


def random_pair(seed: int = 2, n_dates: int = 30, n_assets: int = 37, nan_share: float = 0.15):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2019-03-01", periods=n_dates)
    assets = [f"{300000 + i}.SZ" for i in range(n_assets)]
    x = rng.normal(size=(n_dates, n_assets))
    y = 0.01 * x + rng.normal(0, 0.02, size=(n_dates, n_assets))
    x[rng.random(x.shape) < nan_share] = np.nan
    y[rng.random(y.shape) < nan_share] = np.nan
    x[4, 3:] = np.nan  # only 3 valid factor values: fewer than 5 quantiles -> NaN date
    coords = {"date": dates, "asset": assets}
    return (
        xr.DataArray(x, dims=("date", "asset"), coords=coords, name="factor"),
        xr.DataArray(y, dims=("date", "asset"), coords=coords, name="fwd_ret_5"),
    )


def long_format(fx: xr.DataArray, fy: xr.DataArray) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "factor": fx.to_series(),
            "fwd": fy.to_series(),
        }
    )
    return df.reset_index()


def pandas_buckets(df: pd.DataFrame, q: int, on: str = "factor") -> pd.Series:
    """pd.qcut on per-date average ranks of the rows where ``on`` is finite; 1..q."""
    src = df[df[on].notna()] if on == "factor" else df[df["factor"].notna() & df["fwd"].notna()]

    def cut(s: pd.Series) -> pd.Series:
        if s.notna().sum() < q:
            return pd.Series(np.nan, index=s.index)
        return pd.qcut(s.rank(method="average"), q, labels=False) + 1.0

    return src.groupby("date")["factor"].transform(cut)


@pytest.mark.parametrize("q", [3, 5, 10])
@pytest.mark.parametrize("bucket_on", ["factor", "both"])
def test_quantile_returns_match_pandas_groupby(q, bucket_on):
    fx, fy = random_pair()
    got = qd.quantile_returns(
        fx.chunk({"date": 7}), fy.chunk({"date": 7}), quantiles=q, bucket_on=bucket_on
    )
    assert got.dims == ("date", "quantile")
    assert list(got["quantile"].values) == list(range(1, q + 1))
    df = long_format(fx, fy)
    df["bucket"] = pandas_buckets(df, q, on="factor" if bucket_on == "factor" else "both")
    want = (
        df.dropna(subset=["bucket", "fwd"])
        .groupby(["date", "bucket"])["fwd"]
        .mean()
        .unstack("bucket")
        .reindex(index=fx["date"].values, columns=np.arange(1, q + 1, dtype=float))
    )
    np.testing.assert_allclose(got.values, want.to_numpy(), rtol=1e-12, atol=1e-15)
    assert np.isnan(got.values[4]).all()
    assert np.isfinite(got.values).sum() > 20 * q


def test_factor_quantiles_match_qcut_including_exact_edges():
    # n - 1 divisible by q puts ranks exactly on the bin edges
    for n in (11, 21, 16, 7):
        x = np.random.default_rng(n).permutation(n).astype(float)
        da = xr.DataArray(x[None, :], dims=("date", "asset"))
        got = qd.factor_quantiles(da, quantiles=5).values[0]
        want = pd.qcut(pd.Series(x).rank(), 5, labels=False).to_numpy() + 1.0
        np.testing.assert_array_equal(got, want)


def test_factor_quantiles_ties_share_a_bucket():
    x = np.array([[1.0, 1.0, 1.0, 2.0, 3.0, 4.0, np.nan]])
    got = qd.factor_quantiles(xr.DataArray(x, dims=("date", "asset")), quantiles=3).values[0]
    # average ranks 2, 2, 2, 4, 5, 6 over n=6; edges 1 + k*5/3 = 2.67, 4.33
    np.testing.assert_array_equal(got, [1, 1, 1, 2, 3, 3, np.nan])


def test_quantile_spread():
    fx, fy = random_pair()
    qret = qd.quantile_returns(fx, fy, quantiles=5)
    spread = qd.quantile_spread(qret)
    np.testing.assert_allclose(spread.values, qret.values[:, 4] - qret.values[:, 0])
    with pytest.raises(ValueError, match="quantile"):
        qd.quantile_spread(fx)


def test_factor_turnover_matches_sets():
    fx, _ = random_pair(seed=9, nan_share=0.05)
    q = 5
    got = qd.factor_turnover(fx.chunk({"date": 7}), quantiles=q)
    df = long_format(fx, fx)
    df["bucket"] = pandas_buckets(df, q)
    dates = np.sort(df["date"].unique())
    top = {d: set(df.loc[(df["date"] == d) & (df["bucket"] == q), "asset"]) for d in dates}
    want = [np.nan]
    for prev, cur in zip(dates[:-1], dates[1:], strict=True):
        a, b = top[cur], top[prev]
        want.append(1 - len(a & b) / len(a) if a else np.nan)
    np.testing.assert_allclose(got.values, want, rtol=1e-12)
    # on rebalance dates only
    reb = fx["date"].values[::5]
    got_reb = qd.factor_turnover(fx, quantiles=q, dates=reb)
    assert got_reb.sizes["date"] == len(reb)
    a, b = top[reb[2]], top[reb[1]]
    assert got_reb.values[2] == pytest.approx(1 - len(a & b) / len(a))
    with pytest.raises(ValueError, match="dates"):
        qd.factor_turnover(fx, dates=[pd.Timestamp("1990-01-01")])


def test_quantile_functions_are_lazy():
    fx, fy = random_pair()
    fx, fy = fx.chunk({"date": 7}), fy.chunk({"date": 7})
    with raise_if_dask_computes():
        qret = qd.quantile_returns(fx, fy, quantiles=5)
        qd.quantile_spread(qret)
        qd.factor_quantiles(fx)
        qd.factor_turnover(fx)
    assert qret.chunks is not None


def test_quantile_bad_input():
    fx, fy = random_pair()
    with pytest.raises(ValueError, match="quantiles"):
        qd.quantile_returns(fx, fy, quantiles=1)
    with pytest.raises(TypeError, match="quantiles"):
        qd.quantile_returns(fx, fy, quantiles=2.5)
    with pytest.raises(ValueError, match="bucket_on"):
        qd.quantile_returns(fx, fy, bucket_on="forward")


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 8) | st.just(-1), min_size=1, max_size=40),
    q=st.integers(2, 10),
)
def test_factor_quantiles_properties(values, q):
    """Buckets are 1..q, monotone in the factor, ties share a bucket, sizes balanced, and
    equal to pandas.qcut on ranks when there are no ties (-1 stands for a missing value)."""
    x = np.array([np.nan if v < 0 else float(v) for v in values])
    got = qd.factor_quantiles(xr.DataArray(x[None, :], dims=("date", "asset")), quantiles=q)
    b = got.values[0]
    ok = np.isfinite(x)
    assert np.array_equal(np.isfinite(b), ok & (ok.sum() >= q))
    if ok.sum() < q:
        return
    xv, bv = x[ok], b[ok]
    assert set(np.unique(bv)) <= set(range(1, q + 1))
    order = np.argsort(xv, kind="stable")
    assert np.all(np.diff(bv[order]) >= 0)
    for v in np.unique(xv):
        assert len(set(bv[xv == v])) == 1
    if len(np.unique(xv)) == len(xv):
        want = pd.qcut(pd.Series(xv).rank(), q, labels=False).to_numpy() + 1.0
        np.testing.assert_array_equal(bv, want)
        sizes = np.bincount(bv.astype(int), minlength=q + 1)[1:]
        assert sizes.max() - sizes.min() <= 1


@pytest.mark.parametrize("bucket_on", ["factor", "both"])
def test_factor_report_quantiles_match_pandas_groupby(bucket_on):
    fx, fy = random_pair(seed=9)
    rng = np.random.default_rng(3)
    fz = fy.copy(data=fy.values + rng.normal(0, 0.01, fy.shape)).rename("fwd_ret_20")
    fz.values[rng.random(fz.shape) < 0.2] = np.nan
    fwd = xr.Dataset({"fwd_ret_5": fy, "fwd_ret_20": fz}).chunk({"date": 7, "asset": 11})
    rep = qd.factor_report(fx.chunk({"date": 7}), fwd, quantiles=4, bucket_on=bucket_on)
    got = rep["quantile_returns"].compute()
    assert list(got["horizon"].values) == [5, 20]
    for h, fr in ((5, fy), (20, fz)):
        df = long_format(fx, fr)
        df["bucket"] = pandas_buckets(df, 4, on="factor" if bucket_on == "factor" else "both")
        want = (
            df.dropna(subset=["bucket", "fwd"])
            .groupby(["date", "bucket"])["fwd"]
            .mean()
            .unstack("bucket")
            .reindex(index=fx["date"].values, columns=np.arange(1, 5, dtype=float))
        )
        np.testing.assert_allclose(
            got.sel(horizon=h).values, want.to_numpy(), rtol=1e-12, atol=1e-15
        )
        assert np.isnan(got.sel(horizon=h).values[4]).all()
