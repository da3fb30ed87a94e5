"""qd.compute (lookback slicing, trimming, naming, levels, laziness) and qd.to_zarr."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import quantdask as qd
from quantdask.factors.registry import unregister_factor
from quantdask.io.store import zarr_quiet
from quantdask.testing import raise_if_dask_computes

N_DATES, N_ASSETS = 40, 5


def _tree(chunk: int = 7) -> xr.DataTree:
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2021-01-04", periods=N_DATES).astype("datetime64[ns]")
    assets = [f"{600000 + i}.SH" for i in range(N_ASSETS)]
    close = 10 + rng.standard_normal((N_DATES, N_ASSETS)).cumsum(axis=0)
    close[3, 1] = np.nan
    daily = xr.Dataset(
        {"close": (("date", "asset"), close)}, coords={"date": dates, "asset": assets}
    ).chunk({"date": chunk, "asset": 2})
    index = xr.Dataset(
        {"close": (("date", "index"), 1000 + rng.standard_normal((N_DATES, 2)).cumsum(axis=0))},
        coords={"date": dates, "index": ["000300.SH", "000905.SH"]},
    ).chunk({"date": chunk})
    macro = xr.Dataset({"cgb_10y": ("date", np.full(N_DATES, 3.0))}, coords={"date": dates})
    fundamentals = xr.Dataset({"revenue": ("record", np.arange(4.0))})
    return xr.DataTree.from_dict(
        {"daily": daily, "index": index, "macro": macro, "fundamentals": fundamentals}
    )


SEEN: dict[str, object] = {}


@pytest.fixture(scope="module", autouse=True)
def test_factors():
    @qd.register_factor("t_sum", lookback=lambda window: window - 1, level=("asset", "index"))
    def t_sum(market, *, window=5, level="asset"):
        """Rolling sum of close over ``window`` days (strict)."""
        node = "daily" if level == "asset" else "index"
        SEEN["first_date"] = market[node]["date"].values[0]
        SEEN["record"] = market["fundamentals"].sizes["record"]
        return market[node]["close"].rolling(date=window).sum()

    @qd.register_factor("t_neg")
    def t_neg(market):
        """Negated close."""
        return -market["daily"]["close"]

    yield
    unregister_factor("t_sum")
    unregister_factor("t_neg")


def _pandas_rolling_sum(close: np.ndarray, window: int) -> np.ndarray:
    return pd.DataFrame(close).rolling(window).sum().to_numpy()


@pytest.mark.parametrize("window", [1, 5, 12])
def test_compute_loads_only_lookback_and_matches_full(window):
    tree = _tree()
    dates = tree["daily"]["date"].values
    start, end = dates[20], dates[33]
    ds = qd.compute(tree, qd.factor("t_sum", window=window), start=start, end=end)
    # the factor saw exactly `lookback` extra dates before start, and all of fundamentals
    assert SEEN["first_date"] == dates[20 - (window - 1)]
    assert SEEN["record"] == 4
    var = f"t_sum_{window}"
    assert list(ds.data_vars) == [var]
    assert ds[var].dims == ("date", "asset")
    np.testing.assert_array_equal(ds["date"].values, dates[20:34])
    ref = _pandas_rolling_sum(tree["daily"]["close"].values, window)[20:34]
    np.testing.assert_allclose(ds[var].values, ref, equal_nan=True)
    attrs = ds[var].attrs
    assert attrs["factor"] == "t_sum" and json.loads(attrs["params"]) == {"window": window}
    assert attrs["lookback"] == window - 1


def test_start_near_beginning_clips_lookback():
    tree = _tree()
    dates = tree["daily"]["date"].values
    ds = qd.compute(tree, qd.factor("t_sum", window=10), start=dates[2])
    assert SEEN["first_date"] == dates[0]
    ref = _pandas_rolling_sum(tree["daily"]["close"].values, 10)[2:]
    np.testing.assert_allclose(ds["t_sum_10"].values, ref, equal_nan=True)


def test_dates_between_trading_days_and_defaults():
    tree = _tree()
    dates = pd.DatetimeIndex(tree["daily"]["date"].values)
    # a Saturday start snaps forward, a Sunday end snaps back
    ds = qd.compute(tree, ["t_neg", "t_sum"], start="2021-01-09", end="2021-01-17")
    assert list(ds.data_vars) == ["t_neg", "t_sum_5"]
    np.testing.assert_array_equal(
        pd.DatetimeIndex(ds["date"].values),
        dates[(dates >= "2021-01-09") & (dates <= "2021-01-17")],
    )
    full = qd.compute(tree, "t_neg")
    assert full.sizes["date"] == N_DATES


def test_index_level():
    tree = _tree()
    dates = tree["index"]["date"].values
    ds = qd.compute(tree, qd.factor("t_sum", window=3), start=dates[10], level="index")
    assert ds["t_sum_3"].dims == ("date", "index")
    ref = _pandas_rolling_sum(tree["index"]["close"].values, 3)[10:]
    np.testing.assert_allclose(ds["t_sum_3"].values, ref)
    with pytest.raises(ValueError, match="not 'index'"):
        qd.compute(tree, "t_neg", level="index")


def test_compute_accepts_path(tmp_path):
    tree = _tree()
    with zarr_quiet():
        tree.to_zarr(tmp_path / "m.zarr", zarr_format=3, consolidated=True)
    ds = qd.compute(str(tmp_path / "m.zarr"), "t_neg")
    np.testing.assert_allclose(ds["t_neg"].values, -tree["daily"]["close"].values)


def test_compute_is_lazy():
    tree = _tree()
    with raise_if_dask_computes():
        ds = qd.compute(tree, [qd.factor("t_sum", window=4), "t_neg"], start="2021-02-01")
    assert all(v.chunks is not None for v in ds.data_vars.values())


def test_compute_errors():
    tree = _tree()
    with pytest.raises(ValueError, match="level"):
        qd.compute(tree, "t_neg", level="stock")
    with pytest.raises(ValueError, match="no trading date"):
        qd.compute(tree, "t_neg", start="2030-01-01")
    with pytest.raises(ValueError, match="no trading date"):
        qd.compute(tree, "t_neg", start="2021-02-01", end="2021-01-20")
    with pytest.raises(ValueError, match="not a date"):
        qd.compute(tree, "t_neg", start="yesterday-ish")
    with pytest.raises(KeyError, match="unknown factor"):
        qd.compute(tree, "nope")
    with pytest.raises(TypeError, match="Factor"):
        qd.compute(tree, [3])
    with pytest.raises(ValueError, match="empty"):
        qd.compute(tree, [])
    with pytest.raises(ValueError, match="repeat"):
        qd.compute(tree, ["t_neg", qd.factor("t_neg")])
    with pytest.raises(TypeError, match="DataTree"):
        qd.compute(42, "t_neg")


def test_to_zarr_roundtrip_atomic(tmp_path):
    tree = _tree()
    ds = qd.compute(tree, [qd.factor("t_sum", window=3), "t_neg"])
    path = tmp_path / "out" / "factors.zarr"
    assert qd.to_zarr(ds, path) == path
    back = xr.open_zarr(path, zarr_format=3)
    np.testing.assert_allclose(back["t_neg"].values, -tree["daily"]["close"].values)
    assert back["t_sum_3"].encoding["chunks"] == (N_DATES, N_ASSETS)
    assert back["t_sum_3"].attrs["factor"] == "t_sum"
    (codec,) = zarr.open_array(path / "t_neg", mode="r").compressors
    assert (codec.cname.value, codec.shuffle.value) == ("lz4", "shuffle")
    with pytest.raises(FileExistsError):
        qd.to_zarr(ds, path)
    qd.to_zarr(ds[["t_neg"]], path, mode="w")
    assert list(xr.open_zarr(path, zarr_format=3).data_vars) == ["t_neg"]
    # no temporary directories left next to the store
    assert sorted(p.name for p in path.parent.iterdir()) == ["factors.zarr"]
    with pytest.raises(ValueError, match="mode"):
        qd.to_zarr(ds, path, mode="a")
