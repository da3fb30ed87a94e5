"""qd.ingest's grouped write (date block x asset group) gives the store of one pass."""

from __future__ import annotations

import itertools
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd
import quantdask.io.ingest  # the module (qd.io.ingest is the function)
from quantdask.io import schema

ingest_mod = sys.modules["quantdask.io.ingest"]

SESSIONS = qd.trading_calendar("2021-01-04", "2021-06-30")
CODES = ["000001.SZ", "000002.SZ", "300750.SZ", "600000.SH", "601318.SH", "688981.SH", "830799.BJ"]


def _frames() -> dict[str, pd.DataFrame]:
    """Suspensions (missing rows and a zero-volume placeholder), an IPO, ST by name, a stale
    asset, a close outside [low, high] and a return beyond the limit, an off-calendar row;
    no adj_factor / stk_limit (both derived)."""
    rng = np.random.default_rng(5)
    rows = []
    for a, code in enumerate(CODES):
        close = 10.0 + a
        for i in range(60):
            if code == "688981.SH" and i < 20:  # lists on SESSIONS[20]
                continue
            if code == "300750.SZ" and i >= 30:  # stale: inferred delisted
                continue
            if rng.random() < 0.1:
                continue
            pre = round(close * (0.97 if rng.random() < 0.05 else 1.0), 2)
            close = round(pre * (1 + rng.uniform(-0.04, 0.04)), 2)
            st = code in ("000002.SZ", "601318.SH") and 12 <= i < 40
            rows.append(
                {
                    "ts_code": code,
                    "trade_date": SESSIONS[i].strftime("%Y%m%d"),
                    "name": ("*ST " if st else "") + code[:3],
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "pre_close": pre,
                    "vol": float(rng.integers(1, 9000)),
                    "amount": float(rng.integers(1, 90000)),
                }
            )
    daily = pd.DataFrame(rows)
    daily.loc[9, "vol"] = 0.0  # vendor placeholder
    daily.loc[90, "close"] = daily.loc[90, "pre_close"] * 1.3  # beyond the limit
    daily.loc[90, "high"] = daily.loc[90, "close"]
    # Closes below the low in several groups, later groups on earlier dates: the examples
    # are the first in (date, asset) order whichever group found them.
    for code, i in [("000001.SZ", 40), ("601318.SH", 9), ("830799.BJ", 2), ("000002.SZ", 3)]:
        at = daily.index[
            (daily.ts_code == code) & (daily.trade_date >= SESSIONS[i].strftime("%Y%m%d"))
        ][0]
        daily.loc[at, "close"] = daily.loc[at, "low"] * 0.95
    off = daily.iloc[[5]].assign(trade_date="20210109")  # a Saturday
    daily = pd.concat([daily, off], ignore_index=True)
    index_daily = pd.DataFrame(
        {
            "ts_code": "000300.SH",
            "trade_date": SESSIONS[:60].strftime("%Y%m%d"),
            "close": 4000 + rng.random(60) * 100,
        }
    )
    weight = pd.DataFrame(
        {
            "index_code": "000300.SH",
            "con_code": ["600000.SH", "000001.SZ", "600000.SH", "688981.SH"],
            "trade_date": [SESSIONS[0], SESSIONS[0], SESSIONS[25], SESSIONS[25]],
            "weight": [60.0, 40.0, 50.0, 50.0],
        }
    ).assign(trade_date=lambda f: f.trade_date.dt.strftime("%Y%m%d"))
    sb = pd.DataFrame({"ts_code": CODES, "industry": [801780 + i for i in range(len(CODES))]})
    return {"daily": daily, "index_daily": index_daily, "index_weight": weight, "stock_basic": sb}


def _write_dir(daily: pd.DataFrame, d: Path) -> Path:
    """One CSV per stock (the vendor per-stock layout)."""
    d.mkdir()
    for code, rows in daily.groupby("ts_code", sort=True):
        rows.sort_values("trade_date").to_csv(d / f"{code}.csv", index=False)
    return d


