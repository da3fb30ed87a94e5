"""quantdask: factor research over the whole Chinese A-share market on Dask.

The documented import is ``import quantdask as qd``. Data flows one way::

    store (io) -> lazy panel -> kernels -> ops -> factors -> per-rebalance reduction -> results

Each import block below re-exports one layer's public functions, in data-flow order.
"""

# ruff: noqa: I001 - imports are grouped by layer in data-flow order, not alphabetically

from __future__ import annotations

# [io] market store: layout, open, synthetic market, ingest
from quantdask.io.store import StoreError, open_market, open_panel
from quantdask.io.calendar import trading_calendar
from quantdask.io.synthetic import synthetic_market
from quantdask.io.ingest import IngestError, IngestWarning, append, ingest
from quantdask.io.qlib import ingest_qlib, to_qlib
from quantdask.io.vendor import read_vendor_daily
from quantdask.io.verify import VerifyReport, verify

# [ops] time-series and cross-section ops
from quantdask import ops
from quantdask.ops import (
    cs_neutralize,
    cs_quantile,
    cs_rank,
    cs_winsorize,
    cs_zscore,
    daily_returns,
    resample_bars,
    ts_argmax,
    ts_argmin,
    ts_corr,
    ts_cov,
    ts_delay,
    ts_delta,
    ts_ewm_mean,
    ts_kurt,
    ts_mad,
    ts_max,
    ts_mean,
    ts_min,
    ts_pct_change,
    ts_percentile,
    ts_quantile,
    ts_rank,
    ts_skew,
    ts_std,
    ts_streak,
    ts_sum,
    ts_var,
    ts_wma,
)

# [factors] registry, compute, snapshot
from quantdask.factors import (
    Factor,
    MissingInputError,
    Snapshot,
    SnapshotWarning,
    compute,
    expr,
    factor,
    factor_set,
    list_factors,
    register_factor,
    snapshot,
    to_zarr,
)

# [fundamentals/models] point-in-time fundamentals and scoring models
from quantdask.fundamentals import align, ttm
from quantdask.models import Model, load_model, segment_profitability, tier_returns

# [portfolio] rebalance dates, weights, back-test, metrics
from quantdask.portfolio import (
    BacktestResult,
    Costs,
    RuinWarning,
    backtest,
    metrics,
    rebalance_dates,
    select_weights,
)

# [analytics] forward returns, IC, quantiles, tear sheets
from quantdask.analytics import (
    factor_quantiles,
    factor_report,
    factor_turnover,
    forward_returns,
    ic,
    ic_decay,
    ic_summary,
    quantile_returns,
    quantile_spread,
    rank_autocorrelation,
    tear_sheet,
)

# [cluster] connect and sweeps
from quantdask.cluster import connect
from quantdask.sweep import open_sweep, plot_sweep, sweep, sweep_summary

# [timing] DTW and offshore-flow timing
from quantdask.timing import (
    TimingBacktest,
    dtw_distance,
    dtw_sweep,
    dtw_timing,
    offshore_backtest,
    offshore_timing,
    timing_backtest,
)

__version__ = "0.1.0"

__all__ = [
    # [io]
    "synthetic_market",
    "trading_calendar",
    "IngestError",
    "IngestWarning",
    "VerifyReport",
    "append",
    "ingest",
    "ingest_qlib",
    "read_vendor_daily",
    "to_qlib",
    "verify",
    "StoreError",
    "open_market",
    "open_panel",
    # [ops]
    "ops",
    "cs_neutralize",
    "cs_quantile",
    "cs_rank",
    "cs_winsorize",
    "cs_zscore",
    "daily_returns",
    "resample_bars",
    "ts_argmax",
    "ts_argmin",
    "ts_corr",
    "ts_cov",
    "ts_delay",
    "ts_delta",
    "ts_ewm_mean",
    "ts_kurt",
    "ts_mad",
    "ts_max",
    "ts_mean",
    "ts_min",
    "ts_pct_change",
    "ts_percentile",
    "ts_quantile",
    "ts_rank",
    "ts_skew",
    "ts_std",
    "ts_streak",
    "ts_sum",
    "ts_var",
    "ts_wma",
    # [factors]
    "Factor",
    "MissingInputError",
    "compute",
    "expr",
    "factor",
    "factor_set",
    "list_factors",
    "register_factor",
    "Snapshot",
    "SnapshotWarning",
    "snapshot",
    "to_zarr",
    # [fundamentals/models]
    "Model",
    "align",
    "load_model",
    "segment_profitability",
    "tier_returns",
    "ttm",
    # [portfolio]
    "BacktestResult",
    "Costs",
    "RuinWarning",
    "backtest",
    "metrics",
    "rebalance_dates",
    "select_weights",
    # [analytics]
    "factor_quantiles",
    "factor_report",
    "factor_turnover",
    "forward_returns",
    "ic",
    "ic_decay",
    "ic_summary",
    "quantile_returns",
    "quantile_spread",
    "rank_autocorrelation",
    "tear_sheet",
    # [cluster]
    "connect",
    "open_sweep",
    "plot_sweep",
    "sweep",
    "sweep_summary",
    # [timing]
    "TimingBacktest",
    "dtw_distance",
    "dtw_sweep",
    "dtw_timing",
    "offshore_backtest",
    "offshore_timing",
    "timing_backtest",
    "__version__",
]
