"""Window operators along ``date``: shifts, rolling statistics, regressions, EMA.

Each class is one operator of the formula language (qlib's name), with its lookback and its
evaluation through the ``ts_*`` ops of :mod:`quantdask.ops` (or a kernel of
:mod:`quantdask.kernels.windows`). The semantics bound to the evaluation
(:class:`quantdask.expression.context.Context`) decides the conventions:

* ``"strict"`` (quantdask's): a window needs all its rows valid (``min_periods = window``);
  ``IdxMax`` / ``IdxMin`` skip nothing (a NaN in the window gives NaN) and ties go to the
  most recent row; ``Corr`` has no guard.
* ``"qlib"`` (pyqlib 0.9.7): ``min_periods=1`` and NaN rows skipped; ``IdxMax`` / ``IdxMin``
  count a NaN inside the instrument's span as the extreme and give ties to the oldest row;
  ``Corr`` is NaN where either side's window std is within ``2e-5`` of 0; ``WMA`` is qlib's
  ``nanmean(w * x)``; ``Ref`` and ``Delta`` keep the input's dtype (qlib's float32: a shift
  is exact, and ``$close / Ref($close, 1)`` is then rounded to float32 as in qlib; the
  ``ts_delay`` result is float64, which moved CORD off qlib's values by up to 3e-4 relative).

Lookbacks: ``window - 1`` rows for a window, ``periods`` for ``Ref`` / ``Delta``, the
history that brings the omitted weight below ``EWM_WEIGHT_TOL`` for ``EMA``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from quantdask.expression.nodes import UNBOUNDED, Expr, Op, check_window, is_number
from quantdask.kernels import windows
from quantdask.ops import ts

if TYPE_CHECKING:
    from quantdask.expression.context import Context

#: qlib's ``Corr`` guard: NaN where a side's rolling std is within this of 0.
QLIB_CORR_STD_ATOL: float = 2e-5


@dataclass(frozen=True, eq=True, repr=False)
class Window(Op):
    """Base of one-input window operators: ``Name(x, window)``."""

    x: Expr
    window: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", check_window(self.window, self.formula_name))

    def own_lookback(self) -> int:
        return self.window - 1

    __hash__ = Expr.__hash__


@dataclass(frozen=True, eq=True, repr=False)
class PairWindow(Op):
    """Base of two-input window operators: ``Name(x, y, window)``."""

    x: Expr
    y: Expr
    window: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", check_window(self.window, self.formula_name))

    def own_lookback(self) -> int:
        return self.window - 1

    __hash__ = Expr.__hash__


# --------------------------------------------------------------------------------------
# shifts
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=True, repr=False)
class Ref(Op):
    """The value ``periods`` rows earlier (qlib ``Ref``); a negative ``periods`` reads the
    future and is only accepted in a label (``qd.expr(..., label=True)``)."""

    x: Expr
    periods: int

    formula_name = "Ref"

    def __post_init__(self) -> None:
        p = self.periods
        if isinstance(p, float) and p.is_integer():
            p = int(p)
        if isinstance(p, bool) or not isinstance(p, int | np.integer) or p == 0:
            raise ValueError(f"Ref: periods must be a non-zero int, got {self.periods!r}")
        object.__setattr__(self, "periods", int(p))

    def own_lookback(self) -> int:
        return max(self.periods, 0)

    def own_future(self) -> int:
        return max(-self.periods, 0)

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        if self.periods < 0:
            return x.shift(date=self.periods)
        out = ts.ts_delay(x, periods=self.periods)
        if ctx.semantics == "qlib":
            # a shift is exact: keep qlib's float32 so that Div($close, Ref($close, 1))
            # rounds to float32 as in qlib (CORD, WVMA)
            out = out.astype(x.dtype)
        return out

    __hash__ = Expr.__hash__


@dataclass(frozen=True, eq=True, repr=False)
class Delta(Op):
    """``x - Ref(x, periods)`` (qlib ``Delta``)."""

    x: Expr
    periods: int

    formula_name = "Delta"

    def __post_init__(self) -> None:
        object.__setattr__(self, "periods", check_window(self.periods, "Delta"))

    def own_lookback(self) -> int:
        return self.periods

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        if ctx.semantics == "qlib":
            # qlib subtracts in the input's float32
            return x - ts.ts_delay(x, periods=self.periods).astype(x.dtype)
        return ts.ts_delta(x, periods=self.periods)

    __hash__ = Expr.__hash__


# --------------------------------------------------------------------------------------
# rolling statistics
# --------------------------------------------------------------------------------------


class Mean(Window):
    """Moving mean (qlib ``Mean``)."""

    formula_name = "Mean"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_mean(x, window=self.window, min_periods=ctx.min_periods(self.window))


class Sum(Window):
    """Moving sum (qlib ``Sum``)."""

    formula_name = "Sum"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_sum(x, window=self.window, min_periods=ctx.min_periods(self.window))


class Std(Window):
    """Moving sample standard deviation, ``ddof=1`` (qlib ``Std``)."""

    formula_name = "Std"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_std(x, window=self.window, min_periods=ctx.min_periods(self.window))


class Var(Window):
    """Moving sample variance, ``ddof=1`` (qlib ``Var``)."""

    formula_name = "Var"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_var(x, window=self.window, min_periods=ctx.min_periods(self.window))


class Skew(Window):
    """Moving bias-corrected skewness (qlib ``Skew``, pandas ``rolling().skew()``)."""

    formula_name = "Skew"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_skew(x, window=self.window, min_periods=ctx.min_periods(self.window))


class Kurt(Window):
    """Moving bias-corrected excess kurtosis (qlib ``Kurt``, pandas ``rolling().kurt()``)."""

    formula_name = "Kurt"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_kurt(x, window=self.window, min_periods=ctx.min_periods(self.window))


class Max(Window):
    """Moving maximum (qlib ``Max``; the element-wise maximum is ``Greater``)."""

    formula_name = "Max"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_max(x, window=self.window, min_periods=ctx.min_periods(self.window))


class Min(Window):
    """Moving minimum (qlib ``Min``; the element-wise minimum is ``Less``)."""

    formula_name = "Min"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_min(x, window=self.window, min_periods=ctx.min_periods(self.window))


class Med(Window):
    """Moving median (qlib ``Med``)."""

    formula_name = "Med"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_quantile(
            x, window=self.window, q=0.5, min_periods=ctx.min_periods(self.window)
        )


class Mad(Window):
    """Moving mean absolute deviation from the window mean (qlib ``Mad``)."""

    formula_name = "Mad"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_mad(x, window=self.window, min_periods=ctx.min_periods(self.window))


class Count(Window):
    """Valid (non-NaN) rows in the window (qlib ``Count``)."""

    formula_name = "Count"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        valid = x.notnull().astype(np.float64)
        if ctx.semantics == "qlib":
            return ctx.on_span(ts.ts_sum(valid, window=self.window, min_periods=1))
        return ts.ts_sum(valid, window=self.window)


@dataclass(frozen=True, eq=True, repr=False)
class Quantile(Op):
    """Moving quantile ``q`` with linear interpolation (qlib ``Quantile``)."""

    x: Expr
    window: int
    q: float

    formula_name = "Quantile"

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", check_window(self.window, "Quantile"))
        if not is_number(self.q) or not 0.0 <= float(self.q) <= 1.0:
            raise ValueError(f"Quantile: q must be a number in [0, 1], got {self.q!r}")
        object.__setattr__(self, "q", float(self.q))

    def own_lookback(self) -> int:
        return self.window - 1

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_quantile(
            x, window=self.window, q=self.q, min_periods=ctx.min_periods(self.window)
        )

    __hash__ = Expr.__hash__


class Rank(Window):
    """Percentile rank of today's value in its window, in (0, 1] (qlib ``Rank``).

    ``scipy.stats.percentileofscore(window, x_t, kind="rank") / 100`` over the window's
    valid values: ``(#{v < x} + #{v <= x} + 1) / (2 k)``, i.e. ``ts_percentile / 100 +
    0.5 / k`` with ``k`` valid values. NaN when today's value is NaN.
    """

    formula_name = "Rank"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        mp = ctx.min_periods(self.window)
        pct = ts.ts_percentile(x, window=self.window, min_periods=mp)
        k = ts.ts_sum(x.notnull().astype(np.float64), window=self.window, min_periods=1)
        return pct / 100.0 + 0.5 / k.where(k > 0)


class IdxMax(Window):
    """1-based position of the window's maximum counted from its oldest row (qlib ``IdxMax``).

    Strict: ties go to the most recent row. qlib: ties go to the oldest row and a NaN inside
    the instrument's span counts as the maximum (``np.argmax`` on the raw window).
    """

    formula_name = "IdxMax"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return _idx_extreme(ctx, x, self.window, is_max=True)


class IdxMin(Window):
    """1-based position of the window's minimum counted from its oldest row (qlib ``IdxMin``).

    Conventions as :class:`IdxMax`.
    """

    formula_name = "IdxMin"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return _idx_extreme(ctx, x, self.window, is_max=False)


def _idx_extreme(ctx: Context, x: xr.DataArray, window: int, *, is_max: bool) -> xr.DataArray:
    if ctx.semantics == "qlib":
        fill = np.inf if is_max else -np.inf
        inside = x.astype(np.float64).where(x.notnull() | ~ctx.span, fill)
        out = ts.moving_kernel(
            "idx_max" if is_max else "idx_min",
            windows.move_argext_first,
            inside,
            window=window,
            min_periods=1,
            is_max=is_max,
        )
        # pandas' rolling apply gives NaN to a window without a valid value
        valid = ts.ts_sum(x.notnull().astype(np.float64), window=window, min_periods=1)
        return ctx.on_span(out.where(valid > 0))
    since = (ts.ts_argmax if is_max else ts.ts_argmin)(x, window=window)
    return window - since


class WMA(Window):
    """Linearly weighted moving mean, newest row heaviest (qlib ``WMA``).

    Strict: ``sum(k * x_k) / sum(k)`` over a full window. qlib: ``nanmean(w * x)`` with
    ``w = 1..L`` normalised to sum 1 over the window's ``L`` rows (pyqlib 0.9.7's formula,
    which divides the weighted mean by the count of valid rows).
    """

    formula_name = "WMA"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        if ctx.semantics == "qlib":
            # windows start at the instrument's first row, as its qlib series does
            rows = ctx.span.astype(np.float64).broadcast_like(x).transpose(*x.dims)
            kernel = partial(windows.move_wma_qlib, window=self.window, min_count=1)
            out = ts._run(
                "wma_qlib",
                [ts._check_array(x, "date"), ts._check_array(rows, "date")],
                kernel,
                dim="date",
                lookback=self.window - 1,
                traded_only=False,
            )
            return ctx.on_span(out)
        return ts.ts_wma(x, window=self.window)


class EMA(Window):
    """Exponential moving mean with ``span = window`` (qlib ``EMA``: pandas
    ``ewm(span=N, adjust=True)``; strict needs ``window`` valid rows seen so far)."""

    formula_name = "EMA"

    def own_lookback(self) -> int:
        return ts.ewm_lookback(span=self.window)

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        mp = 1 if ctx.semantics == "qlib" else self.window
        return ts.ts_ewm_mean(x, span=self.window, min_periods=mp)


class Percentile(Window):
    """Historical percentile (0..100) of today's value in its window, ties counted half
    (:func:`quantdask.ts_percentile`; quantdask's own, not a qlib operator)."""

    formula_name = "Percentile"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ts.ts_percentile(x, window=self.window, min_periods=ctx.min_periods(self.window))


@dataclass(frozen=True, eq=True, repr=False)
class PercentileAll(Op):
    """Expanding percentile (0..100) of today's value among all earlier values, ties counted
    half; NaN until ``min_periods`` values are known (quantdask's own; lookback: all
    history)."""

    x: Expr
    min_periods: int

    formula_name = "PercentileAll"

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_periods", check_window(self.min_periods, "PercentileAll"))

    def own_lookback(self) -> int:
        return UNBOUNDED

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        # a window as long as the evaluated history covers every earlier date
        n = x.sizes["date"]
        if n < self.min_periods:
            return ts.ts_percentile(x, window=max(n, 1)).where(False)
        return ts.ts_percentile(x, window=n, min_periods=self.min_periods)

    __hash__ = Expr.__hash__


@dataclass(frozen=True, eq=True, repr=False)
class FFill(Op):
    """Carry the last valid value forward at most ``limit`` rows (quantdask's own)."""

    x: Expr
    limit: int

    formula_name = "FFill"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", check_window(self.limit, "FFill"))

    def own_lookback(self) -> int:
        return self.limit

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        out = x
        for k in range(1, self.limit + 1):
            out = out.fillna(x.shift(date=k))
        return out

    __hash__ = Expr.__hash__


# --------------------------------------------------------------------------------------
# two inputs and regressions on time
# --------------------------------------------------------------------------------------


class Corr(PairWindow):
    """Moving Pearson correlation of ``x`` and ``y`` (qlib ``Corr``)."""

    formula_name = "Corr"

    def compute(self, ctx: Context, x: xr.DataArray, y: xr.DataArray) -> xr.DataArray:
        x, y = xr.broadcast(x, y)
        mp = ctx.min_periods(self.window)
        out = ts.ts_corr(x, y, window=self.window, min_periods=mp)
        if ctx.semantics != "qlib":
            return out
        flat = (np.abs(ts.ts_std(x, window=self.window, min_periods=1)) <= QLIB_CORR_STD_ATOL) | (
            np.abs(ts.ts_std(y, window=self.window, min_periods=1)) <= QLIB_CORR_STD_ATOL
        )
        return out.where(~flat)


class Cov(PairWindow):
    """Moving sample covariance, ``ddof=1`` (qlib ``Cov``)."""

    formula_name = "Cov"

    def compute(self, ctx: Context, x: xr.DataArray, y: xr.DataArray) -> xr.DataArray:
        x, y = xr.broadcast(x, y)
        return ts.ts_cov(x, y, window=self.window, min_periods=ctx.min_periods(self.window))


def _time_index(ctx: Context, x: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """The row index along ``date`` broadcast like ``x``, and the same where ``x`` is valid."""
    # lazy: zeros like x (dask, chunked like x) plus the 1-D index, so that the graph holds
    # only the 1-D index (broadcasting in numpy then .chunk() embedded a full (date, asset)
    # float64 array in the graph per Slope/Rsquare/Resi node: 49 MiB for Alpha158 on
    # 288 x 1,455, ~3.4 GB at 5,500 x 5,100)
    row = xr.zeros_like(x, dtype=np.float64) + ctx.row_index()
    row = row.transpose(*x.dims)
    return row, row.where(x.notnull())


class Slope(Window):
    """Slope of the least-squares line of ``x`` on the row index over the window's valid
    rows (qlib ``Slope``)."""

    formula_name = "Slope"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        row, row_valid = _time_index(ctx, x)
        mp = ctx.min_periods(self.window)
        return ts.ts_cov(row, x, window=self.window, min_periods=mp) / ts.ts_var(
            row_valid, window=self.window, min_periods=mp
        )


class Rsquare(Window):
    """R-squared of the least-squares line of ``x`` on the row index (qlib ``Rsquare``)."""

    formula_name = "Rsquare"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        row, _ = _time_index(ctx, x)
        mp = ctx.min_periods(self.window)
        return ts.ts_corr(row, x, window=self.window, min_periods=mp) ** 2


class Resi(Window):
    """Residual at ``t`` of the least-squares line of ``x`` on the row index (qlib ``Resi``)."""

    formula_name = "Resi"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        row, row_valid = _time_index(ctx, x)
        w, mp = self.window, ctx.min_periods(self.window)
        slope = ts.ts_cov(row, x, window=w, min_periods=mp) / ts.ts_var(
            row_valid, window=w, min_periods=mp
        )
        return (
            x
            - ts.ts_mean(x, window=w, min_periods=mp)
            - slope * (row - ts.ts_mean(row_valid, window=w, min_periods=mp))
        )


__all__ = [
    "EMA",
    "WMA",
    "Corr",
    "Count",
    "Cov",
    "Delta",
    "FFill",
    "IdxMax",
    "IdxMin",
    "Kurt",
    "Mad",
    "Max",
    "Mean",
    "Med",
    "Min",
    "PairWindow",
    "Percentile",
    "PercentileAll",
    "Quantile",
    "Rank",
    "Ref",
    "Resi",
    "Rsquare",
    "Skew",
    "Slope",
    "Std",
    "Sum",
    "Var",
    "Window",
]
