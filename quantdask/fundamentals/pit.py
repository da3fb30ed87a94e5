"""Point-in-time alignment of statement records to the daily ``(date, asset)`` panel.

The ``fundamentals`` node holds one record per ``(asset, end_date, ann_date)``: flow items
cumulative year to date, stock items as point values (:mod:`quantdask.io.schema`). This module
turns those records into dense ``(date, asset)`` panels that hold, on every trading date, what
an investor could know on that date.

Conventions
-----------
* **Availability.** With ``as_of="next_trading_day"`` (the default) a record is usable from the
  first trading day *strictly after* its ``ann_date``: most reports are published after the
  close or on non-trading days, and a factor evaluated on the close of ``t`` must not use a
  report announced on ``t``. With ``as_of="same_day"`` (after-close convention) the record is
  usable on ``ann_date`` itself when that is a trading day (otherwise the next trading day):
  use it only for signals formed after the close and traded on the next day.
* **Periods.** ``end_date`` is mapped to a fiscal quarter ``year * 4 + (month - 1) // 3``.
* **Latest wins.** The *latest* value of an item on date ``t`` is the value of the most recent
  report period (largest ``end_date``) known on ``t``. A restatement (a later announcement of
  the same period) replaces that period's value from its own availability date on; a late
  restatement of an *older* period never replaces a newer period in the latest view, but does
  replace the older period's value in every computation that reads it (TTM, YoY, QoQ) from
  its availability date on.
* **Missing values and the anchor.** A record whose value is ``NaN`` for an item did not
  report that item (quarterly reports often omit head counts or customer concentration).
  With ``anchor="item"`` (the default of :func:`align`) such records are ignored: the item
  keeps its last reported value and its latest period is the latest period that reported it.
  With ``anchor="report"`` the latest period is that of the asset's latest report of any kind
  and the item is missing when that report omits it; the TTM/QoQ/YoY helpers and the
  fundamental factors use it so that all items and lags they combine refer to one period.
  Values persist until a newer report arrives (there is no staleness cut-off).

Implementation
--------------
Records are read once (a single small task), mapped to integer asset positions, availability
rows (``searchsorted`` into the trading calendar) and period numbers, and sorted by
``(asset, availability, ann_date, update_flag)``. One compiled kernel per asset block then
walks each asset's sorted records, keeps the asset's known value per period, and writes the
requested views (value, TTM or single-quarter value of the period ``k`` reports before the
latest) into the rows between one availability date and the next. There is no Python loop
over assets or dates; the result is a lazy dask array with one chunk per asset chunk of the
daily panel, rechunked along ``date`` to the daily panel's chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import dask
import dask.array as da
import numba
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.io import schema
from quantdask.io.store import MarketLike, as_market

AsOf = Literal["next_trading_day", "same_day"]
AS_OF_CHOICES: tuple[str, ...] = ("next_trading_day", "same_day")
Anchor = Literal["item", "report"]
ANCHORS: tuple[str, ...] = ("item", "report")

#: View modes of the kernel.
MODE_VALUE = 0  # the item's value for the period
MODE_TTM = 1  # trailing twelve months of a cumulative-YTD flow item
MODE_QUARTER = 2  # single-quarter value of a cumulative-YTD flow item


# --------------------------------------------------------------------------------------
# kernel (plain numpy in, plain numpy out)
# --------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _period_view(state: np.ndarray, p: int, mode: int) -> float:
    """Value of period ``p`` (index into ``state``) under ``mode``; NaN when unknown."""
    if p < 0:
        return np.nan
    v = state[p]
    if mode == MODE_VALUE:
        return v
    q = p % 4
    if mode == MODE_QUARTER:
        if q == 0:
            return v
        if p - 1 < 0:
            return np.nan
        return v - state[p - 1]
    # MODE_TTM: YTD(p) + annual(previous year) - YTD(p - 4)
    if q == 3:
        return v
    pa = p - q - 1
    pl = p - 4
    if pl < 0:
        return np.nan
    return v + state[pa] - state[pl]


@numba.njit(cache=True)
def _pit_kernel(
    asset_pos: np.ndarray,
    row: np.ndarray,
    period: np.ndarray,
    value: np.ndarray,
    n_dates: int,
    n_assets: int,
    n_periods: int,
    modes: np.ndarray,
    lags: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Scatter sorted records into ``(view, date, asset)`` panels with forward fill.

    Records must be sorted by ``(asset_pos, row, ann_date, update_flag)``; ``row`` is the
    first calendar row where the record is usable (``< n_dates``). A record with a non-finite
    value advances the latest period but leaves the period's value as it was.
    Returns the views ``(view, asset, date)`` and the latest known period per
    ``(asset, date)`` (``-1`` = none).
    """
    n_views = modes.shape[0]
    # (view, asset, date) so the forward fill writes contiguous runs; callers transpose
    out = np.full((n_views, n_assets, n_dates), np.nan)
    latest = np.full((n_assets, n_dates), -1, dtype=np.int64)
    state = np.empty(n_periods)
    snap = np.empty(n_views)
    n = asset_pos.shape[0]
    i = 0
    while i < n:
        a = asset_pos[i]
        state[:] = np.nan
        maxp = -1
        while i < n and asset_pos[i] == a:
            r = row[i]
            while i < n and asset_pos[i] == a and row[i] == r:
                p = period[i]
                if np.isfinite(value[i]):
                    state[p] = value[i]
                if p > maxp:
                    maxp = p
                i += 1
            for k in range(n_views):
                snap[k] = _period_view(state, maxp - lags[k], modes[k])
            r_next = n_dates
            if i < n and asset_pos[i] == a:
                r_next = row[i]
            latest[a, r:r_next] = maxp
            for k in range(n_views):
                out[k, a, r:r_next] = snap[k]
    return out, latest


