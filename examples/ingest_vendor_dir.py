"""Ingest a vendor dump (one CSV per stock, Chinese headers) without a conversion script.

The script writes a tiny dump in a common Chinese vendor layout to a temporary directory:
one GBK file per stock, a title line before the header, headers 股票代码, 交易日期, 开盘价,
..., codes like ``sh600000`` / ``sz000001``, volume in shares, amount in CNY and a per-row
stock name. It then

1. reads it with ``qd.read_vendor_daily`` (tushare layout and units, one long frame), and
2. builds a store from the directory with ``qd.ingest(daily=<dir>, columns=..., units=...)``
   and prints a few stored cells: ``vol`` in lots (shares / 100), ``amount`` in thousand
   CNY (CNY / 1000), ``is_st`` by day from the names (``*ST`` prefix).

Run: ``python examples/ingest_vendor_dir.py`` (a few seconds).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import quantdask as qd

#: The vendor's header -> our (tushare) names. Columns not listed are not read.
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
}
#: The vendor's units; the store keeps tushare's (vol in lots, amount in thousand CNY).
UNITS = {"vol": "shares", "amount": "yuan"}

HEADER = "股票代码,股票名称,交易日期,开盘价,最高价,最低价,收盘价,前收盘价,成交量,成交额,换手率"
BARS = {
    "sh600000": [
        "sh600000,浦发银行,2024-01-02,6.60,6.64,6.56,6.62,6.58,31000000,205000000.00,0.11",
        "sh600000,浦发银行,2024-01-03,6.62,6.70,6.60,6.68,6.62,35500000,236800000.00,0.12",
        "sh600000,浦发银行,2024-01-04,6.68,6.69,6.61,6.63,6.68,28000000,185900000.00,0.10",
    ],
    "sz000001": [
        "sz000001,平安银行,2024-01-02,9.39,9.42,9.21,9.21,9.39,115000000,1065000000.00,0.59",
        "sz000001,平安银行,2024-01-03,9.19,9.22,9.15,9.20,9.21,84000000,771000000.00,0.43",
        "sz000001,平安银行,2024-01-04,9.19,9.19,9.08,9.11,9.20,91000000,830000000.00,0.47",
    ],
    "sz300750": [
        "sz300750,宁德时代,2024-01-02,165.00,166.50,160.10,160.71,165.33,30000000,4870000000.00,0.77",
        # no bar on 2024-01-03: suspended
        "sz300750,*ST宁德,2024-01-04,158.00,160.00,157.50,158.80,160.71,25000000,3980000000.00,0.64",
    ],
}


def write_dump(d: Path) -> None:
    for code, rows in BARS.items():
        title = f"{rows[0].split(',')[1]}({code}) 历史日线 成交量单位:股 成交额单位:元"
        text = "\r\n".join([title, HEADER, *rows]) + "\r\n"
        (d / f"{code}.csv").write_bytes(text.encode("gbk"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "vendor-daily"
        dump.mkdir()
        write_dump(dump)

        frame = qd.read_vendor_daily(dump, columns=COLUMNS, units=UNITS)
        print(frame[["ts_code", "name", "trade_date", "close", "vol", "amount"]].to_string())

        # No adj_factor column: ingest derives it from the pre_close chain (with a warning).
        store = qd.ingest(Path(tmp) / "vendor.zarr", daily=dump, columns=COLUMNS, units=UNITS)
        daily = qd.open_market(store)["daily"].to_dataset()
        fields = ["close", "vol", "amount"]  # vol in lots, amount in thousand CNY
        print(daily[fields].sel(asset="600000.SH").to_dataframe()[fields])
        print("is_st of 300750.SZ by day:", daily["is_st"].sel(asset="300750.SZ").values)
        gap = daily["suspended"].sel(asset="300750.SZ", date="2024-01-03")
        print("300750.SZ suspended on 2024-01-03:", bool(gap))
        print(qd.verify(store))


if __name__ == "__main__":
    main()
