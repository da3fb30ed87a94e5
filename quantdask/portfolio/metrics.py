"""Performance metrics of a daily return series, with the empyrical definitions."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd


class RuinWarning(RuntimeWarning):
    """A portfolio's wealth reached zero (or could no longer pay one order): it is ruined.

    Warned by :func:`quantdask.backtest` on the ruin day and by :func:`quantdask.metrics` /
    ``BacktestResult.metrics()``, whose figures then cover the periods up to the ruin only.
    """


def _as_series(x: Any, name: str) -> pd.Series:
    if isinstance(x, pd.Series):
        s = x
    elif isinstance(x, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas Series of returns, got a DataFrame")
    else:
        try:
            s = pd.Series(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name}: expected a Series or array of returns: {err}") from err
    if s.ndim != 1:
        raise TypeError(f"{name}: expected one-dimensional returns")
    return s.astype(np.float64)


def annual_return(r: np.ndarray, periods_per_year: float) -> float:
    """Geometric annual return ``prod(1 + r) ** (periods_per_year / n) - 1``."""
    if len(r) == 0:
        return np.nan
    growth = np.prod(1.0 + r)
    if growth <= 0:
        return -1.0
    return float(growth ** (periods_per_year / len(r)) - 1.0)


def annual_volatility(r: np.ndarray, periods_per_year: float) -> float:
    """``std(r, ddof=1) * sqrt(periods_per_year)``."""
    if len(r) < 2:
        return np.nan
    return float(np.std(r, ddof=1) * np.sqrt(periods_per_year))


def sharpe(r: np.ndarray, periods_per_year: float, rf_per_period: float = 0.0) -> float:
    """``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)``."""
    if len(r) < 2:
        return np.nan
    ex = r - rf_per_period
    sd = np.std(ex, ddof=1)
    if sd == 0:
        return np.nan
    return float(np.mean(ex) / sd * np.sqrt(periods_per_year))


def drawdown(r: np.ndarray) -> tuple[float, int, int]:
    """Max drawdown of the wealth path ``cumprod(1 + r)`` started at 1.

    Returns ``(max_drawdown, peak, trough)``: the drawdown (<= 0) and the positions in ``r``
    of the peak and trough; ``peak == -1`` when the peak is the starting value.
    """
    if len(r) == 0:
        return np.nan, -1, -1
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    running = np.maximum.accumulate(wealth)
    dd = wealth / running - 1.0
    trough = int(np.argmin(dd))
    if dd[trough] == 0:
        return 0.0, -1, -1
    peak = int(np.argmax(wealth[: trough + 1]))
    return float(dd[trough]), peak - 1, trough - 1


def _calmar(ar: float, mdd: float) -> float:
    return float(ar / abs(mdd)) if mdd < 0 else np.nan


def _label(x: Any) -> str:
    return str(x.date()) if isinstance(x, pd.Timestamp) else str(x)


def metrics(
    returns: pd.Series | np.ndarray,
    benchmark: pd.Series | np.ndarray | None = None,
    *,
    periods_per_year: float = 252,
    risk_free: float = 0.0,
    turnover: pd.Series | np.ndarray | None = None,
) -> dict[str, Any]:
    """Performance metrics of a periodic (daily) return series.

    Parameters
    ----------
    returns : pandas.Series or array-like
        Simple returns per period (0.01 = 1%), indexed by date for the date-based keys.
        NaN periods are dropped.
    benchmark : pandas.Series or array-like, optional
        Benchmark simple returns. Series are aligned on their common index (inner join);
        arrays must have the length of ``returns``. Only periods with both returns count,
        for every metric; a ``UserWarning`` says how many periods of ``returns`` that
        leaves out.
    periods_per_year : float, default 252
        Periods in a year (252 trading days, 52 weeks, 12 months).
    risk_free : float, default 0.0
        Annual risk-free rate, converted to a per-period rate
        ``(1 + risk_free) ** (1 / periods_per_year) - 1`` for the Sharpe ratio.
    turnover : pandas.Series or array-like, optional
        One-way turnover per period (as :attr:`BacktestResult.turnover`); reported as
        the annualized ``mean * periods_per_year``.

    Returns
    -------
    dict
        ``annual_return``: geometric, ``prod(1 + r) ** (periods_per_year / n) - 1``
        (empyrical's ``annual_return``); ``annual_volatility``:
        ``std(r, ddof=1) * sqrt(periods_per_year)``; ``sharpe``:
        ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)``; ``max_drawdown``:
        the most negative ``wealth / running_max - 1`` of ``cumprod(1 + r)`` started at 1
        (a negative number, 0 when wealth never falls); ``max_drawdown_start`` and
        ``max_drawdown_end``: index labels of the peak and the trough (the peak is the first
        label when it is the starting capital; None when there is no drawdown); ``calmar``:
        ``annual_return / |max_drawdown|`` (NaN without a drawdown); ``profit_loss_ratio``:
        ``mean(r[r > 0]) / |mean(r[r < 0])|``; ``n_periods``.
        With a benchmark: ``benchmark_annual_return``; the excess keys are computed on the
        daily excess return series ``e = r - b`` (empyrical's active-return convention):
        ``excess_annual_return`` (geometric annual return of ``e``), ``excess_sharpe``
        (annualized ``mean(e) / std(e, ddof=1) * sqrt(periods_per_year)``, the information
        ratio; empyrical's ``excess_sharpe`` is the same without the annualizing factor),
        ``excess_max_drawdown`` (max drawdown of ``cumprod(1 + e)``), ``excess_calmar``;
        ``monthly_win_rate``: share of calendar months (compounded returns, partial months
        included) in which the portfolio's return is strictly above the benchmark's (needs
        a DatetimeIndex, NaN otherwise). With ``turnover``: ``turnover``.
        ``ruined`` (bool) and ``ruin_date`` (the label of the ruin period, None when not
        ruined): see Notes.

    Warns
    -----
    RuinWarning
        When the wealth path reaches zero, naming the period.
    UserWarning
        When periods of ``returns`` are left out for want of a benchmark return.

    Raises
    ------
    TypeError
        If ``returns`` or ``benchmark`` is not a one-dimensional series or array.
    ValueError
        If an array benchmark's length differs from ``returns``'s, or
        ``periods_per_year`` is not positive.

    Notes
    -----
    Ruin: a return ``<= -1`` takes the wealth ``cumprod(1 + r)`` to zero (or below, which
    a long-only book with limited liability cannot do); what follows has no meaning as a
    return on capital. The metrics are then computed on the periods up to and including
    the first such return (benchmark and turnover on the same periods), ``ruined`` is True,
    ``ruin_date`` is its label and a :class:`RuinWarning` says so. A back-test ruined
    before its wealth reaches exactly zero (``BacktestResult.ruin_date``) is handled by
    ``BacktestResult.metrics()`` the same way.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.Series([0.01, -0.02, 0.03], index=pd.bdate_range("2024-01-01", periods=3))
    >>> round(metrics(r)["max_drawdown"], 4)
    -0.02
    """
    return _ruin_metrics(
        returns,
        benchmark,
        periods_per_year=periods_per_year,
        risk_free=risk_free,
        turnover=turnover,
        ruin_date=None,
        source="metrics",
    )


def _ruin_metrics(
    returns: Any,
    benchmark: Any,
    *,
    periods_per_year: float,
    risk_free: float,
    turnover: Any,
    ruin_date: Any,
    source: str,
) -> dict[str, Any]:
    """:func:`metrics` with a ruin date known in advance (a back-test's), or found here.

    ``returns`` (and the benchmark, turnover) must already stop at a given ``ruin_date``.
    """
    if not np.isfinite(periods_per_year) or periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
    r = _as_series(returns, "returns")
    both_series = isinstance(returns, pd.Series) and isinstance(benchmark, pd.Series)
    b = None if benchmark is None else _as_series(benchmark, "benchmark")
    if b is not None and not both_series:
        if len(b) != len(r):
            raise ValueError(
                f"benchmark: length {len(b)} differs from the returns' length {len(r)}"
            )
        b.index = r.index
    # ruin, on the portfolio's own returns (before any benchmark alignment)
    known = ruin_date is not None
    if not known:
        hit = np.flatnonzero(r.to_numpy() <= -1.0)
        if hit.size:
            stop = int(hit[0])
            ruin_date = r.index[stop]
            r = r.iloc[: stop + 1]
            if (
                isinstance(turnover, pd.Series)
                and isinstance(r.index, pd.DatetimeIndex)
                and isinstance(turnover.index, pd.DatetimeIndex)
            ):
                turnover = turnover[turnover.index <= ruin_date]
    if ruin_date is not None:
        how = (
            "the portfolio was ruined on"
            if known
            else "the wealth cumprod(1 + r) reaches zero (the portfolio is ruined) on"
        )
        warnings.warn(
            f"{source}: {how} {_label(ruin_date)}; the metrics cover the periods up to and "
            "including that date",
            RuinWarning,
            stacklevel=3,
        )
    own = int(r.notna().sum())
    if b is not None:
        if both_series:
            r, b = r.align(b, join="inner")
        else:
            b = b.iloc[: len(r)]
        keep = r.notna().to_numpy() & b.notna().to_numpy()
        r, b = r[keep], b[keep]
        if len(r) < own:
            warnings.warn(
                f"{source}: {own - len(r)} of the {own} periods with a return have no "
                "benchmark return (missing or NaN) and are left out of every metric, the "
                "portfolio's own included; pass a benchmark covering them, or none",
                UserWarning,
                stacklevel=3,
            )
    else:
        r = r[r.notna()]
    rv = r.to_numpy()
    rf = (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0
    ar = annual_return(rv, periods_per_year)
    mdd, peak, trough = drawdown(rv)
    out: dict[str, Any] = {
        "annual_return": ar,
        "annual_volatility": annual_volatility(rv, periods_per_year),
        "sharpe": sharpe(rv, periods_per_year, rf),
        "calmar": _calmar(ar, mdd),
        "max_drawdown": mdd,
        "max_drawdown_start": (r.index[max(peak, 0)] if trough >= 0 else None),
        "max_drawdown_end": (r.index[trough] if trough >= 0 else None),
    }
    wins, losses = rv[rv > 0], rv[rv < 0]
    out["profit_loss_ratio"] = (
        float(wins.mean() / abs(losses.mean())) if len(wins) and len(losses) else np.nan
    )
    out["n_periods"] = len(rv)
    out["ruined"] = ruin_date is not None
    out["ruin_date"] = ruin_date
    if b is not None:
        bv = b.to_numpy()
        ev = rv - bv
        ear = annual_return(ev, periods_per_year)
        emdd, _, _ = drawdown(ev)
        out["benchmark_annual_return"] = annual_return(bv, periods_per_year)
        out["excess_annual_return"] = ear
        out["excess_sharpe"] = sharpe(ev, periods_per_year)
        out["excess_calmar"] = _calmar(ear, emdd)
        out["excess_max_drawdown"] = emdd
        if isinstance(r.index, pd.DatetimeIndex) and len(r):
            month = r.index.to_period("M")
            pm = (1.0 + r).groupby(month).prod()
            bm = (1.0 + b).groupby(month).prod()
            out["monthly_win_rate"] = float((pm > bm).mean())
        else:
            out["monthly_win_rate"] = np.nan
    if turnover is not None:
        t = _as_series(turnover, "turnover")
        out["turnover"] = float(t.mean() * periods_per_year) if t.notna().any() else np.nan
    return out
