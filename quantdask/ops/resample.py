"""Daily bars to weekly / monthly / quarterly / yearly bars on the trading calendar."""

from __future__ import annotations

from functools import partial
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from quantdask.ops._overlap import from_time_last, to_time_last
from quantdask.ops.ts import period_ids

__all__ = ["BAR_FREQS", "UNCHANGED_RTOL", "bar_direction", "resample_bars"]

BAR_FREQS: tuple[str, ...] = ("W", "M", "Q", "Y")

#: Relative change at or below which a bar counts as unchanged (up/down of bars and streaks).
#: Far above float noise (a compounded week, month or year of daily ratios is off by a few
#: 1e-16 per day) and far below any real move: one 0.01 CNY tick on a price under
#: 10,000 CNY is at least 1e-6.
UNCHANGED_RTOL: float = 1e-9


def bar_direction(log_growth: xr.DataArray) -> xr.DataArray:
    """Up (+1), down (-1) or unchanged (0) of bars from their log growth.

    Parameters
    ----------
    log_growth : xarray.DataArray
        ``log(close / pre_close)`` of each bar: for a daily bar the vendor's raw ``close``
        and ``pre_close`` of the same row; for a weekly..yearly bar its close and
        ``pre_close`` from :func:`resample_bars` (the previous bar's close in this bar's
        share basis), i.e. the compounded daily raw returns since the previous bar.

    Returns
    -------
    xarray.DataArray
        float64 +1, -1, 0 (NaN where ``log_growth`` is NaN), lazy like the input.

    Notes
    -----
    ``|log_growth| <= UNCHANGED_RTOL`` counts as unchanged, so 1-ulp noise never flips a
    bar: adjusted closes of consecutive days are not compared by exact equality (an
    ex-dividend day with ``close == pre_close`` is unchanged even when the adjusted closes
    differ in the last bit, or by the rounding of a vendor's adjustment factor).
    Elementwise, lookback 0.
    """
    up = xr.where(log_growth > UNCHANGED_RTOL, 1.0, 0.0)
    down = xr.where(log_growth < -UNCHANGED_RTOL, 1.0, 0.0)
    return (up - down).where(log_growth.notnull())


_PRICE = ("open", "high", "low", "close")
_SUMS = ("vol", "amount")


def _bar_kernel(a: np.ndarray, starts: np.ndarray, how: str) -> np.ndarray:
    """Reduce each period ``[starts[k], starts[k+1])`` of the ``(m, n)`` rows of ``a``."""
    n = a.shape[-1]
    ends = np.append(starts[1:], n)
    valid = ~np.isnan(a)
    if how == "high":
        return np.fmax.reduceat(a, starts, axis=-1)
    if how == "low":
        return np.fmin.reduceat(a, starts, axis=-1)
    if how == "sum":
        total = np.add.reduceat(np.where(valid, a, 0.0), starts, axis=-1)
        any_valid = np.logical_or.reduceat(valid, starts, axis=-1)
        return np.where(any_valid, total, np.nan)
    pos = np.arange(n)
    if how == "open":
        first = np.minimum.reduceat(np.where(valid, pos, n), starts, axis=-1)
        ok = first < ends
        return np.where(ok, np.take_along_axis(a, np.minimum(first, n - 1), axis=-1), np.nan)
    last = np.maximum.reduceat(np.where(valid, pos, -1), starts, axis=-1)
    ok = last >= starts
    return np.where(ok, np.take_along_axis(a, np.maximum(last, 0), axis=-1), np.nan)


