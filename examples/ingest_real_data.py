"""Build market stores from real A-share data, append a later slice, and verify them.

Data (in ``examples/data/`` next to this script, carried with the repository; its
``README.md`` says what each file is and how the subsets were cut):

* ``hikyuu_daily_8_securities_1990_2011.csv.gz``, ``cn_gov_bond_10y_yield_2002_2024.csv`` and
  ``industry_tdx_blocks_hikyuu_8_securities.csv``: test data of the hikyuu project, Apache
  License 2.0 (the industry map cut to the 8 securities of the daily file).
* ``csi500_weights_2024q2_jqfactor.csv.gz``: sample data of the jqfactor-analyzer package
  1.1.0, Apache License 2.0, cut to 2024-04-01..2024-06-28.

See ``LICENSE-hikyuu-Apache-2.0.txt`` next to the data for the license text.

The vendor files are converted to tushare layout with plain pandas, then:

1. Store ``bars.zarr``: daily bars of 7 stocks and the SSE Composite (000001.SH) for 2005-2010,
   the 10-year bond yield and an industry snapshot, built with ``qd.ingest``; the 2011 bars
   are then added with ``qd.append`` (the daily-update path) and the store is verified.
2. Store ``csi500.zarr``: daily CSI 500 constituent weights of April-May 2024
   (``index_weight``), then June 2024 appended.

Caveats of the sample data: prices are unadjusted and ``pre_close`` here is simply the
previous close (not adjusted for corporate actions); the industry map is a 2023 snapshot of
Tongdaxin blocks, mapped by hand to Shenwan level-1 codes for these 7 stocks. So ``qd.ingest``
and ``qd.append`` warn (``IngestWarning``), as they should on such data: the adjustment factor
is derived from the ``pre_close`` chain (flat here, since ``pre_close`` is the previous
close), the ex-rights days are reported as returns beyond the price limit, and a stock
without bars at the end of the slice is treated as delisted.

Run: ``python examples/ingest_real_data.py [--out DIR] [--data DIR]`` (about 10-30 s on 2
cores); ``--data`` reads another folder with files of the same names.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

import quantdask as qd

#: The sample data carried with the repository.
DATA = Path(__file__).resolve().parent / "data"

#: Tongdaxin industry blocks of the sample stocks -> Shenwan 2021 level-1 codes.
TDX_TO_SW_L1 = {
    "银行": 801780,  # Banks
    "房地产": 801180,  # Real Estate
    "生物科技": 801150,  # Pharmaceuticals
    "机场服务": 801170,  # Transportation
    "建筑工程": 801720,  # Building Decoration
}


def hikyuu_daily(real: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stock bars (tushare ``daily``) and index bars (``index_daily``) from the hikyuu file."""
    raw = pd.read_csv(real / "hikyuu_daily_8_securities_1990_2011.csv.gz")
    raw = raw.rename(columns={"volume_lots": "vol", "amount_kcny": "amount"})
    raw = raw.sort_values(["ts_code", "trade_date"])
    raw["pre_close"] = raw.groupby("ts_code")["close"].shift(1)
    raw["trade_date"] = raw["trade_date"].str.replace("-", "")  # tushare's YYYYMMDD
    is_index = raw["ts_code"] == "000001.SH"
    cols = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "vol", "amount"]
    return raw.loc[~is_index, cols], raw.loc[is_index, cols]


def bond_yields(real: Path) -> pd.DataFrame:
    """``macro``: trade_date + cgb_10y (%)."""
    raw = pd.read_csv(real / "cn_gov_bond_10y_yield_2002_2024.csv")
    return pd.DataFrame({"trade_date": raw["date"], "cgb_10y": raw["yield_pct"]})


def stock_basic(real: Path, codes: list[str]) -> pd.DataFrame:
    """``stock_basic`` with an industry code from the Tongdaxin block map."""
    blocks = pd.read_csv(real / "industry_tdx_blocks_hikyuu_8_securities.csv").set_index("ts_code")
    block = blocks["tdx_industry_block"].reindex(codes)
    return pd.DataFrame(
        {
            "ts_code": codes,
            "industry": block.map(TDX_TO_SW_L1).fillna(0).astype(int).to_numpy(),
        }
    )


def csi500_weights(real: Path) -> pd.DataFrame:
    """``index_weight`` for 000905.SH: weights converted from fractions to tushare's %."""
    raw = pd.read_csv(real / "csi500_weights_2024q2_jqfactor.csv.gz")
    # The vendor's full file also carries an index-return row per day and is a dense panel
    # (NaN marks non-members); the carried subset has neither, the filters keep both working.
    raw = raw[raw["ts_code"] != "return"]
    raw = raw.dropna(subset=["weight"])
    return pd.DataFrame(
        {
            "index_code": "000905.SH",
            "con_code": raw["ts_code"],
            "trade_date": raw["date"],
            "weight": raw["weight"] * 100.0,
        }
    )


def between(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    dates = pd.to_datetime(frame["trade_date"].astype(str), format="mixed")
    return frame[(dates >= start) & (dates <= end)]


def build(out: Path, real: Path = DATA) -> dict[str, Path]:
    """Build both example stores under ``out``; return their paths."""
    daily, index_daily = hikyuu_daily(real)
    macro = bond_yields(real)
    basic = stock_basic(real, sorted(daily["ts_code"].unique()))

    bars = qd.ingest(
        out / "bars.zarr",
        daily=between(daily, "2005-01-01", "2010-12-31"),
        index_daily=between(index_daily, "2005-01-01", "2010-12-31"),
        macro=between(macro, "2005-01-01", "2010-12-31"),
        stock_basic=basic,
        overwrite=True,
    )
    qd.append(
        bars,
        daily=between(daily, "2011-01-01", "2011-12-31"),
        index_daily=between(index_daily, "2011-01-01", "2011-12-31"),
        macro=between(macro, "2011-01-01", "2011-12-31"),
    )

    weights = csi500_weights(real)
    csi500 = qd.ingest(
        out / "csi500.zarr",
        index_weight=between(weights, "2024-04-01", "2024-05-31"),
        overwrite=True,
    )
    qd.append(csi500, index_weight=between(weights, "2024-06-01", "2024-06-30"))
    return {"bars": bars, "csi500": csi500}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: a temp dir)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DATA,
        help="folder of the sample files (default: examples/data)",
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"sample data not found at {args.data}")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        stores = build(out, args.data)
        print(f"built and appended in {time.perf_counter() - t0:.1f} s")
        for path in stores.values():
            print(qd.verify(path))
        daily = qd.open_market(stores["bars"])["daily"]
        close = daily["close"].isel(date=slice(-5, None)).to_pandas()
        print(close.round(2))
        print(
            "suspended cell count per stock:", daily["suspended"].sum("date").to_pandas().to_dict()
        )
        w = qd.open_market(stores["csi500"])["index"]["weight"].sel(index="000905.SH")
        last = w.isel(date=-1).to_pandas()
        print("CSI 500 on", str(w["date"].values[-1])[:10], "- members:", int((last > 0).sum()))
        print(last.sort_values(ascending=False).head(5).round(4))


if __name__ == "__main__":
    main()
