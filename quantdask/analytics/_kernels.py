"""Fused per-date kernels for factor analytics on plain numpy blocks (no xarray).

One call handles a block of dates: for each date (row) the finite factor values are sorted
once, and that order is reused for every horizon (the factor's ranks among the valid pairs
of a horizon are one linear walk over it) and for the quantile buckets. Only the forward
returns are sorted per horizon. Rank IC, Pearson IC and bucket means come out of the same
pass, so a report over ``H`` horizons costs ``1 + H`` sorts per date instead of ``3 H``
(``ic`` spearman: 2 sorts, ``quantile_returns``: 1 sort, per horizon).

Rows are sorted with :func:`quantdask.kernels.rank.argsort_rows` (numpy's vectorised
integer sort on order-preserving keys, non-finite cells last) and the compiled kernels walk
those orders; the average-rank walk is :func:`quantdask.kernels.rank.two_ranks`. The kernels are compiled
with ``nogil=True`` and run serially: dask runs date blocks in parallel threads.

:func:`forward_kernel` computes every forward-return horizon from one block of dates plus its
look-ahead rows in one pass. This module never imports xarray (like ``quantdask.kernels``).
"""

from __future__ import annotations

import numba
import numpy as np

from quantdask.kernels.rank import argsort_rows as _argsort_rows
from quantdask.kernels.rank import two_ranks as _two_ranks

#: Slots of the packed output's last axis before the quantile means.
RANK_IC, PEARSON_IC, N_STATS = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def _finite_in_order(vals, order, idx):  # pragma: no cover - compiled
    """The finite cells of ``vals`` in the given sort order (``order`` ascending, as from
    ``np.argsort``) into ``idx``; returns their count."""
    k = 0
    for u in range(order.shape[0]):
        j = order[u]
        if np.isfinite(vals[j]):
            idx[k] = j
            k += 1
    return k


