"""quantdask.analytics: forward returns, IC, quantile portfolios, turnover and tear sheets."""

from __future__ import annotations

from quantdask.analytics.forward import entry_blocked, forward_returns
from quantdask.analytics.ic import ic, ic_decay, ic_summary
from quantdask.analytics.quantiles import factor_quantiles, quantile_returns, quantile_spread
from quantdask.analytics.report import factor_report
from quantdask.analytics.tearsheet import tear_sheet
from quantdask.analytics.turnover import factor_turnover, rank_autocorrelation

__all__ = [
    "entry_blocked",
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
]