def _pre_close_kernel(c: np.ndarray, p: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each period's ``pre_close``: the previous bar's close in the share basis of its end.

    ``c``, ``p`` are ``(m, n)`` daily closes and pre_closes (NaN when not traded). The result
    is the first traded day's ``pre_close`` times, for every later traded day ``s`` of the
    period, ``pre_close[s] / close[previous traded day]`` (1.0 exactly without a corporate
    action, so the common case is the vendor's own number).
    """
    n = c.shape[-1]
    traded = ~np.isnan(c)
    pos = np.arange(n)
    last = np.maximum.accumulate(np.where(traded, pos, -1), axis=-1)
    prev = np.concatenate([np.full(c.shape[:-1] + (1,), -1), last[..., :-1]], axis=-1)
    start_of = starts[np.searchsorted(starts, pos, side="right") - 1]
    same = prev >= start_of  # an earlier traded day in the same period
    prev_close = np.take_along_axis(c, np.maximum(prev, 0), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(same, p / prev_close, p)
    step = np.where(traded, step, 1.0)
    out = np.multiply.reduceat(step, starts, axis=-1)
    return np.where(np.logical_or.reduceat(traded, starts, axis=-1), out, np.nan)


def _pre_block(
    c: np.ndarray, p: np.ndarray, *, pid: np.ndarray, axis: int, block_info: Any = None
) -> np.ndarray:
    s, e = block_info[0]["array-location"][axis]
    local = pid[s:e]
    starts = np.flatnonzero(np.r_[True, local[1:] != local[:-1]])
    res = _pre_close_kernel(
        to_time_last(c, axis), to_time_last(np.asarray(p, dtype=np.float64), axis), starts
    )
    shape = tuple(len(starts) if i == axis else n for i, n in enumerate(c.shape))
    return from_time_last(res, shape, axis)


def _block(block: np.ndarray, *, pid: np.ndarray, axis: int, how: str, block_info: Any = None):
    s, e = block_info[0]["array-location"][axis]
    local = pid[s:e]
    starts = np.flatnonzero(np.r_[True, local[1:] != local[:-1]])
    res = _bar_kernel(to_time_last(block, axis), starts, how)
    shape = tuple(len(starts) if i == axis else n for i, n in enumerate(block.shape))
    return from_time_last(res, shape, axis)


def _period_chunks(pid: np.ndarray, chunks: tuple[int, ...]) -> tuple[int, ...]:
    """Date chunks moved to the nearest period start at or after each stored boundary."""
    n = len(pid)
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    bounds = [0]
    for b in np.cumsum(chunks)[:-1]:
        k = np.searchsorted(starts, b)
        nb = int(starts[k]) if k < len(starts) else n
        if nb > bounds[-1] and nb < n:
            bounds.append(nb)
    bounds.append(n)
    return tuple(int(v) for v in np.diff(bounds))


def resample_bars(ohlc: xr.Dataset, /, *, freq: str = "W", dim: str = "date") -> xr.Dataset:
    """Completed OHLC bars per week, month, quarter or year, dated at each period's last day.

    Parameters
    ----------
    ohlc : xarray.Dataset
        Daily ``open``, ``high``, ``low``, ``close`` with a ``dim`` dimension and datetime
        coordinates (e.g. the store's ``daily`` node); NaN on non-traded days. ``vol`` and
        ``amount``, when present, are summed; ``pre_close``, when present, gives each bar's
        ``pre_close``.
    freq : {"W", "M", "Q", "Y"}, default "W"
        ISO weeks, calendar months, quarters or years (:func:`quantdask.ops.period_ids`).
    dim : str, default "date"
        The time dimension.

    Returns
    -------
    xarray.Dataset
        Lazy, one row per period, ``date`` = the period's last trading day in ``ohlc``:
        ``open`` first traded open, ``high`` max, ``low`` min, ``close`` last traded close
        (NaN when the asset never traded in the period), ``vol``/``amount`` sums, and
        ``pre_close``: the previous bar's close in this bar's share basis (the first traded
        day's ``pre_close``, carried through the period's corporate actions), so that
        ``close / pre_close - 1`` is the bar's return compounded from the raw daily
        returns, and :func:`bar_direction` of ``log(close / pre_close)`` its up/down
        (NaN when a traded day of the bar has no ``pre_close``, e.g. an asset's first bar).

    Notes
    -----
    For reports: a bar dated at its period's last day uses that whole period. The first and
    last bars cover only the part of their period inside ``ohlc`` (the data may start or end
    mid-period). For a causal, reported-every-day bar streak use the ``streak`` factor
    (``qd.factor("streak", freq="W")``), which compares the partial current bar.

    Up / down of bars: compare a bar's ``close`` with its ``pre_close`` (both raw prices of
    the vendor; without a corporate action inside the bar ``pre_close`` is exactly the
    previous bar's close), never raw closes of consecutive bars (a dividend moves them) nor
    adjusted closes by exact equality (1-ulp noise); :func:`bar_direction` counts a relative
    change within :data:`UNCHANGED_RTOL` as unchanged.

    Chunking: ``date`` is rechunked so that no period straddles two chunks (each stored
    boundary moves forward to the next period start); other dims keep their chunks.
    """
    if not isinstance(ohlc, xr.Dataset):
        raise TypeError(f"ohlc must be an xarray.Dataset, got {type(ohlc).__name__}")
    missing = [f for f in _PRICE if f not in ohlc.data_vars]
    if missing:
        raise ValueError(f"ohlc lacks fields {missing}")
    if freq not in BAR_FREQS:
        raise ValueError(f"freq must be one of {list(BAR_FREQS)}, got {freq!r}")
    if dim not in ohlc.dims or dim not in ohlc.coords:
        raise ValueError(f"ohlc needs a {dim!r} dimension with date coordinates")
    dates = ohlc[dim].values
    pid = period_ids(dates, freq)
    last = np.flatnonzero(np.r_[pid[1:] != pid[:-1], True])
    out = {}
    how = {"open": "open", "high": "high", "low": "low", "close": "close"}
    how.update({f: "sum" for f in _SUMS})
    for field, kind in how.items():
        if field not in ohlc.data_vars:
            continue
        var = ohlc[field]
        if dim not in var.dims:
            raise ValueError(f"ohlc[{field!r}] has no {dim!r} dimension")
        axis = var.get_axis_num(dim)
        data = var.data
        if not isinstance(data, da.Array):
            data = da.from_array(np.asarray(data), chunks=-1)
        data = data.astype(np.float64)
        new = _period_chunks(pid, data.chunks[axis])
        data = data.rechunk({axis: new})
        bounds = np.concatenate([[0], np.cumsum(new)])
        out_chunks = tuple(
            int(len(np.unique(pid[s:e]))) for s, e in zip(bounds[:-1], bounds[1:], strict=True)
        )
        res = data.map_blocks(
            partial(_block, pid=pid, axis=axis, how=kind),
            chunks=tuple(out_chunks if i == axis else c for i, c in enumerate(data.chunks)),
            dtype=np.float64,
            meta=np.empty((0,) * data.ndim, dtype=np.float64),
        )
        coords = {k: v for k, v in var.coords.items() if dim not in v.dims}
        coords[dim] = dates[last]
        out[field] = xr.DataArray(res, dims=var.dims, coords=coords, attrs=var.attrs)
        if field == "close" and "pre_close" in ohlc.data_vars:
            out["pre_close"] = _bar_pre_close(ohlc, data, pid, axis, out[field], dim)
    return xr.Dataset(out, attrs={"freq": freq})


def _bar_pre_close(
    ohlc: xr.Dataset, close: da.Array, pid: np.ndarray, axis: int, like: xr.DataArray, dim: str
) -> xr.DataArray:
    """The bars' ``pre_close`` (see :func:`_pre_close_kernel`), lazily, chunked like ``close``."""
    var = ohlc["pre_close"].transpose(*ohlc["close"].dims)
    pre = var.data
    if not isinstance(pre, da.Array):
        pre = da.from_array(np.asarray(pre), chunks=-1)
    pre = pre.astype(np.float64).rechunk(close.chunks)
    res = da.map_blocks(
        partial(_pre_block, pid=pid, axis=axis),
        close,
        pre,
        chunks=like.data.chunks,
        dtype=np.float64,
        meta=np.empty((0,) * close.ndim, dtype=np.float64),
    )
    return xr.DataArray(res, dims=like.dims, coords=like.coords, attrs=var.attrs)