@numba.njit(cache=True, nogil=True)
def _bucket_of(t, m, q):  # pragma: no cover - compiled
    """0-based bucket of doubled rank ``t`` among ``m`` values (pandas.qcut on the ranks)."""
    num = q * (t - 2)
    den = 2 * (m - 1)
    if den < 1:
        den = 1
    b = -((-num) // den) - 1  # ceil(num / den) - 1
    if b < 0:
        b = 0
    if b > q - 1:
        b = q - 1
    return b


@numba.njit(cache=True, nogil=True)
def report_kernel(
    x, y, ox_all, oy_all, q, want_rank, want_pearson, bucket_both
):  # pragma: no cover - compiled
    """Rank IC, Pearson IC and quantile-bucket mean returns for every (date, horizon).

    Parameters
    ----------
    x : float64 (r, n)
        Factor, one row per date.
    y : float64 (H, r, n)
        Forward returns, one slice per horizon.
    ox_all, oy_all : int64 (r, n), (H, r, n)
        ``np.argsort`` of ``x`` and ``y`` along the last axis (numpy's vectorised sort).
    q : int
        Number of buckets; 0 skips the bucket means.
    want_rank, want_pearson : bool
        Compute rank IC / Pearson IC (else left NaN).
    bucket_both : bool
        Buckets among the cells where factor and return are both finite (else among the
        cells with a finite factor).

    Returns
    -------
    float64 (r, H, 2 + q)
        ``[..., 0]`` rank IC, ``[..., 1]`` Pearson IC, ``[..., 2:]`` mean return per bucket
        (bucket 1 = lowest factor). NaN where undefined (fewer than 3 pairs, a constant
        side, an empty bucket, fewer than ``q`` values to bucket).
    """
    r, n = x.shape
    nh = y.shape[0]
    out = np.full((r, nh, N_STATS + q), np.nan)
    ox = np.empty(n, dtype=np.int64)
    pair = np.empty(n, dtype=np.int64)
    tx = np.empty(n, dtype=np.int64)  # doubled ranks of x among the current cells
    ty = np.empty(n, dtype=np.int64)
    bucket = np.full(n, -1, dtype=np.int64)
    tot = np.empty(max(q, 1))
    cnt = np.empty(max(q, 1), dtype=np.int64)
    for i in range(r):
        xi = x[i]
        k = _finite_in_order(xi, ox_all[i], ox)
        if q > 0 and not bucket_both:
            for j in range(n):
                bucket[j] = -1
            if k >= q:
                _two_ranks(xi, ox, k, tx)
                for u in range(k):
                    j = ox[u]
                    bucket[j] = _bucket_of(tx[j], k, q)
        for h in range(nh):
            yi = y[h, i]
            # valid pairs in the factor's sorted order: one walk, no new sort of x
            m = 0
            for u in range(k):
                j = ox[u]
                if np.isfinite(yi[j]):
                    pair[m] = j
                    m += 1
            o = out[i, h]
            if m >= 3 and want_pearson:
                sx = 0.0
                sy = 0.0
                for j in range(n):
                    if np.isfinite(xi[j]) and np.isfinite(yi[j]):
                        sx += xi[j]
                        sy += yi[j]
                mx = sx / m
                my = sy / m
                sxy = 0.0
                sxx = 0.0
                syy = 0.0
                for j in range(n):
                    if np.isfinite(xi[j]) and np.isfinite(yi[j]):
                        dx = xi[j] - mx
                        dy = yi[j] - my
                        sxy += dx * dy
                        sxx += dx * dx
                        syy += dy * dy
                if sxx > 0.0 and syy > 0.0:
                    o[PEARSON_IC] = min(1.0, max(-1.0, sxy / np.sqrt(sxx * syy)))
            need_tx = (m >= 3 and want_rank) or (q > 0 and bucket_both and m >= q)
            if need_tx:
                _two_ranks(xi, pair, m, tx)
            if m >= 3 and want_rank:
                # the valid pairs in the return's sorted order
                oyi = oy_all[h, i]
                mm = 0
                for u in range(n):
                    j = oyi[u]
                    if np.isfinite(yi[j]) and np.isfinite(xi[j]):
                        pair[mm] = j
                        mm += 1
                _two_ranks(yi, pair, m, ty)
                mean2 = m + 1.0  # mean of doubled ranks
                sxy = 0.0
                sxx = 0.0
                syy = 0.0
                for u in range(m):
                    j = pair[u]
                    dx = tx[j] - mean2
                    dy = ty[j] - mean2
                    sxy += dx * dy
                    sxx += dx * dx
                    syy += dy * dy
                if sxx > 0.0 and syy > 0.0:
                    o[RANK_IC] = min(1.0, max(-1.0, sxy / np.sqrt(sxx * syy)))
            if q > 0:
                for b in range(q):
                    tot[b] = 0.0
                    cnt[b] = 0
                if bucket_both:
                    if m >= q:
                        # tx holds the ranks among the valid pairs; sum in asset order
                        for j in range(n):
                            if np.isfinite(xi[j]) and np.isfinite(yi[j]):
                                b = _bucket_of(tx[j], m, q)
                                tot[b] += yi[j]
                                cnt[b] += 1
                else:
                    for j in range(n):
                        b = bucket[j]
                        if b >= 0 and np.isfinite(yi[j]):
                            tot[b] += yi[j]
                            cnt[b] += 1
                for b in range(q):
                    if cnt[b] > 0:
                        o[N_STATS + b] = tot[b] / cnt[b]
    return out


def report_block(
    x: np.ndarray,
    *ys: np.ndarray,
    quantiles: int,
    rank: bool = True,
    pearson: bool = True,
    bucket_both: bool = False,
) -> np.ndarray:
    """Packed statistics for a (date, asset) factor block and one (date, asset) block of
    returns per horizon.

    Returns float64 (date, H, 2 + quantiles); see :func:`report_kernel`. The factor is
    sorted once; each horizon is handled in turn (no stacked copy of the returns, and the
    sort indices of one horizon at a time).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    ox = _argsort_rows(x)
    parts = []
    for y in ys:  # one kernel call per horizon (a handful), not per date or asset
        y = np.ascontiguousarray(y, dtype=np.float64)[None]
        oy = _argsort_rows(y) if rank else np.zeros((1, 0, 0), dtype=np.int64)
        parts.append(
            report_kernel(
                x, y, ox, oy, int(quantiles), bool(rank), bool(pearson), bool(bucket_both)
            )
        )
    return np.concatenate(parts, axis=1)


@numba.njit(cache=True, nogil=True)
def forward_kernel(close, pre, susp, up, horizons, n_out, tol):  # pragma: no cover - compiled
    """Forward returns for every horizon from one block of dates and its look-ahead rows.

    Parameters
    ----------
    close, pre, up : float64 (d, a)
        Close, adjusted previous close and up limit (NaN: no limit), ``d >= n_out`` rows:
        the ``n_out`` output dates then up to ``max(horizons) + 1`` following dates (fewer at
        the end of the panel: windows that run past the last row are NaN).
    susp : bool (d, a)
        Suspended.
    horizons : int64 (H,)
    n_out : int
        Output rows.
    tol : float
        Up-limit tolerance (a close within ``tol`` of the limit blocks entry).

    Returns
    -------
    float64 (H, n_out, a)
        ``expm1(sum of log1p(daily return) over t+2 .. t+1+h)``, NaN where the entry at
        ``t + 1`` is blocked (no close, suspended, closed at the up limit) or the window
        passes the last row. Daily returns that are missing or <= -100% count as zero.
    """
    d, a = close.shape
    nh = horizons.shape[0]
    out = np.full((nh, n_out, a), np.nan)
    cum = np.empty((d, a))  # cum[t] = sum of the log growth of rows 0..t (local to the block)
    for t in range(d):
        for j in range(a):
            r = close[t, j] / pre[t, j] - 1.0
            g = np.log1p(r) if (np.isfinite(r) and r > -1.0) else 0.0
            cum[t, j] = g if t == 0 else cum[t - 1, j] + g
    for t in range(n_out):
        e = t + 1  # entry row
        if e >= d:
            break
        for j in range(a):
            c = close[e, j]
            if not np.isfinite(c) or susp[e, j]:
                continue
            u = up[e, j]
            if np.isfinite(u) and c >= u - tol:
                continue
            for k in range(nh):
                x = e + horizons[k]
                if x < d:
                    out[k, t, j] = np.expm1(cum[x, j] - cum[e, j])
    return out
