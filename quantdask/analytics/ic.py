"""Information coefficients: per-date cross-sectional correlation of a factor with returns."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import bottleneck as bn
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.analytics._kernels import PEARSON_IC, RANK_IC, report_block
from quantdask.analytics.forward import _check_periods, forward_returns
from quantdask.io.store import MarketLike
from quantdask.kernels.cross import cs_rank_kernel

Method = Literal["spearman", "pearson"]
_METHODS = ("spearman", "pearson")


# --- numpy kernels on (..., asset) blocks -----------------------------------------------


def _row_corr(x: np.ndarray, y: np.ndarray, *, rank: bool, min_count: int = 3) -> np.ndarray:
    """Correlation along the last axis over cells where both are finite, one value per row.

    ``rank=True`` ranks each row first (average ranks for ties), giving Spearman's rho.
    Rows with fewer than ``min_count`` pairs, or a constant side, give NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    both = np.isfinite(x) & np.isfinite(y)
    x = np.where(both, x, np.nan)
    y = np.where(both, y, np.nan)
    if rank:
        x = bn.nanrankdata(x, axis=-1)
        y = bn.nanrankdata(y, axis=-1)
    n = both.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = x - (bn.nansum(x, axis=-1) / n)[..., None]  # NaN outside the valid pairs
        dy = y - (bn.nansum(y, axis=-1) / n)[..., None]
        sxy = bn.nansum(dx * dy, axis=-1)
        sxx = bn.nansum(dx * dx, axis=-1)
        syy = bn.nansum(dy * dy, axis=-1)
        r = sxy / np.sqrt(sxx * syy)
    r = np.where((n >= min_count) & (sxx > 0) & (syy > 0), r, np.nan)
    return np.clip(r, -1.0, 1.0)


