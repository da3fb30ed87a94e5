"""Rebalance calendars: the trading dates on which a portfolio is re-formed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from quantdask.io.store import MarketLike, as_market

#: Calendar frequencies understood by :func:`rebalance_dates`: code -> pandas period alias.
FREQUENCIES: dict[str, str] = {"D": "D", "W": "W-SUN", "M": "M", "Q": "Q", "Y": "Y"}


def trading_dates(
    market: MarketLike | xr.Dataset | xr.DataArray | pd.DatetimeIndex,
) -> pd.DatetimeIndex:
    """Return the trading calendar (the ``date`` coordinate) of a market or panel.

    Parameters
    ----------
    market : str, os.PathLike, xarray.DataTree, xarray.Dataset, xarray.DataArray or pandas.DatetimeIndex
        A store path, an opened market tree (its ``daily`` node is used), a panel or field
        with a ``date`` coordinate, or the calendar itself.

    Returns
    -------
    pandas.DatetimeIndex
        Sorted trading dates, datetime64[ns], named ``date``.
    """
    if isinstance(market, pd.DatetimeIndex):
        dates = market
    elif isinstance(market, xr.Dataset | xr.DataArray):
        if "date" not in market.coords:
            raise ValueError("market: the panel has no 'date' coordinate")
        dates = pd.DatetimeIndex(market.indexes["date"])
    else:
        tree = as_market(market)
        if "daily" not in tree.children:
            raise ValueError("market: the tree has no 'daily' node")
        dates = pd.DatetimeIndex(tree["daily"].indexes["date"])
    if not dates.is_monotonic_increasing or not dates.is_unique:
        raise ValueError("market: the date coordinate must be sorted and unique")
    return pd.DatetimeIndex(dates.astype("datetime64[ns]"), name="date")


def rebalance_dates(
    market: MarketLike | xr.Dataset | xr.DataArray | pd.DatetimeIndex,
    freq: str | Sequence[Any] | pd.DatetimeIndex = "M",
    *,
    start: Any = None,
    end: Any = None,
) -> pd.DatetimeIndex:
    """Trading dates on which to rebalance, from the store's trading calendar.

    Parameters
    ----------
    market : str, os.PathLike, xarray.DataTree, xarray.Dataset, xarray.DataArray or pandas.DatetimeIndex
        Where the trading calendar comes from (the ``date`` coordinate of the ``daily`` node).
    freq : {"M", "W", "Q", "Y", "D"} or sequence of dates, default "M"
        ``"M"``: last trading day of each calendar month; ``"W"``: last trading day of each
        Monday-to-Sunday week; ``"Q"``: of each quarter; ``"Y"``: of each year; ``"D"``: every
        trading day. A sequence of dates (strings, ``datetime``, ``numpy.datetime64``,
        ``pandas.Timestamp``) gives a custom calendar: each date is snapped to the last
        trading day on or before it (a holiday or weekend becomes the trading day before it,
        never a later one, so no future information is used); duplicates after snapping are
        dropped.
    start, end : date-like, optional
        Keep only rebalance dates within ``[start, end]``.

    Returns
    -------
    pandas.DatetimeIndex
        Sorted, unique trading dates named ``date``.

    Raises
    ------
    ValueError
        If ``freq`` is an unknown code, or a custom date lies before the first trading day.

    Notes
    -----
    The last period of the calendar may be incomplete (the store ends mid-month): its last
    stored trading day is returned as that period's rebalance date. Only coordinates are
    read; nothing is computed.

    Examples
    --------
    >>> import pandas as pd
    >>> cal = pd.bdate_range("2024-01-01", "2024-03-31")
    >>> rebalance_dates(cal, "M").strftime("%Y-%m-%d").tolist()
    ['2024-01-31', '2024-02-29', '2024-03-29']
    >>> rebalance_dates(cal, ["2024-03-02"]).strftime("%Y-%m-%d").tolist()
    ['2024-03-01']
    """
    dates = trading_dates(market)
    if len(dates) == 0:
        raise ValueError("market: the trading calendar is empty")
    if isinstance(freq, str):
        code = freq.upper()
        if code not in FREQUENCIES:
            raise ValueError(
                f"freq: unknown rebalance frequency {freq!r}; use one of {sorted(FREQUENCIES)} "
                "or a sequence of dates"
            )
        period = dates.to_period(FREQUENCIES[code]).asi8
        last = np.ones(len(dates), dtype=bool)
        last[:-1] = period[:-1] != period[1:]
        out = dates[last]
    else:
        try:
            wanted = pd.DatetimeIndex(pd.to_datetime(list(freq))).astype("datetime64[ns]")
        except (TypeError, ValueError) as err:
            raise ValueError(f"freq: could not read the custom dates: {err}") from err
        pos = dates.searchsorted(wanted, side="right") - 1
        if (pos < 0).any():
            bad = wanted[pos < 0][0]
            raise ValueError(
                f"freq: custom date {bad.date()} is before the first trading day {dates[0].date()}"
            )
        out = dates[np.unique(pos)]
    if start is not None:
        out = out[out >= pd.Timestamp(start)]
    if end is not None:
        out = out[out <= pd.Timestamp(end)]
    return pd.DatetimeIndex(out, name="date")
