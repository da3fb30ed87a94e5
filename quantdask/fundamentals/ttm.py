"""Trailing-twelve-month, quarter-on-quarter and year-on-year views of statement items.

All functions return lazy ``(date, asset)`` panels on the daily grid, built on the
point-in-time views of :mod:`quantdask.fundamentals.pit`: every input period is taken *as known
on each date* (restatements of older periods included from their own announcement on).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from quantdask.fundamentals.pit import (
    MODE_QUARTER,
    MODE_TTM,
    MODE_VALUE,
    Anchor,
    AsOf,
    views_panel,
)
from quantdask.io import schema
from quantdask.io.store import MarketLike

Kind = Literal["value", "ttm", "quarter"]
_KIND_MODE = {"value": MODE_VALUE, "ttm": MODE_TTM, "quarter": MODE_QUARTER}


def _mode(item: str, kind: str) -> int:
    if kind not in _KIND_MODE:
        raise ValueError(f"kind must be one of {tuple(_KIND_MODE)}, got {kind!r}")
    if kind != "value" and item in schema.STOCK_ITEMS:
        raise ValueError(
            f"kind={kind!r} needs a cumulative flow item; {item!r} is a balance-sheet item "
            f"(flow items: {list(schema.FLOW_ITEMS)})"
        )
    return _KIND_MODE[kind]


def ttm(
    market: MarketLike,
    item: str,
    *,
    lag: int = 0,
    as_of: AsOf = "next_trading_day",
    anchor: Anchor = "report",
) -> xr.DataArray:
    """Trailing-twelve-month value of a cumulative flow item, point in time.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        Market store with ``daily`` and ``fundamentals`` nodes.
    item : str
        A flow item (:data:`quantdask.io.schema.FLOW_ITEMS`), e.g. ``"revenue"``.
    lag : int, default 0
        Periods back from the latest known report (0 = latest, 4 = a year earlier).
    as_of : {"next_trading_day", "same_day"}
        Availability convention, see :func:`quantdask.fundamentals.align`.
    anchor : {"report", "item"}, default "report"
        Latest period = the asset's latest report (``"report"``) or the latest report that
        includes this item (``"item"``); see :func:`quantdask.fundamentals.pit_views`.

    Returns
    -------
    xarray.DataArray
        Lazy ``(date, asset)``.

    Notes
    -----
    ``TTM = YTD(P) + annual(year(P) - 1) - YTD(P - 4 quarters)`` for the latest known period
    ``P`` (``TTM = YTD(P)`` when ``P`` is a December year end), each term as known on the date;
    NaN when any term is unknown. Lookback: none on the daily panel (earlier records are read
    whole). No look-ahead.
    """
    (out,), _ = views_panel(
        market, item, views=[(_mode(item, "ttm"), _lag(lag))], as_of=as_of, anchor=anchor
    )
    return out


def latest(
    market: MarketLike,
    item: str,
    *,
    kind: Kind = "value",
    lag: int = 0,
    as_of: AsOf = "next_trading_day",
    anchor: Anchor = "report",
) -> xr.DataArray:
    """Value, TTM or single-quarter figure of the report ``lag`` periods before the latest.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        Market store.
    item : str
        Statement item.
    kind : {"value", "ttm", "quarter"}, default "value"
        ``"value"``: the reported figure (YTD for flow items); ``"ttm"`` and ``"quarter"``
        (single quarter = YTD(P) - YTD(P - 1) within a year) need a flow item.
    lag : int, default 0
        Periods back from the latest known report.
    as_of : {"next_trading_day", "same_day"}
        Availability convention.
    anchor : {"report", "item"}, default "report"
        Meaning of "latest period", see :func:`ttm`.

    Returns
    -------
    xarray.DataArray
        Lazy ``(date, asset)``.

    Notes
    -----
    Lookback: none on the daily panel. No look-ahead.
    """
    (out,), _ = views_panel(
        market, item, views=[(_mode(item, kind), _lag(lag))], as_of=as_of, anchor=anchor
    )
    return out


def _lag(lag: int) -> int:
    if isinstance(lag, bool) or not isinstance(lag, int | np.integer) or lag < 0:
        raise ValueError(f"lag must be a non-negative integer, got {lag!r}")
    return int(lag)


def change(
    market: MarketLike,
    item: str,
    *,
    kind: Kind = "value",
    periods: int = 1,
    relative: bool = False,
    as_of: AsOf = "next_trading_day",
    anchor: Anchor = "report",
) -> xr.DataArray:
    """Change between the latest known report and the one ``periods`` quarters before it.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        Market store.
    item : str
        Statement item.
    kind : {"value", "ttm", "quarter"}, default "value"
        Which figure of each period to compare (see :func:`latest`).
    periods : int, default 1
        1 = quarter-on-quarter increment ("环比增量": latest report vs the one before),
        4 = year on year.
    relative : bool, default False
        False: the difference ``x(P) - x(P - periods)``. True: the growth rate
        ``(x(P) - x(P - periods)) / |x(P - periods)|`` (NaN when the base is 0).
    as_of : {"next_trading_day", "same_day"}
        Availability convention.
    anchor : {"report", "item"}, default "report"
        Meaning of "latest period", see :func:`ttm`.

    Returns
    -------
    xarray.DataArray
        Lazy ``(date, asset)``.

    Notes
    -----
    Both periods are taken as known on each date (a restatement of the older period counts
    from its announcement on). Lookback: none on the daily panel. No look-ahead.
    """
    periods = _lag(periods)
    if periods == 0:
        raise ValueError("periods must be >= 1")
    mode = _mode(item, kind)
    (now, before), _ = views_panel(
        market, item, views=[(mode, 0), (mode, periods)], as_of=as_of, anchor=anchor
    )
    return _diff(now, before, relative=relative)


def yoy(
    market: MarketLike,
    item: str,
    *,
    kind: Kind = "value",
    as_of: AsOf = "next_trading_day",
    anchor: Anchor = "report",
) -> xr.DataArray:
    """Year-on-year growth rate of an item, point in time.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        Market store.
    item : str
        Statement item.
    kind : {"value", "ttm", "quarter"}, default "value"
        ``"value"`` compares YTD with YTD a year earlier (flow items) or point values a year
        apart (stock items); ``"ttm"`` compares trailing-twelve-month figures.
    as_of : {"next_trading_day", "same_day"}
        Availability convention.
    anchor : {"report", "item"}, default "report"
        Meaning of "latest period", see :func:`ttm`.

    Returns
    -------
    xarray.DataArray
        ``(x(P) - x(P - 4)) / |x(P - 4)|``; NaN when the base is 0 or unknown.

    Notes
    -----
    Lookback: none on the daily panel. No look-ahead.
    """
    return change(market, item, kind=kind, periods=4, relative=True, as_of=as_of, anchor=anchor)


def _diff(now: xr.DataArray, before: xr.DataArray, *, relative: bool) -> xr.DataArray:
    delta = now - before
    if not relative:
        return delta
    base = abs(before)
    return (delta / base.where(base > 0)).rename(now.name)


__all__ = ["change", "latest", "ttm", "yoy"]
