"""Point-in-time alignment, TTM, QoQ and YoY against hand-built timelines and a plain loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdask import fundamentals as fu
from quantdask.testing import raise_if_dask_computes


def tiny_market(records: pd.DataFrame, dates, assets, *, asset_chunk: int = 2, date_chunk=7):
    """A DataTree with a daily close panel and a fundamentals record node."""
    dates = pd.DatetimeIndex(dates)
    close = xr.DataArray(
        np.ones((len(dates), len(assets))),
        dims=("date", "asset"),
        coords={"date": dates.values, "asset": np.array(assets)},
        name="close",
    ).chunk({"date": date_chunk, "asset": asset_chunk})
    rec = xr.Dataset(
        {
            c: ("record", records[c].to_numpy())
            for c in records.columns
            if c not in ("asset", "end_date", "ann_date")
        }
    )
    rec["asset"] = ("record", records["asset"].to_numpy().astype("U12"))
    rec["end_date"] = ("record", records["end_date"].to_numpy().astype("datetime64[ns]"))
    rec["ann_date"] = ("record", records["ann_date"].to_numpy().astype("datetime64[ns]"))
    rec = rec.chunk({"record": 5})
    return xr.DataTree.from_dict({"daily": xr.Dataset({"close": close}), "fundamentals": rec})


def _rec(asset, end, ann, revenue, flag=0, **extra):
    return dict(
        asset=asset,
        end_date=pd.Timestamp(end),
        ann_date=pd.Timestamp(ann),
        update_flag=flag,
        revenue=float(revenue),
        **extra,
    )


TIMELINE = pd.DataFrame(
    [
        _rec("000001.SZ", "2017-03-31", "2017-04-20", 90),
        _rec("000001.SZ", "2017-06-30", "2017-08-20", 200),
        _rec("000001.SZ", "2017-09-30", "2017-10-20", 300),
        _rec("000001.SZ", "2017-12-31", "2018-03-15", 400),  # Thursday
        _rec("000001.SZ", "2018-03-31", "2018-04-20", 120),  # Friday
        _rec("000001.SZ", "2018-06-30", "2018-08-10", 250),  # Friday
        _rec("000001.SZ", "2017-12-31", "2018-09-03", 420, 1),  # late restatement, older period
        _rec("000001.SZ", "2018-06-30", "2018-09-05", 260, 1),  # restatement of latest period
        _rec("000001.SZ", "2018-09-30", "2018-10-27", 380),  # Saturday
        _rec("600000.SH", "2018-03-31", "2018-04-27", 50),
        _rec("600000.SH", "2018-03-31", "2018-04-27", 55, 1),  # same-day restatement wins
        _rec("999999.SH", "2018-03-31", "2018-04-27", 7),  # asset not in the panel: ignored
    ]
)
DATES = pd.bdate_range("2018-01-02", "2018-12-31")
ASSETS = ["000001.SZ", "300001.SZ", "600000.SH"]


def _at(panel: xr.DataArray, date: str, asset: str = "000001.SZ") -> float:
    return float(panel.sel(date=date, asset=asset))


@pytest.fixture(scope="module")
def timeline_market():
    return tiny_market(TIMELINE, DATES, ASSETS)


def test_align_hand_built_timeline(timeline_market):
    with raise_if_dask_computes():
        rev = fu.align(timeline_market, "revenue")
    rev = rev.compute()
    expected = {
        "2018-01-02": 300,
        "2018-03-15": 300,  # announced on this day: usable only from the next trading day
        "2018-03-16": 400,
        "2018-04-20": 400,
        "2018-04-23": 120,
        "2018-08-13": 250,
        "2018-09-04": 250,  # restated 2017 annual does not replace the newer 2018-H1 value
        "2018-09-05": 250,
        "2018-09-06": 260,  # restated 2018-H1 takes effect the day after its announcement
        "2018-10-26": 260,
        "2018-10-29": 380,  # Saturday announcement -> Monday
        "2018-12-31": 380,
    }
    for date, value in expected.items():
        assert _at(rev, date) == value, date
    assert np.isnan(rev.sel(asset="300001.SZ")).all()
    assert _at(rev, "2018-04-27", "600000.SH") != _at(rev, "2018-04-27", "600000.SH")  # NaN
    assert _at(rev, "2018-04-30", "600000.SH") == 55


def test_align_same_day_convention(timeline_market):
    rev = fu.align(timeline_market, "revenue", as_of="same_day").compute()
    assert _at(rev, "2018-03-14") == 300
    assert _at(rev, "2018-03-15") == 400
    assert _at(rev, "2018-09-05") == 260
    assert _at(rev, "2018-10-26") == 260
    assert _at(rev, "2018-10-29") == 380
    assert _at(rev, "2018-04-27", "600000.SH") == 55


def test_ttm_hand_checked(timeline_market):
    with raise_if_dask_computes():
        t = fu.ttm(timeline_market, "revenue")
    t = t.compute()
    assert np.isnan(_at(t, "2018-03-15"))  # 2017-Q3: no 2016 annual known
    assert _at(t, "2018-03-16") == 400  # annual report: TTM = YTD
    assert _at(t, "2018-04-23") == 120 + 400 - 90
    assert _at(t, "2018-08-13") == 250 + 400 - 200
    assert _at(t, "2018-09-04") == 250 + 420 - 200  # restated annual used from its date on
    assert _at(t, "2018-09-06") == 260 + 420 - 200
    assert _at(t, "2018-10-29") == 380 + 420 - 300


def test_qoq_yoy_single_quarter(timeline_market):
    q = fu.latest(timeline_market, "revenue", kind="quarter").compute()
    assert _at(q, "2018-04-23") == 120  # Q1 single quarter = YTD
    assert _at(q, "2018-08-13") == 250 - 120
    assert _at(q, "2018-10-29") == 380 - 260
    d = fu.change(timeline_market, "revenue").compute()  # latest report vs the one before
    assert _at(d, "2018-04-23") == 120 - 400
    assert _at(d, "2018-09-06") == 260 - 120
    y = fu.yoy(timeline_market, "revenue").compute()
    assert _at(y, "2018-04-23") == pytest.approx(120 / 90 - 1)
    assert _at(y, "2018-09-06") == pytest.approx(260 / 200 - 1)
    yt = fu.yoy(timeline_market, "revenue", kind="ttm").compute()
    # TTM of 2017-Q3 is unknown (no 2016 annual), so TTM YoY is NaN there
    assert np.isnan(_at(yt, "2018-10-29"))


def test_align_dataset_and_errors(timeline_market):
    ds = fu.align(timeline_market, ["revenue"])
    assert isinstance(ds, xr.Dataset) and set(ds.data_vars) == {"revenue"}
    with pytest.raises(ValueError, match="unknown statement item 'nope'"):
        fu.align(timeline_market, "nope")
    with pytest.raises(ValueError, match="as_of"):
        fu.align(timeline_market, "revenue", as_of="tomorrow")
    with pytest.raises(ValueError, match="lag"):
        fu.ttm(timeline_market, "revenue", lag=-1)


def test_chunks_follow_daily_panel(timeline_market):
    rev = fu.align(timeline_market, "revenue")
    assert rev.chunks == timeline_market["daily"]["close"].chunks


# ----------------------------------------------------------------------------------------
# random records against a plain-Python reference, and the look-ahead property
# ----------------------------------------------------------------------------------------
def random_records(seed: int, assets, n_years: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for a in assets:
        for year in range(2015, 2015 + n_years):
            for q, (m, d) in enumerate([(3, 31), (6, 30), (9, 30), (12, 31)]):
                if rng.random() < 0.1:
                    continue  # missing report
                end = pd.Timestamp(year, m, d)
                ann = end + pd.Timedelta(days=int(rng.integers(5, 110)))
                val = float(rng.integers(1, 100)) * (q + 1)
                rows.append(_rec(a, end, ann, val))
                if rng.random() < 0.25:  # restatement, sometimes years later
                    late = ann + pd.Timedelta(days=int(rng.integers(0, 500)))
                    rows.append(_rec(a, end, late, val + float(rng.integers(-20, 20)), 1))
    return pd.DataFrame(rows)


def reference(records: pd.DataFrame, dates, assets, *, kind: str, lag: int = 0, side="right"):
    """Plain loop over dates and assets: the definition, written the slow way."""
    cal = pd.DatetimeIndex(dates).values
    out = np.full((len(dates), len(assets)), np.nan)
    recs = records.copy()
    recs["row"] = np.searchsorted(cal, recs["ann_date"].values.astype("datetime64[ns]"), side=side)
    recs["period"] = recs["end_date"].dt.year * 4 + (recs["end_date"].dt.month - 1) // 3
    for j, a in enumerate(assets):
        ra = recs[recs["asset"] == a].sort_values(["ann_date", "update_flag"], kind="stable")
        triples = list(zip(ra["row"], ra["period"], ra["revenue"], strict=True))
        for t in range(len(dates)):
            val = {}
            for row, period, value in triples:  # in announcement order: the last one wins
                if row <= t:
                    val[period] = value
            if not val:
                continue
            p = max(val) - lag

            def v(k, val=val):
                return val.get(k, np.nan)

            if kind == "value":
                out[t, j] = v(p)
            elif kind == "ttm":
                q = p % 4
                out[t, j] = v(p) if q == 3 else v(p) + v(p - q - 1) - v(p - 4)
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("as_of", ["next_trading_day", "same_day"])
def test_against_plain_loop(seed, as_of):
    assets = ["000001.SZ", "000002.SZ", "600000.SH"]
    dates = pd.bdate_range("2016-01-01", "2018-12-31", freq="3B")
    recs = random_records(seed, assets)
    m = tiny_market(recs, dates, assets, date_chunk=50)
    side = "right" if as_of == "next_trading_day" else "left"
    got = fu.align(m, "revenue", as_of=as_of).values
    np.testing.assert_array_equal(got, reference(recs, dates, assets, kind="value", side=side))
    got = fu.ttm(m, "revenue", as_of=as_of).values
    np.testing.assert_allclose(got, reference(recs, dates, assets, kind="ttm", side=side))
    got = fu.ttm(m, "revenue", lag=4, as_of=as_of).values
    np.testing.assert_allclose(got, reference(recs, dates, assets, kind="ttm", lag=4, side=side))


@pytest.mark.parametrize("seed", [3, 4])
def test_no_look_ahead(seed):
    """Removing every statement announced on or after t leaves all values up to t unchanged."""
    assets = ["000001.SZ", "000002.SZ", "600000.SH", "600001.SH"]
    dates = pd.bdate_range("2016-01-01", "2018-12-31")
    recs = random_records(seed, assets)
    m = tiny_market(recs, dates, assets, date_chunk=100)
    full = {
        "value": fu.align(m, "revenue").values,
        "ttm": fu.ttm(m, "revenue").values,
        "yoy": fu.yoy(m, "revenue", kind="ttm").values,
        "qoq": fu.change(m, "revenue", kind="quarter").values,
    }
    rng = np.random.default_rng(seed)
    for t in rng.choice(len(dates), size=4, replace=False):
        cut = recs[recs["ann_date"] < dates[t]]
        mt = tiny_market(cut, dates, assets, date_chunk=100)
        trunc = {
            "value": fu.align(mt, "revenue").values,
            "ttm": fu.ttm(mt, "revenue").values,
            "yoy": fu.yoy(mt, "revenue", kind="ttm").values,
            "qoq": fu.change(mt, "revenue", kind="quarter").values,
        }
        for k in full:
            np.testing.assert_array_equal(full[k][: t + 1], trunc[k][: t + 1], err_msg=k)


def test_pit_views_plain_arrays():
    # two records for period 8 (restated at row 3), one for period 9 at row 5
    out, latest = fu.pit_views(
        np.array([0, 0, 0]),
        np.array([1, 3, 5]),
        np.array([8, 8, 9]),
        np.array([1.0, 2.0, 3.0]),
        n_dates=7,
        n_assets=1,
        views=[(0, 0), (0, 1)],
    )
    np.testing.assert_array_equal(out[0, :, 0], [np.nan, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(out[1, :, 0], [np.nan] * 5 + [2, 2])
    np.testing.assert_array_equal(latest[:, 0], [-1, 8, 8, 8, 8, 9, 9])


def test_ttm_of_a_lone_annual_report():
    """Period numbering must keep the fiscal quarter whatever the first period is."""
    recs = pd.DataFrame(
        [
            _rec("000001.SZ", "2017-12-31", "2018-03-15", 400),
            _rec("000001.SZ", "2018-06-30", "2018-08-10", 150),
        ]
    )
    m = tiny_market(recs, DATES, ASSETS)
    t = fu.ttm(m, "revenue").compute()
    assert _at(t, "2018-03-16") == 400
    assert np.isnan(_at(t, "2018-08-13"))  # 2017-H1 unknown
    q = fu.latest(m, "revenue", kind="quarter").compute()
    assert np.isnan(_at(q, "2018-03-16"))  # Q4 single quarter needs the unknown Q3 YTD


@pytest.mark.distributed
def test_pit_on_a_local_cluster():
    """The alignment graph runs on real worker processes and matches the plain-loop reference."""
    from distributed import Client, LocalCluster

    assets = ["000001.SZ", "000002.SZ", "600000.SH"]
    dates = pd.bdate_range("2016-01-01", "2018-12-31", freq="3B")
    recs = random_records(11, assets)
    m = tiny_market(recs, dates, assets, date_chunk=50)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        got = client.compute(fu.ttm(m, "revenue"), sync=True)
    np.testing.assert_allclose(got.values, reference(recs, dates, assets, kind="ttm"))


def _plain_views(asset, row, period, value, n_dates, n_assets, views, anchor):
    """Definition of pit_views, one cell at a time."""
    out = np.full((len(views), n_dates, n_assets), np.nan)
    order = sorted(range(len(asset)), key=lambda i: (asset[i], row[i]))  # stable: input order
    for a in range(n_assets):
        recs = [i for i in order if asset[i] == a]
        for t in range(n_dates):
            state, maxp = {}, None
            for i in recs:
                if row[i] > t or (anchor == "item" and not np.isfinite(value[i])):
                    continue
                if np.isfinite(value[i]):
                    state[period[i]] = value[i]
                maxp = period[i] if maxp is None else max(maxp, period[i])
            if maxp is None:
                continue

            def v(p, state=state):
                return state.get(p, np.nan)

            for k, (mode, lag) in enumerate(views):
                p = maxp - lag
                q = p % 4
                if mode == 0:
                    out[k, t, a] = v(p)
                elif mode == 1:
                    out[k, t, a] = v(p) if q == 3 else v(p) + v(p - q - 1) - v(p - 4)
                else:
                    out[k, t, a] = v(p) if q == 0 else v(p) - v(p - 1)
    return out


@settings(max_examples=60, deadline=None)
@given(
    recs=st.lists(
        st.tuples(
            st.integers(0, 2),  # asset
            st.integers(0, 11),  # first usable row
            st.integers(8051, 8062),  # fiscal period (2012-Q4 .. 2015-Q3)
            st.one_of(st.integers(-50, 50).map(float), st.just(np.nan)),
        ),
        max_size=25,
    ),
    anchor=st.sampled_from(["item", "report"]),
)
def test_pit_views_property(recs, anchor):
    asset, row, period, value = (
        (np.array(c) for c in zip(*recs, strict=True))
        if recs
        else (
            np.zeros(0, int),
            np.zeros(0, int),
            np.zeros(0, int),
            np.zeros(0),
        )
    )
    views = [(0, 0), (0, 1), (1, 0), (1, 4), (2, 0), (2, 2)]
    got, _ = fu.pit_views(
        asset, row, period, value, n_dates=12, n_assets=3, views=views, anchor=anchor
    )
    want = _plain_views(list(asset), list(row), list(period), list(value), 12, 3, views, anchor)
    np.testing.assert_allclose(got, want, equal_nan=True)
