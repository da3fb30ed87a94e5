"""No look-ahead and laziness for EVERY registered factor, at every level it supports.

For each level, all registered factors (at their defaults, plus the parameter values the
snapshot uses) are computed once over the whole synthetic ``market``; then, for a few dates
``t``, the market is truncated after ``t`` (date nodes cut at ``t``, fundamentals records
announced after ``t`` dropped) and the factors are computed with ``start=end=t``. The values at
``t`` must be identical. This checks two things at once: that no factor reads data after
``t``, and that each declared lookback is enough (the truncated run loads only
``lookback`` days before ``t``).

"Identical" allows float rounding only (rtol 1e-7): the rolling-moment kernels update sums
online, so a window reached from an earlier start carries rounding of order 1e-9; a real
look-ahead moves values by orders of magnitude more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd
from quantdask.testing import raise_if_dask_computes

EXTRA_PARAMS: dict[str, list[dict]] = {
    "streak": [{"freq": f} for f in ("W", "M", "Q", "Y")],
    "close_vs_ma": [{"window": 5}, {"window": 250}],
    "pe_ttm_pct": [{"window": "all"}, {"window": 1250}],
    "dv_ttm_pct": [{"window": "all"}],
    "risk_premium_pct": [{"window": 250}],
    "risk_premium_band": [{"k": -2}],
    "ret_skew": [{"window": 20}],
}


def registered(level: str) -> list[qd.Factor]:
    out = []
    for row in qd.list_factors().itertuples():
        if level not in row.level.split(", "):
            continue
        spec_params = qd.factor(row.name).params if row.lookback is not None else None
        if spec_params is None:  # a required parameter without default: nothing to test
            continue
        out.append(qd.factor(row.name))
        out.extend(qd.factor(row.name, **p) for p in EXTRA_PARAMS.get(row.name, []))
    return out


def truncate(market: xr.DataTree, t: pd.Timestamp) -> xr.DataTree:
    """The market as it was known after the close of ``t``."""
    nodes = {}
    for name, node in market.children.items():
        ds = node.to_dataset()
        if "date" in ds.dims:
            ds = ds.sel(date=slice(None, t))
        elif "ann_date" in ds:
            keep = np.flatnonzero(ds["ann_date"].values <= np.datetime64(t, "ns"))
            ds = ds.isel(record=keep)
        nodes[name] = ds
    return xr.DataTree.from_dict(nodes)


@pytest.fixture(scope="module", params=["asset", "index"])
def full(request, market):
    level = request.param
    factors = registered(level)
    ds = qd.compute(market, factors, level=level).compute()
    return level, factors, ds


@pytest.mark.parametrize("pos", [700, -1])
def test_no_lookahead_every_factor(market, full, pos):
    level, factors, ds_full = full
    dates = pd.DatetimeIndex(market["daily"]["date"].values)
    t = dates[pos]
    ds_cut = qd.compute(truncate(market, t), factors, start=t, end=t, level=level).compute()
    assert ds_cut.sizes["date"] == 1
    bad = []
    for f in factors:
        a = ds_full[f.variable].sel(date=t).values
        b = ds_cut[f.variable].isel(date=0).values
        if not np.array_equal(a, b, equal_nan=True) and not np.allclose(
            a, b, rtol=1e-7, atol=1e-9, equal_nan=True
        ):
            bad.append(f.variable)
    assert not bad, f"values at {t.date()} change when data after it is removed: {bad}"


def test_section_1_factors_produce_values(full):
    """Guard against a vacuous look-ahead test: most factors have values at the end."""
    level, factors, ds = full
    last = ds.isel(date=-1)
    # the 5-year-relative moments need more than the fixture's 6 years
    expect_values = [
        f.variable
        for f in factors
        if f.name.split("_vs_")[0] != f.name or f.lookback < 1464
        if f.name not in ("ret_skew_vs_5y", "ret_kurt_vs_5y")
    ]
    empty = [v for v in expect_values if not np.isfinite(last[v].values).any()]
    if level == "index":
        empty = [v for v in empty if v != "below_book_ratio"]
    section_1 = {"close_vs_ma_20", "close_vs_high_250", "streak_D", "turnover", "pe_ttm_pct_all"}
    assert not (section_1 & set(empty)), empty


@pytest.mark.parametrize("level", ["asset", "index"])
def test_building_every_factor_graph_computes_nothing(market, level):
    factors = registered(level)
    with raise_if_dask_computes():
        ds = qd.compute(market, factors, start="2018-01-01", end="2019-06-30", level=level)
    assert set(ds.data_vars) == {f.variable for f in factors}
