"""Section-1 market-state factors (FACTORS.md), per stock and per broad index.

Every factor here is registered with ``level=("asset", "index")``: the same definition runs on
the ``daily`` node (dims ``(date, asset)``) or on the ``index`` node (dims ``(date, index)``).
Conventions shared by all of them:

* Prices. Stock prices are backward-adjusted (``close * adj_factor``, likewise high and low),
  which is look-ahead free (the factor at ``t`` is cumulative up to ``t``) and keeps
  ratios such as close vs MA continuous across splits and dividends. Index points are used as
  they are.
* Returns are ``close / pre_close - 1`` (``pre_close`` is the previous traded close adjusted
  for corporate actions), so a return uses only its own row.
* Windows count trading days of the calendar and are strict: a window with a missing value
  (a suspended day, a day before listing) gives a missing result.
* Percentiles are :func:`quantdask.ops.ts_percentile` (0..100, ties counted half).
* No factor looks ahead: the value at ``t`` uses rows dated ``<= t`` only.
* Most factors are expressions (:mod:`quantdask.expression`): the registered function takes
  only its parameters and returns the expression, so its lookback and inputs are derived
  from the tree. The streak (a carried-state scan) and the index-level aggregations over
  constituents (turnover, amount share, below-book ratio) compute on the market and declare
  theirs.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from quantdask.expression.nodes import Const, Expr, Field, If
from quantdask.expression.window import (
    FFill,
    Kurt,
    Max,
    Mean,
    Min,
    Percentile,
    PercentileAll,
    Skew,
    Std,
)
from quantdask.factors.registry import UNBOUNDED, register_factor
from quantdask.ops import period_ids, ts_streak
from quantdask.ops.resample import bar_direction

BOTH = ("asset", "index")
#: Code of the CSI All Share index, the whole-market denominator of ``amount_share``.
ALL_SHARE = "000985.CSI"
#: Trading days in a year and in five years.
YEAR = 250
FIVE_YEARS = 1250
#: Missing 10-year yields are carried forward at most this many trading days.
YIELD_FFILL_LIMIT = 5
#: Minimum valid observations of an ``"all"`` (expanding) percentile.
ALL_MIN_PERIODS = YEAR


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _inputs(asset: tuple[str, ...], index: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Declared inputs per level (checked by ``compute`` before the factor runs)."""
    return {"asset": asset, "index": index}


def _same_field(field: str, *extra: str) -> dict[str, tuple[str, ...]]:
    """Inputs of a factor reading the same field from the level's node."""
    return _inputs((f"daily/{field}", *extra), (f"index/{field}", *extra))


_RETURNS = _inputs(("daily/close", "daily/pre_close"), ("index/close", "index/pre_close"))


def _node(market: xr.DataTree, level: str) -> xr.Dataset:
    name = "daily" if level == "asset" else "index"
    if name not in market.children:
        raise ValueError(f"level={level!r} needs the market's {name!r} node")
    # non-index coordinates (asset names, boards, index names) are dask-backed in the store;
    # xarray compares them eagerly when two nodes meet, so factors work on bare data
    return market[name].to_dataset().reset_coords(drop=True)


def _field(market: xr.DataTree, level: str, field: str) -> xr.DataArray:
    ds = _node(market, level)
    if field not in ds:
        node = "daily" if level == "asset" else "index"
        raise ValueError(f"the {node!r} node has no field {field!r}")
    return ds[field]


def _window(window: object, name: str, *, allow_all: bool = False) -> int | None:
    if allow_all and window == "all":
        return None
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        extra = " or 'all'" if allow_all else ""
        raise ValueError(f"{name}: window must be a positive int{extra}, got {window!r}")
    return int(window)


def _percentile(x: Expr, window: object, name: str) -> Expr:
    w = _window(window, name, allow_all=True)
    if w is None:
        return PercentileAll(x, ALL_MIN_PERIODS)
    return Percentile(x, w)


def _membership(market: xr.DataTree) -> xr.DataArray:
    if "index" not in market.children or "weight" not in market["index"].to_dataset():
        raise ValueError("index-level aggregation needs the 'index/weight' membership field")
    return market["index"]["weight"].reset_coords(drop=True) > 0


# --------------------------------------------------------------------------------------
# price position
# --------------------------------------------------------------------------------------


