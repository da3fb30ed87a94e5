"""Cross-section ops: per date, across ``asset``, on labelled lazy DataArrays.

Every op takes a :class:`xarray.DataArray` with an ``asset`` dimension (usually ``(date,
asset)``), dask- or numpy-backed, and returns a lazy float64 DataArray with the same dims and
coords. Each date (more generally, each cell of the other dimensions) is one independent
cross-section.

Chunking
--------
A cross-section needs all assets of a date in one block, so every op rechunks ``asset`` to a
single chunk (``x.chunk({"asset": -1})``); stored ``date`` chunks are only split (never
merged) so that one task holds about ``CS_BLOCK_CELLS`` (2M) cells: at 5,500 assets a 1024-date
block becomes 4 tasks of 256 dates. The output keeps that layout (all assets per chunk); call
``.chunk(...)`` to go back to the stored layout if a time-series op follows. Kernels are numba,
parallel over dates (:mod:`quantdask.kernels.cross`).

Groups
------
``group`` is a ``(date, asset)`` integer DataArray such as the store's ``industry`` (0 = no
group). With a group, each op runs within each (date, group) separately; cells in group 0 are
NaN in the output.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from quantdask.kernels import cross

__all__ = [
    "CS_BLOCK_CELLS",
    "MAD_SCALE",
    "cs_neutralize",
    "cs_quantile",
    "cs_rank",
    "cs_winsorize",
    "cs_zscore",
]

#: Cells per cross-section block: a stored date block (1024 dates) is split so that one task
#: sorts at most ~2M values (16 MiB); at 5,500 assets that is 4 blocks of 256 dates. Smaller tasks
#: balance better over workers and keep the sort's temporaries small.
CS_BLOCK_CELLS: int = 1 << 21

#: Scale that makes the median absolute deviation estimate the std of normal data.
MAD_SCALE: float = 1.482602218505602


def _check(x: Any, dim: str, arg: str) -> xr.DataArray:
    if not isinstance(x, xr.DataArray):
        raise TypeError(f"{arg} must be an xarray.DataArray, got {type(x).__name__}")
    if dim not in x.dims:
        raise ValueError(f"{arg} has no dimension {dim!r} (dims: {x.dims})")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"{arg} must be numeric, got dtype {x.dtype}")
    return x


def _like(other: Any, x: xr.DataArray, arg: str, fill: Any, dtype: Any) -> xr.DataArray:
    """``other`` reindexed and broadcast to ``x``'s coords and dim order."""
    other = _check(other, "asset", arg)
    extra = set(other.dims) - set(x.dims)
    if extra:
        raise ValueError(f"{arg} has dimensions {sorted(extra)} that x lacks")
    other = other.reindex_like(x, fill_value=fill) if other.dims else other
    if np.issubdtype(other.dtype, np.floating) and np.dtype(dtype).kind == "i":
        other = other.fillna(fill)  # float codes with NaN for "no group"
    other = other.broadcast_like(x).transpose(*x.dims).astype(dtype)
    return other


def _blocks(x: xr.DataArray, asset: str) -> tuple[da.Array, tuple[str, ...]]:
    """Dask data with ``asset`` last and in one chunk; returns the transposed dims too."""
    dims = tuple(d for d in x.dims if d != asset) + (asset,)
    xt = x.transpose(*dims)
    data = xt.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=-1)
    data = data.rechunk({len(dims) - 1: -1})
    if data.ndim == 2:
        data = data.rechunk({0: _split_chunks(data.chunks[0], data.shape[1])})
    return data, dims


