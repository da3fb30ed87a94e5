"""The Shanghai Stock Exchange trading calendar, with a documented fallback outside 1991..2026."""

from __future__ import annotations

import datetime as _dt
import functools
import warnings

import numpy as np
import pandas as pd

#: exchange_calendars records XSHG holidays from this date ...
XSHG_FIRST: pd.Timestamp = pd.Timestamp("1991-01-02")
#: ... to this date (inclusive).
XSHG_LAST: pd.Timestamp = pd.Timestamp("2026-12-31")

# Approximate Lunar New Year (Spring Festival) day, used only outside the XSHG range.
_LUNAR_NEW_YEAR: dict[int, str] = {
    1985: "1985-02-20",
    1986: "1986-02-09",
    1987: "1987-01-29",
    1988: "1988-02-17",
    1989: "1989-02-06",
    1990: "1990-01-27",
    2027: "2027-02-06",
    2028: "2028-01-26",
    2029: "2029-02-13",
    2030: "2030-02-03",
    2031: "2031-01-23",
    2032: "2032-02-11",
    2033: "2033-01-31",
    2034: "2034-02-19",
    2035: "2035-02-08",
    2036: "2036-01-28",
    2037: "2037-02-15",
    2038: "2038-02-04",
    2039: "2039-01-24",
    2040: "2040-02-12",
}


def _to_timestamp(value: object, name: str) -> pd.Timestamp:
    if not isinstance(value, str | _dt.date | np.datetime64 | pd.Timestamp):
        raise TypeError(f"{name} must be a date string, datetime or Timestamp, got {value!r}")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}={value!r} is not a valid date: {err}") from err
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"{name} must be a date, got NaT")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return ts.normalize()


@functools.lru_cache(maxsize=1)
def _xshg_sessions() -> pd.DatetimeIndex:
    import exchange_calendars as xcals

    with warnings.catch_warnings():  # pandas deprecation notices raised inside the library
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XSHG", start=XSHG_FIRST, end=XSHG_LAST)
        sessions = pd.DatetimeIndex(cal.sessions)
    if sessions.tz is not None:
        sessions = sessions.tz_localize(None)
    return sessions.astype("datetime64[ns]")


def _fallback_days(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Weekdays minus fixed-date holidays and an approximate Spring Festival week."""
    days = pd.bdate_range(start, end).astype("datetime64[ns]")
    if len(days) == 0:
        return days
    month = days.month
    day = days.day
    fixed = ((month == 1) & (day == 1)) | ((month == 5) & (day <= 5)) | ((month == 10) & (day <= 7))
    spring = np.zeros(len(days), dtype=bool)
    for year in range(start.year, end.year + 1):
        lny = pd.Timestamp(_LUNAR_NEW_YEAR.get(year, f"{year}-02-01"))
        # Eve through the sixth day: the exchange's usual Spring Festival closure.
        lo = (lny - pd.Timedelta(days=1)).to_datetime64()
        hi = (lny + pd.Timedelta(days=6)).to_datetime64()
        spring |= (days.values >= lo) & (days.values <= hi)
    return days[~(fixed | spring)]


def trading_calendar(
    start: str | _dt.date | np.datetime64 | pd.Timestamp,
    end: str | _dt.date | np.datetime64 | pd.Timestamp,
) -> pd.DatetimeIndex:
    """Return the Shanghai Stock Exchange trading days from ``start`` to ``end`` (inclusive).

    Parameters
    ----------
    start, end : str, datetime.date, numpy.datetime64 or pandas.Timestamp
        First and last calendar date of the range (time of day is ignored).

    Returns
    -------
    pandas.DatetimeIndex
        Trading days, ``datetime64[ns]``, timezone-naive, ascending, named ``date``.

    Raises
    ------
    TypeError
        If ``start`` or ``end`` is not date-like.
    ValueError
        If a date cannot be parsed or ``end`` is before ``start``.

    Notes
    -----
    From 1991-01-02 to 2026-12-31 the days are the real XSHG sessions recorded by
    ``exchange_calendars`` (weekends and every exchange holiday removed, including the
    lunar holidays: Spring Festival, Qingming, Dragon Boat, Mid-Autumn). Outside that range
    the calendar falls back to weekdays minus the fixed-date holidays (New Year Jan 1,
    Labour Day May 1-5, National Day Oct 1-7) and an approximate Spring Festival week (the
    eve of the Lunar New Year through its sixth day, from a built-in table for 1985-1990 and
    2027-2040, else Feb 1). Lunar holidays other than Spring Festival are not removed in the
    fallback, so it has ~245 days a year instead of ~242.

    Examples
    --------
    >>> import quantdask as qd
    >>> days = qd.trading_calendar("2024-02-05", "2024-02-20")
    >>> [d.strftime("%m-%d") for d in days]
    ['02-05', '02-06', '02-07', '02-08', '02-19', '02-20']
    """
    lo = _to_timestamp(start, "start")
    hi = _to_timestamp(end, "end")
    if hi < lo:
        raise ValueError(f"end={end!r} is before start={start!r}")
    parts: list[pd.DatetimeIndex] = []
    if lo < XSHG_FIRST:
        parts.append(_fallback_days(lo, min(hi, XSHG_FIRST - pd.Timedelta(days=1))))
    if hi >= XSHG_FIRST and lo <= XSHG_LAST:
        sessions = _xshg_sessions()
        a = max(lo, XSHG_FIRST)
        b = min(hi, XSHG_LAST)
        parts.append(sessions[(sessions >= a) & (sessions <= b)])
    if hi > XSHG_LAST:
        parts.append(_fallback_days(max(lo, XSHG_LAST + pd.Timedelta(days=1)), hi))
    values = np.concatenate([p.values.astype("datetime64[ns]") for p in parts])
    return pd.DatetimeIndex(values, name="date")


def session_status(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each date is an exchange session, and whether the real calendar says so.

    Parameters
    ----------
    dates : numpy.ndarray
        ``datetime64`` dates (normalised to days).

    Returns
    -------
    is_session : numpy.ndarray
        bool: a session of the real XSHG calendar (1991-01-02 .. 2026-12-31) or, outside that
        range, of the approximate fallback of :func:`trading_calendar`.
    in_range : numpy.ndarray
        bool: the date lies in the range of the real calendar, so ``is_session`` is certain;
        outside it, ``is_session`` is only as good as the fallback.
    """
    d = np.asarray(dates).astype("datetime64[D]").astype("datetime64[ns]")
    out = np.zeros(d.shape, dtype=bool)
    in_range = (d >= XSHG_FIRST.to_datetime64()) & (d <= XSHG_LAST.to_datetime64())
    if in_range.any():
        out[in_range] = np.isin(d[in_range], _xshg_sessions().to_numpy())
    outside = ~in_range & ~np.isnat(d)
    if outside.any():
        lo, hi = pd.Timestamp(d[outside].min()), pd.Timestamp(d[outside].max())
        days = trading_calendar(lo, hi).to_numpy()
        out[outside] = np.isin(d[outside], days)
    return out, in_range


__all__ = ["session_status", "trading_calendar"]
