"""The market store layout: node names, fields, units, dtypes and chunking.

This module is the single source of truth for what a quantdask market store holds. Every
writer (the synthetic market, ingest, append) and every reader (``open_market``, the factor
engine, the back-test) takes names, units and chunk sizes from here.

Store layout
------------
One zarr (v3) store per market, a directory (or any fsspec URL) holding one group per node::

    market.zarr/
      daily/         (date, asset)   tushare-style daily fields, flags and industry
      index/         (date, index)   broad-index bars and valuations
                     (date, index, asset)  ``weight``: constituent weights (fraction, sums to 1)
                     (date, universe, asset)  ``member``: qlib instruments-file membership
                                       (bool; stores from ``qd.ingest_qlib`` only)
      fundamentals/  (record,)       point-in-time statements, one row per announcement
      macro/         (date,)         ``cgb_10y``: 10-year government bond spot yield, in %
      offshore/      (date,)         FTSE China A50 spot, futures and a Hong Kong A50 ETF

Conventions
-----------
* ``date`` is the trading calendar (datetime64[ns], no weekends or exchange holidays).
* ``asset`` is the tushare ``ts_code`` string (``600519.SH``); ``index`` likewise
  (``000300.SH``).
* Missing is ``NaN`` (floats), ``False`` (flags) or ``0`` (``industry``): cells before listing,
  after delisting and on suspended days are missing, never zero or forward-filled prices.
* ``pre_close`` is the previous *traded* close adjusted for corporate actions (tushare
  convention), so ``close / pre_close - 1`` is the daily return, also across a suspension.
* Units follow tushare: ``vol`` in lots (100 shares), ``amount`` in thousand CNY, share counts
  in 10k shares, market values in 10k CNY, ``turnover_rate`` and ``dv_ttm`` in %, ``cgb_10y``
  in %. ``pe_ttm`` is missing when trailing earnings are not positive (vendor convention).

Provenance of an ingested store
-------------------------------
``qd.ingest`` / ``qd.append`` record in the ``daily`` node's attrs where each derived field
came from (:data:`DAILY_ATTRS`): ``adj_factor_source`` (``"vendor"`` or ``"pre_close
chain"``: derived as ``factor *= prev_close / pre_close`` on each traded day, 1.0 at the
first bar, carried over suspensions), ``limit_source`` (``"vendor"`` = ``stk_limit``, or
``"derived"`` by :mod:`quantdask.kernels.limits`), ``is_st_source``, ``turnover_rate_source``,
``missing_fields`` (the float fields no input provided, stored all-NaN: factors that need one
raise naming it), ``delist_inferred`` (assets delisted because their bars stopped more than
``stale_days`` sessions before the store's last date) and ``stale_days``. A source that
changed between calls reads ``"vendor + pre_close chain"``. Synthetic stores carry none of
these (every field is simulated).

Chunk layout
------------
Stored chunks are ``DATE_CHUNK`` dates x ``ASSET_CHUNK`` assets (1024 x 512 float64 = 4 MiB).
Rolling time-series work reads a block of dates plus the trailing rows its lookback needs
(``map_overlap`` with a one-sided depth), so a 250-day window costs about 25% extra reads
instead of a full rechunk; cross-sectional work rechunks a date block to all assets at once,
which at 512 assets per stored chunk touches ~11 chunks per date block. The synthetic
generator writes one date block (all assets) at a time, so its memory does not grow with the
number of dates; ``append`` rewrites at most the last date block. ``bench/bench_layout.py``
measures this layout against whole-time and whole-cross-section chunks.
"""

from __future__ import annotations

import re
from typing import Final

import numpy as np
from zarr.codecs import BloscCodec

#: Stored chunk length along ``date`` (also the synthetic generator's write block).
DATE_CHUNK: Final[int] = 1024
#: Stored chunk length along ``asset``.
ASSET_CHUNK: Final[int] = 512
#: Chunk length of the ``record`` dimension of the fundamentals node.
RECORD_CHUNK: Final[int] = 65536


def output_compressors() -> tuple[BloscCodec, ...]:
    """Compressors of the factor stores :func:`quantdask.to_zarr` writes.

    Blosc LZ4 with byte shuffle: on factor outputs (ratios, ranks, percentiles of a
    5,000 x 5,500 panel) it writes ~2x faster than zarr's default Zstd at about the same size
    (``bench/README.md``, ops section); factor stores are rewritten on every sweep, so write
    speed matters more than the last 10% of size. The market store keeps zarr's default Zstd:
    it is written once and Zstd packs prices and volumes 1-2.4x smaller.
    """
    return (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)


NODES: Final[tuple[str, ...]] = ("daily", "index", "fundamentals", "macro", "offshore")

