"""From a (date, asset) score panel to target weights on rebalance dates."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import dask
import numpy as np
import pandas as pd
import xarray as xr

Weighting = Literal["equal", "score", "mcap"]


def _take_dates(x: xr.DataArray, dates: pd.DatetimeIndex, name: str) -> xr.DataArray:
    if not isinstance(x, xr.DataArray):
        raise TypeError(f"{name}: expected an xarray.DataArray, got {type(x)!r}")
    if set(x.dims) != {"date", "asset"}:
        raise ValueError(f"{name}: expected dims ('date', 'asset'), got {x.dims}")
    have = pd.DatetimeIndex(x.indexes["date"])
    missing = dates.difference(have)
    if len(missing):
        raise ValueError(
            f"{name}: rebalance date {missing[0].date()} is not in its date coordinate "
            "(snap custom dates with qd.rebalance_dates first)"
        )
    return x.sel(date=dates).transpose("date", "asset")


def _cap_weights(w: np.ndarray, cap: float) -> np.ndarray:
    """Water-fill: ``min(cap, lam * w)`` with ``lam`` per row so each row keeps its sum.

    Vectorized over rows; iterates at most once per newly capped asset count.
    """
    total = w.sum(axis=1, keepdims=True)
    capped = np.zeros(w.shape, dtype=bool)
    out = w.copy()
    for _ in range(w.shape[1] + 1):
        free = ~capped & (w > 0)
        room = total - cap * capped.sum(axis=1, keepdims=True)
        base = np.where(free, w, 0.0).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(base > 0, room / base, 0.0)
        out = np.where(capped, cap, np.where(free, w * scale, 0.0))
        over = free & (out > cap * (1 + 1e-12))
        if not over.any():
            break
        capped |= over
    return out


def select_weights(
    scores: xr.DataArray,
    *,
    dates: Sequence[Any] | pd.DatetimeIndex,
    top: int | None = None,
    quantile: float | None = None,
    threshold: float | None = None,
    universe: xr.DataArray | None = None,
    weighting: Weighting = "equal",
    power: float = 1,
    cap: float | None = None,
    mcap: xr.DataArray | None = None,
) -> xr.DataArray:
    """Reduce a score panel to target portfolio weights on rebalance dates.

    Parameters
    ----------
    scores : xarray.DataArray
        Scores with dims ``(date, asset)``, higher is better; lazy (dask) or in memory.
        NaN means "not selectable".
    dates : sequence of date-like or pandas.DatetimeIndex
        Rebalance dates (e.g. from :func:`quantdask.rebalance_dates`); each must be in
        ``scores``' date coordinate.
    top : int, optional
        Keep the ``top`` highest scores per date. Ties are broken deterministically: equal
        scores are ordered by the asset coordinate's order (the first asset wins).
    quantile : float, optional
        Keep the top fraction ``quantile`` (0 < q <= 1) of the eligible assets per date:
        ``ceil(q * n_eligible)`` names, ties broken as for ``top``. Exclusive with ``top``.
    threshold : float, optional
        Keep only scores ``>= threshold`` (applied before ``top``/``quantile``).
    universe : xarray.DataArray, optional
        Boolean ``(date, asset)`` mask of the eligible stocks (missing assets are not
        eligible).
    weighting : {"equal", "score", "mcap"}, default "equal"
        ``"equal"``: ``1 / n``. ``"score"``: proportional to ``score ** power`` of the
        selected stocks; scores must be ``>= 0`` (percentile scores are), negative scores
        raise (rescale first, e.g. with a cross-sectional rank); when all selected scores
        are 0 on a date the weights fall back to equal. ``"mcap"``: proportional to
        ``mcap``; stocks with a missing or non-positive ``mcap`` are not eligible.
    power : float, default 1
        Exponent of the score weighting (3 for the SOE model: ``score**3 / sum(score**3)``).
    cap : float, optional
        Maximum weight per stock; the excess is redistributed to the uncapped stocks in
        proportion to their weights, iteratively, until no weight exceeds ``cap``.
    mcap : xarray.DataArray, optional
        ``(date, asset)`` market caps (e.g. ``market["daily"]["circ_mv"]``); required for
        ``weighting="mcap"``.

    Returns
    -------
    xarray.DataArray
        float64 weights named ``weight``, dims ``(date, asset)`` with ``date`` the rebalance
        dates and ``asset`` the scores' assets. Each date sums to 1, or is all zero when
        nothing is selectable on that date.

    Raises
    ------
    ValueError
        On a date missing from ``scores``, both ``top`` and ``quantile``, a bad ``top``,
        ``quantile``, ``cap``, ``power`` or ``weighting``, negative scores under
        ``weighting="score"``, ``weighting="mcap"`` without ``mcap``, or a ``cap`` that
        cannot hold (``cap * n < 1``, ``n`` the selected stocks of positive weight) on some date.
    TypeError
        If ``scores``, ``universe`` or ``mcap`` is not a DataArray.

    Warns
    -----
    UserWarning
        When ``top`` is given and on some date fewer than ``top / 10`` names (but at least
        one) are selectable: the book would be concentrated in those few stocks (the
        weights are returned unchanged). Dates with no selectable name are all cash,
        without a warning.

    Notes
    -----
    Reduction point: the scores (and universe, mcap) on the rebalance dates are selected
    and computed in one ``dask.compute``; everything after runs in numpy on a
    (rebalance dates x assets) array, with no loop over dates. Weights on date ``t`` use the
    scores on ``t`` only: lookback 0, no look-ahead (scores must themselves be known at
    ``t``'s close).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> s = xr.DataArray([[3.0, 1.0, 2.0, np.nan]], dims=("date", "asset"),
    ...                  coords={"date": pd.to_datetime(["2024-01-31"]),
    ...                          "asset": ["A", "B", "C", "D"]})
    >>> select_weights(s, dates=s.date.values, top=2).values.tolist()
    [[0.5, 0.0, 0.5, 0.0]]
    >>> select_weights(s, dates=s.date.values, top=2, weighting="score").values.round(2).tolist()
    [[0.6, 0.0, 0.4, 0.0]]
    """
    if weighting not in ("equal", "score", "mcap"):
        raise ValueError(f"weighting: expected 'equal', 'score' or 'mcap', got {weighting!r}")
    if top is not None and quantile is not None:
        raise ValueError("top and quantile are exclusive: give one of them")
    if top is not None and (
        isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1
    ):
        raise ValueError(f"top: expected a positive integer, got {top!r}")
    if quantile is not None and not (0 < quantile <= 1):
        raise ValueError(f"quantile: expected 0 < quantile <= 1, got {quantile!r}")
    if cap is not None and not (0 < cap <= 1):
        raise ValueError(f"cap: expected 0 < cap <= 1, got {cap!r}")
    if not np.isfinite(power) or power <= 0:
        raise ValueError(f"power: expected a positive number, got {power!r}")
    if weighting == "mcap" and mcap is None:
        raise ValueError("weighting='mcap' needs mcap, a (date, asset) market-cap DataArray")
    try:
        dates = pd.DatetimeIndex(pd.to_datetime(list(dates))).astype("datetime64[ns]")
    except (TypeError, ValueError) as err:
        raise ValueError(f"dates: could not read the rebalance dates: {err}") from err
    if not dates.is_unique:
        raise ValueError("dates: rebalance dates must be unique")
    dates = dates.sort_values()

    s_da = _take_dates(scores, dates, "scores")
    parts: list[Any] = [s_da.data]
    if universe is not None:
        u_da = _take_dates(universe, dates, "universe").reindex(asset=s_da.asset, fill_value=False)
        parts.append(u_da.data)
    if mcap is not None:
        m_da = _take_dates(mcap, dates, "mcap").reindex(asset=s_da.asset)
        parts.append(m_da.data)
    # Reduction point: one compute for the rebalance-date rows.
    computed = dask.compute(*parts)
    s = np.asarray(computed[0], dtype=np.float64)
    k = 1
    eligible = np.isfinite(s)
    if universe is not None:
        u = np.asarray(computed[k])
        k += 1
        eligible &= u.astype(bool) if u.dtype == bool else (np.nan_to_num(u) != 0)
    m = None
    if mcap is not None:
        m = np.asarray(computed[k], dtype=np.float64)
        if weighting == "mcap":
            eligible &= np.isfinite(m) & (m > 0)
    if threshold is not None:
        with np.errstate(invalid="ignore"):
            eligible &= s >= threshold

    n_dates, n_assets = s.shape
    n_eligible = eligible.sum(axis=1)
    if top is not None:
        n_keep = np.minimum(n_eligible, top)
        thin = (n_keep > 0) & (n_keep * 10 < top)
        if thin.any():
            d = int(np.argmax(thin))
            warnings.warn(
                f"select_weights: on {int(thin.sum())} of {n_dates} rebalance dates fewer than "
                f"a tenth of top={top} names are selectable (first {dates[d].date()}: "
                f"{int(n_keep[d])} name{'s' if n_keep[d] > 1 else ''}), so their weights go "
                "to those few stocks; check the scores on those dates (e.g. dates that are "
                "not exchange sessions, or a factor still in its lookback)",
                UserWarning,
                stacklevel=2,
            )
    elif quantile is not None:
        n_keep = np.ceil(quantile * n_eligible - 1e-9).astype(np.int64)
    else:
        n_keep = n_eligible
    # rank 0 = best; ineligible last; stable sort keeps asset order among equal scores
    key = np.where(eligible, -s, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_assets)[None, :].repeat(n_dates, axis=0), axis=1)
    selected = eligible & (rank < n_keep[:, None])

    if weighting == "equal":
        raw = selected.astype(np.float64)
    elif weighting == "score":
        neg = selected & (s < 0)
        if neg.any():
            d, a = np.argwhere(neg)[0]
            raise ValueError(
                f"scores: weighting='score' needs non-negative scores; asset "
                f"{s_da.asset.values[a]} has {s[d, a]:.6g} on {dates[d].date()} "
                "(rescale, e.g. rank the scores, or use weighting='equal')"
            )
        raw = np.where(selected, np.where(selected, s, 0.0) ** power, 0.0)
        zero_rows = selected.any(axis=1) & (raw.sum(axis=1) == 0)
        raw[zero_rows] = selected[zero_rows].astype(np.float64)
    else:
        assert m is not None
        raw = np.where(selected, m, 0.0)
    total = raw.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(total > 0, raw / total, 0.0)
    if cap is not None:
        n_pos = (w > 0).sum(axis=1)
        bad = (n_pos > 0) & (cap * n_pos < 1 - 1e-12)
        if bad.any():
            d = int(np.argmax(bad))
            raise ValueError(
                f"cap: {cap} cannot hold on {dates[d].date()}: only {n_pos[d]} selected stocks "
                f"have a positive weight, so some weight must exceed 1/{n_pos[d]}"
            )
        w = _cap_weights(w, cap)
    return xr.DataArray(
        w,
        dims=("date", "asset"),
        coords={"date": dates.rename("date"), "asset": s_da.asset.values},
        name="weight",
    )
