"""Forward returns: the labels a factor is judged against.

Everything here is forward-looking by construction (names start with ``fwd_``); these arrays
are labels for evaluation and must never feed a factor.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import numpy as np
import xarray as xr
from dask.array.overlap import ensure_minimum_chunksize

from quantdask.analytics._kernels import forward_kernel
from quantdask.io.store import MarketLike, as_market

#: Tolerance (CNY) for "the close is at the up limit": limit prices are rounded to 0.01.
LIMIT_TOLERANCE = 0.005


def _daily_dataset(market: MarketLike | xr.Dataset) -> xr.Dataset:
    if isinstance(market, xr.Dataset):
        return market
    tree = as_market(market)
    if "daily" not in tree.children:
        raise ValueError("market has no 'daily' node; pass the tree from qd.open_market")
    return tree["daily"].to_dataset()


def _check_periods(periods: Sequence[int] | int, name: str = "periods") -> tuple[int, ...]:
    if isinstance(periods, int | np.integer):
        periods = (int(periods),)
    out = tuple(periods)
    if not out:
        raise ValueError(f"{name} must hold at least one horizon, got {periods!r}")
    for p in out:
        if isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 1:
            raise ValueError(f"{name} must be positive integers (trading days), got {p!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has duplicate horizons: {out!r}")
    return tuple(int(p) for p in out)


def entry_blocked(daily: xr.Dataset) -> xr.DataArray:
    """Cells where a buy at the close is impossible: no close, suspended, or closed limit-up.

    Parameters
    ----------
    daily : xarray.Dataset
        The ``daily`` node: ``close``, and when present ``suspended`` and ``up_limit``.

    Returns
    -------
    xarray.DataArray
        Boolean (date, asset), lazy.

    Notes
    -----
    A close at the up limit (within half a tick, ``LIMIT_TOLERANCE``) means buy orders queue at
    the limit without sellers, so a close-price entry is not possible. ``up_limit`` missing
    (no limit, e.g. first days after listing) never blocks. Lookback 0, no look-ahead.
    """
    if "close" not in daily:
        raise ValueError("daily dataset has no 'close' field")
    close = daily["close"]
    blocked = ~np.isfinite(close)
    if "suspended" in daily:
        blocked = blocked | daily["suspended"].astype(bool)
    if "up_limit" in daily:
        up = daily["up_limit"]
        blocked = blocked | (np.isfinite(up) & (close >= up - LIMIT_TOLERANCE))
    return blocked


def _forward_block(
    close: np.ndarray,
    pre: np.ndarray,
    susp: np.ndarray,
    up: np.ndarray,
    *,
    horizons: tuple[int, ...],
    n_out: int,
) -> np.ndarray:
    """(H, n_out, ...) forward returns of a date-first block (extra trailing dims flattened)."""
    shape = close.shape
    flat = [np.ascontiguousarray(x).reshape(shape[0], -1) for x in (close, pre, susp, up)]
    res = forward_kernel(
        flat[0].astype(np.float64, copy=False),
        flat[1].astype(np.float64, copy=False),
        flat[2].astype(bool, copy=False),
        flat[3].astype(np.float64, copy=False),
        np.asarray(horizons, dtype=np.int64),
        int(n_out),
        LIMIT_TOLERANCE,
    )
    return res.reshape(len(horizons), n_out, *shape[1:])


def _forward_dask(data: list, horizons: tuple[int, ...]) -> da.Array:
    """One task per input block: the block plus the next ``max(h) + 1`` dates, one kernel call.

    The look-ahead rows come from the following date chunks (``dask.array.overlap`` with a
    one-sided depth), so there is no cumulative sum across chunks and no shifted copies.
    """
    look = max(horizons) + 1
    arrays = [da.asarray(x) for x in data]
    chunks = arrays[0].chunks
    arrays = [x.rechunk(chunks) for x in arrays]
    depth = {0: (0, look), **{i: 0 for i in range(1, arrays[0].ndim)}}
    # overlap needs date chunks of at least `look` rows; merge small ones first
    if min(chunks[0]) < look and len(chunks[0]) > 1:
        wide = ensure_minimum_chunksize(look, chunks[0])
        arrays = [x.rechunk({0: wide}) for x in arrays]
    out_chunks = arrays[0].chunks
    ext = [da.overlap.overlap(x, depth=depth, boundary="none") for x in arrays]

    def block(close, pre, susp, up, block_info=None):
        n_out = block_info[None]["chunk-shape"][1]
        return _forward_block(close, pre, susp, up, horizons=horizons, n_out=n_out)

    res = da.map_blocks(
        block,
        *ext,
        new_axis=0,
        chunks=((len(horizons),), *out_chunks),
        dtype=np.float64,
        meta=np.empty((0,) * (arrays[0].ndim + 1), dtype=np.float64),
    )
    return res.rechunk({0: -1, **{i + 1: c for i, c in enumerate(chunks)}})


def forward_returns(
    market: MarketLike | xr.Dataset,
    periods: Sequence[int] | int = (1, 5, 20),
    *,
    dim: str = "date",
) -> xr.Dataset:
    """Forward returns from the next tradable close, one variable per horizon.

    ``fwd_ret_h`` at date ``t`` is the return of buying at the close of ``t + 1`` and selling
    at the close of ``t + 1 + h``, compounded from daily returns ``close / pre_close - 1``
    (``pre_close`` is adjusted for corporate actions, so splits and dividends do not show up
    as returns).

    Parameters
    ----------
    market : str, os.PathLike, xarray.DataTree or xarray.Dataset
        A market store path, the tree from :func:`quantdask.open_market`, or its ``daily``
        node as a Dataset (needs ``close`` and ``pre_close``; ``suspended`` and ``up_limit``
        are used when present).
    periods : sequence of int, default (1, 5, 20)
        Holding horizons in trading days.
    dim : str, default "date"
        The time dimension.

    Returns
    -------
    xarray.Dataset
        Variables ``fwd_ret_<h>`` for each horizon, dims (date, asset), lazy dask arrays
        chunked like the input.

    Notes
    -----
    * Why ``t + 1``: a signal computed from ``t``'s close can first be acted on at the next
      session. Entry at the close of ``t + 1`` is assumed.
    * Entry blocked: when the stock has no close at ``t + 1`` (suspended, not yet listed or
      delisted) or closes at its up limit at ``t + 1`` (see :func:`entry_blocked`), the
      position cannot be opened and ``fwd_ret_h`` is NaN.
    * Suspensions during the holding period contribute no return on the suspended days; the
      first day after resumption carries the whole move (``pre_close`` is the previous traded
      close). A stock that is suspended or delisted at ``t + 1 + h`` is valued at its last
      traded close.
    * Exit is marked at the close of ``t + 1 + h`` even when the stock is locked at its down
      limit that day (a label, not a tradable P&L; the back-test enforces sell limits).
    * Windows that run past the last date of the panel are NaN.
    * Look-ahead: these are labels and look ``h + 1`` days into the future on purpose.
      Lookback: none. Chunks: any layout; one compiled pass per input block reads the block
      and the next ``max(periods) + 1`` dates (from the following date chunk), computes
      every horizon at once and keeps the input's chunks (date chunks shorter than that
      look-ahead are merged for the computation and split again).

    Examples
    --------
    >>> import quantdask as qd
    >>> fwd = qd.forward_returns(market, periods=(1, 5))  # doctest: +SKIP
    >>> fwd["fwd_ret_5"]  # doctest: +SKIP
    """
    horizons = _check_periods(periods)
    daily = _daily_dataset(market)
    for field in ("close", "pre_close"):
        if field not in daily:
            raise ValueError(f"market daily data has no {field!r} field")
    if dim not in daily.dims:
        raise ValueError(f"dimension {dim!r} not in the market data (dims: {tuple(daily.dims)})")

    close = daily["close"]
    template = close.dims
    fields = [close, daily["pre_close"]]
    fields.append(
        daily["suspended"].astype(bool)
        if "suspended" in daily
        else xr.zeros_like(close, dtype=bool)
    )
    fields.append(daily["up_limit"] if "up_limit" in daily else xr.full_like(close, np.nan))
    fields = [f.transpose(*template) for f in fields]
    axis = template.index(dim)
    data = [np.moveaxis(f.data, axis, 0) for f in fields]  # date first
    if any(isinstance(x, da.Array) for x in data):
        stacked = _forward_dask(data, horizons)
    else:
        stacked = _forward_block(*data, horizons=horizons, n_out=data[0].shape[0])

    out = {}
    for k, h in enumerate(horizons):
        fwd = xr.DataArray(np.moveaxis(stacked[k], 0, axis), dims=template, coords=close.coords)
        fwd.attrs = {
            "long_name": f"{h}-day forward return",
            "description": f"close(t+1) -> close(t+1+{h}); NaN when entry at t+1 is blocked",
            "units": "fraction",
        }
        out[f"fwd_ret_{h}"] = fwd.rename(f"fwd_ret_{h}")
    return xr.Dataset(out)
