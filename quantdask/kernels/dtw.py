"""Dynamic time warping kernels (numba) on plain 1-D / 2-D numpy arrays.

Conventions shared by every kernel here:

* local cost ``(a[i] - b[j]) ** 2``; the accumulated cost of the best admissible warping path
  is summed and the *distance* is its square root (the dtaidistance convention, so distances
  are directly comparable with ``dtaidistance.dtw.distance``). Kernels named ``*_sq`` return
  the accumulated squared cost (no square root).
* a global constraint is given as a *row band*: for row ``i`` of ``a`` the admissible columns
  of ``b`` are ``lo[i] <= j <= hi[i]`` (contiguous; Sakoe-Chiba bands and Itakura
  parallelograms are both of that shape). :func:`band` builds it.
* steps: ``(i-1, j)``, ``(i, j-1)``, ``(i-1, j-1)`` with equal weights.

No xarray here: these are called by :mod:`quantdask.timing` on numpy arrays.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Constraint codes used by the kernels.
NONE, SAKOE_CHIBA, ITAKURA = 0, 1, 2

_INF = np.inf


def band(
    n: int, m: int, code: int, radius: int = 0, slope: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row admissible column range ``(lo, hi)`` (inclusive) of an ``n`` x ``m`` DTW matrix.

    Parameters
    ----------
    n, m : int
        Lengths of the row series ``a`` and the column series ``b``.
    code : int
        :data:`NONE` (every cell), :data:`SAKOE_CHIBA` or :data:`ITAKURA`.
    radius : int
        Sakoe-Chiba radius ``r >= 0``: ``i - r - max(0, n - m) <= j <= i + r + max(0, m - n)``
        (for equal lengths ``|i - j| <= r``; this is dtaidistance's ``window = r + 1``).
    slope : float
        Itakura maximum slope ``s >= 1``: the cells inside the parallelogram with sides of
        slope ``s`` and ``1 / s`` through ``(0, 0)`` and ``(n - 1, m - 1)``.

    Returns
    -------
    lo, hi : numpy.ndarray of int64
        Rows with ``lo[i] > hi[i]`` admit no cell (no admissible path).
    """
    i = np.arange(n, dtype=np.float64)
    if code == NONE:
        return np.zeros(n, np.int64), np.full(n, m - 1, np.int64)
    if code == SAKOE_CHIBA:
        lo = i - radius - max(0, n - m)
        hi = i + radius + max(0, m - n)
        return np.clip(lo, 0, m - 1).astype(np.int64), np.clip(hi, 0, m - 1).astype(np.int64)
    if code == ITAKURA:
        s = float(slope)
        ii, jj = n - 1.0, m - 1.0
        eps = 1e-9
        # j <= s i, j >= i / s, (jj - j) <= s (ii - i), (jj - j) >= (ii - i) / s
        hi = np.minimum(np.floor(s * i + eps), np.floor(jj - (ii - i) / s + eps))
        lo = np.maximum(np.ceil(i / s - eps), np.ceil(jj - s * (ii - i) - eps))
        lo = np.clip(lo, 0, m - 1)
        hi = np.clip(hi, -1, m - 1)
        return lo.astype(np.int64), hi.astype(np.int64)
    raise ValueError(f"unknown constraint code {code!r}")


@numba.njit(nogil=True, cache=True)
def dtw_sq(a, b, lo, hi, cutoff):  # pragma: no cover - compiled
    """Accumulated squared DTW cost of ``a`` (rows) vs ``b`` (columns) within the row band.

    The band must be monotone (``lo`` and ``hi`` non-decreasing, as :func:`band` builds).
    Early abandoning: returns ``inf`` as soon as every cell of a row exceeds ``cutoff`` (an
    accumulated squared cost; pass ``inf`` to disable). Returns ``inf`` when no admissible
    path exists.
    """
    n = a.shape[0]
    m = b.shape[0]
    # slot j + 1 holds column j; slot 0 is the virtual column -1
    prev = np.full(m + 1, _INF)
    cur = np.full(m + 1, _INF)
    prev[0] = 0.0  # virtual origin (-1, -1)
    for i in range(n):
        clo = lo[i]
        chi = hi[i]
        if clo > chi:
            return _INF
        ai = a[i]
        left = _INF
        cur[clo] = _INF
        rowmin = _INF
        for j in range(clo, chi + 1):
            d = ai - b[j]
            best = prev[j]
            up = prev[j + 1]
            if up < best:
                best = up
            if left < best:
                best = left
            left = best + d * d
            cur[j + 1] = left
            if left < rowmin:
                rowmin = left
        if rowmin > cutoff:
            return _INF
        prev, cur = cur, prev
    return prev[m]


