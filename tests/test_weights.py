"""qd.select_weights: selection, weighting and caps against plain-Python references."""

from __future__ import annotations

import warnings

import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import quantdask as qd
from quantdask.testing import raise_if_dask_computes


def _panel(values, dates=None, assets=None):
    values = np.asarray(values, dtype=float)
    dates = dates if dates is not None else pd.bdate_range("2024-01-01", periods=values.shape[0])
    assets = assets if assets is not None else [f"{i:06d}.SZ" for i in range(values.shape[1])]
    return xr.DataArray(values, dims=("date", "asset"), coords={"date": dates, "asset": assets})


def _ref_top(row, n):
    """Plain-Python top-n: sort by (-score, position), NaN never selected."""
    items = sorted((-v, i) for i, v in enumerate(row) if np.isfinite(v))
    return {i for _, i in items[:n]}


def test_top_equal_with_ties_and_nan():
    s = _panel([[1.0, 3.0, 3.0, np.nan, 2.0], [5.0, 5.0, 5.0, 5.0, np.nan]])
    w = qd.select_weights(s, dates=s.date.values, top=2)
    assert w.dims == ("date", "asset")
    np.testing.assert_allclose(w.values[0], [0, 0.5, 0.5, 0, 0])
    np.testing.assert_allclose(w.values[1], [0.5, 0.5, 0, 0, 0])  # ties: first assets win
    w3 = qd.select_weights(s, dates=s.date.values, top=3)
    np.testing.assert_allclose(w3.values[0], [0, 1 / 3, 1 / 3, 0, 1 / 3])


def test_score_power_and_mcap():
    s = _panel([[10.0, 20.0, 30.0, 40.0]])
    w = qd.select_weights(s, dates=s.date.values, top=3, weighting="score", power=3)
    tot = 20**3 + 30**3 + 40**3
    np.testing.assert_allclose(w.values[0], [0, 20**3 / tot, 30**3 / tot, 40**3 / tot])
    mc = _panel([[1.0, 1.0, np.nan, 3.0]])
    wm = qd.select_weights(s, dates=s.date.values, top=2, weighting="mcap", mcap=mc)
    # asset 2 has no mcap -> not eligible; top 2 of {0, 1, 3} = {3, 1}
    np.testing.assert_allclose(wm.values[0], [0, 0.25, 0, 0.75])
    zero = qd.select_weights(
        _panel([[0.0, 0.0, 1.0]]), dates=s.date.values, top=2, weighting="score"
    )
    np.testing.assert_allclose(zero.values[0], [0, 0, 1])
    allzero = qd.select_weights(
        _panel([[0.0, 0.0, np.nan]]), dates=s.date.values, weighting="score"
    )
    np.testing.assert_allclose(allzero.values[0], [0.5, 0.5, 0])


def test_quantile_threshold_universe():
    s = _panel([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, np.nan]])
    w = qd.select_weights(s, dates=s.date.values, quantile=0.3)  # ceil(0.3 * 7) = 3
    np.testing.assert_allclose(w.values[0], [0, 0, 0, 0, 1 / 3, 1 / 3, 1 / 3, 0])
    uni = _panel([[True, True, True, True, True, False, True, True]]).astype(bool)
    wu = qd.select_weights(s, dates=s.date.values, top=2, universe=uni)
    np.testing.assert_allclose(wu.values[0], [0, 0, 0, 0, 0.5, 0, 0.5, 0])
    wt = qd.select_weights(s, dates=s.date.values, threshold=6.0)
    np.testing.assert_allclose(wt.values[0], [0, 0, 0, 0, 0, 0.5, 0.5, 0])
    none = qd.select_weights(s, dates=s.date.values, threshold=100.0)
    assert (none.values == 0).all()


def test_cap_redistributes_iteratively():
    s = _panel([[50.0, 30.0, 10.0, 6.0, 4.0]])
    w = qd.select_weights(s, dates=s.date.values, weighting="score", cap=0.3)
    # plain water-filling by hand: 0.5 -> 0.3; 0.2 left over for (30, 10, 6, 4) -> 30 gets
    # 0.3 * 30/50 + ... ; solve: w_i = min(0.3, lam * s_i), sum = 1
    lam = (1 - 0.6) / 20.0  # assets 0 and 1 capped, the rest 20 points share 0.4
    ref = [0.3, 0.3, 10 * lam, 6 * lam, 4 * lam]
    np.testing.assert_allclose(w.values[0], ref)
    with pytest.raises(ValueError, match="cap"):
        qd.select_weights(s, dates=s.date.values, top=2, cap=0.4)
    # a zero score gets no weight, so it cannot absorb the capped excess
    z = _panel([[0.0, 5.0, 1.0]])
    with pytest.raises(ValueError, match="cap"):
        qd.select_weights(z, dates=z.date.values, top=3, weighting="score", cap=0.45)


