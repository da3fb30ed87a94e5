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
