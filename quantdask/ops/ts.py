"""Time-series ops along ``date`` on labelled, lazy (dask-backed) DataArrays.

Every op takes a :class:`xarray.DataArray` with a ``date`` dimension (any other dimensions:
``asset``, ``index`` or none), dask-backed or numpy-backed, and returns a lazy float64
DataArray of the same shape, coordinates, dimension order and chunks. Nothing is computed.

Conventions shared by all ops
-----------------------------
* Windows count rows (trading days). Default windows are strict: a value needs ``window``
  valid (non-NaN) observations; ``min_periods`` relaxes that. NaNs inside a window are
  skipped, not counted as zero.
* ``traded_only=True`` makes the window count only the rows where the asset traded
  (non-NaN input): suspended days are skipped instead of eating into the window, and the
  output is NaN on non-traded days. For two-input ops a row counts when both inputs are valid.
* No op looks ahead: the value at date ``t`` depends only on rows ``<= t``.
* Every op has ``op.lookback(**params) -> int``: how many extra past rows one output row
  needs. It sets the trailing overlap and tells the factor engine how much history to load.

Chunking
--------
Bounded windows run as a one-sided trailing overlap (:func:`quantdask.ops._overlap.
trailing_overlap`): each date block sees the previous ``lookback`` rows (from as many
earlier chunks as needed, so windows longer than a chunk are exact) and outputs its own rows.
Where ``date`` is the leading axis (the stored layout), the kernels are date-major and take
the history as a separate block, so the stored block is used as it is; otherwise the block
is transposed to time-contiguous, computed and trimmed. Stored chunks are kept; no
whole-time rechunk. Streaks, EWM means and every ``traded_only``
variant carry a small per-series state from one date block to the next
(:func:`quantdask.ops._overlap.scan_blocks`): exact for any history, parallel across asset
chunks, sequential along date.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.kernels import moving, windows
from quantdask.ops._overlap import scan_blocks, trailing_overlap

__all__ = [
    "EWM_WEIGHT_TOL",
    "STREAK_FREQS",
    "STREAK_MAX_BARS",
    "TRADED_ONLY_FACTOR",
    "daily_returns",
    "ewm_lookback",
    "lookback",
    "moving_kernel",
    "period_ids",
    "ts_argmax",
    "ts_argmin",
    "ts_corr",
    "ts_cov",
    "ts_delay",
    "ts_delta",
    "ts_ewm_mean",
    "ts_kurt",
    "ts_mad",
    "ts_max",
    "ts_mean",
    "ts_min",
    "ts_pct_change",
    "ts_percentile",
    "ts_quantile",
    "ts_rank",
    "ts_skew",
    "ts_std",
    "ts_streak",
    "ts_sum",
    "ts_var",
    "ts_wma",
]

#: ``lookback(..., traded_only=True)`` assumes at most this factor more rows than traded
#: rows are needed (i.e. at most half of the loaded history is suspension). The op itself is
#: exact regardless; only the amount of history a factor engine loads depends on it.
TRADED_ONLY_FACTOR: int = 2
#: ``ts_ewm_mean.lookback`` loads history until the weight left out is below this.
EWM_WEIGHT_TOL: float = 1e-6
#: ``ts_streak.lookback`` covers streaks of up to this many bars.
STREAK_MAX_BARS: int = 20
#: Most trading days one bar of each frequency spans (``ts_streak.lookback``).
STREAK_FREQS: dict[str, int] = {"D": 1, "W": 5, "M": 23, "Q": 66, "Y": 250}


# --------------------------------------------------------------------------------------
# validation and plumbing
# --------------------------------------------------------------------------------------


def _check_array(x: Any, dim: str, arg: str = "x") -> xr.DataArray:
    if not isinstance(x, xr.DataArray):
        raise TypeError(f"{arg} must be an xarray.DataArray, got {type(x).__name__}")
    if dim not in x.dims:
        raise ValueError(f"{arg} has no dimension {dim!r} (dims: {x.dims})")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"{arg} must be numeric, got dtype {x.dtype}")
    if x.dtype != np.float64:
        x = x.astype(np.float64)
    if not isinstance(x.data, da.Array):
        x = x.chunk()
    return x


def _check_window(window: Any, min_periods: Any) -> tuple[int, int]:
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    if min_periods is None:
        return int(window), int(window)
    if (
        isinstance(min_periods, bool)
        or not isinstance(min_periods, int | np.integer)
        or not 1 <= min_periods <= window
    ):
        raise ValueError(f"min_periods must be an int in [1, window={window}], got {min_periods!r}")
    return int(window), int(min_periods)


def _check_periods(periods: Any) -> int:
    if isinstance(periods, bool) or not isinstance(periods, int | np.integer) or periods < 1:
        raise ValueError(f"periods must be a positive int, got {periods!r}")
    return int(periods)


def _wrap(x: xr.DataArray, data: da.Array, name: str) -> xr.DataArray:
    return xr.DataArray(data, dims=x.dims, coords=x.coords, name=x.name)


def _traded_step(
    blocks: list[np.ndarray],
    state: list[np.ndarray] | None,
    extra: Any,
    *,
    kernel: Callable[..., np.ndarray],
    carry: int,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One date block of a ``traded_only`` op: prepend the carried traded rows, compress.

    The last ``carry`` traded values of each series travel from block to block, so the
    window sees exactly the previous traded rows however long a suspension lasted.
    """
    m = blocks[0].shape[0]
    if state is None:
        state = [np.full((m, carry), np.nan) for _ in blocks]
    cat = [np.concatenate([s, b], axis=1) for s, b in zip(state, blocks, strict=True)]
    valid = ~np.isnan(cat[0])
    for c in cat[1:]:
        valid &= ~np.isnan(c)
    idx = moving.compress_valid(valid)
    valid_sorted = np.take_along_axis(valid, idx, axis=1)
    comp = [np.where(valid_sorted, np.take_along_axis(c, idx, axis=1), np.nan) for c in cat]
    res = kernel(*comp)
    out = np.full(cat[0].shape, np.nan)
    np.put_along_axis(out, idx, np.where(valid_sorted, res, np.nan), axis=1)
    new_state = [c[:, c.shape[1] - carry :] for c in comp]
    return out[:, carry:], new_state