@register_factor("close_vs_ma", level=BOTH)
def close_vs_ma(*, window: int = 20) -> Expr:
    """Close vs its moving average, ``(C - MA_n) / MA_n * 100`` (in %).

    Parameters
    ----------
    window : int, default 20
        MA length ``n`` in trading days (the snapshot shows 5, 10, 20, 60, 120, 250).

    Notes
    -----
    ``(C - Mean(C, n)) / Mean(C, n) * 100`` with ``C = $adj_close`` (backward-adjusted
    close; index points at the index level). Lookback ``window - 1`` (derived); strict
    window. No look-ahead: uses closes up to ``t``.
    """
    c = Field("adj_close")
    ma = Mean(c, _window(window, "close_vs_ma"))
    return (c - ma) / ma * 100.0


@register_factor("close_vs_high", level=BOTH)
def close_vs_high(*, window: int = YEAR) -> Expr:
    """Close vs the highest high of the window, ``(C - max(H, n)) / max(H, n) * 100`` (in %).

    Parameters
    ----------
    window : int, default 250
        Window ``n`` in trading days (``t`` included).

    Notes
    -----
    Lookback ``window - 1`` (derived); strict window. At most 0 by construction. Stocks use
    backward-adjusted close and high. No look-ahead.
    """
    c = Field("adj_close")
    hh = Max(Field("adj_high"), _window(window, "close_vs_high"))
    return (c - hh) / hh * 100.0


@register_factor("close_vs_low", level=BOTH)
def close_vs_low(*, window: int = YEAR) -> Expr:
    """Close vs the lowest low of the window, ``(C - min(L, n)) / min(L, n) * 100`` (in %).

    Parameters
    ----------
    window : int, default 250
        Window ``n`` in trading days (``t`` included).

    Notes
    -----
    Lookback ``window - 1`` (derived); strict window. At least 0 by construction. Stocks use
    backward-adjusted close and low. No look-ahead.
    """
    c = Field("adj_close")
    ll = Min(Field("adj_low"), _window(window, "close_vs_low"))
    return (c - ll) / ll * 100.0


_FREQS = ("D", "W", "M", "Q", "Y")


def _streak_lookback(freq: str) -> int:
    if freq not in _FREQS:
        raise ValueError(f"streak: freq must be one of {_FREQS}, got {freq!r}")
    return UNBOUNDED


