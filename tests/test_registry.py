"""The factor registry: registration, lookup, parameter binding, listing, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd
from quantdask.factors.registry import UNBOUNDED, get_spec, unregister_factor


@pytest.fixture
def scratch():
    """Names registered inside a test are removed afterwards."""
    names: list[str] = []
    yield names
    for n in names:
        try:
            unregister_factor(n)
        except KeyError:
            pass


def _tree() -> xr.DataTree:
    dates = pd.date_range("2020-01-01", periods=6, freq="B").astype("datetime64[ns]")
    close = xr.DataArray(
        np.arange(18.0).reshape(6, 3),
        dims=("date", "asset"),
        coords={"date": dates, "asset": ["a.SH", "b.SH", "c.SZ"]},
    )
    return xr.DataTree.from_dict({"daily": xr.Dataset({"close": close})})


def test_register_and_bind(scratch):
    scratch.append("t_scaled")

    @qd.register_factor("t_scaled", lookback=lambda window, scale: window - 1)
    def t_scaled(market, *, window=3, scale=2.0):
        """Close times scale.

        More text.
        """
        return market["daily"]["close"] * scale

    f = qd.factor("t_scaled", window=5)
    assert f.params == {"window": 5, "scale": 2.0}
    assert f.lookback == 4
    assert f.variable == "t_scaled_5_2p0"
    assert f.summary == "Close times scale."
    out = f(_tree())
    assert out.name == "t_scaled_5_2p0"
    np.testing.assert_array_equal(out.values, np.arange(18.0).reshape(6, 3) * 2.0)

    listing = qd.list_factors()
    row = listing.set_index("name").loc["t_scaled"]
    assert row["params"] == "window=3, scale=2.0"
    assert row["lookback"] == 2
    assert row["level"] == "asset"
    assert row["doc"] == "Close times scale."
    assert list(listing.columns) == ["name", "params", "defaults", "lookback", "level", "doc"]


def test_variable_names():
    assert qd.factor("close_vs_ma", window=20).variable == "close_vs_ma_20"
    assert qd.factor("streak", freq="W").variable == "streak_W"
    assert qd.factor("pe_ttm_pct", window="all").variable == "pe_ttm_pct_all"
    assert qd.factor("risk_premium_band", k=-2).variable == "risk_premium_band_m2"
    assert qd.factor("pe_ttm_pct", window="all").lookback == UNBOUNDED


def test_duplicate_name_raises_unless_override(scratch):
    scratch.append("t_dup")

    @qd.register_factor("t_dup")
    def first(market):
        return market["daily"]["close"]

    with pytest.raises(ValueError, match="already registered"):

        @qd.register_factor("t_dup")
        def second(market):
            return market["daily"]["close"] + 1

    @qd.register_factor("t_dup", override=True, doc="replacement")
    def third(market):
        return market["daily"]["close"] + 2

    assert get_spec("t_dup").func is third
    assert qd.factor("t_dup").doc == "replacement"


def test_builtin_duplicate_raises():
    with pytest.raises(ValueError, match="close_vs_ma"):

        @qd.register_factor("close_vs_ma")
        def again(market, *, window=5):
            return market["daily"]["close"]


def test_unknown_name_lists_valid():
    with pytest.raises(KeyError, match="close_vs_ma") as err:
        qd.factor("close_vs_mb")
    assert "unknown factor 'close_vs_mb'" in str(err.value)


def test_unknown_param_lists_valid():
    with pytest.raises(TypeError, match="valid parameters: window"):
        qd.factor("close_vs_ma", windw=20)


def test_missing_required_param(scratch):
    scratch.append("t_req")

    @qd.register_factor("t_req", lookback=lambda n: n)
    def t_req(market, *, n):
        return market["daily"]["close"]

    with pytest.raises(TypeError, match="needs parameter 'n'"):
        qd.factor("t_req")
    assert qd.factor("t_req", n=3).variable == "t_req_3"
    row = qd.list_factors().set_index("name").loc["t_req"]
    assert row["params"] == "n" and row["lookback"] is None


def test_bad_registrations(scratch):
    with pytest.raises(ValueError, match="identifier"):
        qd.register_factor("bad name")
    with pytest.raises(ValueError, match="level"):
        qd.register_factor("t_lv", level=("stock",))
    with pytest.raises(ValueError, match="lookback"):
        qd.register_factor("t_lb", lookback=-1)
    with pytest.raises(TypeError, match="kwargs"):

        @qd.register_factor("t_kw")
        def kw(market, **params):
            return market["daily"]["close"]

    with pytest.raises(TypeError, match="'level'"):

        @qd.register_factor("t_two", level=("asset", "index"))
        def two(market):
            return market["daily"]["close"]

    scratch.append("t_neg")

    @qd.register_factor("t_neg", lookback=lambda window: window - 1)
    def neg(market, *, window=0):
        return market["daily"]["close"]

    with pytest.raises(ValueError, match="non-negative"):
        qd.factor("t_neg")


def test_wrong_level_and_wrong_output(scratch):
    scratch.append("t_badout")

    @qd.register_factor("t_badout")
    def badout(market):
        return market["daily"]["close"].mean("asset")

    with pytest.raises(ValueError, match="dims"):
        qd.factor("t_badout")(_tree())
    with pytest.raises(ValueError, match="not 'index'"):
        qd.factor("t_badout")(_tree(), level="index")


def test_list_factors_covers_section_1():
    names = set(qd.list_factors()["name"])
    expected = {
        "close_vs_ma",
        "close_vs_high",
        "close_vs_low",
        "ret_skew",
        "ret_kurt",
        "ret_skew_vs_5y",
        "ret_kurt_vs_5y",
        "streak",
        "turnover",
        "amount_share",
        "risk_premium",
        "risk_premium_pct",
        "risk_premium_band",
        "equity_bond_signal",
        "pe_ttm",
        "pe_ttm_pct",
        "dv_ttm",
        "dv_ttm_pct",
        "below_book_ratio",
    }
    assert expected <= names
    levels = qd.list_factors().set_index("name")["level"]
    for name in expected:
        assert levels[name] == "asset, index", name