def _run(
    name: str,
    arrays: list[xr.DataArray],
    kernel: Callable[..., np.ndarray],
    *,
    dim: str,
    lookback: int,
    traded_only: bool,
    date_major: Callable[..., np.ndarray] | None = None,
) -> xr.DataArray:
    """Run a causal ``(m, n) -> (m, n)`` kernel along ``dim`` on aligned DataArrays.

    ``date_major``: the same kernel on ``(n, m)`` blocks, time first (used when ``dim`` is the
    leading axis and not ``traded_only``).
    """
    x = arrays[0]
    axis = x.get_axis_num(dim)
    data = [a.data for a in arrays]
    if len(data) > 1:
        data = [data[0]] + [d.rechunk(data[0].chunks) for d in data[1:]]
    if traded_only:
        step = partial(_traded_step, kernel=kernel, carry=lookback)
        out = scan_blocks(step, data, axis=axis, name=name)
    else:
        out = trailing_overlap(
            kernel, data, axis=axis, lookback=lookback, name=name, date_major=date_major
        )
    return _wrap(x, out, name)


def _window_lookback(*, window: int, traded_only: bool = False, **_: Any) -> int:
    base = int(window) - 1
    return TRADED_ONLY_FACTOR * base if traded_only else base


def _attach(lookback_fn: Callable[..., int]) -> Callable[[Callable[..., Any]], Any]:
    def deco(fn: Callable[..., Any]) -> Any:
        fn.lookback = lookback_fn  # type: ignore[attr-defined]
        return fn

    return deco


def lookback(op: Callable[..., Any], **params: Any) -> int:
    """Extra past rows one output row of ``op`` needs with ``params``.

    Parameters
    ----------
    op : callable
        A quantdask ts op (``qd.ts_mean``, ...).
    **params
        The op's parameters (``window=20``, ``traded_only=True``, ...).

    Returns
    -------
    int

    Examples
    --------
    >>> import quantdask as qd
    >>> qd.ops.lookback(qd.ts_mean, window=20)
    19
    """
    fn = getattr(op, "lookback", None)
    if fn is None:
        raise TypeError(f"{op!r} declares no lookback")
    return int(fn(**params))


def _moving(
    name: str,
    kernel: Callable[..., np.ndarray],
    x: xr.DataArray,
    *,
    window: int,
    min_periods: int | None,
    traded_only: bool,
    dim: str,
    **kw: Any,
) -> xr.DataArray:
    x = _check_array(x, dim)
    window, min_count = _check_window(window, min_periods)
    fn = partial(kernel, window=window, min_count=min_count, **kw)
    twin = moving.DATE_MAJOR.get(kernel)
    dm = None if twin is None else partial(twin, window=window, min_count=min_count, **kw)
    return _run(name, [x], fn, dim=dim, lookback=window - 1, traded_only=traded_only, date_major=dm)