def _row_ic(x: np.ndarray, y: np.ndarray, *, rank: bool) -> np.ndarray:
    """Per-row (rank) IC via the fused kernel: one sort per side, one pass per row."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    lead, n = x.shape[:-1], x.shape[-1]
    packed = report_block(
        x.reshape(-1, n), y.reshape(-1, n), quantiles=0, rank=rank, pearson=not rank
    )
    return packed[:, 0, RANK_IC if rank else PEARSON_IC].reshape(lead)


def _grouped_corr(
    x: np.ndarray, y: np.ndarray, g: np.ndarray, *, labels: np.ndarray, rank: bool
) -> np.ndarray:
    """Per-group correlation along the last axis: output (..., n_groups).

    One sort per row for the within-group ranks (``cs_rank_kernel`` sorts by (group,
    value)), then per-(row, group) sums with ``bincount``; no loop over groups, dates or
    assets. Cells whose code is not in ``labels`` are ignored.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    lead = x.shape[:-1]
    n_assets = x.shape[-1]
    x2 = x.reshape(-1, n_assets)
    y2 = y.reshape(-1, n_assets)
    g2 = np.asarray(g).reshape(-1, n_assets)
    n_rows, n_groups = x2.shape[0], len(labels)

    order = np.argsort(labels)
    sorted_labels = labels[order]
    pos = np.clip(np.searchsorted(sorted_labels, g2), 0, max(n_groups - 1, 0))
    member = sorted_labels[pos] == g2
    gid = np.where(member, order[pos], -1)  # 0..n_groups-1, or -1 outside the labels

    valid = member & np.isfinite(x2) & np.isfinite(y2)
    x2 = np.where(valid, x2, np.nan)
    y2 = np.where(valid, y2, np.nan)
    if rank:
        codes = np.where(valid, gid + 1, 0)
        x2 = cs_rank_kernel(x2, codes, False)
        y2 = cs_rank_kernel(y2, codes, False)

    cell = (np.arange(n_rows)[:, None] * n_groups + gid)[valid]
    size = n_rows * n_groups
    xv, yv = x2[valid], y2[valid]
    n = np.bincount(cell, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = np.bincount(cell, weights=xv, minlength=size) / n
        ym = np.bincount(cell, weights=yv, minlength=size) / n
        dx = xv - xm[cell]
        dy = yv - ym[cell]
        sxy = np.bincount(cell, weights=dx * dy, minlength=size)
        sxx = np.bincount(cell, weights=dx * dx, minlength=size)
        syy = np.bincount(cell, weights=dy * dy, minlength=size)
        r = sxy / np.sqrt(sxx * syy)
    r = np.where((n >= 3) & (sxx > 0) & (syy > 0), r, np.nan)
    return np.clip(r, -1.0, 1.0).reshape(*lead, n_groups)


# --- labelled, lazy API ------------------------------------------------------------------


def _check_panel(a: object, name: str, asset: str) -> xr.DataArray:
    if not isinstance(a, xr.DataArray):
        raise TypeError(f"{name} must be an xarray.DataArray (date, asset), got {type(a)!r}")
    if asset not in a.dims:
        raise ValueError(f"{name} has no {asset!r} dimension (dims: {a.dims})")
    return a


def _one_asset_chunk(a: xr.DataArray, asset: str) -> xr.DataArray:
    """Cross-sectional kernels need every asset of a date in one chunk: rechunk explicitly."""
    if a.chunks is not None:
        return a.chunk({asset: -1})
    return a


def ic(
    factor: xr.DataArray,
    forward: xr.DataArray,
    *,
    method: Method = "spearman",
    group: xr.DataArray | None = None,
    groups: Sequence[Hashable] | None = None,
    asset: str = "asset",
) -> xr.DataArray:
    """Information coefficient per date: cross-sectional correlation of factor and return.

    Parameters
    ----------
    factor : xarray.DataArray
        Factor values (date, asset), known at the close of each date.
    forward : xarray.DataArray
        Forward returns (date, asset), e.g. ``qd.forward_returns(market)["fwd_ret_5"]``.
    method : {"spearman", "pearson"}, default "spearman"
        ``"spearman"`` (rank IC) ranks both sides per date (average ranks for ties) over the
        assets where both are finite, then takes Pearson's correlation of the ranks.
    group : xarray.DataArray, optional
        Group codes (date, asset), e.g. ``market["daily"]["industry"]``; gives an IC per
        (date, group), computed within each group.
    groups : sequence, optional
        The group labels to report (with ``group``). Default: the distinct codes in ``group``
        except 0 (the store's "no industry"); finding them computes ``group`` once.
    asset : str, default "asset"
        The cross-sectional dimension.

    Returns
    -------
    xarray.DataArray
        Lazy, dims (date,) or, with ``group``, (date, group). NaN on dates with fewer than
        three valid pairs or with a constant side.

    Notes
    -----
    Computed per block of dates in one vectorised pass (no per-date Python loop); the inputs
    are rechunked to one chunk along ``asset`` (all assets of a date together), keeping the
    date chunks. Lookback 0; the look-ahead is whatever ``forward`` holds (a label).

    Examples
    --------
    >>> fwd = qd.forward_returns(market)  # doctest: +SKIP
    >>> rank_ic = qd.ic(factor, fwd["fwd_ret_20"])  # doctest: +SKIP
    >>> qd.ic_summary(rank_ic)  # doctest: +SKIP
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    factor = _check_panel(factor, "factor", asset)
    forward = _check_panel(forward, "forward", asset)
    rank = method == "spearman"
    factor, forward = xr.align(factor, forward, join="inner")
    factor = _one_asset_chunk(factor, asset)
    forward = _one_asset_chunk(forward, asset)
    name = f"{'rank_ic' if rank else 'ic'}"

    if group is None:
        if groups is not None:
            raise ValueError("groups given without group")
        out = xr.apply_ufunc(
            _row_ic,
            factor,
            forward,
            input_core_dims=[[asset], [asset]],
            kwargs={"rank": rank},
            dask="parallelized",
            output_dtypes=[np.float64],
        )
        return out.rename(name)

    group = _check_panel(group, "group", asset)
    group = group.broadcast_like(factor).reindex_like(factor)
    group = _one_asset_chunk(group, asset)
    if groups is None:
        codes = np.unique(np.asarray(group.values))  # documented: one compute of the codes
        labels = codes[(codes != 0) & ~pd.isna(codes)]
    else:
        labels = np.asarray(list(groups))
    if labels.size == 0:
        raise ValueError("group holds no group codes other than 0")
    out = xr.apply_ufunc(
        _grouped_corr,
        factor,
        forward,
        group,
        input_core_dims=[[asset], [asset], [asset]],
        output_core_dims=[["group"]],
        kwargs={"labels": labels, "rank": rank},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"group": labels.size}},
    )
    return out.assign_coords(group=labels).rename(name)


def ic_summary(ic: xr.DataArray | xr.Dataset, *, dim: str = "date") -> pd.DataFrame:
    """Summary statistics of an IC series: mean, std, IR, t-stat, share positive, count.

    Parameters
    ----------
    ic : xarray.DataArray or xarray.Dataset
        From :func:`ic` or :func:`ic_decay`. Every dimension other than ``dim`` (e.g.
        ``group`` or ``horizon``) becomes a row; a Dataset gives one row per variable.
    dim : str, default "date"
        The dimension summarised over.

    Returns
    -------
    pandas.DataFrame
        Columns ``mean``, ``std`` (sample, ddof=1), ``ir`` (mean / std), ``t_stat``
        (mean / (std / sqrt(count))), ``positive`` (share of dates with IC > 0) and ``count``
        (dates with a finite IC). NaN ICs are ignored.

    Notes
    -----
    A reduction point: computes its input. IR is not annualised.
    """
    if isinstance(ic, xr.Dataset):
        frames = [ic_summary(ic[v], dim=dim) for v in ic.data_vars]
        return pd.concat(frames) if frames else pd.DataFrame()
    if not isinstance(ic, xr.DataArray):
        raise TypeError(f"ic must be an xarray DataArray or Dataset, got {type(ic)!r}")
    if dim not in ic.dims:
        raise ValueError(f"ic has no {dim!r} dimension (dims: {ic.dims})")
    other = [d for d in ic.dims if d != dim]
    values = np.asarray(ic.transpose(dim, *other).values, dtype=np.float64)
    values = values.reshape(values.shape[0], -1)
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(np.where(finite, values, 0.0), axis=0) / count
        dev = np.where(finite, values - mean, 0.0)
        std = np.sqrt((dev**2).sum(axis=0) / np.where(count > 1, count - 1, np.nan))
        ir = mean / std
        t_stat = mean / (std / np.sqrt(count))
        positive = (finite & (values > 0)).sum(axis=0) / count
    name = ic.name if ic.name is not None else "ic"
    if other:
        index = (
            pd.MultiIndex.from_product([ic[d].values for d in other], names=other)
            if len(other) > 1
            else pd.Index(ic[other[0]].values, name=other[0])
        )
    else:
        index = pd.Index([name], name="ic")
    return pd.DataFrame(
        {
            "mean": mean,
            "std": std,
            "ir": ir,
            "t_stat": t_stat,
            "positive": positive,
            "count": count.astype(np.int64),
        },
        index=index,
    )


def ic_decay(
    factor: xr.DataArray,
    market: MarketLike | xr.Dataset,
    *,
    horizons: Sequence[int] = (1, 2, 5, 10, 20),
    method: Method = "spearman",
) -> xr.DataArray:
    """IC of a factor against forward returns over several horizons.

    Parameters
    ----------
    factor : xarray.DataArray
        Factor values (date, asset).
    market : str, os.PathLike, xarray.DataTree or xarray.Dataset
        The market (or its ``daily`` Dataset) the forward returns are built from, with
        :func:`quantdask.forward_returns` conventions (entry at the close of ``t + 1``).
    horizons : sequence of int, default (1, 2, 5, 10, 20)
        Holding horizons in trading days.
    method : {"spearman", "pearson"}, default "spearman"

    Returns
    -------
    xarray.DataArray
        Lazy, dims (horizon, date). ``.mean("date")`` is the decay curve;
        :func:`ic_summary` tabulates it one row per horizon.

    Notes
    -----
    Lookback 0; the labels look ``h + 1`` days ahead. Longer-horizon returns overlap from one
    date to the next, so their daily IC series are autocorrelated (the t-stat of
    :func:`ic_summary` overstates significance for ``h > 1``).
    """
    hs = _check_periods(horizons, "horizons")
    fwd = forward_returns(market, periods=hs)
    ics = [ic(factor, fwd[f"fwd_ret_{h}"], method=method) for h in hs]
    out = xr.concat(ics, dim=pd.Index(list(hs), name="horizon"))
    return out.rename("rank_ic" if method == "spearman" else "ic")
