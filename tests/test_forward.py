"""Forward returns against pandas and hand-computed references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd
from quantdask.testing import raise_if_dask_computes


def random_daily(seed: int = 0, n_dates: int = 61, n_assets: int = 9) -> xr.Dataset:
    """A small daily panel with listings, delistings, suspensions, corporate actions and
    closes at the up limit."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_dates)
    assets = [f"{600000 + i}.SH" for i in range(n_assets)]
    raw = 10 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_dates, n_assets)), axis=0))
    suspended = rng.random((n_dates, n_assets)) < 0.08
    suspended[10:25, 2] = True  # a long suspension
    listed = np.ones((n_dates, n_assets), dtype=bool)
    listed[:15, 3] = False  # listed late
    listed[40:, 4] = False  # delisted
    close = np.where(listed & ~suspended, raw, np.nan)
    # corporate actions: on a few days the previous close is adjusted by a factor
    adj = np.where(rng.random((n_dates, n_assets)) < 0.03, 0.5, 1.0)
    prev_traded = pd.DataFrame(close).ffill().shift(1).to_numpy()
    pre_close = np.where(np.isfinite(close), prev_traded * adj, np.nan)
    up_limit = np.round(pre_close * 1.1, 2)
    # some closes sit exactly at the up limit
    at_limit = np.isfinite(close) & np.isfinite(up_limit) & (rng.random(close.shape) < 0.07)
    close = np.where(at_limit, up_limit, close)
    # recompute pre_close from the final closes so returns are consistent
    prev_traded = pd.DataFrame(close).ffill().shift(1).to_numpy()
    pre_close = np.where(np.isfinite(close), prev_traded * adj, np.nan)
    coords = {"date": dates, "asset": assets}
    dims = ("date", "asset")
    return xr.Dataset(
        {
            "close": (dims, close),
            "pre_close": (dims, pre_close),
            "up_limit": (dims, up_limit),
            "suspended": (dims, suspended & listed),
        },
        coords=coords,
    )


def pandas_reference(ds: xr.Dataset, h: int) -> pd.DataFrame:
    """Rolling product of daily gross returns, shifted back, masked where entry is blocked."""
    close = ds["close"].to_pandas()
    pre = ds["pre_close"].to_pandas()
    gross = (close / pre).fillna(1.0)
    fwd = gross.rolling(h).apply(np.prod, raw=True).shift(-(1 + h)) - 1.0
    up = ds["up_limit"].to_pandas()
    blocked = close.isna() | ds["suspended"].to_pandas() | (up.notna() & (close >= up - 0.005))
    return fwd.where(~blocked.shift(-1, fill_value=True))


@pytest.mark.parametrize("chunks", [None, {"date": 7, "asset": 4}, {"date": 13}])
def test_forward_returns_match_pandas(chunks):
    ds = random_daily()
    src = ds.chunk(chunks) if chunks else ds
    fwd = qd.forward_returns(src, periods=(1, 5, 20))
    assert set(fwd.data_vars) == {"fwd_ret_1", "fwd_ret_5", "fwd_ret_20"}
    for h in (1, 5, 20):
        got = fwd[f"fwd_ret_{h}"].to_pandas()
        want = pandas_reference(ds, h)
        pd.testing.assert_frame_equal(got, want, check_names=False, rtol=1e-10, atol=1e-12)
        # the reference masks something of each kind: not a vacuous comparison
        assert want.notna().sum().sum() > 0


def test_forward_returns_hand_computed():
    # one asset, 8 days; suspended on day 3; limit-up close on day 5
    dates = pd.bdate_range("2022-03-01", periods=8)
    close = np.array([10.0, 11.0, 12.1, np.nan, 13.31, 14.64, 14.0, 14.0])
    pre = np.array([np.nan, 10.0, 11.0, np.nan, 12.1, 13.31, 14.64, 14.0])
    up = np.array([np.nan, 11.0, 12.1, np.nan, 13.31, 14.64, 16.1, 15.4])
    susp = np.array([False, False, False, True, False, False, False, False])
    ds = xr.Dataset(
        {
            "close": (("date", "asset"), close[:, None]),
            "pre_close": (("date", "asset"), pre[:, None]),
            "up_limit": (("date", "asset"), up[:, None]),
            "suspended": (("date", "asset"), susp[:, None]),
        },
        coords={"date": dates, "asset": ["000001.SZ"]},
    )
    f1 = qd.forward_returns(ds, periods=1)["fwd_ret_1"].values[:, 0]
    f2 = qd.forward_returns(ds, periods=(2,))["fwd_ret_2"].values[:, 0]
    # day 0: entry at day 1 close 11.0 is a limit-up close (up_limit 11.0) -> blocked
    assert np.isnan(f1[0])
    # day 2: entry at day 3 -> suspended -> blocked
    assert np.isnan(f1[2])
    # day 5: entry day 6 close 14.0 (not at limit 16.1), exit day 7 close 14.0 -> 0
    assert f1[5] == pytest.approx(0.0)
    # day 6: entry day 7, exit beyond the panel -> NaN
    assert np.isnan(f1[6]) and np.isnan(f1[7])
    # day 5 two-day: exit beyond the panel
    assert np.isnan(f2[5])
    # day 4: entry day 5 (14.64 == up limit 14.64) -> blocked
    assert np.isnan(f1[4]) and np.isnan(f2[4])
    # day 3 (suspended itself): entry day 4 close 13.31 is at its limit 13.31 -> blocked
    assert np.isnan(f1[3])
    # unblock day 4's limit: entry at 13.31; next day 14.64 -> +10%
    ds2 = ds.copy(deep=True)
    ds2["up_limit"][:] = np.nan
    g1 = qd.forward_returns(ds2, periods=1)["fwd_ret_1"].values[:, 0]
    g2 = qd.forward_returns(ds2, periods=2)["fwd_ret_2"].values[:, 0]
    assert g1[3] == pytest.approx(14.64 / 13.31 - 1)
    # day 1: entry day 2 close 12.1; day 3 suspended (no return); day 4 close 13.31 -> +10%
    assert g2[1] == pytest.approx(13.31 / 12.1 - 1)
    assert g1[0] == pytest.approx(12.1 / 11.0 - 1)