_NOTES = f"""
    Lookback ``window - 1`` rows (``traded_only``: exact for any suspension length, since the
    last ``window - 1`` traded rows are carried across date blocks; ``lookback`` then reports
    ``{TRADED_ONLY_FACTOR} * (window - 1)``, assuming at most half of the loaded history is suspension). No
    look-ahead: the value at ``t`` uses rows ``t - window + 1 .. t`` only.
"""

_PARAMS = """
    x : xarray.DataArray
        Values with a ``dim`` dimension; dask- or numpy-backed.
    window : int
        Window length in rows (trading days; traded days with ``traded_only``).
    min_periods : int, optional
        Valid observations a window needs (default ``window``: strict).
    traded_only : bool, default False
        Count only rows where ``x`` is valid; NaN output on the others.
    dim : str, default "date"
        The time dimension."""

_RETURNS = """
    Returns
    -------
    xarray.DataArray
        Lazy float64, same dims, coords and chunks as ``x``."""


def _doc(summary: str, extra_params: str = "", extra_notes: str = "") -> str:
    return (
        f"{summary}\n\n    Parameters\n    ----------{_PARAMS}{extra_params}\n{_RETURNS}\n\n"
        f"    Notes\n    -----{_NOTES}{extra_notes}"
    )


# --------------------------------------------------------------------------------------
# moving-window ops
# --------------------------------------------------------------------------------------


@_attach(_window_lookback)
def ts_mean(
    x: xr.DataArray,
    /,
    *,
    window: int,
    min_periods: int | None = None,
    traded_only: bool = False,
    dim: str = "date",
) -> xr.DataArray:
    return _moving(
        "ts_mean",
        moving.move_mean,
        x,
        window=window,
        min_periods=min_periods,
        traded_only=traded_only,
        dim=dim,
    )


ts_mean.__doc__ = _doc(
    "Moving mean over the last ``window`` rows.",
    extra_notes="""
    Kernel: date-major numba two-stack window sums on the stored block
    (:func:`quantdask.kernels.moving.dm_move_mean`; ``traded_only`` and non-leading time
    axes run it on a transposed copy): each window is as accurate as a direct sum over it,
    whatever levels came before.

    Examples
    --------
    >>> import numpy as np, xarray as xr, quantdask as qd
    >>> x = xr.DataArray(np.arange(5.0), dims="date")
    >>> qd.ts_mean(x, window=3).values
    array([nan, nan,  1.,  2.,  3.])
    >>> qd.ts_mean.lookback(window=20)
    19
""",
)


def _simple(name: str, kernel: Callable[..., np.ndarray], summary: str, notes: str = "") -> Any:
    def op(
        x: xr.DataArray,
        /,
        *,
        window: int,
        min_periods: int | None = None,
        traded_only: bool = False,
        dim: str = "date",
    ) -> xr.DataArray:
        return _moving(
            name,
            kernel,
            x,
            window=window,
            min_periods=min_periods,
            traded_only=traded_only,
            dim=dim,
        )

    op.__name__ = op.__qualname__ = name
    op.__module__ = __name__
    op.__doc__ = _doc(summary, extra_notes=notes)
    op.lookback = _window_lookback  # type: ignore[attr-defined]
    return op