#: Float fields of the ``daily`` node, with their units.
DAILY_FLOAT_FIELDS: Final[dict[str, str]] = {
    "open": "CNY",
    "high": "CNY",
    "low": "CNY",
    "close": "CNY",
    "pre_close": "CNY, previous traded close adjusted for corporate actions",
    "vol": "lots (100 shares)",
    "amount": "thousand CNY",
    "adj_factor": "cumulative backward adjustment factor",
    "turnover_rate": "% of float shares",
    "float_share": "10k shares",
    "total_share": "10k shares",
    "total_mv": "10k CNY",
    "circ_mv": "10k CNY",
    "pe_ttm": "price / trailing-12-month earnings; missing when earnings <= 0",
    "pb": "price / book",
    "ps_ttm": "price / trailing-12-month revenue",
    "dv_ttm": "% trailing-12-month cash dividend yield",
    "up_limit": "CNY, up limit price (rounded to 0.01); missing when no limit applies",
    "down_limit": "CNY, down limit price (rounded to 0.01); missing when no limit applies",
}
#: Boolean flags of the ``daily`` node.
DAILY_FLAG_FIELDS: Final[dict[str, str]] = {
    "suspended": "listed but not traded on this date",
    "is_st": "ST or *ST on this date",
}
#: ``industry``: Shenwan level-1 industry code valid on this date (int32, 0 = none).
DAILY_INDUSTRY_FIELD: Final[str] = "industry"
DAILY_FIELDS: Final[tuple[str, ...]] = (
    *DAILY_FLOAT_FIELDS,
    *DAILY_FLAG_FIELDS,
    DAILY_INDUSTRY_FIELD,
)
#: Per-asset coordinates of the ``daily`` node (strings and datetime64[ns], NaT = not delisted).
#: Strings (and the ``asset`` / ``index`` labels of every node) are fixed-width ``<U``.
ASSET_COORDS: Final[tuple[str, ...]] = ("name", "exchange", "board", "list_date", "delist_date")
#: Per-asset coordinates of ingested stores only: the ``stock_basic`` snapshot (``industry``,
#: ``is_st`` or an ST name) used on dates before an asset's first per-row value, kept so an
#: append without ``stock_basic`` gives what one ingest of all inputs gives.
BASIC_COORDS: Final[dict[str, str]] = {
    "basic_industry": "int32 Shenwan L1 code from stock_basic (0 = none)",
    "basic_is_st": "bool, stock_basic is_st, else an ST / *ST name",
}
#: Attrs of the ``daily`` node of an ingested store: name -> meaning.
DAILY_ATTRS: Final[dict[str, str]] = {
    "adj_factor_source": "'vendor' (adj_factor table or column) or 'pre_close chain' (derived)",
    "limit_source": "'vendor' (stk_limit) or 'derived' (quantdask.kernels.limits rules)",
    "is_st_source": "'daily is_st column', 'daily name column', 'stock_basic' or 'none'",
    "turnover_rate_source": "'vendor', 'vol / float_share' and/or 'vol * close / circ_mv'",
    "missing_fields": "list of str: daily float fields no input provided (stored all-NaN)",
    "delist_inferred": "list of str: assets delisted after their last bar (stale bars)",
    "stale_days": "int: sessions without a bar after which an asset counts as delisted",
}

EXCHANGES: Final[tuple[str, ...]] = ("SH", "SZ", "BJ")

#: Stock code formats (boards and exchanges). ``689`` is the STAR market's CDR range (e.g.
#: 689009.SH), listed and traded like ``688``.
STOCK_CODE: Final[re.Pattern[str]] = re.compile(
    r"^(?:(?:60[0135]\d{3}|68[89]\d{3})\.SH|(?:00[0-3]\d{3}|30[01]\d{3})\.SZ"
    r"|(?:43\d{4}|83\d{4}|87\d{4}|920\d{3})\.BJ)$"
)
#: Index code format (``000300.SH``, ``399006.SZ``, ``000985.CSI``).
INDEX_CODE: Final[re.Pattern[str]] = re.compile(r"^\d{6}\.(?:SH|SZ|CSI)$")
#: Columns every daily bar table needs (tushare names), keys first.
DAILY_BAR_COLUMNS: Final[tuple[str, ...]] = (
    "ts_code",
    "trade_date",
    "open",
    "high",
    "low",
    "close",
    "pre_close",
    "vol",
    "amount",
)
BOARDS: Final[tuple[str, ...]] = ("main", "star", "chinext", "bse")

