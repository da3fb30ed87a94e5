"""Vendor dumps (directories of per-stock files) read and ingested without a conversion script.

The files are written by hand below, byte for byte: Chinese headers, a title line before the
header, GBK / UTF-8 with and without a byte-order mark, gzip, codes as ``sh600000``,
``SZ000001`` and bare ``300750``, three date spellings, volume in shares and amount in CNY.
Expected values are computed by hand from the same numbers (vol / 100, amount / 1000).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd
from quantdask.io import vendor
from quantdask.io.vendor import normalise_code, read_vendor_daily

COLUMNS = {
    "股票代码": "ts_code",
    "股票名称": "name",
    "交易日期": "trade_date",
    "开盘价": "open",
    "最高价": "high",
    "最低价": "low",
    "收盘价": "close",
    "前收盘价": "pre_close",
    "成交量": "vol",
    "成交额": "amount",
    "复权因子": "adj_factor",
}
UNITS = {"vol": "shares", "amount": "yuan"}
HEADER = "股票代码,股票名称,交易日期,开盘价,最高价,最低价,收盘价,前收盘价,成交量,成交额,复权因子"

#: (code as in the store, name, date, open, high, low, close, pre_close, shares, CNY, adj)
BARS = [
    ("600000.SH", "浦发银行", "2021-01-04", 10.00, 10.20, 9.90, 10.10, 10.00, 1234500, 12468450.00, 1.0),
    ("600000.SH", "浦发银行", "2021-01-05", 10.10, 10.30, 10.00, 10.25, 10.10, 2000000, 20400000.50, 1.0),
    ("600000.SH", "浦发银行", "2021-01-06", 10.25, 10.40, 10.20, 10.30, 10.25, 1500000, 15405000.00, 1.0),
    ("000001.SZ", "平安银行", "2021-01-04", 19.00, 19.50, 18.80, 19.20, 19.10, 80000000, 1536000000.0, 2.0),
    ("000001.SZ", "平安银行", "2021-01-05", 19.20, 19.40, 19.00, 19.05, 19.20, 60000000, 1146000000.0, 2.0),
    ("000001.SZ", "ST平安", "2021-01-06", 19.05, 19.30, 18.90, 19.25, 19.05, 70000000, 1340000000.0, 2.0),
    ("300750.SZ", "宁德时代", "2021-01-04", 350.0, 360.0, 345.0, 355.0, 350.0, 3000000, 1065000000.0, 1.0),
    ("300750.SZ", "宁德时代", "2021-01-06", 356.0, 365.0, 354.0, 360.0, 355.0, 2500000, 900000000.0, 1.0),
    ("688981.SH", "中芯国际", "2021-01-04", 60.00, 61.00, 59.00, 60.50, 60.00, 50000000, 3025000000.0, 1.0),
    ("688981.SH", "中芯国际", "2021-01-05", 60.50, 62.00, 60.00, 61.80, 60.50, 40000000, 2472000000.0, 1.0),
    ("688981.SH", "中芯国际", "2021-01-06", 61.80, 63.00, 61.00, 62.40, 61.80, 45000000, 2808000000.0, 1.0),
]  # fmt: skip


def _rows(code: str, vendor_code: str, date_style: str, dates: tuple[str, ...]) -> list[str]:
    out = []
    for b in BARS:
        if b[0] != code or (dates and b[2] not in dates):
            continue
        d = pd.Timestamp(b[2])
        date = {"iso": b[2], "compact": d.strftime("%Y%m%d"), "slash": d.strftime("%Y/%m/%d")}
        values = [vendor_code, b[1], date[date_style], *(repr(x) for x in b[3:])]
        out.append(",".join(values))
    return out


def write_dump(d: Path, dates: tuple[str, ...] = ()) -> Path:
    """Four per-stock files, each in a different vendor dialect (rows of ``dates`` if given)."""
    d.mkdir(parents=True, exist_ok=True)
    # GBK, a title line before the header, codes "sh600000", CRLF line ends
    text = "浦发银行(600000) 历史日线 单位:股,元\r\n" + HEADER + "\r\n"
    text += "\r\n".join(_rows("600000.SH", "sh600000", "iso", dates)) + "\r\n"
    (d / "sh600000.csv").write_bytes(text.encode("gbk"))
    # UTF-8 with a byte-order mark, codes "SZ000001", YYYYMMDD dates
    text = HEADER + "\n" + "\n".join(_rows("000001.SZ", "SZ000001", "compact", dates)) + "\n"
    (d / "sz000001.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    # UTF-8 without a byte-order mark, a title line, bare codes, no final newline
    text = (
        "宁德时代 日线数据\n"
        + HEADER
        + "\n"
        + "\n".join(_rows("300750.SZ", "300750", "iso", dates))
    )
    (d / "sz300750.csv").write_bytes(text.encode("utf-8"))
    # gzip-compressed GBK, columns in another order, codes "SH688981", YYYY/MM/DD dates
    names = HEADER.split(",")
    order = [2, 0, 1, 6, 3, 4, 5, 7, 8, 9, 10]
    lines = [",".join(names[i] for i in order)]
    for row in _rows("688981.SH", "SH688981", "slash", dates):
        cells = row.split(",")
        lines.append(",".join(cells[i] for i in order))
    (d / "sh688981.csv.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("gbk")))
    return d


def expected_frame() -> pd.DataFrame:
    """The dump in tushare layout and units, computed by hand from BARS."""
    rows = [
        {
            "ts_code": b[0],
            "name": b[1],
            "trade_date": b[2].replace("-", ""),
            "open": b[3],
            "high": b[4],
            "low": b[5],
            "close": b[6],
            "pre_close": b[7],
            "vol": b[8] / 100,
            "amount": b[9] / 1000,
            "adj_factor": b[10],
        }
        for b in BARS
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    return write_dump(tmp_path / "dump")


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    out = df.assign(ts_code=df["ts_code"].astype(str))
    return out.sort_values(["ts_code", "trade_date"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Reading


def test_read_vendor_daily_values(dump: Path) -> None:
    raw = read_vendor_daily(dump, columns=COLUMNS, units=UNITS)
    assert raw["ts_code"].dtype == "category" and raw["trade_date"].dtype == "datetime64[ns]"
    got = _sorted(raw)
    want = _sorted(expected_frame().assign(trade_date=lambda f: pd.to_datetime(f["trade_date"])))
    assert len(got) == len(BARS)
    assert got["ts_code"].tolist() == want["ts_code"].tolist()
    assert got["name"].astype(str).tolist() == want["name"].tolist()
    assert (got["trade_date"].to_numpy() == want["trade_date"].to_numpy()).all()
    for f in ("open", "high", "low", "close", "pre_close", "vol", "amount", "adj_factor"):
        np.testing.assert_array_equal(got[f].to_numpy(), want[f].to_numpy(), err_msg=f)
    # hand-checked cells: 1,234,500 shares = 12,345 lots; 20,400,000.50 CNY = 20,400.0005 k
    row = got[(got.ts_code == "600000.SH") & (got.trade_date == "2021-01-05")].iloc[0]
    assert row["vol"] == 20_000.0 and row["amount"] == 20_400.0005


def test_units_default_to_store_units(dump: Path) -> None:
    got = _sorted(read_vendor_daily(dump, columns=COLUMNS))
    want = _sorted(expected_frame())
    np.testing.assert_array_equal(got["vol"].to_numpy(), want["vol"].to_numpy() * 100)
    np.testing.assert_array_equal(got["amount"].to_numpy(), want["amount"].to_numpy() * 1000)
    lots = read_vendor_daily(dump, columns=COLUMNS, units={"vol": "lots", "amount": "thousand"})
    np.testing.assert_array_equal(_sorted(lots)["vol"].to_numpy(), got["vol"].to_numpy())


def test_market_value_units(tmp_path: Path) -> None:
    text = (
        "code,date,open,high,low,close,pre_close,vol,amount,流通市值,总股本\n"
        "600000,20210104,10,10.2,9.9,10.1,10,100,1000,29645000000,29352000000\n"
    )
    (tmp_path / "a.csv").write_text(text, encoding="utf-8")
    cols = {"code": "ts_code", "date": "trade_date", "流通市值": "circ_mv", "总股本": "total_share"}
    got = read_vendor_daily(
        tmp_path, columns=cols, units={"circ_mv": "yuan", "total_share": "shares"}
    )
    assert got.loc[0, "circ_mv"] == 29645000000 / 10_000
    assert got.loc[0, "total_share"] == 29352000000 / 10_000
    assert got.loc[0, "ts_code"] == "600000.SH"


def test_glob_and_list_of_files(dump: Path) -> None:
    got = read_vendor_daily(str(dump / "sh*"), columns=COLUMNS, units=UNITS)
    assert sorted(set(got["ts_code"].astype(str))) == ["600000.SH", "688981.SH"]
    got = read_vendor_daily([dump / "sz300750.csv"], columns=COLUMNS, units=UNITS)
    assert got["ts_code"].astype(str).tolist() == ["300750.SZ", "300750.SZ"]
    assert got["close"].tolist() == [355.0, 360.0]


def test_parquet_directory_equals_csv_directory(dump: Path, tmp_path: Path) -> None:
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    want = expected_frame()
    for code, g in want.groupby("ts_code"):
        vendor_frame = pd.DataFrame(
            {
                # Shanghai as text "sh600000", Shenzhen as numbers (000001 became 1)
                "股票代码": "sh" + code[:6] if code.endswith("SH") else int(code[:6]),
                "股票名称": g["name"],
                "交易日期": g["trade_date"].astype(int),  # YYYYMMDD integers
                "开盘价": g["open"],
                "最高价": g["high"],
                "最低价": g["low"],
                "收盘价": g["close"],
                "前收盘价": g["pre_close"],
                "成交量": (g["vol"] * 100).round().astype("int64"),  # shares as integers
                "成交额": g["amount"] * 1000,
                "复权因子": g["adj_factor"],
            }
        )
        vendor_frame.to_parquet(pq_dir / f"{code}.parquet", index=False)
    from_pq = _sorted(read_vendor_daily(pq_dir, columns=COLUMNS, units=UNITS))
    from_csv = _sorted(read_vendor_daily(dump, columns=COLUMNS, units=UNITS))
    assert from_pq["ts_code"].tolist() == from_csv["ts_code"].tolist()
    assert (from_pq["trade_date"] == from_csv["trade_date"]).all()
    for f in ("open", "close", "pre_close", "vol", "adj_factor"):
        np.testing.assert_array_equal(from_pq[f].to_numpy(), from_csv[f].to_numpy(), err_msg=f)
    # amount went through *1000 then /1000 on the Parquet side
    np.testing.assert_allclose(from_pq["amount"], from_csv["amount"], rtol=1e-15)


def test_dataframe_in_vendor_layout(dump: Path) -> None:
    raw = pd.DataFrame(
        {
            "股票代码": ["sh600000", "600000"],
            "交易日期": ["2021-01-04", "2021-01-05"],
            "开盘价": ["10.0", "10.1"],  # text numbers, as from a spreadsheet
            "最高价": [10.2, 10.3],
            "最低价": [9.9, 10.0],
            "收盘价": [10.1, 10.25],
            "前收盘价": [10.0, 10.1],
            "成交量": [1234500, 2000000],
            "成交额": [12468450.0, 20400000.5],
        }
    )
    got = read_vendor_daily(raw, columns=COLUMNS, units=UNITS)
    assert got["ts_code"].astype(str).tolist() == ["600000.SH", "600000.SH"]
    assert got["open"].tolist() == [10.0, 10.1]
    assert got["vol"].tolist() == [12345.0, 20000.0]


def test_gbk_names_under_an_ascii_header(tmp_path: Path) -> None:
    text = "ts_code,trade_date,name,open,high,low,close,pre_close,vol,amount\n"
    text += "600000.SH,20210104,浦发银行,10,10.2,9.9,10.1,10,100,1000\n"
    text += "600000.SH,20210105,*ST浦发,10.1,10.3,10,10.25,10.1,100,1000\n"
    (tmp_path / "x.csv").write_bytes(text.encode("gbk"))
    got = read_vendor_daily(tmp_path)
    assert got["name"].astype(str).tolist() == ["浦发银行", "*ST浦发"]
    got = read_vendor_daily(tmp_path, encoding="gbk")
    assert got["name"].astype(str).tolist() == ["浦发银行", "*ST浦发"]


def test_title_line_given_by_skiprows(tmp_path: Path) -> None:
    # The title line names the key columns too, so detection alone takes it as the header.
    text = "ts_code,trade_date\n"
    text += "ts_code,trade_date,open,high,low,close,pre_close,vol,amount\n"
    text += "sz000001,2021-01-04,19,19.5,18.8,19.2,19.1,800,1536\n"
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    with pytest.raises(qd.IngestError, match=r"a\.txt: missing required column\(s\) 'open'"):
        read_vendor_daily(tmp_path)
    got = read_vendor_daily(tmp_path, skiprows=1)
    assert got["ts_code"].astype(str).tolist() == ["000001.SZ"]
    assert got["close"].tolist() == [19.2]


def test_estimate_too_small_grows(tmp_path: Path) -> None:
    # The first file's rows are long (a wide unread column), the others short: the arrays
    # sized from the first file's bytes per row must grow.
    head = "ts_code,trade_date,open,high,low,close,pre_close,vol,amount,memo\n"
    dates = qd.trading_calendar("2020-01-01", "2020-12-31")[:200]
    long = head + "".join(f"600000.SH,{d:%Y%m%d},1,1,1,1,1,1,1,{'x' * 400}\n" for d in dates[:5])
    (tmp_path / "a.csv").write_text(long, encoding="utf-8")
    for k in range(3):
        short = head + "".join(
            f"60000{k + 1}.SH,{d:%Y%m%d},{i},{i},{i},{i},{i},1,1,\n" for i, d in enumerate(dates)
        )
        (tmp_path / f"b{k}.csv").write_text(short, encoding="utf-8")
    got = read_vendor_daily(tmp_path)
    assert len(got) == 5 + 3 * 200
    b2 = got[got.ts_code == "600003.SH"]
    assert b2["close"].tolist() == [float(i) for i in range(200)]
    assert (b2["trade_date"].to_numpy() == dates.to_numpy()).all()


def _tushare_file(path: Path, code: str, closes: list[float]) -> None:
    dates = qd.trading_calendar("2021-01-04", "2021-03-31")[: len(closes)]
    lines = ["ts_code,trade_date,open,high,low,close,pre_close,vol,amount,adj_factor"]
    for d, c in zip(dates, closes, strict=True):
        lines.append(f"{code},{d:%Y%m%d},{c},{c + 0.1:.2f},{c - 0.1:.2f},{c},{c},100,1000,1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_files_parsed_together_keep_their_rows(tmp_path: Path) -> None:
    # Five files with one header: parsed as one buffer; rows, values and messages per file.
    codes = ["600000.SH", "600004.SH", "600006.SH", "600007.SH", "600008.SH"]
    for k, code in enumerate(codes):
        _tushare_file(tmp_path / f"{code}.csv", code, [10.0 + k + i / 100 for i in range(4 + k)])
    got, origin = vendor.read_table(tmp_path)
    assert len(origin._parts) == 1 and origin._parts[0].counts is None  # one buffer
    assert got["ts_code"].astype(str).tolist() == [
        c for k, c in enumerate(codes) for _ in range(4 + k)
    ]
    assert got["close"].tolist() == [10.0 + k + i / 100 for k in range(5) for i in range(4 + k)]
    # a check of ingest's (high < low) on the third file, second row: file and line named
    bad = tmp_path / "600006.SH.csv"
    bad.write_text(bad.read_text().replace("12.01,12.11,11.91", "12.01,11.0,11.91"))
    with pytest.raises(qd.IngestError, match=r"600006\.SH\.csv: row 2 \(line 3\), field 'high'"):
        qd.ingest(tmp_path / "m.zarr", daily=tmp_path)
    # a value the parser rejects in the fourth file: the buffer is re-read file by file
    bad = tmp_path / "600007.SH.csv"
    bad.write_text(bad.read_text().replace(",13.02,", ",13.o2,"))
    with pytest.raises(qd.IngestError, match=r"600007\.SH\.csv: row 3 \(line 4\), column 'open'"):
        read_vendor_daily(tmp_path)


def test_large_file_read_in_blocks(dump: Path, tmp_path: Path, monkeypatch) -> None:
    # One big table is streamed block by block; here every file counts as big.
    whole = _sorted(read_vendor_daily(dump, columns=COLUMNS, units=UNITS))
    monkeypatch.setattr(vendor, "_STREAM_BYTES", 0)
    monkeypatch.setattr(vendor, "_STREAM_BLOCK", 256)
    got, origin = vendor.read_table(dump, columns=COLUMNS, units=UNITS)
    assert len(origin._parts) > 4  # several blocks per file
    got = _sorted(got)
    assert got["ts_code"].tolist() == whole["ts_code"].tolist()
    assert got["name"].astype(str).tolist() == whole["name"].astype(str).tolist()
    assert (got["trade_date"] == whole["trade_date"]).all()
    for f in ("open", "high", "low", "close", "pre_close", "vol", "amount", "adj_factor"):
        np.testing.assert_array_equal(got[f].to_numpy(), whole[f].to_numpy(), err_msg=f)
    # rows of later blocks are named by their row in the file
    long = tmp_path / "long"
    long.mkdir()
    _tushare_file(long / "a.csv", "600000.SH", [10 + i / 100 for i in range(40)])
    text = (long / "a.csv").read_text()
    (long / "a.csv").write_text(text.replace("10.34,10.44,10.24", "10.34,10.0,10.24"))
    with pytest.raises(qd.IngestError, match=r"a\.csv: row 35 \(line 36\), field 'high'"):
        qd.ingest(tmp_path / "m.zarr", daily=long)
    lines = text.splitlines()
    lines[30] = lines[30].replace("600000.SH", "600000.XX")
    (long / "a.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(qd.IngestError, match=r"a\.csv: row 30 \(line 31\), column 'ts_code'"):
        read_vendor_daily(long)


def test_empty_files_have_no_rows(tmp_path: Path) -> None:
    _tushare_file(tmp_path / "a.csv", "600000.SH", [10.0, 10.5])
    _tushare_file(tmp_path / "b.csv", "600004.SH", [])  # a header only
    (tmp_path / "c.csv").write_bytes(b"")  # nothing at all
    got = read_vendor_daily(tmp_path)
    assert got["ts_code"].astype(str).tolist() == ["600000.SH", "600000.SH"]
    assert got["close"].tolist() == [10.0, 10.5]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("600000.SH", "600000.SH"),
        ("sh600000", "600000.SH"),
        ("SH600000", "600000.SH"),
        ("sh.600000", "600000.SH"),
        ("SHSE.600000", "600000.SH"),
        ("600000.XSHG", "600000.SH"),
        ("600000", "600000.SH"),
        (" 688981 ", "688981.SH"),
        ("689009", "689009.SH"),
        ("SZ000001", "000001.SZ"),
        ("000001.XSHE", "000001.SZ"),
        ("300750", "300750.SZ"),
        ("430047", "430047.BJ"),
        ("830799", "830799.BJ"),
        ("920002", "920002.BJ"),
        ("bj830799", "830799.BJ"),
        ("sz600000", None),  # a Shanghai number under a Shenzhen prefix
        ("900901", None),  # a B share: no board of the store
        ("60000", None),
        ("sh6000001", None),
        ("浦发银行", None),
    ],
)
def test_normalise_code(text: str, code: str | None) -> None:
    assert normalise_code(text) == code


# --------------------------------------------------------------------------------------------
# Errors


def test_no_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("not a table")
    with pytest.raises(qd.IngestError, match="no CSV or Parquet files in directory"):
        read_vendor_daily(tmp_path / "empty", columns=COLUMNS)
    with pytest.raises(qd.IngestError, match="no CSV or Parquet files in glob"):
        read_vendor_daily(str(tmp_path / "nothing*.csv"), columns=COLUMNS)
    with pytest.raises(qd.IngestError, match="no such file or directory"):
        read_vendor_daily(tmp_path / "missing-dir", columns=COLUMNS)


def test_missing_column_names_file_column_and_what_it_has(dump: Path) -> None:
    path = dump / "sz300750.csv"
    text = path.read_text(encoding="utf-8").replace("前收盘价", "昨收")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(qd.IngestError) as err:
        read_vendor_daily(dump, columns=COLUMNS, units=UNITS)
    msg = str(err.value)
    assert "sz300750.csv" in msg and "'pre_close'" in msg
    assert "'昨收'" in msg and "'股票代码'" in msg  # what the file has


def test_no_header_line(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("title\n1,2,3\n4,5,6\n", encoding="utf-8")
    with pytest.raises(qd.IngestError, match=r"a\.csv: no header with the ts_code and trade"):
        read_vendor_daily(tmp_path, columns=COLUMNS)


@pytest.mark.parametrize(
    ("units", "pattern"),
    [
        ({"vol": "hands"}, r"unknown unit 'hands' for 'vol' \(accepted: 'lots', 'shares'\)"),
        ({"amount": "wan"}, r"unknown unit 'wan' for 'amount'"),
        ({"close": "yuan"}, r"units has no conversions for 'close'"),
    ],
)
def test_unknown_unit(dump: Path, units: dict[str, str], pattern: str) -> None:
    with pytest.raises(qd.IngestError, match=pattern):
        read_vendor_daily(dump, columns=COLUMNS, units=units)


def test_unknown_target_name(dump: Path) -> None:
    with pytest.raises(qd.IngestError, match=r"maps '收盘价' to unknown field 'closing'"):
        read_vendor_daily(dump, columns={**COLUMNS, "收盘价": "closing"})


def _break(path: Path, old: str, new: str, encoding: str = "utf-8") -> None:
    text = path.read_bytes().decode(encoding)
    assert old in text
    path.write_bytes(text.replace(old, new, 1).encode(encoding))


def test_bad_code_names_file_row_and_line(dump: Path) -> None:
    # second data row of the GBK file; the title line and header are lines 1-2
    _break(
        dump / "sh600000.csv", "sh600000,浦发银行,2021-01-05", "xx60000,浦发银行,2021-01-05", "gbk"
    )
    with pytest.raises(qd.IngestError) as err:
        read_vendor_daily(dump, columns=COLUMNS, units=UNITS)
    msg = str(err.value)
    assert "sh600000.csv: row 2 (line 4)" in msg and "'xx60000'" in msg and "股票代码" in msg


def test_text_in_a_number_column_names_file_row_and_line(dump: Path) -> None:
    _break(dump / "sz000001.csv", "19.05,19.3", "19.05,abc")
    with pytest.raises(qd.IngestError) as err:
        read_vendor_daily(dump, columns=COLUMNS, units=UNITS)
    msg = str(err.value)
    assert "sz000001.csv: row 3 (line 4)" in msg and "'abc'" in msg and "最高价" in msg


def test_bad_number_after_an_unread_column(tmp_path: Path) -> None:
    text = "memo,ts_code,trade_date,open,high,low,close,pre_close,vol,amount\n"
    text += "x,600000.SH,20210104,1,1,1,1,1,1,1\nx,600000.SH,20210105,1,1,1,zz,1,1,1\n"
    (tmp_path / "a.csv").write_text(text, encoding="utf-8")
    with pytest.raises(qd.IngestError, match=r"row 2 \(line 3\), column 'close'.*'zz'"):
        read_vendor_daily(tmp_path)


def test_bad_date_names_file_and_row(dump: Path) -> None:
    _break(dump / "sz000001.csv", "20210105", "20210230")
    with pytest.raises(qd.IngestError, match=r"sz000001\.csv: row 2 \(line 3\).*'20210230'"):
        read_vendor_daily(dump, columns=COLUMNS, units=UNITS)


def test_not_gbk_nor_utf8(tmp_path: Path) -> None:
    text = "ts_code,trade_date,name,open,high,low,close,pre_close,vol,amount\n"
    body = "600000.SH,20210104,X,10,10.2,9.9,10.1,10,100,1000\n"
    (tmp_path / "x.csv").write_bytes((text + body).encode().replace(b",X,", b",\x80\xff,"))
    with pytest.raises(
        qd.IngestError,
        match=r"x\.csv: row 1 \(line 2\), column .name.: text .* neither UTF-8 nor GBK",
    ):
        read_vendor_daily(tmp_path)


# --------------------------------------------------------------------------------------------
# Ingesting


def _daily(path: Path) -> xr.Dataset:
    return qd.open_market(path)["daily"].to_dataset().load()


def test_ingest_vendor_directory_store_values(dump: Path, tmp_path: Path) -> None:
    store = qd.ingest(tmp_path / "m.zarr", daily=dump, columns=COLUMNS, units=UNITS)
    d = _daily(store)
    assert sorted(d["asset"].values.astype(str)) == [
        "000001.SZ",
        "300750.SZ",
        "600000.SH",
        "688981.SH",
    ]
    for b in BARS:
        cell = d.sel(asset=b[0], date=b[2])
        assert float(cell["close"]) == b[6]
        assert float(cell["vol"]) == b[8] / 100
        assert float(cell["amount"]) == b[9] / 1000
    # 300750.SZ has no bar on 2021-01-05: suspended, bar fields missing
    gap = d.sel(asset="300750.SZ", date="2021-01-05")
    assert bool(gap["suspended"]) and np.isnan(float(gap["close"]))
    # per-row names: ST by day (平安银行 -> ST平安 on 2021-01-06)
    st = d["is_st"].sel(asset="000001.SZ").values.tolist()
    assert st == [False, False, True]
    assert not d["is_st"].sel(asset="600000.SH").values.any()


def test_directory_ingest_equals_dataframe_ingest(dump: Path, tmp_path: Path) -> None:
    a = qd.ingest(tmp_path / "dir.zarr", daily=dump, columns=COLUMNS, units=UNITS)
    b = qd.ingest(tmp_path / "frame.zarr", daily=expected_frame())
    da, db = _daily(a), _daily(b)
    # same asset order (both sorted), same calendar; every field cell by cell
    assert da["asset"].values.astype(str).tolist() == db["asset"].values.astype(str).tolist()
    assert set(da.data_vars) == set(db.data_vars)
    for name in da.data_vars:
        xr.testing.assert_equal(da[name], db[name])
    for name in da.coords:
        xr.testing.assert_equal(da[name], db[name])


def test_append_vendor_directory(dump: Path, tmp_path: Path) -> None:
    first = write_dump(tmp_path / "first", ("2021-01-04", "2021-01-05"))
    later = write_dump(tmp_path / "later", ("2021-01-06",))
    split = qd.ingest(tmp_path / "split.zarr", daily=first, columns=COLUMNS, units=UNITS)
    qd.append(split, daily=later, columns=COLUMNS, units=UNITS)
    one = qd.ingest(tmp_path / "one.zarr", daily=dump, columns=COLUMNS, units=UNITS)
    ds, do = _daily(split), _daily(one)
    ds = ds.sel(asset=do["asset"].values)
    assert (ds["date"].values == do["date"].values).all()
    for name in do.data_vars:
        xr.testing.assert_equal(ds[name], do[name])


def test_ingest_errors_name_the_file_and_line(dump: Path, tmp_path: Path) -> None:
    # high below low in the third data row of the UTF-8 file without a BOM (title line first)
    _break(dump / "sz300750.csv", "356.0,365.0,354.0", "356.0,350.0,354.0")
    with pytest.raises(qd.IngestError) as err:
        qd.ingest(tmp_path / "m.zarr", daily=dump, columns=COLUMNS, units=UNITS)
    msg = str(err.value)
    assert "sz300750.csv: row 2 (line 4)" in msg and "high" in msg


def test_directory_for_a_non_stock_table(dump: Path, tmp_path: Path) -> None:
    with pytest.raises(qd.IngestError, match="index_daily: directories, globs"):
        qd.ingest(tmp_path / "m.zarr", daily=expected_frame(), index_daily=dump)
