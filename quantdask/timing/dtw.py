"""DTW similarity timing: distance, LB_Keogh, nearest-neighbour search and the per-date signal."""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

import dask
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.kernels import dtw as _k

Constraint = Literal["sakoe_chiba", "itakura"] | None
Normalize = Literal["zscore", "first", "none"]

_CODES = {None: _k.NONE, "sakoe_chiba": _k.SAKOE_CHIBA, "itakura": _k.ITAKURA}
_NORMS = {"zscore": _k.NORM_ZSCORE, "first": _k.NORM_FIRST, "none": _k.NORM_NONE}
#: Default Itakura slope when ``slope`` is None.
DEFAULT_SLOPE = 2.0


def _as_1d(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected a 1-D numeric array: {err}") from err
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _band(
    n: int, m: int, constraint: Constraint, radius: int | None, slope: float | None
) -> tuple[np.ndarray, np.ndarray]:
    try:
        return _band_cached(n, m, constraint, radius, slope)
    except TypeError:  # unhashable parameter: validate uncached (raises the right error)
        return _band_uncached(n, m, constraint, radius, slope)


def _band_uncached(
    n: int, m: int, constraint: Constraint, radius: int | None, slope: float | None
) -> tuple[np.ndarray, np.ndarray]:
    if constraint not in _CODES:
        raise ValueError(f"constraint must be None, 'sakoe_chiba' or 'itakura', got {constraint!r}")
    if constraint != "sakoe_chiba" and radius is not None:
        raise ValueError(f"radius applies to constraint='sakoe_chiba' only, got {constraint!r}")
    if constraint != "itakura" and slope is not None:
        raise ValueError(f"slope applies to constraint='itakura' only, got {constraint!r}")
    if constraint == "sakoe_chiba":
        if radius is None:
            radius = default_radius(max(n, m))
        if isinstance(radius, bool) or not isinstance(radius, int | np.integer) or radius < 0:
            raise ValueError(f"radius must be a non-negative int, got {radius!r}")
        return _k.band(n, m, _k.SAKOE_CHIBA, radius=int(radius))
    if constraint == "itakura":
        s = DEFAULT_SLOPE if slope is None else slope
        if isinstance(s, bool) or not isinstance(s, int | float | np.number) or not s >= 1:
            raise ValueError(f"slope must be a number >= 1, got {slope!r}")
        if (m - 1) > s * (n - 1) + 1e-9 or (n - 1) > s * (m - 1) + 1e-9:
            raise ValueError(
                f"itakura slope {s} cannot align lengths {n} and {m} (their ratio exceeds it)"
            )
        return _k.band(n, m, _k.ITAKURA, slope=float(s))
    return _k.band(n, m, _k.NONE)


@functools.lru_cache(maxsize=256)
def _band_cached(
    n: int, m: int, constraint: Constraint, radius: int | None, slope: float | None
) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _band_uncached(n, m, constraint, radius, slope)
    lo.flags.writeable = False
    hi.flags.writeable = False
    return lo, hi


def default_radius(length: int) -> int:
    """Default Sakoe-Chiba radius: 10% of the (longer) series length, at least 1."""
    return max(1, math.ceil(0.1 * length))


def dtw_distance(
    a: Any,
    b: Any,
    *,
    constraint: Constraint = None,
    radius: int | None = None,
    slope: float | None = None,
) -> float:
    """Dynamic time warping distance between two 1-D series.

    Parameters
    ----------
    a, b : array-like
        1-D finite numeric series; lengths may differ.
    constraint : {None, "sakoe_chiba", "itakura"}, default None
        Global constraint on the warping path. None: unconstrained.
        ``"sakoe_chiba"``: band ``i - r - max(0, n - m) <= j <= i + r + max(0, m - n)``
        (``|i - j| <= r`` for equal lengths). ``"itakura"``: parallelogram with sides of
        slope ``s`` and ``1 / s`` through both corners.
    radius : int, optional
        Sakoe-Chiba radius ``r``; default 10% of the longer length (at least 1).
    slope : float, optional
        Itakura maximum slope ``s >= 1``; default 2.

    Returns
    -------
    float
        ``sqrt`` of the minimal sum of squared differences ``(a[i] - b[j]) ** 2`` over the
        admissible warping paths (steps right, down, diagonal; equal weights), i.e. the
        dtaidistance convention: ``dtw_distance(a, b, constraint="sakoe_chiba", radius=r)``
        equals ``dtaidistance.dtw.distance(a, b, window=r + 1)``. ``inf`` when the
        constraint admits no path (possible with Itakura on short, unequal series).

    Raises
    ------
    ValueError
        Unknown constraint, a radius/slope with the wrong constraint, a negative radius, a
        slope below 1 or too small for the length ratio, non-finite or empty input.
    TypeError
        Non-numeric input.

    Notes
    -----
    O(n * band width) time, O(m) memory (numba, :func:`quantdask.kernels.dtw.dtw_sq`).

    Examples
    --------
    >>> import quantdask as qd
    >>> qd.dtw_distance([0.0, 1.0, 2.0], [0.0, 0.0, 1.0, 2.0])
    0.0
    """
    x = _as_1d(a, "a")
    y = _as_1d(b, "b")
    lo, hi = _band(len(x), len(y), constraint, radius, slope)
    return float(math.sqrt(_k.dtw_sq(x, y, lo, hi, np.inf)))


def lb_keogh(query: Any, candidate: Any, radius: int) -> float:
    """LB_Keogh lower bound of the Sakoe-Chiba DTW distance between equal-length series.

    Parameters
    ----------
    query : array-like
        1-D series whose envelope ``U[j] = max(query[j - r : j + r + 1])``, ``L[j]`` the min,
        is taken.
    candidate : array-like
        1-D series of the same length.
    radius : int
        Band radius ``r >= 0``.

    Returns
    -------
    float
        ``sqrt(sum_j (c_j - U_j)^2 [c_j > U_j] + (L_j - c_j)^2 [c_j < L_j])``; never above
        ``dtw_distance(query, candidate, constraint="sakoe_chiba", radius=radius)``.

    Examples
    --------
    >>> from quantdask.timing import lb_keogh
    >>> lb_keogh([0.0, 0.0, 0.0], [0.0, 2.0, 0.0], 1)
    2.0
    """
    q = _as_1d(query, "query")
    c = _as_1d(candidate, "candidate")
    if len(q) != len(c):
        raise ValueError(f"query and candidate lengths differ: {len(q)} vs {len(c)}")
    lo, hi = _band(len(q), len(q), "sakoe_chiba", radius, None)
    upper, lower = _k.envelope(q, lo, hi)
    return float(math.sqrt(_k.lb_keogh_sq(c, upper, lower, np.inf)))


def dtw_knn(
    query: Any,
    candidates: Any,
    *,
    k: int,
    constraint: Constraint = "sakoe_chiba",
    radius: int | None = None,
    slope: float | None = None,
    prune: bool = True,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The ``k`` candidate rows nearest to ``query`` by DTW, with LB_Keogh pruning.

    Parameters
    ----------
    query : array-like, shape (m,)
    candidates : array-like, shape (n, m)
        One candidate series per row, same length as the query.
    k : int
        Number of neighbours (``1 <= k``).
    constraint, radius, slope
        As in :func:`dtw_distance` (the envelope uses the same band).
    prune : bool, default True
        Skip full DTW when LB_Keogh is at least the current k-th best distance, and abandon
        DTW early once a whole row exceeds it. The neighbours are the same either way.

    Returns
    -------
    distances : numpy.ndarray, shape (min(k, n),)
        Ascending DTW distances.
    indices : numpy.ndarray, shape (min(k, n),)
        Candidate rows. Ties keep the earlier row.
    n_dtw : int
        Full DTW computations performed (``n`` without pruning).
    """
    q = _as_1d(query, "query")
    c = np.ascontiguousarray(np.asarray(candidates, dtype=np.float64))
    if c.ndim != 2 or c.shape[1] != len(q):
        raise ValueError(f"candidates must have shape (n, {len(q)}), got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("candidates: contains NaN or infinite values")
    k = _check_pos_int(k, "k")
    lo, hi = _band(len(q), len(q), constraint, radius, slope)
    upper, lower = _k.envelope(q, lo, hi)
    if prune:
        cupper, clower = _k.envelopes(c, lo, hi)
    else:
        cupper = clower = np.empty((0, len(q)))
    seeds = np.empty(0, np.int64)
    d, i, n = _k.knn_sq(
        q, c, c.shape[0], k, lo, hi, upper, lower, bool(prune), cupper, clower, seeds
    )
    keep = i >= 0
    return np.sqrt(d[keep]), i[keep], int(n)


def _check_pos_int(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return int(v)


def _as_series(series: Any) -> pd.Series:
    if isinstance(series, xr.DataArray):
        if series.ndim != 1:
            raise ValueError(f"series: expected a 1-D DataArray over dates, got dims {series.dims}")
        dim = series.dims[0]
        s = pd.Series(np.asarray(series.values, dtype=np.float64), index=series[dim].to_index())
    elif isinstance(series, pd.Series):
        s = series.astype(np.float64)
    else:
        raise TypeError(
            f"series: expected a pandas Series or 1-D DataArray over dates, got {type(series).__name__}"
        )
    if not s.index.is_monotonic_increasing or s.index.has_duplicates:
        raise ValueError("series: the date index must be strictly increasing")
    v = s.to_numpy()
    ok = np.isfinite(v)
    if np.any(v[ok] <= 0):
        raise ValueError("series: prices must be positive (forward returns are ratios)")
    return s


def signal_rule(expected: np.ndarray, dispersion: np.ndarray, threshold: float) -> np.ndarray:
    """Long / flat / short: +1 when ``expected > threshold * dispersion``, -1 when
    ``expected < -threshold * dispersion``, else 0 (also 0 where either is NaN)."""
    e = np.asarray(expected, dtype=np.float64)
    d = np.asarray(dispersion, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        sig = np.where(e > threshold * d, 1, np.where(e < -threshold * d, -1, 0))
    sig[~(np.isfinite(e) & np.isfinite(d))] = 0
    return sig.astype(np.int8)


def _block(x: np.ndarray, targets: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, ...]:
    return _k.dtw_timing_kernel(x, targets, **params)


def dtw_timing(
    series: pd.Series | xr.DataArray,
    *,
    window: int,
    horizon: int,
    k: int,
    constraint: Constraint = "sakoe_chiba",
    radius: int | None = None,
    slope: float | None = None,
    threshold: float = 0.25,
    normalize: Normalize = "zscore",
    prune: bool = True,
    block_size: int = 250,
    eps: float = 1e-8,
) -> pd.DataFrame:
    """DTW nearest-neighbour timing signal for every date of a price series.

    Parameters
    ----------
    series : pandas.Series or xarray.DataArray
        Positive prices (e.g. an index close) over a strictly increasing date index (a 1-D
        DataArray over its one dim). NaN dates are dropped before matching and come back as
        NaN rows (signal 0).
    window : int
        Length ``m`` of the pattern (days ending at ``t``, inclusive).
    horizon : int
        Forward horizon ``h`` in days of the neighbours' outcome ``p[e + h] / p[e] - 1``.
    k : int
        Number of nearest neighbours.
    constraint, radius, slope
        DTW constraint, as in :func:`quantdask.dtw_distance` (default Sakoe-Chiba, radius
        10% of ``window``).
    threshold : float, default 0.25
        Signal rule: +1 (long) when ``expected_return > threshold * dispersion``, -1 (short)
        when ``expected_return < -threshold * dispersion``, 0 (flat) otherwise.
    normalize : {"zscore", "first", "none"}, default "zscore"
        Path normalisation of each window before matching: ``(w - mean(w)) / std(w)``
        (population std; a flat window becomes zeros), ``w / w[0]`` (path relative to its
        first day), or the raw prices.
    prune : bool, default True
        Nearest-neighbour search with pruning (same neighbours; only speed differs): the
        previous date's neighbours shifted by one day are tried first, then candidates in
        ascending LB_Keogh order until the bound exceeds the k-th best distance, with a
        reverse LB_Keogh check and early-abandoned DTW. False: full DTW to every candidate.
    block_size : int, default 250
        Dates per dask task.
    eps : float, default 1e-8
        Neighbour weight is ``1 / (distance + eps)``: an exact match (distance 0) gets a
        large finite weight instead of an infinite one.

    Returns
    -------
    pandas.DataFrame
        Indexed by the series' dates: ``expected_return`` (weighted mean of the neighbours'
        forward ``h``-day returns), ``dispersion`` (weighted population std of those returns,
        ``sqrt(sum w (r - mean)^2 / sum w)``), ``signal`` (int8 -1/0/1, rule above),
        ``n_candidates`` (windows eligible at ``t``) and ``n_dtw`` (DTW computations done;
        depends on ``prune`` and ``block_size``, the other columns do not). ``expected_return``/``dispersion`` are NaN while ``n_candidates < k``.

    Raises
    ------
    TypeError
        ``series`` is not a Series / DataArray.
    ValueError
        Bad parameters (non-positive window/horizon/k, unknown constraint or normalisation,
        non-positive prices, non-monotonic dates).

    Notes
    -----
    Lookback: the whole history (every earlier window is a candidate); the query uses the
    last ``window`` days ending at ``t``. No look-ahead: a candidate window ending at ``e``
    is used at ``t`` only when ``e + horizon <= t`` (its outcome is known at ``t``'s close),
    so the row at ``t`` reads only prices up to ``t`` and truncating the series after ``t``
    leaves it unchanged. The signal at ``t`` is meant for the return from ``t`` to ``t + 1``
    (see :func:`quantdask.timing.timing_backtest`).

    Distributed: the dates are split into blocks of ``block_size``; each block is one
    :func:`dask.delayed` task holding only the prices up to its last date, computed on the
    active dask client (threads scheduler when none). This function is a reduction point: it
    computes and returns an in-memory DataFrame. Cost per date: O(t) LB_Keogh bounds plus a
    few O(window * band) DTW computations with pruning, O(t * window * band) without.

    Examples
    --------
    >>> import numpy as np, pandas as pd, quantdask as qd
    >>> p = pd.Series(np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 300))),
    ...               index=pd.bdate_range("2020-01-01", periods=300))
    >>> out = qd.dtw_timing(p, window=20, horizon=5, k=5)
    >>> sorted(set(out["signal"].unique()) - {-1, 0, 1})
    []
    """
    s = _as_series(series)
    window = _check_pos_int(window, "window")
    horizon = _check_pos_int(horizon, "horizon")
    k = _check_pos_int(k, "k")
    block_size = _check_pos_int(block_size, "block_size")
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    if normalize not in _NORMS:
        raise ValueError(f"normalize must be 'zscore', 'first' or 'none', got {normalize!r}")
    if not (isinstance(threshold, int | float) and np.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if not (isinstance(eps, int | float) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    lo, hi = _band(window, window, constraint, radius, slope)
    params = {
        "m": window,
        "h": horizon,
        "k": k,
        "lo": lo,
        "hi": hi,
        "norm": _NORMS[normalize],
        "prune": bool(prune),
        "eps": float(eps),
    }
    valid = s.dropna()
    x = np.ascontiguousarray(valid.to_numpy(dtype=np.float64))
    t = len(x)
    tasks = []
    for b0 in range(0, t, block_size):  # one task per block of dates, not per date
        b1 = min(t, b0 + block_size)
        targets = np.arange(b0, b1, dtype=np.int64)
        tasks.append(dask.delayed(_block, pure=True)(x[:b1].copy(), targets, params))
    parts = dask.compute(*tasks) if tasks else []
    cols = [np.concatenate([p[i] for p in parts]) if parts else np.empty(0) for i in range(4)]
    out = pd.DataFrame(
        {
            "expected_return": cols[0].astype(np.float64),
            "dispersion": cols[1].astype(np.float64),
            "n_candidates": cols[2].astype(np.int64),
            "n_dtw": cols[3].astype(np.int64),
        },
        index=valid.index,
    )
    out["signal"] = signal_rule(
        out["expected_return"].to_numpy(), out["dispersion"].to_numpy(), threshold
    )
    out = out.reindex(s.index)
    out["signal"] = out["signal"].fillna(0).astype(np.int8)
    out[["n_candidates", "n_dtw"]] = out[["n_candidates", "n_dtw"]].fillna(0).astype(np.int64)
    out.index.name = s.index.name or "date"
    return out[["expected_return", "dispersion", "signal", "n_candidates", "n_dtw"]]
