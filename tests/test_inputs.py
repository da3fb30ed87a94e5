"""Declared factor inputs: a factor the store cannot feed raises naming every missing input.

The stores here are hand-made: a daily node whose ``attrs["missing_fields"]`` lists the fields
no ingest input provided (written as all-NaN arrays), nodes or fields that are absent, and an
index node without the CSI All Share index. No check may compute data (STYLE.md "Laziness").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd
from quantdask.factors.inputs import MISSING_FIELDS_ATTR, MissingInputError, missing_inputs
from quantdask.factors.registry import UNBOUNDED, format_lookback, unregister_factor
from quantdask.io.store import zarr_quiet
from quantdask.testing import raise_if_dask_computes

N = 30
ASSETS = ["600000.SH", "000001.SZ"]


def _tree(missing: tuple[str, ...] = ("adj_factor", "turnover_rate", "pe_ttm")) -> xr.DataTree:
    """A store as ingest writes it from a daily table only: NaN arrays for what was missing."""
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2021-01-04", periods=N).astype("datetime64[ns]")
    close = 10 + rng.standard_normal((N, 2)).cumsum(axis=0)
    pre = np.vstack([np.full((1, 2), np.nan), close[:-1]])
    nan = np.full((N, 2), np.nan)
    fields = {"close": close, "high": close + 0.1, "low": close - 0.1, "pre_close": pre}
    fields.update({f: nan for f in ("adj_factor", "turnover_rate", "pe_ttm", "amount")})
    daily = xr.Dataset(
        {k: (("date", "asset"), v) for k, v in fields.items()},
        coords={"date": dates, "asset": ASSETS},
        attrs={MISSING_FIELDS_ATTR: list(missing)},
    ).chunk({"date": 7})
    iclose = 1000 + rng.standard_normal((N, 1)).cumsum(axis=0)
    index = xr.Dataset(
        {
            "close": (("date", "index"), iclose),
            "pre_close": (("date", "index"), np.vstack([[np.nan], iclose[:-1]])),
            "amount": (("date", "index"), np.ones((N, 1))),
        },
        coords={"date": dates, "index": ["000300.SH"]},
    ).chunk({"date": 7})
    return xr.DataTree.from_dict({"daily": daily, "index": index})


def test_compute_raises_naming_every_missing_input():
    tree = _tree()
    factors = [
        qd.factor("close_vs_ma", window=5),
        qd.factor("close_vs_high", window=5),
        "turnover",
        "risk_premium",  # pe_ttm recorded missing, and no macro node at all
    ]
    with raise_if_dask_computes(), pytest.raises(MissingInputError) as err:
        qd.compute(tree, factors)
    text = str(err.value)
    for path in ("daily/adj_factor", "daily/turnover_rate", "daily/pe_ttm", "macro/cgb_10y"):
        assert path in text
    assert "close_vs_ma_5 needs daily/adj_factor" in text
    assert "risk_premium needs daily/pe_ttm, macro/cgb_10y" in text
    assert "no 'macro' node" in text
    assert set(err.value.missing) == {
        "close_vs_ma_5",
        "close_vs_high_5",
        "turnover",
        "risk_premium",
    }
    assert isinstance(err.value, ValueError)


def test_factor_call_raises_and_complete_factors_still_work():
    tree = _tree()
    with pytest.raises(MissingInputError, match="daily/adj_factor"):
        qd.factor("close_vs_ma", window=5)(tree)
    # returns need close and pre_close only, both present: computed, and not all-NaN
    skew = qd.factor("ret_skew", window=5)(tree).values
    assert np.isfinite(skew).sum() > 0
    # index level reads index points, which the store has
    ma = qd.compute(tree, qd.factor("close_vs_ma", window=5), level="index")
    c = tree["index"]["close"].to_pandas()
    ref = (c - c.rolling(5).mean()) / c.rolling(5).mean() * 100
    np.testing.assert_allclose(ma["close_vs_ma_5"].to_pandas().to_numpy(), ref.to_numpy())


def test_no_attr_means_nothing_known_missing():
    tree = _tree(missing=())
    ds = qd.compute(tree, qd.factor("close_vs_ma", window=5))  # builds: nothing recorded
    assert "close_vs_ma_5" in ds


def test_missing_label_and_index_level():
    tree = _tree(missing=())
    with pytest.raises(MissingInputError) as err:
        qd.compute(tree, "amount_share", level="index")
    assert "index/amount[000985.CSI]" in str(err.value)
    assert "has no index '000985.CSI'" in str(err.value)
    # the turnover of an index needs the membership weights the tree lacks
    gaps = missing_inputs(tree, qd.factor("turnover").inputs("index"))
    assert [p for p, _ in gaps] == ["index/weight", "daily/float_share"]


def test_attr_survives_a_zarr_round_trip(tmp_path):
    path = tmp_path / "m.zarr"
    with zarr_quiet():
        _tree().to_zarr(path, zarr_format=3, consolidated=True)
    market = qd.open_market(path)
    with pytest.raises(MissingInputError, match="daily/adj_factor"):
        qd.compute(market, qd.factor("close_vs_low", window=5))


def test_fundamental_factors_need_records_and_items():
    tree = _tree(missing=())
    with pytest.raises(MissingInputError, match="no 'fundamentals' node"):
        qd.factor("roe_ttm")(tree)
    empty = tree.copy()
    empty["fundamentals"] = xr.DataTree(
        xr.Dataset({"revenue": ("record", np.array([])), "rd_exp": ("record", np.array([]))})
    )
    with pytest.raises(MissingInputError, match="holds no statement records"):
        qd.factor("rd_to_revenue")(empty)
    with pytest.raises(MissingInputError, match="daily/dv_ttm"):
        qd.factor("dividend_yield")(tree)
    with pytest.raises(MissingInputError) as err:
        qd.factor("dividend_yield", source="statements")(tree)
    assert "daily/total_mv" in str(err.value)


def test_register_factor_validates_inputs():
    with pytest.raises(ValueError, match="not 'node'"):
        qd.register_factor("t_bad_inputs", inputs=("daily close",))
    with pytest.raises(TypeError, match="list of paths"):
        qd.register_factor("t_bad_inputs", inputs="daily/close")

    @qd.register_factor("t_inputs", inputs=["daily/close", "daily/adj_factor"], override=True)
    def t_inputs(market):
        return market["daily"]["close"]

    try:
        assert qd.factor("t_inputs").inputs() == ("daily/close", "daily/adj_factor")
        with pytest.raises(MissingInputError, match="t_inputs needs daily/adj_factor"):
            qd.compute(_tree(), "t_inputs")
    finally:
        unregister_factor("t_inputs")


# -- item 13: an unbounded lookback is shown as "unbounded", never as 2**62 ------------------


def test_unbounded_lookback_is_shown_as_unbounded():
    assert format_lookback(UNBOUNDED) == "unbounded"
    assert format_lookback(19) == "19"
    f = qd.factor("streak", freq="W")
    assert f.lookback == UNBOUNDED  # the number stays usable for slicing
    assert "lookback=unbounded" in repr(f)
    assert str(UNBOUNDED) not in repr(f)
    assert "lookback=19" in repr(qd.factor("close_vs_ma", window=20))
    listing = qd.list_factors().set_index("name")
    assert listing.loc["streak", "lookback"] == "unbounded"
    assert listing.loc["close_vs_ma", "lookback"] == 19
    tree = _tree(missing=())
    ds = qd.compute(tree, ["streak", qd.factor("close_vs_ma", window=5)], level="index")
    assert ds["streak_D"].attrs["lookback"] == "unbounded"
    assert ds["close_vs_ma_5"].attrs["lookback"] == 4
    assert str(UNBOUNDED) not in repr(ds)


def test_ingested_daily_only_store_names_what_no_input_provided(tmp_path):
    """End to end: qd.ingest of a daily table only (no adj_factor, no daily_basic)."""
    import warnings

    dates = pd.bdate_range("2021-03-01", periods=12)  # ordinary sessions of March 2021
    rows = []
    for code, base in (("600000.SH", 10.0), ("000001.SZ", 20.0)):
        prev = base
        for i, d in enumerate(dates):
            close = round(base + 0.1 * ((i * 7) % 5 - 2), 2)
            rows.append(
                {
                    "ts_code": code,
                    "trade_date": d.strftime("%Y%m%d"),
                    "open": close,
                    "high": close + 0.1,
                    "low": close - 0.1,
                    "close": close,
                    "pre_close": prev,
                    "vol": 1000.0,
                    "amount": 1000.0 * close,
                }
            )
            prev = close
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ingest's own notes (derived adj_factor, ...)
        path = qd.ingest(tmp_path / "m.zarr", daily=pd.DataFrame(rows))
    market = qd.open_market(path)
    assert "turnover_rate" in market["daily"].attrs[MISSING_FIELDS_ATTR]
    with pytest.raises(MissingInputError) as err:
        qd.compute(market, ["turnover", qd.factor("close_vs_ma", window=5), "pe_ttm"])
    text = str(err.value)
    assert "daily/turnover_rate" in text and "daily/pe_ttm" in text
    assert "close_vs_ma_5" not in err.value.missing  # adj_factor derived from pre_close
    ma = qd.factor("close_vs_ma", window=5)(market).values
    assert np.isfinite(ma).sum() == 2 * (len(dates) - 4)
