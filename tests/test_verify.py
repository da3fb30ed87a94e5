"""qd.verify: clean stores pass, each kind of damage is reported, repair rolls back journals."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import zarr
from test_ingest import make_frames

import quantdask as qd
from quantdask.io import _journal, schema
from quantdask.io.store import JOURNAL_DIR, zarr_quiet


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify") / "clean.zarr"
    return qd.ingest(path, **make_frames())


@pytest.fixture()
def store(clean_store, tmp_path):
    path = tmp_path / "m.zarr"
    shutil.copytree(clean_store, path)
    return path


def tamper(path, array, index, value):
    with zarr_quiet():
        g = zarr.open_group(str(path), mode="r+")
        g[array][index] = value


def only_problem(path, text):
    report = qd.verify(path)
    assert not report.ok
    assert any(text in p for p in report.problems), str(report)
    return report


def test_ingested_store_is_ok(clean_store):
    report = qd.verify(clean_store)
    assert report.ok and report.problems == [] and bool(report)
    assert "OK" in str(report)


def test_synthetic_store_is_ok(market_path):
    report = qd.verify(market_path)
    assert report.ok, str(report)


def traded_cell(path):
    with zarr_quiet():
        low = zarr.open_group(str(path), mode="r")["daily/low"][:]
    return tuple(int(i) for i in np.argwhere(~np.isnan(low))[3])


def test_reports_high_below_low(store):
    tamper(store, "daily/high", traded_cell(store), 0.5)
    only_problem(store, "daily: high < low: 1 cell(s)")


def test_reports_negative_price(store):
    with zarr_quiet():
        low = zarr.open_group(str(store), mode="r")["daily/low"][:]
    cells = np.argwhere(~np.isnan(low))
    tamper(store, "daily/close", tuple(cells[0]), -1.0)
    tamper(store, "daily/close", tuple(cells[5]), 0.0)
    only_problem(store, "daily/close: non-positive prices: 2 cell(s)")


def test_reports_negative_volume(store):
    tamper(store, "daily/vol", (2, 0), -5.0)
    only_problem(store, "daily/vol: negative values: 1 cell(s)")


def test_reports_dates_out_of_order(store):
    with zarr_quiet():
        g = zarr.open_group(str(store), mode="r+")
        d = g["daily/date"][:]
        d[[3, 4]] = d[[4, 3]]
        g["daily/date"][:] = d
    only_problem(store, "daily: dates not strictly ascending")


def test_reports_weekend_and_holiday_dates(store):
    with zarr_quiet():
        g = zarr.open_group(str(store), mode="r+")
        d = g["daily/date"][:]
    # day numbers since 1970-01-01: the 1st date is Monday 2021-01-04; shift it to Sat 01-02
    tamper(store, "daily/date", 0, d[0] - 2)
    report = only_problem(store, "daily: weekend date 2021-01-02")
    assert any("not Shanghai exchange sessions" in p for p in report.problems)


def test_reports_duplicate_and_malformed_assets(store):
    with zarr_quiet():
        g = zarr.open_group(str(store), mode="r+")
        a = g["daily/asset"][:]
        a[1] = a[0]
        a[2] = "ABC.XX"
        g["daily/asset"][:] = a
    report = only_problem(store, "daily asset: duplicate label")
    assert any("unknown code format, first 'ABC.XX'" in p for p in report.problems)


def test_reports_wrong_dtype_and_missing_field(store):
    with zarr_quiet():
        g = zarr.open_group(str(store), mode="r+")
        del g["daily/pb"]
        zarr.consolidate_metadata(str(store))
    only_problem(store, "daily: missing field 'pb'")


def test_reports_wrong_chunking(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "DATE_CHUNK", 16)
    path = qd.ingest(tmp_path / "m.zarr", **make_frames())
    monkeypatch.undo()
    only_problem(path, "daily/open: stored chunks (16, 512), schema wants (1024, 512)")


def test_reports_suspended_cell_with_price(store):
    tamper(store, "daily/suspended", traded_cell(store), True)
    only_problem(store, "daily: suspended but with a close price: 1 cell(s)")


def test_reports_bad_weights(store):
    tamper(store, "index/weight", (0, 0, 0), 0.9)
    only_problem(store, "index/weight: (date, index) sums not 1")


def test_reports_announcement_before_period_end(store):
    with zarr_quiet():
        g = zarr.open_group(str(store), mode="r+")
        end = g["fundamentals/end_date"][:]
    tamper(store, "fundamentals/ann_date", 0, end[0] - 10)
    only_problem(store, "fundamentals: announced before period end: 1 cell(s)")


def test_reports_and_repairs_unarmed_journal(store):
    (store / JOURNAL_DIR).mkdir()
    only_problem(store, "interrupted append")
    report = qd.verify(store, repair=True)
    assert report.ok and "unarmed" in report.repaired[0]
    assert not (store / JOURNAL_DIR).exists()


def test_repair_restores_modified_and_deletes_created_files(store):
    before = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    target = "daily/close/c/0/0"
    _journal.begin(store, [target, "zarr.json"])
    (store / target).write_bytes(b"garbage")
    (store / "daily/close/c/1").mkdir(parents=True)
    (store / "daily/close/c/1/0").write_bytes(b"new chunk")
    (store / "zarr.json").write_text("{}")
    assert not qd.verify(store).ok
    report = qd.verify(store, repair=True)
    assert report.ok, str(report)
    after = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert after == before
    assert not (store / "daily/close/c/1").exists()


def test_missing_store():
    report = qd.verify("/nonexistent/market.zarr")
    assert not report.ok and "no store directory" in str(report)


def test_not_a_zarr_store(tmp_path):
    (tmp_path / "x").mkdir()
    report = qd.verify(tmp_path / "x")
    assert not report.ok


def test_report_values_are_computed_in_one_pass(clean_store):
    from quantdask.testing import raise_if_dask_computes

    with raise_if_dask_computes(max_computes=1) as counter:
        assert qd.verify(clean_store).ok
    assert counter.total_computes == 1


def test_reports_variable_width_string_labels(store):
    """Stores of older ingests kept labels as numpy StringDType: .values.astype(str) fails."""
    with zarr_quiet():
        g = zarr.open_group(str(store), mode="r+")
        old = g["daily/asset"]
        values, dims, attrs = old[:], old.metadata.dimension_names, dict(old.attrs)
        del g["daily/asset"]
        new = g["daily"].create_array(
            "asset", shape=values.shape, dtype=str, dimension_names=dims, attributes=attrs
        )
        new[:] = values.astype(object)
        zarr.consolidate_metadata(str(store))
    only_problem(store, "daily/asset: labels stored as")