#: Broad indices of ASHARE.md: code -> English name.
INDICES: Final[dict[str, str]] = {
    "000016.SH": "SSE 50",
    "000300.SH": "CSI 300",
    "000905.SH": "CSI 500",
    "000852.SH": "CSI 1000",
    "932000.CSI": "CSI 2000",
    "000985.CSI": "CSI All Share",
    "399006.SZ": "ChiNext Index",
    "000955.CSI": "CSI SOE",
}
#: Float fields of the ``index`` node (dims ``(date, index)``).
INDEX_FIELDS: Final[dict[str, str]] = {
    "open": "points",
    "high": "points",
    "low": "points",
    "close": "points",
    "pre_close": "points",
    "vol": "lots",
    "amount": "thousand CNY",
    "total_mv": "10k CNY, constituents' total market value",
    "float_mv": "10k CNY, constituents' float market value",
    "pe_ttm": "constituents' total market value / total TTM net profit",
    "pb": "constituents' total market value / total book equity",
    "dv_ttm": "% constituents' TTM cash dividends / total market value",
}
#: Constituent weights ``(date, index, asset)``: fraction of the index, each date sums to 1
#: over constituents, 0 for non-members, NaN before the index exists.
INDEX_WEIGHT_FIELD: Final[str] = "weight"
#: Dated universe membership ``(date, universe, asset)``, bool, of stores ingested from qlib
#: (:func:`quantdask.ingest_qlib`): one ``universe`` per ``instruments/<name>.txt`` (``all``,
#: ``csi300``, ...), True on the dates of the file's spans for that asset. The ``universe``
#: coordinate is the file name; ``universe_index`` (per universe, ``<U12``) the index code of a
#: known qlib market name (``csi300`` -> ``000300.SH``), ``""`` otherwise. Unlike ``weight`` it
#: carries no weights; select with ``index["member"].sel(universe="csi300")``.
INDEX_MEMBER_FIELD: Final[str] = "member"

#: Statement items of the ``fundamentals`` node. Flow items (income and cash-flow statement)
#: are cumulative year to date; balance-sheet items are point values at ``end_date``.
FLOW_ITEMS: Final[tuple[str, ...]] = (
    "revenue",
    "oper_cost",
    "sell_exp",
    "admin_exp",
    "rd_exp",
    "ebit",
    "n_income_attr_p",
    "n_cashflow_act",
    "n_cashflow_inv_act",
    "n_cash_flows_fnc_act",
    "div_cash",
)
STOCK_ITEMS: Final[tuple[str, ...]] = (
    "total_assets",
    "total_liab",
    "total_hldr_eqy",
    "fix_assets",
    "cip",
    "accounts_receiv",
    "adv_receipts",
    "contract_liab",
    "intan_assets",
    "goodwill",
    "employees",
    "rd_staff",
    "top5_customer_share",
    "top5_supplier_share",
    "capital_adequacy",
    "provision_coverage",
)
STATEMENT_ITEMS: Final[tuple[str, ...]] = (*FLOW_ITEMS, *STOCK_ITEMS)
#: Key columns of a fundamentals record: ``asset`` (ts_code), ``end_date`` (report period
#: end), ``ann_date`` (announcement date, calendar date), ``update_flag`` (0 first
#: announcement, 1 restatement of an earlier announced period).
FUNDAMENTAL_KEYS: Final[tuple[str, ...]] = ("asset", "end_date", "ann_date", "update_flag")

MACRO_FIELDS: Final[dict[str, str]] = {"cgb_10y": "% 10-year China government bond spot yield"}
OFFSHORE_FIELDS: Final[dict[str, str]] = {
    "a50_spot": "FTSE China A50 index close, points",
    "a50_fut": "FTSE China A50 front-month futures close (SGX), points",
    "a50_etf": "Hong Kong-listed FTSE China A50 ETF close, HKD",
    "hkd_cny": "CNY per HKD",
}

#: Shenwan 2021 level-1 industries: code -> (English name).
SW_L1: Final[dict[int, str]] = {
    801010: "Agriculture",
    801030: "Basic Chemicals",
    801040: "Steel",
    801050: "Non-ferrous Metals",
    801080: "Electronics",
    801110: "Home Appliances",
    801120: "Food & Beverage",
    801130: "Textiles & Apparel",
    801140: "Light Manufacturing",
    801150: "Pharmaceuticals",
    801160: "Utilities",
    801170: "Transportation",
    801180: "Real Estate",
    801200: "Commerce & Retail",
    801210: "Social Services",
    801230: "Conglomerates",
    801710: "Building Materials",
    801720: "Building Decoration",
    801730: "Power Equipment",
    801740: "Defense",
    801750: "Computers",
    801760: "Media",
    801770: "Telecom",
    801780: "Banks",
    801790: "Non-bank Finance",
    801880: "Autos",
    801890: "Machinery",
    801950: "Coal",
    801960: "Petroleum & Petrochemicals",
    801970: "Environmental Protection",
    801980: "Beauty Care",
}

FLOAT_DTYPE: Final = np.float64
INDUSTRY_DTYPE: Final = np.int32
