"""qd.trading_calendar: real XSHG sessions inside 1991..2026, documented fallback outside."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quantdask as qd
from quantdask.io.calendar import trading_calendar

# Exchange holidays (weekdays) that must not be trading days.
HOLIDAYS = [
    "2024-02-12",  # Spring Festival 2024
    "2024-02-16",
    "2019-10-01",  # National Day
    "2019-10-07",
    "2019-02-05",  # Spring Festival 2019
    "2020-01-27",  # Spring Festival 2020, extended for Covid
    "2020-01-31",
    "2023-06-22",  # Dragon Boat 2023
    "2021-09-21",  # Mid-Autumn 2021
    "2018-04-05",  # Qingming 2018
    "2015-09-03",  # WWII victory parade
    "2024-01-01",
    "2022-05-03",  # Labour Day
]
# Trading days that a naive weekday calendar would also keep, plus make-up weekends never trade.
TRADING = ["2024-02-08", "2024-02-19", "2019-09-30", "2019-10-08", "2020-02-03", "2015-09-07"]


def test_exported_from_top_level() -> None:
    assert qd.trading_calendar is trading_calendar


def test_known_holidays_absent_and_trading_days_present() -> None:
    days = trading_calendar("2015-01-01", "2024-12-31")
    present = set(days)
    for h in HOLIDAYS:
        assert pd.Timestamp(h) not in present, h
    for d in TRADING:
        assert pd.Timestamp(d) in present, d


def test_no_weekends_sorted_unique_dtype() -> None:
    days = trading_calendar("2005-01-01", "2026-12-31")
    assert days.dtype == np.dtype("datetime64[ns]")
    assert days.tz is None
    assert days.name == "date"
    assert (days.day_of_week < 5).all()
    assert days.is_monotonic_increasing and days.is_unique
    # Weekend make-up working days in China are not exchange sessions.
    assert pd.Timestamp("2019-09-29") not in set(days)  # a Sunday worked in lieu


@pytest.mark.parametrize("year", [2006, 2012, 2016, 2019, 2023, 2024])
def test_about_242_days_a_year(year: int) -> None:
    n = len(trading_calendar(f"{year}-01-01", f"{year}-12-31"))
    assert 235 <= n <= 250, n


def test_inclusive_bounds_and_subranges_agree() -> None:
    full = trading_calendar("2019-01-01", "2019-12-31")
    part = trading_calendar("2019-03-04", "2019-03-08")  # Mon..Fri, all trading days
    assert list(part) == list(pd.bdate_range("2019-03-04", "2019-03-08"))
    assert full[0] == pd.Timestamp("2019-01-02")  # Jan 1 holiday
    assert full[-1] == pd.Timestamp("2019-12-31")


def test_accepts_date_like_inputs() -> None:
    a = trading_calendar(dt.date(2024, 2, 5), np.datetime64("2024-02-20"))
    b = trading_calendar(pd.Timestamp("2024-02-05 15:00"), "2024-02-20")
    assert list(a) == list(b)
    assert [d.strftime("%m-%d") for d in a] == [
        "02-05",
        "02-06",
        "02-07",
        "02-08",
        "02-19",
        "02-20",
    ]


def test_fallback_after_2026() -> None:
    days = trading_calendar("2027-01-01", "2027-12-31")
    s = set(days)
    assert (days.day_of_week < 5).all()
    assert pd.Timestamp("2027-01-01") not in s
    for d in ["2027-05-03", "2027-05-04", "2027-05-05", "2027-10-01", "2027-10-04", "2027-10-07"]:
        assert pd.Timestamp(d) not in s, d
    # Spring Festival 2027 (Feb 6): the following week is closed.
    for d in ["2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11", "2027-02-12"]:
        assert pd.Timestamp(d) not in s, d
    assert pd.Timestamp("2027-02-15") in s
    assert 235 <= len(days) <= 250


def test_range_crossing_the_recorded_boundary() -> None:
    days = trading_calendar("2026-12-20", "2027-01-10")
    assert pd.Timestamp("2026-12-31") in set(days)
    assert pd.Timestamp("2027-01-01") not in set(days)
    assert pd.Timestamp("2027-01-04") in set(days)
    assert days.is_monotonic_increasing


def test_fallback_before_1991() -> None:
    days = trading_calendar("1990-01-01", "1991-01-10")
    assert (days.day_of_week < 5).all()
    assert pd.Timestamp("1990-10-01") not in set(days)
    assert pd.Timestamp("1991-01-02") in set(days)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="before start"):
        trading_calendar("2020-01-10", "2020-01-01")
    with pytest.raises(ValueError, match="start"):
        trading_calendar("not a date", "2020-01-01")
    with pytest.raises(TypeError, match="end"):
        trading_calendar("2020-01-01", 20200101)


_FULL = trading_calendar("1985-01-01", "2040-12-31")


@settings(max_examples=60, deadline=None)
@given(
    a=st.dates(min_value=dt.date(1985, 1, 1), max_value=dt.date(2040, 12, 31)),
    span=st.integers(min_value=0, max_value=3000),
)
def test_any_range_is_a_slice_of_the_full_calendar(a: dt.date, span: int) -> None:
    b = min(a + dt.timedelta(days=span), dt.date(2040, 12, 31))
    got = trading_calendar(a, b)
    lo, hi = pd.Timestamp(a), pd.Timestamp(b)
    expect = _FULL[(_FULL >= lo) & (_FULL <= hi)]
    assert list(got) == list(expect)
    assert (got.day_of_week < 5).all()
