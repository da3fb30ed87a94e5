"""qd.synthetic_market: layout, A-share rules, missing cells, statements, indices, planted effects.

Every check recomputes its expectation independently (pandas/numpy from ASHARE.md's rules),
never from the generator's own helpers.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

import quantdask as qd
from quantdask.io import schema
from quantdask.io.store import zarr_quiet

CHINEXT_REFORM = pd.Timestamp("2020-08-24")
BOARD_START = {
    "star": pd.Timestamp("2019-07-22"),
    "chinext": pd.Timestamp("2009-10-30"),
    "bse": pd.Timestamp("2021-11-15"),
}
CODE_RE = {
    ("main", "SH"): r"^60[0135]\d{3}\.SH$",
    ("main", "SZ"): r"^00[0123]\d{3}\.SZ$",
    ("star", "SH"): r"^68[89]\d{3}\.SH$",
    ("chinext", "SZ"): r"^30[01]\d{3}\.SZ$",
    ("bse", "BJ"): r"^((43|83|87)\d{4}|920\d{3})\.BJ$",
}


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def daily(market) -> dict[str, pd.DataFrame]:
    ds = market["daily"].to_dataset().compute()
    out = {v: ds[v].to_pandas() for v in ds.data_vars}
    out["_coords"] = ds[["name", "exchange", "board", "list_date", "delist_date"]].to_dataframe()
    return out


@pytest.fixture(scope="module")
def recent_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A market spanning the ChiNext reform, STAR, BSE and the main-board registration reform."""
    path = tmp_path_factory.mktemp("recent") / "recent.zarr"
    qd.synthetic_market(path, n_assets=160, start="2019-06-01", end="2023-12-29", seed=11)
    return path


@pytest.fixture(scope="module")
def recent(recent_path: Path) -> dict[str, pd.DataFrame]:
    ds = qd.open_market(recent_path)["daily"].to_dataset().compute()
    out = {v: ds[v].to_pandas() for v in ds.data_vars}
    out["_coords"] = ds[["name", "exchange", "board", "list_date", "delist_date"]].to_dataframe()
    return out


def _listed(d: dict[str, pd.DataFrame]) -> pd.DataFrame:
    c = d["_coords"]
    dates = d["close"].index.values[:, None]
    ld = c["list_date"].values[None, :]
    dd = c["delist_date"].values[None, :]
    listed = (dates >= ld) & (np.isnat(dd) | (dates < dd))
    return pd.DataFrame(listed, index=d["close"].index, columns=d["close"].columns)


