"""Quantile portfolios: cross-sectional buckets of a factor and their forward returns."""

from __future__ import annotations

import bottleneck as bn
import numpy as np
import xarray as xr

from quantdask.analytics._kernels import N_STATS, report_block
from quantdask.analytics.ic import _check_panel, _one_asset_chunk


def _check_quantiles(quantiles: int) -> int:
    if isinstance(quantiles, bool) or not isinstance(quantiles, int | np.integer):
        raise TypeError(f"quantiles must be an int, got {quantiles!r}")
    if quantiles < 2:
        raise ValueError(f"quantiles must be at least 2, got {quantiles!r}")
    return int(quantiles)


def _bucket_kernel(x: np.ndarray, *, quantiles: int) -> np.ndarray:
    """Bucket 1..q per cell from the row's average ranks; NaN where x is not finite.

    Matches ``pd.qcut(ranks, q, labels=False) + 1`` (without ties) with ``ranks`` the
    average ranks ``1..n`` of the finite values: bucket ``b`` (0-based) holds ranks in
    ``(1 + b (n-1) / q, 1 + (b+1) (n-1) / q]``, the lowest edge included. Computed in
    integer arithmetic on doubled ranks, so edges are exact.
    """
    x = np.asarray(x, dtype=np.float64)
    x = np.where(np.isfinite(x), x, np.nan)
    r = bn.nanrankdata(x, axis=-1)  # average ranks 1..n, NaN stays NaN
    n = np.isfinite(x).sum(axis=-1, keepdims=True)
    valid = np.isfinite(r) & (n >= quantiles)
    two_r = np.where(valid, np.rint(2.0 * r), 2).astype(np.int64)  # ranks are k/2
    num = quantiles * (two_r - 2)  # q * 2 * (r - 1)
    den = np.maximum(2 * (n - 1), 1)  # 2 * (n - 1)
    b = -((-num) // den) - 1  # ceil(num / den) - 1
    b = np.clip(b, 0, quantiles - 1)
    return np.where(valid, b + 1.0, np.nan)


def _mean_by_bucket(
    x: np.ndarray, y: np.ndarray, *, quantiles: int, bucket_on_both: bool
) -> np.ndarray:
    """Mean of y per bucket of x along the last axis: output (..., quantiles)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if bucket_on_both:
        x = np.where(np.isfinite(y), x, np.nan)
    b = _bucket_kernel(x, quantiles=quantiles)
    lead = x.shape[:-1]
    b2 = b.reshape(-1, x.shape[-1])
    y2 = y.reshape(-1, x.shape[-1])
    ok = np.isfinite(b2) & np.isfinite(y2)
    n_rows = b2.shape[0]
    # one bincount over (row, bucket) cells: no loop over dates, assets or buckets
    cell = (np.arange(n_rows)[:, None] * quantiles + (np.nan_to_num(b2) - 1).astype(np.int64))[ok]
    size = n_rows * quantiles
    cnt = np.bincount(cell, minlength=size)
    tot = np.bincount(cell, weights=y2[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(cnt > 0, tot / cnt, np.nan)
    return out.reshape(*lead, quantiles)


def _bucket_means(
    x: np.ndarray, y: np.ndarray, *, quantiles: int, bucket_on_both: bool
) -> np.ndarray:
    """:func:`_mean_by_bucket` via the fused kernel (one sort per row, no temporaries)."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    lead, n = x.shape[:-1], x.shape[-1]
    packed = report_block(
        x.reshape(-1, n),
        y.reshape(-1, n),
        quantiles=quantiles,
        rank=False,
        pearson=False,
        bucket_both=bucket_on_both,
    )
    return packed[:, 0, N_STATS:].reshape(*lead, quantiles)


def factor_quantiles(
    factor: xr.DataArray, *, quantiles: int = 5, asset: str = "asset"
) -> xr.DataArray:
    """Cross-sectional quantile bucket (1 = lowest factor, ``quantiles`` = highest) per cell.

    Parameters
    ----------
    factor : xarray.DataArray
        Factor values (date, asset).
    quantiles : int, default 5
        Number of buckets (3 = terciles, 5 = quintiles, 10 = deciles).
    asset : str, default "asset"
        The cross-sectional dimension.

    Returns
    -------
    xarray.DataArray
        Float bucket labels 1..quantiles, NaN where the factor is missing and on dates with
        fewer than ``quantiles`` finite values. Lazy.

    Notes
    -----
    Bucket convention: per date, rank the finite factor values with average ranks
    (``r = 1..n``, ties share a rank) and cut the ranks like
    ``pandas.qcut(ranks, quantiles, labels=False) + 1``: bucket ``b`` holds ranks in
    ``(1 + (b-1)(n-1)/q, 1 + b(n-1)/q]`` with the lowest rank in bucket 1 (edges are
    compared in exact integer arithmetic). Without ties this is exactly
    ``pandas.qcut(s.rank(), q, labels=False) + 1``. Tied values share their average rank and
    therefore always share a bucket; with ties pandas' ``qcut`` interpolates its edges between
    the tied rank values and can put a tie group one bucket off from this rule (or refuse
    duplicate edges). Lookback 0, no look-ahead; rechunks to one chunk along ``asset``.
    """
    q = _check_quantiles(quantiles)
    factor = _one_asset_chunk(_check_panel(factor, "factor", asset), asset)
    out = xr.apply_ufunc(
        _bucket_kernel,
        factor,
        input_core_dims=[[asset]],
        output_core_dims=[[asset]],
        kwargs={"quantiles": q},
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    return out.transpose(*factor.dims).rename("quantile")


def quantile_returns(
    factor: xr.DataArray,
    forward: xr.DataArray,
    *,
    quantiles: int = 5,
    bucket_on: str = "factor",
    asset: str = "asset",
) -> xr.DataArray:
    """Mean forward return of each factor quantile bucket, per date.

    Parameters
    ----------
    factor : xarray.DataArray
        Factor values (date, asset).
    forward : xarray.DataArray
        Forward returns (date, asset), e.g. ``qd.forward_returns(market)["fwd_ret_5"]``.
    quantiles : int, default 5
        Number of buckets (3 = terciles).
    bucket_on : {"factor", "both"}, default "factor"
        ``"factor"``: buckets from every asset with a finite factor value (what is known at
        ``t``), then the mean over bucket members with a finite forward return (assets whose
        entry is blocked drop out of the mean). ``"both"``: buckets only among assets where
        both are finite (the alphalens convention).
    asset : str, default "asset"

    Returns
    -------
    xarray.DataArray
        Lazy, dims (date, quantile) with ``quantile`` = 1..quantiles (1 = lowest factor),
        equal-weighted mean forward return; NaN for an empty bucket.

    Notes
    -----
    Buckets as in :func:`factor_quantiles`. One vectorised pass per date block; inputs are
    rechunked to one chunk along ``asset``. Lookback 0; look-ahead only through ``forward``.
    For ``h``-day returns the rows overlap; :func:`quantile_spread` gives top minus bottom.
    """
    q = _check_quantiles(quantiles)
    if bucket_on not in ("factor", "both"):
        raise ValueError(f"bucket_on must be 'factor' or 'both', got {bucket_on!r}")
    factor = _check_panel(factor, "factor", asset)
    forward = _check_panel(forward, "forward", asset)
    factor, forward = xr.align(factor, forward, join="inner")
    factor = _one_asset_chunk(factor, asset)
    forward = _one_asset_chunk(forward, asset)
    out = xr.apply_ufunc(
        _bucket_means,
        factor,
        forward,
        input_core_dims=[[asset], [asset]],
        output_core_dims=[["quantile"]],
        kwargs={"quantiles": q, "bucket_on_both": bucket_on == "both"},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"quantile": q}},
    )
    name = forward.name if forward.name is not None else "forward"
    return out.assign_coords(quantile=np.arange(1, q + 1)).rename(f"quantile_{name}")


def quantile_spread(qret: xr.DataArray) -> xr.DataArray:
    """Top-minus-bottom spread of :func:`quantile_returns` (highest bucket minus bucket 1).

    Parameters
    ----------
    qret : xarray.DataArray
        Output of :func:`quantile_returns`, with a ``quantile`` dimension.

    Returns
    -------
    xarray.DataArray
        Lazy, the ``quantile`` dimension dropped.
    """
    if not isinstance(qret, xr.DataArray) or "quantile" not in qret.dims:
        raise ValueError("qret must be a DataArray with a 'quantile' dimension")
    top = qret.isel(quantile=-1, drop=True)
    bottom = qret.isel(quantile=0, drop=True)
    return (top - bottom).rename("spread")
