"""Moving-window kernels on plain 2-D numpy arrays, time along the last axis.

Every kernel takes a C-contiguous float64 array of shape ``(m, n)``: ``m`` independent series
(assets, indices, ...) of ``n`` time steps each, and returns an array of the same shape where
element ``[i, t]`` depends only on ``a[i, :t + 1]`` (no look-ahead). NaN is missing and is
skipped inside windows; ``min_count`` is the number of valid values a window needs.

Moving moments (sum, mean, var, std, skew, kurtosis, corr, cov) are numba "two-stack"
windows (see the date-major section): no value outside a window enters its sums, so each
window is as accurate as a direct computation over it after any level change (running sums,
bottleneck's and numbagg's included, carry the rounding of every value that ever passed
through them). Where bottleneck has the kernel and no sum is involved (min, max, argmin,
argmax, short-window rank) we call it; numba kernels here also cover quantile,
percentile-of-score, streaks and an exponentially weighted mean whose state can be carried
from one block to the next. Time-last moment kernels walk each row with the same arithmetic
(:func:`_tl_moments_rows`); corr/cov transpose into their date-major kernel. Numba kernels with a ``prange`` loop pick a serial or parallel build by
array size (:mod:`quantdask.kernels._dual`).

This module never imports xarray.
"""

from __future__ import annotations

import bottleneck as bn
import numba
import numpy as np

__all__ = [
    "DATE_MAJOR",
    "compress_valid",
    "dm_move_kurt",
    "dm_move_max",
    "dm_move_mean",
    "dm_move_min",
    "dm_move_skew",
    "dm_move_std",
    "dm_move_sum",
    "dm_move_var",
    "dm_streak_scan",
    "ewm_mean_scan",
    "move_argmax",
    "move_argmin",
    "move_corr",
    "move_cov",
    "move_kurt",
    "move_max",
    "move_mean",
    "move_min",
    "move_percentile",
    "move_quantile",
    "move_rank",
    "move_skew",
    "move_std",
    "move_sum",
    "move_var",
    "shift",
    "streak_scan",
]


# --------------------------------------------------------------------------------------
# thin wrappers over bottleneck (time along the last axis)
# --------------------------------------------------------------------------------------


def _bn(fn, a: np.ndarray, window: int, min_count: int, **kw) -> np.ndarray:
    """Call a bottleneck move_* along the last axis; NaN-pad when the window exceeds it."""
    n = a.shape[-1]
    if window <= n:
        return fn(a, window, min_count=min_count, axis=-1, **kw)
    pad = np.full(a.shape[:-1] + (window - n,), np.nan)
    out = fn(np.concatenate([pad, a], axis=-1), window, min_count=min_count, axis=-1, **kw)
    return out[..., window - n :]