def _ingest(path: Path, frames: dict, daily) -> tuple[Path, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        qd.ingest(path, **{**frames, "daily": daily}, off_calendar="drop")
    return path, [str(w.message) for w in got if issubclass(w.category, qd.IngestWarning)]


def _assert_identical(a: Path, b: Path) -> None:
    ta = xr.open_datatree(str(a), engine="zarr")
    tb = xr.open_datatree(str(b), engine="zarr")
    assert ta.attrs == tb.attrs
    assert sorted(ta.children) == sorted(tb.children)
    for node in ta.children:
        x, y = ta[node].to_dataset(), tb[node].to_dataset()
        assert x.attrs == y.attrs, node
        xr.testing.assert_identical(x, y)
        for v in x.variables:
            assert x[v].dtype == y[v].dtype, (node, v)
            np.testing.assert_array_equal(x[v].values, y[v].values, err_msg=f"{node}/{v}")


@pytest.mark.parametrize("source", ["directory", "frame"])
def test_grouped_write_equals_one_pass(tmp_path, monkeypatch, source):
    frames = _frames()
    daily = _write_dir(frames["daily"], tmp_path / "dump") if source == "directory" else None
    daily = frames["daily"] if daily is None else daily
    monkeypatch.setattr(schema, "DATE_CHUNK", 8)  # 60 dates: 8 date blocks
    monkeypatch.setattr(ingest_mod, "_ASSET_GROUP", None)
    one, notes_one = _ingest(tmp_path / "one.zarr", frames, daily)
    monkeypatch.setattr(ingest_mod, "_ASSET_GROUP", 2)  # 7 assets: 4 groups
    calls = []
    real = ingest_mod._write_by_asset_groups
    monkeypatch.setattr(
        ingest_mod, "_write_by_asset_groups", lambda *a: calls.append(1) or real(*a)
    )
    grouped, notes_grouped = _ingest(tmp_path / "grouped.zarr", frames, daily)
    assert calls == [1]
    _assert_identical(one, grouped)
    # One warning per kind, with the totals and the first examples of one pass.
    assert notes_grouped == notes_one
    kinds = ("dropped 1 row", "derived the adjustment factor of 7", "1 asset(s) without")
    for kind in kinds:
        assert sum(kind in n for n in notes_one) == 1, (kind, notes_one)
    outside = next(n for n in notes_one if "close outside [low, high]" in n)
    assert outside.startswith("4 bar(s)"), outside
    assert [e.split()[0] for e in outside.split("e.g. ")[1].split("; ")] == [
        "830799.BJ",
        "000002.SZ",
        "601318.SH",
    ]
    assert any("beyond the board's price limit" in n for n in notes_one)
    daily_attrs = xr.open_datatree(str(grouped), engine="zarr")["daily"].attrs
    assert daily_attrs["delist_inferred"] == ["300750.SZ"]
    assert daily_attrs["is_st_source"] == "daily name column"
    assert daily_attrs["limit_source"] == "derived"
    assert qd.verify(grouped).ok
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary left


# --------------------------------------------------------------------------------------------
# Helpers of the fast paths (blockwise checks, day lookup, prefaulted reads)


@pytest.mark.parametrize("block", [1, 2, 3, 1 << 20])
def test_strictly_increasing_blockwise_matches_lexicographic(monkeypatch, block):
    monkeypatch.setattr(ingest_mod, "_ROW_BLOCK", block)
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(0, 9))
        a = np.sort(rng.integers(0, 3, n))
        b = rng.integers(0, 4, n)
        pairs = list(zip(a.tolist(), b.tolist(), strict=True))
        want = all(p < q for p, q in itertools.pairwise(pairs))
        assert ingest_mod._strictly_increasing(a, b) == want, (pairs, block)


@pytest.mark.parametrize("block", [2, 1 << 20])
def test_date_positions_match_searchsorted(monkeypatch, block):
    monkeypatch.setattr(ingest_mod, "_ROW_BLOCK", block)
    cal = np.array(SESSIONS[:30], dtype="datetime64[ns]")
    rows = cal[np.random.default_rng(2).integers(0, 30, 25)]
    for dtype in (np.int32, np.int64):
        got = ingest_mod._date_positions(rows, cal, dtype)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, np.searchsorted(cal, rows))
    # a row on a day that is not in the calendar, before it, after it, or not at midnight
    for bad in (SESSIONS[40], pd.Timestamp("2020-01-02"), SESSIONS[3] + pd.Timedelta("1h")):
        odd = np.append(rows, np.datetime64(bad, "ns"))
        assert ingest_mod._date_positions(odd, cal, np.int32) is None
    # a calendar with times of day: the binary search path
    timed = cal + np.timedelta64(9, "h")
    np.testing.assert_array_equal(
        ingest_mod._date_positions(timed[[3, 0, 29]], timed, np.int32), [3, 0, 29]
    )
    assert ingest_mod._date_positions(cal[[1]], timed, np.int32) is None
    assert len(ingest_mod._date_positions(cal[:0], cal, np.int32)) == 0


@pytest.mark.parametrize("store_empty", [False, True])
def test_grouped_write_stores_the_chunks_of_one_pass(tmp_path, monkeypatch, store_empty):
    # All-NaN regions (fields no input has) are not written by the grouped write; the chunk
    # files are those of one pass either way, also when zarr is set to store empty chunks.
    import zarr

    frames = _frames()
    monkeypatch.setattr(schema, "DATE_CHUNK", 8)
    with zarr.config.set({"array.write_empty_chunks": store_empty}):
        monkeypatch.setattr(ingest_mod, "_ASSET_GROUP", None)
        one, _ = _ingest(tmp_path / "one.zarr", frames, frames["daily"])
        monkeypatch.setattr(ingest_mod, "_ASSET_GROUP", 2)
        grouped, _ = _ingest(tmp_path / "grouped.zarr", frames, frames["daily"])

    def chunks(p: Path, var: str) -> list[str]:
        root = p / "daily" / var
        return sorted(str(f.relative_to(root)) for f in root.rglob("*") if f.is_file())

    for var in ("pe_ttm", "close", "float_share"):
        assert chunks(one, var) == chunks(grouped, var), var
    assert (len(chunks(grouped, "pe_ttm")) > 1) == store_empty  # zarr.json only, or chunks
    _assert_identical(one, grouped)
