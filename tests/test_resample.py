"""resample_bars against a pandas groupby reference on the trading calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd
from quantdask.testing import raise_if_dask_computes


def _daily(n: int = 300, m: int = 4, seed: int = 0, chunks: int = 7) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2019-12-20", periods=n + 40)
    dates = dates[rng.random(len(dates)) > 0.1][:n]  # holidays: gaps in the calendar
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, size=(n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, size=(n, m)))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    vol = rng.integers(1, 100, size=(n, m)).astype(float)
    fields = {"open": open_, "high": high, "low": low, "close": close, "vol": vol}
    off = rng.random((n, m)) < 0.1
    off[40:90, 1] = True  # suspended for whole weeks and months
    ds = xr.Dataset(
        {k: (("date", "asset"), np.where(off, np.nan, v)) for k, v in fields.items()},
        coords={"date": dates, "asset": [f"{i:06d}.SZ" for i in range(m)]},
    )
    return ds.chunk({"date": chunks, "asset": 3})


def _reference(ds: xr.Dataset, freq: str) -> dict[str, pd.DataFrame]:
    dates = pd.DatetimeIndex(ds["date"].values)
    if freq == "W":
        key = dates.to_period("W-SUN")
    else:
        key = dates.to_period({"M": "M", "Q": "Q", "Y": "Y"}[freq])
    out = {}
    for field, agg in [
        ("open", "first"),
        ("high", "max"),
        ("low", "min"),
        ("close", "last"),
        ("vol", "sum"),
    ]:
        df = pd.DataFrame(ds[field].values, index=dates)
        g = df.groupby(key)
        res = getattr(g, agg)(min_count=1) if agg == "sum" else getattr(g, agg)()
        res.index = pd.Series(dates, index=dates).groupby(key).max().to_numpy()
        out[field] = res
    return out


@pytest.mark.parametrize("freq", ["W", "M", "Q", "Y"])
@pytest.mark.parametrize("chunks", [7, 1000])
def test_resample_vs_pandas(freq: str, chunks: int) -> None:
    ds = _daily(chunks=chunks)
    with raise_if_dask_computes():
        bars = qd.resample_bars(ds, freq=freq)
    ref = _reference(ds, freq)
    for field, exp in ref.items():
        np.testing.assert_array_equal(bars["date"].values, exp.index.values.astype("M8[ns]"))
        np.testing.assert_allclose(bars[field].values, exp.to_numpy(), equal_nan=True)
    assert bars["close"].dims == ("date", "asset")


def test_resample_errors() -> None:
    ds = _daily(n=30)
    with pytest.raises(ValueError, match="freq"):
        qd.resample_bars(ds, freq="D")
    with pytest.raises(ValueError, match="lacks"):
        qd.resample_bars(ds.drop_vars("low"))
    with pytest.raises(TypeError):
        qd.resample_bars(ds["close"])


# -- bars' pre_close and up/down (item 6): compounded raw returns, not adjusted closes ---------
def _with_pre_close(ds: xr.Dataset, seed: int = 1) -> xr.Dataset:
    """Add the vendor's pre_close: the previous traded close, divided by a dividend/split
    ratio on a few ex-dates (so raw closes of consecutive days are not comparable)."""
    rng = np.random.default_rng(seed)
    close = ds["close"].values
    n, m = close.shape
    ratio = np.where(rng.random((n, m)) < 0.03, rng.uniform(1.01, 2.0, (n, m)), 1.0)
    pre = np.full((n, m), np.nan)
    for j in range(m):
        last = np.nan
        for t in range(n):
            if not np.isnan(close[t, j]):
                pre[t, j] = last / ratio[t, j]
                last = close[t, j]
    return ds.assign(pre_close=(("date", "asset"), pre)).chunk(ds.chunksizes)


@pytest.mark.parametrize("freq", ["W", "M"])
@pytest.mark.parametrize("chunks", [7, 300])
def test_bar_pre_close_compounds_raw_returns(freq: str, chunks: int) -> None:
    ds = _with_pre_close(_daily(chunks=chunks))
    with raise_if_dask_computes():
        bars = qd.resample_bars(ds, freq=freq)
    c = ds["close"].to_pandas()
    pre = ds["pre_close"].to_pandas()
    dates = pd.DatetimeIndex(ds["date"].values)
    key = dates.to_period("W-SUN" if freq == "W" else "M")
    bar_growth = (c / pre).groupby(key).prod()  # NaN (non-traded) days skipped
    bar_close = c.groupby(key).last()
    # a traded day without pre_close (an asset's first bar) leaves the bar without one
    known = ~(c.notna() & pre.isna()).groupby(key).any()
    ref = (bar_close / bar_growth).where(known)
    got = bars["pre_close"].to_pandas()
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12)
    assert np.isfinite(got.to_numpy()).sum() > 20
    # up / down of each bar: the sign of the pandas bar return, where it is not tiny
    ret = (bar_growth - 1.0).where(bar_close.notna() & known)
    direction = qd.ops.resample.bar_direction(np.log(bars["close"] / bars["pre_close"]))
    big = ret.abs() > 1e-6
    np.testing.assert_array_equal(
        direction.to_pandas().to_numpy()[big.to_numpy()], np.sign(ret.to_numpy()[big.to_numpy()])
    )


def test_bar_unchanged_across_an_ex_dividend_day() -> None:
    """A week whose only event is an ex-dividend day closing at its pre_close is unchanged,
    exactly: its pre_close is the vendor's 9.80, not 10.00 * 9.8 / 10 (hand-computed)."""
    dates = pd.DatetimeIndex(["2023-12-29", *pd.bdate_range("2024-01-01", periods=15)])
    close = np.array(
        [9.0, 9.2, 9.4, 9.6, 9.8, 10.0, 9.8, 9.9, 9.8, 9.8, 9.8, 9.7, 9.9, 9.9, 10, 10]
    )
    pre = np.array([8.9, 9.0, 9.2, 9.4, 9.6, 9.8, 9.8, 9.8, 9.9, 9.8, 9.8, 9.8, 9.7, 9.9, 9.9, 10])
    ds = xr.Dataset(
        {f: ("date", v) for f, v in {"close": close, "pre_close": pre}.items()},
        coords={"date": dates},
    )
    ds = ds.assign(open=ds["close"], high=ds["close"], low=ds["close"]).chunk({"date": 4})
    bars = qd.resample_bars(ds, freq="W").compute()
    assert bars["close"].values.tolist() == [9.0, 10.0, 9.8, 10.0]
    # Friday: its own 8.9; week 1: 9.0 (previous close); week 2: the ex-day's 9.80; week 3: 9.80
    assert bars["pre_close"].values.tolist() == [8.9, 9.0, 9.8, 9.8]
    direction = qd.ops.resample.bar_direction(np.log(bars["close"] / bars["pre_close"]))
    assert direction.values.tolist() == [1.0, 1.0, 0.0, 1.0]
