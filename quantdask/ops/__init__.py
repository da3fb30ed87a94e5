"""quantdask.ops: lazy time-series (``ts_*``) and cross-section (``cs_*``) ops.

Time-series ops run along ``date`` with a one-sided trailing overlap (or a carried state for
streaks, EWM and ``traded_only`` windows) and keep the stored chunks; cross-section ops
rechunk ``asset`` to one chunk per date block. Every op declares ``op.lookback(**params)``;
:func:`lookback` is the functional spelling.
"""

from quantdask.ops.cs import cs_neutralize, cs_quantile, cs_rank, cs_winsorize, cs_zscore
from quantdask.ops.resample import resample_bars
from quantdask.ops.ts import (
    daily_returns,
    lookback,
    period_ids,
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

__all__ = [
    "cs_neutralize",
    "cs_quantile",
    "cs_rank",
    "cs_winsorize",
    "cs_zscore",
    "daily_returns",
    "lookback",
    "period_ids",
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
]
