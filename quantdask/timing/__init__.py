"""quantdask.timing: market-timing models (DTW similarity timing, offshore-flow timing)."""

from quantdask.timing.backtest import TimingBacktest, dtw_sweep, timing_backtest
from quantdask.timing.dtw import dtw_distance, dtw_knn, dtw_timing, lb_keogh, signal_rule
from quantdask.timing.offshore import offshore_backtest, offshore_timing

__all__ = [
    "TimingBacktest",
    "dtw_distance",
    "dtw_knn",
    "dtw_sweep",
    "dtw_timing",
    "lb_keogh",
    "offshore_backtest",
    "offshore_timing",
    "signal_rule",
    "timing_backtest",
]
