"""Direct (O(n * window)) moving-window kernels for ops without a running form.

Same contract as :mod:`quantdask.kernels.moving`: C-contiguous float64 ``(m, n)`` input with
time along the last axis, output of the same shape, element ``[i, t]`` from ``a[i, :t + 1]``
only. Each window is computed directly from its own values, so there is no accumulated
rounding. Kernels:

* :func:`move_wma`: linearly weighted mean (weights ``1..k``, newest heaviest) over the
  window's valid values.
* :func:`move_wma_qlib`: qlib's ``WMA`` (pyqlib 0.9.7): weights ``1..L`` over the ``L`` rows
  of the window (NaN rows included, rows before the series' first row not), normalised to
  sum 1, then ``nanmean(w * x)``: the mean of the weighted values over the valid rows (this
  is not a weighted mean; reproduced as qlib computes it).
* :func:`move_mad`: mean absolute deviation from the window mean, over valid values.
* :func:`move_argext_first`: 1-based position, counted from the first valid row of the
  window, of the *first* (oldest) extreme among the window's valid values; qlib's
  ``IdxMax`` / ``IdxMin`` once a NaN inside an instrument's span is replaced by ``+inf`` /
  ``-inf`` (``np.argmax`` takes a NaN as the extreme).

``min_count`` is the number of valid values a window needs (NaN output below it).

This module never imports xarray.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["move_argext_first", "move_mad", "move_wma", "move_wma_qlib"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _wma(a, window, min_count):  # pragma: no cover - compiled
    m, n = a.shape
    out = np.full((m, n), np.nan)
    for i in range(m):
        for t in range(n):
            lo = max(0, t - window + 1)
            total = 0.0
            wsum = 0.0
            k = 0
            for j in range(lo, t + 1):
                v = a[i, j]
                if not np.isnan(v):
                    w = j - lo + 1.0
                    total += w * v
                    wsum += w
                    k += 1
            if k < min_count or k == 0:
                continue
            out[i, t] = total / wsum
    return out


def move_wma(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Linearly weighted moving mean (newest row weight ``L``, oldest 1) of valid values.

    Parameters
    ----------
    a : numpy.ndarray
        ``(m, n)`` float64, time along the last axis.
    window : int
        Rows per window.
    min_count : int
        Valid values a window needs.

    Returns
    -------
    numpy.ndarray
        ``sum(w * x) / sum(w)`` over the window's valid rows, weights by row position.
    """
    return _wma(np.ascontiguousarray(a, dtype=np.float64), int(window), int(min_count))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _wma_qlib(a, rows, window, min_count):  # pragma: no cover - compiled
    m, n = a.shape
    out = np.full((m, n), np.nan)
    for i in range(m):
        for t in range(n):
            lo = max(0, t - window + 1)
            # the series starts at its first row (rows before it do not exist in qlib)
            while lo <= t and rows[i, lo] == 0.0:
                lo += 1
            length = t - lo + 1
            total = 0.0
            k = 0
            for j in range(lo, t + 1):
                v = a[i, j]
                if not np.isnan(v):
                    total += (j - lo + 1.0) * v
                    k += 1
            if k < min_count or k == 0:
                continue
            out[i, t] = total / (length * (length + 1) / 2.0) / k
    return out


def move_wma_qlib(
    a: np.ndarray, rows: np.ndarray | None = None, *, window: int, min_count: int
) -> np.ndarray:
    """qlib's ``WMA``: ``nanmean(w * x)`` with ``w = 1..L`` normalised over the window's rows.

    Parameters
    ----------
    a : numpy.ndarray
        ``(m, n)`` float64, time along the last axis.
    rows : numpy.ndarray, optional
        ``(m, n)``, non-zero where the series has a row (an instrument's span, NaN values
        included): a window starts no earlier than the first row, as qlib's series do.
        Default: every row.
    window : int
        Rows per window (shorter at the start of the series, as pandas ``rolling``).
    min_count : int
        Valid values a window needs.

    Returns
    -------
    numpy.ndarray
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    rows = np.ones_like(a) if rows is None else np.ascontiguousarray(rows, dtype=np.float64)
    return _wma_qlib(a, rows, int(window), int(min_count))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _mad(a, window, min_count):  # pragma: no cover - compiled
    m, n = a.shape
    out = np.full((m, n), np.nan)
    for i in range(m):
        for t in range(n):
            lo = max(0, t - window + 1)
            total = 0.0
            k = 0
            for j in range(lo, t + 1):
                v = a[i, j]
                if not np.isnan(v):
                    total += v
                    k += 1
            if k < min_count or k == 0:
                continue
            mean = total / k
            dev = 0.0
            for j in range(lo, t + 1):
                v = a[i, j]
                if not np.isnan(v):
                    dev += abs(v - mean)
            out[i, t] = dev / k
    return out


def move_mad(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving mean absolute deviation ``mean(|x - mean(x)|)`` over the window's valid values.

    Parameters
    ----------
    a : numpy.ndarray
        ``(m, n)`` float64, time along the last axis.
    window : int
        Rows per window.
    min_count : int
        Valid values a window needs.

    Returns
    -------
    numpy.ndarray
    """
    return _mad(np.ascontiguousarray(a, dtype=np.float64), int(window), int(min_count))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _argext_first(a, window, min_count, is_max):  # pragma: no cover - compiled
    m, n = a.shape
    out = np.full((m, n), np.nan)
    for i in range(m):
        for t in range(n):
            lo = max(0, t - window + 1)
            first = -1
            best = -1
            k = 0
            for j in range(lo, t + 1):
                v = a[i, j]
                if np.isnan(v):
                    continue
                k += 1
                if first < 0:
                    first = j
                    best = j
                elif (v > a[i, best]) if is_max else (v < a[i, best]):
                    best = j
            if k >= min_count and k > 0:
                out[i, t] = best - first + 1.0
    return out


def move_argext_first(a: np.ndarray, window: int, min_count: int, is_max: bool) -> np.ndarray:
    """1-based position of the oldest extreme, counted from the window's first valid row.

    Parameters
    ----------
    a : numpy.ndarray
        ``(m, n)`` float64, time along the last axis; NaN rows are skipped.
    window : int
        Rows per window.
    min_count : int
        Valid values a window needs.
    is_max : bool
        True for the maximum, False for the minimum.

    Returns
    -------
    numpy.ndarray
        Positions ``1..window`` (ties: the oldest extreme).
    """
    return _argext_first(
        np.ascontiguousarray(a, dtype=np.float64), int(window), int(min_count), bool(is_max)
    )
