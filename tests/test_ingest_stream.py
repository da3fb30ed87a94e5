"""qd.ingest's grouped write (date block x asset group) gives the store of one pass."""

from __future__ import annotations

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
