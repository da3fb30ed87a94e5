"""qd.backtest on hand-built markets: drift, limits, suspension, delisting, T+1, costs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd
from quantdask.testing import raise_if_dask_computes


def make_tree(
    close,
    *,
    start="2024-01-01",
    pre_close=None,
    up=None,
    down=None,
    suspended=None,
    delist=None,
    index_close=None,
    chunks=None,
):
    """A tiny market: close (days x assets); pre_close = previous traded close by default."""
    close = np.asarray(close, dtype=float)
    n_days, n_assets = close.shape
    dates = pd.bdate_range(start, periods=n_days)
    assets = [f"60000{i}.SH" for i in range(n_assets)]
    if pre_close is None:
        last = pd.DataFrame(close).ffill().shift(1).to_numpy()
        pre_close = np.where(np.isfinite(close), last, np.nan)
        pre_close[0] = close[0]
    if suspended is None:
        suspended = np.zeros(close.shape, dtype=bool)
    data = {
        "close": (("date", "asset"), close),
        "pre_close": (("date", "asset"), np.asarray(pre_close, dtype=float)),
        "suspended": (("date", "asset"), np.asarray(suspended, dtype=bool)),
    }
    if up is not None:
        data["up_limit"] = (("date", "asset"), np.asarray(up, dtype=float))
    if down is not None:
        data["down_limit"] = (("date", "asset"), np.asarray(down, dtype=float))
    coords = {"date": dates, "asset": assets}
    if delist is not None:
        coords["delist_date"] = ("asset", pd.to_datetime(delist).values.astype("datetime64[ns]"))
    ds = xr.Dataset(data, coords=coords)
    if chunks:
        ds = ds.chunk(chunks)
    nodes = {"daily": ds}
    if index_close is not None:
        ic = np.asarray(index_close, dtype=float)
        nodes["index"] = xr.Dataset(
            {
                "close": (("date", "index"), ic[:, None]),
                "pre_close": (("date", "index"), np.r_[ic[0], ic[:-1]][:, None]),
            },
            coords={"date": dates, "index": ["000300.SH"]},
        )
    return xr.DataTree.from_dict(nodes)


def target(tree, rows):
    """rows: {day position: weights list}."""
    dates = tree["daily"].indexes["date"]
    pos = sorted(rows)
    return xr.DataArray(
        np.array([rows[p] for p in pos], dtype=float),
        dims=("date", "asset"),
        coords={"date": dates[pos], "asset": tree["daily"].indexes["asset"]},
    )


def random_close(rng, n_days, n_assets):
    r = rng.normal(0.0, 0.02, size=(n_days, n_assets))
    return 10 * np.cumprod(1 + r, axis=0)


# --- drift -------------------------------------------------------------------------------


def test_drift_matches_pandas_reference():
    rng = np.random.default_rng(1)
    close = random_close(rng, 40, 4)
    tree = make_tree(close)
    rows = {0: [0.1, 0.2, 0.3, 0.4], 15: [0.5, 0.0, 0.0, 0.5], 30: [0.25, 0.25, 0.25, 0.25]}
    res = qd.backtest(tree, target(tree, rows))
    # pandas reference: values grow with (1 + r) between rebalances, reset at each rebalance
    ret = pd.DataFrame(close).pct_change()
    nav = [1.0]
    weights = []
    vals = np.array(rows[0]) * 1.0
    weights.append(vals / vals.sum())
    for d in range(1, 40):
        vals = vals * (1 + ret.iloc[d].to_numpy())
        nav.append(vals.sum())
        if d in rows:
            vals = np.array(rows[d]) * vals.sum()
        weights.append(vals / vals.sum())
    nav = pd.Series(nav)
    ref_ret = nav.pct_change().iloc[1:].to_numpy()
    np.testing.assert_allclose(res.returns.to_numpy(), ref_ret, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.holdings.values, np.array(weights), rtol=1e-12, atol=1e-14)
    assert res.returns.index[0] == tree["daily"].indexes["date"][1]
    np.testing.assert_allclose(res.nav.to_numpy(), nav.to_numpy())
    # turnover: 0.5 for the first purchase; by hand on day 15
    assert res.turnover.iloc[0] == pytest.approx(0.5)
    pre = weights[14] * (1 + ret.iloc[15].to_numpy())
    pre = pre / pre.sum()
    assert res.turnover.iloc[15] == pytest.approx(0.5 * np.abs(pre - rows[15]).sum())
    assert res.turnover.iloc[1] == 0.0


def test_partial_weights_leave_cash_and_lag():
    close = np.array([[10.0, 10.0], [11.0, 10.0], [12.1, 10.0], [12.1, 11.0]])
    tree = make_tree(close)
    res = qd.backtest(tree, target(tree, {0: [0.5, 0.0]}))
    np.testing.assert_allclose(res.returns.to_numpy(), [0.05, 0.5 * 1.1 / 1.05 * 0.1, 0.0])
    np.testing.assert_allclose(res.cash.iloc[0], 0.5)
    lagged = qd.backtest(tree, target(tree, {0: [0.0, 1.0]}), lag=1)
    # traded at day 1's close: earns day 2 and day 3 returns of asset 1 only
    assert lagged.trades["date"].iloc[0] == tree["daily"].indexes["date"][1]
    np.testing.assert_allclose(lagged.returns.to_numpy(), [0.0, 0.1])


# --- tradability -------------------------------------------------------------------------


def limits(close, pct=0.1):
    pre = np.vstack([close[:1], close[:-1]])
    return np.round(pre * (1 + pct), 2), np.round(pre * (1 - pct), 2)


def test_limit_up_not_bought_then_bought_next_tradable_day():
    close = np.array(
        [[10.0, 10.0], [10.0, 11.0], [10.0, 12.1], [10.0, 12.0], [10.0, 12.5]]
    )  # asset 1 locked limit up on days 1 and 2
    up, down = limits(close)
    tree = make_tree(close, up=up, down=down)
    w = target(tree, {1: [0.0, 1.0]})
    res = qd.backtest(tree, w)
    h = res.holdings.sel(asset="600001.SH").to_numpy()
    np.testing.assert_allclose(h, [0.0, 0.0, 1.0, 1.0])  # bought at day 3's close
    buys = res.trades[res.trades.side == "buy"]
    assert list(buys["date"]) == [tree["daily"].indexes["date"][3]]
    np.testing.assert_allclose(res.returns.to_numpy(), [0.0, 0.0, 12.5 / 12.0 - 1])
    # carry to the next rebalance: the order is dropped, the book stays in cash
    res2 = qd.backtest(tree, w, carry="next_rebalance")
    assert (res2.holdings.values == 0).all()
    assert res2.trades.empty
    np.testing.assert_allclose(res2.returns.to_numpy(), 0.0)


def test_limit_down_not_sold_and_buy_waits_for_cash():
    close = np.array([[10.0, 10.0], [9.0, 10.0], [8.1, 10.0], [8.0, 10.5], [8.0, 11.0]])
    up, down = limits(close)
    tree = make_tree(close, up=up, down=down)
    # hold asset 0 from day 0; on day 1 switch to asset 1, but asset 0 is locked down on
    # days 1 and 2: it is sold on day 3, and the buy of asset 1 (no cash before) follows
    res = qd.backtest(tree, target(tree, {0: [1.0, 0.0], 1: [0.0, 1.0]}))
    h = res.holdings.to_numpy()
    np.testing.assert_allclose(h[:, 0], [1.0, 1.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(h[:, 1], [0.0, 0.0, 0.0, 1.0, 1.0])
    t = res.trades
    dates = tree["daily"].indexes["date"]
    assert list(t[t.side == "sell"]["date"]) == [dates[3]]
    assert list(t[(t.side == "buy") & (t.asset == "600001.SH")]["date"]) == [dates[3]]
    np.testing.assert_allclose(res.returns.to_numpy(), [-0.1, -0.1, 8.0 / 8.1 - 1, 11 / 10.5 - 1])


def test_suspended_not_traded_and_flat_during_suspension():
    nan = np.nan
    close = np.array([[10.0, 10.0], [nan, 10.0], [nan, 10.0], [12.0, 10.0], [12.0, 10.0]])
    susp = np.isnan(close)
    tree = make_tree(close, suspended=susp)
    res = qd.backtest(tree, target(tree, {0: [1.0, 0.0], 1: [0.0, 1.0]}))
    dates = tree["daily"].indexes["date"]
    # suspended on days 1-2: kept at its last value (return 0), sold on resumption (day 3)
    # after the resumption-day return 12 / 10 - 1 (pre_close = last traded close)
    np.testing.assert_allclose(res.returns.to_numpy(), [0.0, 0.0, 0.2, 0.0])
    sells = res.trades[res.trades.side == "sell"]
    assert list(sells["date"]) == [dates[3]]
    assert not ((res.trades["date"].isin(dates[1:3])) & (res.trades.asset == "600000.SH")).any()
    # a suspended stock cannot be bought either
    res2 = qd.backtest(tree, target(tree, {1: [1.0, 0.0]}))
    assert list(res2.trades["date"]) == [dates[3]]


@pytest.mark.parametrize("with_coord", [True, False])
def test_delisted_holding_liquidated_at_last_price(with_coord):
    nan = np.nan
    close = np.array([[10.0, 10.0], [11.0, 10.0], [9.0, 10.5], [nan, 11.0], [nan, 11.0]])
    delist = ["2024-01-04", "NaT"] if with_coord else None
    tree = make_tree(close, delist=delist)
    res = qd.backtest(tree, target(tree, {0: [0.5, 0.5]}))
    # day 3 (2024-01-04): asset 0 delisted; its value at the last close 9.0 becomes cash
    nav_ref = [1.0, 0.5 * 1.1 + 0.5, 0.5 * 0.9 + 0.5 * 1.05, 0.45 + 0.5 * 1.1, 0.45 + 0.55]
    np.testing.assert_allclose(res.nav.to_numpy(), nav_ref)
    assert res.holdings.sel(asset="600000.SH").values[3:].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(res.cash.iloc[3], 0.45 / 1.0)
    # a delisted stock is never bought
    res2 = qd.backtest(tree, target(tree, {0: [0.5, 0.5], 3: [0.5, 0.5]}))
    assert not ((res2.trades.asset == "600000.SH") & (res2.trades.side == "buy")).iloc[1:].any()


def test_t_plus_one_bought_today_sold_next_day_at_earliest():
    rng = np.random.default_rng(3)
    close = random_close(rng, 6, 2)
    tree = make_tree(close)
    # daily rebalance alternating between the two stocks
    rows = {d: ([1.0, 0.0] if d % 2 == 0 else [0.0, 1.0]) for d in range(6)}
    res = qd.backtest(tree, target(tree, rows))
    t = res.trades
    assert not t.duplicated(["date", "asset"]).any()  # one order per asset and day
    for asset in ("600000.SH", "600001.SH"):
        sub = t[t.asset == asset].sort_values("date")
        sides = sub.side.tolist()
        # buys and sells alternate, each sell on a later day than the buy before it
        assert all(a != b for a, b in zip(sides, sides[1:], strict=False))
        buy_days = sub[sub.side == "buy"]["date"].tolist()
        sell_days = sub[sub.side == "sell"]["date"].tolist()
        assert all(s > b for b, s in zip(buy_days, sell_days, strict=False))


def test_random_market_respects_tradability():
    rng = np.random.default_rng(11)
    n_days, n_assets = 60, 8
    close = random_close(rng, n_days, n_assets)
    susp = rng.random((n_days, n_assets)) < 0.1
    close[susp] = np.nan
    up, down = limits(pd.DataFrame(close).ffill().to_numpy())
    lock_up = rng.random(close.shape) < 0.1
    lock_dn = rng.random(close.shape) < 0.1
    close = np.where(lock_up, up, np.where(lock_dn, down, close))
    close[susp] = np.nan
    tree = make_tree(close, up=up, down=down, suspended=susp)
    rows = {
        d: rng.dirichlet(np.ones(n_assets)) * (rng.random(n_assets) < 0.6) for d in range(0, 60, 5)
    }
    rows = {d: (w / w.sum() if w.sum() > 0 else w) for d, w in rows.items()}
    for carry in ("next_day", "next_rebalance"):
        res = qd.backtest(tree, target(tree, rows), carry=carry)
        t = res.trades
        day = tree["daily"].indexes["date"].get_indexer(t["date"])
        col = tree["daily"].indexes["asset"].get_indexer(t["asset"])
        assert not susp[day, col].any()
        assert not (t.side.eq("buy").to_numpy() & (close[day, col] >= up[day, col] - 1e-9)).any()
        assert not (t.side.eq("sell").to_numpy() & (close[day, col] <= down[day, col] + 1e-9)).any()
        assert not t.duplicated(["date", "asset"]).any()
        assert (res.holdings.values >= -1e-12).all()
        np.testing.assert_allclose(res.holdings.sum("asset").values + res.cash.values, 1.0)


# --- costs -------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "stamp"), [("2023-08-21", 0.001), ("2023-09-04", 0.0005)])
def test_costs_hand_case(start, stamp):
    close = np.array([[10.0, 20.0], [10.0, 20.0], [10.0, 20.0]])
    tree = make_tree(close, start=start)
    costs = qd.Costs(capital=1e4)  # orders of ~5,000 CNY: the 5 CNY minimum commission binds
    res = qd.backtest(tree, target(tree, {0: [0.5, 0.5], 2: [0.0, 0.0]}), costs=costs)
    # day 0: two buys of 0.5 (units of the 10,000 CNY capital); fee = 5/1e4 + 1e-5 * x each;
    # they do not fit in the cash, so both are scaled by k with 2 * (k*0.5 + fee(k*0.5)) = 1
    fee = lambda x: max(0.00025 * x, 5 / 1e4) + 0.00001 * x  # noqa: E731
    k = 1.0 / (2 * (0.5 + fee(0.5)))
    b = 0.5 * k
    cash0 = 1.0 - 2 * (b + fee(b))
    nav0 = 2 * b + cash0
    assert res.nav.iloc[0] == pytest.approx(nav0)
    assert res.costs.iloc[0] == pytest.approx(2 * fee(b) / 1.0)
    # day 2: sell everything; sells pay stamp duty by date
    sfee = lambda x: max(0.00025 * x, 5 / 1e4) + (0.00001 + stamp) * x  # noqa: E731
    nav2 = cash0 + 2 * b - 2 * sfee(b)
    assert res.nav.iloc[2] == pytest.approx(nav2)
    assert res.returns.iloc[0] == pytest.approx(nav0 - 1.0)
    assert res.returns.iloc[1] == pytest.approx(nav2 / nav0 - 1.0)
    sells = res.trades[res.trades.side == "sell"]
    np.testing.assert_allclose(sells["cost"].to_numpy(), sfee(b) / nav0)
    # large capital: proportional costs only, with slippage
    big = qd.backtest(
        tree,
        target(tree, {0: [0.5, 0.5], 2: [0.0, 0.0]}),
        costs=qd.Costs(capital=1e9, slippage_bps=10),
    )
    rate_b = 0.00025 + 0.00001 + 0.001
    k = 1.0 / (1 + rate_b)
    assert big.nav.iloc[0] == pytest.approx(k)
    assert big.nav.iloc[2] == pytest.approx(k * (1 - rate_b - stamp))


def test_stamp_duty_schedule():
    c = qd.Costs()
    rates = c.stamp_duty_rates(pd.to_datetime(["2015-01-05", "2023-08-25", "2023-08-28"]))
    np.testing.assert_allclose(rates, [0.001, 0.001, 0.0005])
    np.testing.assert_allclose(
        qd.Costs(stamp_duty=0.002).stamp_duty_rates(pd.to_datetime(["2020-01-02"])), [0.002]
    )
    with pytest.raises(ValueError, match="commission"):
        qd.Costs(commission=-1)
    with pytest.raises(ValueError, match="capital"):
        qd.Costs(capital=0)


# --- no look-ahead, benchmark, laziness, errors --------------------------------------------


def test_no_look_ahead():
    rng = np.random.default_rng(5)
    close = random_close(rng, 50, 5)
    up, down = limits(close)
    tree = make_tree(close, up=up, down=down)
    rows = {d: rng.dirichlet(np.ones(5)) for d in range(0, 50, 10)}
    base = qd.backtest(tree, target(tree, rows), costs=qd.Costs())
    t = 24
    altered = close.copy()
    altered[t + 1 :] *= rng.uniform(0.5, 1.5, size=altered[t + 1 :].shape)
    up2, down2 = limits(altered)
    up2[: t + 1], down2[: t + 1] = up[: t + 1], down[: t + 1]
    tree2 = make_tree(altered, up=up2, down=down2)
    rows2 = dict(rows)
    rows2[30] = rng.dirichlet(np.ones(5))
    alt = qd.backtest(tree2, target(tree2, rows2), costs=qd.Costs())
    np.testing.assert_array_equal(base.nav.to_numpy()[: t + 1], alt.nav.to_numpy()[: t + 1])
    np.testing.assert_array_equal(base.holdings.values[: t + 1], alt.holdings.values[: t + 1])
    assert not np.allclose(base.nav.to_numpy()[t + 1 :], alt.nav.to_numpy()[t + 1 :])


def test_benchmarks_and_metrics():
    rng = np.random.default_rng(2)
    close = random_close(rng, 30, 3)
    idx = 1000 * np.cumprod(1 + rng.normal(0, 0.01, 30))
    susp = np.zeros(close.shape, dtype=bool)
    close[10, 2] = np.nan
    susp[10, 2] = True
    tree = make_tree(close, index_close=idx, suspended=susp)
    w = target(tree, {0: [0.3, 0.3, 0.4]})
    res = qd.backtest(tree, w, benchmark="000300.SH")
    ref = pd.Series(idx).pct_change().iloc[1:].to_numpy()
    np.testing.assert_allclose(res.benchmark_returns.to_numpy(), ref)
    assert res.benchmark_returns.index.equals(res.returns.index)
    eq = qd.backtest(tree, w, benchmark="equal")
    rets = pd.DataFrame(close / tree["daily"]["pre_close"].values - 1)
    np.testing.assert_allclose(eq.benchmark_returns.to_numpy(), rets.mean(axis=1).iloc[1:])
    s = pd.Series(np.full(30, 0.001), index=tree["daily"].indexes["date"])
    ser = qd.backtest(tree, w, benchmark=s)
    np.testing.assert_allclose(ser.benchmark_returns.to_numpy(), 0.001)
    m = res.metrics()
    ref_m = qd.metrics(res.returns, res.benchmark_returns)
    for key in ("annual_return", "sharpe", "excess_annual_return", "monthly_win_rate"):
        assert m[key] == pytest.approx(ref_m[key])
    assert m["turnover"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="not in the store"):
        qd.backtest(tree, w, benchmark="000905.SH")
    with pytest.raises(ValueError, match="cover"):
        qd.backtest(tree, w, benchmark=s.iloc[:10])


def test_lazy_store_one_compute_and_start_end():
    rng = np.random.default_rng(4)
    close = random_close(rng, 30, 6)
    tree = make_tree(close, chunks={"date": 7, "asset": 4}, index_close=np.arange(30) + 100.0)
    w = target(
        tree, {0: [0.5, 0.5, 0, 0, 0, 0], 10: [0, 0, 0, 0, 0.5, 0.5], 20: [0, 0, 0, 0, 0, 1.0]}
    )
    with raise_if_dask_computes(max_computes=1):
        res = qd.backtest(tree, w, benchmark="000300.SH", start="2024-01-05", end="2024-02-01")
    dates = tree["daily"].indexes["date"]
    # the first rebalance (day 0) is before start: the back-test begins at day 10
    assert res.nav.index[0] == dates[10]
    assert res.returns.index[-1] == pd.Timestamp("2024-02-01")
    assert list(res.holdings.asset.values) == ["600004.SH", "600005.SH"]
    # same numbers as from the in-memory market (chunk edges at days 7, 14, 21 do not matter)
    mem = qd.backtest(
        make_tree(close, index_close=np.arange(30) + 100.0),
        w,
        benchmark="000300.SH",
        start="2024-01-05",
        end="2024-02-01",
    )
    pd.testing.assert_series_equal(res.returns, mem.returns)
    pd.testing.assert_series_equal(res.benchmark_returns, mem.benchmark_returns)
    # by hand: days 11..20 half in each of assets 4 and 5 (drifting), then all in asset 5
    r = close[1:] / close[:-1] - 1
    v = np.array([0.5, 0.5])
    for d in range(11, 21):
        v = v * (1 + r[d - 1, 4:6])
    nav20 = v.sum()
    assert res.nav.iloc[10] == pytest.approx(nav20)
    assert res.returns.iloc[10] == pytest.approx(r[20, 5])


def test_errors():
    tree = make_tree(np.full((5, 2), 10.0))
    dates = tree["daily"].indexes["date"]
    with pytest.raises(ValueError, match="negative"):
        qd.backtest(tree, target(tree, {0: [-0.5, 1.0]}))
    with pytest.raises(ValueError, match="sum"):
        qd.backtest(tree, target(tree, {0: [0.8, 0.8]}))
    bad = xr.DataArray([[1.0]], dims=("date", "asset"), coords={"date": dates[:1], "asset": ["X"]})
    with pytest.raises(ValueError, match="not in the store"):
        qd.backtest(tree, bad)
    sat = xr.DataArray(
        [[1.0, 0.0]],
        dims=("date", "asset"),
        coords={"date": pd.to_datetime(["2024-01-06"]), "asset": ["600000.SH", "600001.SH"]},
    )
    with pytest.raises(ValueError, match="trading date"):
        qd.backtest(tree, sat)
    with pytest.raises(TypeError, match="weights"):
        qd.backtest(tree, np.ones((1, 2)))
    with pytest.raises(ValueError, match="carry"):
        qd.backtest(tree, target(tree, {0: [1.0, 0.0]}), carry="never")
    with pytest.raises(ValueError, match="window"):
        qd.backtest(tree, target(tree, {0: [1.0, 0.0]}), start="2024-02-01")
    # edge cases: all-cash targets, a single-day window
    cash_only = qd.backtest(tree, target(tree, {0: [0.0, 0.0]}))
    assert cash_only.holdings.sizes["asset"] == 0
    np.testing.assert_allclose(cash_only.returns.to_numpy(), 0.0)
    one_day = qd.backtest(tree, target(tree, {4: [1.0, 0.0]}))
    assert len(one_day.returns) == 0 and len(one_day.nav) == 1
    # a DataFrame of weights works too
    df = pd.DataFrame([[1.0, 0.0]], index=dates[:1], columns=["600000.SH", "600001.SH"])
    assert len(qd.backtest(tree, df).returns) == 4


# --- integration on the synthetic market -------------------------------------------------


def test_synthetic_market_integration(market):
    daily = market["daily"]
    close = daily["close"]
    score = -(close / close.shift(date=20) - 1)  # 20-day reversal, known at t's close
    reb = qd.rebalance_dates(market, "M")[1:]
    with raise_if_dask_computes(max_computes=1):
        w = qd.select_weights(score, dates=reb, top=20, universe=~daily["is_st"])
    with raise_if_dask_computes(max_computes=1):
        res = qd.backtest(market, w, costs=qd.Costs(), benchmark="000300.SH")
    h = res.holdings
    assert (h.values >= -1e-12).all()
    np.testing.assert_allclose(h.sum("asset").values + res.cash.values, 1.0)
    # the trades respect the store's tradability flags
    fields = daily.to_dataset()[["close", "up_limit", "down_limit", "suspended"]]
    fields = fields.sel(asset=h.asset).compute()
    t = res.trades
    di = fields.indexes["date"].get_indexer(t["date"])
    ai = fields.indexes["asset"].get_indexer(t["asset"])
    c = fields["close"].values[di, ai]
    assert np.isfinite(c).all()
    assert not fields["suspended"].values[di, ai].any()
    buy = t.side.eq("buy").to_numpy()
    with np.errstate(invalid="ignore"):
        assert not (buy & (c >= fields["up_limit"].values[di, ai] - 1e-9)).any()
        assert not (~buy & (c <= fields["down_limit"].values[di, ai] + 1e-9)).any()
    # the benchmark is the index's close / pre_close
    idx = market["index"].to_dataset()[["close", "pre_close"]].sel(index="000300.SH").compute()
    ref = (idx["close"] / idx["pre_close"] - 1).to_pandas().reindex(res.returns.index)
    np.testing.assert_allclose(res.benchmark_returns.to_numpy(), ref.to_numpy())
    m = res.metrics()
    for key in ("annual_return", "sharpe", "max_drawdown", "excess_sharpe", "monthly_win_rate"):
        assert np.isfinite(m[key])
    assert m["turnover"] > 0
    # no look-ahead: a store cut after date t gives the same book up to t
    t_cut = res.nav.index[300]
    cut = market.sel(date=slice(None, t_cut))
    res_cut = qd.backtest(cut, w.sel(date=slice(None, t_cut)), costs=qd.Costs())
    np.testing.assert_array_equal(res_cut.nav.to_numpy(), res.nav.to_numpy()[:301])


def _reference_backtest(close, pre, up, down, susp, rows, fee_buy, fee_sell):
    """Plain-Python day loop: carry='next_rebalance', proportional costs, close execution."""
    n_days, n_assets = len(close), len(close[0])
    pos = [0.0] * n_assets
    cash = 1.0
    navs = []
    for d in range(n_days):
        for i in range(n_assets):
            if not susp[d][i] and close[d][i] == close[d][i]:
                pos[i] *= close[d][i] / pre[d][i]
        nav = cash + sum(pos)
        if d in rows:
            tgt = rows[d]
            ok = [not susp[d][i] and close[d][i] == close[d][i] for i in range(n_assets)]
            for i in range(n_assets):
                want = tgt[i] * nav - pos[i]
                if want < -1e-12 * nav and ok[i] and not close[d][i] <= down[d][i] + 1e-9:
                    pos[i] += want
                    cash += -want * (1 - fee_sell)
            buys = {}
            for i in range(n_assets):
                want = tgt[i] * nav - pos[i]
                if want > 1e-12 * nav and ok[i] and not close[d][i] >= up[d][i] - 1e-9:
                    buys[i] = want
            need = sum(b * (1 + fee_buy) for b in buys.values())
            k = min(1.0, cash / need) if need > 0 else 0.0
            for i, b in buys.items():
                pos[i] += k * b
                cash -= k * b * (1 + fee_buy)
        navs.append(cash + sum(pos))
    return np.array(navs)


def test_matches_plain_python_loop_with_limits_suspensions_costs():
    rng = np.random.default_rng(21)
    n_days, n_assets = 45, 6
    close = random_close(rng, n_days, n_assets)
    susp = rng.random(close.shape) < 0.08
    susp[0] = False
    close[susp] = np.nan
    ffilled = pd.DataFrame(close).ffill().to_numpy()
    up, down = limits(ffilled)
    lock = rng.random(close.shape)
    close = np.where(lock < 0.08, up, np.where(lock > 0.92, down, close))
    close[susp] = np.nan
    tree = make_tree(close, up=up, down=down, suspended=susp)
    pre = tree["daily"]["pre_close"].values
    rows = {d: rng.dirichlet(np.ones(n_assets)) for d in range(0, n_days, 4)}
    costs = qd.Costs(min_commission=0.0, slippage_bps=5.0, stamp_duty=0.001)
    res = qd.backtest(tree, target(tree, rows), costs=costs, carry="next_rebalance")
    fee_buy = 0.00025 + 0.00001 + 0.0005
    ref = _reference_backtest(
        close.tolist(), pre.tolist(), up.tolist(), down.tolist(), susp.tolist(), rows,
        fee_buy, fee_buy + 0.001,
    )  # fmt: skip
    np.testing.assert_allclose(res.nav.to_numpy(), ref, rtol=1e-12)
    assert len(res.trades) > 20
    # the scenario does exercise the rules: some rebalance-day orders were blocked
    reb = np.array(sorted(rows))
    with np.errstate(invalid="ignore"):
        blocked = susp[reb] | (close[reb] >= up[reb] - 1e-9) | (close[reb] <= down[reb] + 1e-9)
    assert blocked.sum() >= 5


# --- the equal-weight benchmark skips listing days -----------------------------------------


def _listing_tree(with_list_date, chunks=None):
    """A and B trade from day 0; C lists on day 2, +300% from its issue price of 10."""
    nan = np.nan
    close = np.array(
        [
            [10.0, 20.0, nan],
            [11.0, 19.0, nan],
            [12.1, 19.0, 40.0],
            [12.1, 20.9, 44.0],
            [13.31, 20.9, 44.0],
        ]
    )
    pre = np.array(
        [
            [10.0, 20.0, nan],
            [10.0, 20.0, nan],
            [11.0, 19.0, 10.0],  # C's pre_close on its listing day is the issue price
            [12.1, 19.0, 40.0],
            [12.1, 20.9, 44.0],
        ]
    )
    tree = make_tree(close, pre_close=pre, chunks=chunks)
    if not with_list_date:
        return tree
    ds = tree["daily"].to_dataset()
    dates = ds.indexes["date"]
    ld = pd.DatetimeIndex(["2019-03-01", "2019-03-01", dates[2]]).values.astype("M8[ns]")
    return xr.DataTree.from_dict({"daily": ds.assign_coords(list_date=("asset", ld))})


@pytest.mark.parametrize("chunks", [None, {"date": 2}], ids=["memory", "chunked"])
@pytest.mark.parametrize("with_list_date", [True, False])
def test_equal_benchmark_excludes_listing_day(with_list_date, chunks):
    tree = _listing_tree(with_list_date, chunks)
    with raise_if_dask_computes(max_computes=1):
        res = qd.backtest(tree, target(tree, {0: [0.5, 0.5, 0.0]}), benchmark="equal")
    # by hand: day 1 mean(A, B); day 2 (C's listing day) mean(A, B) only; then all three
    want = [
        (0.1 + (19 / 20 - 1)) / 2,
        (0.1 + 0.0) / 2,
        (0.0 + 0.1 + 0.1) / 3,
        (0.1 + 0.0 + 0.0) / 3,
    ]
    np.testing.assert_allclose(res.benchmark_returns.to_numpy(), want, rtol=1e-12)


def test_equal_benchmark_listing_day_before_the_window_and_stock_listed_before_the_store():
    tree = _listing_tree(True)
    # the back-test starts after C's listing day: nothing is excluded on day 3 and 4
    res = qd.backtest(tree, target(tree, {2: [0.5, 0.5, 0.0]}), benchmark="equal")
    np.testing.assert_allclose(
        res.benchmark_returns.to_numpy(), [(0.0 + 0.1 + 0.1) / 3, 0.1 / 3], rtol=1e-12
    )
    # a stock listed long before the store whose first bar in the store comes late (it
    # was suspended) is not on its listing day: its first return counts
    ds = tree["daily"].to_dataset()
    close = ds["close"].values.copy()
    close[0, 1] = np.nan
    ds["close"] = (("date", "asset"), close)
    late = xr.DataTree.from_dict({"daily": ds})
    res = qd.backtest(late, target(late, {0: [1.0, 0.0, 0.0]}), benchmark="equal")
    np.testing.assert_allclose(res.benchmark_returns.iloc[0], (0.1 + (19 / 20 - 1)) / 2)


# --- delisting: bars that end, with a delist_date ------------------------------------------


@pytest.mark.parametrize(
    ("delist_day", "flag_suspended"),
    [(3, False), (5, False), (5, True)],
    ids=["inferred-next-session", "later-delist-date", "later-delist-date-suspended"],
)
def test_holding_whose_bars_end_is_sold_at_its_last_close(delist_day, flag_suspended):
    """A's bars stop after day 2; its delist_date is the next session (as an inferred
    delisting sets it) or a later date (vendor's delisting date after the last trade)."""
    nan = np.nan
    close = np.array(
        [
            [10.0, 10.0],
            [11.0, 10.0],
            [12.0, 10.0],
            [nan, 10.0],
            [nan, 10.0],
            [nan, 11.0],
            [nan, 12.1],
        ]
    )
    susp = np.zeros(close.shape, dtype=bool)
    if flag_suspended:
        susp[3:delist_day, 0] = True
    dates = pd.bdate_range("2024-01-01", periods=7)
    tree = make_tree(close, suspended=susp, delist=[dates[delist_day], "NaT"])
    # half in each; on day 4 the target is all in B
    res = qd.backtest(tree, target(tree, {0: [0.5, 0.5], 4: [0.0, 1.0]}))
    last_value = 0.5 * 12.0 / 10.0  # A's position at its last close
    nav = [1.0, 1.05, 1.1, 1.1, 1.1]
    if delist_day == 3:
        # cash on day 3, in B from day 4's close: B earns +10% twice
        nav += [1.1 * 1.1, 1.1 * 1.21]
    else:
        # A cannot be sold before its delist_date (no price): the buy of B waits for the
        # cash, which arrives on day 5 at A's last close, and is invested at day 5's close
        nav5 = 0.5 * 1.1 + last_value
        nav += [nav5, nav5 * 1.1]
    np.testing.assert_allclose(res.nav.to_numpy(), nav, rtol=1e-12)
    h = res.holdings.sel(asset="600000.SH").to_numpy()
    np.testing.assert_allclose(h[delist_day:], 0.0)
    assert h[0] == pytest.approx(0.5)
    assert h[2] == pytest.approx(last_value / 1.1)
    # the NAV is not left frozen in the dead stock: it ends fully in B
    np.testing.assert_allclose(res.holdings.sel(asset="600001.SH").values[-1], 1.0)
    np.testing.assert_allclose(res.cash.iloc[-1], 0.0, atol=1e-12)
    # the liquidation is not an order: no sell of A is in the trades table
    assert not ((res.trades.asset == "600000.SH") & (res.trades.side == "sell")).any()