@numba.njit(nogil=True, cache=True)
def envelope(q, lo, hi):  # pragma: no cover - compiled
    """Upper and lower envelope of ``q``: ``U[j] = max(q[lo[j]:hi[j] + 1])``, ``L`` the min.

    With the band of an equal-length symmetric constraint (Sakoe-Chiba radius ``r``:
    ``q[j - r : j + r + 1]``; Itakura) this is the LB_Keogh envelope of the query.
    """
    n = q.shape[0]
    upper = np.empty(n)
    lower = np.empty(n)
    for j in range(n):
        u = -_INF
        lw = _INF
        for i in range(lo[j], hi[j] + 1):
            v = q[i]
            if v > u:
                u = v
            if v < lw:
                lw = v
        upper[j] = u
        lower[j] = lw
    return upper, lower


@numba.njit(nogil=True, cache=True)
def envelopes(rows, lo, hi):  # pragma: no cover - compiled
    """:func:`envelope` of every row of a 2-D array: ``(upper, lower)``, each ``rows.shape``."""
    upper = np.empty_like(rows)
    lower = np.empty_like(rows)
    for r in range(rows.shape[0]):
        u, lw = envelope(rows[r], lo, hi)
        upper[r] = u
        lower[r] = lw
    return upper, lower


@numba.njit(nogil=True, cache=True)
def lb_keogh_sq(c, upper, lower, cutoff):  # pragma: no cover - compiled
    """Squared LB_Keogh of candidate ``c`` against a query envelope; stops once above cutoff."""
    s = 0.0
    for j in range(c.shape[0]):
        v = c[j]
        if v > upper[j]:
            d = v - upper[j]
            s += d * d
        elif v < lower[j]:
            d = lower[j] - v
            s += d * d
        if s > cutoff:
            return s
    return s


@numba.njit(nogil=True, cache=True)
def _insert(best_d, best_i, d, idx):  # pragma: no cover - compiled
    """Insert ``(d, idx)`` into the top-k arrays kept ascending by ``(distance, index)``."""
    k = best_d.shape[0]
    p = k - 1
    while p > 0 and (best_d[p - 1] > d or (best_d[p - 1] == d and best_i[p - 1] > idx)):
        best_d[p] = best_d[p - 1]
        best_i[p] = best_i[p - 1]
        p -= 1
    best_d[p] = d
    best_i[p] = idx


@numba.njit(nogil=True, cache=True)
def _better(d, idx, best_d, best_i):  # pragma: no cover - compiled
    k = best_d.shape[0]
    return d < best_d[k - 1] or (d == best_d[k - 1] and d < _INF and idx < best_i[k - 1])


@numba.njit(nogil=True, cache=True)
def knn_sq(
    query, cands, n_cand, k, lo, hi, upper, lower, prune, cupper, clower, seeds
):  # pragma: no cover
    """The ``k`` nearest rows of ``cands[:n_cand]`` to ``query`` by squared DTW cost.

    The neighbours are the ``k`` smallest ``(cost, row)`` pairs in lexicographic order (ties
    go to the earlier row), so the answer does not depend on the visiting order.

    Without ``prune`` every candidate gets a full DTW. With ``prune``: the rows in ``seeds``
    (likely neighbours, e.g. the previous date's, shifted; may be empty or out of range)
    get a DTW first, which sets a k-th best cost; the squared LB_Keogh of every other
    candidate against the query envelope ``upper``/``lower`` is computed (O(m), abandoned
    once above the k-th best: such a candidate cannot enter); the survivors are visited in
    ascending bound order, the search stops at the first bound above the current k-th best
    (every later bound is larger), a candidate is skipped when the reverse bound (the query
    against the candidate's envelope, rows of ``cupper``/``clower``; pass 0-row arrays to
    skip this step) is above the k-th best, and each DTW is abandoned early once a whole row
    exceeds the k-th best. Same neighbours either way.

    Returns ``(dist_sq, index, n_dtw)``: squared costs and row indices ascending (``inf`` /
    ``-1`` where fewer than ``k`` candidates exist) and the number of DTW computations.
    """
    best_d = np.full(k, _INF)
    best_i = np.full(k, -1, np.int64)
    n_dtw = 0
    if not prune:
        for c in range(n_cand):
            d = dtw_sq(query, cands[c], lo, hi, _INF)
            n_dtw += 1
            if _better(d, c, best_d, best_i):
                _insert(best_d, best_i, d, c)
        return best_d, best_i, n_dtw
    use_rev = cupper.shape[0] >= n_cand
    visited = np.zeros(n_cand, np.bool_)
    for p in range(seeds.shape[0]):
        c = seeds[p]
        if c < 0 or c >= n_cand or visited[c]:
            continue
        visited[c] = True
        d = dtw_sq(query, cands[c], lo, hi, best_d[k - 1])
        n_dtw += 1
        if _better(d, c, best_d, best_i):
            _insert(best_d, best_i, d, c)
    kth = best_d[k - 1]
    lbs = np.empty(n_cand)
    idx = np.empty(n_cand, np.int64)
    cnt = 0
    for c in range(n_cand):
        if visited[c]:
            continue
        lb = lb_keogh_sq(cands[c], upper, lower, kth)
        if lb <= kth:
            lbs[cnt] = lb
            idx[cnt] = c
            cnt += 1
    order = np.argsort(lbs[:cnt], kind="mergesort")
    for p in range(cnt):
        q = order[p]
        c = idx[q]
        kth = best_d[k - 1]
        if lbs[q] > kth:
            break
        if use_rev and lb_keogh_sq(query, cupper[c], clower[c], kth) > kth:
            continue
        d = dtw_sq(query, cands[c], lo, hi, kth)
        n_dtw += 1
        if _better(d, c, best_d, best_i):
            _insert(best_d, best_i, d, c)
    return best_d, best_i, n_dtw


