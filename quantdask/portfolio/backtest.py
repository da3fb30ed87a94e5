"""Daily A-share back-test of target weights: drift, tradability, T+1, delisting and costs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import dask
import numba
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.io.store import MarketLike, as_market
from quantdask.portfolio.costs import NO_COSTS, Costs
from quantdask.portfolio.metrics import RuinWarning, _ruin_metrics

Carry = Literal["next_day", "next_rebalance"]

#: A close within this distance (CNY) of a limit price counts as locked at the limit.
LIMIT_TOL = 1e-9


@numba.njit(cache=True, nogil=True)
def _fee(amount: float, rate: float, commission: float, min_commission: float) -> float:
    """Cost of one order of ``amount`` (in units of the initial capital)."""
    if amount <= 0.0:
        return 0.0
    comm = commission * amount
    if comm < min_commission:
        comm = min_commission
    return comm + rate * amount


@numba.njit(cache=True, nogil=True)
def backtest_kernel(
    ret: np.ndarray,
    tradable: np.ndarray,
    up_locked: np.ndarray,
    down_locked: np.ndarray,
    gone: np.ndarray,
    targets: np.ndarray,
    trade_day: np.ndarray,
    carry_next_day: bool,
    commission: float,
    min_commission: float,
    both_rate: float,
    stamp: np.ndarray,
    floor: float,
) -> tuple[Any, ...]:
    """Sequential daily back-test on dense (day x asset) arrays.

    Parameters are plain numpy arrays: ``ret`` daily simple returns (NaN = no price),
    ``tradable``/``up_locked``/``down_locked``/``gone`` booleans, ``targets`` (rebalance x
    asset) target weights traded on day ``trade_day[k]`` (increasing), costs as fractions
    (``min_commission`` in units of the initial capital), ``stamp`` the sell-side duty per
    day, ``floor`` the ruin threshold (units of the initial capital). Values are kept in
    units of the initial capital; the portfolio starts in cash (1).

    Ruin: on the first day whose NAV after the drift is ``<= floor``, or whose orders would
    leave it ``<= floor`` (those orders are then not executed), the book is frozen: no
    more drift, trades or costs, the positions count as cash at that day's value, and the
    NAV stays at ``max(nav, 0)``.

    Returns ``(values, cash, nav, pre_nav, traded, trade_cost, turnover, cost, ruin_day)``:
    end-of-day asset values, cash and NAV, the NAV before the day's trades, signed traded
    value per asset, cost per asset, one-way turnover and total cost as fractions of the
    pre-trade NAV, and the ruin day's position (-1: not ruined).
    """
    n_days, n_assets = ret.shape
    n_reb = targets.shape[0]
    values = np.zeros((n_days, n_assets))
    traded = np.zeros((n_days, n_assets))
    trade_cost = np.zeros((n_days, n_assets))
    cash_out = np.zeros(n_days)
    nav_out = np.zeros(n_days)
    pre_nav_out = np.zeros(n_days)
    turnover = np.zeros(n_days)
    cost_out = np.zeros(n_days)
    w = np.zeros(n_assets)
    tgt = np.zeros(n_assets)
    pending = np.zeros(n_assets, dtype=np.bool_)
    buy_amt = np.zeros(n_assets)
    buy_fee = np.zeros(n_assets)
    w_before = np.zeros(n_assets)
    cash = 1.0
    k = 0
    n_pending = 0
    ruin_day = -1
    frozen = 0.0
    for d in range(n_days):
        if ruin_day >= 0:
            cash_out[d] = frozen
            nav_out[d] = frozen
            pre_nav_out[d] = frozen
            continue
        # 1. drift with the day's returns; delisted holdings become cash at the last price
        for i in range(n_assets):
            if gone[d, i]:
                if w[i] != 0.0:
                    cash += w[i]
                    w[i] = 0.0
                if pending[i]:
                    pending[i] = False
                    n_pending -= 1
                tgt[i] = 0.0
            elif w[i] != 0.0:
                x = ret[d, i]
                if x == x:
                    w[i] *= 1.0 + x
        nav = cash
        for i in range(n_assets):
            nav += w[i]
        pre_nav_out[d] = nav
        if nav <= floor:
            # ruined by the drift: the book cannot pay one order
            ruin_day = d
            frozen = nav if nav > 0.0 else 0.0
            pre_nav_out[d] = frozen
            cash_out[d] = frozen
            nav_out[d] = frozen
            continue
        # 2. a new target replaces all earlier orders
        if k < n_reb and trade_day[k] == d:
            n_pending = 0
            for i in range(n_assets):
                tgt[i] = 0.0 if gone[d, i] else targets[k, i]
                pending[i] = tgt[i] != 0.0 or w[i] != 0.0
                if pending[i]:
                    n_pending += 1
            k += 1
        # 3. execute the open orders that the day's prices allow: sells, then buys
        day_cost = 0.0
        gross = 0.0
        cash_before = cash
        if n_pending > 0:
            for i in range(n_assets):
                w_before[i] = w[i]
        if n_pending > 0 and nav > 0.0:
            eps = 1e-12 * nav
            sell_rate = both_rate + stamp[d]
            blocked_sell = False
            n_buy = 0
            want = 0.0
            for i in range(n_assets):
                buy_amt[i] = 0.0
                if not pending[i]:
                    continue
                desired = tgt[i] * nav - w[i]
                if desired < -eps:
                    if tradable[d, i] and not down_locked[d, i]:
                        s = -desired
                        if s > w[i]:
                            s = w[i]
                        c = _fee(s, sell_rate, commission, min_commission)
                        w[i] -= s
                        cash += s - c
                        traded[d, i] = -s
                        trade_cost[d, i] = c
                        day_cost += c
                        gross += s
                        pending[i] = False
                        n_pending -= 1
                    else:
                        blocked_sell = True
                elif desired > eps:
                    if tradable[d, i] and not up_locked[d, i]:
                        buy_amt[i] = desired
                        buy_fee[i] = _fee(desired, both_rate, commission, min_commission)
                        want += desired + buy_fee[i]
                        n_buy += 1
                else:
                    pending[i] = False
                    n_pending -= 1
            if n_buy > 0:
                scale = 1.0
                if want > cash:
                    scale = cash / want if cash > 0.0 else 0.0
                for i in range(n_assets):
                    if buy_amt[i] <= 0.0:
                        continue
                    b = buy_amt[i] * scale
                    c = _fee(b, both_rate, commission, min_commission) if b > 0.0 else 0.0
                    if b > 0.0:
                        w[i] += b
                        cash -= b + c
                        traded[d, i] = b
                        trade_cost[d, i] = c
                        day_cost += c
                        gross += b
                    # an order cut short only by cash stays open while sells are blocked
                    if not (blocked_sell and scale < 1.0 - 1e-9):
                        pending[i] = False
                        n_pending -= 1
            turnover[d] = 0.5 * gross / nav
            cost_out[d] = day_cost / nav
        if not carry_next_day and n_pending > 0:
            for i in range(n_assets):
                pending[i] = False
            n_pending = 0
        total = cash
        for i in range(n_assets):
            total += w[i]
        if total <= floor:
            # ruined by the day's orders: they cost more than the book, so they are not
            # executed; the book is frozen at its pre-trade value
            for i in range(n_assets):
                w[i] = w_before[i]
                traded[d, i] = 0.0
                trade_cost[d, i] = 0.0
            cash = cash_before
            turnover[d] = 0.0
            cost_out[d] = 0.0
            ruin_day = d
            frozen = nav if nav > 0.0 else 0.0
            cash_out[d] = frozen
            nav_out[d] = frozen
            continue
        for i in range(n_assets):
            values[d, i] = w[i]
        cash_out[d] = cash
        nav_out[d] = total
    return (
        values,
        cash_out,
        nav_out,
        pre_nav_out,
        traded,
        trade_cost,
        turnover,
        cost_out,
        ruin_day,
    )


@dataclass(frozen=True)
class BacktestResult:
    """What :func:`quantdask.backtest` returns.

    Attributes
    ----------
    returns : pandas.Series
        Daily portfolio returns (net of costs), by date, from the day after the first trade
        to the end of the back-test. The first return includes the first trade's costs.
    benchmark_returns : pandas.Series or None
        Benchmark daily returns on the same dates.
    holdings : xarray.DataArray
        End-of-day weights (fraction of NAV) ``(date, asset)``, from the first trade date;
        ``asset`` holds the assets that ever had a non-zero target weight.
    cash : pandas.Series
        End-of-day cash weight.
    nav : pandas.Series
        Net asset value, 1.0 just before the first trade, from the first trade date.
    turnover : pandas.Series
        One-way turnover per day: ``0.5 * sum(|traded value|) / NAV`` before the trade (a
        first full purchase from cash is 0.5; a complete switch of holdings is 1.0).
    costs : pandas.Series
        Trading costs per day as a fraction of NAV.
    trades : pandas.DataFrame
        One row per executed order: ``date``, ``asset``, ``side`` ("buy"/"sell"),
        ``value`` (traded value as a fraction of the day's pre-trade NAV) and ``cost``
        (same units).
    ruin_date : pandas.Timestamp or None
        The day the portfolio was ruined (see :func:`quantdask.backtest`, Notes), None if
        it never was. From that day on nothing is traded, ``nav`` keeps that day's value
        (never below 0), ``holdings`` are 0 and ``cash`` is 1; ``returns`` after it are NaN.
    """

    returns: pd.Series
    benchmark_returns: pd.Series | None
    holdings: xr.DataArray
    cash: pd.Series
    nav: pd.Series
    turnover: pd.Series
    costs: pd.Series
    trades: pd.DataFrame
    ruin_date: pd.Timestamp | None = None

    @property
    def ruined(self) -> bool:
        """True when the portfolio was ruined (:attr:`ruin_date` is set)."""
        return self.ruin_date is not None

    def metrics(self, *, periods_per_year: float = 252, risk_free: float = 0.0) -> dict[str, Any]:
        """Performance metrics of :attr:`returns` against :attr:`benchmark_returns`.

        Parameters
        ----------
        periods_per_year : float, default 252
        risk_free : float, default 0.0
            Annual risk-free rate.

        Returns
        -------
        dict
            :func:`quantdask.metrics` of the returns, the benchmark and the turnover
            (``turnover`` is annualized: mean daily one-way turnover over the return dates,
            so the initial purchase on the first trade date is not counted, times
            ``periods_per_year``). A ruined back-test (:attr:`ruin_date`) is measured on
            the returns up to and including the ruin day, the benchmark and the turnover
            on the same dates; ``ruined`` and ``ruin_date`` say so.

        Warns
        -----
        RuinWarning
            When the back-test was ruined, naming the ruin date.
        """
        turnover = self.turnover.iloc[1:] if len(self.turnover) > 1 else self.turnover
        returns, bench = self.returns, self.benchmark_returns
        if self.ruin_date is not None:
            returns = returns.loc[: self.ruin_date]
            turnover = turnover.loc[: self.ruin_date]
            if bench is not None:
                bench = bench.loc[: self.ruin_date]
        return _ruin_metrics(
            returns,
            bench,
            periods_per_year=periods_per_year,
            risk_free=risk_free,
            turnover=turnover,
            ruin_date=self.ruin_date,
            source="BacktestResult.metrics",
        )


def _weights_array(weights: Any) -> xr.DataArray:
    if isinstance(weights, pd.DataFrame):
        weights = xr.DataArray(
            weights.to_numpy(dtype=np.float64),
            dims=("date", "asset"),
            coords={"date": pd.DatetimeIndex(weights.index), "asset": weights.columns.astype(str)},
        )
    if not isinstance(weights, xr.DataArray):
        raise TypeError(
            f"weights: expected a (date, asset) DataArray (qd.select_weights) or a DataFrame, "
            f"got {type(weights)!r}"
        )
    if set(weights.dims) != {"date", "asset"}:
        raise ValueError(f"weights: expected dims ('date', 'asset'), got {weights.dims}")
    return weights.transpose("date", "asset")


def _listing_day(daily: xr.DataTree, close: xr.DataArray, start: pd.Timestamp) -> xr.DataArray:
    """Lazy (date, asset) mask of each stock's listing day inside ``close``'s window.

    The listing day is the first date with a close on or after the ``list_date``
    coordinate, for stocks whose ``list_date`` is inside the window (``>= start``); stocks
    with an earlier or missing ``list_date`` have none in the window. Without a
    ``list_date`` coordinate it is the first date with a close in the store, found from
    the store's history before ``start`` and the window.
    """
    bar = close.notnull()
    if "list_date" in daily.coords:
        listed = daily["list_date"]
        cand = bar & (close["date"] >= listed)
        inside = listed >= np.datetime64(start, "ns")  # NaT: False
    else:
        cand = bar
        before = daily["close"].sel(date=slice(None, start - pd.Timedelta(1, "ns")))
        inside = ~before.notnull().any("date")
    return cand & (cand.cumsum("date") == 1) & inside


def _benchmark_returns(
    benchmark: Any, market: xr.DataTree, dates: pd.DatetimeIndex
) -> tuple[str, Any]:
    """Return ("lazy", dask-backed DataArray) or ("series", pandas Series)."""
    if isinstance(benchmark, pd.Series):
        b = benchmark.copy()
        b.index = pd.DatetimeIndex(b.index).astype("datetime64[ns]")
        missing = dates.difference(b.index)
        if len(missing):
            raise ValueError(
                f"benchmark: the Series has no return for {missing[0].date()} "
                "(it must cover every back-test date)"
            )
        return "series", b.reindex(dates).astype(np.float64)
    if not isinstance(benchmark, str):
        raise TypeError(
            f"benchmark: expected an index code, 'equal' or a Series, got {type(benchmark)!r}"
        )
    daily = market["daily"]
    if benchmark == "equal":
        sl = {"date": slice(dates[0], dates[-1])}
        close = daily["close"].sel(sl)
        r = close / daily["pre_close"].sel(sl) - 1.0
        if "suspended" in daily:
            r = r.where(~daily["suspended"].sel(sl).astype(bool))
        r = r.where(~_listing_day(daily, close, dates[0]))
        return "lazy", r.mean("asset", skipna=True)
    if "index" not in market.children:
        raise ValueError(
            f"benchmark: {benchmark!r} needs the market's 'index' node, which is missing"
        )
    idx = market["index"]
    codes = pd.Index(idx.indexes["index"])
    if benchmark not in codes:
        raise ValueError(f"benchmark: index {benchmark!r} is not in the store (has {list(codes)})")
    sl = {"date": slice(dates[0], dates[-1]), "index": benchmark}
    r = idx["close"].sel(sl) / idx["pre_close"].sel(sl) - 1.0
    # NaN on back-test dates the index node does not have (e.g. before the index existed)
    return "lazy", r.reindex(date=dates)


def backtest(
    market: MarketLike,
    weights: xr.DataArray | pd.DataFrame,
    *,
    costs: Costs | None = None,
    benchmark: str | pd.Series | None = None,
    start: Any = None,
    end: Any = None,
    lag: int = 0,
    carry: Carry = "next_day",
) -> BacktestResult:
    """Back-test target weights day by day under A-share trading rules.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        The market store (``daily`` fields ``close``, ``pre_close``, ``up_limit``,
        ``down_limit``, ``suspended``; coordinate ``delist_date``; ``index`` node for an
        index benchmark).
    weights : xarray.DataArray or pandas.DataFrame
        Target weights ``(date, asset)`` on rebalance dates (:func:`quantdask.select_weights`).
        Each date's weights must be ``>= 0`` and sum to at most 1 (the rest is cash); NaN
        counts as 0. Dates must be trading dates of the store; assets must be in the store.
    costs : Costs, optional
        Trading costs (:class:`quantdask.Costs`). Default: no costs.
    benchmark : str or pandas.Series, optional
        An index code of the store's ``index`` node (``"000300.SH"``), ``"equal"`` (the
        equal-weight mean return of all stocks traded that day, rebalanced daily, without
        each stock's listing day: see Notes), or a Series of daily returns covering the
        back-test dates.
    start, end : date-like, optional
        Back-test window: rebalances traded before ``start`` are ignored; the back-test
        stops at ``end`` (default: the store's last date).
    lag : int, default 0
        Trading days between a rebalance date and its trade. 0: target weights formed on
        ``t`` (with information up to ``t``'s close) trade at ``t``'s close and earn returns
        from ``t + 1`` on, the usual sell-side convention; 1: trade at the close of ``t + 1``.
    carry : {"next_day", "next_rebalance"}, default "next_day"
        What happens to an order the day's prices do not allow: ``"next_day"`` retries it at
        every following close until it fills or a new rebalance replaces it;
        ``"next_rebalance"`` drops it (the position stays as it is until the next rebalance).

    Returns
    -------
    BacktestResult
        ``returns``, ``benchmark_returns``, ``holdings``, ``cash``, ``nav``, ``turnover``,
        ``costs``, ``trades``, ``ruin_date``/``ruined`` and ``metrics()``.

    Warns
    -----
    RuinWarning
        When the portfolio is ruined (see Notes), with the date and the NAV.

    Raises
    ------
    TypeError
        If ``weights``, ``costs`` or ``benchmark`` has the wrong type.
    ValueError
        On negative weights, a date summing above 1, a date or asset not in the store, an
        unknown benchmark, a bad ``lag``/``carry``, or no rebalance inside the window.

    Notes
    -----
    Execution model, one decision per asset and day at the close:

    * Drift: between trades each position grows with ``close / pre_close`` (the store's
      adjusted daily return); suspended stocks keep their last value.
    * On a trade day the book moves to the target weights of the pre-trade NAV: sells
      first, then buys paid from cash (buys are scaled down together when cash, net of
      costs, is short).
    * Tradability: a suspended stock or one without a close is not traded; a stock whose
      close is at its up limit (``close >= up_limit - 1e-9``) cannot be bought, at its down
      limit (``close <= down_limit + 1e-9``) cannot be sold; a missing limit means no limit.
      Blocked orders follow ``carry``.
    * T+1: a position bought at a close can be sold at the next close at the earliest;
      since every asset trades at most once per day this always holds.
    * Delisting: from its ``delist_date`` on (or, for stores without that coordinate, on
      any date without a close that is not flagged suspended) a holding is turned into cash
      at its last traded price, without costs, and cannot be bought.
    * Costs (:class:`Costs`) are paid from cash; the minimum commission applies per order
      in CNY of ``capital * nav``. Buys are sized so that they and their costs fit in the
      cash; rounding up to a minimum commission can leave the cash a few CNY below zero.
    * Positions are fractional (no 100-share lots).
    * The ``"equal"`` benchmark leaves out each stock's listing day, whose return is
      measured from the issue price, which no one can buy at: the first date with a close
      on or after the ``list_date`` coordinate (when that is inside the back-test window;
      a stock listed before the store's first date has no listing day in it), or, in a
      store without ``list_date``, the stock's first date with a close in the store.
      Such a stock enters the mean from its second traded day.
    * Ruin: the floor is one minimum commission, ``costs.min_commission / costs.capital``
      of the initial capital (0 without a minimum commission). The portfolio is ruined on
      the first day whose NAV after the day's drift is at or below the floor (it cannot pay
      one order), or whose orders would leave it there (their minimum commissions cost
      more than the book; those orders are then not executed). From that day on it stops:
      no drift, trades or costs; its positions count as cash at that day's close, so
      ``nav`` keeps that day's value, never below 0; ``holdings`` are 0 and ``cash`` 1;
      ``returns`` are NaN after the ruin day. ``ruin_date`` / ``ruined`` on the result
      say so, a :class:`quantdask.portfolio.RuinWarning` names the date and the NAV, and
      :meth:`BacktestResult.metrics` covers the dates up to the ruin.

    No look-ahead: the holdings and returns up to date ``t`` depend only on the weights of
    rebalance dates up to ``t`` and on market data up to ``t``.

    Reduction point: the fields of the held assets over the window (and the benchmark) are
    computed in one ``dask.compute``; the day loop is a compiled numba kernel over
    (day x asset) arrays.

    Examples
    --------
    >>> import quantdask as qd  # doctest: +SKIP
    >>> m = qd.open_market("market.zarr")  # doctest: +SKIP
    >>> w = qd.select_weights(score, dates=qd.rebalance_dates(m, "M"), top=50)  # doctest: +SKIP
    >>> res = qd.backtest(m, w, costs=qd.Costs(), benchmark="000300.SH")  # doctest: +SKIP
    >>> res.metrics()["sharpe"]  # doctest: +SKIP
    """
    if costs is None:
        costs = NO_COSTS
    if not isinstance(costs, Costs):
        raise TypeError(f"costs: expected a qd.Costs, got {type(costs)!r}")
    if carry not in ("next_day", "next_rebalance"):
        raise ValueError(f"carry: expected 'next_day' or 'next_rebalance', got {carry!r}")
    if isinstance(lag, bool) or not isinstance(lag, int | np.integer) or lag < 0:
        raise ValueError(f"lag: expected an integer >= 0, got {lag!r}")
    tree = as_market(market)
    daily = tree["daily"]
    calendar = pd.DatetimeIndex(daily.indexes["date"]).astype("datetime64[ns]")
    assets = pd.Index(daily.indexes["asset"])

    w = _weights_array(weights)
    w_dates = pd.DatetimeIndex(w.indexes["date"]).astype("datetime64[ns]")
    if not w_dates.is_unique:
        raise ValueError("weights: duplicate rebalance dates")
    bad_dates = w_dates.difference(calendar)
    if len(bad_dates):
        raise ValueError(f"weights: date {bad_dates[0].date()} is not a trading date of the store")
    w_assets = pd.Index(w.indexes["asset"])
    bad_assets = w_assets.difference(assets)
    if len(bad_assets):
        raise ValueError(f"weights: asset {bad_assets[0]!r} is not in the store")
    # weights are small (rebalance dates x assets): bring them into memory
    wv = np.nan_to_num(np.asarray(w.values, dtype=np.float64), nan=0.0)
    order = np.argsort(w_dates.asi8)
    w_dates, wv = w_dates[order], wv[order]
    if (wv < 0).any():
        d, a = np.argwhere(wv < 0)[0]
        raise ValueError(
            f"weights: negative weight {wv[d, a]:.6g} for {w_assets[a]} on {w_dates[d].date()} "
            "(the back-test is long-only)"
        )
    sums = wv.sum(axis=1)
    if (sums > 1 + 1e-6).any():
        d = int(np.argmax(sums > 1 + 1e-6))
        raise ValueError(f"weights: they sum to {sums[d]:.6g} > 1 on {w_dates[d].date()}")

    last = (
        len(calendar) - 1
        if end is None
        else calendar.searchsorted(pd.Timestamp(end), side="right") - 1
    )
    trade_pos = calendar.get_indexer(w_dates) + lag
    keep = trade_pos <= last
    if start is not None:
        keep &= trade_pos >= calendar.searchsorted(pd.Timestamp(start), side="left")
    if not keep.any():
        raise ValueError("weights: no rebalance is traded inside the back-test window")
    trade_pos, wv = trade_pos[keep], wv[keep]
    first = int(trade_pos[0])
    window = calendar[first : last + 1]
    held = np.flatnonzero((wv > 0).any(axis=0))
    held_assets = w_assets[held]
    asset_idx = assets.get_indexer(held_assets)
    targets = wv[:, held]
    sel = {"date": slice(first, last + 1), "asset": asset_idx}

    fields = ["close", "pre_close"]
    lazy: list[Any] = [daily[f].isel(sel).data for f in fields]
    optional = [f for f in ("up_limit", "down_limit", "suspended") if f in daily]
    lazy += [daily[f].isel(sel).data for f in optional]
    has_delist = "delist_date" in daily.coords
    if has_delist:
        lazy.append(daily["delist_date"].isel(asset=asset_idx).data)
    bench_kind, bench = (None, None)
    if benchmark is not None:
        bench_kind, bench = _benchmark_returns(benchmark, tree, window)
        if bench_kind == "lazy":
            lazy.append(bench.data)
    # Reduction point: held assets' fields over the window (and the benchmark), one compute.
    got = dask.compute(*lazy)
    close = np.asarray(got[0], dtype=np.float64)
    pre = np.asarray(got[1], dtype=np.float64)
    data = dict(zip(optional, got[2 : 2 + len(optional)], strict=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = close / pre - 1.0
    suspended = (
        np.asarray(data["suspended"]).astype(bool)
        if "suspended" in data
        else np.zeros(close.shape, dtype=bool)
    )
    if has_delist:
        delist = pd.DatetimeIndex(np.asarray(got[2 + len(optional)])).astype("datetime64[ns]")
        gone = window.values[:, None] >= delist.values[None, :]
        gone &= ~np.isnat(delist.values)[None, :]
    else:
        gone = ~np.isfinite(close) & ~suspended
    tradable = np.isfinite(close) & ~suspended & ~gone
    ret = np.where(tradable, ret, np.nan)
    with np.errstate(invalid="ignore"):
        up_locked = (
            close >= np.asarray(data["up_limit"], dtype=np.float64) - LIMIT_TOL
            if "up_limit" in data
            else np.zeros(close.shape, dtype=bool)
        )
        down_locked = (
            close <= np.asarray(data["down_limit"], dtype=np.float64) + LIMIT_TOL
            if "down_limit" in data
            else np.zeros(close.shape, dtype=bool)
        )
    both_rate = costs.transfer_fee + costs.slippage_bps * 1e-4
    floor = float(costs.min_commission / costs.capital)
    values, cash, nav, pre_nav, traded, tcost, turnover, cost, ruin_day = backtest_kernel(
        np.ascontiguousarray(ret),
        np.ascontiguousarray(tradable),
        np.ascontiguousarray(up_locked),
        np.ascontiguousarray(down_locked),
        np.ascontiguousarray(gone),
        np.ascontiguousarray(targets),
        (trade_pos - first).astype(np.int64),
        carry == "next_day",
        float(costs.commission),
        float(costs.min_commission / costs.capital),
        float(both_rate),
        costs.stamp_duty_rates(window),
        floor,
    )
    date_index = pd.DatetimeIndex(window, name="date")
    nav_s = pd.Series(nav, index=date_index, name="nav")
    # NAV is 1.0 just before the first trade: the first return (day after the first trade)
    # includes the first trade's costs
    prev = np.concatenate([[1.0], nav[1:]])[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ret_v = nav[1:] / prev - 1.0
        weights_eod = np.where(nav[:, None] > 0, values / nav[:, None], 0.0)
        cash_w = np.where(nav > 0, cash / np.where(nav > 0, nav, 1.0), 1.0)
    ruin_date = None
    if ruin_day >= 0:
        ruin_date = date_index[ruin_day]
        # the book has stopped: no return after the ruin day
        ret_v[ruin_day:] = np.nan
        cash_w[ruin_day:] = 1.0
        if floor <= 0.0:
            why = "has reached 0"
        elif pre_nav[ruin_day] > floor:
            why = f"cannot pay the minimum commissions ({costs.min_commission:g} CNY) of its orders"
        else:
            why = f"cannot pay one minimum commission ({costs.min_commission:g} CNY)"
        warnings.warn(
            f"backtest: the portfolio is ruined on {ruin_date.date()}: its NAV "
            f"({nav[ruin_day]:.6g} of the initial capital, {nav[ruin_day] * costs.capital:.6g} "
            f"CNY) {why}; it stops trading there, the NAV stays at that value and the "
            "returns after it are NaN",
            RuinWarning,
            stacklevel=2,
        )
    returns = pd.Series(ret_v, index=date_index[1:], name="returns")
    holdings = xr.DataArray(
        weights_eod,
        dims=("date", "asset"),
        coords={"date": date_index, "asset": np.asarray(held_assets)},
        name="holdings",
    )
    bench_s = None
    if bench_kind == "lazy":
        bench_s = pd.Series(np.asarray(got[-1], dtype=np.float64), index=date_index)
    elif bench_kind == "series":
        bench_s = bench
    if bench_s is not None:
        bench_s = bench_s.iloc[1:].rename("benchmark_returns")
    di, ai = np.nonzero(traded)
    trades = pd.DataFrame(
        {
            "date": date_index[di],
            "asset": np.asarray(held_assets)[ai],
            "side": np.where(traded[di, ai] > 0, "buy", "sell"),
            "value": np.abs(traded[di, ai]) / pre_nav[di],
            "cost": tcost[di, ai] / pre_nav[di],
        }
    )
    return BacktestResult(
        returns=returns,
        benchmark_returns=bench_s,
        holdings=holdings,
        cash=pd.Series(cash_w, index=date_index, name="cash"),
        nav=nav_s,
        turnover=pd.Series(turnover, index=date_index, name="turnover"),
        costs=pd.Series(cost, index=date_index, name="costs"),
        trades=trades,
        ruin_date=ruin_date,
    )
