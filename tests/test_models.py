"""Scoring models: config validation, hand-computed scores, shipped models, chain study."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import rankdata

import quantdask as qd
from quantdask.factors.registry import register_factor, unregister_factor
from quantdask.models import ModelConfigError, load_model, read_config, shipped_models
from quantdask.models.chain import segment_profitability, tier_returns, tier_summary
from quantdask.testing import raise_if_dask_computes

nan = np.nan
ASSETS = ["600000.SH", "600001.SH", "600002.SH", "000001.SZ", "000002.SZ", "000003.SZ", "000004.SZ"]
DATES = pd.bdate_range("2020-01-01", periods=5)
F1 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
F2 = [3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 9.0]
PS = [2.0, 3.0, 5.0, 1.0, 4.0, 2.0, 1.0]
IND = [801780, 801780, 801780, 801790, 801790, 801790, 801010]  # last: in no model group


def _panel(row, dtype=float):
    return xr.DataArray(
        np.tile(np.asarray(row, dtype=dtype), (len(DATES), 1)),
        dims=("date", "asset"),
        coords={"date": DATES.values, "asset": ASSETS},
    ).chunk({"date": 2, "asset": 3})


def hand_market(st=None, suspended=None, list_date=None, weight=None) -> xr.DataTree:
    n = len(ASSETS)
    daily = xr.Dataset(
        {
            "close": _panel([10.0] * n),
            "f1": _panel(F1),
            "f2": _panel(F2),
            "ps_ttm": _panel(PS),
            "total_mv": _panel([100.0] * n),
            "industry": _panel(IND, np.int32),
            "is_st": _panel(st or [False] * n, bool),
            "suspended": _panel(suspended or [False] * n, bool),
        }
    )
    ld = list_date or ["2010-01-01"] * n
    daily = daily.assign_coords(list_date=("asset", pd.to_datetime(ld).values))
    tree = {"daily": daily}
    if weight is not None:
        w = xr.DataArray(
            np.tile(np.asarray(weight, float), (len(DATES), 1))[:, None, :],
            dims=("date", "index", "asset"),
            coords={"date": DATES.values, "index": ["000955.CSI"], "asset": ASSETS},
        )
        tree["index"] = xr.Dataset({"weight": w})
    return xr.DataTree.from_dict(tree)


@pytest.fixture(scope="module", autouse=True)
def test_factors():
    @register_factor("_t_f1", override=True)
    def _f1(market):
        return market["daily"]["f1"]

    @register_factor("_t_f2", override=True)
    def _f2(market):
        return market["daily"]["f2"]

    yield
    unregister_factor("_t_f1")
    unregister_factor("_t_f2")


BASE = {
    "name": "hand",
    "universe": {"min_listed_days": 0},
    "grouping": {
        "by": "industry",
        "groups": {"banks": [801780], "brokers": [801790]},
        "families": {"fin": ["banks"]},
    },
    "common": {"scope": "universe", "factors": [{"name": "_t_f1", "weight": 2}]},
    "specific": {
        "banks": {"factors": [{"name": "_t_f2", "direction": "-"}]},
        "brokers": {"factors": [{"name": "_t_f2", "direction": "+"}]},
    },
    "combine": {"rule": "weighted_mean"},
    "portfolio": {"top": 2, "weighting": "score", "power": 3},
}

# hand-computed percentile scores (rank / n * 100) for the first six assets
S_F1 = np.array([1, 2, 3, 4, 5, 6]) / 6 * 100  # universe of 6 (asset 7 is in no group)
S_F2 = np.array([1, 2, 3, 1, 2, 3]) / 3 * 100  # banks: high->low of 3,2,1; brokers: low->high


def cfg(**changes):
    c = copy.deepcopy(BASE)
    for k, v in changes.items():
        c[k] = v
    return c


def first_row(model, market, **kw):
    return model.scores(market, DATES[[0, 3]], **kw).values[0]


def test_weighted_mean_model_hand():
    m = hand_market()
    got = first_row(load_model(BASE), m)
    np.testing.assert_allclose(got[:6], (2 * S_F1 + S_F2) / 3)
    assert np.isnan(got[6])  # not in any group -> not in the universe


def test_common_specific_model_hand():
    m = hand_market()
    c = cfg(combine={"rule": "common_specific", "common_weight": 0.3, "specific_weight": 0.7})
    got = first_row(load_model(c), m)[:6]
    mix = 0.3 * S_F1 + 0.7 * S_F2
    np.testing.assert_allclose(got, 100 * (mix - mix.min()) / (mix.max() - mix.min()))


def test_mean_over_std_model_hand():
    m = hand_market()
    c = cfg(combine={"rule": "mean_over_5_plus_mean_over_std"})
    got = first_row(load_model(c), m)[:6]
    s = np.stack([S_F1, S_F2])
    mean, std = s.mean(axis=0), np.maximum(s.std(axis=0), 1.0)
    np.testing.assert_allclose(got, mean / 5 + mean / std)


def test_family_weights_and_group_scope():
    m = hand_market()
    common = {
        "scope": "group",
        "factors": [{"name": "_t_f1", "weight": {"fin": 4, "default": 1}}],
    }
    got = first_row(load_model(cfg(common=common)), m)[:6]
    s_f1 = np.array([1, 2, 3, 1, 2, 3]) / 3 * 100  # ranked within each group
    w = np.array([4, 4, 4, 1, 1, 1])
    np.testing.assert_allclose(got, (w * s_f1 + S_F2) / (w + 1))


def test_ps_and_penalty_multipliers():
    m = hand_market()
    c = cfg(
        multipliers=[
            {"kind": "ps"},
            {"kind": "penalty", "factor": "_t_f2", "below": 2.0, "penalty": 0.5},
        ]
    )
    got = first_row(load_model(c), m)[:6]
    ps = np.array(PS[:6])
    ps_mult = 1 / (ps - ps.min() + 1)
    pen = np.where(np.array(F2[:6]) < 2.0, 0.5, 1.0)
    np.testing.assert_allclose(got, (2 * S_F1 + S_F2) / 3 * ps_mult * pen)


def test_universe_filters():
    m = hand_market(
        st=[True] + [False] * 6,
        suspended=[False, True] + [False] * 5,
        list_date=["2010-01-01"] * 5 + ["2020-01-02", "2010-01-01"],
        weight=[0.2, 0.2, 0.2, 0.2, 0.0, 0.2, 0.0],
    )
    c = cfg(universe={"min_listed_days": 2, "index": "000955.CSI"})
    tab = load_model(c).score_table(m, DATES[[0, 3]])
    # date 0: ST (0), suspended (1), not a member (4), listed < 2 days (5) are out
    np.testing.assert_array_equal(tab["universe"].values[0], [0, 0, 1, 1, 0, 0, 0])
    # date 3: asset 5 has been listed 2 trading days
    np.testing.assert_array_equal(tab["universe"].values[1], [0, 0, 1, 1, 0, 1, 0])
    s = tab["score"].values[0]
    assert np.isnan(s[[0, 1, 4, 5, 6]]).all()
    # universe of two: f1 ranks 1, 2; f2 alone in each group scores 100
    np.testing.assert_allclose(s[[2, 3]], [(2 * 50 + 100) / 3, (2 * 100 + 100) / 3])


def test_universe_include_input_adds_to_index_members():
    m = hand_market(weight=[0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0])
    c = cfg(universe={"index": "000955.CSI", "include": "soe_flag"})
    model = load_model(c)
    tab = model.score_table(m, DATES[:1])
    assert tab.attrs["skipped_inputs"] == ["universe.include:soe_flag"]
    np.testing.assert_array_equal(tab["universe"].values[0], [1, 1, 0, 0, 0, 0, 0])
    flag = _panel([0, 0, 0, 1, 0, 1, 1]).compute()
    u = model.score_table(m, DATES[:1], inputs={"soe_flag": flag})["universe"].values[0]
    np.testing.assert_array_equal(u, [1, 1, 0, 1, 0, 1, 0])  # asset 6 is in no group


def test_require_any_threshold():
    m = hand_market()
    c = cfg(
        universe={
            "require_any": [
                {"factor": "_t_f1", "op": ">=", "value": 5},
                {"factor": "_t_f2", "op": ">", "value": 2.5},
            ]
        }
    )
    u = load_model(c).score_table(m, DATES[:1])["universe"].values[0]
    np.testing.assert_array_equal(u, [1, 0, 0, 0, 1, 1, 0])


def test_weights_top_and_cube():
    m = hand_market()
    w = load_model(BASE).weights(m, DATES[[0]])
    s = (2 * S_F1 + S_F2) / 3
    top = np.argsort(-s)[:2]
    exp = np.zeros(len(ASSETS))
    exp[top] = s[top] ** 3 / (s[top] ** 3).sum()
    np.testing.assert_allclose(w.values[0], exp)


def test_user_input_skipped_or_required():
    m = hand_market()
    c = cfg(common={"factors": [{"name": "_t_f1"}, {"name": "esg_score"}]})
    tab = load_model(c).score_table(m, DATES[:1])
    assert tab.attrs["skipped_inputs"] == ["esg_score"]
    esg = _panel([7.0, 6, 5, 4, 3, 2, 1]).compute()
    got = load_model(c).scores(m, DATES[:1], inputs={"esg_score": esg}).values[0][:6]
    s_esg = np.array([6, 5, 4, 3, 2, 1]) / 6 * 100
    np.testing.assert_allclose(got, (S_F1 + s_esg + S_F2) / 3)
    c["common"]["factors"][1]["required"] = True
    with pytest.raises(ValueError, match="esg_score"):
        load_model(c).scores(m, DATES[:1])


def test_composite_factor():
    m = hand_market()
    comp = {"name": "combo", "components": [{"name": "_t_f1"}, {"name": "_t_f2"}]}
    got = first_row(load_model(cfg(common={"factors": [comp]})), m)[:6]
    # f2 over the universe of 6: values 3,2,1,1,2,3 -> average ranks 5.5,3.5,1.5,1.5,3.5,5.5
    s_f2u = np.array([5.5, 3.5, 1.5, 1.5, 3.5, 5.5]) / 6 * 100
    mean = (S_F1 + s_f2u) / 2
    combo = rankdata(mean) / 6 * 100
    np.testing.assert_allclose(got, (combo + S_F2) / 2)


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"common": {"factors": [{"name": "no_such"}]}}, r"unknown factor 'no_such'.*roe_ttm"),
        ({"common": {"factors": [{"name": "_t_f1", "weight": -1}]}}, r"weight.*>= 0"),
        ({"common": {"factors": [{"name": "_t_f1", "weight": "big"}]}}, "expected a number"),
        ({"common": {"factors": [{"name": "_t_f1", "weight": {"nope": 1}}]}}, "not a group"),
        ({"common": {"factors": []}}, "empty group"),
        ({"common": {"factors": [{"name": "_t_f1", "direction": "up"}]}}, "direction"),
        ({"grouping": {"by": "industry", "groups": {"banks": []}}}, "empty group"),
        ({"grouping": {"by": "industry", "groups": {"x": [123]}}}, "unknown Shenwan"),
        ({"grouping": {"by": "lifecycle", "groups": {"x": [7]}}}, "life-cycle"),
        ({"grouping": {"by": "sector"}}, "by must be one of"),
        (
            {"combine": {"rule": "geometric"}},
            r"unknown combination rule 'geometric'.*weighted_mean",
        ),
        ({"specific": {"nope": [{"name": "_t_f1"}]}}, "unknown group 'nope'"),
        ({"multipliers": [{"kind": "magic"}]}, "unknown multiplier kind"),
        ({"portfolio": {"top": 0}}, "top must be a positive integer"),
        ({"portfolio": {"weighting": "cap"}}, "weighting"),
        ({"universe": {"industries": [1]}}, "unknown Shenwan"),
        ({"colour": "red"}, "unknown key"),
        ({"common": {"factors": [{"name": "roic", "params": {"tax": 1}}]}}, "unknown parameter"),
    ],
)
def test_config_errors(change, match):
    with pytest.raises(ModelConfigError, match=match):
        read_config(cfg(**change))


def test_common_specific_needs_all_groups():
    c = cfg(combine={"rule": "common_specific"})
    del c["specific"]["brokers"]
    with pytest.raises(ModelConfigError, match="brokers"):
        read_config(c)


def test_unknown_model_and_bad_toml(tmp_path):
    with pytest.raises(ModelConfigError, match="unknown model 'nope'.*soe"):
        load_model("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(ModelConfigError, match="invalid TOML"):
        load_model(bad)


def test_shipped_models_load_and_toml_roundtrip(tmp_path):
    assert shipped_models() == ["consumer", "lithium_chain", "soe", "tech"]
    for name in shipped_models():
        model = qd.load_model(name)
        assert model.name == name
    soe = load_model("soe").config
    assert soe.combine.rule == "common_specific"
    assert (soe.combine.common_weight, soe.combine.specific_weight) == (0.3, 0.7)
    assert soe.portfolio.power == 3 and soe.portfolio.top == 50
    assert load_model("tech").config.combine.rule == "mean_over_5_plus_mean_over_std"
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n[common]\nfactors = [{ name = "roe_ttm" }]\n[portfolio]\ntop = 5\n'
    )
    assert load_model(path).config.portfolio.top == 5
    over = load_model("soe", overrides={"universe": {"index": None}, "portfolio": {"top": 9}})
    assert over.config.universe.index is None and over.config.portfolio.top == 9


# ----------------------------------------------------------------------------------------
# chain study
# ----------------------------------------------------------------------------------------
def test_tier_returns_against_pandas():
    rng = np.random.default_rng(5)
    n_d, n_a = 60, 14
    dates = pd.bdate_range("2021-01-01", periods=n_d)
    assets = [f"{600000 + i}.SH" for i in range(n_a)]
    r = rng.normal(0, 0.02, (n_d, n_a))
    close = 10 * np.cumprod(1 + r, axis=0)
    pre = np.vstack([np.full(n_a, 10.0), close[:-1]])
    close[20:23, 3] = nan  # suspension: entry blocked around date 20
    pre[20:24, 3] = nan
    ind = np.tile(np.array([801010] * 7 + [801030] * 7), (n_d, 1))
    coords = {"date": dates.values, "asset": assets}
    daily = xr.Dataset(
        {
            "close": (("date", "asset"), close),
            "pre_close": (("date", "asset"), pre),
            "industry": (("date", "asset"), ind),
        },
        coords=coords,
    ).chunk({"date": 16})
    m = xr.DataTree.from_dict({"daily": daily})
    fac = xr.DataArray(rng.normal(size=(n_d, n_a)), dims=("date", "asset"), coords=coords)
    reb = dates[[0, 19, 39, 58]]
    got = tier_returns(m, fac, dates=reb, tiers=3)
    # reference: pandas ranks and compounding day by day
    ret = pd.DataFrame(close / pre - 1, index=dates, columns=assets).fillna(0.0)
    rows = []
    for i in range(len(reb) - 1):
        e = dates.get_loc(reb[i]) + 1
        x = dates.get_loc(reb[i + 1]) + 1
        hold = (1 + ret.iloc[e + 1 : x + 1]).prod() - 1
        f = pd.Series(fac.sel(date=reb[i]).values, index=assets)
        for code in (801010, 801030):
            members = [a for a, c in zip(assets, ind[0], strict=True) if c == code]
            pct = f[members].rank(pct=True)
            tier = np.ceil(pct * 3 - 1e-9)
            ok = [a for a in members if np.isfinite(close[e, assets.index(a)])]
            means = [hold[[a for a in ok if tier[a] == k]].mean() for k in (1, 2, 3)]
            rows.append((reb[i], code, *means))
    ref = pd.DataFrame(rows, columns=["date", "group", "tier_1", "tier_2", "tier_3"])
    ref = ref.set_index(["date", "group"])
    np.testing.assert_allclose(got[["tier_1", "tier_2", "tier_3"]].values, ref.values)
    np.testing.assert_allclose(got["long_short"], ref["tier_3"] - ref["tier_1"])
    assert (got["n"] == 7).all()
    summ = tier_summary(got)
    assert list(summ.index) == [801010, 801030] and (summ["periods"] == 3).all()


def _segment_market():
    dates = pd.bdate_range("2018-02-20", "2018-03-10")
    assets = ["600100.SH", "300100.SZ", "600200.SH"]
    recs = pd.DataFrame(
        {
            "asset": assets,
            "end_date": pd.to_datetime(["2017-12-31"] * 3),
            "ann_date": pd.to_datetime(["2018-03-01", "2018-03-01", "2018-03-05"]),
            "update_flag": [0, 0, 0],
            "revenue": [100.0, 300.0, 50.0],
            "oper_cost": [60.0, 240.0, 10.0],
        }
    )
    fund = xr.Dataset({c: ("record", recs[c].to_numpy()) for c in recs.columns})
    coords = {"date": dates.values, "asset": assets}
    ind = np.tile(np.array([801050, 801730, 801050], dtype=np.int32), (len(dates), 1))
    close = np.full((len(dates), 3), 10.0)
    daily = xr.Dataset(
        {"close": (("date", "asset"), close), "industry": (("date", "asset"), ind)},
        coords=coords,
    ).chunk({"date": 5})
    return xr.DataTree.from_dict({"daily": daily, "fundamentals": fund})


def test_segment_profitability_hand_timeline():
    m = _segment_market()
    chain = {"up": [801050], "down": ["300100.SZ"], "all": [801050, "300100.SZ"]}
    with raise_if_dask_computes(max_computes=1):
        out = segment_profitability(m, chain, dates=["2018-03-01", "2018-03-02", "2018-03-06"])
    np.testing.assert_allclose(out.loc["2018-03-01"].values, [nan, nan, nan])
    np.testing.assert_allclose(out.loc["2018-03-02"].values, [0.4, 0.2, 100 / 400])
    np.testing.assert_allclose(out.loc["2018-03-06"].values, [80 / 150, 0.2, (40 + 60 + 40) / 450])
    with pytest.raises(ValueError, match="unknown asset"):
        segment_profitability(m, {"x": ["999999.SH"]})


# ----------------------------------------------------------------------------------------
# the shipped models on the synthetic market
# ----------------------------------------------------------------------------------------
def test_shipped_models_on_synthetic_market(market):
    dates = qd.rebalance_dates(market, "M", start="2018-01-01", end="2018-06-30")
    for name in shipped_models():
        over = {"universe": {"index": None}} if name == "soe" else None
        model = load_model(name, overrides=over)
        with raise_if_dask_computes(max_computes=1):
            tab = model.score_table(market, dates)
        s = tab["score"].values
        u = tab["universe"].values
        assert u.sum() > 0, name
        assert np.isnan(s[~u]).all(), name
        assert np.isfinite(s[u]).mean() > 0.5, name
        assert (s[np.isfinite(s)] >= 0).all(), name
        w = model.weights(market, dates)
        np.testing.assert_allclose(w.sum("asset").values, 1.0)
        assert ((w > 0).sum("asset") <= model.config.portfolio.top).all()
        assert (w.values[~u] == 0).all(), name


def test_soe_index_universe(market):
    dates = qd.rebalance_dates(market, "M", start="2019-01-01", end="2019-03-31")
    tab = load_model("soe").score_table(market, dates)
    w = market["index"]["weight"].sel(index="000955.CSI", date=dates).values
    assert not (tab["universe"].values & ~(w > 0)).any()


def test_tier_returns_on_synthetic_market(market):
    dates = qd.rebalance_dates(market, "Q", start="2017-01-01", end="2019-06-30")
    for name in ("capacity_expansion", "rd_intensity"):
        tr = tier_returns(market, name, dates=dates)
        assert {"tier_1", "tier_2", "tier_3", "long_short", "n"} <= set(tr.columns)
        assert (tr["n"] >= 3).all()


def test_lithium_chain_example_runs(market_path, tmp_path, capsys):
    """The example script back-tests the model and writes its tear sheet."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "model_lithium_chain.py"
    spec = importlib.util.spec_from_file_location("model_lithium_chain", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(["--market", str(market_path), "--out", str(tmp_path / "chain.html")])
    assert out.exists() and out.stat().st_size > 10_000
    text = capsys.readouterr().out
    assert "segment gross margin" in text and "capacity_expansion" in text


def test_sparse_rebalance_calendar_gives_identical_scores(market):
    """Lookback-0 factors evaluated on the rebalance dates only equal the full-calendar run."""
    dates = qd.rebalance_dates(market, "M", start="2017-06-01", end="2018-03-31")
    for name in ("soe", "tech", "lithium_chain"):
        over = {"universe": {"index": None}} if name == "soe" else None
        model = load_model(name, overrides=over)
        sparse = model.score_table(market, dates)
        model._sparse = False
        full = model.score_table(market, dates)
        xr.testing.assert_identical(sparse, full)


def test_min_factors():
    m = hand_market()
    c = cfg(combine={"rule": "weighted_mean", "min_factors": 2})
    f2 = _panel(F2).compute()
    f2[:, 1] = nan  # asset 1 has only its common score

    @register_factor("_t_f2_gap", override=True)
    def _gap(market):
        return f2.reindex(date=market["daily"]["date"])

    try:
        c["specific"] = {"banks": ["_t_f2_gap"], "brokers": ["_t_f2_gap"]}
        got = first_row(load_model(c), m)
        assert np.isnan(got[1]) and np.isfinite(got[[0, 2, 3, 4, 5]]).all()
        with pytest.raises(ModelConfigError, match="min_factors"):
            read_config(cfg(combine={"min_factors": 0}))
    finally:
        unregister_factor("_t_f2_gap")
