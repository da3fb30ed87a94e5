"""Cross-section kernels on plain 2-D numpy arrays: one row per date, one column per asset.

Every kernel takes ``values`` of shape ``(r, n)`` (float64) and ``groups`` of the same shape
(int64 group codes, 0 = no group: the cell is left NaN), treats each row independently and
each group within a row independently. Pass ``None`` as ``groups`` for the plain
(whole cross-section) version. Rows run in parallel (numba ``prange``, large arrays only);
within a row the valid cells are sorted once by (group, value) with the shared key scheme of
:mod:`quantdask.kernels.rank` (group code in the top key bits, order-preserving value bits
below, the column in the low bits; LSD radix sort for rows of at least ``RADIX_MIN_COLUMNS``
cells; runs equal in the kept bits re-sorted exactly by value) and every statistic is read off
the sorted segments. The ungrouped rank and quantile bucket use
:func:`quantdask.kernels.rank.rank_rows` (serial per block, ``nogil``: dask runs the date
blocks in parallel threads).

This module never imports xarray.
"""

from __future__ import annotations

import numba
import numpy as np

from quantdask.kernels import rank as _rk
from quantdask.kernels._dual import dual as _dual
from quantdask.kernels.rank import rank_rows

__all__ = [
    "cs_neutralize_kernel",
    "cs_quantile_kernel",
    "cs_rank_kernel",
    "cs_winsorize_mad_kernel",
    "cs_winsorize_quantile_kernel",
    "cs_zscore_kernel",
]


#: Rows per parallel work item: each item allocates its sort scratch once.
_ROWS_PER_ITEM = 16


@numba.njit(cache=True, nogil=True)
def _sorted_row(
    vals, grp, table, base, gbits, bits, radix, keys, buf, cnt, order
):  # pragma: no cover
    """Valid cells of a row (non-zero group, non-NaN) in (group, value, column) order.

    Fills ``order[:k]`` and returns ``k``; the other arguments are sort scratch and the key
    layout (see :func:`quantdask.kernels.rank.group_sort_row`).
    """
    k = _rk.group_sort_row(
        vals, vals.view(np.uint64), grp, table, base, gbits, bits, radix, keys, buf, cnt
    )
    _rk.group_row_order(keys, vals, k, bits, order)
    return k


@numba.njit(cache=True, nogil=True)
def _segment_end(order, grp, start, k):  # pragma: no cover - compiled
    g = grp[order[start]]
    end = start + 1
    while end < k and grp[order[end]] == g:
        end += 1
    return end


