"""qd.ingest / qd.append on what real vendor dumps look like (issue 11).

Every test builds its situation from a small hand-made frame and checks values computed by
hand (or by pandas), never the code's own output: off-calendar prints, no adjustment factor,
no limit prices, no turnover, stale (delisted) assets, ST by name, string label dtypes, and one
call versus the same inputs split into ingest + appends.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import quantdask as qd
from quantdask.io import schema
from quantdask.io.ingest import IngestWarning

SESSIONS = qd.trading_calendar("2021-01-04", "2021-06-30")


def bar(code, date, close, pre_close, vol=1000.0, **extra):
    """One daily row; open/high/low bracket the close."""
    return {
        "ts_code": code,
        "trade_date": pd.Timestamp(date).strftime("%Y%m%d"),
        "open": close,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "pre_close": pre_close,
        "vol": vol,
        "amount": vol * close / 10,
        **extra,
    }


def frame(rows):
    return pd.DataFrame(rows)


def d(i):
    return SESSIONS[i].strftime("%Y%m%d")


# ------------------------------------------------------------------ 2. off-calendar dates
def test_weekend_and_holiday_rows_raise(tmp_path):
    rows = [bar("600000.SH", SESSIONS[i], 10.0, 10.0) for i in range(5)]
    rows += [bar("600000.SH", "2021-01-09", 10.0, 10.0)]  # a Saturday
    rows += [bar("000001.SZ", "2021-02-12", 10.0, 10.0)]  # Spring Festival (a Friday)
    rows += [bar("000001.SZ", "2021-02-12", 10.0, 10.0, ts_code="000002.SZ")]
    with pytest.raises(
        qd.IngestError,
        match=r"3 row\(s\) on 2 date\(s\) that are not sessions of the Shanghai exchange "
        r"calendar \(first: 2021-01-09, 2021-02-12\)",
    ):
        qd.ingest(tmp_path / "m.zarr", daily=frame(rows))
    assert not (tmp_path / "m.zarr").exists()


def test_off_calendar_drop_drops_with_a_warning(tmp_path):
    good = [bar("600000.SH", SESSIONS[i], 10.0, 10.0, adj_factor=1.0) for i in range(5)]
    rows = good + [bar("600000.SH", "2021-01-09", 10.0, 10.0, adj_factor=1.0)]
    with pytest.warns(IngestWarning, match=r"dropped 1 row\(s\) on 1 date\(s\)"):
        path = qd.ingest(tmp_path / "m.zarr", daily=frame(rows), off_calendar="drop")
    got = qd.open_market(path)["daily"]["date"].values
    np.testing.assert_array_equal(got, SESSIONS[:5].values)


def test_append_rejects_a_holiday_row(tmp_path):
    rows = [bar("600000.SH", SESSIONS[i], 10.0, 10.0) for i in range(3)]
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "m.zarr", daily=frame(rows))
    holiday = frame([bar("600000.SH", "2021-01-10", 10.0, 10.0)])  # Sunday
    with pytest.raises(qd.IngestError, match=r"1 row\(s\) on 1 date\(s\).*2021-01-10"):
        qd.append(path, daily=holiday)
    assert qd.open_market(path)["daily"].sizes["date"] == 3


def test_beyond_the_real_calendar_warns_and_keeps(tmp_path):
    # 2027 is past the real XSHG calendar: only the fallback knows it, so warn, do not raise
    days = ["2027-01-04", "2027-01-05", "2027-01-09"]  # the last a Saturday
    rows = [bar("600000.SH", x, 10.0, 10.0) for x in days]
    with pytest.warns(IngestWarning) as rec:
        path = qd.ingest(tmp_path / "m.zarr", daily=frame(rows))
    assert any(
        "kept 1 row(s) on 1 date(s) outside the real exchange" in str(w.message) for w in rec
    )
    assert qd.open_market(path)["daily"].sizes["date"] == 3


# ------------------------------------------------------- 1. adj_factor from the pre_close chain
def chain_rows():
    a = [
        bar("600000.SH", SESSIONS[0], 10.0, 9.8),
        bar("600000.SH", SESSIONS[1], 10.5, 10.0),
        # SESSIONS[2]: no row (suspended)
        bar("600000.SH", SESSIONS[3], 5.3, 5.25),  # 10-for-10 bonus: ex-rights pre_close
        bar("600000.SH", SESSIONS[4], 5.3, 5.3, vol=0.0),  # vendor suspension placeholder
        bar("600000.SH", SESSIONS[5], 5.5, 5.2),  # cash dividend 0.10: 5.3 -> 5.2
    ]
    b = [bar("000001.SZ", SESSIONS[i], 20.0, 20.0) for i in (2, 3, 4, 5)]
    return frame(a + b)


def chain_expected():
    a = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0 * 5.3 / 5.2]
    b = [np.nan, np.nan, 1.0, 1.0, 1.0, 1.0]
    return pd.DataFrame({"600000.SH": a, "000001.SZ": b}, index=SESSIONS[:6])


def test_adj_factor_derived_from_pre_close_chain(tmp_path):
    with pytest.warns(IngestWarning, match=r"derived the adjustment factor of 2 asset\(s\)"):
        path = qd.ingest(tmp_path / "m.zarr", daily=chain_rows())
    daily = qd.open_market(path)["daily"]
    got = daily["adj_factor"].to_pandas()[["600000.SH", "000001.SZ"]]
    want = chain_expected()
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-15)
    assert daily.attrs["adj_factor_source"] == "pre_close chain"
    # fields nothing provided are listed; derived ones are not
    missing = daily.attrs["missing_fields"]
    assert isinstance(missing, list) and all(isinstance(f, str) for f in missing)
    assert {"turnover_rate", "float_share", "pe_ttm", "circ_mv"} <= set(missing)
    assert not {"adj_factor", "close", "up_limit", "down_limit"} & set(missing)


def test_adj_factor_chain_continues_across_appends_and_blocks(tmp_path, monkeypatch):
    rows = chain_rows()
    dates = pd.to_datetime(rows["trade_date"])
    want = chain_expected().to_numpy()
    for cut in (2, 3, 4, 5):
        with pytest.warns(IngestWarning):
            path = qd.ingest(tmp_path / f"p{cut}.zarr", daily=rows[dates < SESSIONS[cut]])
        with pytest.warns(IngestWarning):
            qd.append(path, daily=rows[dates >= SESSIONS[cut]])
        got = qd.open_market(path)["daily"]["adj_factor"].to_pandas()[["600000.SH", "000001.SZ"]]
        np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-15, err_msg=f"cut {cut}")
    monkeypatch.setattr(schema, "DATE_CHUNK", 2)
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "blocks.zarr", daily=rows)
    got = qd.open_market(path)["daily"]["adj_factor"].to_pandas()[["600000.SH", "000001.SZ"]]
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-15)


def test_vendor_adj_factor_is_kept_and_recorded(tmp_path):
    rows = chain_rows().assign(adj_factor=3.0)
    path = qd.ingest(tmp_path / "m.zarr", daily=rows)  # no warning: nothing derived
    daily = qd.open_market(path)["daily"]
    assert daily.attrs["adj_factor_source"] == "vendor"
    assert np.nanmax(np.abs(daily["adj_factor"].values - 3.0)) == 0


# ------------------------------------------------------------- 12. label dtypes of every writer
def test_labels_are_fixed_width_strings_after_ingest_and_append(tmp_path):
    rows = frame([bar("600000.SH", SESSIONS[i], 10.0, 10.0) for i in range(3)])
    idx = pd.DataFrame({"ts_code": "000300.SH", "trade_date": [d(0), d(1), d(2)], "close": 4e3})
    st = pd.DataFrame(
        {"ts_code": ["600000.SH"], "ann_date": ["20210105"], "end_date": ["20201231"]}
    )
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "m.zarr", daily=rows, index_daily=idx, statements=st)
    later = frame(
        [bar("688981.SH", SESSIONS[3], 50.0, 50.0), bar("600000.SH", SESSIONS[3], 10, 10)]
    )
    with pytest.warns(IngestWarning):
        qd.append(path, daily=later, statements=st.assign(ts_code="688981.SH", ann_date="20210108"))
    tree = qd.open_market(path)
    labels = [
        tree["daily"]["asset"],
        tree["daily"]["name"],
        tree["daily"]["board"],
        tree["daily"]["exchange"],
        tree["index"]["index"],
        tree["index"]["asset"],
        tree["fundamentals"]["asset"],
    ]
    for v in labels:
        assert v.dtype.kind == "U", (v.name, v.dtype)
        text = v.values.astype(str)  # raised TypeError on numpy StringDType
        assert pd.Index(v.values).equals(pd.Index(text))
    assert list(tree["daily"]["asset"].values.astype(str)) == ["600000.SH", "688981.SH"]
    assert qd.verify(path).ok, str(qd.verify(path))


# ------------------------------------------------ 14 + 13. limit prices derived, half up
REFORM_DAYS = qd.trading_calendar("2020-08-17", "2020-09-04")


def limit_rows():
    rows = []
    for i, day in enumerate(REFORM_DAYS):
        rows.append(bar("600000.SH", day, 0.45, 0.45, name="Pudong"))
        rows.append(bar("600001.SH", day, 10.01, 10.01, name="*ST Foo" if i >= 3 else "Foo"))
        rows.append(bar("300750.SZ", day, 100.0, 100.0, name="CATL"))
        rows.append(bar("688981.SH", day, 50.0, 50.0, name="SMIC"))
        rows.append(bar("830799.BJ", day, 10.0, 10.0, name="Bj"))
        if i >= 2:  # a STAR IPO on REFORM_DAYS[2]: no limit for its first 5 sessions
            rows.append(bar("688999.SH", day, 30.0, 10.0 if i == 2 else 30.0, name="New"))
    return frame(rows)


def test_limits_derived_from_the_shared_rules(tmp_path):
    sb = pd.DataFrame(
        {
            "ts_code": ["688999.SH"],
            "name": ["New"],
            "list_date": [REFORM_DAYS[2].strftime("%Y%m%d")],
        }
    )
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "m.zarr", daily=limit_rows(), stock_basic=sb)
    daily = qd.open_market(path)["daily"]
    up = daily["up_limit"].to_pandas()
    dn = daily["down_limit"].to_pandas()
    assert daily.attrs["limit_source"] == "derived"
    assert daily.attrs["is_st_source"] == "daily name column"
    # main board 10%: 0.45 -> 0.495 -> 0.50 and 0.405 -> 0.41 (half up, not 0.40)
    assert (up["600000.SH"] == 0.50).all() and (dn["600000.SH"] == 0.41).all()
    # ST by name from the 4th session: 5%, 10.01 -> 10.5105 -> 10.51 and 9.5095 -> 9.51
    st = daily["is_st"].to_pandas()["600001.SH"].to_numpy()
    np.testing.assert_array_equal(st, np.arange(len(REFORM_DAYS)) >= 3)
    np.testing.assert_array_equal(up["600001.SH"], np.where(st, 10.51, 11.01))
    np.testing.assert_array_equal(dn["600001.SH"], np.where(st, 9.51, 9.01))
    # ChiNext: 10% until 2020-08-21, 20% from 2020-08-24
    after = REFORM_DAYS >= "2020-08-24"
    np.testing.assert_array_equal(up["300750.SZ"], np.where(after, 120.0, 110.0))
    np.testing.assert_array_equal(dn["300750.SZ"], np.where(after, 80.0, 90.0))
    assert (up["688981.SH"] == 60.0).all() and (dn["688981.SH"] == 40.0).all()
    assert (up["830799.BJ"] == 13.0).all() and (dn["830799.BJ"] == 7.0).all()
    new = up["688999.SH"].to_numpy()
    assert np.isnan(new[:7]).all()  # not listed before REFORM_DAYS[2], then 5 free sessions
    np.testing.assert_array_equal(new[7:], 36.0)


def test_no_daily_limits_before_1996_12_16(tmp_path):
    days = qd.trading_calendar("1995-06-01", "1995-06-06")
    rows = frame([bar("600000.SH", x, 11.5, 10.0) for x in days])  # +15% a day
    with pytest.warns(IngestWarning) as rec:
        path = qd.ingest(tmp_path / "m.zarr", daily=rows)
    assert not any("price limit" in str(w.message) for w in rec)
    assert np.isnan(qd.open_market(path)["daily"]["up_limit"].values).all()


def test_vendor_limits_are_kept(tmp_path):
    rows = limit_rows()
    lim = rows[["ts_code", "trade_date"]].assign(up_limit=99.0, down_limit=1.0)
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "m.zarr", daily=rows, stk_limit=lim)
    daily = qd.open_market(path)["daily"]
    assert daily.attrs["limit_source"] == "vendor"
    assert (daily["up_limit"].values[~np.isnan(daily["close"].values)] == 99.0).all()


def test_code_format_message_names_689(tmp_path):
    rows = frame([bar("700000.SH", SESSIONS[0], 10.0, 10.0)])
    with pytest.raises(qd.IngestError, match=r"600/601/603/605/688/689 \.SH"):
        qd.ingest(tmp_path / "m.zarr", daily=rows)
    ok = frame([bar("689009.SH", SESSIONS[0], 10.0, 10.0)])
    with pytest.warns(IngestWarning):
        qd.ingest(tmp_path / "ok.zarr", daily=ok)


def test_suspicious_bars_warn_with_counts_and_examples(tmp_path):
    rows = [bar("600000.SH", SESSIONS[i], 10.0, 10.0) for i in range(4)]
    rows[1]["high"] = 9.5  # close 10.0 above high 9.5 (low 9.9 is below... set it too)
    rows[1]["low"] = 9.0
    rows[2]["close"] = 13.0  # +30% on the main board
    rows[2]["high"] = 13.1
    rows += [bar("000001.SZ", SESSIONS[i], 10.0, 10.0) for i in range(4)]
    rows[5]["close"] = 10.9  # +9% inside the 10% limit: fine
    rows[5]["high"] = 11.0
    # a STAR IPO's first day: no limit, not reported
    rows += [bar("688999.SH", SESSIONS[2], 40.0, 10.0), bar("688999.SH", SESSIONS[3], 40, 40)]
    sb = pd.DataFrame({"ts_code": ["688999.SH"], "list_date": [d(2)]})
    with pytest.warns(IngestWarning) as rec:
        qd.ingest(tmp_path / "m.zarr", daily=frame(rows), stock_basic=sb)
    text = [str(w.message) for w in rec]
    assert any(
        t.startswith("1 bar(s) with a close outside [low, high], e.g. 600000.SH 2021-01-05")
        for t in text
    ), text
    assert any(
        t.startswith("1 bar(s) with a daily return (close / pre_close - 1) beyond the board's")
        and "600000.SH 2021-01-06 (+30.0%)" in t
        for t in text
    ), text


# ------------------------------------------------------------ 9. turnover from float shares
def test_turnover_derived_from_float_share_or_circ_mv(tmp_path):
    rows = frame(
        [bar("600000.SH", SESSIONS[i], 10.0, 10.0, vol=1000.0) for i in range(3)]
        + [bar("000001.SZ", SESSIONS[i], 10.0, 10.0, vol=1000.0) for i in range(3)]
        + [bar("000002.SZ", SESSIONS[i], 10.0, 10.0, vol=1000.0) for i in range(3)]
    )
    basic = pd.DataFrame(
        {
            "ts_code": ["600000.SH"] * 3 + ["000001.SZ"] * 3,
            "trade_date": [d(0), d(1), d(2)] * 2,
            "float_share": [500.0] * 3 + [np.nan] * 3,  # 10k shares
            "circ_mv": [np.nan] * 3 + [5000.0] * 3,  # 10k CNY: 500 (10k shares) at 10 CNY
        }
    )
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "m.zarr", daily=rows, daily_basic=basic)
    daily = qd.open_market(path)["daily"]
    tr = daily["turnover_rate"].to_pandas()
    # 1000 lots = 100,000 shares of 5,000,000 float shares = 2%
    np.testing.assert_allclose(tr["600000.SH"], 2.0, rtol=1e-15)
    np.testing.assert_allclose(tr["000001.SZ"], 2.0, rtol=1e-15)
    assert tr["000002.SZ"].isna().all()
    assert "turnover_rate" not in daily.attrs["missing_fields"]
    assert daily.attrs["turnover_rate_source"] == "vol * close / circ_mv + vol / float_share"
    with pytest.warns(IngestWarning):
        bare = qd.ingest(tmp_path / "bare.zarr", daily=rows)
    assert "turnover_rate" in qd.open_market(bare)["daily"].attrs["missing_fields"]


# ---------------------------------------------------------- 4. stale assets: inferred delisting
def stale_rows(n=40, c_bars=range(10), d_bars=range(30)):
    rows = [bar("600000.SH", SESSIONS[i], 10.0, 10.0) for i in range(n)]
    rows += [bar("000001.SZ", SESSIONS[i], 20.0, 20.0) for i in c_bars]
    rows += [bar("000002.SZ", SESSIONS[i], 30.0, 30.0) for i in d_bars]
    return frame(rows).assign(adj_factor=1.0)  # a vendor factor: only the stale warning


def test_stale_asset_is_inferred_delisted(tmp_path):
    with pytest.warns(IngestWarning) as rec:
        path = qd.ingest(tmp_path / "m.zarr", daily=stale_rows())
    assert any(str(w.message).startswith("1 asset(s) without a delist_date") for w in rec)
    daily = qd.open_market(path)["daily"]
    assert daily.attrs["delist_inferred"] == ["000001.SZ"]
    assert daily.attrs["stale_days"] == 20
    dl = daily["delist_date"].to_pandas()
    assert dl["000001.SZ"] == SESSIONS[10]  # the session after the last bar
    assert pd.isna(dl["000002.SZ"]) and pd.isna(dl["600000.SH"])
    susp = daily["suspended"].to_pandas()
    assert not susp["000001.SZ"].any()  # delisted, not suspended
    np.testing.assert_array_equal(susp["000002.SZ"], np.arange(40) >= 30)
    assert daily["adj_factor"].to_pandas()["000001.SZ"].iloc[10:].isna().all()
    # a shorter stale_days delists 000002.SZ too (10 sessions without a bar)
    with pytest.warns(IngestWarning, match=r"^2 asset\(s\) without a delist_date"):
        p5 = qd.ingest(tmp_path / "s5.zarr", daily=stale_rows(), stale_days=5)
    assert qd.open_market(p5)["daily"]["delist_date"].to_pandas()["000002.SZ"] == SESSIONS[30]


def test_stock_basic_delist_date_wins_and_missing_one_is_inferred(tmp_path):
    sb = pd.DataFrame(
        {
            "ts_code": ["600000.SH", "000001.SZ", "000002.SZ"],
            "list_date": ["20000101"] * 3,
            "delist_date": [None, d(15), None],
        }
    )
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "m.zarr", daily=stale_rows(d_bars=range(5)), stock_basic=sb)
    daily = qd.open_market(path)["daily"]
    assert daily.attrs["delist_inferred"] == ["000002.SZ"]
    dl = daily["delist_date"].to_pandas()
    assert dl["000001.SZ"] == SESSIONS[15] and dl["000002.SZ"] == SESSIONS[5]


def assert_same_store(a, b):
    """Every variable of every node equal cell by cell, aligned by asset label."""
    ta, tb = qd.open_market(a), qd.open_market(b)
    for node in schema.NODES:
        x, y = ta[node].to_dataset(), tb[node].to_dataset()
        assert sorted(x.variables) == sorted(y.variables), node
        if "asset" in x.dims:
            y = y.sel(asset=x["asset"].values)
        for v in x.variables:
            np.testing.assert_array_equal(x[v].values, y[v].values, err_msg=f"{node}/{v}")
    for key in ("missing_fields", "adj_factor_source", "limit_source", "is_st_source"):
        assert ta["daily"].attrs.get(key) == tb["daily"].attrs.get(key), key
    assert sorted(ta["daily"].attrs["delist_inferred"]) == sorted(
        tb["daily"].attrs["delist_inferred"]
    )


def test_append_with_bars_reverses_and_append_infers(tmp_path):
    full = stale_rows(n=60, c_bars=[*range(10), *range(40, 60)], d_bars=range(30))
    with pytest.warns(IngestWarning):
        one = qd.ingest(tmp_path / "one.zarr", daily=full)
    dates = pd.to_datetime(full["trade_date"])
    with pytest.warns(IngestWarning, match="000001.SZ|1 asset"):
        path = qd.ingest(tmp_path / "split.zarr", daily=full[dates < SESSIONS[40]])
    assert qd.open_market(path)["daily"].attrs["delist_inferred"] == ["000001.SZ"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", IngestWarning)  # nothing to report
        qd.append(path, daily=full[(dates >= SESSIONS[40]) & (dates < SESSIONS[45])])
    daily = qd.open_market(path)["daily"]
    assert daily.attrs["delist_inferred"] == []  # 000001.SZ has bars again
    assert pd.isna(daily["delist_date"].to_pandas()["000001.SZ"])
    np.testing.assert_array_equal(
        daily["suspended"].to_pandas()["000001.SZ"], (np.arange(45) >= 10) & (np.arange(45) < 40)
    )
    # 000002.SZ: last bar SESSIONS[29]; at SESSIONS[59] it is 30 sessions stale -> delisted
    # from SESSIONS[30], a date already in the store: those cells are rewritten
    with pytest.warns(IngestWarning, match=r"1 asset\(s\) without a delist_date"):
        qd.append(path, daily=full[dates >= SESSIONS[45]])
    daily = qd.open_market(path)["daily"]
    assert daily.attrs["delist_inferred"] == ["000002.SZ"]
    assert daily["delist_date"].to_pandas()["000002.SZ"] == SESSIONS[30]
    assert not daily["suspended"].to_pandas()["000002.SZ"].iloc[30:].any()
    assert qd.verify(path).ok, str(qd.verify(path))
    assert_same_store(one, path)


# ------------------------------------------------------- 8. one call == the same inputs split
SPLIT_CODES = ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "601318.SH", "000002.SZ"]


def split_frames(st_column):
    """Suspensions, an IPO, ST episodes per row, a stock_basic snapshot, a vendor placeholder
    row, no adj_factor / stk_limit / turnover_rate, an asset whose bars stop for 45 sessions
    (inferred delisted in the first part, back later) and one whose bars stop for good."""
    rng = np.random.default_rng(11)
    n = 60
    rows = []
    for a, code in enumerate(SPLIT_CODES):
        close = 10.0 + a
        for i in range(n):
            if code == "688981.SH" and i < 20:  # lists on SESSIONS[20]
                continue
            if code == "601318.SH" and 5 <= i < 50:
                continue
            if code == "300750.SZ" and i >= 35:
                continue
            if rng.random() < 0.12:  # suspended: no row
                continue
            pre = round(close * (0.97 if rng.random() < 0.05 else 1.0), 2)  # ex-dividend
            close = round(pre * (1 + rng.uniform(-0.04, 0.04)), 2)
            st = code == "000001.SZ" and 25 <= i < 45
            extra = (
                {"is_st": int(st)}
                if st_column == "is_st"
                else {"name": ("*ST " if st else "") + "N"}
            )
            # a reclassification on SESSIONS[33] given per row (carried over suspensions)
            extra["industry"] = 801150 if (code == "000002.SZ" and i >= 33) else np.nan
            rows.append(
                bar(code, SESSIONS[i], close, pre, vol=float(rng.integers(1, 9000)), **extra)
            )
    daily = frame(rows)
    daily.loc[7, "vol"] = 0.0  # a vendor suspension placeholder
    basic = daily[["ts_code", "trade_date"]].assign(float_share=rng.uniform(100, 900, len(daily)))
    sb = pd.DataFrame(
        {
            "ts_code": SPLIT_CODES,
            "name": ["A", "B", "C", "D", "E", "F"],
            "list_date": ["20100101", "20100101", "20100101", d(20), "20100101", "20100101"],
            "industry": [801780, 801780, 801730, 801080, 801790, 801790],
        }
    )
    return {"daily": daily, "daily_basic": basic, "stock_basic": sb}


def by_date(frames, lo, hi, *, static=True):
    out = {}
    for k, df in frames.items():
        if "trade_date" in df.columns:
            dates = pd.to_datetime(df["trade_date"])
            out[k] = df[(dates >= lo) & (dates < hi)]
        elif static:
            out[k] = df  # stock_basic with this call
    return out


@pytest.mark.parametrize("sb_every_call", [True, False])
@pytest.mark.parametrize("st_column", ["is_st", "name"])
def test_one_call_equals_ingest_plus_appends(tmp_path, monkeypatch, st_column, sb_every_call):
    frames = split_frames(st_column)
    with pytest.warns(IngestWarning):
        one = qd.ingest(tmp_path / "one.zarr", **frames)
    tree = qd.open_market(one)
    assert tree["daily"].attrs["delist_inferred"] == ["300750.SZ"]
    st = tree["daily"]["is_st"].to_pandas()["000001.SZ"].to_numpy()
    # ST from the rows, carried over suspensions (the ST rows run from 25 to 44)
    np.testing.assert_array_equal(st, (np.arange(60) >= 25) & (np.arange(60) < 45))
    ind = tree["daily"]["industry"].to_pandas()["000002.SZ"].to_numpy()
    rows = frames["daily"][frames["daily"].ts_code == "000002.SZ"]
    first = SESSIONS.get_loc(pd.Timestamp(rows.trade_date[rows.industry.notna()].iloc[0]))
    np.testing.assert_array_equal(ind, np.where(np.arange(60) < first, 801790, 801150))
    cuts = [SESSIONS[0], SESSIONS[30], SESSIONS[45], SESSIONS[60]]
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "split.zarr", **by_date(frames, cuts[0], cuts[1]))
    assert qd.open_market(path)["daily"].attrs["delist_inferred"] == ["601318.SH"]
    for lo, hi in zip(cuts[1:-1], cuts[2:], strict=True):
        with pytest.warns(IngestWarning):
            qd.append(path, **by_date(frames, lo, hi, static=sb_every_call))
    assert qd.verify(path).ok, str(qd.verify(path))
    assert_same_store(one, path)
    monkeypatch.setattr(schema, "DATE_CHUNK", 8)
    monkeypatch.setattr(schema, "ASSET_CHUNK", 4)
    with pytest.warns(IngestWarning):
        blocks = qd.ingest(tmp_path / "blocks.zarr", **frames)
    assert_same_store(one, blocks)


def test_append_to_a_store_with_variable_width_labels(tmp_path):
    """Stores of older ingests hold numpy StringDType labels; append still reads them."""
    import zarr

    from quantdask.io.store import zarr_quiet

    rows = frame([bar("600000.SH", SESSIONS[i], 10.0, 10.0) for i in range(3)])
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "m.zarr", daily=rows)
    with zarr_quiet():
        g = zarr.open_group(str(path), mode="r+")
        for name in ("asset", "name"):
            old = g[f"daily/{name}"]
            values, dims, attrs = old[:], old.metadata.dimension_names, dict(old.attrs)
            del g[f"daily/{name}"]
            new = g["daily"].create_array(
                name, shape=values.shape, dtype=str, dimension_names=dims, attributes=attrs
            )
            new[:] = values.astype(object)
        zarr.consolidate_metadata(str(path))
    assert qd.open_market(path)["daily"]["asset"].dtype.kind == "T"
    with pytest.warns(IngestWarning):
        qd.append(path, daily=frame([bar("600000.SH", SESSIONS[3], 10.5, 10.0)]))
    daily = qd.open_market(path)["daily"]
    np.testing.assert_array_equal(daily["close"].to_pandas()["600000.SH"], [10, 10, 10, 10.5])
    np.testing.assert_allclose(daily["adj_factor"].to_pandas()["600000.SH"], 1.0)


@pytest.mark.parametrize(
    ("name", "st"),
    [
        ("ST Kangmei", True),
        ("*ST Kangmei", True),
        ("SST Foo", True),
        ("S*ST Foo", True),
        ("Stone", False),
        ("XST", False),
        ("Kangmei", False),
    ],
)
def test_st_by_name(tmp_path, name, st):
    rows = frame([bar("600000.SH", SESSIONS[i], 10.0, 10.0, name=name) for i in range(2)])
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "m.zarr", daily=rows)
    assert (qd.open_market(path)["daily"]["is_st"].values == st).all()


@pytest.mark.parametrize("cuts", [(1,), (6, 7), (21, 33, 51, 59), (44,)])
def test_split_anywhere_gives_the_same_store(tmp_path, cuts):
    """Cuts inside suspensions, ST episodes, the stale gap, on the IPO day and at the end."""
    frames = split_frames("name")
    with pytest.warns(IngestWarning):
        one = qd.ingest(tmp_path / "one.zarr", **frames)
    bounds = [SESSIONS[0], *(SESSIONS[c] for c in cuts), SESSIONS[60]]
    with pytest.warns(IngestWarning):
        path = qd.ingest(tmp_path / "split.zarr", **by_date(frames, bounds[0], bounds[1]))
    for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True):
        with pytest.warns(IngestWarning):
            qd.append(path, **by_date(frames, lo, hi, static=False))
    assert_same_store(one, path)
