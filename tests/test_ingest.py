"""qd.ingest / qd.append: round trips against pandas pivots, bad input, interrupted appends."""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantdask as qd
from quantdask.io import schema
from quantdask.io.ingest import IngestWarning
from quantdask.io.store import JOURNAL_DIR, StoreError

REPO = Path(__file__).resolve().parents[1]
CODES = ["600000.SH", "000001.SZ", "300750.SZ", "688981.SH", "830799.BJ", "601318.SH"]
DATES = pd.DatetimeIndex(
    # Shanghai sessions of early 2021 (no weekends or Spring Festival days)
    pd.bdate_range("2021-01-04", "2021-03-31").difference(
        pd.DatetimeIndex(pd.date_range("2021-02-11", "2021-02-17"))
    )
)


def make_frames(codes=CODES, dates=DATES, seed=0, missing=0.15):
    """Random tushare-layout frames with missing rows (suspensions) and a zero-volume row."""
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product([dates, codes], names=["trade_date", "ts_code"]).to_frame(
        index=False
    )
    idx = idx[rng.random(len(idx)) > missing].reset_index(drop=True)
    n = len(idx)
    close = 10 + rng.random(n) * 5
    daily = pd.DataFrame(
        {
            "ts_code": idx["ts_code"],
            "trade_date": idx["trade_date"].dt.strftime("%Y%m%d"),
            "open": close * (1 + rng.normal(0, 0.01, n)),
            "high": close * 1.03,
            "low": close * 0.97,
            "close": close,
            "pre_close": close * (1 + rng.normal(0, 0.01, n)),
            "vol": rng.integers(1, 10_000, n).astype(float),
            "amount": rng.random(n) * 1e5,
            "adj_factor": 1 + rng.random(n),
        }
    )
    basic = pd.DataFrame(
        {
            "ts_code": idx["ts_code"],
            "trade_date": idx["trade_date"].dt.strftime("%Y-%m-%d"),
            **{
                f: rng.random(n) * 100
                for f in ("turnover_rate", "float_share", "total_mv", "pe_ttm")
            },
        }
    )
    limit = pd.DataFrame(
        {
            "ts_code": idx["ts_code"],
            "trade_date": idx["trade_date"].dt.strftime("%Y%m%d").astype(int),
            "up_limit": np.round(close * 1.1, 2),
            "down_limit": np.round(close * 0.9, 2),
        }
    )
    index_daily = pd.DataFrame(
        {
            "ts_code": np.repeat(["000300.SH", "932000.CSI"], len(dates)),
            "trade_date": np.tile(dates.strftime("%Y%m%d"), 2),
            "close": 4000 + rng.random(2 * len(dates)) * 100,
            "amount": rng.random(2 * len(dates)) * 1e8,
        }
    )
    snap = dates[[0, len(dates) // 2]]
    index_weight = pd.DataFrame(
        {
            "index_code": "000300.SH",
            "con_code": [CODES[0], CODES[1], CODES[5], CODES[0], CODES[5]],
            "trade_date": [snap[0]] * 3 + [snap[1]] * 2,
            "weight": [50.0, 30.0, 20.0, 60.0, 40.0],
        }
    )
    macro = pd.DataFrame(
        {"trade_date": dates.strftime("%Y%m%d"), "cgb_10y": 3 + rng.random(len(dates))}
    )
    statements = pd.DataFrame(
        {
            "ts_code": [CODES[0], CODES[0], CODES[1]],
            "end_date": ["20201231", "20201231", "20200930"],
            "ann_date": ["20210320", "20210325", "20201030"],
            "revenue": [100.0, 101.0, 50.0],
            "total_assets": [1000.0, 1000.0, 700.0],
        }
    )
    stock_basic = pd.DataFrame(
        {
            "ts_code": codes,
            "name": [f"name{i}" if i != 2 else "*ST name2" for i in range(len(codes))],
            "list_date": ["20100101"] * len(codes),
            "delist_date": [None] * (len(codes) - 1) + ["2021-03-01"],
            "industry": [801780, 801780, 801730, 801080, 801890, 801790][: len(codes)],
        }
    )
    return dict(
        daily=daily,
        daily_basic=basic,
        stk_limit=limit,
        index_daily=index_daily,
        index_weight=index_weight,
        macro=macro,
        statements=statements,
        stock_basic=stock_basic,
    )


def pivot(frame, field, dates=DATES, codes=None, key="ts_code"):
    df = frame.copy()
    df["trade_date"] = pd.to_datetime(df["trade_date"].astype(str), format="mixed")
    wide = df.pivot(index="trade_date", columns=key, values=field)
    return wide.reindex(index=dates, columns=codes)


@pytest.fixture()
def small_chunks(monkeypatch):
    """Tiny stored chunks so appends cross chunk edges in a small test."""
    monkeypatch.setattr(schema, "DATE_CHUNK", 8)
    monkeypatch.setattr(schema, "ASSET_CHUNK", 4)


def write(frames, tmp_path, fmt):
    """The frames as CSV files, Parquet files or DataFrames."""
    if fmt == "frame":
        return frames
    out = {}
    for k, df in frames.items():
        p = tmp_path / f"{k}.{fmt}"
        df.to_csv(p, index=False) if fmt == "csv" else df.to_parquet(p)
        out[k] = p
    return out


@pytest.mark.parametrize("fmt", ["frame", "csv", "parquet"])
def test_round_trip_equals_pandas_pivot(tmp_path, fmt):
    frames = make_frames()
    frames["daily"].loc[5, "vol"] = 0.0  # a vendor suspension placeholder
    path = qd.ingest(tmp_path / "m.zarr", **write(frames, tmp_path, fmt))
    market = qd.open_market(path)
    daily = market["daily"]
    codes = sorted(CODES)
    assert list(daily["asset"].values) == codes
    np.testing.assert_array_equal(daily["date"].values, DATES.values.astype("datetime64[ns]"))
    susp_row = frames["daily"].loc[5]
    d = frames["daily"].drop(index=5)
    for f in ("open", "high", "low", "close", "pre_close", "vol", "amount"):
        np.testing.assert_allclose(
            daily[f].values, pivot(d, f, codes=codes).to_numpy(), rtol=0, atol=0, err_msg=f
        )
    # the adjustment factor of a suspended day is kept (it is defined on suspended days), and
    # carried over suspensions while listed (601318.SH is delisted from 2021-03-01)
    raw = pivot(frames["daily"], "adj_factor", codes=codes)
    on_list = pd.DataFrame(True, index=DATES, columns=codes)
    on_list.loc[DATES >= "2021-03-01", "601318.SH"] = False
    ref = raw.where(raw.notna() | ~on_list, raw.ffill()).to_numpy()
    np.testing.assert_allclose(daily["adj_factor"].values, ref, rtol=0, atol=0)
    for f in ("turnover_rate", "float_share", "total_mv", "pe_ttm"):
        ref = pivot(frames["daily_basic"], f, codes=codes).to_numpy().copy()
        np.testing.assert_allclose(daily[f].values, ref, rtol=0, atol=0, err_msg=f)
    assert np.isnan(daily["total_share"].values).all()
    for f in ("up_limit", "down_limit"):
        np.testing.assert_allclose(
            daily[f].values, pivot(frames["stk_limit"], f, codes=codes).to_numpy()
        )
    # suspended: listed (list 2010, 601318.SH delisted 2021-03-01) but no traded bar
    listed = np.ones((len(DATES), len(codes)), bool)
    listed[DATES >= "2021-03-01", codes.index("601318.SH")] = False
    traded = ~np.isnan(pivot(d, "close", codes=codes).to_numpy())
    np.testing.assert_array_equal(daily["suspended"].values, listed & ~traded)
    assert (
        daily["suspended"]
        .sel(asset=susp_row.ts_code, date=pd.Timestamp(susp_row.trade_date))
        .values
    )
    st = np.zeros_like(listed)
    st[:, codes.index("300750.SZ")] = True
    np.testing.assert_array_equal(daily["is_st"].values, st & listed)
    sb = frames["stock_basic"].set_index("ts_code").reindex(codes)
    np.testing.assert_array_equal(
        daily["industry"].values, np.where(listed, sb["industry"].to_numpy()[None, :], 0)
    )
    assert daily["industry"].dtype == np.int32
    assert list(daily["exchange"].values) == [c[-2:] for c in codes]
    assert dict(zip(codes, daily["board"].values, strict=True)) == {
        "000001.SZ": "main",
        "300750.SZ": "chinext",
        "600000.SH": "main",
        "601318.SH": "main",
        "688981.SH": "star",
        "830799.BJ": "bse",
    }
    assert daily["delist_date"].sel(asset="601318.SH").values == np.datetime64("2021-03-01")
    # index node
    idx = market["index"]
    assert list(idx["index"].values) == ["000300.SH", "932000.CSI"]
    np.testing.assert_allclose(
        idx["close"].values,
        pivot(frames["index_daily"], "close", codes=["000300.SH", "932000.CSI"]).to_numpy(),
    )
    assert np.isnan(idx["pb"].values).all()
    w = idx["weight"].sel(index="000300.SH").to_pandas()[codes]
    half = DATES[len(DATES) // 2]
    first = pd.Series({"600000.SH": 0.5, "000001.SZ": 0.3, "601318.SH": 0.2}).reindex(
        codes, fill_value=0.0
    )
    second = pd.Series({"600000.SH": 0.6, "601318.SH": 0.4}).reindex(codes, fill_value=0.0)
    np.testing.assert_allclose(
        w.loc[: half - pd.Timedelta(days=1)].to_numpy(),
        np.tile(first.to_numpy(), (DATES.get_loc(half), 1)),
    )
    np.testing.assert_allclose(
        w.loc[half:].to_numpy(), np.tile(second.to_numpy(), (len(DATES) - DATES.get_loc(half), 1))
    )
    assert np.isnan(idx["weight"].sel(index="932000.CSI").values).all()
    # fundamentals: sorted by announcement; update_flag from announcement order
    f = market["fundamentals"].to_dataset()
    assert list(f["asset"].values) == ["000001.SZ", "600000.SH", "600000.SH"]
    assert list(f["update_flag"].values) == [0, 0, 1]
    np.testing.assert_array_equal(f["revenue"].values, [50.0, 100.0, 101.0])
    assert np.isnan(f["ebit"].values).all()
    np.testing.assert_allclose(
        market["macro"]["cgb_10y"].values, frames["macro"]["cgb_10y"].to_numpy()
    )
    assert qd.verify(path).ok, str(qd.verify(path))


def test_store_chunking_and_dtypes_follow_schema(tmp_path):
    import zarr

    path = qd.ingest(tmp_path / "m.zarr", **make_frames())
    g = zarr.open_group(str(path), mode="r")
    for f in schema.DAILY_FIELDS:
        assert g[f"daily/{f}"].metadata.chunk_grid.chunk_shape == (
            schema.DATE_CHUNK,
            schema.ASSET_CHUNK,
        )
    assert g["fundamentals/revenue"].metadata.chunk_grid.chunk_shape == (schema.RECORD_CHUNK,)
    tree = qd.open_market(path)
    assert set(tree.children) == set(schema.NODES)
    assert tree["daily"]["close"].dtype == np.float64
    assert tree["daily"]["suspended"].dtype == bool
    assert tree["daily"]["close"].chunks is not None  # lazy, dask-backed


def test_ingest_in_date_blocks_equals_one_block(tmp_path, monkeypatch):
    """Ingest holds one DATE_CHUNK block in memory at a time; blocks must not change values."""
    frames = make_frames()
    one = qd.ingest(tmp_path / "one.zarr", **frames)
    monkeypatch.setattr(schema, "DATE_CHUNK", 8)
    monkeypatch.setattr(schema, "ASSET_CHUNK", 4)
    blocks = qd.ingest(tmp_path / "blocks.zarr", **frames)
    assert_same_market(one, blocks)
    assert qd.verify(blocks).ok


def test_dates_accept_yyyymmdd_ints_strings_and_iso(tmp_path):
    frames = make_frames(codes=CODES[:2], dates=DATES[:3], missing=0)
    d = frames["daily"]
    d["trade_date"] = [
        20210104,
        "20210104",
        "2021-01-05",
        "2021-01-05T00:00:00",
        pd.Timestamp("2021-01-06"),
        "20210106",
    ]
    path = qd.ingest(tmp_path / "m.zarr", daily=d.astype({"trade_date": object}))
    got = qd.open_market(path)["daily"]["date"].values
    np.testing.assert_array_equal(got, DATES[:3].values.astype("datetime64[ns]"))


def test_ingest_existing_path_needs_overwrite(tmp_path):
    frames = make_frames()
    path = qd.ingest(tmp_path / "m.zarr", daily=frames["daily"])
    with pytest.raises(FileExistsError):
        qd.ingest(path, daily=frames["daily"])
    qd.ingest(path, daily=frames["daily"].iloc[:10], overwrite=True)
    assert qd.open_market(path)["daily"].sizes["date"] < len(DATES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zarr"]


def test_failed_ingest_leaves_nothing(tmp_path, monkeypatch):
    ing = importlib.import_module("quantdask.io.ingest")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ing, "_write_tree", boom)
    with pytest.raises(OSError, match="disk full"):
        qd.ingest(tmp_path / "m.zarr", daily=make_frames()["daily"])
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Bad input: one test per case, each error names the input, row and field


def bad(frames, **changes):
    return {**frames, **changes}


def daily_with(**cells):
    d = make_frames(missing=0)["daily"].iloc[:20].copy()
    for col, (row, value) in cells.items():
        d[col] = d[col].astype(object)
        d.loc[row, col] = value
    return d


def test_bad_duplicate_key(tmp_path):
    d = daily_with()
    d.loc[7, ["ts_code", "trade_date"]] = d.loc[3, ["ts_code", "trade_date"]].to_numpy()
    with pytest.raises(
        qd.IngestError,
        match=r"DataFrame daily: row 8, field 'ts_code': duplicate key .*also at row 4",
    ):
        qd.ingest(tmp_path / "m.zarr", daily=d)


def test_bad_duplicate_key_after_stripping_and_in_sorted_input(tmp_path):
    # A code that differs only by blanks is the same key; sorted per-stock input (the fast
    # path of the check) with one repeated row is caught too.
    d = daily_with()
    d["ts_code"] = d["ts_code"].astype(object)
    d.loc[7, ["ts_code", "trade_date"]] = d.loc[3, ["ts_code", "trade_date"]].to_numpy()
    d.loc[7, "ts_code"] = f" {d.loc[3, 'ts_code']} "
    with pytest.raises(qd.IngestError, match=r"row 8, field 'ts_code': duplicate key"):
        qd.ingest(tmp_path / "m.zarr", daily=d)
    s = daily_with().sort_values(["ts_code", "trade_date"]).reset_index(drop=True)
    s = pd.concat([s.iloc[:5], s.iloc[4:5], s.iloc[5:]], ignore_index=True)
    with pytest.raises(qd.IngestError, match=r"row 6, field 'ts_code': duplicate key .*row 5"):
        qd.ingest(tmp_path / "s.zarr", daily=s)


def test_bad_unparseable_date(tmp_path):
    with pytest.raises(
        qd.IngestError,
        match=r"DataFrame daily: row 4, field 'trade_date': unparseable date '2021-13-45'",
    ):
        qd.ingest(tmp_path / "m.zarr", daily=daily_with(trade_date=(3, "2021-13-45")))


def test_bad_unparseable_date_in_csv_names_file_and_line(tmp_path):
    p = tmp_path / "daily.csv"
    daily_with(trade_date=(2, "yesterday")).to_csv(p, index=False)
    with pytest.raises(qd.IngestError, match=rf"file {p}: row 3 \(line 4\), field 'trade_date'"):
        qd.ingest(tmp_path / "m.zarr", daily=p)


def test_bad_negative_price(tmp_path):
    with pytest.raises(
        qd.IngestError, match=r"row 6, field 'close': price must be positive, got -1.0"
    ):
        qd.ingest(tmp_path / "m.zarr", daily=daily_with(close=(5, -1.0)))


def test_bad_zero_price(tmp_path):
    with pytest.raises(qd.IngestError, match=r"row 1, field 'open': price must be positive"):
        qd.ingest(tmp_path / "m.zarr", daily=daily_with(open=(0, 0.0)))


def test_bad_negative_limit_price(tmp_path):
    limit = make_frames()["stk_limit"]
    limit.loc[2, "up_limit"] = -3.0
    with pytest.raises(qd.IngestError, match=r"DataFrame stk_limit: row 3, field 'up_limit'"):
        qd.ingest(tmp_path / "m.zarr", stk_limit=limit)


def test_bad_high_below_low(tmp_path):
    with pytest.raises(qd.IngestError, match=r"row 10, field 'high': high 1.0 is below low"):
        qd.ingest(tmp_path / "m.zarr", daily=daily_with(high=(9, 1.0)))


@pytest.mark.parametrize("code", ["700000.SH", "600000.SZ", "600000", "123456.HK", "89001.BJ"])
def test_bad_unknown_code_format(tmp_path, code):
    with pytest.raises(
        qd.IngestError, match=rf"row 2, field 'ts_code': unknown code format '{code}'"
    ):
        qd.ingest(tmp_path / "m.zarr", daily=daily_with(ts_code=(1, code)))


def test_bad_index_code_in_stock_table_and_stock_code_in_index_table(tmp_path):
    with pytest.raises(qd.IngestError, match=r"unknown code format '000300.CSI'"):
        qd.ingest(tmp_path / "m.zarr", daily=daily_with(ts_code=(0, "000300.CSI")))
    idx = make_frames()["index_daily"]
    idx.loc[4, "ts_code"] = "000300.XX"
    with pytest.raises(qd.IngestError, match=r"DataFrame index_daily: row 5, field 'ts_code'"):
        qd.ingest(tmp_path / "m.zarr", index_daily=idx)


def test_bad_announcement_before_period_end(tmp_path):
    s = make_frames()["statements"]
    s.loc[1, "ann_date"] = "20201130"
    with pytest.raises(
        qd.IngestError,
        match=r"DataFrame statements: row 2, field 'ann_date': announced 2020-11-30 before its period end 2020-12-31",
    ):
        qd.ingest(tmp_path / "m.zarr", daily=make_frames()["daily"], statements=s)


def test_bad_dtype_clash_text_in_numeric_column(tmp_path):
    with pytest.raises(
        qd.IngestError, match=r"row 12, field 'vol': expected a number, got 'n/a lots'"
    ):
        qd.ingest(tmp_path / "m.zarr", daily=daily_with(vol=(11, "n/a lots")))


def test_bad_dtype_clash_in_parquet_file(tmp_path):
    p = tmp_path / "basic.parquet"
    b = make_frames()["daily_basic"]
    b["pe_ttm"] = b["pe_ttm"].astype(str)
    b.loc[3, "pe_ttm"] = "loss"
    b.to_parquet(p)
    with pytest.raises(
        qd.IngestError, match=rf"file {p}: row 4, field 'pe_ttm': expected a number"
    ):
        qd.ingest(tmp_path / "m.zarr", daily_basic=p)


def test_bad_missing_required_column(tmp_path):
    with pytest.raises(
        qd.IngestError, match=r"DataFrame daily: missing required column\(s\) 'pre_close'"
    ):
        qd.ingest(tmp_path / "m.zarr", daily=daily_with().drop(columns="pre_close"))


def test_bad_index_weight_out_of_range(tmp_path):
    w = make_frames()["index_weight"]
    w.loc[1, "weight"] = 130.0
    with pytest.raises(qd.IngestError, match=r"DataFrame index_weight: row 2, field 'weight'"):
        qd.ingest(tmp_path / "m.zarr", index_weight=w)


def test_bad_input_type():
    with pytest.raises(TypeError, match="daily must be a CSV/Parquet path or a pandas DataFrame"):
        qd.ingest("/tmp/never.zarr", daily=[1, 2, 3])


# --------------------------------------------------------------------------------------------
# Append


def split(frames, at):
    """Frames before ``at`` and from ``at`` on (stock_basic and statements go with the first)."""
    first, later = {}, {}
    for k, df in frames.items():
        if "trade_date" in df.columns:
            dates = pd.to_datetime(df["trade_date"].astype(str), format="mixed")
            first[k] = df[dates < at]
            later[k] = df[dates >= at]
        else:
            first[k] = df
    return first, later


def store_digest(path):
    """File list and content hashes of a store."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = Path(root) / f
            out[p.relative_to(path).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_same_market(a, b):
    ta, tb = qd.open_market(a), qd.open_market(b)
    for node in schema.NODES:
        da, db = ta[node].to_dataset(), tb[node].to_dataset()
        assert sorted(da.variables) == sorted(db.variables), node
        for v in da.variables:
            x, y = da[v].values, db[v].values
            assert x.shape == y.shape, (node, v)
            if x.dtype.kind == "f":
                np.testing.assert_array_equal(x, y, err_msg=f"{node}/{v}")
            else:
                assert (x == y).all() or (
                    x.dtype.kind == "M" and np.array_equal(x, y, equal_nan=True)
                ), (node, v)


def test_append_equals_single_ingest_and_adds_ipos(tmp_path, small_chunks):
    frames = make_frames()
    # 688981.SH and 830799.BJ list later: they appear only in the appended slice (IPOs)
    cut = DATES[37]
    late = {"688981.SH", "830799.BJ"}
    sb = frames["stock_basic"]
    sb.loc[sb.ts_code.isin(late), "list_date"] = cut.strftime("%Y%m%d")
    for k in ("daily", "daily_basic", "stk_limit"):
        f = frames[k]
        dates = pd.to_datetime(f["trade_date"].astype(str), format="mixed")
        frames[k] = f[~(f.ts_code.isin(late) & (dates < cut))]
    first, later = split(frames, cut)
    first["stock_basic"] = sb[~sb.ts_code.isin(late)]
    later["stock_basic"] = sb[sb.ts_code.isin(late)]
    whole = qd.ingest(tmp_path / "whole.zarr", **frames)
    path = qd.ingest(tmp_path / "part.zarr", **first)
    before = store_digest(path)
    qd.append(path, **later)
    assert not (path / JOURNAL_DIR).exists()
    assert qd.verify(path).ok, str(qd.verify(path))
    tree = qd.open_market(path)
    codes = list(tree["daily"]["asset"].values)
    assert codes[-2:] == sorted(late) and sorted(codes[:-2]) == codes[:-2]
    wt = qd.open_market(whole)
    for node in schema.NODES:
        a = tree[node].to_dataset()
        b = wt[node].to_dataset()
        if "asset" in a.dims:
            a = a.sel(asset=b["asset"].values)
        for v in b.variables:
            x, y = a[v].values, b[v].values
            if x.dtype.kind == "f":
                np.testing.assert_array_equal(x, y, err_msg=f"{node}/{v}")
            else:
                np.testing.assert_array_equal(x, y, err_msg=f"{node}/{v}")
    # History not rewritten: chunks of earlier date blocks, and of the first asset block, are
    # byte-identical (DATE_CHUNK 8: the cut at date 37 sits in block 4).
    after = store_digest(path)
    changed = {k for k in before if before[k] != after.get(k)}
    for k in changed:
        parts = k.split("/")
        if parts[-1] == "zarr.json":
            continue
        node, var, chunk = parts[0], parts[1], parts[3:]
        if var in ("asset", "name", "exchange", "board", "list_date", "delist_date", "index"):
            continue  # small label coordinates are rewritten whole
        if node == "fundamentals":
            continue
        assert int(chunk[0]) >= 37 // 8, k


def test_append_rejects_dates_not_after_the_store(tmp_path):
    frames = make_frames()
    first, later = split(frames, DATES[30])
    path = qd.ingest(tmp_path / "m.zarr", **first)
    before = store_digest(path)
    overlap = pd.concat([first["daily"].tail(2), later["daily"]])
    with pytest.raises(
        qd.IngestError,
        match=r"DataFrame daily: row 1, field 'trade_date': 2021-02-1\d is not after the store's last date",
    ):
        qd.append(path, daily=overlap)
    with pytest.raises(qd.IngestError, match=r"DataFrame macro: row 1, field 'trade_date'"):
        qd.append(path, daily=later["daily"], macro=frames["macro"])
    assert store_digest(path) == before


def test_append_bad_input_leaves_store_untouched(tmp_path):
    first, later = split(make_frames(), DATES[30])
    path = qd.ingest(tmp_path / "m.zarr", **first)
    before = store_digest(path)
    d = later["daily"].reset_index(drop=True)
    d.loc[4, "high"] = 0.5
    with pytest.raises(qd.IngestError, match=r"row 5, field 'high'"):
        qd.append(path, daily=d)
    assert store_digest(path) == before


def test_append_carries_weights_st_and_industry(tmp_path):
    frames = make_frames()
    first, later = split(frames, DATES[45])
    path = qd.ingest(tmp_path / "m.zarr", **first)
    qd.append(path, daily=later["daily"])
    tree = qd.open_market(path)
    w = tree["index"]["weight"].sel(index="000300.SH")
    np.testing.assert_array_equal(w.isel(date=-1).values, w.isel(date=44).values)
    assert tree["daily"]["is_st"].sel(asset="300750.SZ").values.all()
    assert (tree["daily"]["industry"].sel(asset="600000.SH").values == 801780).all()
    assert tree["daily"].sizes["date"] == len(DATES)
    assert np.isnan(tree["macro"]["cgb_10y"].values[45:]).all()


def test_append_statements_mark_restatements(tmp_path):
    frames = make_frames()
    path = qd.ingest(tmp_path / "m.zarr", **frames)
    extra = pd.DataFrame(
        {
            "ts_code": ["000001.SZ", "688981.SH"],
            "end_date": ["20200930", "20201231"],
            "ann_date": ["20210410", "20210412"],
            "revenue": [51.0, 9.0],
        }
    )
    qd.append(path, statements=extra)
    f = qd.open_market(path)["fundamentals"].to_dataset()
    assert list(f["asset"].values[-2:]) == ["000001.SZ", "688981.SH"]
    assert list(f["update_flag"].values) == [0, 0, 1, 1, 0]
    assert qd.verify(path).ok


def test_open_market_refuses_a_journaled_store(tmp_path):
    path = qd.ingest(tmp_path / "m.zarr", **make_frames())
    (path / JOURNAL_DIR).mkdir()
    with pytest.raises(StoreError, match="interrupted append"):
        qd.open_market(path)
    with pytest.raises(StoreError, match="interrupted append"):
        qd.append(path, daily=make_frames()["daily"])
    report = qd.verify(path)
    assert not report.ok and "journal" in str(report)
    report = qd.verify(path, repair=True)
    assert report.ok and report.repaired
    qd.open_market(path)


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time, pickle
    import quantdask as qd
    import importlib
    ing = importlib.import_module("quantdask.io.ingest")
    from quantdask.io import schema
    schema.DATE_CHUNK, schema.ASSET_CHUNK = 8, 4
    def slow(step):
        print("wrote", step, flush=True)
        time.sleep(0.1)
    ing._write_hook = slow
    with open(sys.argv[2], "rb") as fh:
        later = pickle.load(fh)
    qd.append(sys.argv[1], **later)
    print("done", flush=True)
    """
)


@pytest.mark.parametrize("kill_after", [5])
def test_killed_append_rolls_back_byte_for_byte(tmp_path, monkeypatch, kill_after):
    import pickle

    monkeypatch.setattr(schema, "DATE_CHUNK", 8)
    monkeypatch.setattr(schema, "ASSET_CHUNK", 4)
    frames = make_frames()
    first, later = split(frames, DATES[37])
    path = qd.ingest(tmp_path / "m.zarr", **first)
    reference = tmp_path / "ref.zarr"
    shutil.copytree(path, reference)
    before = store_digest(path)
    later["stock_basic"] = pd.DataFrame(
        {"ts_code": ["002594.SZ"], "name": ["BYD"], "list_date": ["20210301"]}
    )
    later["daily"] = pd.concat(
        [
            later["daily"],
            later["daily"][later["daily"].ts_code == CODES[0]].head(3).assign(ts_code="002594.SZ"),
        ],
        ignore_index=True,
    )
    pk = tmp_path / "later.pkl"
    pk.write_bytes(pickle.dumps(later))
    script = tmp_path / "run_append.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), str(pk)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        seen = 0
        deadline = time.monotonic() + 60
        while seen < kill_after and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "append subprocess ended before it was killed"
            assert not line.startswith("done")
            seen += line.startswith("wrote")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
    assert seen == kill_after
    assert (path / JOURNAL_DIR / "manifest.json").exists()
    assert store_digest(path) != before  # it really was half-written
    with pytest.raises(StoreError):
        qd.open_market(path)
    assert not qd.verify(path).ok
    report = qd.verify(path, repair=True)
    assert report.ok, str(report)
    assert store_digest(path) == before
    assert_same_market(path, reference)
    # and the append can now be run to completion
    qd.append(path, **later)
    assert qd.open_market(path)["daily"].sizes["date"] == len(DATES)


def test_append_daily_update_to_a_synthetic_store(tmp_path, market_path):
    path = tmp_path / "market.zarr"
    shutil.copytree(market_path, path)
    old = qd.open_market(market_path)["daily"].to_dataset()
    last = old.isel(date=-1)
    live = last["close"].to_pandas().dropna().index[:5].tolist()
    new_dates = pd.DatetimeIndex(["2020-01-02", "2020-01-03"])
    rows = pd.MultiIndex.from_product(
        [new_dates, [*live, "688999.SH"]], names=["trade_date", "ts_code"]
    )
    rows = rows.to_frame(index=False)
    rng = np.random.default_rng(3)
    rows["close"] = 10 + rng.random(len(rows))
    daily = rows.assign(
        trade_date=rows["trade_date"].dt.strftime("%Y%m%d"),
        open=rows["close"],
        high=rows["close"] * 1.01,
        low=rows["close"] * 0.99,
        pre_close=rows["close"],
        vol=100.0,
        amount=1000.0,
    )
    basic = pd.DataFrame({"ts_code": ["688999.SH"], "name": ["New Co"], "list_date": ["20200102"]})
    # no adj_factor in the update: the factor continues the store's by the pre_close chain
    with pytest.warns(IngestWarning, match=r"derived the adjustment factor of 6 asset\(s\)"):
        qd.append(
            path,
            daily=daily,
            stock_basic=basic,
            macro=pd.DataFrame({"trade_date": ["20200102"], "cgb_10y": [3.1]}),
        )
    report = qd.verify(path)
    assert report.ok, str(report)
    tree = qd.open_market(path)
    new = tree["daily"].to_dataset()
    assert new.sizes["date"] == old.sizes["date"] + 2
    assert list(new["asset"].values) == [*old["asset"].values, "688999.SH"]
    for f in ("close", "suspended", "is_st", "industry", "up_limit"):
        np.testing.assert_array_equal(
            new[f]
            .isel(date=slice(0, old.sizes["date"]), asset=slice(0, old.sizes["asset"]))
            .values,
            old[f].values,
            err_msg=f,
        )
    got = new["close"].sel(date=new_dates).to_pandas()[[*live, "688999.SH"]]
    ref = rows.pivot(index="trade_date", columns="ts_code", values="close")[[*live, "688999.SH"]]
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy())
    assert np.isnan(new["close"].sel(asset="688999.SH").values[: old.sizes["date"]]).all()
    assert new["board"].sel(asset="688999.SH").values == "star"
    # listed assets without a bar on the new dates are suspended; carried industry and ST
    others = [a for a in old["asset"].values if a not in live]
    listed = (old["list_date"] <= np.datetime64("2020-01-02")) & (
        old["delist_date"].isnull() | (old["delist_date"] > np.datetime64("2020-01-03"))
    )
    listed_others = [a for a in others if bool(listed.sel(asset=a))]
    assert new["suspended"].sel(asset=listed_others, date=new_dates).values.all()
    np.testing.assert_array_equal(
        new["industry"].sel(date=new_dates[-1], asset=listed_others).values,
        last["industry"].sel(asset=listed_others).values,
    )
    assert tree["macro"]["cgb_10y"].values[-2] == 3.1
    w = tree["index"]["weight"].isel(date=-1)
    np.testing.assert_array_equal(
        w.isel(asset=slice(0, -1)).values,
        qd.open_market(market_path)["index"]["weight"].isel(date=-1).values,
    )


def load_example():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "ingest_real_data", REPO / "examples" / "ingest_real_data.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_real_data_ingest_then_append(real_data_dir, tmp_path):
    ex = load_example()
    daily, index_daily = ex.hikyuu_daily(real_data_dir)
    macro = ex.bond_yields(real_data_dir)
    # The sample has no adjustment factor and its pre_close is the previous close, so ingest
    # derives a flat factor and reports the ex-rights days as returns beyond the limit.
    with pytest.warns(IngestWarning) as rec:
        path = qd.ingest(
            tmp_path / "bars.zarr",
            daily=ex.between(daily, "2010-01-01", "2010-12-31"),
            index_daily=ex.between(index_daily, "2010-01-01", "2010-12-31"),
            macro=ex.between(macro, "2010-01-01", "2010-12-31"),
        )
        qd.append(
            path,
            daily=ex.between(daily, "2011-01-01", "2011-12-31"),
            index_daily=ex.between(index_daily, "2011-01-01", "2011-12-31"),
            macro=ex.between(macro, "2011-01-01", "2011-12-31"),
        )
    text = [str(w.message) for w in rec]
    assert sum("derived the adjustment factor of 7 asset(s)" in t for t in text) == 2
    assert all(
        t.startswith(("no adj_factor", "1 asset(s) without a delist_date", "1 bar(s) with a daily"))
        for t in text
    ), text
    report = qd.verify(path)
    assert report.ok, str(report)
    # reference: the raw vendor file pivoted with pandas
    raw = pd.read_csv(real_data_dir / "hikyuu_daily_8_securities_1990_2011.csv.gz")
    raw["trade_date"] = pd.to_datetime(raw["trade_date"])
    raw = raw[(raw.trade_date >= "2010-01-01") & (raw.trade_date <= "2011-12-31")]
    traded = raw[raw.volume_lots > 0]
    stocks = traded[traded.ts_code != "000001.SH"]
    tree = qd.open_market(path)
    got = tree["daily"]["close"].to_pandas()
    ref = stocks.pivot(index="trade_date", columns="ts_code", values="close")
    ref = ref.reindex(index=got.index, columns=got.columns)
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy())
    vol = stocks.pivot(index="trade_date", columns="ts_code", values="volume_lots")
    np.testing.assert_array_equal(
        tree["daily"]["vol"].to_pandas().to_numpy(),
        vol.reindex(index=got.index, columns=got.columns).to_numpy(),
    )
    # calendar = every date with a bar (index included), all of them XSHG sessions
    np.testing.assert_array_equal(got.index.to_numpy(), np.unique(raw.trade_date.to_numpy()))
    sh = raw[raw.ts_code == "000001.SH"].set_index("trade_date")["close"]
    np.testing.assert_array_equal(
        tree["index"]["close"].sel(index="000001.SH").to_pandas().to_numpy(),
        sh.reindex(got.index).to_numpy(),
    )
    bond = pd.read_csv(real_data_dir / "cn_gov_bond_10y_yield_2002_2024.csv", parse_dates=["date"])
    np.testing.assert_array_equal(
        tree["macro"]["cgb_10y"].to_pandas().to_numpy(),
        bond.set_index("date")["yield_pct"].reindex(got.index).to_numpy(),
    )


def test_real_csi500_weights(real_data_dir, tmp_path):
    ex = load_example()
    w = ex.between(ex.csi500_weights(real_data_dir), "2024-06-01", "2024-06-30")
    path = qd.ingest(tmp_path / "csi500.zarr", index_weight=w)
    assert qd.verify(path).ok
    got = qd.open_market(path)["index"]["weight"].sel(index="000905.SH").to_pandas()
    raw = w.assign(trade_date=pd.to_datetime(w.trade_date))
    ref = raw.pivot(index="trade_date", columns="con_code", values="weight")
    ref = ref.div(ref.sum(axis=1), axis=0).fillna(0.0).reindex(columns=got.columns, fill_value=0.0)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-15)
    assert ((got > 0).sum(axis=1) == 500).all()


def test_append_to_a_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no market store"):
        qd.append(tmp_path / "nothing.zarr", daily=make_frames()["daily"])