def pit_views(
    asset_pos: np.ndarray,
    row: np.ndarray,
    period: np.ndarray,
    value: np.ndarray,
    *,
    n_dates: int,
    n_assets: int,
    views: Sequence[tuple[int, int]],
    anchor: Anchor = "item",
) -> tuple[np.ndarray, np.ndarray]:
    """Point-in-time views of one item on plain arrays (the kernel behind :func:`align`).

    Parameters
    ----------
    asset_pos, row, period, value : numpy.ndarray
        Per record: asset column (0..n_assets-1), first usable calendar row, fiscal period
        number (``year * 4 + quarter - 1``, any origin) and value. Any order; records with
        ``row >= n_dates`` are ignored.
    n_dates, n_assets : int
        Output shape.
    views : sequence of (mode, lag)
        ``mode`` 0 value, 1 TTM, 2 single quarter; ``lag`` counts periods back from the
        latest known period (0 = latest, 1 = previous quarter, 4 = same quarter a year ago).
    anchor : {"item", "report"}, default "item"
        What "latest period" means. ``"item"``: the latest period that *reported this item*
        (a record with a missing value is ignored), e.g. the latest known head count even when
        quarterly reports omit it. ``"report"``: the latest period of *any* report of the
        asset; the item is missing when that report omits it. Use ``"report"`` whenever views
        of several items or lags are combined, so that they all refer to the same period.

    Returns
    -------
    out : numpy.ndarray
        ``(len(views), n_dates, n_assets)`` float64.
    latest : numpy.ndarray
        ``(n_dates, n_assets)`` int64 latest known period (``-1`` when none), in the caller's
        period numbering.
    """
    asset_pos = np.asarray(asset_pos, dtype=np.int64)
    row = np.asarray(row, dtype=np.int64)
    period = np.asarray(period, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    value = np.where(np.isfinite(value), value, np.nan)
    keep = (row < n_dates) & (asset_pos >= 0) & (asset_pos < n_assets)
    if anchor == "item":
        keep &= np.isfinite(value)
    asset_pos, row, period, value = asset_pos[keep], row[keep], period[keep], value[keep]
    if period.size:
        p0 = (int(period.min()) // 4) * 4  # keep period % 4 == fiscal quarter - 1
        n_periods = int(period.max()) - p0 + 1
    else:
        p0, n_periods = 0, 1
    # stable sort keeps the caller's (ann_date, update_flag) order within equal rows
    order = np.lexsort((row, asset_pos))
    modes = np.array([m for m, _ in views], dtype=np.int64)
    lags = np.array([lag for _, lag in views], dtype=np.int64)
    out, latest = _pit_kernel(
        asset_pos[order],
        row[order],
        period[order] - p0,
        value[order],
        n_dates,
        n_assets,
        n_periods,
        modes,
        lags,
    )
    latest = np.where(latest >= 0, latest + p0, -1)
    return out.transpose(0, 2, 1), latest.T


# --------------------------------------------------------------------------------------
# record preparation (one small task)
# --------------------------------------------------------------------------------------
def _fundamentals_node(market: xr.DataTree) -> xr.Dataset:
    if "fundamentals" not in market.children:
        raise ValueError("market has no 'fundamentals' node; point-in-time data is unavailable")
    return market["fundamentals"].to_dataset()


def _prepare(
    rec_asset: np.ndarray,
    end_date: np.ndarray,
    ann_date: np.ndarray,
    update_flag: np.ndarray,
    calendar: np.ndarray,
    assets: np.ndarray,
    side: str,
) -> dict[str, np.ndarray]:
    """Map records to (asset position, usable row, period) sorted for the kernel."""
    pos = pd.Index(np.asarray(assets).astype(str)).get_indexer(np.asarray(rec_asset).astype(str))
    ann = np.asarray(ann_date, dtype="datetime64[ns]")
    end = pd.DatetimeIndex(np.asarray(end_date, dtype="datetime64[ns]"))
    row = np.searchsorted(np.asarray(calendar, dtype="datetime64[ns]"), ann, side=side)
    period = np.asarray(end.year, dtype=np.int64) * 4 + (np.asarray(end.month) - 1) // 3
    valid = (pos >= 0) & ~np.isnat(ann) & ~np.isnat(end.values)
    if update_flag is None:
        flag = np.zeros(len(ann), dtype=np.int64)
    else:
        flag = np.nan_to_num(np.asarray(update_flag, dtype=np.float64)).astype(np.int64)
    idx = np.flatnonzero(valid)
    # order within an asset and availability row: announcement, then restatement flag
    order = idx[np.lexsort((flag[idx], ann[idx], row[idx], pos[idx]))]
    return {
        "index": order,
        "asset_pos": pos[order].astype(np.int64),
        "row": row[order].astype(np.int64),
        "period": period[order],
    }


def _block(
    prepared: dict[str, np.ndarray],
    values: np.ndarray,
    lo: int,
    hi: int,
    n_dates: int,
    views: tuple[tuple[int, int], ...],
    anchor: str,
) -> np.ndarray:
    """Kernel on the records of assets ``lo..hi-1``; returns ``(n_views + 1, date, asset)``.

    The last view is the latest known period (as float, NaN when none).
    """
    pos = prepared["asset_pos"]
    a, b = np.searchsorted(pos, [lo, hi])
    sel = prepared["index"][a:b]
    out, latest = pit_views(
        pos[a:b] - lo,
        prepared["row"][a:b],
        prepared["period"][a:b],
        np.asarray(values, dtype=np.float64)[sel],
        n_dates=n_dates,
        n_assets=hi - lo,
        views=views,
        anchor=anchor,  # type: ignore[arg-type]
    )
    lat = np.where(latest >= 0, latest, np.nan)[None]
    return np.concatenate([out, lat], axis=0)


def _check_items(items: Sequence[str], available: Sequence[str]) -> None:
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"statement item names must be strings, got {item!r}")
        if item not in available:
            raise ValueError(
                f"unknown statement item {item!r}; the fundamentals node has {sorted(available)}"
            )


def _check_as_of(as_of: str) -> str:
    if as_of not in AS_OF_CHOICES:
        raise ValueError(f"as_of must be one of {AS_OF_CHOICES}, got {as_of!r}")
    return "right" if as_of == "next_trading_day" else "left"


def views_panel(
    market: MarketLike,
    item: str,
    *,
    views: Sequence[tuple[int, int]],
    as_of: AsOf = "next_trading_day",
    anchor: Anchor = "item",
) -> tuple[list[xr.DataArray], xr.DataArray]:
    """Lazy point-in-time views of one statement item on the daily panel's grid.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        Market store (path or opened tree) with ``daily`` and ``fundamentals`` nodes.
    item : str
        A statement item of :data:`quantdask.io.schema.STATEMENT_ITEMS`.
    views : sequence of (mode, lag)
        See :func:`pit_views`.
    as_of : {"next_trading_day", "same_day"}
        Availability convention (module docstring).
    anchor : {"item", "report"}, default "item"
        Meaning of "latest period", see :func:`pit_views`.

    Returns
    -------
    views : list of xarray.DataArray
        One lazy ``(date, asset)`` array per requested view.
    latest_period : xarray.DataArray
        Latest known fiscal period (``year * 4 + quarter - 1``) as float, NaN when none.

    Notes
    -----
    No lookback on the daily panel: all records announced before the panel's first date are
    used (the record table is read whole, it is small). No look-ahead: a record is used only
    from its availability date on.
    """
    market = as_market(market)
    side = _check_as_of(as_of)
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    fund = _fundamentals_node(market)
    _check_items([item], [v for v in fund.data_vars if v not in schema.FUNDAMENTAL_KEYS])
    views = tuple((int(m), int(k)) for m, k in views)
    for m, k in views:
        if m not in (MODE_VALUE, MODE_TTM, MODE_QUARTER) or k < 0:
            raise ValueError(f"bad view {(m, k)!r}: mode must be 0, 1 or 2 and lag >= 0")
    daily = market["daily"].to_dataset()
    calendar = daily["date"].values
    assets = daily["asset"].values
    n_dates, n_assets = calendar.size, assets.size

    def _data(name: str) -> Any:
        return fund[name].data if name in fund else None

    prepared = dask.delayed(_prepare, pure=True)(
        _data("asset"),
        _data("end_date"),
        _data("ann_date"),
        _data("update_flag"),
        calendar,
        assets,
        side,
    )
    values = fund[item].data
    if isinstance(values, da.Array):
        values = dask.delayed(values)  # one task holding the whole column
    asset_chunks = _asset_chunks(daily, n_assets)
    blocks = []
    lo = 0
    for width in asset_chunks:
        hi = lo + width
        blk = dask.delayed(_block, pure=True)(prepared, values, lo, hi, n_dates, views, anchor)
        blocks.append(
            da.from_delayed(blk, shape=(len(views) + 1, n_dates, width), dtype=np.float64)
        )
        lo = hi
    if blocks:
        arr = da.concatenate(blocks, axis=2)
    else:
        arr = da.empty((len(views) + 1, n_dates, 0), dtype=np.float64)
    date_chunks = _date_chunks(daily, n_dates)
    arr = arr.rechunk({0: 1, 1: date_chunks, 2: asset_chunks})
    coords = {"date": daily["date"], "asset": daily["asset"]}
    outs = [
        xr.DataArray(arr[k], dims=("date", "asset"), coords=coords, name=item)
        for k in range(len(views) + 1)
    ]
    return outs[:-1], outs[-1].rename("latest_period")


def _asset_chunks(daily: xr.Dataset, n_assets: int) -> tuple[int, ...]:
    for v in daily.data_vars.values():
        if v.dims == ("date", "asset") and v.chunks is not None:
            return tuple(v.chunks[1])
    return _even(n_assets, schema.ASSET_CHUNK)


def _date_chunks(daily: xr.Dataset, n_dates: int) -> tuple[int, ...]:
    for v in daily.data_vars.values():
        if v.dims == ("date", "asset") and v.chunks is not None:
            return tuple(v.chunks[0])
    return _even(n_dates, schema.DATE_CHUNK)


def _even(n: int, size: int) -> tuple[int, ...]:
    if n == 0:
        return (0,)
    full, rest = divmod(n, size)
    return (size,) * full + ((rest,) if rest else ())


def align(
    market: MarketLike,
    items: str | Sequence[str],
    *,
    as_of: AsOf = "next_trading_day",
    anchor: Anchor = "item",
) -> xr.DataArray | xr.Dataset:
    """Latest known value of statement items on every ``(date, asset)`` of the daily panel.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        Market store with ``daily`` and ``fundamentals`` nodes.
    items : str or sequence of str
        Statement items (:data:`quantdask.io.schema.STATEMENT_ITEMS`). Flow items come out as
        the cumulative year-to-date figure of the latest period (use
        :func:`quantdask.fundamentals.ttm` for trailing twelve months).
    as_of : {"next_trading_day", "same_day"}, default "next_trading_day"
        ``"next_trading_day"``: a record is usable from the first trading day strictly after
        its ``ann_date``. ``"same_day"``: usable on ``ann_date`` itself when it is a trading
        day (after-close convention; signals formed after the close, traded the next day).
    anchor : {"item", "report"}, default "item"
        ``"item"``: the latest *reported* value of each item; ``"report"``: the item's value
        in the asset's latest report (missing when that report omits it).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        Lazy ``(date, asset)`` panel(s) on the daily grid; a DataArray for one item name, a
        Dataset for a sequence.

    Notes
    -----
    Lookback: none on the daily panel (every record announced before the first date is used).
    Look-ahead: none; the value on ``t`` depends only on records usable on or before ``t``.
    The latest report period known on ``t`` wins; restatements take effect only from their own
    announcement and a restatement of an older period never overrides a newer one. See the
    module docstring for the full convention.

    Examples
    --------
    >>> import quantdask as qd
    >>> market = qd.open_market("market.zarr")  # doctest: +SKIP
    >>> equity = qd.align(market, "total_hldr_eqy")  # doctest: +SKIP
    """
    if isinstance(items, str):
        (panel,), _ = views_panel(
            market, items, views=[(MODE_VALUE, 0)], as_of=as_of, anchor=anchor
        )
        return panel
    if not isinstance(items, Sequence) or not items:
        raise TypeError(
            f"items must be an item name or a non-empty sequence of names, got {items!r}"
        )
    out = {}
    for name in items:
        (panel,), _ = views_panel(market, name, views=[(MODE_VALUE, 0)], as_of=as_of, anchor=anchor)
        out[name] = panel
    return xr.Dataset(out)


__all__ = ["ANCHORS", "AS_OF_CHOICES", "align", "pit_views", "views_panel"]
