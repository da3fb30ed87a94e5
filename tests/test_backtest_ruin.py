"""Ruin: a back-test whose NAV falls to the minimum commission stops, says so, never goes < 0."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from test_backtest import make_tree, target

import quantdask as qd
from quantdask.analytics import plots
from quantdask.portfolio import RuinWarning

# capital 10,000 CNY: the 5 CNY minimum commission is 5e-4 of the initial capital
CAPITAL = 1e4
FLOOR = 5.0 / CAPITAL


def _fee(x):
    """Buy cost of an order of x (units of the capital): 5 CNY minimum, transfer fee."""
    return max(0.00025 * x, FLOOR) + 0.00001 * x


def _first_buy():
    """All the capital into one stock: ``(b, cash)`` after the first trade.

    The order of 1 and its fee do not fit in the cash, so it is scaled to
    ``b = 1 / (1 + fee(1))``; the minimum commission does not scale, which leaves the cash
    ``1 - b - fee(b)`` a few CNY below zero (documented in qd.backtest).
    """
    b = 1.0 / (1.0 + _fee(1.0))
    return b, 1.0 - b - _fee(b)


def falling_market():
    """Stock 0 falls 90% a day on days 1-4 (99.99% in all); stock 1 is flat at 10."""
    c0 = [10.0, 1.0, 0.1, 0.01, 0.001, 0.001, 0.001, 0.001]
    close = np.array([[a, 10.0] for a in c0])
    return make_tree(close)


def test_ruin_stops_trading_nav_never_negative_and_warns():
    tree = falling_market()
    dates = tree["daily"].indexes["date"]
    costs = qd.Costs(capital=CAPITAL)
    # all in stock 0, then on day 5 switch to stock 1: selling ~1 CNY of stock 0 costs 5 CNY
    w = target(tree, {0: [1.0, 0.0], 5: [0.0, 1.0]})
    with pytest.warns(RuinWarning, match="2024-01-05"):
        res = qd.backtest(tree, w, costs=costs)
    b, c = _first_buy()
    nav_ref = b * np.array([1.0, 0.1, 0.01, 0.001, 1e-4]) + c  # day 4: 1 CNY < 5 CNY: ruined
    np.testing.assert_allclose(res.nav.to_numpy()[:5], nav_ref, rtol=1e-12)
    assert nav_ref[3] > FLOOR >= nav_ref[4]
    # after the ruin the NAV stays at its floor: no trade, no cost, never negative
    np.testing.assert_allclose(res.nav.to_numpy()[4:], nav_ref[4], rtol=1e-12)
    assert (res.nav.to_numpy() >= 0).all()
    assert res.ruined
    assert res.ruin_date == dates[4]
    assert list(res.trades["date"]) == [dates[0]]
    np.testing.assert_allclose(res.costs.to_numpy()[4:], 0.0)
    np.testing.assert_allclose(res.holdings.values[4:], 0.0)
    np.testing.assert_allclose(res.cash.to_numpy()[4:], 1.0)
    # returns: up to and including the ruin day, NaN afterwards
    ref = nav_ref[1:] / np.r_[1.0, nav_ref[1:-1]] - 1.0
    np.testing.assert_allclose(res.returns.to_numpy()[:4], ref, rtol=1e-12)
    assert res.returns.iloc[4:].isna().all()


def test_ruined_metrics_cover_the_part_before_ruin():
    tree = falling_market()
    w = target(tree, {0: [1.0, 0.0], 5: [0.0, 1.0]})
    with pytest.warns(RuinWarning):
        res = qd.backtest(tree, w, costs=qd.Costs(capital=CAPITAL), benchmark="equal")
    with pytest.warns(RuinWarning, match="2024-01-05"):
        m = res.metrics()
    b, c = _first_buy()
    nav = b * np.array([0.1, 0.01, 0.001, 1e-4]) + c
    r = nav / np.r_[1.0, nav[:-1]] - 1.0  # the returns up to the ruin day
    assert m["ruined"] is True
    assert m["ruin_date"] == pd.Timestamp("2024-01-05")
    assert m["n_periods"] == 4
    assert m["annual_volatility"] == pytest.approx(np.std(r, ddof=1) * np.sqrt(252))
    assert m["sharpe"] == pytest.approx(np.mean(r) / np.std(r, ddof=1) * np.sqrt(252))
    assert m["annual_return"] == pytest.approx(np.prod(1 + r) ** (252 / 4) - 1)
    assert m["max_drawdown"] == pytest.approx(np.prod(1 + r) - 1)
    # the benchmark is measured on the same dates
    bench = ((1 + res.benchmark_returns.iloc[:4]).prod()) ** (252 / 4) - 1
    assert m["benchmark_annual_return"] == pytest.approx(bench)


def test_orders_that_cost_more_than_the_book_are_not_executed():
    # NAV 8 CNY (above one minimum commission) but a switch into two stocks needs three
    # orders of 5 CNY each: the day's orders are not executed and the book is ruined
    c0 = [10.0, 1.0, 0.1, 0.01, 0.008, 0.008, 0.008]
    close = np.array([[a, 10.0, 20.0] for a in c0])
    tree = make_tree(close)
    w = target(tree, {0: [1.0, 0.0, 0.0], 4: [0.0, 0.5, 0.5]})
    with pytest.warns(RuinWarning, match="2024-01-05"):
        res = qd.backtest(tree, w, costs=qd.Costs(capital=CAPITAL))
    b, c = _first_buy()
    pre = b * 0.0008 + c
    assert pre > FLOOR  # the pre-trade NAV could pay one minimum commission
    np.testing.assert_allclose(res.nav.to_numpy()[4:], pre, rtol=1e-12)
    assert (res.nav.to_numpy() >= 0).all()
    assert res.ruin_date == tree["daily"].indexes["date"][4]
    assert list(res.trades["date"]) == [tree["daily"].indexes["date"][0]]


def test_nav_reaching_zero_without_minimum_commission_is_ruin():
    close = np.array([[10.0, 10.0], [5.0, 10.0], [0.0, 10.0], [0.0, 10.0], [0.0, 11.0]])
    tree = make_tree(close)
    with pytest.warns(RuinWarning, match="2024-01-03"):
        res = qd.backtest(tree, target(tree, {0: [1.0, 0.0], 3: [0.0, 1.0]}))
    np.testing.assert_allclose(res.nav.to_numpy(), [1.0, 0.5, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(res.returns.to_numpy()[:2], [-0.5, -1.0])
    assert res.returns.iloc[2:].isna().all()
    with pytest.warns(RuinWarning):
        m = res.metrics()
    assert m["annual_return"] == -1.0 and m["n_periods"] == 2


def test_healthy_backtest_is_not_ruined():
    close = np.array([[10.0, 10.0], [11.0, 10.0], [12.0, 10.5], [11.0, 11.0]])
    tree = make_tree(close)
    res = qd.backtest(tree, target(tree, {0: [0.5, 0.5]}), costs=qd.Costs(capital=CAPITAL))
    assert not res.ruined and res.ruin_date is None
    m = res.metrics()
    assert m["ruined"] is False and m["ruin_date"] is None
    assert res.returns.notna().all()


def test_metrics_of_a_return_series_that_reaches_zero_wealth():
    idx = pd.bdate_range("2024-01-01", periods=6)
    r = pd.Series([0.1, -0.5, -1.0, 3.0, -4.0, 0.2], index=idx)
    with pytest.warns(RuinWarning, match="2024-01-03"):
        m = qd.metrics(r)
    head = np.array([0.1, -0.5, -1.0])  # wealth is 0 after day 3; the rest is meaningless
    assert m["ruined"] is True and m["ruin_date"] == idx[2]
    assert m["n_periods"] == 3
    assert m["annual_volatility"] == pytest.approx(np.std(head, ddof=1) * np.sqrt(252))
    assert m["annual_return"] == -1.0
    assert m["max_drawdown"] == pytest.approx(-1.0)
    ok = qd.metrics(r.iloc[:2])
    assert ok["ruined"] is False and ok["ruin_date"] is None


def _title_and_scale(fig):
    ax = fig.axes[0]
    return ax.get_title(), ax.get_yscale(), [t.get_text() for t in ax.texts]


def test_cumulative_plot_says_its_scale_and_marks_the_ruin():
    idx = pd.bdate_range("2024-01-01", periods=5)
    healthy = pd.Series([0.01, -0.02, 0.03, 0.0, 0.01], index=idx)
    title, scale, _ = _title_and_scale(plots.cumulative_figure(healthy))
    assert scale == "log" and "log scale" in title
    # wealth reaching 0 cannot be drawn on a log axis: the title must not claim it is
    zero = pd.Series([0.01, -1.0, np.nan, np.nan, np.nan], index=idx)
    title, scale, texts = _title_and_scale(plots.cumulative_figure(zero, ruin_date=idx[1]))
    assert scale == "linear" and "log scale" not in title and "linear scale" in title
    assert any("ruined on 2024-01-02" in t for t in texts)
    # a tiny positive floor keeps the log scale, and the ruin is still marked
    tiny = pd.Series([0.01, -0.9999, np.nan, np.nan, np.nan], index=idx)
    title, scale, texts = _title_and_scale(plots.cumulative_figure(tiny, ruin_date=idx[1]))
    assert scale == "log" and "log scale" in title
    assert any("ruined on 2024-01-02" in t for t in texts)
    assert base64.b64decode(plots.plot_cumulative(tiny, ruin_date=idx[1])).startswith(b"\x89PNG")


def test_tear_sheet_of_a_ruined_backtest(tmp_path):
    tree = falling_market()
    w = target(tree, {0: [1.0, 0.0], 5: [0.0, 1.0]})
    with pytest.warns(RuinWarning):
        res = qd.backtest(tree, w, costs=qd.Costs(capital=CAPITAL))
    with pytest.warns(RuinWarning):
        out = qd.tear_sheet(tmp_path / "ruin.html", backtest=res)
    text = out.read_text(encoding="utf-8")
    assert "ruined on 2024-01-05" in text
    row = re.search(r"<th>ruin_date</th>\s*<td>([^<]*)</td>", text)
    assert row is not None and row.group(1) == "2024-01-05"


def test_timing_backtest_short_ruined_by_a_doubling_stays_at_zero():
    idx = pd.bdate_range("2024-01-01", periods=6)
    px = pd.Series([100.0, 100.0, 150.0, 320.0, 330.0, 99.0], index=idx)
    sig = pd.Series(-1.0, index=idx)  # short all along
    with pytest.warns(RuinWarning, match="2024-01-04"):
        bt = qd.timing_backtest(sig, px)
    # by hand: short returns 0, -0.5, -(320/150 - 1) = -1.133: the wealth is gone on day 3
    np.testing.assert_allclose(bt.returns["wealth"].to_numpy(), [1.0, 0.5, 0.0, 0.0, 0.0])
    assert bt.returns["strategy"].iloc[3:].isna().all()
    assert bt.metrics["total_return"] == -1.0
    assert bt.metrics["ruined"] is True and bt.metrics["ruin_date"] == idx[3]
    r = np.array([0.0, -0.5, -(320 / 150 - 1)])
    assert bt.metrics["annual_volatility"] == pytest.approx(np.std(r, ddof=1) * np.sqrt(252))
    assert bt.metrics["exposure"] == 1.0 and bt.metrics["n_trades"] == 1


def test_ruin_on_a_date_without_benchmark_is_still_found():
    idx = pd.bdate_range("2024-01-01", periods=4)
    r = pd.Series([0.1, -1.0, 0.5, 0.2], index=idx)
    b = pd.Series([0.0, np.nan, 0.0, 0.0], index=idx)
    with pytest.warns(RuinWarning, match="2024-01-02"), pytest.warns(UserWarning, match="1 of"):
        m = qd.metrics(r, b)
    assert m["ruined"] is True and m["n_periods"] == 1