ts_sum = _simple(
    "ts_sum",
    moving.move_sum,
    "Moving sum.",
    "\n    Kernel: :func:`quantdask.kernels.moving.dm_move_sum` (two-stack window sums).\n",
)
ts_std = _simple(
    "ts_std",
    moving.move_std,
    "Moving sample standard deviation (``ddof=1``, as pandas).",
    "\n    Needs at least 2 valid values. Kernel: :func:`quantdask.kernels.moving.dm_move_std`"
    "\n    (two-stack window sums); exactly 0 on a window of equal values.\n",
)
ts_var = _simple(
    "ts_var",
    moving.move_var,
    "Moving sample variance (``ddof=1``, as pandas).",
    "\n    Needs at least 2 valid values. Kernel: :func:`quantdask.kernels.moving.dm_move_var`"
    "\n    (two-stack window sums); exactly 0 on a window of equal values.\n",
)
ts_min = _simple(
    "ts_min",
    moving.move_min,
    "Moving minimum.",
    "\n    Kernel: van Herk/Gil-Werman, :func:`quantdask.kernels.moving.dm_move_min`.\n",
)
ts_max = _simple(
    "ts_max",
    moving.move_max,
    "Moving maximum.",
    "\n    Kernel: van Herk/Gil-Werman, :func:`quantdask.kernels.moving.dm_move_max`.\n",
)
ts_argmin = _simple(
    "ts_argmin",
    moving.move_argmin,
    "Rows since the window's minimum (0 = today; ties: the most recent).",
    "\n    With ``traded_only`` it counts traded rows. Kernel: ``bottleneck.move_argmin``.\n",
)
ts_argmax = _simple(
    "ts_argmax",
    moving.move_argmax,
    "Rows since the window's maximum (0 = today; ties: the most recent).",
    "\n    With ``traded_only`` it counts traded rows. Kernel: ``bottleneck.move_argmax``.\n",
)
ts_skew = _simple(
    "ts_skew",
    moving.move_skew,
    "Moving sample skewness, bias-corrected (as pandas ``rolling().skew()``).",
    "\n    Needs at least 3 valid values; NaN for a (numerically) constant window."
    "\n    Kernel: numba two-stack window power sums (:func:`quantdask.kernels.moving.dm_move_skew`).\n",
)
ts_kurt = _simple(
    "ts_kurt",
    moving.move_kurt,
    "Moving excess kurtosis, bias-corrected (as pandas ``rolling().kurt()``).",
    "\n    Needs at least 4 valid values; NaN for a (numerically) constant window."
    "\n    Kernel: numba two-stack window power sums (:func:`quantdask.kernels.moving.dm_move_kurt`).\n",
)
ts_rank = _simple(
    "ts_rank",
    moving.move_rank,
    "Rank of today's value within its window, as a fraction in [0, 1].",
    "\n    ``(r - 1) / (k - 1)`` with ``r`` today's average rank (ties share the mean rank)"
    "\n    among the window's ``k`` valid values; 0.5 when ``k == 1``; NaN when today's value"
    "\n    is NaN. Kernel: ``bottleneck.move_rank`` up to 24 days, a Fenwick tree over the"
    "\n    block's sorted values beyond (O(log n) per step whatever the window).\n",
)
ts_percentile = _simple(
    "ts_percentile",
    moving.move_percentile,
    "Historical percentile (0..100) of today's value among the window's values.",
    "\n    ``100 * (#{v < x} + 0.5 * #{v == x}) / k`` over the window's ``k`` valid values ``v``"
    "\n    (today's value ``x`` included, so ties, itself too, count half): exactly"
    '\n    ``scipy.stats.percentileofscore(window_values, x, kind="mean")``. NaN when today\'s'
    "\n    value is NaN. Kernel: numba Fenwick tree over the block's distinct values (O(n log n), any window).\n",
)


def ts_wma(
    x: xr.DataArray,
    /,
    *,
    window: int,
    min_periods: int | None = None,
    traded_only: bool = False,
    dim: str = "date",
) -> xr.DataArray:
    """Linearly weighted moving mean: weight ``k`` on the ``k``-th row of the window.

    The newest row weighs ``window``, the oldest 1 (Alpha101's ``decay_linear``, qlib's
    ``WMA`` under strict windows); with ``min_periods`` below ``window`` the weights of the
    valid rows are renormalised.

    Parameters
    ----------
    x : xarray.DataArray
        Values with a ``dim`` dimension; dask- or numpy-backed.
    window : int
        Window length in rows.
    min_periods : int, optional
        Valid observations a window needs (default ``window``: strict).
    traded_only : bool, default False
        Count only rows where ``x`` is valid; NaN output on the others.
    dim : str, default "date"
        The time dimension.

    Returns
    -------
    xarray.DataArray
        Lazy float64, same dims, coords and chunks as ``x``.

    Notes
    -----
    Lookback ``window - 1`` rows. Kernel: :func:`quantdask.kernels.windows.move_wma`, a direct
    sum over each window (O(window) per value, no accumulated rounding).
    """
    return _moving(
        "ts_wma",
        windows.move_wma,
        x,
        window=window,
        min_periods=min_periods,
        traded_only=traded_only,
        dim=dim,
    )


def ts_mad(
    x: xr.DataArray,
    /,
    *,
    window: int,
    min_periods: int | None = None,
    traded_only: bool = False,
    dim: str = "date",
) -> xr.DataArray:
    """Moving mean absolute deviation ``mean(|x - mean(x)|)`` over the window (qlib ``Mad``).

    Parameters
    ----------
    x : xarray.DataArray
        Values with a ``dim`` dimension; dask- or numpy-backed.
    window : int
        Window length in rows.
    min_periods : int, optional
        Valid observations a window needs (default ``window``: strict).
    traded_only : bool, default False
        Count only rows where ``x`` is valid; NaN output on the others.
    dim : str, default "date"
        The time dimension.

    Returns
    -------
    xarray.DataArray
        Lazy float64, same dims, coords and chunks as ``x``.

    Notes
    -----
    Lookback ``window - 1`` rows. Kernel: :func:`quantdask.kernels.windows.move_mad` (two
    passes over each window).
    """
    return _moving(
        "ts_mad",
        windows.move_mad,
        x,
        window=window,
        min_periods=min_periods,
        traded_only=traded_only,
        dim=dim,
    )


