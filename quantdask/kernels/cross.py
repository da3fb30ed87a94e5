"""Cross-section kernels on plain 2-D numpy arrays: one row per date, one column per asset.

Every kernel takes ``values`` of shape ``(r, n)`` (float64) and ``groups`` of the same shape
(int64 group codes, 0 = no group: the cell is left NaN), treats each row independently and
each group within a row independently. Pass ``None`` as ``groups`` for the plain
(whole cross-section) version. Rows run in parallel (numba ``prange``); within a row the valid
cells are sorted once by (group, value) and every statistic is read off the sorted segments.
The ungrouped rank and quantile bucket use :func:`quantdask.kernels.rank.rank_rows` instead
(serial per block, ``nogil``: dask runs the date blocks in parallel threads).

This module never imports xarray.
"""

from __future__ import annotations

import numba
import numpy as np

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


@numba.njit(cache=True, nogil=True)
def _row_order(vals, grp):  # pragma: no cover - compiled
    """Indices of the valid cells of a row sorted by (group, value), and their count."""
    n = vals.shape[0]
    idx = np.empty(n, dtype=np.int64)
    k = 0
    for j in range(n):
        if grp[j] != 0 and not np.isnan(vals[j]):
            idx[k] = j
            k += 1
    idx = idx[:k]
    v = np.empty(k)
    for u in range(k):
        v[u] = vals[idx[u]]
    o1 = np.argsort(v, kind="mergesort")
    idx = idx[o1]
    g = np.empty(k, dtype=np.int64)
    for u in range(k):
        g[u] = grp[idx[u]]
    o2 = np.argsort(g, kind="mergesort")
    return idx[o2], k


@numba.njit(cache=True, nogil=True)
def _segment_end(order, grp, start, k):  # pragma: no cover - compiled
    g = grp[order[start]]
    end = start + 1
    while end < k and grp[order[end]] == g:
        end += 1
    return end


@numba.njit(cache=True, nogil=True)
def _avg_ranks(vals, order, start, end, ranks):  # pragma: no cover - compiled
    """Average ranks (1..size) of the sorted segment ``order[start:end]`` into ``ranks``."""
    u = start
    while u < end:
        w = u + 1
        while w < end and vals[order[w]] == vals[order[u]]:
            w += 1
        r = 0.5 * ((u - start + 1) + (w - start))
        for z in range(u, w):
            ranks[order[z]] = r
        u = w


@_dual
def _rank(values, groups, pct, nbuckets):  # pragma: no cover - compiled
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i]
        grp = groups[i]
        order, k = _row_order(vals, grp)
        ranks = np.full(n, np.nan)
        start = 0
        while start < k:
            end = _segment_end(order, grp, start, k)
            _avg_ranks(vals, order, start, end, ranks)
            size = end - start
            for u in range(start, end):
                j = order[u]
                if nbuckets > 0:
                    out[i, j] = np.floor((ranks[j] - 1.0) * nbuckets / size) + 1.0
                elif pct:
                    out[i, j] = ranks[j] / size
                else:
                    out[i, j] = ranks[j]
            start = end
    return out


def cs_rank_kernel(values: np.ndarray, groups: np.ndarray | None, pct: bool) -> np.ndarray:
    """Average rank within each (row, group): ``1..k``, or ``rank / k`` when ``pct``.

    ``groups=None``: the whole row is one group, ranked by
    :func:`quantdask.kernels.rank.rank_rows` (radix sort of integer keys; ~2x faster than
    bottleneck ``nanrankdata`` without NaNs, ~3.7x with 20% NaNs, at 5,500 assets, and it
    releases the GIL).
    """
    if groups is None:
        return rank_rows(values, pct=bool(pct))
    return _rank(_f64(values), _i64(groups, values), bool(pct), 0)


def cs_quantile_kernel(values: np.ndarray, groups: np.ndarray | None, q: int) -> np.ndarray:
    """Bucket ``1..q`` within each (row, group): ``floor((rank - 1) * q / k) + 1``."""
    if groups is None:
        return rank_rows(values, buckets=int(q))
    return _rank(_f64(values), _i64(groups, values), False, int(q))


@_dual
def _zscore(values, groups):  # pragma: no cover - compiled
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i]
        grp = groups[i]
        order, k = _row_order(vals, grp)
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

    NaN where the group's std is 0 (a single member or all equal).
    """
    return _zscore(_f64(values), _i64(groups, values))


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


@_dual
def _winsorize_quantile(values, groups, lower, upper):  # pragma: no cover - compiled
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i]
        grp = groups[i]
        order, k = _row_order(vals, grp)
        start = 0
        while start < k:
            end = _segment_end(order, grp, start, k)
            seg = np.empty(end - start)
            for u in range(start, end):
                seg[u - start] = vals[order[u]]
            lo = _sorted_quantile(seg, lower)
            hi = _sorted_quantile(seg, upper)
            for u in range(start, end):
                j = order[u]
                out[i, j] = min(max(vals[j], lo), hi)
            start = end
    return out


def cs_winsorize_quantile_kernel(
    values: np.ndarray, groups: np.ndarray | None, lower: float, upper: float
) -> np.ndarray:
    """Clip each (row, group) to its ``lower`` and ``upper`` quantiles (linear interpolation)."""
    return _winsorize_quantile(_f64(values), _i64(groups, values), float(lower), float(upper))


@_dual
def _winsorize_mad(values, groups, n_mad, scale):  # pragma: no cover - compiled
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i]
        grp = groups[i]
        order, k = _row_order(vals, grp)
        start = 0
        while start < k:
            end = _segment_end(order, grp, start, k)
            size = end - start
            seg = np.empty(size)
            for u in range(start, end):
                seg[u - start] = vals[order[u]]
            med = _sorted_quantile(seg, 0.5)
            dev = np.sort(np.abs(seg - med))
            mad = scale * _sorted_quantile(dev, 0.5)
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
    return _winsorize_mad(_f64(values), _i64(groups, values), float(n_mad), float(scale))


@_dual
def _neutralize(values, groups, mcap, use_mcap):  # pragma: no cover - compiled
    rows, n = values.shape
    out = np.full((rows, n), np.nan)
    for i in numba.prange(rows):
        vals = values[i].copy()
        grp = groups[i]
        if use_mcap:
            for j in range(n):
                if np.isnan(mcap[i, j]):
                    vals[j] = np.nan
        order, k = _row_order(vals, grp)
        xd = np.full(n, np.nan)
        md = np.full(n, np.nan)
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
    Cells with a missing regressor, or group 0, are NaN and do not enter the fit.
    """
    vals = _f64(values)
    use = log_mcap is not None
    mcap = _f64(log_mcap) if use else np.zeros((1, 1))
    return _neutralize(vals, _i64(groups, values), mcap, use)


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _i64(a: np.ndarray | None, like: np.ndarray | None = None) -> np.ndarray:
    if a is None:
        return np.ones(like.shape, dtype=np.int64)
    return np.ascontiguousarray(a, dtype=np.int64)