def move_mean(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving mean (two-stack window sums, as :func:`dm_move_mean`)."""
    return _tl_moments(a, window, min_count, _MEAN)


def move_sum(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving sum (two-stack window sums, as :func:`dm_move_sum`)."""
    return _tl_moments(a, window, min_count, _SUM)


def move_std(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving sample standard deviation, ``ddof=1``; exactly 0 on a window of equal values.

    Two-stack window sums, as :func:`dm_move_std`.
    """
    return _tl_moments(a, window, min_count, _STD)


def move_var(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving sample variance, ``ddof=1``; exactly 0 on a window of equal values.

    Two-stack window sums, as :func:`dm_move_var`.
    """
    return _tl_moments(a, window, min_count, _VAR)


def move_min(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving minimum (bottleneck)."""
    return _bn(bn.move_min, a, window, min_count)


def move_max(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving maximum (bottleneck)."""
    return _bn(bn.move_max, a, window, min_count)


def move_argmin(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Steps since the window's minimum, 0 = the last step; ties: most recent (bottleneck)."""
    return _bn(bn.move_argmin, a, window, min_count)


def move_argmax(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Steps since the window's maximum, 0 = the last step; ties: most recent (bottleneck)."""
    return _bn(bn.move_argmax, a, window, min_count)


#: Windows up to this length use bottleneck's ``move_rank`` (O(window) per step, fastest for
#: short windows); longer ones the Fenwick-tree kernel (O(log n) per step): 52 vs 59 ms at 20
#: days, 204 vs 54 ms at 250 days on a 512 x 1,273 block (``bench/README.md``, ops section).
RANK_BOTTLENECK_MAX_WINDOW = 24


def move_rank(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Rank of the last value in its window as a fraction in [0, 1].

    ``(r - 1) / (k - 1)`` with ``r`` the average rank (ties share the mean rank) and ``k``
    the number of valid values in the window; 0.5 when ``k == 1``; NaN when the last value
    is NaN. Short windows (``<= RANK_BOTTLENECK_MAX_WINDOW``) use ``bottleneck.move_rank``,
    longer ones the Fenwick-tree kernel shared with :func:`move_percentile`.
    """
    if window > RANK_BOTTLENECK_MAX_WINDOW:
        return _order_stat(a, window, min_count, 0.0, 2)
    out = _bn(bn.move_rank, a, window, min_count)
    out += 1.0
    out *= 0.5
    return out


def move_corr(a: np.ndarray, b: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving Pearson correlation over pairs where both are valid.

    Needs at least 2 pairs; NaN where ``a`` or ``b`` is (numerically) constant over the
    window. Runs the date-major two-stack kernel on the transposed arrays.
    """
    return _pair(a, b, window, min_count, True)


def move_cov(a: np.ndarray, b: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving sample covariance, ``ddof=1``, over pairs where both are valid (>= 2 pairs)."""
    return _pair(a, b, window, min_count, False)


def _pair(a: np.ndarray, b: np.ndarray, window: int, min_count: int, corr: bool) -> np.ndarray:
    return _t(_dm_pair(_t(a), _t(b), window, min_count, corr))


def shift(a: np.ndarray, periods: int) -> np.ndarray:
    """Values ``periods`` steps back along the last axis; NaN where there is no such step."""
    out = np.full_like(a, np.nan)
    if periods < a.shape[-1]:
        out[..., periods:] = a[..., : a.shape[-1] - periods]
    return out


def compress_valid(valid: np.ndarray) -> np.ndarray:
    """Gather index that moves each row's valid cells to its right end, order kept.

    ``np.take_along_axis(a, idx, axis=-1)`` puts the invalid cells first and the valid cells
    (in time order) last, so moving-window kernels see only valid steps and their leading
    NaNs never count.
    """
    return np.argsort(valid, axis=-1, kind="stable")


# --------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------

from quantdask.kernels._dual import dual as _dual  # noqa: E402
from quantdask.kernels.rank import argsort_rows  # noqa: E402


@numba.njit(cache=True, nogil=True)
def _transpose(a):  # pragma: no cover - compiled
    # C-ordered copy of ``a.T`` in 8 x 8 tiles: numpy's strided copy is ~10x slower when a row
    # is 4 KiB (512 float64 columns: every read of a column maps to the same cache set)
    m, n = a.shape
    out = np.empty((n, m))
    for i0 in range(0, m, 8):
        i1 = min(m, i0 + 8)
        for j0 in range(0, n, 8):
            for j in range(j0, min(n, j0 + 8)):
                for i in range(i0, i1):
                    out[j, i] = a[i, j]
    return out


def _t(a: np.ndarray) -> np.ndarray:
    """C-ordered float64 transpose of a 2-D array."""
    return _transpose(np.ascontiguousarray(a, dtype=np.float64))


def _tl_moments(a: np.ndarray, window: int, min_count: int, kind: int) -> np.ndarray:
    """The two-stack moment kernel along the rows of a time-last ``(m, n)`` array."""
    return _tl_moments_rows(np.ascontiguousarray(a, dtype=np.float64), window, min_count, kind)


def move_skew(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving sample skewness, bias-corrected (as pandas ``rolling().skew()``).

    Needs at least 3 valid values; NaN when the window is (numerically) constant.
    Two-stack window power sums, as :func:`dm_move_skew`.
    """
    return _tl_moments(a, window, min_count, _SKEW)


def move_kurt(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Moving excess kurtosis, bias-corrected (as pandas ``rolling().kurt()``).

    Needs at least 4 valid values; NaN when the window is (numerically) constant.
    Two-stack window power sums, as :func:`dm_move_kurt`.
    """
    return _tl_moments(a, window, min_count, _KURT)


# --------------------------------------------------------------------------------------
# date-major kernels: time along the FIRST axis, as the panel is stored
# --------------------------------------------------------------------------------------
# The stored chunks are C-ordered (date, asset) blocks, so one date's row is contiguous. These
# kernels walk the rows with the column loop innermost (contiguous, branch-free selects, so
# LLVM vectorises), which avoids the transpose copies the time-last kernels need. Same
# definitions as the time-last kernels; the moments, skew, kurtosis and the streak have no
# other implementation (their time-last API transposes into these).
#
# Every moment kernel is a van Herk/Gil-Werman "two-stack" window, as _dm_extreme: the rows
# are cut into runs of ``window`` rows; a backward pass stores, for each row of a run, the
# sums of the run's suffix from that row, and a forward pass over the next run keeps the
# sums of its prefix. The window ending at ``t`` is the previous run's suffix from
# ``t - window + 1`` plus the prefix of ``t``'s run up to ``t``. No value outside a window
# ever enters its sums (nothing is subtracted back out), so each output has the rounding of
# a direct sum over its own rows whatever came before; running sums with add/remove carry
# the rounding of every value that ever passed through them, which after a fall from 1e6 to
# 1 (or 1 to 1e-17) exceeds the window's own values. Power sums are of ``x - shift`` with
# the shift a value of the partial itself (the prefix's first valid value, the suffix's
# last), so |x - shift| is at most the window's range, never a distance to some far level
# (the running-sum kernels shifted by the column's first value: a +38,300% listing-day
# return); the suffix's sums are re-based on the prefix's shift binomially before the
# merge. The scans need no division. A window of equal values has all deviations exactly
# 0, hence variance exactly 0. Cost per block: ops section of ``bench/README.md``.

_SUM, _MEAN, _VAR, _STD, _SKEW, _KURT = 0, 1, 2, 3, 4, 5

#: Columns per tile of the two-stack kernels. Whole rows are fastest (each row's loop setup
#: is paid once per tile, ~100+ ns): a 512-column block is one tile; wider arrays (time-last
#: calls on many series) are cut so the suffix buffers stay bounded.
_TILE = 1024

#: Skew, kurtosis and correlation are NaN where a window is numerically constant: its
#: ``sum (x - mean)^2`` at most this fraction of its ``sum x^2``.
CONSTANT_TOL = 1e-14


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dm_moments(head, body, window, min_count, kind, out):  # pragma: no cover - compiled
    # Rows of ``head`` (history, no output) then ``body`` (output rows), as if concatenated,
    # into ``out`` (``(nb, m)``; the transpose of a C-ordered array for time-last callers,
    # a separate specialisation that writes columns: no transpose copy of the output).
    h = head.shape[0]
    nb, m = body.shape
    n = h + nb
    w = window
    need = max(float(min_count), 1.0)
    if kind == _VAR or kind == _STD:
        need = max(need, 2.0)
    elif kind == _SKEW:
        need = max(need, 3.0)
    elif kind == _KURT:
        need = max(need, 4.0)
    order = 1 if kind <= _MEAN else (2 if kind <= _STD else (3 if kind == _SKEW else 4))
    rows = w if n > w else 1  # a suffix is only stored when a later run exists
    tile = max(1, min(m, _TILE))
    # suffixes of the previous run (row o: the suffix from o rows into the run): count and
    # sums of (x - sc)^p, p = 1..order; sc, the shift, is the run's last valid value (the
    # first one its backward scan meets), the same for all its suffixes
    sk = np.zeros((rows, tile), dtype=np.int32)  # counts <= rows: exact, half the bytes
    s1 = np.zeros((rows, tile))
    s2 = np.zeros((rows if order >= 2 else 1, tile))
    s3 = np.zeros((rows if order >= 3 else 1, tile))
    s4 = np.zeros((rows if order >= 4 else 1, tile))
    sc = np.zeros(tile)
    # the running state: the prefix (forward pass, shift: its first valid value) or the
    # suffix (backward pass)
    ck = np.zeros(tile)
    cc = np.zeros(tile)
    c1 = np.zeros(tile)
    c2 = np.zeros(tile)
    c3 = np.zeros(tile)
    c4 = np.zeros(tile)
    first = max(0, h - w + 1) // w  # the run holding the oldest row an output needs
    nrun = (n + w - 1) // w
    for j0 in range(0, m, tile):
        tw = min(m, j0 + tile) - j0
        for r in range(first, nrun):
            r0 = r * w
            r1 = min(n, r0 + w)
            for direction in range(2):
                if direction == 0 and r1 <= h:
                    continue  # no output row in this run: its prefix is not needed
                if direction == 1 and r1 >= n:
                    continue  # no later run: its suffix is not needed
                ck[:] = 0.0
                cc[:] = np.nan
                c1[:] = 0.0
                c2[:] = 0.0
                c3[:] = 0.0
                c4[:] = 0.0
                for step in range(r1 - r0):
                    t = r0 + step if direction == 0 else r1 - 1 - step
                    xr = head[t] if t < h else body[t - h]
                    x = xr[j0 : j0 + tw]
                    if order == 1:
                        for jj in range(tw):
                            v = x[jj]
                            ok = v == v
                            c1[jj] += v if ok else 0.0
                            ck[jj] += 1.0 if ok else 0.0
                    else:
                        for jj in range(tw):
                            v = x[jj]
                            ok = v == v
                            c = cc[jj] if ck[jj] > 0.0 else v
                            d = v - c if ok else 0.0
                            d2 = d * d
                            cc[jj] = c
                            ck[jj] += 1.0 if ok else 0.0
                            c1[jj] += d
                            c2[jj] += d2
                            if order >= 3:
                                c3[jj] += d2 * d
                            if order >= 4:
                                c4[jj] += d2 * d2
                    if direction == 1:
                        o = t - r0
                        bk = sk[o]
                        b1 = s1[o]
                        for jj in range(tw):
                            bk[jj] = np.int32(ck[jj])
                            b1[jj] = c1[jj]
                        if order >= 2:
                            b2 = s2[o]
                            for jj in range(tw):
                                b2[jj] = c2[jj]
                        if order >= 3:
                            b3 = s3[o]
                            for jj in range(tw):
                                b3[jj] = c3[jj]
                        if order >= 4:
                            b4 = s4[o]
                            for jj in range(tw):
                                b4[jj] = c4[jj]
                        continue
                    if t < h:
                        continue
                    o = t - r0 + 1  # the window's suffix starts o rows into run r - 1
                    full = o < w and r > first
                    oo = o if full else 0
                    res = out[t - h, j0 : j0 + tw]
                    bk = sk[oo]
                    b1 = s1[oo]
                    if order == 1:
                        for jj in range(tw):
                            k = (float(bk[jj]) if full else 0.0) + ck[jj]
                            tot = (b1[jj] if full else 0.0) + c1[jj]
                            val = tot if kind == _SUM else tot / k
                            res[jj] = val if k >= need else np.nan
                        continue
                    b2 = s2[oo]
                    b3 = s3[oo if order >= 3 else 0]
                    b4 = s4[oo if order >= 4 else 0]
                    if order == 2:
                        for jj in range(tw):
                            na = float(bk[jj]) if full else 0.0
                            nq = ck[jj]
                            k = na + nq
                            # re-base the suffix's sums on the prefix's shift (both shifts
                            # are values of this window), or keep its own if no prefix
                            c = cc[jj] if nq > 0.0 else sc[jj]
                            e = sc[jj] - c if na > 0.0 else 0.0
                            a1 = b1[jj] if full else 0.0
                            a2 = b2[jj] if full else 0.0
                            t1 = a1 + na * e + c1[jj]
                            t2 = a2 + e * (2.0 * a1 + na * e) + c2[jj]
                            v = (t2 - t1 * t1 / k) / (k - 1.0)
                            v = 0.0 if v < 0.0 else v
                            v = np.sqrt(v) if kind == _STD else v
                            res[jj] = v if k >= need else np.nan
                        continue
                    for jj in range(tw):
                        na = float(bk[jj]) if full else 0.0
                        nq = ck[jj]
                        k = na + nq
                        c = cc[jj] if nq > 0.0 else sc[jj]
                        e = sc[jj] - c if na > 0.0 else 0.0
                        a1 = b1[jj] if full else 0.0
                        a2 = b2[jj] if full else 0.0
                        a3 = b3[jj] if full else 0.0
                        t1 = a1 + na * e + c1[jj]
                        t2 = a2 + e * (2.0 * a1 + na * e) + c2[jj]
                        t3 = a3 + e * (3.0 * a2 + e * (3.0 * a1 + na * e)) + c3[jj]
                        mu = t1 / k  # mean - c
                        m2 = t2 - mu * t1  # sum (x - mean)^2
                        m3 = t3 - mu * (3.0 * t2 - 2.0 * mu * t1)
                        sq = t2 + c * (2.0 * t1 + k * c)  # sum x^2
                        ok = k >= need and m2 > CONSTANT_TOL * sq
                        if order == 3:
                            val = np.sqrt((k - 1.0) * m2) * k * m3 / ((k - 2.0) * m2 * m2)
                        else:
                            a4 = b4[jj] if full else 0.0
                            t4 = (
                                a4
                                + e * (4.0 * a3 + e * (6.0 * a2 + e * (4.0 * a1 + na * e)))
                                + c4[jj]
                            )
                            m4 = t4 - mu * (4.0 * t3 - mu * (6.0 * t2 - 3.0 * mu * t1))
                            mm = m2 * m2
                            val = (
                                ((k + 1.0) * (k * m4 - 3.0 * mm) + 6.0 * mm)
                                * (k - 1.0)
                                / ((k - 2.0) * (k - 3.0) * mm)
                            )
                        res[jj] = val if ok else np.nan
                if direction == 1:
                    sc[:tw] = cc[:tw]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tl_moments_rows(a, window, min_count, kind):  # pragma: no cover - compiled
    # The two-stack windows of :func:`_dm_moments` along each row of a time-last ``(m, n)``
    # array, one row at a time (its suffix buffers stay in L1); same arithmetic, scalar.
    m, n = a.shape
    out = np.empty((m, n))
    w = window
    need = max(float(min_count), 1.0)
    if kind == _VAR or kind == _STD:
        need = max(need, 2.0)
    elif kind == _SKEW:
        need = max(need, 3.0)
    elif kind == _KURT:
        need = max(need, 4.0)
    order = 1 if kind <= _MEAN else (2 if kind <= _STD else (3 if kind == _SKEW else 4))
    rows = w if n > w else 1
    sk = np.zeros(rows)
    s1 = np.zeros(rows)
    s2 = np.zeros(rows)
    s3 = np.zeros(rows)
    s4 = np.zeros(rows)
    nrun = (n + w - 1) // w
    for i in range(m):
        x = a[i]
        res = out[i]
        sc = 0.0
        for r in range(nrun):
            r0 = r * w
            r1 = min(n, r0 + w)
            # forward: the prefix of run r, merged with the suffix of run r - 1
            k = 0.0
            c = np.nan
            p1 = 0.0
            p2 = 0.0
            p3 = 0.0
            p4 = 0.0
            for t in range(r0, r1):
                v = x[t]
                if v == v:
                    if order == 1:
                        p1 += v
                    else:
                        if k == 0.0:
                            c = v
                        d = v - c
                        d2 = d * d
                        p1 += d
                        p2 += d2
                        p3 += d2 * d
                        p4 += d2 * d2
                    k += 1.0
                o = t - r0 + 1
                full = o < w and r > 0
                na = sk[o] if full else 0.0
                kk = na + k
                if kk < need:
                    res[t] = np.nan
                    continue
                a1 = s1[o] if full else 0.0
                if order == 1:
                    tot = a1 + p1
                    res[t] = tot if kind == _SUM else tot / kk
                    continue
                a2 = s2[o] if full else 0.0
                a3 = s3[o] if full else 0.0
                a4 = s4[o] if full else 0.0
                cq = c if k > 0.0 else sc
                e = sc - cq if na > 0.0 else 0.0
                t1 = a1 + na * e + p1
                t2 = a2 + e * (2.0 * a1 + na * e) + p2
                if order == 2:
                    v2 = (t2 - t1 * t1 / kk) / (kk - 1.0)
                    v2 = 0.0 if v2 < 0.0 else v2
                    res[t] = np.sqrt(v2) if kind == _STD else v2
                    continue
                t3 = a3 + e * (3.0 * a2 + e * (3.0 * a1 + na * e)) + p3
                mu = t1 / kk
                m2 = t2 - mu * t1
                m3 = t3 - mu * (3.0 * t2 - 2.0 * mu * t1)
                sq = t2 + cq * (2.0 * t1 + kk * cq)
                if not m2 > CONSTANT_TOL * sq:
                    res[t] = np.nan
                elif order == 3:
                    res[t] = np.sqrt((kk - 1.0) * m2) * kk * m3 / ((kk - 2.0) * m2 * m2)
                else:
                    t4 = a4 + e * (4.0 * a3 + e * (6.0 * a2 + e * (4.0 * a1 + na * e))) + p4
                    m4 = t4 - mu * (4.0 * t3 - mu * (6.0 * t2 - 3.0 * mu * t1))
                    mm = m2 * m2
                    res[t] = (
                        ((kk + 1.0) * (kk * m4 - 3.0 * mm) + 6.0 * mm)
                        * (kk - 1.0)
                        / ((kk - 2.0) * (kk - 3.0) * mm)
                    )
            if r1 >= n:
                break
            # backward: the suffixes of run r, for run r + 1
            k = 0.0
            c = np.nan
            p1 = 0.0
            p2 = 0.0
            p3 = 0.0
            p4 = 0.0
            for t in range(r1 - 1, r0 - 1, -1):
                v = x[t]
                if v == v:
                    if order == 1:
                        p1 += v
                    else:
                        if k == 0.0:
                            c = v
                        d = v - c
                        d2 = d * d
                        p1 += d
                        p2 += d2
                        p3 += d2 * d
                        p4 += d2 * d2
                    k += 1.0
                o = t - r0
                sk[o] = k
                s1[o] = p1
                s2[o] = p2
                s3[o] = p3
                s4[o] = p4
            sc = c
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dm_pair(a, b, window, min_count, corr):  # pragma: no cover - compiled
    # Date-major ``(n, m)`` pairs, the two-stack windows of :func:`_dm_moments`: per partial
    # window the count of pairs valid in both, the shifts (the partial's first valid pair in
    # scan order) and the sums of dx, dy, dx^2, dy^2, dx*dy about them.
    n, m = a.shape
    out = np.empty((n, m))
    w = window
    need = max(float(min_count), 2.0)
    rows = w if n > w else 1
    tile = max(1, min(m, _TILE))
    buf = np.zeros((8, rows, tile))  # k, cx, cy, sx, sy, sxx, syy, sxy of the suffixes
    cur = np.zeros((8, tile))  # the running prefix (forward) or suffix (backward)
    ck, cx, cy, sx, sy = cur[0], cur[1], cur[2], cur[3], cur[4]
    sxx, syy, sxy = cur[5], cur[6], cur[7]
    nrun = (n + w - 1) // w
    for j0 in range(0, m, tile):
        tw = min(m, j0 + tile) - j0
        for r in range(nrun):
            r0 = r * w
            r1 = min(n, r0 + w)
            for direction in range(2):
                if direction == 1 and r1 >= n:
                    continue
                cur[:, :] = 0.0
                for step in range(r1 - r0):
                    t = r0 + step if direction == 0 else r1 - 1 - step
                    xa = a[t, j0 : j0 + tw]
                    xb = b[t, j0 : j0 + tw]
                    for jj in range(tw):
                        u = xa[jj]
                        v = xb[jj]
                        ok = u == u and v == v
                        fresh = ck[jj] == 0.0
                        px = u if fresh else cx[jj]
                        py = v if fresh else cy[jj]
                        du = u - px if ok else 0.0
                        dv = v - py if ok else 0.0
                        cx[jj] = px if ok or not fresh else 0.0
                        cy[jj] = py if ok or not fresh else 0.0
                        ck[jj] += 1.0 if ok else 0.0
                        sx[jj] += du
                        sy[jj] += dv
                        sxx[jj] += du * du
                        syy[jj] += dv * dv
                        sxy[jj] += du * dv
                    if direction == 1:
                        buf[:, t - r0, :tw] = cur[:, :tw]
                        continue
                    o = t - r0 + 1
                    full = o < w and r > 0
                    q = buf[:, o if full else 0]
                    res = out[t, j0 : j0 + tw]
                    for jj in range(tw):
                        na = q[0, jj] if full else 0.0
                        nq = ck[jj]
                        k = na + nq
                        ex = q[1, jj] - (cx[jj] if nq > 0.0 else q[1, jj]) if na > 0.0 else 0.0
                        ey = q[2, jj] - (cy[jj] if nq > 0.0 else q[2, jj]) if na > 0.0 else 0.0
                        ax = q[3, jj] if full else 0.0
                        ay = q[4, jj] if full else 0.0
                        tx = ax + na * ex + sx[jj]
                        ty = ay + na * ey + sy[jj]
                        txx = (q[5, jj] if full else 0.0) + ex * (2.0 * ax + na * ex) + sxx[jj]
                        tyy = (q[6, jj] if full else 0.0) + ey * (2.0 * ay + na * ey) + syy[jj]
                        txy = (
                            (q[7, jj] if full else 0.0) + ex * ay + ey * ax + na * ex * ey + sxy[jj]
                        )
                        cxy = txy - tx * ty / k
                        if corr:
                            cxx = txx - tx * tx / k
                            cyy = tyy - ty * ty / k
                            # numerically constant x or y (relative to its sum of squares)
                            px = cx[jj] if nq > 0.0 else q[1, jj]
                            py = cy[jj] if nq > 0.0 else q[2, jj]
                            qx = txx + px * (2.0 * tx + k * px)
                            qy = tyy + py * (2.0 * ty + k * py)
                            ok = cxx > CONSTANT_TOL * qx and cyy > CONSTANT_TOL * qy
                            val = min(1.0, max(-1.0, cxy / np.sqrt(cxx * cyy)))
                        else:
                            ok = True
                            val = cxy / (k - 1.0)
                        res[jj] = val if ok and k >= need else np.nan
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dm_extreme(head, body, window, min_count, is_max):  # pragma: no cover - compiled
    # van Herk / Gil-Werman over the rows of ``head`` then ``body``: prefix and suffix
    # extremes within runs of ``window`` rows, so each output is the extreme of one suffix and
    # one prefix (3 comparisons per cell, any window). NaN is skipped (``fmax`` semantics); a
    # running count enforces ``min_count``.
    h = head.shape[0]
    nb, m = body.shape
    n = h + nb
    sg = 1.0 if is_max else -1.0  # compare sg * x so one branch-free loop serves both
    lo = max(0, h - window + 1)  # first row whose suffix an output needs
    suf = np.empty((n - lo, m))
    for t in range(n - 1, lo - 1, -1):
        x = head[t] if t < h else body[t - h]
        q = suf[t - lo]
        if t == n - 1 or t % window == window - 1:
            q[:] = x
        else:
            c = suf[t + 1 - lo]
            for j in range(m):
                q[j] = x[j] if (sg * x[j] > sg * c[j]) | (c[j] != c[j]) else c[j]
    out = np.empty((nb, m))
    cur = np.empty(m)
    k = np.zeros(m)
    need = max(float(min_count), 1.0)
    for t in range(n):
        x = head[t] if t < h else body[t - h]
        if t % window == 0:
            cur[:] = x
        else:
            for j in range(m):
                cur[j] = x[j] if (sg * x[j] > sg * cur[j]) | (cur[j] != cur[j]) else cur[j]
        for j in range(m):
            k[j] += 0.0 if np.isnan(x[j]) else 1.0
        if t >= window:
            y = head[t - window] if t - window < h else body[t - window - h]
            for j in range(m):
                k[j] -= 0.0 if np.isnan(y[j]) else 1.0
        if t < h:
            continue
        p = out[t - h]
        s = t - window + 1
        if s > 0:
            q = suf[s - lo]
            for j in range(m):
                p[j] = q[j] if (sg * q[j] > sg * cur[j]) | (cur[j] != cur[j]) else cur[j]
        else:
            p[:] = cur
        for j in range(m):
            p[j] = p[j] if k[j] >= need else np.nan
    return out


def _moments(a, head, window: int, min_count: int, kind: int, out=None) -> np.ndarray:
    head, body = _dm(a, head)
    if out is None:
        out = np.empty(body.shape)
    _dm_moments(head, body, window, min_count, kind, out)
    return out


def _dm(a: np.ndarray, head: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    body = np.ascontiguousarray(a, dtype=np.float64)
    if head is None:
        return np.empty((0,) + body.shape[1:]), body
    return np.ascontiguousarray(head, dtype=np.float64), body


_DM_DOC = """Date-major :func:`{name}`: time along axis 0 of ``a`` (``(n_dates, m)``).

    ``head``, optional: the ``(h, m)`` rows before ``a`` (history the windows see; no output
    rows for them), as if ``np.concatenate([head, a])`` were passed and its first ``h``
    output rows dropped.
    """


def dm_move_sum(
    a: np.ndarray, window: int, min_count: int, head: np.ndarray | None = None
) -> np.ndarray:
    return _moments(a, head, window, min_count, _SUM)


def dm_move_mean(
    a: np.ndarray, window: int, min_count: int, head: np.ndarray | None = None
) -> np.ndarray:
    return _moments(a, head, window, min_count, _MEAN)


def dm_move_var(
    a: np.ndarray, window: int, min_count: int, head: np.ndarray | None = None
) -> np.ndarray:
    return _moments(a, head, window, min_count, _VAR)


def dm_move_std(
    a: np.ndarray, window: int, min_count: int, head: np.ndarray | None = None
) -> np.ndarray:
    return _moments(a, head, window, min_count, _STD)


def dm_move_skew(
    a: np.ndarray, window: int, min_count: int, head: np.ndarray | None = None
) -> np.ndarray:
    return _moments(a, head, window, min_count, _SKEW)


def dm_move_kurt(
    a: np.ndarray, window: int, min_count: int, head: np.ndarray | None = None
) -> np.ndarray:
    return _moments(a, head, window, min_count, _KURT)


def dm_move_max(
    a: np.ndarray, window: int, min_count: int, head: np.ndarray | None = None
) -> np.ndarray:
    return _dm_extreme(*_dm(a, head), window, min_count, True)


def dm_move_min(
    a: np.ndarray, window: int, min_count: int, head: np.ndarray | None = None
) -> np.ndarray:
    return _dm_extreme(*_dm(a, head), window, min_count, False)


for _f, _twin in (
    (dm_move_sum, "move_sum"),
    (dm_move_mean, "move_mean"),
    (dm_move_var, "move_var"),
    (dm_move_std, "move_std"),
    (dm_move_skew, "move_skew"),
    (dm_move_kurt, "move_kurt"),
    (dm_move_max, "move_max"),
    (dm_move_min, "move_min"),
):
    _f.__doc__ = _DM_DOC.format(name=_twin)


@numba.njit(cache=True, nogil=True, inline="always")
def _bit_add(tree, pos, delta):  # pragma: no cover - compiled
    size = tree.shape[0] - 1
    while pos <= size:
        tree[pos] += delta
        pos += pos & (-pos)


@numba.njit(cache=True, nogil=True, inline="always")
def _bit_sum(tree, pos):  # pragma: no cover - compiled
    total = 0
    while pos > 0:
        total += tree[pos]
        pos -= pos & (-pos)
    return total


@numba.njit(cache=True, nogil=True, inline="always")
def _bit_kth(tree, k, top):  # pragma: no cover - compiled
    """0-based index of the k-th smallest (k >= 1) element counted in the tree."""
    size = tree.shape[0] - 1
    pos = 0
    step = top
    while step > 0:
        nxt = pos + step
        if nxt <= size and tree[nxt] < k:
            pos = nxt
            k -= tree[nxt]
        step >>= 1
    return pos


@_dual
def _move_order_stat(order, srt, window, min_count, q, kind):  # pragma: no cover
    # Fenwick tree over each row's distinct values: O(n log n) per row whatever the window.
    # ``order``/``srt``: the row's argsort (NaN last) and sorted values, from the radix key
    # sort of :mod:`quantdask.kernels.rank` (numba's own sort is several times slower).
    # kind 0: linear-interpolated quantile q; kind 1: percentile of the last value (0..100);
    # kind 2: rank of the last value in [0, 1].
    m, n = srt.shape
    out = np.full((m, n), np.nan)
    for i in numba.prange(m):
        codes = np.full(n, -1, dtype=np.int64)
        uniq = np.empty(n)
        size = 0
        for j in range(n):
            v = srt[i, j]
            if np.isnan(v):
                break
            if size == 0 or v != uniq[size - 1]:
                uniq[size] = v
                size += 1
            codes[order[i, j]] = size - 1
        if size == 0:
            continue
        tree = np.zeros(size + 1, dtype=np.int64)
        top = 1
        while top * 2 <= size:
            top *= 2
        k = 0
        for t in range(n):
            if t >= window:
                c = codes[t - window]
                if c >= 0:
                    _bit_add(tree, c + 1, -1)
                    k -= 1
            c = codes[t]
            if c >= 0:
                _bit_add(tree, c + 1, 1)
                k += 1
            if k < min_count or k == 0:
                continue
            if kind == 0:
                pos = q * (k - 1)
                lo = int(np.floor(pos))
                frac = pos - lo
                v = uniq[_bit_kth(tree, lo + 1, top)]
                if frac > 0.0 and lo + 1 < k:
                    v = v + frac * (uniq[_bit_kth(tree, lo + 2, top)] - v)
                out[i, t] = v
            elif c >= 0:
                less = _bit_sum(tree, c)
                leq = _bit_sum(tree, c + 1)
                if kind == 1:
                    out[i, t] = 100.0 * (less + leq) / (2.0 * k)
                elif k == 1:
                    out[i, t] = 0.5
                else:  # average rank r = less + (leq - less + 1) / 2; (r - 1) / (k - 1)
                    out[i, t] = (less + leq - 1) / (2.0 * (k - 1))
    return out


def _order_stat(a: np.ndarray, window: int, min_count: int, q: float, kind: int) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    # the radix key sort of kernels.rank: ~4x faster than np.argsort on 512 x 2,273 blocks
    order = argsort_rows(a, nan_only=True)
    srt = np.take_along_axis(a, order, axis=1)
    return _move_order_stat(order, srt, window, min_count, q, kind)


def move_quantile(a: np.ndarray, window: int, min_count: int, q: float) -> np.ndarray:
    """Moving quantile ``q`` with linear interpolation (as pandas ``rolling().quantile(q)``)."""
    return _order_stat(a, window, min_count, q, 0)


def move_percentile(a: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Percentile (0..100) of the last value among the window's valid values, ties half.

    ``100 * (#{v < x} + 0.5 * #{v == x}) / k`` over the ``k`` valid values ``v`` of the window
    (the last value ``x`` included), i.e. ``scipy.stats.percentileofscore(window, x,
    kind="mean")``. NaN when the last value is NaN.
    """
    return _order_stat(a, window, min_count, 0.0, 1)


#: Number of state columns of :func:`streak_scan`.
STREAK_STATE = 5


def streak_init(m: int) -> np.ndarray:
    """Initial state of :func:`streak_scan` for ``m`` series (no bar seen yet)."""
    state = np.full((m, STREAK_STATE), np.nan)
    return state


def streak_scan(
    a: np.ndarray, period: np.ndarray, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Signed up/down streak of bar closes, bars given by ``period`` ids, with carried state.

    Parameters
    ----------
    a : numpy.ndarray
        ``(m, n)`` closes, NaN on days without a trade.
    period : numpy.ndarray
        ``(n,)`` float64 period id of each step (equal ids = same bar; ids increase).
    state : numpy.ndarray, optional
        ``(m, 5)`` state returned by the previous block (default: nothing seen yet).

    Returns
    -------
    out : numpy.ndarray
        At each traded step, the streak of the bar in progress: the close of the current
        (partial) bar so far is compared with the last completed bar's close; +k for the k-th
        consecutive up bar, -k for down, 0 when unchanged, NaN when there is no earlier bar or
        the step has no trade.
    state : numpy.ndarray
        State to pass with the next block.
    """
    out, new_state = dm_streak_scan(np.asarray(a, dtype=np.float64).T, period, state)
    return np.ascontiguousarray(out.T), new_state


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _streak_scan_dm(a, period, state):  # pragma: no cover - compiled
    # Time on axis 0, one state row per series (see :func:`streak_scan`); branch-free column
    # loop (selects), so it runs on the stored (date, asset) block as it is.
    n, m = a.shape
    out = np.empty((n, m))
    prev_close = state[:, 0].copy()
    prev_streak = state[:, 1].copy()
    cur_period = state[:, 2].copy()
    cur_close = state[:, 3].copy()
    cur_streak = state[:, 4].copy()
    for t in range(n):
        p = period[t]
        x = a[t]
        o = out[t]
        for j in range(m):
            new_bar = p != cur_period[j]
            roll = new_bar and not np.isnan(cur_close[j])
            prev_close[j] = cur_close[j] if roll else prev_close[j]
            prev_streak[j] = cur_streak[j] if roll else prev_streak[j]
            cur_period[j] = p
            cur_close[j] = np.nan if new_bar else cur_close[j]
            cur_streak[j] = np.nan if new_bar else cur_streak[j]
            v = x[j]
            ok = not np.isnan(v)
            d = v - prev_close[j]  # NaN without an earlier bar: no streak
            ps = prev_streak[j]
            up = ps + 1.0 if ps > 0.0 else 1.0
            down = ps - 1.0 if ps < 0.0 else -1.0
            s = up if d > 0.0 else (down if d < 0.0 else (0.0 if d == 0.0 else np.nan))
            cur_close[j] = v if ok else cur_close[j]
            cur_streak[j] = s if ok else cur_streak[j]
            o[j] = s if ok else np.nan
    new_state = np.empty((m, STREAK_STATE))
    new_state[:, 0] = prev_close
    new_state[:, 1] = prev_streak
    new_state[:, 2] = cur_period
    new_state[:, 3] = cur_close
    new_state[:, 4] = cur_streak
    return out, new_state


def dm_streak_scan(
    a: np.ndarray, period: np.ndarray, state: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Date-major :func:`streak_scan`: ``a`` is ``(n_dates, m)``, time along axis 0.

    Same ``period`` and ``(m, 5)`` state as :func:`streak_scan` (which runs this kernel on
    the transposed array).
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    if state is None:
        state = streak_init(a.shape[1])
    return _streak_scan_dm(a, np.ascontiguousarray(period, dtype=np.float64), state)


@_dual
def _ewm_scan(a, alpha, min_count, ignore_na, state):  # pragma: no cover - compiled
    m, n = a.shape
    out = np.full((m, n), np.nan)
    new_state = state.copy()
    decay = 1.0 - alpha
    for i in numba.prange(m):
        wsum = state[i, 0]
        wtot = state[i, 1]
        nobs = state[i, 2]
        for t in range(n):
            x = a[i, t]
            if np.isnan(x):
                if ignore_na:
                    continue
                wsum *= decay
                wtot *= decay
            else:
                wsum = wsum * decay + x
                wtot = wtot * decay + 1.0
                nobs += 1.0
            if nobs >= min_count and wtot > 0.0:
                out[i, t] = wsum / wtot
        new_state[i, 0] = wsum
        new_state[i, 1] = wtot
        new_state[i, 2] = nobs
    return out, new_state


def ewm_mean_scan(
    a: np.ndarray,
    alpha: float,
    min_count: int,
    ignore_na: bool,
    state: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exponentially weighted mean (pandas ``ewm(alpha=..., adjust=True)``) with carried state.

    ``ignore_na=False`` decays weights across missing steps (pandas default) and reports the
    current mean on them; ``ignore_na=True`` skips missing steps entirely and reports NaN on
    them. ``min_count`` counts valid observations seen so far. ``state`` is ``(m, 3)``.
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    if state is None:
        state = np.zeros((a.shape[0], 3))
    return _ewm_scan(a, float(alpha), float(min_count), bool(ignore_na), state)


#: Time-last kernel -> its date-major twin (same results), for callers holding date-major
#: blocks (:func:`quantdask.ops._overlap.trailing_overlap`).
DATE_MAJOR: dict = {
    move_sum: dm_move_sum,
    move_mean: dm_move_mean,
    move_var: dm_move_var,
    move_std: dm_move_std,
    move_skew: dm_move_skew,
    move_kurt: dm_move_kurt,
    move_max: dm_move_max,
    move_min: dm_move_min,
}