def test_lazy_input_computes_once_and_dates():
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2024-01-01", periods=40)
    vals = rng.normal(size=(40, 30))
    s = _panel(vals, dates=dates).copy(data=dsa.from_array(vals, chunks=(7, 11)))
    reb = qd.rebalance_dates(dates, "W")
    with raise_if_dask_computes(max_computes=1):
        w = qd.select_weights(s, dates=reb, top=5)
    assert list(w.date.values) == list(reb.values)
    for k, d in enumerate(reb):
        row = vals[dates.get_loc(d)]
        assert set(np.flatnonzero(w.values[k])) == _ref_top(row, 5)
    with pytest.raises(ValueError, match="not in its date coordinate"):
        qd.select_weights(s, dates=["2025-01-01"], top=5)


def test_errors():
    s = _panel([[1.0, -2.0, 3.0]])
    d = s.date.values
    with pytest.raises(ValueError, match="non-negative"):
        qd.select_weights(s, dates=d, weighting="score")
    with pytest.raises(ValueError, match="exclusive"):
        qd.select_weights(s, dates=d, top=1, quantile=0.5)
    with pytest.raises(ValueError, match="top"):
        qd.select_weights(s, dates=d, top=0)
    with pytest.raises(ValueError, match="mcap"):
        qd.select_weights(s, dates=d, weighting="mcap")
    with pytest.raises(ValueError, match="weighting"):
        qd.select_weights(s, dates=d, weighting="rank")
    with pytest.raises(TypeError, match="scores"):
        qd.select_weights(s.values, dates=d)


@settings(max_examples=60, deadline=None)
@given(
    vals=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 12)),
        elements=st.one_of(st.just(np.nan), st.floats(0.5, 100, allow_nan=False)),
    ),
    top=st.integers(1, 15),
    weighting=st.sampled_from(["equal", "score"]),
    power=st.sampled_from([1, 3]),
    use_cap=st.booleans(),
)
def test_weights_sum_to_one(vals, top, weighting, power, use_cap):
    s = _panel(vals)
    n_valid = np.isfinite(vals).sum(axis=1)
    cap = None
    if use_cap:
        positive = n_valid[n_valid > 0]
        smallest = min(top, int(positive.min())) if len(positive) else top
        cap = min(1.0, 1.0 / max(smallest, 1) + 0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w = qd.select_weights(
            s, dates=s.date.values, top=top, weighting=weighting, power=power, cap=cap
        ).values
    # the concentration warning fires exactly when a date has 1 .. top/10 names
    thin = ((n_valid > 0) & (np.minimum(n_valid, top) * 10 < top)).any()
    assert any("a tenth of top" in str(c.message) for c in caught) == thin
    sums = w.sum(axis=1)
    for k in range(len(vals)):
        if n_valid[k] == 0:
            assert sums[k] == 0
        else:
            assert sums[k] == pytest.approx(1.0)
            assert np.count_nonzero(w[k]) <= min(top, n_valid[k])
            if cap is not None:
                assert w[k].max() <= cap + 1e-12
    assert (w >= 0).all()
    assert not np.isnan(w).any()


def test_no_look_ahead():
    rng = np.random.default_rng(9)
    dates = pd.bdate_range("2024-01-01", periods=30)
    vals = rng.normal(size=(30, 12))
    reb = qd.rebalance_dates(dates, "W")
    base = qd.select_weights(_panel(vals, dates=dates), dates=reb, top=4, weighting="equal")
    t = 12
    changed = vals.copy()
    changed[t + 1 :] = rng.normal(size=changed[t + 1 :].shape)
    alt = qd.select_weights(_panel(changed, dates=dates), dates=reb, top=4, weighting="equal")
    known = reb <= dates[t]
    np.testing.assert_array_equal(base.values[known], alt.values[known])
    assert not np.array_equal(base.values[~known], alt.values[~known])