def moving_kernel(
    name: str,
    kernel: Callable[..., np.ndarray],
    x: xr.DataArray,
    /,
    *,
    window: int,
    min_periods: int | None = None,
    dim: str = "date",
    **params: Any,
) -> xr.DataArray:
    """Run a time-last ``(m, n)`` window kernel (``kernel(a, window, min_count, **params)``).

    The plumbing of every ``ts_*`` window op (trailing overlap of ``window - 1`` rows), for
    kernels that have no public op of their own (the expression core's qlib variants).

    Parameters
    ----------
    name : str
        Dask task name prefix.
    kernel : callable
        A :mod:`quantdask.kernels` window kernel.
    x : xarray.DataArray
        Input with a ``dim`` dimension.
    window : int
        Window length in rows.
    min_periods : int, optional
        Valid values a window needs (default ``window``).
    dim : str, default "date"
        The time dimension.
    **params
        Extra keyword arguments of the kernel.

    Returns
    -------
    xarray.DataArray
        Lazy float64, same dims, coords and chunks as ``x``.
    """
    return _moving(
        name,
        kernel,
        x,
        window=window,
        min_periods=min_periods,
        traded_only=False,
        dim=dim,
        **params,
    )


@_attach(_window_lookback)
def ts_quantile(
    x: xr.DataArray,
    /,
    *,
    window: int,
    q: float,
    min_periods: int | None = None,
    traded_only: bool = False,
    dim: str = "date",
) -> xr.DataArray:
    if not isinstance(q, int | float | np.floating) or not 0.0 <= float(q) <= 1.0:
        raise ValueError(f"q must be a number in [0, 1], got {q!r}")
    return _moving(
        "ts_quantile",
        moving.move_quantile,
        x,
        window=window,
        min_periods=min_periods,
        traded_only=traded_only,
        dim=dim,
        q=float(q),
    )


ts_quantile.__doc__ = _doc(
    "Moving quantile ``q`` with linear interpolation (as pandas ``rolling().quantile(q)``).",
    extra_params="\n    q : float\n        Quantile in [0, 1].",
    extra_notes="\n    Kernel: numba Fenwick tree over the block's distinct values (O(n log n), any window).\n",
)


def _two(name: str, kernel: Callable[..., np.ndarray], summary: str) -> Any:
    def op(
        x: xr.DataArray,
        y: xr.DataArray,
        /,
        *,
        window: int,
        min_periods: int | None = None,
        traded_only: bool = False,
        dim: str = "date",
    ) -> xr.DataArray:
        x = _check_array(x, dim, "x")
        y = _check_array(y, dim, "y")
        try:
            x, y = xr.align(x, y, join="exact")
        except ValueError as err:
            raise ValueError(f"x and y must share coordinates: {err}") from err
        if x.dims != y.dims:
            y = y.transpose(*x.dims)
        w, min_count = _check_window(window, min_periods)
        fn = partial(kernel, window=w, min_count=min_count)
        return _run(name, [x, y], fn, dim=dim, lookback=w - 1, traded_only=traded_only)

    op.__name__ = op.__qualname__ = name
    op.__module__ = __name__
    op.__doc__ = _doc(
        summary,
        extra_notes="\n    Only rows where both inputs are valid count (also for ``traded_only``). Needs"
        "\n    at least 2 such rows. Kernel: numba two-stack window sums of the pairs.\n",
    ).replace(
        "dask- or numpy-backed.\n",
        "dask- or numpy-backed.\n    y : xarray.DataArray\n        Second input, same dims and coords.\n",
        1,
    )
    op.lookback = _window_lookback  # type: ignore[attr-defined]
    return op


ts_corr = _two("ts_corr", moving.move_corr, "Moving Pearson correlation of ``x`` and ``y``.")
ts_cov = _two("ts_cov", moving.move_cov, "Moving sample covariance (``ddof=1``) of ``x``, ``y``.")


# --------------------------------------------------------------------------------------
# shifts
# --------------------------------------------------------------------------------------


def _periods_lookback(*, periods: int = 1, traded_only: bool = False, **_: Any) -> int:
    return TRADED_ONLY_FACTOR * int(periods) if traded_only else int(periods)