def _log_returns(ds: xr.Dataset, level: str) -> tuple[xr.DataArray, xr.DataArray]:
    """``(bar, log(close / pre_close))``: where a daily bar exists, and its raw log return.

    A bar exists where ``close`` is known (and, for stocks, the day is not suspended); its
    log return is NaN where ``pre_close`` is missing or the ratio is not positive.
    """
    close = ds["close"]
    bar = close.notnull()
    if level == "asset" and "suspended" in ds:
        bar = bar & ~ds["suspended"].astype(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = close / ds["pre_close"]
    lr = np.log(ratio.where(ratio > 0))
    return bar, lr.where(bar)


def _streak_levels(bar: xr.DataArray, lr: xr.DataArray, freq: str) -> xr.DataArray:
    """Integer levels whose bar-to-bar changes are the bars' directions (+1, -1, 0).

    ``ts_streak`` compares each date's value with the previous bar's last value. Feeding it
    ``Y`` with ``Y(t) - Y(end of previous bar) = direction(t)`` makes it count the
    directions decided by :func:`quantdask.ops.resample.bar_direction` (with its tolerance) instead
    of comparing prices by exact equality. Values are small integers, exact in float64.
    """
    if freq == "D":
        d = bar_direction(lr).fillna(0.0)
        return d.where(bar, 0.0).cumsum("date").where(bar)
    dates = bar["date"].values
    n = len(dates)
    pid = period_ids(dates, freq)
    first = np.r_[True, pid[1:] != pid[:-1]]
    # position of the last calendar date before each date's period (date 0 for the first)
    prev_end = np.maximum(np.maximum.accumulate(np.where(first, np.arange(n), 0)) - 1, 0)
    # compounded raw log return since the first date, carried unchanged over days without a bar
    growth = lr.fillna(0.0).cumsum("date")
    before = growth.isel(date=prev_end).assign_coords(date=dates).chunk(dict(growth.chunksizes))
    # direction of the period so far vs its start, on every date: on a day without a bar it
    # repeats the last bar day's, and it is exactly 0 while the period has no bar yet (the
    # carried growth equals ``before`` bit for bit), so a period without bars adds nothing
    d = bar_direction(growth - before)
    # telescoping increments: Y(t) = sum of the earlier periods' final directions + d(t),
    # and Y at the previous bar's last traded day is exactly that sum
    is_first = xr.DataArray(first, dims="date", coords={"date": dates})
    incr = d - d.shift(date=1).where(~is_first, 0.0)
    return incr.cumsum("date").where(bar)


@register_factor("streak", lookback=_streak_lookback, level=BOTH, inputs=_RETURNS)
def streak(market: xr.DataTree, *, freq: str = "D", level: str = "asset") -> xr.DataArray:
    """Signed up/down streak of daily, weekly, monthly, quarterly or yearly bars.

    ``+k`` when the bar in progress is up on the previous bar for the ``k``-th
    consecutive bar, ``-k`` for down bars, ``0`` when unchanged (a zero change breaks the
    streak).

    Parameters
    ----------
    market : xarray.DataTree
        Market tree.
    freq : {"D", "W", "M", "Q", "Y"}, default "D"
        Bar frequency; bars are calendar periods of the trading calendar.

    Notes
    -----
    Up / down is decided from the vendor's own prices, never from adjusted closes compared
    by exact equality (1-ulp noise or a rounded adjustment factor on an ex-dividend day
    would flip it). A daily bar's direction is that of ``close`` vs ``pre_close`` of the
    same row (raw). A weekly..yearly bar in progress at ``t`` compares with the last
    completed bar through the compounded raw daily returns ``close / pre_close`` since that
    bar's last traded day (the same as comparing backward-adjusted closes, without the
    adjustment factor). Both use :func:`quantdask.ops.resample.bar_direction`: a relative change
    within ``UNCHANGED_RTOL`` (1e-9) is unchanged.

    Lookback: all history (a streak has no bounded length; ``compute`` loads every date
    before ``start``). The weekly..yearly bar in progress at ``t`` is the period to date,
    so nothing after ``t`` is used. Suspended days are skipped. A day without a return
    (missing ``pre_close``) is missing and counts as unchanged.
    """
    _streak_lookback(freq)
    bar, lr = _log_returns(_node(market, level), level)
    return ts_streak(_streak_levels(bar, lr, freq), freq=freq).where(lr.notnull())


# --------------------------------------------------------------------------------------
# return moments
# --------------------------------------------------------------------------------------


@register_factor("ret_skew", level=BOTH)
def ret_skew(*, window: int = YEAR) -> Expr:
    """Skewness of daily returns over the window.

    Parameters
    ----------
    window : int, default 250
        Window in trading days (one year by default).

    Notes
    -----
    ``Skew($returns, window)``: returns ``close / pre_close - 1``
    (:func:`quantdask.ops.daily_returns`; a return uses only its own row). Lookback
    ``window - 1`` (derived); strict window (suspended days make it missing). No
    look-ahead.
    """
    return Skew(Field("returns"), _window(window, "ret_skew"))


@register_factor("ret_kurt", level=BOTH)
def ret_kurt(*, window: int = YEAR) -> Expr:
    """Excess kurtosis (kurtosis minus 3) of daily returns over the window.

    Parameters
    ----------
    window : int, default 250
        Window in trading days.

    Notes
    -----
    ``Kurt($returns, window)``. Lookback ``window - 1`` (derived); strict window. No
    look-ahead.
    """
    return Kurt(Field("returns"), _window(window, "ret_kurt"))


@register_factor("ret_skew_vs_5y", level=BOTH)
def ret_skew_vs_5y(*, window: int = YEAR) -> Expr:
    """Return skewness minus its own 5-year (1250-day) mean.

    Parameters
    ----------
    window : int, default 250
        Window of the skewness in trading days.

    Notes
    -----
    ``S - Mean(S, 1250)`` with ``S = Skew($returns, window)``. Lookback
    ``window - 1 + 1249`` (derived). No look-ahead.
    """
    sk = ret_skew(window=window)
    return sk - Mean(sk, FIVE_YEARS)


@register_factor("ret_kurt_vs_5y", level=BOTH)
def ret_kurt_vs_5y(*, window: int = YEAR) -> Expr:
    """Return excess kurtosis minus its own 5-year (1250-day) mean.

    Parameters
    ----------
    window : int, default 250
        Window of the kurtosis in trading days.

    Notes
    -----
    ``K - Mean(K, 1250)`` with ``K = Kurt($returns, window)``. Lookback
    ``window - 1 + 1249`` (derived). No look-ahead.
    """
    ku = ret_kurt(window=window)
    return ku - Mean(ku, FIVE_YEARS)


# --------------------------------------------------------------------------------------
# activity
# --------------------------------------------------------------------------------------


@register_factor(
    "turnover",
    level=BOTH,
    inputs=_inputs(
        ("daily/turnover_rate",), ("index/weight", "daily/float_share", "daily/turnover_rate")
    ),
)
def turnover(market: xr.DataTree, *, level: str = "asset") -> xr.DataArray:
    """Turnover rate, in % of float shares.

    Stocks: ``daily/turnover_rate``. Indices: float-share weighted over the constituents of
    the day, ``sum(float_share_i * turnover_i) / sum(float_share_i)``, membership from
    ``index/weight > 0``.

    Parameters
    ----------
    market : xarray.DataTree
        Market tree.

    Notes
    -----
    Lookback 0. Constituents without a turnover or float share on the day (suspended) are
    left out of both sums; missing when no constituent traded. No look-ahead.
    """
    daily = _node(market, "asset")
    if level == "asset":
        return daily["turnover_rate"]
    member = _membership(market)
    fs, tr = daily["float_share"], daily["turnover_rate"]
    ok = member & fs.notnull() & tr.notnull()
    num = (fs * tr).where(ok, 0.0).sum("asset")
    den = fs.where(ok, 0.0).sum("asset")
    return (num / den.where(den > 0)).transpose("date", "index")


def _all_share_amount(market: xr.DataTree) -> xr.DataArray:
    amount = _field(market, "index", "amount")
    if ALL_SHARE not in amount["index"].values:
        raise ValueError(f"amount_share needs the CSI All Share index {ALL_SHARE} in 'index'")
    return amount.sel(index=ALL_SHARE, drop=True)


@register_factor(
    "amount_share", level=BOTH, inputs=_same_field("amount", f"index/amount[{ALL_SHARE}]")
)
def amount_share(market: xr.DataTree, *, level: str = "asset") -> xr.DataArray:
    """Traded amount as a share of the whole market's (CSI All Share 000985.CSI), in %.

    Parameters
    ----------
    market : xarray.DataTree
        Market tree.

    Notes
    -----
    Lookback 0. ``amount / amount(000985.CSI) * 100`` on the same date. No look-ahead.
    """
    total = _all_share_amount(market)
    amount = _field(market, level, "amount")
    return amount / total.where(total > 0) * 100.0


# --------------------------------------------------------------------------------------
# valuation
# --------------------------------------------------------------------------------------


@register_factor("pe_ttm", level=BOTH)
def pe_ttm() -> Expr:
    """Price / trailing-12-month earnings (``pe_ttm`` of the store).

    Notes
    -----
    ``$pe_ttm``. Lookback 0. Indices: constituents' total market cap / total TTM net
    profit. Missing when trailing earnings are not positive (vendor convention). No
    look-ahead.
    """
    return Field("pe_ttm")


@register_factor("pe_ttm_pct", level=BOTH)
def pe_ttm_pct(*, window: int | str = YEAR) -> Expr:
    """Percentile (0..100) of today's PE-TTM within the window.

    Parameters
    ----------
    window : int or "all", default 250
        Window in trading days (250 = 1 year, 1250 = 5 years) or ``"all"``: all history up
        to ``t`` (expanding; needs at least 250 valid values).

    Notes
    -----
    ``Percentile($pe_ttm, window)`` or ``PercentileAll($pe_ttm, 250)``. Lookback
    ``window - 1`` (all history for ``"all"``), derived; strict for int windows. No
    look-ahead.
    """
    return _percentile(Field("pe_ttm"), window, "pe_ttm_pct")


@register_factor("dv_ttm", level=BOTH)
def dv_ttm() -> Expr:
    """Trailing-12-month cash dividend yield, in % (``dv_ttm`` of the store).

    Notes
    -----
    ``$dv_ttm``. Lookback 0. Indices: constituents' TTM cash dividends / total market
    value. No look-ahead.
    """
    return Field("dv_ttm")


@register_factor("dv_ttm_pct", level=BOTH)
def dv_ttm_pct(*, window: int | str = YEAR) -> Expr:
    """Percentile (0..100) of today's dividend yield within the window.

    Parameters
    ----------
    window : int or "all", default 250
        Window in trading days, or ``"all"`` (expanding, at least 250 valid values).

    Notes
    -----
    As :func:`pe_ttm_pct` on ``$dv_ttm``.
    """
    return _percentile(Field("dv_ttm"), window, "dv_ttm_pct")


@register_factor(
    "below_book_ratio", level=BOTH, inputs=_inputs(("daily/pb",), ("daily/pb", "index/weight"))
)
def below_book_ratio(market: xr.DataTree, *, level: str = "asset") -> xr.DataArray:
    """Share of constituents trading below book value (``0 < P/B < 1``), in %.

    Stocks: 100 when ``0 < pb < 1``, 0 when ``pb`` is known otherwise, missing when ``pb``
    is missing. Indices: the share of the day's constituents (``index/weight > 0``) with a
    known ``pb`` that have ``0 < pb < 1``.

    Parameters
    ----------
    market : xarray.DataTree
        Market tree.

    Notes
    -----
    Lookback 0. A negative P/B (negative book equity) is not "below book". No look-ahead.
    """
    pb = _field(market, "asset", "pb")
    below = ((pb > 0) & (pb < 1)).astype(np.float64)
    if level == "asset":
        return (below * 100.0).where(pb.notnull())
    member = _membership(market)
    ok = member & pb.notnull()
    n = ok.sum("asset")
    k = (below.where(ok, 0.0)).sum("asset")
    return (k / n.where(n > 0) * 100.0).transpose("date", "index")


# --------------------------------------------------------------------------------------
# equity-bond yield gap
# --------------------------------------------------------------------------------------


@register_factor("risk_premium", level=BOTH)
def risk_premium() -> Expr:
    """Equity-bond yield gap ``100 / PE_TTM - cgb_10y``, in %.

    Notes
    -----
    ``100 / $pe_ttm - FFill($macro/cgb_10y, 5)``: the 10-year government bond spot yield
    (in %), a missing yield carried forward up to 5 trading days (lookback 5, derived).
    Missing where PE-TTM is missing (non-positive earnings). No look-ahead.
    """
    return 100.0 / Field("pe_ttm") - FFill(Field("macro/cgb_10y"), YIELD_FFILL_LIMIT)


@register_factor("risk_premium_pct", level=BOTH)
def risk_premium_pct(*, window: int = FIVE_YEARS) -> Expr:
    """Percentile (0..100) of today's risk premium within the window.

    Parameters
    ----------
    window : int, default 1250
        Window in trading days (250 = 1 year, 1250 = 5 years).

    Notes
    -----
    ``Percentile(RP, window)``; lookback ``5 + window - 1`` (derived). No look-ahead.
    """
    return Percentile(risk_premium(), _window(window, "risk_premium_pct"))


@register_factor("risk_premium_band", level=BOTH)
def risk_premium_band(*, k: float = 1) -> Expr:
    """Band of the last year's risk premium: ``mean + k * std`` over 250 days, in %.

    Parameters
    ----------
    k : float, default 1
        Number of standard deviations (the snapshot shows -2, -1, 0, 1, 2).

    Notes
    -----
    ``Mean(RP, 250) + k * Std(RP, 250)`` (``Mean(RP, 250)`` for ``k = 0``); lookback
    ``5 + 249`` (derived). No look-ahead.
    """
    if isinstance(k, bool) or not isinstance(k, int | float | np.number):
        raise ValueError(f"risk_premium_band: k must be a number, got {k!r}")
    rp = risk_premium()
    mean = Mean(rp, YEAR)
    if k == 0:
        return mean
    return mean + float(k) * Std(rp, YEAR)


@register_factor("equity_bond_signal", level=BOTH)
def equity_bond_signal(*, window: int = FIVE_YEARS) -> Expr:
    """Equity-bond signal: +1 opportunity, -1 danger, 0 neutral.

    +1 when today's risk premium is above the 80th percentile of the window (percentile
    rank > 80), -1 when below the 20th (< 20), 0 otherwise; missing when the percentile is.

    Parameters
    ----------
    window : int, default 1250
        Window in trading days (5 years).

    Notes
    -----
    ``If(P > 80, 1, If(P < 20, -1, 0))`` with ``P = Percentile(RP, window)``; lookback
    ``5 + window - 1`` (derived). No look-ahead.
    """
    pct = risk_premium_pct(window=window)
    return If(pct > 80.0, Const(1.0), If(pct < 20.0, Const(-1.0), Const(0.0)))
