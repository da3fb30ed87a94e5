"""quantdask.portfolio: rebalance dates, target weights, the A-share back-test and metrics."""

from quantdask.portfolio.backtest import BacktestResult, backtest
from quantdask.portfolio.calendar import rebalance_dates, trading_dates
from quantdask.portfolio.costs import STAMP_DUTY_SCHEDULE, Costs
from quantdask.portfolio.metrics import RuinWarning, metrics
from quantdask.portfolio.weights import select_weights

__all__ = [
    "STAMP_DUTY_SCHEDULE",
    "BacktestResult",
    "Costs",
    "RuinWarning",
    "backtest",
    "metrics",
    "rebalance_dates",
    "select_weights",
    "trading_dates",
]
