"""qlib data directories both ways: ``qd.ingest_qlib`` and ``qd.to_qlib``.

References are independent of the library: the bins are read here with plain numpy
(little-endian float32, the first value the start index into ``calendars/day.txt``), and the
expected store values are computed by hand from them (raw price = bin / factor, lots =
volume * factor / 100, ...); the ``to_qlib`` bins are checked against values computed here
from the store's fields.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import quantdask as qd

FIXTURE = Path(__file__).resolve().parent / "data" / "qlib_alpha158" / "qlib_data"


def read_bin(path: Path) -> tuple[int, np.ndarray]:
    raw = np.fromfile(path, dtype="<f4")
    return int(raw[0]), raw[1:]


def panel(root: Path, code_dir: str, field: str, n_dates: int) -> np.ndarray:
    """A bin as a float32 vector over the whole calendar (NaN outside its span)."""
    first, vals = read_bin(root / "features" / code_dir / f"{field}.day.bin")
    out = np.full(n_dates, np.nan, dtype=np.float32)
    out[first : first + len(vals)] = vals
    return out


def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def write_qlib(
    root: Path,
    dates: pd.DatetimeIndex,
    instruments: dict[str, tuple[int, dict[str, list[float]]]],
    files: dict[str, list[str]] | None = None,
) -> Path:
    """A hand-made qlib dir: ``instruments`` maps the features directory name to
    ``(first calendar index, {field: values})``; ``all.txt`` from the spans unless given."""
    (root / "calendars").mkdir(parents=True)
    (root / "instruments").mkdir()
    (root / "calendars" / "day.txt").write_text("\n".join(dates.strftime("%Y-%m-%d")) + "\n")
    iso = dates.strftime("%Y-%m-%d")
    lines = []
    for name, (first, fields) in instruments.items():
        d = root / "features" / name
        d.mkdir(parents=True)
        n = 0
        for field, vals in fields.items():
            np.asarray([first, *vals], dtype="<f4").tofile(d / f"{field}.day.bin")
            n = len(vals)
        lines.append(f"{name.upper()}\t{iso[first]}\t{iso[first + n - 1]}")
    files = {"all": lines, **(files or {})}
    for fname, flines in files.items():
        (root / "instruments" / f"{fname}.txt").write_text("\n".join(flines) + "\n")
    return root


def bars(close: list[float], factor: float | list[float] = 1.0, **extra) -> dict[str, list[float]]:
    """open = high = low = close bins (adjusted), volume and factor."""
    fac = factor if isinstance(factor, list) else [factor] * len(close)
    out = {f: list(close) for f in ("open", "high", "low", "close")}
    out["volume"] = [1000.0] * len(close)
    out["factor"] = fac
    out.update(extra)
    return out


@pytest.fixture
def dates() -> pd.DatetimeIndex:
    return pd.DatetimeIndex(qd.trading_calendar("2024-01-02", "2024-01-31"))


# ---- (a) the committed fixture -------------------------------------------------------------


def test_fixture_matches_bins(tmp_path):
    with pytest.warns(qd.IngestWarning, match="treated as delisted"):  # SH600007 stops early
        path = qd.ingest_qlib(FIXTURE, tmp_path / "m.zarr")
    market = qd.open_market(path)
    daily = market["daily"].to_dataset().load()
    cal = pd.DatetimeIndex((FIXTURE / "calendars" / "day.txt").read_text().split())
    spans = pd.read_csv(
        FIXTURE / "instruments" / "all.txt", sep="\t", header=None, names=["code", "s", "e"]
    )
    np.testing.assert_array_equal(daily["date"].values, cal.values)
    assert sorted(daily["asset"].values) == ["002013.SZ", "300004.SZ", "600007.SH"]
    T = len(cal)
    for row in spans.itertuples():
        code, d = f"{row.code[2:]}.{row.code[:2]}", row.code.lower()
        a = daily.sel(asset=code)
        b = {f: panel(FIXTURE, d, f, T) for f in ("open", "high", "low", "close")}
        b |= {f: panel(FIXTURE, d, f, T) for f in ("volume", "vwap", "factor", "change")}
        factor = b["factor"].astype(np.float64)
        for f in ("open", "high", "low", "close"):
            # float64 in the store: re-adjusted and rounded to float32, exactly the bin
            np.testing.assert_array_equal(f32(a[f] * a["adj_factor"]), b[f], err_msg=code + f)
            np.testing.assert_allclose(a[f], b[f] / factor, rtol=1e-15, err_msg=code + f)
        traded = np.isfinite(b["close"])
        np.testing.assert_array_equal(f32(a["adj_factor"])[traded], b["factor"][traded])
        lots = b["volume"].astype(np.float64) * factor / 100
        np.testing.assert_allclose(a["vol"], lots, rtol=1e-15)
        np.testing.assert_array_equal(f32(a["vol"] * 100 / a["adj_factor"]), b["volume"])
        # no amount bin: amount = vwap * volume (CNY) / 1000
        cny = b["vwap"].astype(np.float64) * b["volume"].astype(np.float64)
        np.testing.assert_allclose(a["amount"], cny / 1000, rtol=1e-15)
        pre = b["close"].astype(np.float64) / factor / (1 + b["change"].astype(np.float64))
        np.testing.assert_allclose(a["pre_close"], pre, rtol=1e-15)
        # the span: listed from its start, NaN days inside it are suspensions
        inside = (cal >= row.s) & (cal <= row.e)
        np.testing.assert_array_equal(a["suspended"].values, inside & ~traded)
        assert pd.Timestamp(a["list_date"].values) == pd.Timestamp(row.s)
        member = market["index"]["member"].sel(universe="all", asset=code).values
        np.testing.assert_array_equal(member, inside)
    assert daily["suspended"].sum().item() == 353 + 110 + 1
    assert market["daily"].attrs["amount_source"] == "qlib vwap * volume"
    assert "amount" not in market["daily"].attrs["missing_fields"]
    assert market["daily"].attrs["adj_factor_source"] == "vendor"
    assert str(qd.verify(path)).endswith("OK")


# ---- (b) round trip ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "m.zarr"
    return qd.synthetic_market(path, n_assets=40, start="2020-06-01", end="2021-06-30", seed=3)


def test_to_qlib_bins_are_hand_computed(synth, tmp_path):
    out = qd.to_qlib(synth, tmp_path / "q")
    m = qd.open_market(synth)
    d = m["daily"].to_dataset().load()
    cal = pd.DatetimeIndex((out / "calendars" / "day.txt").read_text().split())
    np.testing.assert_array_equal(cal.values, d["date"].values)
    lines = pd.read_csv(out / "instruments" / "all.txt", sep="\t", header=None)
    checked = 0
    for asset in d["asset"].values.astype(str):
        a = d.sel(asset=asset)
        traded = np.flatnonzero(np.isfinite(a["close"].values))
        if not len(traded):
            continue
        t0, t1 = traded[0], traded[-1]
        code = asset[-2:] + asset[:6]
        row = lines[lines[0] == code].iloc[0]
        assert (row[1], row[2]) == (str(cal[t0].date()), str(cal[t1].date()))
        sl = slice(t0, t1 + 1)
        fac, close = a["adj_factor"].values[sl], a["close"].values[sl]
        vol, amount = a["vol"].values[sl], a["amount"].values[sl]
        want = {
            "close": close * fac,
            "open": a["open"].values[sl] * fac,
            "factor": np.where(np.isfinite(close), fac, np.nan),
            "volume": vol * 100 / fac,
            "amount": amount * 1000,
            "vwap": amount * 1000 / (vol * 100) * fac,
            "change": close / a["pre_close"].values[sl] - 1,
        }
        for f, w in want.items():
            first, got = read_bin(out / "features" / code.lower() / f"{f}.day.bin")
            assert first == t0
            np.testing.assert_array_equal(got, f32(w), err_msg=f"{asset} {f}")
        checked += 1
    assert checked > 30
    # an index: factor 1, volume in shares
    ix = m["index"].to_dataset().sel(index="000300.SH").load()
    first, got = read_bin(out / "features" / "sh000300" / "close.day.bin")
    t = np.flatnonzero(np.isfinite(ix["close"].values))
    assert first == t[0]
    np.testing.assert_array_equal(got, f32(ix["close"].values[t[0] : t[-1] + 1]))
    _, vol = read_bin(out / "features" / "sh000300" / "volume.day.bin")
    np.testing.assert_array_equal(vol, f32(ix["vol"].values[t[0] : t[-1] + 1] * 100))
    # csi300.txt: the runs of weight > 0, found here with a plain loop
    w = m["index"]["weight"].sel(index="000300.SH").transpose("date", "asset").values > 0
    want_lines = []
    for j, asset in enumerate(d["asset"].values.astype(str)):
        run = None
        for t in range(len(cal)):
            if w[t, j] and run is None:
                run = t
            if run is not None and (t == len(cal) - 1 or not w[t + 1, j]):
                want_lines.append(f"{asset[-2:]}{asset[:6]}\t{cal[run].date()}\t{cal[t].date()}")
                run = None
    got_lines = (out / "instruments" / "csi300.txt").read_text().splitlines()
    assert sorted(got_lines) == sorted(want_lines) and len(want_lines) > 5
    with pytest.raises(FileExistsError):
        qd.to_qlib(synth, out)


def test_round_trip(synth, tmp_path):
    q = qd.to_qlib(synth, tmp_path / "q")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", qd.IngestWarning)  # delistings inferred from spans
        back = qd.open_market(qd.ingest_qlib(q, tmp_path / "back.zarr"))
    m = qd.open_market(synth)
    d0 = m["daily"].to_dataset().load()
    d1 = back["daily"].to_dataset().load()
    traded = np.isfinite(d0["close"]).any("date")
    d0 = d0.sel(asset=traded)
    np.testing.assert_array_equal(d1["asset"].values, d0["asset"].values)
    d0 = d0.reindex(date=d1["date"].values)
    for f in ("open", "high", "low", "close", "pre_close", "vol", "amount", "adj_factor"):
        x0, x1 = d0[f].values, d1[f].values
        if f == "adj_factor":  # qlib has no factor on suspended days
            x0 = np.where(np.isfinite(d0["close"].values), x0, np.nan)
            x1 = np.where(np.isfinite(d1["close"].values), x1, np.nan)
        np.testing.assert_array_equal(np.isnan(x0), np.isnan(x1), err_msg=f)
        np.testing.assert_allclose(x1, x0, rtol=3e-7, err_msg=f)  # through float32
    # adjusted prices come back as the float32 values qlib holds
    np.testing.assert_array_equal(
        f32(d1["close"] * d1["adj_factor"]), f32(d0["close"] * d0["adj_factor"])
    )
    # suspensions between the first and last bar
    ok = np.isfinite(d0["close"].values)
    pos = np.arange(len(d1["date"]))[:, None]
    first = np.where(ok, pos, len(pos)).min(0)
    last = np.where(ok, pos, -1).max(0)
    inside = (pos >= first) & (pos <= last)
    np.testing.assert_array_equal(d1["suspended"].values[inside], ~ok[inside])
    # index bars and membership
    i0 = m["index"].to_dataset().sel(date=d1["date"].values)
    i1 = back["index"].to_dataset()
    np.testing.assert_allclose(
        i1["close"].sel(index="000300.SH"), i0["close"].sel(index="000300.SH"), rtol=3e-7
    )
    w = (i0["weight"].sel(index="000300.SH") > 0).sel(asset=d1["asset"].values)
    member = i1["member"].sel(universe="csi300")
    np.testing.assert_array_equal(member.transpose("date", "asset"), w.transpose("date", "asset"))
    assert i1["universe_index"].sel(universe="csi300").values.item() == "000300.SH"


# ---- (c) hand-made directories -------------------------------------------------------------


def test_upper_case_dir_and_conversions(tmp_path, dates):
    n = len(dates)
    close = [10.0 * 1.01**t for t in range(n)]
    factor = [2.0] * 10 + [2.5] * (n - 10)
    b = bars(close, factor, vwap=list(close), change=[np.nan] + [0.01] * (n - 1))
    root = write_qlib(tmp_path / "q", dates, {"SH600000": (0, b)})
    m = qd.open_market(qd.ingest_qlib(root, tmp_path / "m.zarr"))
    a = m["daily"].to_dataset().sel(asset="600000.SH").load()
    fac = np.asarray(factor)
    np.testing.assert_allclose(a["close"], f32(close) / fac, rtol=1e-15)
    np.testing.assert_allclose(a["vol"], 1000.0 * fac / 100, rtol=1e-15)
    # vwap * volume, CNY -> thousand CNY
    np.testing.assert_allclose(a["amount"], f32(close).astype(float) * 1000 / 1000, rtol=1e-15)
    # pre_close from change, raw terms; the first bar has no change: NaN
    raw = f32(close) / fac
    np.testing.assert_allclose(
        a["pre_close"][1:], raw[1:] / (1 + f32(0.01).astype(np.float64)), rtol=1e-15
    )
    assert np.isnan(a["pre_close"][0])


def test_gap_is_a_suspension_and_pre_close_from_previous_close(tmp_path, dates):
    n = len(dates)
    close = [10.0 + 0.1 * t for t in range(n)]
    gapped = list(close)
    gapped[5] = gapped[6] = np.nan
    factor = [1.0] * 7 + [1.25] * (n - 7)
    b = bars(gapped, factor)
    for f in ("volume", "factor"):
        b[f] = [np.nan if np.isnan(c) else v for c, v in zip(gapped, b[f], strict=True)]
    root = write_qlib(
        tmp_path / "q", dates, {"sh600000": (0, b), "sz000001": (0, bars(close))}
    )  # no change bins
    m = qd.open_market(qd.ingest_qlib(root, tmp_path / "m.zarr"))
    a = m["daily"].to_dataset().sel(asset="600000.SH").load()
    assert a["suspended"].values.tolist() == [t in (5, 6) for t in range(n)]
    assert np.isnan(a["close"].values[[5, 6]]).all()
    # after the gap: the previous traded adjusted close (day 4) / today's factor
    adj = f32(close).astype(np.float64)
    assert a["pre_close"].values[7] == adj[4] / 1.25
    assert a["pre_close"].values[8] == adj[7] / 1.25
    assert a["pre_close"].values[1] == adj[0]


def test_missing_vwap_and_amount(tmp_path, dates):
    n = len(dates)
    root = write_qlib(tmp_path / "q", dates, {"sh600000": (0, bars([10.0] * n))})
    m = qd.open_market(qd.ingest_qlib(root, tmp_path / "m.zarr"))
    assert "amount" in m["daily"].attrs["missing_fields"]
    assert m["daily"].attrs["amount_source"] == "none"
    assert np.isnan(m["daily"]["amount"].values).all()
    out = qd.to_qlib(m, tmp_path / "q2")
    names = sorted(p.name for p in (out / "features" / "sh600000").iterdir())
    assert "amount.day.bin" not in names and "vwap.day.bin" not in names
    # an amount bin (CNY) wins over vwap
    root = write_qlib(tmp_path / "q3", dates, {"sh600000": (0, bars([10.0] * n, amount=[5e6] * n))})
    m = qd.open_market(qd.ingest_qlib(root, tmp_path / "m3.zarr"))
    np.testing.assert_array_equal(m["daily"]["amount"].values, 5e3)
    assert m["daily"].attrs["amount_source"] == "qlib amount"


def test_index_instrument_goes_to_index_node(tmp_path, dates):
    n = len(dates)
    idx = bars([3000.0 + t for t in range(n)])
    del idx["factor"]
    root = write_qlib(
        tmp_path / "q", dates, {"sh600000": (0, bars([10.0] * n)), "SH000300": (0, idx)}
    )
    m = qd.open_market(qd.ingest_qlib(root, tmp_path / "m.zarr"))
    assert m["daily"]["asset"].values.tolist() == ["600000.SH"]
    ix = m["index"].to_dataset().sel(index="000300.SH")
    np.testing.assert_array_equal(ix["close"], [3000.0 + t for t in range(n)])
    np.testing.assert_array_equal(ix["vol"], 10.0)  # shares / 100
    np.testing.assert_array_equal(ix["pre_close"][1:], [3000.0 + t for t in range(n - 1)])
    assert np.isnan(m["index"]["weight"].values).all()  # no invented weights


def test_membership_leaves_and_reenters(tmp_path, dates):
    n = len(dates)
    iso = dates.strftime("%Y-%m-%d")
    csi300 = [f"SH600000\t{iso[0]}\t{iso[4]}", f"SH600000\t{iso[9]}\t{iso[-1]}"]
    csi300 += [f"SZ000001\t{iso[3]}\t{iso[12]}", "SZ000002\t2010-01-04\t2030-12-31"]
    root = write_qlib(
        tmp_path / "q",
        dates,
        {"sh600000": (0, bars([10.0] * n)), "sz000001": (2, bars([5.0] * (n - 2)))},
        files={"csi300": csi300},
    )
    m = qd.open_market(qd.ingest_qlib(root, tmp_path / "m.zarr"))
    member = m["index"]["member"]
    assert member.dtype == bool
    assert member.dims == ("date", "universe", "asset")
    assert member["universe"].values.tolist() == ["all", "csi300"]
    assert member["universe_index"].values.tolist() == ["", "000300.SH"]
    t = np.arange(n)
    sh = member.sel(universe="csi300", asset="600000.SH").values
    np.testing.assert_array_equal(sh, (t <= 4) | (t >= 9))
    sz = member.sel(universe="csi300", asset="000001.SZ").values
    np.testing.assert_array_equal(sz, (t >= 3) & (t <= 12))
    np.testing.assert_array_equal(member.sel(universe="all", asset="000001.SZ"), t >= 2)
    out = qd.to_qlib(m, tmp_path / "q2")
    assert sorted((out / "instruments" / "csi300.txt").read_text().splitlines()) == sorted(
        csi300[:3]
    )
    assert sorted(p.name for p in (out / "instruments").iterdir()) == ["all.txt", "csi300.txt"]


def test_bad_bin_length_is_an_error_and_nothing_is_written(tmp_path, dates):
    n = len(dates)
    b = bars([10.0] * n)
    b["close"] = b["close"][:-1]
    root = write_qlib(tmp_path / "q", dates, {"sh600000": (0, b)})
    # all.txt from the last field written (factor): the close bin is one value short
    with pytest.raises(qd.IngestError, match=r"close\.day\.bin.*all\.txt"):
        qd.ingest_qlib(root, tmp_path / "m.zarr")
    assert not (tmp_path / "m.zarr").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["q"]
    # a bin running past the calendar
    b = bars([10.0] * 3)
    root = write_qlib(tmp_path / "r", dates[:2], {"sh600000": (0, bars([1.0, 1.0]))})
    (root / "features" / "sh600000" / "close.day.bin").unlink()
    np.asarray([0, *b["close"]], dtype="<f4").tofile(
        root / "features" / "sh600000" / "close.day.bin"
    )
    with pytest.raises(qd.IngestError, match="run past the calendar"):
        qd.ingest_qlib(root, tmp_path / "m.zarr")


def test_not_a_qlib_dir_and_unknown_instruments(tmp_path, dates):
    with pytest.raises(qd.IngestError, match="not a qlib data directory: no calendars"):
        qd.ingest_qlib(tmp_path, tmp_path / "m.zarr")
    root = write_qlib(tmp_path / "q", dates, {"sh600000": (0, bars([10.0] * len(dates)))})
    with pytest.raises(qd.IngestError, match=r"instruments='csi300'.*have: all"):
        qd.ingest_qlib(root, tmp_path / "m.zarr", instruments="csi300")
    with pytest.raises(qd.IngestError, match="unknown code.*SH600001"):
        qd.ingest_qlib(root, tmp_path / "m.zarr", instruments=["SH600000", "SH600001"])
    qd.ingest_qlib(root, tmp_path / "m.zarr")
    with pytest.raises(FileExistsError):
        qd.ingest_qlib(root, tmp_path / "m.zarr")


def test_instruments_start_end(tmp_path, dates):
    n = len(dates)
    root = write_qlib(
        tmp_path / "q",
        dates,
        {
            "sh600000": (0, bars([10.0 + t for t in range(n)])),
            "sz000001": (0, bars([5.0] * n)),
            "sz300001": (0, bars([7.0] * n)),
        },
        files={"mine": ["SZ000001\t2024-01-02\t2024-12-31", "SZ300001\t2024-01-02\t2024-12-31"]},
    )
    m = qd.open_market(
        qd.ingest_qlib(
            root, tmp_path / "m.zarr", instruments=["sh600000"], start=dates[3], end=dates[8]
        )
    )
    d = m["daily"].to_dataset()
    assert d["asset"].values.tolist() == ["600000.SH"]
    np.testing.assert_array_equal(d["date"].values, dates[3:9].values)
    np.testing.assert_array_equal(d["close"].sel(asset="600000.SH"), 10.0 + np.arange(3, 9))
    # the first loaded day still gets the previous close from before the window
    assert d["pre_close"].values[0, 0] == 12.0
    m = qd.open_market(qd.ingest_qlib(root, tmp_path / "m2.zarr", instruments="mine"))
    assert m["daily"]["asset"].values.tolist() == ["000001.SZ", "300001.SZ"]


def test_qlib_semantics_vwap_from_the_store_is_the_bin(tmp_path):
    """``$vwap`` under ``semantics="qlib"`` on an ingested store gives the bin's values back."""
    with pytest.warns(qd.IngestWarning, match="treated as delisted"):
        market = qd.open_market(qd.ingest_qlib(FIXTURE, tmp_path / "m.zarr"))
    ds = qd.compute(market, [qd.expr("$vwap", name="v", semantics="qlib")])
    n = len(ds["date"])
    for code in ("002013.SZ", "300004.SZ", "600007.SH"):
        want = panel(FIXTURE, f"{code[-2:]}{code[:6]}".lower(), "vwap", n)
        np.testing.assert_array_equal(ds["v"].sel(asset=code).values, want, err_msg=code)
