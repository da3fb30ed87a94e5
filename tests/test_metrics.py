"""qd.metrics against hand-computed references (empyrical formulas written out here)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import quantdask as qd


def _series(values, start="2024-01-01"):
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


def test_hand_case_basic():
    r = _series([0.10, -0.05, 0.02, -0.10, 0.05])
    m = qd.metrics(r)
    growth = 1.10 * 0.95 * 1.02 * 0.90 * 1.05
    assert m["annual_return"] == pytest.approx(growth ** (252 / 5) - 1)
    x = np.array([0.10, -0.05, 0.02, -0.10, 0.05])
    mean = x.sum() / 5
    var = ((x - mean) ** 2).sum() / 4
    assert m["annual_volatility"] == pytest.approx(math.sqrt(var) * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(mean / math.sqrt(var) * math.sqrt(252))
    # wealth: 1, 1.1, 1.045, 1.0659, 0.95931, 1.0072755 -> peak 1.1 (day 0), trough day 3
    assert m["max_drawdown"] == pytest.approx(0.95931 / 1.1 - 1)
    assert m["max_drawdown_start"] == r.index[0]
    assert m["max_drawdown_end"] == r.index[3]
    assert m["calmar"] == pytest.approx(m["annual_return"] / abs(0.95931 / 1.1 - 1))
    # wins 0.10, 0.02, 0.05 -> mean 0.17/3; losses -0.05, -0.10 -> mean -0.075
    assert m["profit_loss_ratio"] == pytest.approx((0.17 / 3) / 0.075)
    assert m["n_periods"] == 5


def test_drawdown_peak_is_starting_capital_and_no_drawdown():
    r = _series([-0.1, 0.05, -0.2, 0.5])
    m = qd.metrics(r)
    # wealth 1, .9, .945, .756, 1.134: peak = starting capital, trough day 2
    assert m["max_drawdown"] == pytest.approx(0.756 - 1)
    assert m["max_drawdown_start"] == r.index[0]
    assert m["max_drawdown_end"] == r.index[2]
    up = qd.metrics(_series([0.01, 0.02]))
    assert up["max_drawdown"] == 0.0
    assert math.isnan(up["calmar"])
    assert up["max_drawdown_start"] is None


def test_risk_free_is_annual():
    r = _series([0.01, 0.0, -0.005, 0.002])
    rf = (1.03) ** (1 / 252) - 1
    x = r.to_numpy() - rf
    ref = x.mean() / x.std(ddof=1) * math.sqrt(252)
    assert qd.metrics(r, risk_free=0.03)["sharpe"] == pytest.approx(ref)
    # weekly periods
    ref_w = (1.01 * 1.0 * 0.995 * 1.002) ** (52 / 4) - 1
    assert qd.metrics(r, periods_per_year=52)["annual_return"] == pytest.approx(ref_w)


def test_benchmark_keys_and_monthly_win_rate():
    idx = pd.to_datetime(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02", "2024-03-01"])
    r = pd.Series([0.02, 0.01, -0.01, 0.00, 0.03], index=idx)
    b = pd.Series([0.01, 0.01, 0.01, -0.01, 0.04], index=idx)
    m = qd.metrics(r, b)
    e = np.array([0.01, 0.0, -0.02, 0.01, -0.01])
    assert m["excess_annual_return"] == pytest.approx(np.prod(1 + e) ** (252 / 5) - 1)
    assert m["excess_sharpe"] == pytest.approx(e.mean() / e.std(ddof=1) * math.sqrt(252))
    # excess wealth: 1.01, 1.01, 0.9898, 0.999698, 0.98970102; peak 1.01
    assert m["excess_max_drawdown"] == pytest.approx(0.98970102 / 1.01 - 1)
    assert m["excess_calmar"] == pytest.approx(
        m["excess_annual_return"] / abs(m["excess_max_drawdown"])
    )
    # Jan: 1.02*1.01=1.0302 vs 1.0201 win; Feb: .99 vs 1.01*.99=.9999 lose; Mar: 1.03 < 1.04
    assert m["monthly_win_rate"] == pytest.approx(1 / 3)
    assert m["benchmark_annual_return"] == pytest.approx(
        (1.01 * 1.01 * 1.01 * 0.99 * 1.04) ** (252 / 5) - 1
    )


def test_alignment_nan_and_turnover():
    r = _series([0.01, np.nan, 0.02, -0.01])
    b = _series([0.0, 0.01, 0.01, 0.0, 0.5])  # one extra date, dropped by the inner join
    m = qd.metrics(r, b, turnover=pd.Series([0.5, 0.1, 0.0]))
    assert m["n_periods"] == 3
    assert m["annual_return"] == pytest.approx((1.01 * 1.02 * 0.99) ** (252 / 3) - 1)
    assert m["turnover"] == pytest.approx(0.2 * 252)


def test_arrays_and_errors():
    m = qd.metrics(np.array([0.01, -0.01, 0.02]), np.array([0.0, 0.0, 0.0]))
    assert math.isnan(m["monthly_win_rate"])
    assert m["excess_annual_return"] == pytest.approx(m["annual_return"])
    with pytest.raises(ValueError, match="benchmark"):
        qd.metrics(np.array([0.01, 0.02]), np.array([0.0]))
    with pytest.raises(TypeError, match="returns"):
        qd.metrics(pd.DataFrame({"a": [0.1]}))
    with pytest.raises(ValueError, match="periods_per_year"):
        qd.metrics(np.array([0.1]), periods_per_year=0)


def test_periods_without_a_benchmark_return_are_not_dropped_silently():
    # an index benchmark that starts later than the back-test: the portfolio's own
    # metrics would silently cover only the later part
    r = _series([0.05, 0.04, -0.01, 0.01, 0.02])
    b = _series([np.nan, np.nan, 0.0, 0.01, 0.01])
    with pytest.warns(UserWarning, match="2 of the 5 periods"):
        m = qd.metrics(r, b)
    assert m["n_periods"] == 3
    assert m["annual_return"] == pytest.approx((0.99 * 1.01 * 1.02) ** (252 / 3) - 1)
    assert qd.metrics(r)["annual_return"] == pytest.approx(
        (1.05 * 1.04 * 0.99 * 1.01 * 1.02) ** (252 / 5) - 1
    )