def test_forward_returns_is_lazy():
    ds = random_daily().chunk({"date": 7})
    with raise_if_dask_computes():
        fwd = qd.forward_returns(ds, periods=(1, 5, 20))
    assert fwd["fwd_ret_5"].chunks is not None


def test_forward_returns_bad_input():
    ds = random_daily()
    with pytest.raises(ValueError, match="periods"):
        qd.forward_returns(ds, periods=(0,))
    with pytest.raises(ValueError, match="periods"):
        qd.forward_returns(ds, periods=())
    with pytest.raises(ValueError, match="pre_close"):
        qd.forward_returns(ds.drop_vars("pre_close"))
    with pytest.raises(TypeError, match="market"):
        qd.forward_returns(42)


def test_forward_returns_on_market(market):
    fwd = qd.forward_returns(market, periods=(1, 5))
    daily = market["daily"].to_dataset()
    assert fwd["fwd_ret_5"].shape == daily["close"].shape
    got = fwd["fwd_ret_5"].isel(date=slice(0, 300)).to_pandas()
    close = daily["close"].isel(date=slice(0, 307)).to_pandas()
    pre = daily["pre_close"].isel(date=slice(0, 307)).to_pandas()
    gross = (close / pre).fillna(1.0)
    want = gross.rolling(5).apply(np.prod, raw=True).shift(-6) - 1.0
    blocked = close.isna() | daily["suspended"].isel(date=slice(0, 307)).to_pandas()
    up = daily["up_limit"].isel(date=slice(0, 307)).to_pandas()
    blocked = blocked | (up.notna() & (close >= up - 0.005))
    want = want.where(~blocked.shift(-1, fill_value=True)).iloc[:300]
    pd.testing.assert_frame_equal(got, want, check_names=False, rtol=1e-9, atol=1e-12)


def test_forward_returns_on_market_is_lazy(market):
    with raise_if_dask_computes():
        fwd = qd.forward_returns(market, periods=(1, 5, 20))
        close = market["daily"]["close"]
        qd.ic(-(close / close.shift(date=20) - 1.0), fwd["fwd_ret_20"])


@pytest.mark.parametrize("h", [1, 5])
def test_forward_return_uses_only_its_window(h):
    """fwd_ret_h at t depends on nothing after t+1+h and nothing before t+1 except the
    pre_close chain: cutting the panel to [t-3, t+1+h] leaves the value unchanged."""
    ds = random_daily(seed=5, n_dates=50)
    full = qd.forward_returns(ds, periods=h)[f"fwd_ret_{h}"]
    for t in (3, 17, 30):
        cut = ds.isel(date=slice(t - 3, t + 2 + h))
        part = qd.forward_returns(cut, periods=h)[f"fwd_ret_{h}"]
        np.testing.assert_allclose(
            part.sel(date=ds["date"][t]).values, full.isel(date=t).values, rtol=1e-12
        )
        # the last h+1 dates of a cut panel have no complete window
        assert np.isnan(part.isel(date=slice(-(h + 1), None)).values).all()


@pytest.mark.parametrize("chunks", [{"date": 7, "asset": 4}, {"date": 25}, {"date": 61}])
def test_forward_returns_keep_input_chunks_and_dim_order(chunks):
    ds = random_daily(seed=9).chunk(chunks)
    fwd = qd.forward_returns(ds, periods=(1, 20))
    assert fwd["fwd_ret_20"].chunks == ds["close"].chunks
    # assets first: same values, same dim order as the input
    tr = qd.forward_returns(ds.transpose("asset", "date"), periods=(1, 20))
    assert tr["fwd_ret_1"].dims == ("asset", "date")
    for h in (1, 20):
        want = pandas_reference(random_daily(seed=9), h)
        pd.testing.assert_frame_equal(
            tr[f"fwd_ret_{h}"].T.to_pandas(), want, check_names=False, rtol=1e-10, atol=1e-12
        )


@pytest.mark.distributed
def test_forward_returns_and_factor_report_on_a_local_cluster():
    from distributed import Client, LocalCluster

    ds = random_daily(seed=12, n_dates=80, n_assets=15).chunk({"date": 16, "asset": 8})
    rng = np.random.default_rng(4)
    fac = xr.DataArray(rng.normal(size=ds["close"].shape), coords=ds["close"].coords)
    fac = fac.chunk({"date": 16})
    fwd = qd.forward_returns(ds, periods=(1, 5))
    rep = qd.factor_report(fac, fwd, quantiles=3)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        got_fwd, got_rep = client.compute([fwd, rep], sync=True)
    raw = random_daily(seed=12, n_dates=80, n_assets=15)
    for h in (1, 5):
        pd.testing.assert_frame_equal(
            got_fwd[f"fwd_ret_{h}"].to_pandas(),
            pandas_reference(raw, h),
            check_names=False,
            rtol=1e-10,
            atol=1e-12,
        )
    local = rep.compute(scheduler="sync")
    xr.testing.assert_allclose(got_rep, local, rtol=1e-12)
    assert np.isfinite(got_rep["rank_ic"].values).sum() > 100
