"""qd.snapshot: the broad-index daily report, against pandas/scipy references on the store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import quantdask as qd
from quantdask.factors.snapshot import SNAPSHOT_MEASURES, SnapshotWarning, snapshot_inputs
from quantdask.io import schema

DAY = pd.Timestamp("2019-12-31")


@pytest.fixture(scope="module")
def snap(market):
    return qd.snapshot(market, DAY)


def index_frame(market, field: str) -> pd.DataFrame:
    da = market["index"][field]
    return pd.DataFrame(
        da.values, index=pd.DatetimeIndex(da["date"].values), columns=da["index"].values
    )


def strict_pct(series: pd.Series, window: int) -> float:
    """Percentile of the last value in a full window of valid values (scipy), else NaN."""
    win = series.iloc[-window:]
    if len(win) < window or win.isna().any():
        return np.nan
    return stats.percentileofscore(win, win.iloc[-1], kind="mean")


def test_frame_shape_and_names(market, snap):
    codes = [str(c) for c in market["index"]["index"].values]
    f = snap.frame
    assert snap.date == DAY
    assert list(f.index) == codes and f.index.name == "index"
    assert list(f["name"]) == [schema.INDICES[c] for c in codes]
    for col in (
        "streak_D",
        "streak_Y",
        "close_vs_ma_5",
        "close_vs_ma_250",
        "close_vs_high_250",
        "close_vs_low_250",
        "turnover",
        "amount_share",
        "ret_skew_250",
        "ret_kurt_vs_5y_250",
        "risk_premium",
        "risk_premium_pct_250",
        "risk_premium_pct_1250",
        "risk_premium_band_m2",
        "risk_premium_band_2",
        "equity_bond_signal_1250",
        "pe_ttm_pct_all",
        "dv_ttm_pct_1250",
        "below_book_ratio",
    ):
        assert col in f.columns, col
    assert all(f[c].dtype == np.float64 for c in f.columns if c != "name")


def test_values_against_pandas(market, snap):
    f = snap.frame
    close = index_frame(market, "close").loc[:DAY]
    ma20 = close.rolling(20).mean().iloc[-1]
    np.testing.assert_allclose(f["close_vs_ma_20"], ((close.iloc[-1] - ma20) / ma20 * 100).values)
    high = index_frame(market, "high").loc[:DAY].iloc[-250:].max()
    np.testing.assert_allclose(
        f["close_vs_high_250"], ((close.iloc[-1] - high) / high * 100).values
    )

    amount = index_frame(market, "amount").loc[DAY]
    np.testing.assert_allclose(f["amount_share"], (amount / amount["000985.CSI"] * 100).values)

    # float-share weighted turnover over the day's constituents, in long format
    w = market["index"]["weight"].sel(date=DAY).to_pandas().stack().rename("w").reset_index()
    d = market["daily"].to_dataset()[["float_share", "turnover_rate"]].sel(date=DAY).to_pandas()
    long = w.merge(d, left_on="asset", right_index=True)
    long = long[(long["w"] > 0) & long["float_share"].notna() & long["turnover_rate"].notna()]
    ref = long.groupby("index").apply(
        lambda g: (g["float_share"] * g["turnover_rate"]).sum() / g["float_share"].sum(),
        include_groups=False,
    )
    np.testing.assert_allclose(f["turnover"], ref.reindex(f.index).values)

    pe = index_frame(market, "pe_ttm").loc[:DAY]
    y10 = market["macro"]["cgb_10y"].to_pandas().loc[:DAY].ffill(limit=5)
    rp = (100 / pe).sub(y10, axis=0)
    np.testing.assert_allclose(f["risk_premium"], rp.iloc[-1].values)
    for window, col in ((250, "pe_ttm_pct_250"), (1250, "pe_ttm_pct_1250")):
        np.testing.assert_allclose(f[col], [strict_pct(pe[c], window) for c in pe])
    ref_all = [
        stats.percentileofscore(pe[c].dropna(), pe[c].iloc[-1], kind="mean")
        if pe[c].notna().sum() >= 250 and pe[c].notna().iloc[-1]
        else np.nan
        for c in pe
    ]
    np.testing.assert_allclose(f["pe_ttm_pct_all"], ref_all)
    pct5 = np.array([strict_pct(rp[c], 1250) for c in rp])
    np.testing.assert_allclose(f["risk_premium_pct_1250"], pct5)
    np.testing.assert_array_equal(
        f["equity_bond_signal_1250"],
        np.where(np.isnan(pct5), np.nan, np.where(pct5 > 80, 1.0, np.where(pct5 < 20, -1.0, 0.0))),
    )
    last_year = rp.iloc[-250:]
    band = (last_year.mean() - 2 * last_year.std()).where(last_year.notna().all())
    np.testing.assert_allclose(f["risk_premium_band_m2"], band.values)
    # daily streak: count back over the last closes by hand
    diffs = np.sign(close.diff().iloc[-30:].to_numpy())
    for j, code in enumerate(close.columns):
        s, k = diffs[-1, j], 0
        while s != 0 and k < len(diffs) and diffs[-1 - k, j] == s:
            k += 1
        assert f.loc[code, "streak_D"] == s * k


def test_no_lookahead_and_date_snapping(market):
    day = pd.Timestamp("2018-06-29")
    full = qd.snapshot(market, day)
    cut = qd.snapshot(market.sel(date=slice(None, day)), day)
    pd.testing.assert_frame_equal(full.frame, cut.frame, rtol=1e-7)
    dates = pd.DatetimeIndex(market["index"]["date"].values)
    sunday = pd.Timestamp("2018-07-01")
    assert sunday not in dates
    assert qd.snapshot(market, sunday).date == dates[dates <= sunday][-1]
    with pytest.raises(ValueError, match="before the market's first date"):
        qd.snapshot(market, "2000-01-01")
    with pytest.raises(ValueError, match="not a date"):
        qd.snapshot(market, "last friday")


def test_renderings(snap):
    md = snap.to_markdown()
    lines = md.strip().splitlines()
    assert lines[0] == "**Broad-index snapshot, 2019-12-31**"
    assert lines[2].startswith("| measure | SSE 50 | CSI 300 |")
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) == 2 + len(SNAPSHOT_MEASURES)
    assert lines[: len(rows) + 2][2:] == rows  # the table, then the notes
    assert any(line.startswith("| equity-bond signal |") for line in lines)
    assert all(line.count("|") == lines[2].count("|") for line in rows)
    html = snap.to_html()
    assert "<table" in html and "CSI All Share" in html and "2019-12-31" in html
    assert snap._repr_html_() == html
    labelled = snap.labelled()
    assert set(labelled["equity-bond signal"]) <= {"opportunity", "danger", "neutral", ""}


def _reduced(market):
    """The market without the CSI All Share index, without macro, and with daily turnover
    recorded as not provided by any input (``attrs["missing_fields"]``)."""
    import xarray as xr

    index = market["index"].to_dataset(inherit=False)
    keep = [c for c in index["index"].values if str(c) != "000985.CSI"]
    daily = market["daily"].to_dataset(inherit=False)
    daily.attrs = {**daily.attrs, "missing_fields": ["turnover_rate"]}
    nodes = {k: market[k].to_dataset(inherit=False) for k in market.children}
    nodes.update({"index": index.sel(index=keep), "daily": daily})
    del nodes["macro"]
    return xr.DataTree.from_dict(nodes)


def test_missing_inputs_are_all_listed_and_the_rest_computed(market, snap):
    reduced = _reduced(market)
    with pytest.warns(SnapshotWarning) as rec:
        part = qd.snapshot(reduced, DAY)
    assert len(rec) == 1
    text = str(rec[0].message)
    for path in ("index/amount[000985.CSI]", "macro/cgb_10y", "daily/turnover_rate"):
        assert path in text
    gone = {"amount_share", "turnover"} | {
        c for c in snap.frame.columns if c.startswith(("risk_premium", "equity_bond"))
    }
    assert set(part.missing) == gone
    assert "macro/cgb_10y" in part.missing["risk_premium_pct_1250"]
    assert part.frame[sorted(gone)].isna().all().all()
    assert list(part.frame.columns) == list(snap.frame.columns)
    keep = [c for c in snap.frame.columns if c not in gone]
    pd.testing.assert_frame_equal(part.frame[keep], snap.frame.loc[part.frame.index, keep])
    md = part.to_markdown()
    assert "amount share %: not computed, missing index/amount[000985.CSI]" in md
    assert "<li>turnover %: not computed" in part.to_html()


def test_snapshot_inputs_documented():
    needs = snapshot_inputs()
    assert needs["amount_share"] == ("index/amount", "index/amount[000985.CSI]")
    assert needs["turnover"] == ("index/weight", "daily/float_share", "daily/turnover_rate")
    assert needs["risk_premium"] == ("index/pe_ttm", "macro/cgb_10y")


def _label(variable: str) -> str:
    return {qd.factor(n, **p).variable: lab for n, p, lab, _ in SNAPSHOT_MEASURES}[variable]


def test_empty_cells_say_why(market, snap):
    """Every computed measure with an empty cell has a note in the page (issue 17)."""
    blank = [c for c in snap.frame.columns[1:] if snap.frame[c].isna().any()]
    assert set(snap.empty) == set(blank)
    # 2014-01-02 .. 2019-12-31: fewer index dates than a 250-day skew's 1250-day mean needs
    close = index_frame(market, "close").loc[:DAY]
    have = int(close["000300.SH"].count())
    need = 250 + 1250 - 1
    assert have < need
    md, page = snap.to_markdown(), snap.to_html()
    for v in ("ret_skew_vs_5y_250", "ret_kurt_vs_5y_250"):
        assert v in blank
        note = f"{_label(v)}: empty, it needs {need} trading days of index history"
        assert note in md and note in page
        assert f"every index has {have}" in snap.empty[v]
    for v in blank:
        assert f"- {_label(v)}: empty, " in md


def test_short_history_snapshot_names_each_short_row(market):
    early = qd.snapshot(market, "2014-06-30")
    have = int(index_frame(market, "close").loc[:"2014-06-30", "000300.SH"].count())
    assert "needs 250 trading days" in early.empty["close_vs_ma_250"]
    assert f"has {have}" in early.empty["close_vs_ma_250"]
    assert "close_vs_ma_20" not in early.empty  # 20 days are there
    assert early.frame["close_vs_ma_20"].notna().all()


def test_a_long_enough_market_fills_the_5y_rows(tmp_path):
    """Seven years: the 5-year mean rows are filled for every index with that much history.

    CSI 2000 exists from 2013-12-31 only: its cells stay empty, and the note says so.
    """
    p = qd.synthetic_market(
        tmp_path / "long.zarr", n_assets=40, start="2012-01-01", end="2018-12-31", seed=5
    )
    m = qd.open_market(p)
    s = qd.snapshot(m, "2018-12-28")
    have = index_frame(m, "close").loc[:"2018-12-28"].count()
    need = 250 + 1250 - 1
    assert (have >= need).sum() >= 5
    for v in ("ret_skew_vs_5y_250", "ret_kurt_vs_5y_250"):
        full = have.index[have >= need]
        assert s.frame.loc[full, v].notna().all(), s.frame[v]
        for code in have.index[have < need]:
            assert f"{code} has {have[code]}" in s.empty[v] or (
                f"{code}," in s.empty[v] and f"has {have[code]}" in s.empty[v]
            )
