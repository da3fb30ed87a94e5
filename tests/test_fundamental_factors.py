"""Fundamental factors against hand computations on a small hand-built market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask.factors.fundamental as ff
from quantdask.factors.registry import factor
from quantdask.io import schema
from quantdask.testing import raise_if_dask_computes

# Dickinson sign patterns (CFO, CFI, CFF) and their stage, one per asset
SIGNS = [
    ((-1, -1, 1), 1),
    ((1, -1, 1), 2),
    ((1, -1, -1), 3),
    ((-1, -1, -1), 4),
    ((1, 1, 1), 4),
    ((1, 1, -1), 4),
    ((-1, 1, 1), 5),
    ((-1, 1, -1), 5),
]
ASSETS = [f"60000{i}.SH" for i in range(len(SIGNS))]
INDUSTRY = np.array([801010] * 4 + [801080] * 4)
QUARTERS = pd.date_range("2016-03-31", "2018-12-31", freq="QE")
DATES = pd.bdate_range("2017-06-01", "2018-12-31")
EVAL = "2018-09-14"  # latest known report for everyone: 2018-06-30


def single_quarter(a: int, k: int) -> dict[str, float]:
    """Single-quarter flows of asset ``a`` in quarter number ``k`` (0 = 2016-Q1)."""
    rev = 100.0 * (a + 1) * (1 + 0.05 * k)
    (so, si, sf), _ = SIGNS[a]
    return {
        "revenue": rev,
        "oper_cost": rev * (0.5 + 0.01 * k + 0.02 * a),
        "admin_exp": rev * (0.10 + 0.002 * k),
        "rd_exp": rev * (0.03 + 0.01 * a),
        "ebit": rev * 0.2,
        "n_income_attr_p": rev * (0.1 + 0.01 * a) - 5 * (k % 3),
        "n_cashflow_act": so * (10.0 + k),
        "n_cashflow_inv_act": si * (5.0 + a),
        "n_cash_flows_fnc_act": sf * 3.0,
        "div_cash": 1.0,
        "sell_exp": rev * 0.05,
    }


def stock_items(a: int, k: int) -> dict[str, float]:
    return {
        "total_assets": 1000.0 * (a + 1) + 10 * k,
        "total_liab": 400.0 * (a + 1) + 7 * k,
        "total_hldr_eqy": 600.0 * (a + 1) + 3 * k,
        "fix_assets": 200.0 + 5 * k * (a + 1),
        "cip": 50.0 + 2 * k if a % 2 else np.nan,
        "accounts_receiv": 80.0 + k,
        "adv_receipts": 20.0 + k if k < 8 else np.nan,
        "contract_liab": np.nan if k < 8 else 25.0 + k,
        "intan_assets": 30.0,
        "goodwill": 10.0 * a,
        "employees": 100.0 + 10 * a,
        "rd_staff": 10.0,
        "top5_customer_share": 0.1 * (a + 1),
        "top5_supplier_share": 0.05 * (a + 1),
        "capital_adequacy": 0.12 + 0.001 * k,
        "provision_coverage": 1.5 + 0.01 * k * a,
    }


def build_records() -> pd.DataFrame:
    rows = []
    for a, asset in enumerate(ASSETS):
        ytd: dict[str, float] = {}
        for k, end in enumerate(QUARTERS):
            if end.month == 3:
                ytd = dict.fromkeys(ytd, 0.0)
            sq = single_quarter(a, k)
            ytd = {key: ytd.get(key, 0.0) + v for key, v in sq.items()}
            rows.append(
                {
                    "asset": asset,
                    "end_date": end,
                    "ann_date": end + pd.Timedelta(days=40),
                    "update_flag": 0,
                    **ytd,
                    **stock_items(a, k),
                }
            )
    return pd.DataFrame(rows)


def build_market() -> xr.DataTree:
    recs = build_records()
    n_d, n_a = len(DATES), len(ASSETS)
    rng = np.random.default_rng(0)
    coords = {"date": DATES.values, "asset": np.array(ASSETS)}

    def panel(values):
        return xr.DataArray(values, dims=("date", "asset"), coords=coords).chunk(
            {"date": 50, "asset": 3}
        )

    close = np.full((n_d, n_a), 10.0)
    close[5:9, 2] = np.nan  # a suspension
    daily = xr.Dataset(
        {
            "close": panel(close),
            "total_mv": panel(rng.uniform(1e5, 1e6, (n_d, n_a))),
            "pb": panel(rng.uniform(0.5, 5, (n_d, n_a))),
            "ps_ttm": panel(rng.uniform(0.5, 5, (n_d, n_a))),
            "dv_ttm": panel(rng.uniform(0, 3, (n_d, n_a))),
            "industry": panel(np.broadcast_to(INDUSTRY, (n_d, n_a)).astype(np.int32)),
        }
    )
    fund = xr.Dataset(
        {c: ("record", recs[c].to_numpy(dtype=float)) for c in schema.STATEMENT_ITEMS}
    )
    fund["asset"] = ("record", recs["asset"].to_numpy().astype("U9"))
    fund["end_date"] = ("record", recs["end_date"].to_numpy().astype("datetime64[ns]"))
    fund["ann_date"] = ("record", recs["ann_date"].to_numpy().astype("datetime64[ns]"))
    fund["update_flag"] = ("record", recs["update_flag"].to_numpy())
    return xr.DataTree.from_dict({"daily": daily, "fundamentals": fund.chunk({"record": 20})})


@pytest.fixture(scope="module")
def hand_market() -> xr.DataTree:
    return build_market()


# reference: quarter numbers for 2018-Q2 (k=9) and the year before (k=5)
K = 9


def ttm_ref(a: int, item: str, k: int = K) -> float:
    return sum(single_quarter(a, j)[item] for j in range(k - 3, k + 1))


def at(da: xr.DataArray, date: str = EVAL) -> np.ndarray:
    return da.sel(date=date).values


def evaluate(name: str, m: xr.DataTree, **params) -> xr.DataArray:
    with raise_if_dask_computes():
        out = factor(name, **params)(m)
    return out.compute()


def test_roe_debt_margin_ratios(hand_market):
    n = len(ASSETS)
    ref = {
        "roe_ttm": [
            ttm_ref(a, "n_income_attr_p") / stock_items(a, K)["total_hldr_eqy"] for a in range(n)
        ],
        "debt_to_asset": [
            stock_items(a, K)["total_liab"] / stock_items(a, K)["total_assets"] for a in range(n)
        ],
        "ocf_to_revenue": [ttm_ref(a, "n_cashflow_act") / ttm_ref(a, "revenue") for a in range(n)],
        "labour_productivity": [
            ttm_ref(a, "revenue") / stock_items(a, K)["employees"] for a in range(n)
        ],
        "gross_margin": [1 - ttm_ref(a, "oper_cost") / ttm_ref(a, "revenue") for a in range(n)],
        "rd_intensity": [ttm_ref(a, "rd_exp") / ttm_ref(a, "revenue") for a in range(n)],
        "rd_to_revenue": [ttm_ref(a, "rd_exp") / ttm_ref(a, "revenue") for a in range(n)],
        "receivables_turnover": [
            ttm_ref(a, "revenue") / stock_items(a, K)["accounts_receiv"] for a in range(n)
        ],
        "customer_concentration": [0.1 * (a + 1) for a in range(n)],
        "supplier_concentration": [0.05 * (a + 1) for a in range(n)],
    }
    for name, expected in ref.items():
        np.testing.assert_allclose(at(evaluate(name, hand_market)), expected, err_msg=name)


def test_changes_and_growth(hand_market):
    n = len(ASSETS)
    gm = [
        [1 - ttm_ref(a, "oper_cost", k) / ttm_ref(a, "revenue", k) for a in range(n)]
        for k in (K, K - 4)
    ]
    np.testing.assert_allclose(at(evaluate("gross_margin_change", hand_market)), np.subtract(*gm))
    ebit = [(ttm_ref(a, "ebit") / ttm_ref(a, "ebit", K - 4) - 1) for a in range(n)]
    np.testing.assert_allclose(at(evaluate("ebit_ttm_growth", hand_market)), ebit)
    npg = [
        (ttm_ref(a, "n_income_attr_p") - ttm_ref(a, "n_income_attr_p", K - 4))
        / abs(ttm_ref(a, "n_income_attr_p", K - 4))
        for a in range(n)
    ]
    np.testing.assert_allclose(at(evaluate("net_profit_growth", hand_market)), npg)
    adm = [
        ttm_ref(a, "admin_exp") / ttm_ref(a, "revenue")
        - ttm_ref(a, "admin_exp", K - 4) / ttm_ref(a, "revenue", K - 4)
        for a in range(n)
    ]
    np.testing.assert_allclose(at(evaluate("admin_exp_ratio_change", hand_market)), adm)

    def cap(a, k):
        s = stock_items(a, k)
        return s["fix_assets"] + (0 if np.isnan(s["cip"]) else s["cip"])

    np.testing.assert_allclose(
        at(evaluate("capacity_expansion", hand_market)),
        [cap(a, K) / cap(a, K - 4) - 1 for a in range(n)],
    )

    def adv(a, k):
        s = stock_items(a, k)
        return np.nansum([s["adv_receipts"], s["contract_liab"]])

    np.testing.assert_allclose(
        at(evaluate("adv_receipts_growth", hand_market)),
        [adv(a, K) / adv(a, K - 4) - 1 for a in range(n)],
    )

    def tang(a, k):
        s = stock_items(a, k)
        return (s["total_assets"] - s["intan_assets"] - s["goodwill"]) / s["total_liab"]

    np.testing.assert_allclose(
        at(evaluate("tangible_to_liab_change", hand_market)),
        [tang(a, K) - tang(a, K - 4) for a in range(n)],
    )
    np.testing.assert_allclose(
        at(evaluate("capital_adequacy_change", hand_market)), [0.004] * n, rtol=1e-9
    )
    np.testing.assert_allclose(
        at(evaluate("provision_coverage_change", hand_market, periods=1)),
        [0.01 * a for a in range(n)],
        atol=1e-12,
    )


def test_lifecycle_table(hand_market):
    got = at(evaluate("lifecycle", hand_market))
    np.testing.assert_array_equal(got, [stage for _, stage in SIGNS])
    # plain-array cases, including zero (counts as positive) and missing
    codes = ff.lifecycle_codes(
        np.array([0.0, -1.0, np.nan]), np.array([-1.0, 0.0, 1.0]), np.array([-2.0, 1.0, 1.0])
    )
    np.testing.assert_array_equal(codes, [3, 5, np.nan])


def test_market_share_and_rd_to_mcap(hand_market):
    share = at(evaluate("market_share", hand_market))
    rev = np.array([ttm_ref(a, "revenue") for a in range(len(ASSETS))])
    expected = np.concatenate([rev[:4] / rev[:4].sum(), rev[4:] / rev[4:].sum()])
    np.testing.assert_allclose(share, expected)
    mv = hand_market["daily"]["total_mv"].sel(date=EVAL).values
    rd = np.array([ttm_ref(a, "rd_exp") for a in range(len(ASSETS))])
    np.testing.assert_allclose(at(evaluate("rd_to_mcap", hand_market)), rd / (mv * 1e4))


def test_pb_roe_residual_matches_polyfit(hand_market):
    res = evaluate("pb_roe_residual", hand_market)
    roe = evaluate("roe_ttm", hand_market)
    pb = hand_market["daily"]["pb"].compute()
    for date in ["2018-03-01", EVAL, "2018-12-28"]:
        x = roe.sel(date=date).values
        y = np.log(pb.sel(date=date).values)
        b, c = np.polyfit(x, y, 1)
        np.testing.assert_allclose(res.sel(date=date).values, y - (b * x + c), atol=1e-10)


def test_masked_where_not_traded(hand_market):
    out = evaluate("debt_to_asset", hand_market)
    assert np.isnan(out.isel(date=slice(5, 9), asset=2)).all()
    assert np.isfinite(out.isel(date=slice(5, 9), asset=1)).all()


def test_user_panel_factors(hand_market):
    panel = xr.DataArray(
        -np.arange(6.0).reshape(3, 2),
        dims=("date", "asset"),
        coords={"date": DATES[:3].values, "asset": ASSETS[:2]},
    )
    out = factor("policy_uncertainty_beta", panel=panel)(hand_market)
    assert out.shape == (len(DATES), len(ASSETS))
    np.testing.assert_array_equal(out.values[:3, :2], np.arange(6.0).reshape(3, 2))
    assert np.isnan(out.values[3:]).all()
    with pytest.raises(TypeError, match="patents"):
        factor("patents", panel=np.zeros(3))(hand_market)


def test_no_look_ahead_factors(hand_market):
    """Removing statements announced on or after t leaves factor values up to t unchanged."""
    t = DATES.get_loc(pd.Timestamp("2018-05-11"))
    fund = hand_market["fundamentals"].to_dataset()
    keep = fund["ann_date"].values < DATES[t].to_datetime64()
    cut = xr.DataTree.from_dict(
        {"daily": hand_market["daily"].to_dataset(), "fundamentals": fund.isel(record=keep)}
    )
    for name in ["roe_ttm", "gross_margin_change", "lifecycle", "capacity_expansion"]:
        full = factor(name)(hand_market).values[: t + 1]
        trunc = factor(name)(cut).values[: t + 1]
        np.testing.assert_array_equal(full, trunc, err_msg=name)


def test_group_sum_plain():
    x = xr.DataArray([[1.0, 2.0, np.nan, 4.0], [1.0, 1.0, 1.0, 1.0]], dims=("date", "asset"))
    g = xr.DataArray([[1, 1, 2, 0], [3, 2, 3, 3]], dims=("date", "asset"))
    np.testing.assert_array_equal(
        ff.group_sum(x, g).values, [[3.0, 3.0, np.nan, np.nan], [3.0, 1.0, 3.0, 3.0]]
    )