def _split_chunks(chunks: tuple[int, ...], n_assets: int) -> tuple[int, ...]:
    """Split (never merge) date chunks so one block holds about ``CS_BLOCK_CELLS`` cells.

    Regular input chunks stay regular and aligned (the new size divides the old one, e.g.
    1024 -> 256 at 5,500 assets), so the result can be written to zarr as is.
    """
    target = max(1, CS_BLOCK_CELLS // max(n_assets, 1))
    first = chunks[0]
    if first <= target:
        return chunks
    regular = all(c == first for c in chunks[:-1]) and chunks[-1] <= first
    if regular:
        size = max(d for d in range(1, target + 1) if first % d == 0)
        n = sum(chunks)
        return (size,) * (n // size) + ((n % size,) if n % size else ())
    out: list[int] = []
    for c in chunks:
        k = -(-c // target)
        base, extra = divmod(c, k)
        out.extend(base + (1 if i < extra else 0) for i in range(k))
    return tuple(out)


def _block2d(kernel: Callable[..., np.ndarray], *blocks: np.ndarray) -> np.ndarray:
    shape = blocks[0].shape
    flat = [b.reshape(-1, shape[-1]) if b.ndim else b for b in blocks]
    return kernel(*flat).reshape(shape)


def _no_group(kernel: Callable[..., np.ndarray], values: np.ndarray, *extra: np.ndarray):
    return kernel(values, None, *extra)


def _apply(
    name: str,
    kernel: Callable[..., np.ndarray],
    x: xr.DataArray,
    group: Any,
    *,
    asset: str,
    extra: list[xr.DataArray] | None = None,
) -> xr.DataArray:
    x = _check(x, asset, "x")
    xdata, dims = _blocks(x.astype(np.float64), asset)
    gdata = None
    if group is not None:
        g = _like(group, x, "group", 0, np.int64)
        gdata, _ = _blocks(g, asset)
    ins = [xdata] if gdata is None else [xdata, gdata]
    for e in extra or []:
        edata, _ = _blocks(e, asset)
        ins.append(edata)
    ins = [ins[0]] + [a.rechunk(ins[0].chunks) for a in ins[1:]]
    if gdata is None:
        kernel = partial(_no_group, kernel)
    out = da.map_blocks(
        partial(_block2d, kernel),
        *ins,
        dtype=np.float64,
        name=f"{name}-{da.core.tokenize(kernel, *ins)}",
        meta=np.empty((0,) * xdata.ndim, dtype=np.float64),
    )
    res = xr.DataArray(out, dims=dims, coords=x.transpose(*dims).coords, name=x.name)
    return res.transpose(*x.dims)


_GROUP = """    group : xarray.DataArray, optional
        Integer group code per cell, e.g. the store's ``industry`` (``(date, asset)``; 0 = no
        group, output NaN there). The op then runs within each (date, group).
    asset : str, default "asset"
        The cross-section dimension."""

_NOTES = """    Lookback 0 rows, no look-ahead (each date uses only that date). Chunking: ``asset`` is
    rechunked to one chunk inside the op (all assets of a date in one task); ``date`` chunks
    are split, never merged, to about 2M cells per task (``CS_BLOCK_CELLS``)."""


def cs_rank(
    x: xr.DataArray, /, *, pct: bool = True, group: xr.DataArray | None = None, asset: str = "asset"
) -> xr.DataArray:
    return _apply("cs_rank", partial(cross.cs_rank_kernel, pct=pct), x, group, asset=asset)


cs_rank.__doc__ = f"""Rank across assets per date (average rank for ties).

    Parameters
    ----------
    x : xarray.DataArray
        Values with an ``asset`` dimension.
    pct : bool, default True
        ``rank / k`` in (0, 1] (as ``pandas.DataFrame.rank(axis=1, pct=True)``); False gives
        the rank ``1..k``. ``k`` is the number of valid values of the date (and group).
{_GROUP}

    Returns
    -------
    xarray.DataArray
        Lazy float64, same dims and coords as ``x``; NaN where ``x`` is NaN.

    Notes
    -----
{_NOTES}

    Examples
    --------
    >>> import numpy as np, xarray as xr, quantdask as qd
    >>> x = xr.DataArray([[3.0, 1.0, np.nan, 2.0]], dims=("date", "asset"))
    >>> qd.cs_rank(x).values
    array([[1.        , 0.33333333,        nan, 0.66666667]])
"""
cs_rank.lookback = lambda **_: 0  # type: ignore[attr-defined]


def cs_zscore(
    x: xr.DataArray, /, *, group: xr.DataArray | None = None, asset: str = "asset"
) -> xr.DataArray:
    return _apply("cs_zscore", cross.cs_zscore_kernel, x, group, asset=asset)


cs_zscore.__doc__ = f"""Standardise across assets per date: ``(x - mean) / std``.

    Parameters
    ----------
    x : xarray.DataArray
        Values with an ``asset`` dimension.
{_GROUP}

    Returns
    -------
    xarray.DataArray
        Lazy float64; NaN where ``x`` is NaN or the cross-section's std is 0.

    Notes
    -----
    Population std (``ddof=0``, as ``scipy.stats.zscore``) over the valid values.
{_NOTES}
"""
cs_zscore.lookback = lambda **_: 0  # type: ignore[attr-defined]


def cs_winsorize(
    x: xr.DataArray,
    /,
    *,
    method: str = "quantile",
    limits: tuple[float, float] = (0.01, 0.99),
    n_mad: float = 3.0,
    group: xr.DataArray | None = None,
    asset: str = "asset",
) -> xr.DataArray:
    if method == "quantile":
        try:
            lo, hi = (float(v) for v in limits)
        except (TypeError, ValueError) as err:
            raise ValueError(f"limits must be two numbers, got {limits!r}") from err
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"limits must satisfy 0 <= lower <= upper <= 1, got {limits!r}")
        kernel = partial(cross.cs_winsorize_quantile_kernel, lower=lo, upper=hi)
    elif method == "mad":
        if not isinstance(n_mad, int | float | np.number) or not n_mad > 0:
            raise ValueError(f"n_mad must be a positive number, got {n_mad!r}")
        kernel = partial(cross.cs_winsorize_mad_kernel, n_mad=float(n_mad), scale=MAD_SCALE)
    else:
        raise ValueError(f"method must be 'quantile' or 'mad', got {method!r}")
    return _apply("cs_winsorize", kernel, x, group, asset=asset)


cs_winsorize.__doc__ = f"""Clip outliers across assets per date.

    Parameters
    ----------
    x : xarray.DataArray
        Values with an ``asset`` dimension.
    method : {{"quantile", "mad"}}, default "quantile"
        "quantile": clip to the date's ``limits`` quantiles (linear interpolation, as
        ``numpy.quantile``). "mad": clip to ``median +/- n_mad * 1.4826 * MAD`` with
        ``MAD = median(|x - median|)`` (1.4826 makes it a std estimate for normal data).
    limits : tuple of float, default (0.01, 0.99)
        Lower and upper quantile for ``method="quantile"``.
    n_mad : float, default 3
        Width in scaled MADs for ``method="mad"``.
{_GROUP}

    Returns
    -------
    xarray.DataArray
        Lazy float64; NaN where ``x`` is NaN.

    Notes
    -----
{_NOTES}
"""
cs_winsorize.lookback = lambda **_: 0  # type: ignore[attr-defined]


def cs_quantile(
    x: xr.DataArray, /, *, q: int = 5, group: xr.DataArray | None = None, asset: str = "asset"
) -> xr.DataArray:
    if isinstance(q, bool) or not isinstance(q, int | np.integer) or q < 1:
        raise ValueError(f"q must be a positive int, got {q!r}")
    return _apply("cs_quantile", partial(cross.cs_quantile_kernel, q=int(q)), x, group, asset=asset)


cs_quantile.__doc__ = f"""Quantile bucket ``1..q`` across assets per date (1 = lowest).

    Parameters
    ----------
    x : xarray.DataArray
        Values with an ``asset`` dimension.
    q : int, default 5
        Number of buckets.
{_GROUP}

    Returns
    -------
    xarray.DataArray
        Lazy float64 bucket numbers; NaN stays NaN.

    Notes
    -----
    ``bucket = floor((r - 1) * q / k) + 1`` with ``r`` the average rank (ties share a bucket)
    among the ``k`` valid values; buckets differ in size by at most one when values are
    distinct.
{_NOTES}
"""
cs_quantile.lookback = lambda **_: 0  # type: ignore[attr-defined]


def cs_neutralize(
    x: xr.DataArray,
    /,
    *,
    industry: xr.DataArray | None = None,
    log_mcap: xr.DataArray | None = None,
    asset: str = "asset",
) -> xr.DataArray:
    """Per-date OLS residual of ``x`` on industry dummies and log market cap.

    Parameters
    ----------
    x : xarray.DataArray
        Values with an ``asset`` dimension.
    industry : xarray.DataArray, optional
        Integer industry code per cell (the store's ``industry``; 0 = none: NaN output).
    log_mcap : xarray.DataArray, optional
        Log market cap per cell (e.g. ``np.log(daily["circ_mv"])``).
    asset : str, default "asset"
        The cross-section dimension.

    Returns
    -------
    xarray.DataArray
        Lazy float64 residuals; NaN where ``x`` or a given regressor is missing.

    Notes
    -----
    Per date, regress ``x`` on one dummy per industry (no separate intercept) and ``log_mcap``
    over the cells where all are valid; without ``industry`` the regression has an intercept.
    Solved exactly by demeaning within industry (Frisch-Waugh), no matrix inverse.
    Lookback 0 rows, no look-ahead. ``asset`` is rechunked to one chunk inside the op.
    """
    if industry is None and log_mcap is None:
        raise ValueError("give industry, log_mcap or both")
    x = _check(x, asset, "x")
    extra = None
    if log_mcap is not None:
        extra = [_like(log_mcap, x, "log_mcap", np.nan, np.float64)]
        kernel = _neutralize_mcap
    else:
        kernel = _neutralize_plain
    return _apply("cs_neutralize", kernel, x, industry, asset=asset, extra=extra)


def _neutralize_mcap(values: np.ndarray, groups: np.ndarray, mcap: np.ndarray) -> np.ndarray:
    return cross.cs_neutralize_kernel(values, groups, mcap)


def _neutralize_plain(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return cross.cs_neutralize_kernel(values, groups, None)


cs_neutralize.lookback = lambda **_: 0  # type: ignore[attr-defined]
