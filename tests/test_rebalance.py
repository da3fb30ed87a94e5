"""qd.rebalance_dates against pandas/hand references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd


@pytest.fixture
def calendar():
    # business days minus a few "holidays", including a month end and a week end
    days = pd.bdate_range("2023-12-20", "2024-04-10")
    holidays = pd.to_datetime(["2024-01-31", "2024-02-09", "2024-02-12", "2024-03-29"])
    return days.difference(holidays)


def _tree(dates):
    ds = xr.Dataset(
        {"close": (("date", "asset"), np.ones((len(dates), 2)))},
        coords={"date": dates, "asset": ["A", "B"]},
    )
    return xr.DataTree.from_dict({"daily": ds})


def test_monthly_weekly_quarterly(calendar):
    tree = _tree(calendar)
    m = qd.rebalance_dates(tree, "M")
    ref = pd.Series(calendar, index=calendar).groupby(calendar.to_period("M")).max()
    assert list(m) == list(ref)
    assert pd.Timestamp("2024-01-30") in m  # Jan 31 is a holiday here
    assert pd.Timestamp("2024-03-28") in m
    assert m[-1] == calendar[-1]  # partial last month: last stored day
    w = qd.rebalance_dates(tree, "W")
    ref_w = [
        max(d for d in calendar if d.isocalendar()[:2] == wk)
        for wk in sorted({d.isocalendar()[:2] for d in calendar})
    ]
    assert list(w) == ref_w
    q = qd.rebalance_dates(tree, "Q")
    assert list(q) == [pd.Timestamp("2023-12-29"), pd.Timestamp("2024-03-28"), calendar[-1]]
    assert list(qd.rebalance_dates(tree, "D")) == list(calendar)


def test_custom_dates_snap_backwards(calendar):
    tree = _tree(calendar)
    got = qd.rebalance_dates(tree, ["2024-01-31", "2024-02-10", "2024-02-13", "2024-02-11"])
    # Jan 31 holiday -> Jan 30; Feb 10 (Sat) and 11 (Sun) -> Feb 8; Feb 13 is a trading day
    assert list(got) == list(pd.to_datetime(["2024-01-30", "2024-02-08", "2024-02-13"]))
    with pytest.raises(ValueError, match="before the first trading day"):
        qd.rebalance_dates(tree, ["2023-01-01"])


def test_start_end_and_inputs(calendar):
    ds = _tree(calendar)["daily"].to_dataset()
    got = qd.rebalance_dates(ds, "M", start="2024-01-15", end="2024-03-01")
    assert list(got) == list(pd.to_datetime(["2024-01-30", "2024-02-29"]))
    assert list(qd.rebalance_dates(ds["close"], "M")) == list(qd.rebalance_dates(calendar, "M"))
    with pytest.raises(ValueError, match="freq"):
        qd.rebalance_dates(calendar, "fortnight")
    with pytest.raises(TypeError):
        qd.rebalance_dates(42, "M")


def test_store_calendar(market):
    got = qd.rebalance_dates(market, "M")
    dates = pd.DatetimeIndex(market["daily"].indexes["date"])
    ref = pd.Series(dates, index=dates).groupby(dates.to_period("M")).max()
    assert list(got) == list(ref)
    assert len(got) == 72