def _combine(x: np.ndarray, prev: np.ndarray, how: str) -> np.ndarray:
    """``prev`` itself (delay), ``x - prev`` (delta) or ``x / prev - 1`` (pct)."""
    if how == "delay":
        return prev
    if how == "delta":
        return x - prev
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / prev - 1.0


def _shift_kernel(a: np.ndarray, *, periods: int, how: str) -> np.ndarray:
    """Time-last shift kernel: ``a`` is ``(m, n)``, time along the last axis."""
    return _combine(a, moving.shift(a, periods), how)


def _dm_shifted(body: np.ndarray, head: np.ndarray | None, periods: int) -> np.ndarray:
    """Rows of ``[head; body]`` ``periods`` back, for each row of ``body`` (NaN before)."""
    nb = body.shape[0]
    h = 0 if head is None else head.shape[0]
    out = np.full(body.shape, np.nan)
    if periods < nb:
        out[periods:] = body[: nb - periods]
    t0, k = max(0, periods - h), min(periods, nb)
    if head is not None and t0 < k:
        out[t0:k] = head[h + t0 - periods : h + k - periods]
    return out


def _dm_shift_kernel(
    body: np.ndarray, *, head: np.ndarray | None = None, periods: int, how: str
) -> np.ndarray:
    """Date-major twin of :func:`_shift_kernel` (time on axis 0, history in ``head``)."""
    return _combine(body, _dm_shifted(body, head, periods), how)


def _shift_op(name: str, how: str, summary: str) -> Any:
    def op(
        x: xr.DataArray, /, *, periods: int = 1, traded_only: bool = False, dim: str = "date"
    ) -> xr.DataArray:
        x = _check_array(x, dim)
        p = _check_periods(periods)
        fn = partial(_shift_kernel, periods=p, how=how)
        dm = partial(_dm_shift_kernel, periods=p, how=how)
        return _run(name, [x], fn, dim=dim, lookback=p, traded_only=traded_only, date_major=dm)

    op.__name__ = op.__qualname__ = name
    op.__module__ = __name__
    op.__doc__ = f"""{summary}

    Parameters
    ----------
    x : xarray.DataArray
        Values with a ``dim`` dimension.
    periods : int, default 1
        How many rows back (traded rows with ``traded_only``).
    traded_only : bool, default False
        Shift over traded (valid) rows only: across a suspension the previous value is the
        last traded one; NaN output on non-traded rows.
    dim : str, default "date"
        The time dimension.
{_RETURNS}

    Notes
    -----
    Lookback ``periods`` rows (``traded_only``: {TRADED_ONLY_FACTOR} * ``periods``, assuming at
    most half of the loaded history is suspension; the op itself is exact). No look-ahead.
"""
    op.lookback = _periods_lookback  # type: ignore[attr-defined]
    return op


ts_delay = _shift_op("ts_delay", "delay", "Value ``periods`` rows earlier.")
ts_delta = _shift_op("ts_delta", "delta", "Change ``x - x[t - periods]``.")
ts_pct_change = _shift_op(
    "ts_pct_change", "pct", "Relative change ``x / x[t - periods] - 1`` (no filling)."
)


# --------------------------------------------------------------------------------------
# exponentially weighted mean
# --------------------------------------------------------------------------------------


def _alpha(span: float | None, alpha: float | None) -> float:
    if (span is None) == (alpha is None):
        raise ValueError("give exactly one of span or alpha")
    if span is not None:
        if not isinstance(span, int | float | np.number) or span < 1:
            raise ValueError(f"span must be a number >= 1, got {span!r}")
        return 2.0 / (float(span) + 1.0)
    if not isinstance(alpha, int | float | np.number) or not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}")
    return float(alpha)


def _ewm_lookback(
    *,
    span: float | None = None,
    alpha: float | None = None,
    traded_only: bool = False,
    **_: Any,
) -> int:
    a = _alpha(span, alpha)
    base = 0 if a >= 1.0 else math.ceil(math.log(EWM_WEIGHT_TOL) / math.log(1.0 - a))
    return TRADED_ONLY_FACTOR * base if traded_only else base


def ewm_lookback(*, span: float | None = None, alpha: float | None = None) -> int:
    """History rows :func:`ts_ewm_mean` needs so that the omitted weight is below
    :data:`EWM_WEIGHT_TOL` (the lookback of an exponential mean with this span or alpha).

    Parameters
    ----------
    span, alpha : float, optional
        Exactly one of them, as for :func:`ts_ewm_mean`.

    Returns
    -------
    int
    """
    return _ewm_lookback(span=span, alpha=alpha)


