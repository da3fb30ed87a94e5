"""Scoring math of the stock-selection models on plain numpy arrays.

Everything here works on in-memory ``(date, asset)`` arrays (rows = rebalance dates) and is
vectorised over dates and assets: the model layer computes factor panels on the rebalance
dates once (its documented reduction point) and hands them to these functions.

Percentile score (FACTORS.md section 4)
---------------------------------------
Within a comparison set on one date, a positive-direction factor scores
``100 * rank / n`` with ``rank`` the ascending rank (1 = lowest, ties get their average
rank) and ``n`` the number of valid values in the set; a negative-direction factor ranks the
negated values (highest value -> lowest score). Scores lie in ``(0, 100]``; missing values
score NaN and do not count in ``n``.
"""

from __future__ import annotations

import numpy as np

RULES: tuple[str, ...] = ("weighted_mean", "mean_over_5_plus_mean_over_std", "common_specific")
NORMALIZE: tuple[str, ...] = ("minmax", "rank", "none")


def _as_2d(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape
    if x.ndim == 1:
        x = x[None, :]
    elif x.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D (date, asset) array, got shape {shape}")
    return x, shape


def percentile_score(
    values: np.ndarray,
    *,
    direction: int = 1,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Percentile scores ``100 * rank / n`` within each row (and group), ties averaged.

    Parameters
    ----------
    values : numpy.ndarray
        ``(date, asset)`` (or 1-D ``(asset,)``) factor values; NaN = missing.
    direction : {1, -1}, default 1
        1: low -> high (the highest value scores 100); -1: high -> low.
    groups : numpy.ndarray, optional
        Integer comparison-set codes, same shape as ``values``; assets are ranked only
        against assets of the same code on the same row. Codes ``<= 0`` mean "in no set"
        (score NaN). Default: one set per row.

    Returns
    -------
    numpy.ndarray
        float64 scores in ``(0, 100]``, NaN where the value is missing or not in a set.

    Examples
    --------
    >>> percentile_score(np.array([3.0, 1.0, 2.0, 2.0]))
    array([100. ,  25. ,  62.5,  62.5])
    >>> percentile_score(np.array([3.0, 1.0, np.nan]), direction=-1)
    array([ 50., 100.,  nan])
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be 1 or -1, got {direction!r}")
    x, shape = _as_2d(values)
    if groups is None:
        g = np.ones(x.shape, dtype=np.int64)
    else:
        g = np.asarray(groups)
        if g.shape != shape:
            raise ValueError(f"groups shape {g.shape} does not match values shape {shape}")
        g = np.nan_to_num(g.reshape(x.shape).astype(np.float64), nan=0).astype(np.int64)
    out = np.full(x.shape, np.nan)
    valid = np.isfinite(x) & (g > 0)
    r_idx, c_idx = np.nonzero(valid)
    if r_idx.size == 0:
        return out.reshape(shape)
    v = x[r_idx, c_idx] * direction
    gg = g[r_idx, c_idx]
    order = np.lexsort((v, gg, r_idx))
    v, gg, rr = v[order], gg[order], r_idx[order]
    n = v.size
    pos = np.arange(n)
    # segments of equal (row, group)
    seg_start_flag = np.ones(n, dtype=bool)
    seg_start_flag[1:] = (rr[1:] != rr[:-1]) | (gg[1:] != gg[:-1])
    seg_id = np.cumsum(seg_start_flag) - 1
    seg_starts = pos[seg_start_flag]
    seg_sizes = np.diff(np.append(seg_starts, n))
    # runs of ties within a segment
    tie_flag = seg_start_flag.copy()
    tie_flag[1:] |= v[1:] != v[:-1]
    tie_id = np.cumsum(tie_flag) - 1
    tie_starts = pos[tie_flag]
    tie_ends = np.append(tie_starts[1:], n)  # exclusive
    local_start = tie_starts[tie_id] - seg_starts[seg_id]
    local_end = tie_ends[tie_id] - seg_starts[seg_id]
    avg_rank = (local_start + 1 + local_end) / 2.0  # mean of ranks start+1 .. end
    score = 100.0 * avg_rank / seg_sizes[seg_id]
    out[r_idx[order], c_idx[order]] = score
    return out.reshape(shape)


def _check_weights(weights: np.ndarray, k: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        if w.shape[0] != k:
            raise ValueError(f"got {w.shape[0]} weights for {k} score arrays")
    elif w.shape[0] != k:
        raise ValueError(f"weights' first axis has {w.shape[0]} entries for {k} score arrays")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and non-negative")
    return w


def weighted_mean(scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of factor scores over the available (non-NaN) ones.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(k, ...)``: ``k`` factor-score arrays stacked on the first axis.
    weights : numpy.ndarray, optional
        ``(k,)`` or ``(k, ...)`` (broadcast against ``scores``; per-asset weights, e.g. by
        industry family); default equal.

    Returns
    -------
    numpy.ndarray
        ``sum(w * s) / sum(w)`` over the scores that are not NaN; NaN when none is (or their
        weights sum to 0).
    """
    s = np.asarray(scores, dtype=np.float64)
    w = np.ones(s.shape[0]) if weights is None else _check_weights(weights, s.shape[0])
    w = w.reshape(w.shape + (1,) * (s.ndim - w.ndim))
    w = np.broadcast_to(w, s.shape)
    ok = np.isfinite(s)
    num = np.where(ok, s * w, 0.0).sum(axis=0)
    den = np.where(ok, w, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def mean_over_5_plus_mean_over_std(
    scores: np.ndarray, *, std_floor: float = 1.0, ddof: int = 0, min_count: int = 2
) -> np.ndarray:
    """The technology model's balance rule ``mean(S) / 5 + mean(S) / std(S)``.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(k, ...)`` factor scores (0..100) stacked on the first axis.
    std_floor : float, default 1.0
        Lower bound of ``std(S)`` (in score points), so identical scores do not divide by 0.
    ddof : int, default 0
        Degrees of freedom of the standard deviation (0 = population std).
    min_count : int, default 2
        Minimum number of available scores; fewer gives NaN (a std needs two).

    Returns
    -------
    numpy.ndarray
        The rule over the available scores of each asset (NaN where fewer than
        ``min_count``). Rewards high *and* balanced profiles.
    """
    s = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(s)
    cnt = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, s, 0.0).sum(axis=0) / cnt
        dev = np.where(ok, (s - mean) ** 2, 0.0).sum(axis=0)
        std = np.sqrt(dev / (cnt - ddof))
    std = np.maximum(std, std_floor)
    out = mean / 5.0 + mean / std
    return np.where(cnt >= max(min_count, ddof + 1), out, np.nan)


def normalize(x: np.ndarray, *, method: str = "minmax") -> np.ndarray:
    """Rescale each row to 0..100.

    Parameters
    ----------
    x : numpy.ndarray
        ``(date, asset)`` or 1-D.
    method : {"minmax", "rank", "none"}, default "minmax"
        ``"minmax"``: ``100 * (x - min) / (max - min)`` per row (all-equal rows -> 50);
        ``"rank"``: the percentile score of :func:`percentile_score`; ``"none"``: unchanged.

    Returns
    -------
    numpy.ndarray
    """
    if method not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, got {method!r}")
    if method == "none":
        return np.asarray(x, dtype=np.float64)
    if method == "rank":
        return percentile_score(x)
    a, shape = _as_2d(x)
    ok = np.isfinite(a)
    lo = np.min(np.where(ok, a, np.inf), axis=1, keepdims=True)
    hi = np.max(np.where(ok, a, -np.inf), axis=1, keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(span > 0, 100.0 * (a - lo) / span, 50.0)
    return np.where(ok, out, np.nan).reshape(shape)


def common_specific(
    common: np.ndarray,
    specific: np.ndarray,
    *,
    common_weight: float = 0.3,
    specific_weight: float = 0.7,
    normalize_method: str = "minmax",
) -> np.ndarray:
    """Mix a common-factor score and a specific-factor score, then rescale to 0..100.

    Parameters
    ----------
    common, specific : numpy.ndarray
        ``(date, asset)`` group scores (e.g. weighted means of percentile scores).
    common_weight, specific_weight : float
        Mixing weights (normalised to sum 1): 0.3/0.7 for the SOE model, 2/1 for consumer.
    normalize_method : {"minmax", "rank", "none"}, default "minmax"
        Per-date rescaling of the mix (see :func:`normalize`).

    Returns
    -------
    numpy.ndarray
        ``normalize(cw * common + sw * specific)``; where one part is missing the other part
        alone is used, NaN when both are.
    """
    w = _check_weights(np.array([common_weight, specific_weight]), 2)
    if w.sum() <= 0:
        raise ValueError("common_weight + specific_weight must be > 0")
    mixed = weighted_mean(np.stack([common, specific]), w)
    return normalize(mixed, method=normalize_method)


def rd_multiplier(
    rd_to_mcap: np.ndarray,
    mcap: np.ndarray,
    industry: np.ndarray,
    *,
    low: float = 0.9,
    high: float = 1.1,
) -> np.ndarray:
    """Industry R&D multiplier ``low + (high - low) * normalize(sqrt(RDm_ind / RDm_mkt))``.

    Parameters
    ----------
    rd_to_mcap : numpy.ndarray
        ``(date, asset)`` R&D expense TTM / market cap of each stock (NaN = not in the set).
    mcap : numpy.ndarray
        ``(date, asset)`` market caps.
    industry : numpy.ndarray
        ``(date, asset)`` integer industry codes (``<= 0`` = none).
    low, high : float, default 0.9, 1.1
        Range of the multiplier.

    Returns
    -------
    numpy.ndarray
        Per stock: the multiplier of its industry. ``RDm_ind = sum(rd) / sum(mcap)`` over the
        industry's valid stocks on the date, ``RDm_mkt`` the same over all valid stocks,
        ``normalize`` min-max across the industries present on the date (1.0 midpoint when
        all industries are equal); NaN where a stock's inputs are missing.
    """
    r, shape = _as_2d(rd_to_mcap)
    m = _as_2d(mcap)[0]
    g = np.nan_to_num(_as_2d(industry)[0], nan=0).astype(np.int64)
    ok = np.isfinite(r) & np.isfinite(m) & (m > 0) & (g > 0)
    rd = np.where(ok, r * m, 0.0)
    mc = np.where(ok, m, 0.0)
    codes, inv = np.unique(np.where(ok, g, 0), return_inverse=True)
    inv = inv.reshape(g.shape)
    n_rows, n_codes = r.shape[0], codes.size
    key = np.arange(n_rows)[:, None] * n_codes + inv
    rd_ind = np.bincount(key[ok], weights=rd[ok], minlength=n_rows * n_codes)
    mc_ind = np.bincount(key[ok], weights=mc[ok], minlength=n_rows * n_codes)
    rd_mkt = rd.sum(axis=1, keepdims=True)
    mc_mkt = mc.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio_ind = (rd_ind / mc_ind).reshape(n_rows, n_codes)
        ratio_mkt = rd_mkt / mc_mkt
        ratio = np.sqrt(ratio_ind / ratio_mkt)
    present = (mc_ind.reshape(n_rows, n_codes) > 0) & (codes[None, :] > 0)
    ratio = np.where(present & np.isfinite(ratio), ratio, np.nan)
    norm = normalize(ratio, method="minmax") / 100.0
    mult = low + (high - low) * norm
    out = np.take_along_axis(mult, inv, axis=1)
    return np.where(ok, out, np.nan).reshape(shape)


def ps_multiplier(ps: np.ndarray, *, universe: np.ndarray | None = None) -> np.ndarray:
    """Price-to-sales multiplier ``1 / (PS_i - min(PS) + 1)`` per date.

    Parameters
    ----------
    ps : numpy.ndarray
        ``(date, asset)`` price-to-sales TTM.
    universe : numpy.ndarray, optional
        Boolean mask of the stocks over which ``min(PS)`` is taken (default: all valid).

    Returns
    -------
    numpy.ndarray
        In ``(0, 1]``: 1 for the cheapest stock of the date; NaN where PS is missing or not
        positive.
    """
    p, shape = _as_2d(ps)
    ok = np.isfinite(p) & (p > 0)
    if universe is not None:
        ok &= _as_2d(universe)[0].astype(bool)
    lo = np.min(np.where(ok, p, np.inf), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 / (p - lo + 1.0)
    return np.where(ok, out, np.nan).reshape(shape)


def group_median(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Median of ``x`` within each (row, group), broadcast back to the assets.

    Parameters
    ----------
    x : numpy.ndarray
        ``(date, asset)`` values.
    groups : numpy.ndarray
        ``(date, asset)`` integer codes (``<= 0`` = none -> NaN).

    Returns
    -------
    numpy.ndarray
    """
    a, shape = _as_2d(x)
    g = np.nan_to_num(_as_2d(groups)[0], nan=0).astype(np.int64)
    out = np.full(a.shape, np.nan)
    ok = np.isfinite(a) & (g > 0)
    r_idx, c_idx = np.nonzero(ok)
    if r_idx.size == 0:
        return out.reshape(shape)
    v, gg = a[r_idx, c_idx], g[r_idx, c_idx]
    order = np.lexsort((v, gg, r_idx))
    v, gg, rr = v[order], gg[order], r_idx[order]
    n = v.size
    start = np.ones(n, dtype=bool)
    start[1:] = (rr[1:] != rr[:-1]) | (gg[1:] != gg[:-1])
    seg = np.cumsum(start) - 1
    starts = np.flatnonzero(start)
    sizes = np.diff(np.append(starts, n))
    lo = starts + (sizes - 1) // 2
    hi = starts + sizes // 2
    med = (v[lo] + v[hi]) / 2.0
    out[r_idx[order], c_idx[order]] = med[seg]
    return out.reshape(shape)


__all__ = [
    "NORMALIZE",
    "RULES",
    "common_specific",
    "group_median",
    "mean_over_5_plus_mean_over_std",
    "normalize",
    "percentile_score",
    "ps_multiplier",
    "rd_multiplier",
    "weighted_mean",
]