@_dual
def _rank(values, groups, table, base, gbits, bits, radix, mode, q):  # pragma: no cover - compiled
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for c in numba.prange((rows + _ROWS_PER_ITEM - 1) // _ROWS_PER_ITEM):
        keys = np.empty(n, dtype=np.uint64)
        buf = np.empty(n, dtype=np.uint64)
        cnt = np.empty(1 << 11, dtype=np.int64)
        order = np.empty(n, dtype=np.int64)
        for i in range(c * _ROWS_PER_ITEM, min(rows, (c + 1) * _ROWS_PER_ITEM)):
            vals = values[i]
            ub = vals.view(np.uint64)
            k = _rk.group_sort_row(
                vals, ub, groups[i], table, base, gbits, bits, radix, keys, buf, cnt
            )
            _rk.group_rank_row(keys, vals, k, bits, gbits, mode, q, order, out[i])
    return out


def _grouped(values: np.ndarray, groups: np.ndarray | None) -> tuple:
    """``(values, codes, table, base, gbits, bits, radix)``: arguments of the sorted kernels."""
    v = _f64(values)
    if v.ndim != 2:
        raise ValueError(f"values must be 2-D (dates, assets), got shape {v.shape}")
    g = _i64(groups, v)
    if g.shape != v.shape:
        raise ValueError(f"groups shape {g.shape} does not match values shape {v.shape}")
    codes, table, base, gbits = _rk.group_codes(g)
    n = v.shape[1]
    bits = _rk.column_bits(n)
    if gbits + bits > 62:  # pragma: no cover - needs > 2**30 groups and columns
        raise ValueError(f"too many groups ({gbits} bits) for rows of {n} cells")
    return v, codes, table, base, gbits, bits, n >= _rk.RADIX_MIN_COLUMNS


def cs_rank_kernel(values: np.ndarray, groups: np.ndarray | None, pct: bool) -> np.ndarray:
    """Average rank within each (row, group): ``1..k``, or ``rank / k`` when ``pct``.

    ``groups=None``: the whole row is one group, ranked by
    :func:`quantdask.kernels.rank.rank_rows` (radix sort of integer keys; ~2x faster than
    bottleneck ``nanrankdata`` without NaNs, ~3.7x with 20% NaNs, at 5,500 assets, and it
    releases the GIL).
    """
    if groups is None:
        return rank_rows(values, pct=bool(pct))
    return _rank(*_grouped(values, groups), 1 if pct else 0, 0)


def cs_quantile_kernel(values: np.ndarray, groups: np.ndarray | None, q: int) -> np.ndarray:
    """Bucket ``1..q`` within each (row, group): ``floor((rank - 1) * q / k) + 1``."""
    if groups is None:
        return rank_rows(values, buckets=int(q))
    return _rank(*_grouped(values, groups), 2, int(q))


@numba.njit(cache=True, nogil=True)
def _scratch(n):  # pragma: no cover - compiled
    """Sort scratch for rows of ``n`` cells: keys, radix buffer, digit counts, order."""
    return (
        np.empty(n, dtype=np.uint64),
        np.empty(n, dtype=np.uint64),
        np.empty(1 << 11, dtype=np.int64),
        np.empty(n, dtype=np.int64),
    )


@_dual
def _zscore(values, groups, table, base, gbits, bits, radix):  # pragma: no cover - compiled
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for c in numba.prange((rows + _ROWS_PER_ITEM - 1) // _ROWS_PER_ITEM):
        keys, buf, cnt, order = _scratch(n)
        for i in range(c * _ROWS_PER_ITEM, min(rows, (c + 1) * _ROWS_PER_ITEM)):
            vals = values[i]
            grp = groups[i]
            k = _sorted_row(vals, grp, table, base, gbits, bits, radix, keys, buf, cnt, order)
            start = 0
            while start < k:
                end = _segment_end(order, grp, start, k)
                size = end - start
                mu = 0.0
                for u in range(start, end):
                    mu += vals[order[u]]
                mu /= size
                ss = 0.0
                for u in range(start, end):
                    d = vals[order[u]] - mu
                    ss += d * d
                sd = np.sqrt(ss / size)
                if sd > 0.0:
                    for u in range(start, end):
                        j = order[u]
                        out[i, j] = (vals[j] - mu) / sd
                start = end
    return out


def cs_zscore_kernel(values: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """``(x - mean) / std`` within each (row, group), population std (``ddof=0``).

    NaN where the group's std is 0 (a single member or all equal). The sums run over each
    group's cells in (value, column) order.
    """
    return _zscore(*_grouped(values, groups))


@numba.njit(cache=True, nogil=True)
def _sorted_quantile(sorted_vals, q):  # pragma: no cover - compiled
    k = sorted_vals.shape[0]
    pos = q * (k - 1)
    lo = int(np.floor(pos))
    frac = pos - lo
    v = sorted_vals[lo]
    if frac > 0.0 and lo + 1 < k:
        v = v + frac * (sorted_vals[lo + 1] - v)
    return v


@numba.njit(cache=True, nogil=True)
def _abs_dev_median(seg, med):  # pragma: no cover - compiled
    """Median of ``|seg - med|`` for sorted ``seg``, as ``_sorted_quantile(sort(...), 0.5)``.

    The deviations below and above ``med`` are two sorted runs, merged up to the middle: no
    second sort. Non-finite deviations (an infinite value) take the plain sort.
    """
    k = seg.shape[0]
    if not (np.isfinite(med - seg[0]) and np.isfinite(seg[k - 1] - med)):
        return _sorted_quantile(np.sort(np.abs(seg - med)), 0.5)
    pos = 0.5 * (k - 1)
    lo = int(np.floor(pos))
    frac = pos - lo
    p = 0
    while p < k and seg[p] < med:
        p += 1
    left = p - 1
    right = p
    a = 0.0
    b = 0.0
    for t in range(min(lo + 2, k)):
        if left >= 0 and (right >= k or med - seg[left] <= seg[right] - med):
            d = abs(seg[left] - med)
            left -= 1
        else:
            d = abs(seg[right] - med)
            right += 1
        if t == lo:
            a = d
        else:
            b = d
    if frac > 0.0 and lo + 1 < k:
        a = a + frac * (b - a)
    return a


@_dual
def _winsorize_quantile(
    values, groups, table, base, gbits, bits, radix, lower, upper
):  # pragma: no cover
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for c in numba.prange((rows + _ROWS_PER_ITEM - 1) // _ROWS_PER_ITEM):
        keys, buf, cnt, order = _scratch(n)
        seg = np.empty(n)
        for i in range(c * _ROWS_PER_ITEM, min(rows, (c + 1) * _ROWS_PER_ITEM)):
            vals = values[i]
            grp = groups[i]
            k = _sorted_row(vals, grp, table, base, gbits, bits, radix, keys, buf, cnt, order)
            start = 0
            while start < k:
                end = _segment_end(order, grp, start, k)
                for u in range(start, end):
                    seg[u - start] = vals[order[u]]
                lo = _sorted_quantile(seg[: end - start], lower)
                hi = _sorted_quantile(seg[: end - start], upper)
                for u in range(start, end):
                    j = order[u]
                    out[i, j] = min(max(vals[j], lo), hi)
                start = end
    return out


def cs_winsorize_quantile_kernel(
    values: np.ndarray, groups: np.ndarray | None, lower: float, upper: float
) -> np.ndarray:
    """Clip each (row, group) to its ``lower`` and ``upper`` quantiles (linear interpolation)."""
    return _winsorize_quantile(*_grouped(values, groups), float(lower), float(upper))


@_dual
def _winsorize_mad(
    values, groups, table, base, gbits, bits, radix, n_mad, scale
):  # pragma: no cover
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for c in numba.prange((rows + _ROWS_PER_ITEM - 1) // _ROWS_PER_ITEM):
        keys, buf, cnt, order = _scratch(n)
        seg = np.empty(n)
        for i in range(c * _ROWS_PER_ITEM, min(rows, (c + 1) * _ROWS_PER_ITEM)):
            vals = values[i]
            grp = groups[i]
            k = _sorted_row(vals, grp, table, base, gbits, bits, radix, keys, buf, cnt, order)
            start = 0
            while start < k:
                end = _segment_end(order, grp, start, k)
                size = end - start
                for u in range(start, end):
                    seg[u - start] = vals[order[u]]
                med = _sorted_quantile(seg[:size], 0.5)
                mad = scale * _abs_dev_median(seg[:size], med)
                lo = med - n_mad * mad
                hi = med + n_mad * mad
                for u in range(start, end):
                    j = order[u]
                    out[i, j] = min(max(vals[j], lo), hi)
                start = end
    return out


def cs_winsorize_mad_kernel(
    values: np.ndarray, groups: np.ndarray | None, n_mad: float, scale: float
) -> np.ndarray:
    """Clip each (row, group) to ``median +/- n_mad * scale * MAD``.

    ``MAD = median(|x - median(x)|)``; ``scale = 1.4826`` makes ``scale * MAD`` a consistent
    estimate of the standard deviation for normal data.
    """
    return _winsorize_mad(*_grouped(values, groups), float(n_mad), float(scale))


@_dual
def _neutralize(
    values, groups, table, base, gbits, bits, radix, mcap, use_mcap
):  # pragma: no cover
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for c in numba.prange((rows + _ROWS_PER_ITEM - 1) // _ROWS_PER_ITEM):
        keys, buf, cnt, order = _scratch(n)
        vals = np.empty(n)
        xd = np.empty(n)
        md = np.empty(n)
        for i in range(c * _ROWS_PER_ITEM, min(rows, (c + 1) * _ROWS_PER_ITEM)):
            grp = groups[i]
            vals[:] = values[i]
            if use_mcap:
                for j in range(n):
                    if np.isnan(mcap[i, j]):
                        vals[j] = np.nan
            k = _sorted_row(vals, grp, table, base, gbits, bits, radix, keys, buf, cnt, order)
            sxm = 0.0
            smm = 0.0
            start = 0
            while start < k:
                end = _segment_end(order, grp, start, k)
                size = end - start
                mx = 0.0
                mm = 0.0
                for u in range(start, end):
                    j = order[u]
                    mx += vals[j]
                    if use_mcap:
                        mm += mcap[i, j]
                mx /= size
                mm /= size
                for u in range(start, end):
                    j = order[u]
                    xd[j] = vals[j] - mx
                    if use_mcap:
                        md[j] = mcap[i, j] - mm
                        sxm += xd[j] * md[j]
                        smm += md[j] * md[j]
                start = end
            beta = sxm / smm if (use_mcap and smm > 0.0) else 0.0
            for u in range(k):
                j = order[u]
                out[i, j] = xd[j] - beta * md[j] if use_mcap else xd[j]
    return out


def cs_neutralize_kernel(
    values: np.ndarray, groups: np.ndarray | None, log_mcap: np.ndarray | None
) -> np.ndarray:
    """Per-row OLS residual of ``values`` on group dummies (and ``log_mcap`` when given).

    Exact OLS by the Frisch-Waugh theorem: demean ``values`` and ``log_mcap`` within each
    group, then remove the pooled slope of the demeaned values on the demeaned ``log_mcap``.
    Cells with a missing regressor, or group 0, are NaN and do not enter the fit. Sums run
    over the groups in ascending code order, each group's cells in (value, column) order.
    """
    use = log_mcap is not None
    mcap = _f64(log_mcap) if use else np.zeros((1, 1))
    return _neutralize(*_grouped(values, groups), mcap, use)


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _i64(a: np.ndarray | None, like: np.ndarray | None = None) -> np.ndarray:
    if a is None:
        return np.ones(like.shape, dtype=np.int64)
    return np.ascontiguousarray(a, dtype=np.int64)
