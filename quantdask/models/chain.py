"""Industry-chain study: three-tier factor portfolios by industry and segment profitability.

FACTORS.md section 4 (industry-chain model): factor tests by three-tier (top / middle /
bottom third) portfolios and their long-short spread, per industry, for capacity expansion
and R&D intensity; and each chain segment's profitability over time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.factors.registry import Factor
from quantdask.factors.registry import factor as bind_factor
from quantdask.fundamentals.pit import MODE_TTM, views_panel
from quantdask.io.store import MarketLike, as_market
from quantdask.models.scoring import percentile_score


def _factor_panel(market: xr.DataTree, factor: str | Factor | xr.DataArray) -> xr.DataArray:
    if isinstance(factor, xr.DataArray):
        if set(factor.dims) != {"date", "asset"}:
            raise ValueError(f"factor panel dims must be ('date', 'asset'), got {factor.dims}")
        return factor.transpose("date", "asset")
    if isinstance(factor, str | Factor):
        return bind_factor(factor)(market)
    raise TypeError(
        f"factor must be a registered name, a qd.factor(...) or a (date, asset) DataArray, "
        f"got {type(factor).__name__}"
    )


def _rebalance(market: xr.DataTree, dates: Any) -> pd.DatetimeIndex:
    cal = pd.DatetimeIndex(market["daily"].indexes["date"])
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(list(dates))).astype("datetime64[ns]")
    except (TypeError, ValueError) as err:
        raise ValueError(f"dates: could not read the rebalance dates: {err}") from err
    missing = idx.difference(cal)
    if len(missing):
        raise ValueError(
            f"dates: {missing[0].date()} is not a trading date (use qd.rebalance_dates)"
        )
    return idx.unique().sort_values()


def tier_returns(
    market: MarketLike,
    factor: str | Factor | xr.DataArray,
    *,
    dates: Sequence[Any] | pd.DatetimeIndex,
    group: str | xr.DataArray | None = "industry",
    tiers: int = 3,
    min_count: int | None = None,
) -> pd.DataFrame:
    """Equal-weighted tier (top / middle / bottom third) portfolio returns per group.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        The market.
    factor : str, Factor or xarray.DataArray
        A registered factor name (e.g. ``"capacity_expansion"``, ``"rd_intensity"``), a bound
        ``qd.factor(...)``, or a ``(date, asset)`` panel.
    dates : sequence of date-like
        Rebalance dates (at least two trading dates); a portfolio formed on ``t_i`` is held
        until ``t_{i+1}``.
    group : "industry", xarray.DataArray or None, default "industry"
        Comparison sets: the Shenwan L1 industry on the date, a ``(date, asset)`` integer
        code panel, or ``None`` for the whole market.
    tiers : int, default 3
        Number of tiers (3 = terciles; tier 1 holds the lowest factor values).
    min_count : int, optional
        Minimum stocks with a factor value in a group on a date (default ``tiers``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(date, group)`` (formation date, group code; 0 for ``group=None``),
        columns ``tier_1`` .. ``tier_<tiers>`` (mean holding-period simple return),
        ``long_short`` (top tier minus bottom tier) and ``n`` (stocks ranked).

    Notes
    -----
    Tiers: within each (date, group) the factor's percentile rank ``r / n`` (average ranks
    for ties) is cut into ``tiers`` equal slices, ``tier = ceil(tiers * r / n)``. Returns:
    entry at the close of the trading day after the formation date (a factor known at ``t``'s
    close is traded on ``t + 1``), exit at the close of the day after the next rebalance
    date, compounded from ``close / pre_close - 1`` (a suspended day counts as 0); stocks
    without a close on the entry day are left out. Reduction point: one ``dask.compute``.
    No look-ahead in the tiers (factor on ``t``); returns are forward by construction.
    """
    market = as_market(market)
    if isinstance(tiers, bool) or not isinstance(tiers, int) or tiers < 2:
        raise ValueError(f"tiers must be an integer >= 2, got {tiers!r}")
    min_count = tiers if min_count is None else int(min_count)
    daily = market["daily"]
    dates = _rebalance(market, dates)
    if len(dates) < 2:
        raise ValueError("dates: need at least two rebalance dates to hold a portfolio")
    cal = pd.DatetimeIndex(daily.indexes["date"])
    pos = cal.get_indexer(dates)
    n_cal = len(cal)
    entry = np.minimum(pos[:-1] + 1, n_cal - 1)
    exit_ = np.minimum(pos[1:] + 1, n_cal - 1)
    form = dates[:-1]

    fac = _factor_panel(market, factor).sel(date=form)
    close = daily["close"]
    ret = (close / daily["pre_close"] - 1).fillna(0.0)
    logw = np.log1p(ret.clip(min=-0.999999)).cumsum("date")
    lazy = [
        fac.data,
        close.isel(date=entry).data,
        logw.isel(date=entry).data,
        logw.isel(date=exit_).data,
    ]
    if isinstance(group, str):
        if group != "industry":
            raise ValueError(f"group must be 'industry', a DataArray or None, got {group!r}")
        lazy.append(daily["industry"].sel(date=form).data)
    elif isinstance(group, xr.DataArray):
        lazy.append(group.transpose("date", "asset").sel(date=form).data)
    elif group is not None:
        raise TypeError(f"group must be 'industry', a DataArray or None, got {type(group)!r}")
    got = dask.compute(*lazy)
    f = np.asarray(got[0], dtype=np.float64)
    entry_close = np.asarray(got[1], dtype=np.float64)
    period_ret = np.expm1(np.asarray(got[3], np.float64) - np.asarray(got[2], np.float64))
    if group is None:
        codes = np.ones(f.shape, dtype=np.int64)
    else:
        codes = np.nan_to_num(np.asarray(got[4], dtype=np.float64), nan=0).astype(np.int64)
    codes = np.where(np.isfinite(f), codes, 0)
    pct = percentile_score(f, groups=codes)
    tier = np.ceil(np.round(pct / 100.0 * tiers, 9)).astype(np.float64)

    # group sizes per (row, code)
    uniq, inv = np.unique(codes, return_inverse=True)
    inv = inv.reshape(codes.shape)
    n_rows, n_codes = f.shape[0], uniq.size
    cell = np.arange(n_rows)[:, None] * n_codes + inv
    ranked = np.isfinite(pct)
    size = np.bincount(cell[ranked], minlength=n_rows * n_codes)
    big = size[cell] >= min_count
    use = ranked & big & np.isfinite(entry_close) & np.isfinite(period_ret)
    t_idx = np.where(use, np.nan_to_num(tier, nan=1.0), 1.0).astype(np.int64) - 1
    key = cell * tiers + t_idx
    sums = np.bincount(key[use], weights=period_ret[use], minlength=n_rows * n_codes * tiers)
    cnts = np.bincount(key[use], minlength=n_rows * n_codes * tiers)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(cnts > 0, sums / cnts, np.nan).reshape(n_rows, n_codes, tiers)
    keep = (size.reshape(n_rows, n_codes) >= min_count) & (uniq[None, :] > 0)
    rows, cols = np.nonzero(keep)
    data = {f"tier_{k + 1}": means[rows, cols, k] for k in range(tiers)}
    out = pd.DataFrame(data)
    out["long_short"] = out[f"tier_{tiers}"] - out["tier_1"]
    out["n"] = size.reshape(n_rows, n_codes)[rows, cols]
    out.index = pd.MultiIndex.from_arrays(
        [form[rows], np.where(group is None, 0, uniq[cols])], names=["date", "group"]
    )
    return out


def tier_summary(tiers: pd.DataFrame) -> pd.DataFrame:
    """Per-group summary of :func:`tier_returns`: mean period returns and win rate.

    Parameters
    ----------
    tiers : pandas.DataFrame
        Output of :func:`tier_returns`.

    Returns
    -------
    pandas.DataFrame
        One row per group: mean of each tier and of ``long_short`` over the periods,
        ``ls_win_rate`` (share of periods with a positive long-short) and ``periods``.
    """
    cols = [c for c in tiers.columns if c.startswith("tier_")] + ["long_short"]
    g = tiers.groupby(level="group")
    out = g[cols].mean()
    out["ls_win_rate"] = g["long_short"].apply(lambda s: float((s.dropna() > 0).mean()))
    out["periods"] = g["long_short"].count()
    return out


def segment_profitability(
    market: MarketLike,
    chain: Mapping[str, Sequence[str | int]],
    *,
    dates: Sequence[Any] | pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """Aggregate TTM gross margin of each chain segment over time.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        The market.
    chain : mapping
        Segment name -> list of members: asset codes (``"002460.SZ"``) and/or Shenwan L1
        industry codes (``801050``; membership as valid on each date). A stock may belong to
        several segments.
    dates : sequence of date-like, optional
        Evaluation dates (trading dates); default the month-end rebalance dates.

    Returns
    -------
    pandas.DataFrame
        Index ``date``, one column per segment:
        ``sum(revenue_TTM - oper_cost_TTM) / sum(revenue_TTM)`` over the segment's listed
        members with both figures known (point in time) on the date; NaN when none.

    Notes
    -----
    Point in time (latest report known on each date, ``anchor="report"``); no look-ahead.
    Reduction point: one ``dask.compute``. Listed = has a close or is suspended on the date.
    """
    market = as_market(market)
    if not isinstance(chain, Mapping) or not chain:
        raise ValueError("chain must be a non-empty mapping segment -> list of members")
    daily = market["daily"]
    assets = pd.Index(daily["asset"].values.astype(str))
    members: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for seg, items in chain.items():
        if isinstance(items, str | int) or not items:
            raise ValueError(f"chain segment {seg!r}: expected a non-empty list of members")
        codes = [c for c in items if isinstance(c, int | np.integer) and not isinstance(c, bool)]
        names = [c for c in items if isinstance(c, str)]
        if len(codes) + len(names) != len(items):
            raise TypeError(f"chain segment {seg!r}: members must be asset codes or industry ints")
        unknown = [n for n in names if n not in assets]
        if unknown:
            raise ValueError(f"chain segment {seg!r}: unknown asset(s) {unknown[:5]}")
        members[seg] = (np.isin(assets, names), np.asarray(codes, dtype=np.int64))
    if dates is None:
        from quantdask.portfolio import rebalance_dates

        dates = rebalance_dates(market, "M")
    dates = _rebalance(market, dates)
    (rev,), _ = views_panel(market, "revenue", views=[(MODE_TTM, 0)], anchor="report")
    (cost,), _ = views_panel(market, "oper_cost", views=[(MODE_TTM, 0)], anchor="report")
    lazy = [rev.sel(date=dates).data, cost.sel(date=dates).data]
    lazy += [daily["industry"].sel(date=dates).data, daily["close"].sel(date=dates).data]
    has_susp = "suspended" in daily
    if has_susp:
        lazy.append(daily["suspended"].sel(date=dates).data)
    got = dask.compute(*lazy)
    r, c = (np.asarray(a, dtype=np.float64) for a in got[:2])
    ind = np.asarray(got[2])
    listed = np.isfinite(np.asarray(got[3], dtype=np.float64))
    if has_susp:
        listed |= np.asarray(got[4]).astype(bool)
    ok = listed & np.isfinite(r) & np.isfinite(c)
    out = {}
    for seg, (by_asset, by_ind) in members.items():  # loop over segments, not stocks
        m = ok & (by_asset[None, :] | np.isin(ind, by_ind))
        rs = np.where(m, r, 0.0).sum(axis=1)
        gp = np.where(m, r - c, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[seg] = np.where(rs > 0, gp / rs, np.nan)
    return pd.DataFrame(out, index=pd.DatetimeIndex(dates, name="date"))


__all__ = ["segment_profitability", "tier_returns", "tier_summary"]