def _ewm_step(
    blocks: list[np.ndarray],
    state: np.ndarray | None,
    extra: Any,
    *,
    alpha: float,
    min_count: int,
    ignore_na: bool,
) -> tuple[np.ndarray, np.ndarray]:
    return moving.ewm_mean_scan(blocks[0], alpha, min_count, ignore_na, state)


@_attach(_ewm_lookback)
def ts_ewm_mean(
    x: xr.DataArray,
    /,
    *,
    span: float | None = None,
    alpha: float | None = None,
    min_periods: int | None = None,
    traded_only: bool = False,
    dim: str = "date",
) -> xr.DataArray:
    """Exponentially weighted moving mean (pandas ``ewm(..., adjust=True).mean()``).

    Parameters
    ----------
    x : xarray.DataArray
        Values with a ``dim`` dimension.
    span : float, optional
        ``alpha = 2 / (span + 1)``. Give exactly one of ``span`` and ``alpha``.
    alpha : float, optional
        Smoothing factor in (0, 1].
    min_periods : int, optional
        Valid observations seen so far needed for a value (default: ``round(2 / alpha - 1)``,
        the span).
    traded_only : bool, default False
        False: weights decay across missing rows and the current mean is reported on them
        (pandas ``ignore_na=False``). True: missing rows are skipped entirely (pandas
        ``ignore_na=True``) and the output is NaN on them.
    dim : str, default "date"
        The time dimension.

    Returns
    -------
    xarray.DataArray
        Lazy float64, same dims, coords and chunks as ``x``.

    Notes
    -----
    The op is exact over the whole history it is given: the weighted sums are carried from
    one date block to the next (sequential along date, parallel across asset chunks).
    Lookback (history to load so that truncation changes the value by a relative weight of
    less than ``EWM_WEIGHT_TOL = 1e-6``): ``ceil(log(1e-6) / log(1 - alpha))`` rows
    (``traded_only``: twice that). Values near the start of the given history differ from a
    longer history by the omitted weight. No look-ahead.
    """
    x = _check_array(x, dim)
    a = _alpha(span, alpha)
    if min_periods is None:
        min_count = max(1, round(2.0 / a - 1.0))
    elif isinstance(min_periods, bool) or not isinstance(min_periods, int | np.integer):
        raise ValueError(f"min_periods must be a positive int, got {min_periods!r}")
    elif min_periods < 1:
        raise ValueError(f"min_periods must be a positive int, got {min_periods!r}")
    else:
        min_count = int(min_periods)
    step = partial(_ewm_step, alpha=a, min_count=min_count, ignore_na=bool(traded_only))
    out = scan_blocks(step, [x.data], axis=x.get_axis_num(dim), name="ts_ewm_mean")
    return _wrap(x, out, "ts_ewm_mean")


# --------------------------------------------------------------------------------------
# streaks
# --------------------------------------------------------------------------------------


def period_ids(dates: Any, freq: str) -> np.ndarray:
    """Integer id of the calendar period (bar) of each date.

    Parameters
    ----------
    dates : array-like of datetime64
        The trading calendar.
    freq : {"D", "W", "M", "Q", "Y"}
        "D": every date its own bar; "W": ISO weeks (Monday to Sunday); "M", "Q", "Y":
        calendar months, quarters and years.

    Returns
    -------
    numpy.ndarray
        int64 ids, equal for dates in the same period, increasing with time.
    """
    idx = pd.DatetimeIndex(np.asarray(dates, dtype="datetime64[ns]"))
    if freq == "D":
        return np.arange(len(idx), dtype=np.int64)
    if freq == "W":
        days = idx.values.astype("datetime64[D]").astype(np.int64)
        # 1970-01-01 was a Thursday: shift so that weeks start on Monday
        return (days + 3) // 7
    year = idx.year.to_numpy().astype(np.int64)
    if freq == "M":
        return year * 12 + idx.month.to_numpy() - 1
    if freq == "Q":
        return year * 4 + (idx.month.to_numpy() - 1) // 3
    if freq == "Y":
        return year
    raise ValueError(f"freq must be one of {sorted(STREAK_FREQS)}, got {freq!r}")


def _streak_lookback(*, freq: str = "D", **_: Any) -> int:
    if freq not in STREAK_FREQS:
        raise ValueError(f"freq must be one of {sorted(STREAK_FREQS)}, got {freq!r}")
    return (STREAK_MAX_BARS + 1) * STREAK_FREQS[freq]