#: Normalisation codes.
NORM_NONE, NORM_ZSCORE, NORM_FIRST = 0, 1, 2


@numba.njit(nogil=True, cache=True)
def normalized_windows(x, m, norm):  # pragma: no cover - compiled
    """Row ``e`` = the window ``x[e - m + 1 : e + 1]`` normalised; rows ``e < m - 1`` are NaN.

    ``norm``: :data:`NORM_NONE` as is, :data:`NORM_ZSCORE` ``(w - mean) / std`` (population
    std; all zeros when the std is 0), :data:`NORM_FIRST` ``w / w[0]``.
    """
    t = x.shape[0]
    out = np.full((t, m), np.nan)
    for e in range(m - 1, t):
        s = e - m + 1
        if norm == NORM_ZSCORE:
            mu = 0.0
            for j in range(m):
                mu += x[s + j]
            mu /= m
            var = 0.0
            for j in range(m):
                d = x[s + j] - mu
                var += d * d
            sd = math.sqrt(var / m)
            for j in range(m):
                out[e, j] = (x[s + j] - mu) / sd if sd > 0 else 0.0
        elif norm == NORM_FIRST:
            for j in range(m):
                out[e, j] = x[s + j] / x[s]
        else:
            for j in range(m):
                out[e, j] = x[s + j]
    return out


@numba.njit(nogil=True, cache=True)
def dtw_timing_kernel(x, targets, m, h, k, lo, hi, norm, prune, eps):  # pragma: no cover
    """DTW nearest-neighbour forecast for each target position of the price series ``x``.

    For target ``t``: query = normalised window ending at ``t``; candidates = normalised
    windows ending at ``e`` with ``m - 1 <= e`` and ``e + h <= t`` (their following ``h``
    days are known at ``t``); the ``k`` nearest by DTW; weights ``1 / (distance + eps)``;
    weighted mean and weighted (population) std of the candidates' ``x[e + h] / x[e] - 1``.
    Only ``x[: t + 1]`` is read for target ``t``.

    Returns ``(expected, dispersion, n_candidates, n_dtw)`` per target; NaN while fewer than
    ``k`` candidates exist.
    """
    nt = targets.shape[0]
    expected = np.full(nt, np.nan)
    disp = np.full(nt, np.nan)
    ncand = np.zeros(nt, np.int64)
    ndtw = np.zeros(nt, np.int64)
    if nt == 0:
        return expected, disp, ncand, ndtw
    last = 0
    for p in range(nt):
        if targets[p] > last:
            last = targets[p]
    wins = normalized_windows(x[: last + 1], m, norm)
    start = m - 1
    seeds = np.empty(0, np.int64)
    nw = wins.shape[0] - start
    if prune and nw > 0:
        cupper, clower = envelopes(wins[start:], lo, hi)
    else:
        cupper = np.empty((0, m))
        clower = np.empty((0, m))
    for p in range(nt):
        t = targets[p]
        if t < m - 1:
            continue
        n_c = t - h - start + 1
        if n_c < 0:
            n_c = 0
        ncand[p] = n_c
        if n_c < k:
            continue
        q = wins[t]
        upper, lower = envelope(q, lo, hi)
        bd, bi, nd = knn_sq(
            q, wins[start:], n_c, k, lo, hi, upper, lower, prune, cupper, clower, seeds
        )
        seeds = bi + 1  # the next date's likely neighbours: these windows one day later
        ndtw[p] = nd
        sw = 0.0
        swr = 0.0
        for j in range(k):
            e = bi[j] + start
            r = x[e + h] / x[e] - 1.0
            w = 1.0 / (math.sqrt(bd[j]) + eps)
            sw += w
            swr += w * r
        mu = swr / sw
        sv = 0.0
        for j in range(k):
            e = bi[j] + start
            r = x[e + h] / x[e] - 1.0
            w = 1.0 / (math.sqrt(bd[j]) + eps)
            sv += w * (r - mu) * (r - mu)
        expected[p] = mu
        disp[p] = math.sqrt(sv / sw)
    return expected, disp, ncand, ndtw