def _days_since_listing(d: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Trading days since listing (0 on the listing day), from the exchange calendar."""
    c = d["_coords"]
    dates = d["close"].index
    cal = qd.trading_calendar(min(c["list_date"].min(), dates[0]), dates[-1])
    pos_date = np.searchsorted(cal.values, dates.values)
    pos_list = np.searchsorted(cal.values, c["list_date"].values)
    return pd.DataFrame(pos_date[:, None] - pos_list[None, :], index=dates, columns=c.index)


def _expected_limit(d: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(up, down) limit fractions by ASHARE.md's rules; NaN where no limit applies."""
    c = d["_coords"]
    dates = d["close"].index.values[:, None]
    board = c["board"].to_numpy(dtype=str)[None, :]
    ld = c["list_date"].values[None, :]
    st = d["is_st"].values
    days = _days_since_listing(d).values
    reform = dates >= CHINEXT_REFORM.to_datetime64()
    up = np.where(st, 0.05, 0.10)
    up = np.where(board == "chinext", np.where(reform, 0.2, up), up)
    up = np.where(board == "star", 0.2, up)
    up = np.where(board == "bse", 0.3, up)
    dn = up.copy()
    registration = (
        (board == "star")
        | ((board == "chinext") & (ld >= CHINEXT_REFORM.to_datetime64()))
        | ((board == "main") & (ld >= np.datetime64("2023-04-10")))
    )
    first_day_old = (days == 0) & ~registration & (board != "bse")
    up = np.where(first_day_old, 0.44, up)
    dn = np.where(first_day_old, 0.36, dn)
    nolimit = (registration & (days < 5)) | ((board == "bse") & (days < 1))
    up = np.where(nolimit, np.nan, up)
    dn = np.where(nolimit, np.nan, dn)
    idx, cols = d["close"].index, d["close"].columns
    return pd.DataFrame(up, idx, cols), pd.DataFrame(dn, idx, cols)


def _rank_ic(x: pd.DataFrame, y: pd.DataFrame, every: int = 20) -> pd.Series:
    """Spearman IC per date (rank then Pearson), on every ``every``-th date."""
    x = x.iloc[::every]
    y = y.reindex_like(x)
    ok = x.notna() & y.notna()
    xr_ = x.where(ok).rank(axis=1)
    yr = y.where(ok).rank(axis=1)
    xc = xr_.sub(xr_.mean(axis=1), axis=0)
    yc = yr.sub(yr.mean(axis=1), axis=0)
    ic = (xc * yc).sum(axis=1) / np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    return ic[ok.sum(axis=1) >= 20].dropna()


def _at(frame: pd.DataFrame, mask: pd.DataFrame) -> np.ndarray:
    """Values of ``frame`` where ``mask`` is True, as a flat array (NaN-free selection)."""
    return frame.to_numpy(dtype=float)[mask.to_numpy(dtype=bool)]


def _log_returns(d: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return np.log(d["close"] / d["pre_close"])


# ---------------------------------------------------------------- API and build behaviour
def test_exported() -> None:
    from quantdask.io import synthetic_market

    assert qd.synthetic_market is synthetic_market
    assert "synthetic_market" in qd.__all__ and "trading_calendar" in qd.__all__


def test_deterministic_by_seed(tmp_path: Path, market) -> None:
    # Rebuild the session market (conftest: 120 assets, 2014-2019, seed 7) and compare.
    p = qd.synthetic_market(
        tmp_path / "again.zarr", n_assets=120, start="2014-01-01", end="2019-12-31", seed=7
    )
    again = qd.open_market(p)
    for node in schema.NODES:
        a, b = market[node].to_dataset().compute(), again[node].to_dataset().compute()
        assert a.identical(b), node
    # (another seed gives another market: see test_refuses_to_overwrite)


def test_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "m.zarr"
    kw = dict(n_assets=20, start="2021-01-01", end="2021-04-30")
    qd.synthetic_market(p, seed=1, progress=True, **kw)
    assert "block 1/1" in capsys.readouterr().err
    before = qd.open_market(p)["daily"]["close"].values
    with pytest.raises(FileExistsError, match="overwrite=True"):
        qd.synthetic_market(p, seed=2, **kw)
    qd.synthetic_market(p, seed=2, overwrite=True, **kw)
    after = qd.open_market(p)["daily"]["close"].values
    assert not np.array_equal(before, after, equal_nan=True)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.zarr"]


def test_interrupted_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import quantdask.io.synthetic as synth

    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C after the daily blocks

    monkeypatch.setattr(synth, "_offshore", boom)
    p = tmp_path / "m.zarr"
    with pytest.raises(KeyboardInterrupt):
        qd.synthetic_market(p, n_assets=20, start="2021-01-01", end="2021-04-30")
    assert not p.exists()
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(tmp_path: Path) -> None:
    p = tmp_path / "m.zarr"
    with pytest.raises(ValueError, match="n_assets"):
        qd.synthetic_market(p, n_assets=5)
    with pytest.raises(TypeError, match="n_assets"):
        qd.synthetic_market(p, n_assets=50.5)
    with pytest.raises(TypeError, match="seed"):
        qd.synthetic_market(p, n_assets=50, seed="x")
    with pytest.raises(ValueError, match="before start"):
        qd.synthetic_market(p, n_assets=50, start="2021-01-01", end="2020-01-01")
    with pytest.raises(TypeError, match="path"):
        qd.synthetic_market(123, n_assets=50)
    assert not p.exists()


# ---------------------------------------------------------------- layout
def test_layout_matches_schema(market, market_path: Path) -> None:
    assert set(schema.NODES) <= set(market.children)
    dates = qd.trading_calendar("2014-01-01", "2019-12-31")
    d = market["daily"]
    assert list(d.dims) == ["date", "asset"] or set(d.dims) == {"date", "asset"}
    assert d.sizes["asset"] == 120
    np.testing.assert_array_equal(d["date"].values, dates.values)
    assert d["date"].dtype == np.dtype("datetime64[ns]")
    for f in schema.DAILY_FLOAT_FIELDS:
        assert d[f].dims == ("date", "asset") and d[f].dtype == np.float64, f
    for f in schema.DAILY_FLAG_FIELDS:
        assert d[f].dims == ("date", "asset") and d[f].dtype == bool, f
    assert d[schema.DAILY_INDUSTRY_FIELD].dtype == np.int32
    for c in schema.ASSET_COORDS:
        assert d[c].dims == ("asset",), c
    assert d["list_date"].dtype == np.dtype("datetime64[ns]")
    assert d["delist_date"].dtype == np.dtype("datetime64[ns]")
    assert set(np.unique(d["exchange"].values)) <= set(schema.EXCHANGES)
    assert set(np.unique(d["board"].values)) <= set(schema.BOARDS)
    assert list(d["asset"].values) == sorted(d["asset"].values)

    ix = market["index"]
    assert list(ix["index"].values) == list(schema.INDICES)
    for f in schema.INDEX_FIELDS:
        assert ix[f].dims == ("date", "index") and ix[f].dtype == np.float64, f
    w = ix[schema.INDEX_WEIGHT_FIELD]
    assert w.dims == ("date", "index", "asset")
    np.testing.assert_array_equal(ix["asset"].values, d["asset"].values)

    fu = market["fundamentals"]
    for k in (*schema.FUNDAMENTAL_KEYS, *schema.STATEMENT_ITEMS):
        assert fu[k].dims == ("record",), k
    for k in schema.STATEMENT_ITEMS:
        assert fu[k].dtype == np.float64
    assert fu["ann_date"].dtype == np.dtype("datetime64[ns]")
    assert set(np.unique(fu["update_flag"].values)) == {0, 1}
    assert set(np.unique(fu["asset"].values)) <= set(d["asset"].values)
    for f in schema.MACRO_FIELDS:
        assert market["macro"][f].dims == ("date",)
    for f in schema.OFFSHORE_FIELDS:
        assert market["offshore"][f].dims == ("date",)

    # Stored chunks follow the schema.
    with zarr_quiet():
        g = zarr.open_group(str(market_path), mode="r")
        for f in schema.DAILY_FIELDS:
            assert g["daily"][f].chunks == (schema.DATE_CHUNK, schema.ASSET_CHUNK), f
        assert g["index"]["weight"].chunks[0] == schema.DATE_CHUNK
        assert g["fundamentals"]["revenue"].chunks == (schema.RECORD_CHUNK,)
    assert d["close"].chunks[0][0] == min(schema.DATE_CHUNK, d.sizes["date"])


# ---------------------------------------------------------------- codes, boards, universe
@pytest.mark.parametrize("which", ["fixture", "recent"])
def test_codes_match_boards_and_board_start_dates(which, daily, recent) -> None:
    c = (daily if which == "fixture" else recent)["_coords"]
    for code, row in c.iterrows():
        pattern = CODE_RE[(row["board"], row["exchange"])]
        assert re.match(pattern, code), (code, row["board"])
        if row["board"] in BOARD_START:
            assert row["list_date"] >= BOARD_START[row["board"]], code
    assert c.index.is_unique


def test_recent_market_has_new_boards(recent) -> None:
    boards = recent["_coords"]["board"].value_counts()
    for b in ("main", "chinext", "star", "bse"):
        assert boards.get(b, 0) >= 1, b


def test_ipos_and_delistings_exist(daily) -> None:
    c = daily["_coords"]
    start, end = daily["close"].index[0], daily["close"].index[-1]
    ipos = c.index[(c["list_date"] > start)]
    delisted = c.index[c["delist_date"].notna()]
    assert len(ipos) >= 10
    assert len(delisted) >= 1
    assert (c["list_date"] <= end).all()  # n_assets counts stocks ever listed up to end
    close = daily["close"]
    for a in delisted:
        dd = c.loc[a, "delist_date"]
        assert close.loc[close.index >= dd, a].isna().all()
        assert close.loc[close.index < dd, a].notna().any()
    # The universe grows: more listed at the end than at the start.
    listed = _listed(daily)
    assert listed.iloc[-1].sum() > listed.iloc[0].sum()


def test_missing_cells(daily) -> None:
    listed = _listed(daily)
    traded = listed & ~daily["suspended"]
    for f in schema.DAILY_FLOAT_FIELDS:
        v = daily[f]
        assert v.where(~traded).isna().all().all(), f
    for f in [
        "open",
        "high",
        "low",
        "close",
        "pre_close",
        "vol",
        "amount",
        "adj_factor",
        "turnover_rate",
        "float_share",
        "total_share",
        "total_mv",
        "circ_mv",
    ]:
        assert daily[f].where(traded).notna().sum().sum() == traded.sum().sum(), f
    assert not (daily["suspended"] & ~listed).any().any()
    assert not (daily["is_st"] & ~listed).any().any()
    assert ((daily["industry"] == 0) == ~listed).all().all()
    assert set(np.unique(daily["industry"].values)) - {0} <= set(schema.SW_L1)


def test_suspensions_of_varied_lengths(daily) -> None:
    s = daily["suspended"].to_numpy().astype(np.int8)
    padded = np.vstack([np.zeros((1, s.shape[1]), np.int8), s, np.zeros((1, s.shape[1]), np.int8)])
    edges = np.diff(padded, axis=0)
    runs = []
    for j in range(s.shape[1]):  # test code: runs per asset
        starts = np.flatnonzero(edges[:, j] == 1)
        ends = np.flatnonzero(edges[:, j] == -1)
        runs.extend(ends - starts)
    runs = np.array(runs)
    assert (runs == 1).sum() >= 10
    assert ((runs >= 2) & (runs <= 10)).sum() >= 5
    assert (runs >= 40).sum() >= 2
    share = s.mean()
    assert 0.003 < share < 0.08


def test_industry_changes_exist(daily) -> None:
    ind = daily["industry"].where(daily["industry"] != 0)
    n_codes = ind.nunique()
    assert (n_codes >= 2).sum() >= 3
    assert len(np.unique(ind.to_numpy()[np.isfinite(ind.to_numpy())])) >= 15


# ---------------------------------------------------------------- prices and limits
def _half_up_limit(pre: pd.DataFrame, frac: pd.DataFrame, sign: int) -> pd.DataFrame:
    """``pre * (1 + sign * frac)`` rounded half up to 0.01, in exact integer cents.

    ``pre`` has whole cents and ``frac`` whole percents, so ``cents * (100 +/- pct)`` is an
    exact integer in 1/10,000 CNY; adding 50 and dividing by 100 rounds half up.
    """
    ok = pre.notna() & frac.notna()
    cents = np.rint(pre.where(ok, 0.0).to_numpy() * 100).astype(np.int64)
    pct = np.rint(frac.where(ok, 0.0).to_numpy() * 100).astype(np.int64)
    out = (cents * (100 + sign * pct) + 50) // 100 / 100.0
    return pd.DataFrame(out, pre.index, pre.columns).where(ok)


def test_limit_prices_round_half_up_exhaustively() -> None:
    """Every pre_close from 0.01 to 300.00 CNY and every limit fraction, against integer cents."""
    from quantdask.kernels.limits import limit_prices

    cents = np.arange(1, 30001, dtype=np.int64)
    for pct in (5, 10, 20, 30, 36, 44):
        got_up = np.array([limit_prices(c / 100, pct / 100, pct / 100)[0] for c in cents])
        got_dn = np.array([limit_prices(c / 100, pct / 100, pct / 100)[1] for c in cents])
        want_up = (cents * (100 + pct) + 50) // 100
        want_dn = np.maximum((cents * (100 - pct) + 50) // 100, 1)
        np.testing.assert_array_equal(np.rint(got_up * 100), want_up, err_msg=f"up {pct}%")
        np.testing.assert_array_equal(np.rint(got_dn * 100), want_dn, err_msg=f"down {pct}%")
    # ASHARE.md's example: pre_close 0.45, main board: down limit 0.405 -> 0.41 (not 0.40)
    assert limit_prices(0.45, 0.1, 0.1) == (0.5, 0.41)


def test_synthetic_rounds_limits_half_up() -> None:
    """The synthetic kernel's 0.01 rounding is the exchanges' half up (0.405 -> 0.41)."""
    from quantdask.io._synth_kernel import _r2

    assert _r2(0.45 * 0.9) == 0.41
    assert _r2(0.125) == 0.13
    assert _r2(2.675) == 2.68  # 2.67499999... in float64


def _check_limits(d: dict[str, pd.DataFrame]) -> None:
    up_f, dn_f = _expected_limit(d)
    traded = d["close"].notna()
    pc = d["pre_close"]
    exp_up = _half_up_limit(pc, up_f, +1)
    exp_dn = _half_up_limit(pc, dn_f, -1).clip(lower=0.01)
    up, dn = d["up_limit"], d["down_limit"]
    # NaN limits exactly where the rules say no limit applies.
    pd.testing.assert_frame_equal(up.isna() & traded, up_f.isna() & traded)
    np.testing.assert_allclose(up.where(traded).values, exp_up.where(traded).values, atol=1e-9)
    np.testing.assert_allclose(dn.where(traded).values, exp_dn.where(traded).values, atol=1e-9)
    for f in ("open", "high", "low", "close", "pre_close", "up_limit", "down_limit"):
        v = d[f].values
        cents = v * 100
        ok = np.isfinite(v)
        assert np.all(np.abs(cents[ok] - np.round(cents[ok])) < 1e-6), f
    has = up.notna()
    for f in ("open", "high", "low", "close"):
        assert (d[f].where(has) <= up.where(has) + 1e-9).where(has, True).all().all(), f
        assert (d[f].where(has) >= dn.where(has) - 1e-9).where(has, True).all().all(), f
    o, h, lo, c = d["open"], d["high"], d["low"], d["close"]
    assert ((h >= np.maximum(o, c) - 1e-9) | ~traded).all().all()
    assert ((lo <= np.minimum(o, c) + 1e-9) | ~traded).all().all()
    assert ((lo > 0) | ~traded).all().all()


def test_limits_fixture(daily) -> None:
    _check_limits(daily)


def test_limits_recent(recent) -> None:
    _check_limits(recent)


def test_chinext_20pct_only_after_reform(recent) -> None:
    c = recent["_coords"]
    cy = c.index[c["board"] == "chinext"]
    days = _days_since_listing(recent)[cy]
    ratio = (recent["up_limit"][cy] / recent["pre_close"][cy]).where(days > 0)
    ratio = ratio.stack().dropna()
    dates = ratio.index.get_level_values(0)
    before = ratio[dates < CHINEXT_REFORM]
    after = ratio[dates >= CHINEXT_REFORM]
    assert len(before) > 100 and len(after) > 100
    assert (before < 1.11).all()  # 10% (5% when ST)
    assert ((before - 1.1).abs() < 0.01).mean() > 0.8
    assert ((after - 1.2).abs() < 0.01).all()
    # Old-rule ChiNext IPOs (before the reform) had a +44% day-one cap.
    first = (days == 0) & recent["up_limit"][cy].notna()
    cap = _at(recent["up_limit"][cy] / recent["pre_close"][cy], first)
    assert len(cap) >= 1 and np.allclose(cap, 1.44, atol=0.01)


def test_st_limit_is_5pct_on_main_board(daily) -> None:
    c = daily["_coords"]
    main = c.index[c["board"] == "main"]
    days = _days_since_listing(daily)[main]
    st = daily["is_st"][main] & daily["close"][main].notna() & (days > 0)
    assert st.sum().sum() > 100
    np.testing.assert_allclose(
        _at(daily["up_limit"][main], st),
        _at(_half_up_limit(daily["pre_close"][main], daily["pre_close"][main] * 0 + 0.05, 1), st),
    )
    assert 0.005 < daily["is_st"].values.mean() < 0.12


def test_new_listings(recent) -> None:
    c = recent["_coords"]
    start = recent["close"].index[0]
    star = c.index[(c["board"] == "star") & (c["list_date"] > start)]
    assert len(star) >= 1
    days = _days_since_listing(recent)
    for a in star:
        first5 = (days[a] >= 0) & (days[a] < 5) & recent["close"][a].notna()
        assert recent["up_limit"][a][first5].isna().all()
    # IPO pops: first-day returns are large on average.
    first = (days == 0) & recent["close"].notna()
    r1 = _at(recent["close"] / recent["pre_close"] - 1, first)
    assert r1.mean() > 0.2


def test_realistic_share_of_limit_closes(daily) -> None:
    traded = daily["close"].notna()
    n = traded.sum().sum()
    up = ((daily["close"] == daily["up_limit"]) & traded).sum().sum() / n
    dn = ((daily["close"] == daily["down_limit"]) & traded).sum().sum() / n
    assert 0.003 < up < 0.05
    assert 0.001 < dn < 0.03


def test_pre_close_and_adj_factor(daily) -> None:
    close, pc, adj = daily["close"], daily["pre_close"], daily["adj_factor"]
    last = close.ffill()
    prev_close = last.shift(1)
    prev_adj = adj.ffill().shift(1)
    traded = close.notna() & prev_close.notna()
    action = (adj / prev_adj - 1).abs() > 1e-12
    same = traded & ~action
    # Without a corporate action pre_close is the last traded close (also across suspensions).
    assert same.to_numpy().sum() > 10000
    np.testing.assert_allclose(_at(pc, same), _at(prev_close, same))
    ex = traded & action
    assert ex.sum().sum() >= 20  # dividends / bonus shares happen
    # On an ex-date the adjustment factor moves by last close / pre_close.
    np.testing.assert_allclose(_at(adj / prev_adj, ex), _at(prev_close / pc, ex), rtol=1e-9)
    assert (_at(pc, ex) < _at(prev_close, ex)).all()
    # Total return through adj_factor is continuous: adjusted returns are plain returns.
    r_adj = (close * adj) / (prev_close * prev_adj) - 1
    r = close / pc - 1
    np.testing.assert_allclose(_at(r_adj, traded), _at(r, traded), atol=1e-9)


# ---------------------------------------------------------------- valuations
def test_valuation_identities(daily) -> None:
    c = daily["close"]
    np.testing.assert_allclose(daily["total_mv"].values, (c * daily["total_share"]).values)
    np.testing.assert_allclose(daily["circ_mv"].values, (c * daily["float_share"]).values)
    np.testing.assert_allclose(
        daily["turnover_rate"].values, (daily["vol"] / daily["float_share"]).values
    )
    vwap = daily["amount"] * 10 / daily["vol"]
    traded = c.notna()
    assert ((vwap <= daily["high"] + 1e-9) & (vwap >= daily["low"] - 1e-9) | ~traded).all().all()
    assert (daily["float_share"] <= daily["total_share"] + 1e-9).where(traded, True).all().all()
    pe = daily["pe_ttm"]
    assert (pe.dropna(how="all", axis=1) > 0).where(pe.notna(), True).all().all()
    assert 10 < np.nanmedian(pe.values) < 120
    assert 0.5 < np.nanmedian(daily["pb"].values) < 10


def _ttm_reference(fund: pd.DataFrame, asset: str, date: pd.Timestamp) -> tuple[float, float]:
    """TTM n_income_attr_p and equity known strictly before ``date`` (plain pandas)."""
    f = fund[(fund["asset"] == asset) & (fund["ann_date"] < date)]
    if f.empty:
        return np.nan, np.nan
    f = f.sort_values(["ann_date", "update_flag"]).groupby("end_date").last()
    L = f.index.max()
    ytd = f["n_income_attr_p"]
    equity = f.loc[L, "total_hldr_eqy"]
    if L.month == 12:
        return ytd[L], equity
    prev_annual = pd.Timestamp(year=L.year - 1, month=12, day=31)
    same_q = L - pd.DateOffset(years=1) + pd.offsets.MonthEnd(0)
    if prev_annual not in ytd.index or same_q not in ytd.index:
        return np.nan, equity
    return ytd[L] + ytd[prev_annual] - ytd[same_q], equity


def test_pe_pb_consistent_with_point_in_time_statements(market, daily) -> None:
    fund = market["fundamentals"].to_dataset().compute().to_dataframe()
    traded = daily["close"].notna() & daily["pb"].notna()
    cells = traded.stack()
    cells = cells[cells].index.to_list()
    rng = np.random.default_rng(0)
    picks = [cells[i] for i in rng.choice(len(cells), 60, replace=False)]
    n_pe = 0
    for date, asset in picks:
        ttm, equity = _ttm_reference(fund, asset, date)
        mv = daily["total_mv"].loc[date, asset] * 1e4
        np.testing.assert_allclose(daily["pb"].loc[date, asset], mv / equity, rtol=1e-9)
        pe = daily["pe_ttm"].loc[date, asset]
        if np.isfinite(ttm) and ttm > 0:
            np.testing.assert_allclose(pe, mv / ttm, rtol=1e-9)
            n_pe += 1
        else:
            assert np.isnan(pe)
    assert n_pe >= 30


# ---------------------------------------------------------------- fundamentals
def test_announcements_and_restatements(market) -> None:
    f = market["fundamentals"].to_dataset().compute().to_dataframe()
    assert (f["ann_date"] > f["end_date"]).all()
    first = f[f["update_flag"] == 0]
    m = first["end_date"].dt.month
    y = first["end_date"].dt.year
    deadline = pd.to_datetime(
        pd.DataFrame(
            {
                "year": np.where(m == 12, y + 1, y),
                "month": m.map({3: 4, 6: 8, 9: 10, 12: 4}),
                "day": m.map({3: 30, 6: 31, 9: 31, 12: 30}),
            }
        )
    )
    assert (first["ann_date"].values <= deadline.values).all()
    assert set(m) == {3, 6, 9, 12}
    # One first announcement per (asset, period).
    assert not first.duplicated(["asset", "end_date"]).any()
    # Restatements come later than the first announcement of the same period.
    rest = f[f["update_flag"] == 1]
    assert 0.01 < len(rest) / len(f) < 0.06
    j = rest.merge(first, on=["asset", "end_date"], suffixes=("", "_first"))
    assert len(j) == len(rest)
    assert (j["ann_date"] > j["ann_date_first"]).all()
    assert (j["revenue"] != j["revenue_first"]).all()
    # Many annual and Q1 reports in the last two weeks of April.
    april = first[first["ann_date"].dt.month == 4]
    late = (april["ann_date"].dt.day >= 16).mean()
    assert late > 0.5
    # Every asset listed during the window reports.
    assert f["asset"].nunique() >= 0.95 * market["daily"].sizes["asset"]
    # Cumulative YTD: Q4 revenue YTD exceeds Q3 YTD for the same firm and year.
    rev = first.pivot_table(index=["asset", first["end_date"].dt.year], columns=m, values="revenue")
    full = rev.dropna()
    assert (full[12] > full[9]).all() and (full[9] > full[6]).all() and (full[6] > full[3]).all()


# ---------------------------------------------------------------- indices
def test_index_weights_and_constituents(market, daily) -> None:
    ix = market["index"].to_dataset().compute()
    w = ix["weight"]
    c = daily["_coords"]
    dates = ix["date"].values
    listed_at = (dates[:, None] >= c["list_date"].values[None, :]) & (
        np.isnat(c["delist_date"].values)[None, :]
        | (dates[:, None] < c["delist_date"].values[None, :])
    )
    for code in schema.INDICES:
        wk = w.sel(index=code).values
        exists = np.isfinite(wk).any(axis=1)
        assert exists.sum() > 0.9 * len(dates), code
        s = np.nansum(wk[exists], axis=1)
        np.testing.assert_allclose(s, 1.0, atol=1e-9, err_msg=code)
        members = wk > 0
        assert not (members & ~listed_at).any(), code
        assert np.isfinite(ix["close"].sel(index=code).values[exists]).all()
    members = (w > 0).sum("asset").to_pandas()
    # CSI All Share holds every stock listed before the date.
    n_listed = (listed_at & (dates[:, None] > c["list_date"].values[None, :])).sum(axis=1)
    np.testing.assert_array_equal(members["000985.CSI"].values, n_listed)
    # Size indices do not overlap.
    csi = [w.sel(index=k).values > 0 for k in ("000300.SH", "000905.SH", "000852.SH", "932000.CSI")]
    total = sum(m.astype(int) for m in csi)
    assert total.max() <= 1
    # SSE 50 is Shanghai-only, ChiNext Index ChiNext-only.
    sh = c["exchange"].to_numpy(dtype=str) == "SH"
    assert not (w.sel(index="000016.SH").values > 0)[:, ~sh].any()
    cy = c["board"].to_numpy(dtype=str) == "chinext"
    assert not (w.sel(index="399006.SZ").values > 0)[:, ~cy].any()
    # Membership changes, mostly at the June / December reviews.
    m300 = w.sel(index="000300.SH").values > 0
    changes = np.flatnonzero((m300[1:] != m300[:-1]).any(axis=1)) + 1
    assert len(changes) >= 3
    months = pd.DatetimeIndex(dates[changes]).month
    assert np.isin(months, [6, 12]).mean() >= 0.5
    # Index returns chain constituents' returns with the previous day's weights.
    r = (daily["close"] / daily["pre_close"] - 1).fillna(0.0).values
    wk = w.sel(index="000300.SH").values
    close = ix["close"].sel(index="000300.SH").values
    ok = np.isfinite(wk[:-1]).all(axis=1) & np.isfinite(close[:-1])
    expect = close[:-1] * (1 + np.nansum(wk[:-1] * r[1:], axis=1))
    np.testing.assert_allclose(close[1:][ok], expect[ok], rtol=1e-9)
    # Index valuations aggregate the constituents.
    tmv = daily["total_mv"].ffill().values
    got = ix["total_mv"].sel(index="000300.SH").values
    exp_tmv = np.nansum(np.where(wk > 0, tmv, 0.0), axis=1)
    sel = np.isfinite(got)
    np.testing.assert_allclose(got[sel], exp_tmv[sel], rtol=1e-9)
    hi, lo = ix["high"].values, ix["low"].values
    o, cl = ix["open"].values, ix["close"].values
    fin = np.isfinite(cl)
    assert (hi[fin] >= np.maximum(o, cl)[fin] - 1e-9).all()
    assert (lo[fin] <= np.minimum(o, cl)[fin] + 1e-9).all()


# ---------------------------------------------------------------- planted effects
def test_planted_reversal_value_quality(daily) -> None:
    lr = _log_returns(daily).fillna(0.0)
    cum = lr.cumsum()
    traded = daily["close"].notna()
    past20 = (cum - cum.shift(20)).where(traded)
    fwd20 = (cum.shift(-20) - cum).where(traded)
    ic_rev = _rank_ic(past20, fwd20)
    assert len(ic_rev) > 50
    assert ic_rev.mean() < -0.02, ic_rev.mean()
    ic_pb = _rank_ic(daily["pb"], fwd20)
    assert ic_pb.mean() < 0, ic_pb.mean()
    roe = daily["pb"] / daily["pe_ttm"]  # = TTM net profit / equity, for profitable firms
    ic_roe = _rank_ic(roe, fwd20)
    assert ic_roe.mean() > 0, ic_roe.mean()


def test_offshore_leads_and_macro(market, real_data_dir: Path) -> None:
    o = market["offshore"].to_dataset().compute().to_pandas()
    assert (o > 0).all().all()
    r_next = o["a50_spot"].pct_change().shift(-1)
    basis = o["a50_fut"] / o["a50_spot"] - 1
    assert basis.corr(r_next) > 0.05
    assert 0.7 < o["hkd_cny"].min() and o["hkd_cny"].max() < 1.1
    etf_gap = o["a50_etf"] * o["hkd_cny"] * 1000 / o["a50_spot"] - 1
    assert etf_gap.abs().max() < 0.1
    assert etf_gap.corr(r_next) > 0.02

    y = market["macro"]["cgb_10y"].to_pandas()
    real = pd.read_csv(real_data_dir / "cn_gov_bond_10y_yield_2002_2024.csv", parse_dates=["date"])
    real = real.set_index("date")["yield_pct"]
    common = y.index.intersection(real.index)
    assert len(common) > 0.9 * len(y)
    np.testing.assert_allclose(y[common].values, real[common].values)
    assert "real" in market["macro"].attrs["cgb_10y_source"]


def test_store_passes_verify(market_path: Path) -> None:
    report = qd.verify(market_path)
    assert report.ok, str(report)


def test_index_base_dates_and_packaged_yield(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_data_dir: Path
) -> None:
    # The real yield ships with the package (read through importlib.resources), so the
    # market does not depend on the working directory or on folders beside the checkout.
    monkeypatch.chdir(tmp_path)
    packaged = resources.files("quantdask.data") / "cn_gov_bond_10y_yield_2002_2024.csv"
    assert packaged.is_file()
    p = qd.synthetic_market(
        tmp_path / "m.zarr", n_assets=40, start="2013-09-02", end="2014-03-31", seed=3
    )
    m = qd.open_market(p)
    y = m["macro"]["cgb_10y"].to_pandas()
    source = m["macro"].attrs["cgb_10y_source"]
    assert source.startswith("real (cn_gov_bond_10y_yield_2002_2024.csv, 2002-01-04..2024-02-29)")
    assert "on 2013-09-02..2014-03-31;" in source
    # reference: the repository's own copy of the vendor file (examples/data), forward-filled
    ref = pd.read_csv(real_data_dir / "cn_gov_bond_10y_yield_2002_2024.csv", parse_dates=["date"])
    ref = ref.set_index("date")["yield_pct"].reindex(y.index, method="ffill")
    np.testing.assert_array_equal(y.to_numpy(), ref.to_numpy())
    assert y.notna().all()
    # A window after the real series: the yield is simulated throughout, and the node says so.
    late = qd.open_market(
        qd.synthetic_market(
            tmp_path / "late.zarr", n_assets=20, start="2025-01-02", end="2025-03-31", seed=3
        )
    )["macro"]
    assert late.attrs["cgb_10y_source"].startswith("simulated mean-reverting path")
    y_late = late["cgb_10y"].to_pandas()
    assert y_late.notna().all() and (y_late > 0.5).all() and (y_late < 8).all()
    assert y_late.diff().abs().max() < 0.5
    # CSI 2000 has its base date on 2013-12-31: no weights and no level before it.
    w = m["index"]["weight"].sel(index="932000.CSI").to_pandas()
    close = m["index"]["close"].sel(index="932000.CSI").to_pandas()
    before = w.index < pd.Timestamp("2013-12-31")
    assert w[before].isna().all().all() and close[before].isna().all()
    assert np.allclose(w[~before].sum(axis=1), 1.0) and close[~before].notna().all()
    assert close[~before].iloc[0] == 1000.0
    # CSI 300 existed before the window: weights from the first date.
    assert np.allclose(m["index"]["weight"].sel(index="000300.SH").sum("asset"), 1.0)


def test_macro_real_then_simulated(tmp_path: Path, real_data_dir: Path) -> None:
    p = qd.synthetic_market(
        tmp_path / "m.zarr", n_assets=20, start="2024-01-02", end="2024-05-31", seed=2
    )
    m = qd.open_market(p)
    y = m["macro"]["cgb_10y"].to_pandas()
    real = pd.read_csv(real_data_dir / "cn_gov_bond_10y_yield_2002_2024.csv", parse_dates=["date"])
    real = real.set_index("date")["yield_pct"]
    common = y.index.intersection(real.index)
    np.testing.assert_allclose(y[common].values, real[common].values)
    after = y[y.index > real.index[-1]]
    assert len(after) > 40 and after.notna().all()
    assert abs(after.iloc[0] - real.iloc[-1]) < 0.2  # continues from the last real value
    src = m["macro"].attrs["cgb_10y_source"]
    assert "real" in src and "simulated" in src


def test_overwrite_never_deletes_a_non_store(tmp_path: Path) -> None:
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "keep.txt").write_text("important")
    with pytest.raises(FileExistsError, match="not a zarr store"):
        qd.synthetic_market(precious, n_assets=20, overwrite=True)
    assert (precious / "keep.txt").read_text() == "important"


@pytest.mark.slow
def test_full_history_universe_growth(tmp_path: Path, full_scale: bool) -> None:
    """2005-2025: listed counts follow ASHARE.md's curve; pre-2014 rules and base dates."""
    n = 5500 if full_scale else 300
    p = qd.synthetic_market(
        tmp_path / "long.zarr", n_assets=n, start="2005-01-01", end="2025-12-31", seed=4
    )
    m = qd.open_market(p)
    d = m["daily"]
    ld, dd = d["list_date"].values, d["delist_date"].values

    def listed(day: str) -> int:
        t = np.datetime64(day)
        return int(((ld <= t) & (np.isnat(dd) | (dd > t))).sum())

    last = listed("2025-06-30")
    for day, real in [("2005-06-30", 1400), ("2012-06-29", 2500), ("2019-06-28", 3800)]:
        assert abs(listed(day) / last - real / 5400) < 0.05, day
    board = d["board"].values.astype(str)
    lds = pd.DatetimeIndex(ld)
    assert (lds[board == "chinext"] >= BOARD_START["chinext"]).all()
    assert (board == "chinext").sum() > 0.1 * n
    assert 0.02 * n < (~np.isnat(dd)).sum() < 0.15 * n
    w = m["index"]["weight"]
    w2000 = w.sel(index="932000.CSI")
    assert np.isnan(w2000.sel(date=slice(None, "2013-12-30")).values).all()
    assert np.allclose(w2000.sel(date=slice("2013-12-31", None)).sum("asset"), 1.0)
    members = (w.isel(date=-1) > 0).sum("asset").to_pandas()
    # Counts are set at the last review: first trading day after December's second Friday.
    second_friday = pd.date_range("2025-12-01", "2025-12-31", freq="W-FRI")[1]
    dates = pd.DatetimeIndex(d["date"].values)
    review = dates[dates > second_friday][0]
    n_review = listed(str(review.date()))
    # real counts scaled to the universe, at least min(20, n // 6) and 3 (small markets)
    floor = max(3, min(20, n_review // 6))
    assert members["000300.SH"] == max(floor, int(np.ceil(n_review * 300 / 5000)))
    assert members["000905.SH"] == max(floor, int(np.ceil(n_review * 500 / 5000)))
    assert members["000985.CSI"] >= 0.95 * listed("2025-12-31")
    assert qd.verify(p).ok


def test_root_attributes_record_the_request(market_path: Path) -> None:
    with zarr_quiet():
        attrs = dict(zarr.open_group(str(market_path), mode="r").attrs)
    assert attrs["synthetic"] == {
        "n_assets": 120,
        "start": "2014-01-01",
        "end": "2019-12-31",
        "seed": 7,
    }
    assert attrs["planted_effects"]["reversal_20d"] < 0
    assert attrs["planted_effects"]["roe_ttm"] > 0


# ------------------------------------------------- realistic strength and time variation
@pytest.fixture(scope="module")
def demo_daily(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """The `quantdask demo` market (800 assets, 2019-2024, seed 0), as pandas frames."""
    path = tmp_path_factory.mktemp("demo") / "demo.zarr"
    qd.synthetic_market(path, n_assets=800, start="2019-01-01", end="2024-12-31", seed=0)
    m = qd.open_market(path)
    fields = ["close", "pre_close", "up_limit", "down_limit", "pb", "pe_ttm"]
    ds = m["daily"].to_dataset()[fields].compute()
    out = {v: ds[v].to_pandas() for v in fields}
    out["_index"] = m["index"]["close"].sel(index="000985.CSI").to_pandas()
    return out


def _reversal_ic(d: dict[str, pd.DataFrame]) -> pd.Series:
    """Rank IC of minus the trailing 20-day log return vs the next 20 days, every 5th date."""
    cum = _log_returns(d).fillna(0.0).cumsum()
    traded = d["close"].notna()
    past20 = (cum - cum.shift(20)).where(traded)
    fwd20 = (cum.shift(-21) - cum.shift(-1)).where(traded)  # entry at the next close
    return _rank_ic(-past20, fwd20, every=5)


def test_planted_effects_realistic_strength(demo_daily) -> None:
    """Real A-share magnitudes: mean rank IC 0.02-0.06, IC std >= 2x the mean, IR < 0.6."""
    ic = _reversal_ic(demo_daily)
    assert len(ic) > 250
    assert 0.02 < ic.mean() < 0.065, ic.mean()
    assert 0.07 < ic.std() < 0.25, ic.std()
    assert 0.1 < ic.mean() / ic.std() < 0.6, ic.mean() / ic.std()
    assert 0.55 < (ic > 0).mean() < 0.78, (ic > 0).mean()
    cum = _log_returns(demo_daily).fillna(0.0).cumsum()
    fwd20 = (cum.shift(-21) - cum.shift(-1)).where(demo_daily["close"].notna())
    ic_value = _rank_ic(1.0 / demo_daily["pb"].where(demo_daily["pb"] > 0), fwd20, every=5)
    assert 0.005 < ic_value.mean() < 0.045, ic_value.mean()
    roe = demo_daily["pb"] / demo_daily["pe_ttm"]
    ic_roe = _rank_ic(roe, fwd20, every=5)
    assert 0.005 < ic_roe.mean() < 0.045, ic_roe.mean()


def test_planted_premia_vary_over_time(demo_daily) -> None:
    """The reversal premium has weak and strong years and persistent spells.

    Whether a given seed draws a year below half the mean is luck of its premium path (seed
    0 drew one before the market-level calibration of issue 17, not after); the strongest
    year at least twice the weakest holds for a premium whose yearly mean varies by ~75%.
    """
    ic = _reversal_ic(demo_daily)
    by_year = ic.groupby(ic.index.year).mean()
    assert by_year.max() > 2.0 * by_year.min(), by_year
    assert by_year.max() > 1.5 * ic.mean(), by_year
    # No assertion on the IC's autocorrelation 60 dates apart: the slow premium component
    # (phi 0.99, std 0.5 of the mean against the fast one's 3) gives it an expected ~0.02,
    # with a standard error of ~0.06 over six years of weekly samples, so any bound on one
    # seed's value tests that seed's luck.


def test_limit_closes_cluster_in_volatile_months(demo_daily) -> None:
    close = demo_daily["close"]
    traded = close.notna()
    at_limit = ((close == demo_daily["up_limit"]) | (close == demo_daily["down_limit"])) & traded
    month = close.index.to_period("M")
    share = at_limit.sum(axis=1).groupby(month).sum() / traded.sum(axis=1).groupby(month).sum()
    vol = demo_daily["_index"].pct_change().groupby(month).std()
    vol = vol.reindex(share.index)
    calm = share[vol <= vol.median()].mean()
    wild = share[vol >= vol.quantile(0.9)].mean()
    assert wild > 1.7 * calm, (wild, calm)
    assert share.max() > 2.5 * share.mean(), share.describe()


def test_no_daily_limits_before_1996_12_16(tmp_path):
    """The exchanges' daily price limits start on 1996-12-16: earlier synthetic bars have none.

    Hand rule (ASHARE.md, kernels.limits.LIMITS_START): no limit prices before that date, and
    from it every traded main-board bar has both limits.
    """
    m = qd.open_market(
        qd.synthetic_market(
            tmp_path / "m96.zarr", n_assets=40, start="1996-10-01", end="1997-02-28", seed=0
        )
    )
    d = m["daily"].to_dataset()[["close", "up_limit", "down_limit"]].load()
    early = d.sel(date=slice(None, "1996-12-13"))
    late = d.sel(date=slice("1996-12-16", None))
    assert int(early["close"].notnull().sum()) > 1000
    assert int(early["up_limit"].notnull().sum()) == 0
    assert int(early["down_limit"].notnull().sum()) == 0
    # from the start of the rule every bar has its limits, except listings' no-limit days
    assert float(late["up_limit"].notnull().sum() / late["close"].notnull().sum()) > 0.95


# ------------------------------------------------------- market level across seeds and sizes
#: The real market's multi-year record the synthetic market must stay within (issue 17): on
#: a real full-market dump 2005-2022 the daily-rebalanced equal-weight basket (listing days
#: excluded) returned ~23% a year and cap-weighted broad indices of the order of 5-15% a
#: year with 25-35% volatility. The bands allow for 3-8 year windows (a window holding a
#: turbulent episode is more volatile than an 18-year average, a calm one less).
EW_BAND = (0.05, 0.30)  # equal-weight basket, annual (geometric) return
INDEX_BAND = (-0.05, 0.20)  # CSI 300 and CSI All Share, annual (geometric) return
INDEX_VOL_BAND = (0.18, 0.42)  # their annualised daily volatility
BROAD = ("000300.SH", "000985.CSI")

#: (n_assets, start, end, seed) of every synthetic market the examples, the README, the demo
#: and the test fixtures build.
USED_MARKETS = [
    (120, "2014-01-01", "2019-12-31", 7),  # tests/conftest.py market
    (120, "2014-01-01", "2019-12-31", 0),  # README timing block
    (150, "2015-01-01", "2019-12-31", 3),  # examples/model_*.py
    (150, "2013-01-01", "2019-12-31", 0),  # examples/factor_snapshot.py
    (160, "2019-06-01", "2023-12-29", 11),  # recent_path above
    (200, "2014-01-01", "2019-12-31", 3),  # examples/offshore_timing.py
    (200, "2012-01-01", "2019-12-31", 1),  # examples/dtw_timing.py
    (200, "2016-01-01", "2019-12-31", 1),  # examples/backtest_topn.py
    (200, "2016-01-01", "2019-12-31", 7),  # examples/factor_tear_sheet.py
    (200, "2018-01-01", "2020-12-31", 1),  # examples/parameter_sweep.py, README sweep
    (200, "2020-01-01", "2022-12-31", 1),  # README market block
    (300, "2019-01-01", "2022-12-31", 0),  # README IC block
    (300, "2019-01-01", "2023-12-31", 1),  # examples/synthetic_market.py
    (800, "2019-01-01", "2024-12-31", 0),  # quantdask demo
]


def _market_level(path: Path) -> dict[str, float]:
    """Annual returns and volatilities recomputed from the stored bars (numpy only)."""
    m = qd.open_market(path)
    d = m["daily"]
    close, pre = d["close"].values, d["pre_close"].values
    dates = d["date"].values
    listing = np.searchsorted(dates, d["list_date"].values)
    r = close / pre - 1.0
    # listing days excluded: a stock's first bar is its IPO pop
    r = np.where(np.arange(len(dates))[:, None] > listing[None, :], r, np.nan)
    has = np.isfinite(r).any(axis=1)
    ew = np.array([np.nanmean(row) for row in r[has]])
    out = {"ew": float(np.prod(1.0 + ew) ** (252.0 / len(ew)) - 1.0)}
    for code in BROAD:
        c = m["index"]["close"].sel(index=code).values
        c = c[np.isfinite(c)]
        rr = c[1:] / c[:-1] - 1.0
        out[code] = float((c[-1] / c[0]) ** (252.0 / len(rr)) - 1.0)
        out[code + " vol"] = float(rr.std() * np.sqrt(252.0))
    return out


def _assert_in_bands(level: dict[str, float], label: str) -> None:
    assert EW_BAND[0] < level["ew"] < EW_BAND[1], (label, level)
    for code in BROAD:
        assert INDEX_BAND[0] < level[code] < INDEX_BAND[1], (label, code, level)
        assert INDEX_VOL_BAND[0] < level[code + " vol"] < INDEX_VOL_BAND[1], (label, code, level)


def test_market_return_band_of_the_test_market(market_path: Path) -> None:
    """The session's fixture market (120 stocks, 2014-2019, seed 7) is inside the bands."""
    _assert_in_bands(_market_level(market_path), "fixture")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_market_return_band_across_seeds(tmp_path: Path, seed: int) -> None:
    """The model examples' market shape (150 stocks, 2015-2019) for a few seeds."""
    p = qd.synthetic_market(
        tmp_path / "m.zarr", n_assets=150, start="2015-01-01", end="2019-12-31", seed=seed
    )
    _assert_in_bands(_market_level(p), f"seed {seed}")


@pytest.mark.slow
def test_market_return_band(tmp_path: Path, full_scale: bool) -> None:
    """Every market the examples, README, demo and tests build; then more seeds and sizes.

    Reduced scale: the used markets plus seeds 3-7 at 150 stocks; full scale adds seeds
    8-23 at 150 and 400 stocks.
    """
    cases = list(USED_MARKETS)
    cases += [(150, "2015-01-01", "2019-12-31", s) for s in range(3, 8)]
    if full_scale:
        cases += [(n, "2014-01-01", "2019-12-31", s) for n in (150, 400) for s in range(8, 24)]
    for n, start, end, seed in cases:
        p = qd.synthetic_market(
            tmp_path / "m.zarr", n_assets=n, start=start, end=end, seed=seed, overwrite=True
        )
        _assert_in_bands(_market_level(p), f"{n} {start}..{end} seed {seed}")


def test_small_market_indices_are_not_a_handful_of_stocks(market) -> None:
    """CSI 300 / CSI SOE of a 120-stock market: ~min(20, listed // 6) members, not 3."""
    w = market["index"]["weight"]
    d = market["daily"]
    listed = int(np.isfinite(d["close"].isel(date=-1).values).sum())
    for code in ("000300.SH", "000016.SH", "000955.CSI"):
        n = int((w.sel(index=code).isel(date=-1) > 0).sum())
        assert n >= min(10, listed // 10), (code, n, listed)