def _streak_step_time_last(
    blocks: list[np.ndarray], state: np.ndarray | None, extra: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return moving.streak_scan(blocks[0], extra, state)


def _streak_step(
    blocks: list[np.ndarray], state: np.ndarray | None, extra: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return moving.dm_streak_scan(blocks[0], extra, state)


@_attach(_streak_lookback)
def ts_streak(close: xr.DataArray, /, *, freq: str = "D", dim: str = "date") -> xr.DataArray:
    """Signed count of consecutive up (+) or down (-) bars ending at each date.

    Parameters
    ----------
    close : xarray.DataArray
        Closes with a ``dim`` dimension, NaN on days without a trade.
    freq : {"D", "W", "M", "Q", "Y"}, default "D"
        Bar frequency. "W" is ISO weeks, "M"/"Q"/"Y" calendar months, quarters, years, all
        on the trading calendar of ``close`` (see :func:`period_ids`).
    dim : str, default "date"
        The time dimension.

    Returns
    -------
    xarray.DataArray
        Lazy float64 (integral values), same dims, coords and chunks as ``close``.

    Notes
    -----
    A bar's close is its last traded close. At each traded date, the current bar is the
    *partial* period up to and including that date (its close is today's close; no
    look-ahead) and is compared with the previous completed bar's close: +k when this is the
    k-th consecutive higher bar close, -k for lower, 0 when unchanged (a zero change breaks
    the streak; the next change starts again at +1/-1). Daily bars skip non-traded days, so
    a change across a suspension compares with the last traded close. NaN on non-traded days
    and before a previous bar exists. Values are reported on every traded date, also for
    W/M/Q/Y.

    Chunking: the state (last completed bar and its streak) is carried from one date block
    to the next, so the op is exact for streaks of any length. ``lookback`` (history to load
    from a store) is ``(STREAK_MAX_BARS + 1) * rows_per_bar`` with ``STREAK_MAX_BARS = 20``
    and rows per bar D 1, W 5, M 23, Q 66, Y 250: values are exact once a streak starts
    within that history.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr, quantdask as qd
    >>> c = xr.DataArray([1.0, 2, 3, 3, 2, 1], dims="date",
    ...                  coords={"date": pd.bdate_range("2024-01-01", periods=6)})
    >>> qd.ts_streak(c).values
    array([nan,  1.,  2.,  0., -1., -2.])
    """
    close = _check_array(close, dim, "close")
    if freq not in STREAK_FREQS:
        raise ValueError(f"freq must be one of {sorted(STREAK_FREQS)}, got {freq!r}")
    if freq != "D" and dim not in close.coords:
        raise ValueError(f"close needs {dim!r} coordinates (dates) for freq={freq!r}")
    axis = close.get_axis_num(dim)
    n = close.sizes[dim]
    pid = (
        np.arange(n, dtype=np.int64) if freq == "D" else period_ids(close[dim].values, freq)
    ).astype(np.float64)
    bounds = np.concatenate([[0], np.cumsum(close.data.chunks[axis])]).astype(int)
    extras = [pid[s:e] for s, e in zip(bounds[:-1], bounds[1:], strict=True)]
    step, date_major = (_streak_step, True) if axis == 0 else (_streak_step_time_last, False)
    out = scan_blocks(
        step, [close.data], axis=axis, extras=extras, name="ts_streak", date_major=date_major
    )
    return _wrap(close, out, "ts_streak")


# --------------------------------------------------------------------------------------
# returns
# --------------------------------------------------------------------------------------


def daily_returns(daily: xr.Dataset) -> xr.DataArray:
    """Daily simple return ``close / pre_close - 1`` of a daily panel.

    Parameters
    ----------
    daily : xarray.Dataset
        The store's ``daily`` node (or any Dataset with ``close`` and ``pre_close``; a
        ``suspended`` flag, when present, masks suspended days).

    Returns
    -------
    xarray.DataArray
        Lazy float64 ``(date, asset)``, named ``ret``; NaN when not traded (missing close or
        pre_close, or suspended).

    Notes
    -----
    ``pre_close`` is the previous traded close adjusted for corporate actions, so the return
    across a suspension is the move since the last traded day. Lookback 0 rows.
    """
    if isinstance(daily, xr.DataTree):
        daily = daily.to_dataset()
    if not isinstance(daily, xr.Dataset):
        raise TypeError(f"daily must be an xarray.Dataset, got {type(daily).__name__}")
    for field in ("close", "pre_close"):
        if field not in daily.data_vars:
            raise ValueError(f"daily has no {field!r} field")
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = daily["close"] / daily["pre_close"] - 1.0
    if "suspended" in daily.data_vars:
        ret = ret.where(~daily["suspended"].astype(bool))
    return ret.rename("ret")


daily_returns.lookback = lambda **_: 0  # type: ignore[attr-defined]
