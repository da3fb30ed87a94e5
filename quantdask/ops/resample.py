"""Daily bars to weekly / monthly / quarterly / yearly bars on the trading calendar."""

from __future__ import annotations

from functools import partial
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from quantdask.ops._overlap import from_time_last, to_time_last
from quantdask.ops.ts import period_ids

__all__ = ["BAR_FREQS", "resample_bars"]

BAR_FREQS: tuple[str, ...] = ("W", "M", "Q", "Y")
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
        ``amount``, when present, are summed.
    freq : {"W", "M", "Q", "Y"}, default "W"
        ISO weeks, calendar months, quarters or years (:func:`quantdask.ops.period_ids`).
    dim : str, default "date"
        The time dimension.

    Returns
    -------
    xarray.Dataset
        Lazy, one row per period, ``date`` = the period's last trading day in ``ohlc``:
        ``open`` first traded open, ``high`` max, ``low`` min, ``close`` last traded close
        (NaN when the asset never traded in the period), ``vol``/``amount`` sums.

    Notes
    -----
    For reports: a bar dated at its period's last day uses that whole period. The first and
    last bars cover only the part of their period inside ``ohlc`` (the data may start or end
    mid-period). For a causal, reported-every-day bar streak use
    ``qd.ts_streak(close, freq=...)``, which compares the partial current bar instead.

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
    return xr.Dataset(out, attrs={"freq": freq})
