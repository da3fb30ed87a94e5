"""Back-test of a daily long / flat / short timing signal on one price series."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from quantdask.portfolio.metrics import metrics as _metrics


@dataclass(frozen=True)
class TimingBacktest:
    """Result of :func:`timing_backtest`.

    Attributes
    ----------
    returns : pandas.DataFrame
        By date: ``position`` (held over the day ending at that date, i.e. the signal of the
        previous date), ``strategy`` (daily strategy return), ``benchmark`` (daily return of
        the traded series), ``excess`` (``strategy - benchmark``), ``wealth`` (cumulative
        strategy wealth from 1).
    metrics : dict
        :func:`quantdask.metrics` of ``strategy`` against ``benchmark`` (annual_return,
        sharpe, max_drawdown, profit_loss_ratio, excess_annual_return, monthly_win_rate, ...)
        plus ``total_return``, ``benchmark_total_return``, ``excess_total_return``
        (``total_return - benchmark_total_return``), ``hit_rate`` (share of days with a
        non-zero position whose strategy return is positive), ``exposure`` (share of days
        with a non-zero position) and ``n_trades`` (position changes).
    """

    returns: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)


def _series(x: Any, name: str) -> pd.Series:
    if isinstance(x, xr.DataArray):
        if x.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D DataArray over dates, got dims {x.dims}")
        return pd.Series(np.asarray(x.values, dtype=np.float64), index=x[x.dims[0]].to_index())
    if isinstance(x, pd.Series):
        return x.astype(np.float64)
    raise TypeError(f"{name}: expected a pandas Series or 1-D DataArray, got {type(x).__name__}")


def timing_backtest(
    signal: pd.Series | pd.DataFrame | xr.DataArray,
    prices: pd.Series | xr.DataArray,
    *,
    long_only: bool = False,
    cost: float = 0.0,
    periods_per_year: float = 252,
) -> TimingBacktest:
    """Trade a daily -1 / 0 / 1 signal on a price series and measure it with ``qd.metrics``.

    Parameters
    ----------
    signal : pandas.Series, DataFrame with a ``signal`` column, or 1-D DataArray
        Signal by date (NaN counts as flat). Positions are ``clip(signal, -1, 1)``.
    prices : pandas.Series or 1-D DataArray
        Prices of the traded index by date (the benchmark is holding it).
    long_only : bool, default False
        Replace short positions by flat.
    cost : float, default 0.0
        Proportional cost per unit of position change (0.001 = 10 bp), charged on the day
        the new position is first held.
    periods_per_year : float, default 252

    Returns
    -------
    TimingBacktest

    Notes
    -----
    Timing convention: the signal at date ``t`` (known at ``t``'s close) is the position held
    from ``t`` to ``t + 1``, earning ``prices[t + 1] / prices[t] - 1``; there is no look-ahead.
    The signal is aligned to the price dates (missing dates are flat). The first price date
    has no return and is dropped. Reduction point: works on in-memory pandas data.

    Ruin: a daily strategy return ``<= -1`` (a short through a doubling, a long position
    in a series that falls to 0) leaves no wealth. The strategy stops there: its
    ``wealth`` stays 0, later ``strategy`` (and ``excess``) returns are NaN, the metrics
    cover the dates up to the ruin (``ruined``, ``ruin_date``; ``total_return`` is -1) and
    :func:`quantdask.metrics` warns a :class:`quantdask.portfolio.RuinWarning`.
    """
    if isinstance(signal, pd.DataFrame):
        if "signal" not in signal.columns:
            raise ValueError("signal: a DataFrame needs a 'signal' column")
        signal = signal["signal"]
    sig = _series(signal, "signal")
    px = _series(prices, "prices")
    if not px.index.is_monotonic_increasing or px.index.has_duplicates:
        raise ValueError("prices: the date index must be strictly increasing")
    if not (isinstance(cost, int | float) and cost >= 0):
        raise ValueError(f"cost must be a non-negative number, got {cost!r}")
    px = px.dropna()
    pos_t = sig.reindex(px.index).fillna(0.0).clip(-1.0, 1.0)
    if long_only:
        pos_t = pos_t.clip(lower=0.0)
    bench = px.pct_change()
    held = pos_t.shift(1).fillna(0.0)  # position held over the day ending at each date
    trade = held.diff().abs().fillna(held.abs())
    strat = held * bench - cost * trade
    strat = strat.iloc[1:]
    # ruin: a daily return <= -1 (a short through a doubling, a long to zero) leaves no
    # wealth; the strategy stops there, its wealth stays 0 and later returns are NaN
    gone = (strat <= -1.0).to_numpy()
    n_live = int(np.argmax(gone)) + 1 if gone.any() else len(strat)
    strat = strat.where(np.arange(len(strat)) < n_live)
    full = pd.DataFrame(
        {"position": held.iloc[1:], "strategy": strat, "benchmark": bench.iloc[1:]},
        index=px.index[1:],
    )
    full["excess"] = full["strategy"] - full["benchmark"]
    full["wealth"] = (1.0 + full["strategy"].fillna(0.0)).cumprod().clip(lower=0.0)
    m = _metrics(full["strategy"], full["benchmark"], periods_per_year=periods_per_year)
    frame = full.iloc[:n_live]  # the statistics below cover the dates up to a ruin
    invested = frame["position"] != 0
    m["total_return"] = float(frame["wealth"].iloc[-1] - 1.0) if len(frame) else np.nan
    m["benchmark_total_return"] = (
        float((1.0 + frame["benchmark"]).prod() - 1.0) if len(frame) else np.nan
    )
    m["excess_total_return"] = m["total_return"] - m["benchmark_total_return"]
    m["hit_rate"] = (
        float((frame.loc[invested, "strategy"] > 0).mean()) if invested.any() else np.nan
    )
    m["exposure"] = float(invested.mean()) if len(frame) else np.nan
    m["n_trades"] = int((frame["position"].diff().fillna(frame["position"]) != 0).sum())
    return TimingBacktest(returns=full, metrics=m)


#: Metrics a :func:`dtw_sweep` cell reports.
SWEEP_METRICS = (
    "total_return",
    "annual_return",
    "excess_total_return",
    "excess_annual_return",
    "max_drawdown",
    "sharpe",
    "hit_rate",
    "monthly_win_rate",
    "exposure",
)


def _dtw_cell(
    prices: pd.Series,
    *,
    window: int,
    horizon: int,
    k: int,
    constraint: str = "sakoe_chiba",
    radius: int = -1,
    slope: float = -1.0,
    threshold: float = 0.25,
    long_only: bool = False,
    start: str = "",
) -> dict[str, float]:
    """One sweep cell: DTW signal -> back-test metrics (runs on a worker)."""
    from quantdask.timing.dtw import dtw_timing

    kw: dict[str, Any] = {}
    if constraint == "sakoe_chiba" and radius >= 0:
        kw["radius"] = int(radius)
    if constraint == "itakura" and slope >= 1:
        kw["slope"] = float(slope)
    sig = dtw_timing(
        prices,
        window=int(window),
        horizon=int(horizon),
        k=int(k),
        constraint=None if constraint == "none" else constraint,  # type: ignore[arg-type]
        threshold=float(threshold),
        **kw,
    )
    px = prices if not start else prices[prices.index >= pd.Timestamp(start)]
    bt = timing_backtest(sig, px, long_only=bool(long_only))
    return {name: float(bt.metrics[name]) for name in SWEEP_METRICS}


def dtw_sweep(
    prices: pd.Series | xr.DataArray,
    grid: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    store: str | os.PathLike[str],
    client: Any = None,
    progress: bool = False,
    overwrite: bool = False,
) -> xr.Dataset:
    """Sweep the DTW timing model over (window, horizon, k, constraint, radius, ...).

    Parameters
    ----------
    prices : pandas.Series or 1-D DataArray
        Index prices by date; the signal is traded on the same series.
    grid : dict or list of dict
        As in :func:`quantdask.sweep`. Keys among ``window``, ``horizon``, ``k`` (required),
        ``constraint`` (``"sakoe_chiba"``, ``"itakura"`` or ``"none"``), ``radius`` (Sakoe-Chiba
        only; ``-1`` = default), ``slope`` (Itakura only; ``-1`` = default), ``threshold``,
        ``long_only``, ``start`` (ISO date: back-test from this date on; the matching still
        uses all earlier history). A radius is ignored by Itakura cells and a slope by
        Sakoe-Chiba cells, so a Cartesian grid over both repeats cells; pass a list of
        dicts to avoid that.
    store : str or os.PathLike
        Zarr store of the results (resumable), as in :func:`quantdask.sweep`.
    client : distributed.Client, optional
        Cluster; the active client if omitted, in-process without any.
    progress, overwrite : bool
        Passed to :func:`quantdask.sweep`.

    Returns
    -------
    xarray.Dataset
        One variable per metric in :data:`SWEEP_METRICS` (from :func:`timing_backtest`), dims
        = the grid parameters.

    Notes
    -----
    Each cell runs :func:`quantdask.dtw_timing` (dates in blocks, inside the cell's task)
    and :func:`timing_backtest`. No look-ahead (see :func:`quantdask.dtw_timing`).
    Reduction point: blocks until every cell is done.
    """
    from quantdask.sweep import sweep

    s = _series(prices, "prices")
    return sweep(
        _dtw_cell, grid, store=store, client=client, data=s, progress=progress, overwrite=overwrite
    )
