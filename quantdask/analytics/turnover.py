"""Factor turnover and rank autocorrelation: how fast a factor's portfolio changes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from quantdask.analytics.ic import _check_panel, ic
from quantdask.analytics.quantiles import _check_quantiles, factor_quantiles


def _at_dates(factor: xr.DataArray, dates: Sequence | pd.DatetimeIndex | None, dim: str):
    if dates is None:
        return factor
    idx = pd.DatetimeIndex(dates)
    missing = idx.difference(pd.DatetimeIndex(factor[dim].values))
    if len(missing):
        raise ValueError(f"dates not in the factor's {dim!r} coordinate: {list(missing[:3])}")
    return factor.sel({dim: idx})


def factor_turnover(
    factor: xr.DataArray,
    *,
    quantiles: int = 5,
    dates: Sequence | pd.DatetimeIndex | None = None,
    dim: str = "date",
    asset: str = "asset",
) -> xr.DataArray:
    """Share of the top quantile bucket replaced between consecutive (rebalance) dates.

    Parameters
    ----------
    factor : xarray.DataArray
        Factor values (date, asset).
    quantiles : int, default 5
        Number of buckets; the top bucket (highest factor values) is tracked.
    dates : sequence of dates, optional
        Rebalance dates (e.g. ``qd.rebalance_dates(market, freq="M")``); default every date.
    dim, asset : str
        The time and cross-sectional dimensions.

    Returns
    -------
    xarray.DataArray
        Lazy, over ``dim``: ``1 - |top(t) & top(prev)| / |top(t)|``, with ``prev`` the
        previous (rebalance) date. NaN on the first date and where the top bucket is empty.

    Notes
    -----
    Buckets as in :func:`quantdask.factor_quantiles`. Lookback: one (rebalance) date.
    No look-ahead.
    """
    _check_quantiles(quantiles)
    factor = _at_dates(_check_panel(factor, "factor", asset), dates, dim)
    top = factor_quantiles(factor, quantiles=quantiles, asset=asset) == quantiles
    prev = top.shift({dim: 1}, fill_value=False)
    n_top = top.sum(asset)
    stayed = (top & prev).sum(asset)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 - stayed / n_top.where(n_top > 0)
    has_prev = xr.DataArray(np.arange(factor.sizes[dim]) > 0, dims=[dim])
    return out.where(has_prev).rename("turnover")


def rank_autocorrelation(
    factor: xr.DataArray,
    *,
    lag: int = 1,
    dates: Sequence | pd.DatetimeIndex | None = None,
    dim: str = "date",
    asset: str = "asset",
) -> xr.DataArray:
    """Cross-sectional rank correlation of a factor with itself ``lag`` dates earlier.

    Parameters
    ----------
    factor : xarray.DataArray
        Factor values (date, asset).
    lag : int, default 1
        Lag in (rebalance) dates.
    dates : sequence of dates, optional
        Rebalance dates; the lag then counts rebalance dates.
    dim, asset : str

    Returns
    -------
    xarray.DataArray
        Lazy, over ``dim``: Spearman correlation over assets with a finite value at both
        dates; NaN for the first ``lag`` dates.

    Notes
    -----
    Lookback ``lag`` dates, no look-ahead. High values mean a slow, low-turnover factor.
    """
    if isinstance(lag, bool) or not isinstance(lag, int | np.integer) or lag < 1:
        raise ValueError(f"lag must be a positive int, got {lag!r}")
    factor = _at_dates(_check_panel(factor, "factor", asset), dates, dim)
    out = ic(factor, factor.shift({dim: int(lag)}), method="spearman", asset=asset)
    return out.rename("rank_autocorrelation")
