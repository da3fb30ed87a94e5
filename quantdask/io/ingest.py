"""Build a market store from real vendor data, and append the daily update to it.

Input frames are long tables in tushare layout (one row per ``ts_code`` and ``trade_date``),
given as a CSV or Parquet path or a :class:`pandas.DataFrame`. :func:`ingest` validates them,
lays them out as dense ``(date, asset)`` arrays on the union calendar of their trade dates and
writes a new store with exactly the layout of :mod:`quantdask.io.schema`. :func:`append` adds
later dates (and newly listed assets) to an existing store, writing only the chunks the new
cells fall in, behind an undo journal (:mod:`quantdask.io._journal`).

Both are explicit I/O points: they read the input into memory, and they are not lazy.
"""

from __future__ import annotations

import itertools
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from quantdask.io import _journal, schema
from quantdask.io.store import StoreError, _check_not_mid_write, atomic_directory, zarr_quiet

FrameLike = str | os.PathLike[str] | pd.DataFrame | None

__all__ = ["IngestError", "append", "ingest"]


class IngestError(ValueError):
    """Bad input to :func:`ingest` or :func:`append`.

    The message names the input (file path or ``DataFrame <keyword>``), the row (1-based, data
    rows after the header; CSV inputs also give the file line) and the field.
    """


# --------------------------------------------------------------------------------------------
# Column specifications of the accepted inputs

_PRICE_FIELDS = ("open", "high", "low", "close", "pre_close")
_DAILY_REQUIRED = (
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
_DAILY_OPTIONAL = ("adj_factor",)
_BASIC_FIELDS = (
    "turnover_rate",
    "float_share",
    "total_share",
    "total_mv",
    "circ_mv",
    "pe_ttm",
    "pb",
    "ps_ttm",
    "dv_ttm",
)
_LIMIT_FIELDS = ("up_limit", "down_limit")
_INDEX_REQUIRED = ("ts_code", "trade_date", "close")
_INDEX_OPTIONAL = tuple(f for f in schema.INDEX_FIELDS if f != "close")
_NONNEG_FIELDS = ("vol", "amount")

#: Stock code formats of :mod:`quantdask.io.schema` (boards and exchanges). ``689`` is the
#: STAR market's CDR range (e.g. 689009.SH), listed and traded like ``688``.
_STOCK_CODE = re.compile(
    r"^(?:(?:60[0135]\d{3}|68[89]\d{3})\.SH|(?:00[0-3]\d{3}|30[01]\d{3})\.SZ"
    r"|(?:43\d{4}|83\d{4}|87\d{4}|920\d{3})\.BJ)$"
)
_INDEX_CODE = re.compile(r"^\d{6}\.(?:SH|SZ|CSI)$")

#: Chunk length of the ``index`` dimension (the index node is small).
_INDEX_CHUNK = 16
_TIME_UNITS = "days since 1970-01-01"


def board_of(codes: np.ndarray | pd.Series) -> np.ndarray:
    """Board (``main``, ``star``, ``chinext``, ``bse``) of valid stock codes, vectorised."""
    codes = pd.Series(np.asarray(codes, dtype=object), dtype=object).astype(str)
    head3 = codes.str[:3]
    exch = codes.str[-2:]
    out = np.where(
        exch == "BJ",
        "bse",
        np.where(
            head3.isin(["688", "689"]),
            "star",
            np.where(head3.isin(["300", "301"]), "chinext", "main"),
        ),
    )
    return out.astype(object)


def exchange_of(codes: np.ndarray | pd.Series) -> np.ndarray:
    """Exchange suffix (``SH``, ``SZ``, ``BJ``) of codes, vectorised."""
    return (
        pd.Series(np.asarray(codes, dtype=object), dtype=object)
        .astype(str)
        .str.split(".")
        .str[-1]
        .to_numpy(dtype=object)
    )


# --------------------------------------------------------------------------------------------
# Loading and parsing with error context


@dataclass
class _Frame:
    """One normalised input: the parsed frame and where it came from."""

    keyword: str
    label: str
    csv: bool
    df: pd.DataFrame

    def where(self, row: int, field: str) -> str:
        line = f" (line {row + 2})" if self.csv else ""
        return f"{self.label}: row {row + 1}{line}, field {field!r}"

    def fail(self, row: int, field: str, what: str) -> IngestError:
        return IngestError(f"{self.where(row, field)}: {what}")


def _load(obj: FrameLike, keyword: str) -> _Frame | None:
    if obj is None:
        return None
    if isinstance(obj, pd.DataFrame):
        return _Frame(keyword, f"DataFrame {keyword}", False, obj.reset_index(drop=True).copy())
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if not path.is_file():
            raise IngestError(f"{keyword}: no such file {path}")
        name = path.name.lower()
        try:
            if name.endswith((".parquet", ".pq")):
                df = pd.read_parquet(path)
                csv = False
            elif name.endswith((".csv", ".csv.gz", ".txt", ".csv.bz2", ".csv.zip")):
                df = pd.read_csv(path, dtype=str, keep_default_na=True)
                csv = True
            else:
                raise IngestError(f"{keyword}: {path} is neither .csv nor .parquet")
        except IngestError:
            raise
        except Exception as err:  # pandas/pyarrow raise many kinds
            raise IngestError(f"{keyword}: cannot read {path}: {err}") from err
        return _Frame(keyword, f"file {path}", csv, df.reset_index(drop=True))
    raise TypeError(
        f"{keyword} must be a CSV/Parquet path or a pandas DataFrame, got {type(obj).__name__}"
    )


def _require(fr: _Frame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in fr.df.columns]
    if missing:
        raise IngestError(
            f"{fr.label}: missing required column(s) {', '.join(map(repr, missing))} "
            f"(has {', '.join(map(str, fr.df.columns))})"
        )


_MISSING_TEXT = {"", "nan", "none", "null", "na", "n/a", "nat"}


def _text_missing(s: pd.Series) -> np.ndarray:
    return (
        s.isna().to_numpy() | s.astype(str).str.strip().str.lower().isin(_MISSING_TEXT).to_numpy()
    )


def _numeric(fr: _Frame, col: str) -> np.ndarray:
    """Parse a numeric column to float64; non-numeric text raises naming row and field."""
    s = fr.df[col]
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype("float64").to_numpy()
    out = pd.to_numeric(s.astype(object).where(~_text_missing(s), None), errors="coerce")
    bad = np.flatnonzero(~_text_missing(s) & out.isna().to_numpy())
    if bad.size:
        r = int(bad[0])
        raise fr.fail(r, col, f"expected a number, got {s.iloc[r]!r}")
    return out.astype("float64").to_numpy()


def _dates(fr: _Frame, col: str, *, required: bool = True) -> np.ndarray:
    """Parse dates given as YYYYMMDD ints/strings, ISO strings or datetimes (to datetime64[ns])."""
    s = fr.df[col]
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = (
            pd.DatetimeIndex(s).tz_localize(None)
            if getattr(s.dt, "tz", None)
            else pd.DatetimeIndex(s)
        )
        values = out.as_unit("ns").to_numpy()
        missing = np.isnat(values)
    else:
        # Parse each distinct value once (a long table repeats every date per stock).
        inv, uniq = pd.factorize(s, use_na_sentinel=True)
        u = pd.Series(np.asarray(uniq, dtype=object), dtype=object)
        u_values = np.full(len(u), np.datetime64("NaT"), dtype="datetime64[ns]")
        u_bad = np.zeros(len(u), dtype=bool)
        if pd.api.types.is_float_dtype(s.dtype):
            uf = u.astype("float64")
            u_bad = (uf != np.floor(uf)).to_numpy()
            u = uf.where(~u_bad, 0.0).astype("int64").astype(object)
        u_missing = _text_missing(u) if len(u) else np.zeros(0, dtype=bool)
        text = u.where(~u_missing, None).astype(str).str.strip()
        compact = text.str.fullmatch(r"\d{8}").fillna(False).to_numpy(dtype=bool)
        if compact.any():
            u_values[compact] = (
                pd.to_datetime(text[compact], format="%Y%m%d", errors="coerce")
                .dt.as_unit("ns")
                .to_numpy()
            )
        iso = ~compact & ~u_missing
        if iso.any():
            parsed = pd.to_datetime(text[iso], format="ISO8601", errors="coerce")
            if getattr(parsed.dt, "tz", None) is not None:
                parsed = parsed.dt.tz_localize(None)
            u_values[iso] = parsed.dt.as_unit("ns").to_numpy()
        u_bad |= ~u_missing & np.isnat(u_values)
        known = inv >= 0
        safe = np.where(known, inv, 0)
        if len(u):
            bad = np.flatnonzero(known & u_bad[safe])
            if bad.size:
                r = int(bad[0])
                raise fr.fail(r, col, f"unparseable date {s.iloc[r]!r} (use YYYYMMDD or ISO)")
            values = np.where(known, u_values[safe], np.datetime64("NaT", "ns"))
            missing = ~known | u_missing[safe]
        else:
            values = np.full(len(s), np.datetime64("NaT"), dtype="datetime64[ns]")
            missing = np.ones(len(s), dtype=bool)
    if required and missing.any():
        r = int(np.flatnonzero(missing)[0])
        raise fr.fail(r, col, "date is missing")
    return values


def _codes(fr: _Frame, col: str, *, index: bool = False) -> np.ndarray:
    s = fr.df[col]
    inv, uniq = pd.factorize(s, use_na_sentinel=True)
    u = pd.Series(np.asarray(uniq, dtype=object), dtype=object)
    u_missing = _text_missing(u) if len(u) else np.zeros(0, dtype=bool)
    safe = np.where(inv >= 0, inv, 0)
    missing = (inv < 0) | (u_missing[safe] if len(u) else True)
    if np.any(missing):
        r = int(np.flatnonzero(missing)[0])
        raise fr.fail(r, col, "code is missing")
    text = u.astype(str).str.strip()
    pattern = _INDEX_CODE if index else _STOCK_CODE
    ok = text.str.fullmatch(pattern.pattern).fillna(False).to_numpy(dtype=bool)
    if not ok.all():
        r = int(np.flatnonzero(~ok[inv])[0])
        kind = (
            "an index code (6 digits + .SH/.SZ/.CSI)"
            if index
            else "a stock code of a known board (600/601/603/605/688 .SH, "
            "000/001/002/003/300/301 .SZ, 43/83/87/920 .BJ)"
        )
        raise fr.fail(r, col, f"unknown code format {s.iloc[r]!r}: expected {kind}")
    return text.to_numpy(dtype=object)[inv]


def _no_duplicates(fr: _Frame, keys: dict[str, np.ndarray]) -> None:
    combined = np.zeros(len(next(iter(keys.values()))), dtype=np.int64)
    for arr in keys.values():
        if arr.dtype.kind == "M":
            arr = arr.view(np.int64)
        codes, uniq = pd.factorize(arr, use_na_sentinel=False)
        combined *= len(uniq)
        combined += codes
        combined, _ = pd.factorize(combined)
    dup = pd.Series(combined).duplicated(keep="first").to_numpy()
    if dup.any():
        r = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(combined == combined[r])[0])
        key = ", ".join(f"{k}={pd.Series(v[r : r + 1]).iloc[0]!s}" for k, v in keys.items())
        raise IngestError(
            f"{fr.where(r, next(iter(keys)))}: duplicate key ({key}), also at row {first + 1}"
        )


def _positive(fr: _Frame, values: dict[str, np.ndarray], fields: Iterable[str]) -> None:
    for f in fields:
        if f not in values:
            continue
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(values[f] <= 0)
        if bad.size:
            r = int(bad[0])
            raise fr.fail(r, f, f"price must be positive, got {float(values[f][r])!r}")


def _nonnegative(fr: _Frame, values: dict[str, np.ndarray], fields: Iterable[str]) -> None:
    for f in fields:
        if f not in values:
            continue
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(values[f] < 0)
        if bad.size:
            r = int(bad[0])
            raise fr.fail(r, f, f"must not be negative, got {float(values[f][r])!r}")


def _high_low(fr: _Frame, values: dict[str, np.ndarray]) -> None:
    if "high" in values and "low" in values:
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(values["high"] < values["low"])
        if bad.size:
            r = int(bad[0])
            raise fr.fail(
                r,
                "high",
                f"high {float(values['high'][r])!r} is below low {float(values['low'][r])!r}",
            )


@dataclass
class _Table:
    """A validated long table: keys and float fields as numpy arrays, rows as given."""

    frame: _Frame
    dates: np.ndarray  # datetime64[ns]
    codes: np.ndarray | None  # object (ts_code), None for macro/offshore
    values: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def _bars(
    obj: FrameLike,
    keyword: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    *,
    index: bool = False,
    positive: tuple[str, ...] = (),
) -> _Table | None:
    fr = _load(obj, keyword)
    if fr is None:
        return None
    _require(fr, required)
    codes = _codes(fr, "ts_code", index=index)
    dates = _dates(fr, "trade_date")
    _no_duplicates(fr, {"ts_code": codes, "trade_date": dates})
    fields = [
        c
        for c in (*required, *optional)
        if c not in ("ts_code", "trade_date") and c in fr.df.columns
    ]
    values = {c: _numeric(fr, c) for c in fields}
    _positive(fr, values, positive)
    _nonnegative(fr, values, _NONNEG_FIELDS)
    _high_low(fr, values)
    return _Table(fr, dates, codes, values)


@dataclass
class _Inputs:
    daily: _Table | None = None
    adj_factor: _Table | None = None
    daily_basic: _Table | None = None
    stk_limit: _Table | None = None
    index_daily: _Table | None = None
    index_weight: _Table | None = None
    statements: _Table | None = None
    macro: _Table | None = None
    offshore: _Table | None = None
    stock_basic: pd.DataFrame | None = None

    def dated(self) -> list[_Table]:
        return [
            t
            for t in (
                self.daily,
                self.adj_factor,
                self.daily_basic,
                self.stk_limit,
                self.index_daily,
                self.index_weight,
                self.macro,
                self.offshore,
            )
            if t is not None
        ]


def _parse_inputs(kw: Mapping[str, FrameLike]) -> _Inputs:
    inp = _Inputs()
    inp.daily = _bars(
        kw.get("daily"),
        "daily",
        _DAILY_REQUIRED,
        (*_DAILY_OPTIONAL, "is_st", "industry"),
        positive=(*_PRICE_FIELDS, "adj_factor"),
    )
    inp.adj_factor = _bars(
        kw.get("adj_factor"),
        "adj_factor",
        ("ts_code", "trade_date", "adj_factor"),
        (),
        positive=("adj_factor",),
    )
    inp.daily_basic = _bars(
        kw.get("daily_basic"), "daily_basic", ("ts_code", "trade_date"), _BASIC_FIELDS
    )
    if inp.daily_basic is not None:
        _nonnegative(
            inp.daily_basic.frame,
            inp.daily_basic.values,
            ("turnover_rate", "float_share", "total_share", "total_mv", "circ_mv"),
        )
    inp.stk_limit = _bars(
        kw.get("stk_limit"),
        "stk_limit",
        ("ts_code", "trade_date", *_LIMIT_FIELDS),
        (),
        positive=_LIMIT_FIELDS,
    )
    inp.index_daily = _bars(
        kw.get("index_daily"),
        "index_daily",
        _INDEX_REQUIRED,
        _INDEX_OPTIONAL,
        index=True,
        positive=("open", "high", "low", "close", "pre_close"),
    )
    inp.index_weight = _parse_weights(kw.get("index_weight"))
    inp.statements = _parse_statements(kw.get("statements"))
    inp.macro = _parse_series(kw.get("macro"), "macro", {"cgb_10y": ("cgb_10y", "yield_pct")})
    inp.offshore = _parse_series(
        kw.get("offshore"), "offshore", {f: (f,) for f in schema.OFFSHORE_FIELDS}
    )
    inp.stock_basic = _parse_stock_basic(kw.get("stock_basic"))
    if inp.daily is not None:
        # is_st / industry given per row: keep them out of the float fields.
        for col in ("is_st", "industry"):
            if col in inp.daily.values:
                inp.daily.extra[col] = inp.daily.values.pop(col)
    return inp


def _parse_weights(obj: FrameLike) -> _Table | None:
    fr = _load(obj, "index_weight")
    if fr is None:
        return None
    _require(fr, ("index_code", "con_code", "trade_date", "weight"))
    idx = _codes(fr, "index_code", index=True)
    con = _codes(fr, "con_code")
    dates = _dates(fr, "trade_date")
    _no_duplicates(fr, {"index_code": idx, "con_code": con, "trade_date": dates})
    w = _numeric(fr, "weight")
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero((w < 0) | (w > 100) | np.isnan(w))
    if bad.size:
        r = int(bad[0])
        raise fr.fail(r, "weight", f"weight must be a percentage in [0, 100], got {float(w[r])!r}")
    return _Table(fr, dates, con, {"weight": w / 100.0}, {"index_code": idx})


def _parse_series(
    obj: FrameLike, keyword: str, fields: dict[str, tuple[str, ...]]
) -> _Table | None:
    fr = _load(obj, keyword)
    if fr is None:
        return None
    _require(fr, ("trade_date",))
    values: dict[str, np.ndarray] = {}
    for name, aliases in fields.items():
        col = next((a for a in aliases if a in fr.df.columns), None)
        if col is not None:
            values[name] = _numeric(fr, col)
    if not values:
        wanted = " or ".join(a for al in fields.values() for a in al)
        raise IngestError(f"{fr.label}: missing required column(s): {wanted}")
    dates = _dates(fr, "trade_date")
    _no_duplicates(fr, {"trade_date": dates})
    return _Table(fr, dates, None, values)


def _parse_statements(obj: FrameLike) -> _Table | None:
    fr = _load(obj, "statements")
    if fr is None:
        return None
    _require(fr, ("ts_code", "ann_date", "end_date"))
    codes = _codes(fr, "ts_code")
    ann = _dates(fr, "ann_date")
    end = _dates(fr, "end_date")
    early = np.flatnonzero(ann < end)
    if early.size:
        r = int(early[0])
        raise fr.fail(
            r,
            "ann_date",
            f"announced {pd.Timestamp(ann[r]).date()} before its period end "
            f"{pd.Timestamp(end[r]).date()}",
        )
    keys = {"ts_code": codes, "end_date": end, "ann_date": ann}
    extra: dict[str, np.ndarray] = {"end_date": end}
    if "update_flag" in fr.df.columns:
        flag = _numeric(fr, "update_flag")
        bad = np.flatnonzero(~np.isin(flag, (0.0, 1.0)))
        if bad.size:
            r = int(bad[0])
            raise fr.fail(r, "update_flag", f"update_flag must be 0 or 1, got {float(flag[r])!r}")
        extra["update_flag"] = flag.astype(np.int8)
        keys["update_flag"] = flag
    _no_duplicates(fr, keys)
    values = {c: _numeric(fr, c) for c in schema.STATEMENT_ITEMS if c in fr.df.columns}
    return _Table(fr, ann, codes, values, extra)


def _parse_stock_basic(obj: FrameLike) -> pd.DataFrame | None:
    fr = _load(obj, "stock_basic")
    if fr is None:
        return None
    _require(fr, ("ts_code",))
    codes = _codes(fr, "ts_code")
    _no_duplicates(fr, {"ts_code": codes})
    out = pd.DataFrame({"ts_code": codes})
    out["name"] = (
        fr.df["name"]
        .astype(object)
        .where(~_text_missing(fr.df["name"]), "")
        .astype(str)
        .to_numpy(dtype=object)
        if "name" in fr.df.columns
        else np.full(len(codes), "", dtype=object)
    )
    for col in ("list_date", "delist_date"):
        out[col] = (
            _dates(fr, col, required=False) if col in fr.df.columns else np.datetime64("NaT", "ns")
        )
    both = np.flatnonzero(
        ~np.isnat(out["delist_date"].to_numpy())
        & (out["delist_date"] <= out["list_date"]).to_numpy()
    )
    if both.size:
        raise fr.fail(int(both[0]), "delist_date", "delisted on or before its list_date")
    if "industry" in fr.df.columns:
        ind = _numeric(fr, "industry")
        out["industry"] = np.nan_to_num(ind, nan=0.0).astype(schema.INDUSTRY_DTYPE)
    if "is_st" in fr.df.columns:
        out["is_st"] = np.nan_to_num(_numeric(fr, "is_st"), nan=0.0).astype(bool)
    else:
        out["is_st"] = (
            pd.Series(out["name"], dtype=object)
            .astype(str)
            .str.upper()
            .str.contains("ST")
            .to_numpy()
        )
    return out.set_index("ts_code")


# --------------------------------------------------------------------------------------------
# Dense layout


def _scatter(
    shape: tuple[int, ...],
    index: tuple[np.ndarray, ...],
    values: np.ndarray,
    fill: Any = np.nan,
    dtype: Any = np.float64,
) -> np.ndarray:
    out = np.full(shape, fill, dtype=dtype)
    out[index] = values
    return out


def _positions(labels: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """Positions of ``labels`` in ``universe`` (universe may be unsorted; all labels present)."""
    order = np.argsort(universe, kind="stable")
    pos = np.searchsorted(universe[order], labels)
    return order[pos]


@dataclass
class _Assets:
    """Per-asset coordinates, in store order."""

    codes: np.ndarray  # object
    name: np.ndarray  # object
    list_date: np.ndarray  # datetime64[ns]
    delist_date: np.ndarray  # datetime64[ns]

    @property
    def n(self) -> int:
        return len(self.codes)

    def listed(self, dates: np.ndarray) -> np.ndarray:
        """(date, asset) mask: listed on the date (list_date <= d < delist_date)."""
        d = dates[:, None]
        after = ~np.isnat(self.list_date)[None, :] & (d >= self.list_date[None, :])
        before = np.isnat(self.delist_date)[None, :] | (d < self.delist_date[None, :])
        return after & before


def _asset_codes(inp: _Inputs) -> np.ndarray:
    parts = [
        t.codes
        for t in (inp.daily, inp.adj_factor, inp.daily_basic, inp.stk_limit)
        if t is not None
    ]
    if inp.index_weight is not None:
        parts.append(inp.index_weight.codes)
    if inp.stock_basic is not None:
        parts.append(inp.stock_basic.index.to_numpy(dtype=object))
    if not parts:
        return np.array([], dtype=object)
    return np.unique(np.concatenate(parts).astype(str)).astype(object)


def _first_bar(inp: _Inputs, codes: np.ndarray) -> np.ndarray:
    """First bar date of each code in ``daily`` (NaT when it has none)."""
    out = np.full(len(codes), np.datetime64("NaT"), dtype="datetime64[ns]")
    if inp.daily is None or len(codes) == 0:
        return out
    s = pd.Series(inp.daily.dates).groupby(inp.daily.codes).min()
    got = s.reindex(codes)
    return got.to_numpy(dtype="datetime64[ns]")


def _new_assets(inp: _Inputs, codes: np.ndarray) -> _Assets:
    """Coordinates of ``codes`` from stock_basic, or from their first bar when absent."""
    name = np.full(len(codes), "", dtype=object)
    list_date = _first_bar(inp, codes)
    delist = np.full(len(codes), np.datetime64("NaT"), dtype="datetime64[ns]")
    if inp.stock_basic is not None and len(codes):
        sb = inp.stock_basic.reindex(codes)
        known = sb["name"].notna().to_numpy()
        name[known] = sb["name"].to_numpy(dtype=object)[known]
        ld = sb["list_date"].to_numpy(dtype="datetime64[ns]")
        list_date = np.where(np.isnat(ld), list_date, ld)
        delist = sb["delist_date"].to_numpy(dtype="datetime64[ns]")
    return _Assets(codes, name, list_date, delist)


def _calendar(inp: _Inputs) -> np.ndarray:
    primary = [
        t.dates
        for t in (
            inp.daily,
            inp.adj_factor,
            inp.daily_basic,
            inp.stk_limit,
            inp.index_daily,
            inp.index_weight,
        )
        if t is not None
    ]
    if not primary:
        primary = [t.dates for t in (inp.macro, inp.offshore) if t is not None]
    if not primary:
        return np.array([], dtype="datetime64[ns]")
    return np.unique(np.concatenate(primary)).astype("datetime64[ns]")


def _on_calendar(t: _Table, dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``t`` whose date is on ``dates`` and their date positions."""
    pos = np.searchsorted(dates, t.dates)
    pos_c = np.minimum(pos, max(len(dates) - 1, 0))
    keep = (
        (pos < len(dates)) & (dates[pos_c] == t.dates)
        if len(dates)
        else np.zeros(len(t.dates), bool)
    )
    return keep, pos_c


@dataclass
class _Carry:
    """Values of the store's last date that carry into appended dates."""

    is_st: np.ndarray | None = None  # (asset,) bool, store asset order (old assets)
    industry: np.ndarray | None = None  # (asset,) int32
    weight: np.ndarray | None = None  # (index, asset) float, NaN when none


def _daily_dataset(inp: _Inputs, dates: np.ndarray, assets: _Assets, carry: _Carry) -> xr.Dataset:
    T, A = len(dates), assets.n
    arrays: dict[str, np.ndarray] = {}
    for f in schema.DAILY_FLOAT_FIELDS:
        arrays[f] = np.full((T, A), np.nan)
    sources = [
        (inp.daily, (*_DAILY_REQUIRED[2:], *_DAILY_OPTIONAL)),
        (inp.adj_factor, ("adj_factor",)),
        (inp.daily_basic, _BASIC_FIELDS),
        (inp.stk_limit, _LIMIT_FIELDS),
    ]
    bar = np.zeros((T, A), dtype=bool)
    zero_vol = np.zeros((T, A), dtype=bool)
    for t, fields in sources:
        if t is None:
            continue
        keep, di = _on_calendar(t, dates)
        ai = _positions(t.codes[keep], assets.codes)
        di = di[keep]
        for f in fields:
            if f in t.values:
                arrays[f][di, ai] = t.values[f][keep]
        if t is inp.daily:
            bar[di, ai] = True
            with np.errstate(invalid="ignore"):
                zero_vol[di, ai] = t.values["vol"][keep] == 0
    # Vendor rows with zero volume are suspension placeholders (previous close repeated).
    for f in _DAILY_REQUIRED[2:]:
        arrays[f][zero_vol] = np.nan
    listed = assets.listed(dates)
    traded = bar & ~zero_vol
    suspended = listed & ~traded

    # is_st and industry: per-row columns, else stock_basic snapshot, else carried from store.
    n_old = 0 if carry.is_st is None else len(carry.is_st)
    is_st = np.zeros((T, A), dtype=bool)
    industry = np.zeros((T, A), dtype=schema.INDUSTRY_DTYPE)
    if n_old:
        is_st[:, :n_old] = carry.is_st[None, :]
        industry[:, :n_old] = carry.industry[None, :]
    if inp.stock_basic is not None:
        sb = inp.stock_basic.reindex(assets.codes)
        given = sb["is_st"].notna().to_numpy()
        st = sb["is_st"].fillna(False).to_numpy(dtype=bool)
        is_st[:, given] = st[given][None, :]
        if "industry" in sb.columns:
            gi = sb["industry"].notna().to_numpy()
            industry[:, gi] = sb["industry"].to_numpy()[gi].astype(schema.INDUSTRY_DTYPE)[None, :]
    if inp.daily is not None and inp.daily.extra:
        keep, di = _on_calendar(inp.daily, dates)
        ai = _positions(inp.daily.codes[keep], assets.codes)
        if "is_st" in inp.daily.extra:
            v = inp.daily.extra["is_st"][keep]
            ok = ~np.isnan(v)
            is_st[di[keep][ok], ai[ok]] = v[ok] != 0
        if "industry" in inp.daily.extra:
            v = inp.daily.extra["industry"][keep]
            ok = ~np.isnan(v)
            industry[di[keep][ok], ai[ok]] = v[ok].astype(schema.INDUSTRY_DTYPE)
    is_st &= listed
    industry[~listed] = 0

    data = {f: (("date", "asset"), arrays[f]) for f in schema.DAILY_FLOAT_FIELDS}
    data["suspended"] = (("date", "asset"), suspended)
    data["is_st"] = (("date", "asset"), is_st)
    data[schema.DAILY_INDUSTRY_FIELD] = (("date", "asset"), industry)
    return xr.Dataset(data, coords={"date": dates, **_asset_coords(assets)})


def _str_array(values: Iterable[Any]) -> np.ndarray:
    return np.array([str(v) for v in values], dtype=np.dtypes.StringDType())


def _asset_coords(assets: _Assets) -> dict[str, Any]:
    return {
        "asset": _str_array(assets.codes),
        "name": ("asset", _str_array(assets.name)),
        "exchange": ("asset", _str_array(exchange_of(assets.codes))),
        "board": ("asset", _str_array(board_of(assets.codes))),
        "list_date": ("asset", assets.list_date.astype("datetime64[ns]")),
        "delist_date": ("asset", assets.delist_date.astype("datetime64[ns]")),
    }


def _index_codes(inp: _Inputs) -> np.ndarray:
    parts = []
    if inp.index_daily is not None:
        parts.append(inp.index_daily.codes)
    if inp.index_weight is not None:
        parts.append(inp.index_weight.extra["index_code"])
    if not parts:
        return np.array([], dtype=object)
    return np.unique(np.concatenate(parts).astype(str)).astype(object)


def _index_dataset(
    inp: _Inputs, dates: np.ndarray, indices: np.ndarray, assets: _Assets, carry: _Carry
) -> xr.Dataset:
    T, n_idx, A = len(dates), len(indices), assets.n
    fields = {f: np.full((T, n_idx), np.nan) for f in schema.INDEX_FIELDS}
    t = inp.index_daily
    if t is not None and n_idx:
        keep, di = _on_calendar(t, dates)
        ii = _positions(t.codes[keep], indices)
        for f in schema.INDEX_FIELDS:
            if f in t.values:
                fields[f][di[keep], ii] = t.values[f][keep]
    # Weights: each (date, index) with rows is a snapshot (members get their weight, others 0);
    # later dates carry the latest snapshot forward (point in time); NaN before the first.
    weight = np.full((T + 1, n_idx, A), np.nan)
    snap = np.zeros((T + 1, n_idx), dtype=bool)
    snap[0] = True
    if carry.weight is not None:
        o_i, o_a = carry.weight.shape
        weight[0, :o_i, :o_a] = carry.weight
        weight[0, :o_i, o_a:] = np.where(
            np.isnan(carry.weight).all(axis=1, keepdims=True), np.nan, 0.0
        )
    w = inp.index_weight
    if w is not None and n_idx and T:
        keep, di = _on_calendar(w, dates)
        di = di[keep] + 1
        ii = _positions(w.extra["index_code"][keep], indices)
        ai = _positions(w.codes[keep], assets.codes)
        snap[di, ii] = True
        weight[di, ii, :] = 0.0
        weight[di, ii, ai] = w.values["weight"][keep]
        total = weight[1:].sum(axis=2, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            weight[1:] = np.where(snap[1:, :, None] & (total > 0), weight[1:] / total, weight[1:])
    src = np.where(snap, np.arange(T + 1)[:, None], 0)
    src = np.maximum.accumulate(src, axis=0)
    weight = weight[src, np.arange(n_idx)[None, :], :][1:]
    data = {f: (("date", "index"), v) for f, v in fields.items()}
    data[schema.INDEX_WEIGHT_FIELD] = (("date", "index", "asset"), weight)
    return xr.Dataset(
        data,
        coords={"date": dates, "index": _str_array(indices), "asset": _str_array(assets.codes)},
    )


def _fundamentals_dataset(inp: _Inputs, existing: pd.DataFrame | None = None) -> xr.Dataset:
    t = inp.statements
    n = 0 if t is None else len(t.dates)
    if t is None:
        asset = np.array([], dtype=object)
        ann = end = np.array([], dtype="datetime64[ns]")
        flag = np.array([], dtype=np.int8)
        items = {c: np.array([]) for c in schema.STATEMENT_ITEMS}
    else:
        order = np.lexsort((t.extra["end_date"], t.codes.astype(str), t.dates))
        asset = t.codes[order]
        ann = t.dates[order]
        end = t.extra["end_date"][order]
        if "update_flag" in t.extra:
            flag = t.extra["update_flag"][order]
        else:
            keys = pd.DataFrame({"a": asset, "e": end})
            flag = (keys.groupby(["a", "e"]).cumcount().to_numpy() > 0).astype(np.int8)
            if existing is not None and len(existing):
                seen = pd.MultiIndex.from_frame(existing[["asset", "end_date"]])
                flag |= pd.MultiIndex.from_arrays([asset, end]).isin(seen).astype(np.int8)
        items = {
            c: (t.values[c][order] if c in t.values else np.full(n, np.nan))
            for c in schema.STATEMENT_ITEMS
        }
    data: dict[str, Any] = {
        "asset": ("record", _str_array(asset)),
        "end_date": ("record", end.astype("datetime64[ns]")),
        "ann_date": ("record", ann.astype("datetime64[ns]")),
        "update_flag": ("record", flag.astype(np.int8)),
    }
    data.update({c: ("record", v.astype(np.float64)) for c, v in items.items()})
    return xr.Dataset(data)


def _series_dataset(t: _Table | None, dates: np.ndarray, fields: Iterable[str]) -> xr.Dataset:
    data = {}
    for f in fields:
        v = np.full(len(dates), np.nan)
        if t is not None and f in t.values:
            keep, di = _on_calendar(t, dates)
            v[di[keep]] = t.values[f][keep]
        data[f] = ("date", v)
    return xr.Dataset(data, coords={"date": dates})


# --------------------------------------------------------------------------------------------
# Writing a new store


def _encoding(node: str, ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    enc: dict[str, dict[str, Any]] = {}
    chunks_by_dim = {
        "date": schema.DATE_CHUNK,
        "asset": schema.ASSET_CHUNK,
        "index": _INDEX_CHUNK,
        "record": schema.RECORD_CHUNK,
    }
    for name, var in ds.variables.items():
        e: dict[str, Any] = {"chunks": tuple(chunks_by_dim[d] for d in var.dims)}
        if node == "index" and name == schema.INDEX_WEIGHT_FIELD:
            e["chunks"] = (schema.DATE_CHUNK, 1, schema.ASSET_CHUNK)
        if np.issubdtype(var.dtype, np.datetime64):
            e.update(units=_TIME_UNITS, calendar="proleptic_gregorian", dtype="int64")
        enc[str(name)] = e
    return enc


def _write_tree(path: Path, nodes: dict[str, xr.Dataset], attrs: dict[str, Any]) -> None:
    tree = xr.DataTree.from_dict(
        {"/": xr.Dataset(attrs=attrs), **{f"/{k}": v for k, v in nodes.items()}}
    )
    encoding = {f"/{node}": _encoding(node, ds) for node, ds in nodes.items()}
    with zarr_quiet():
        tree.to_zarr(str(path), mode="w", encoding=encoding, consolidated=True, zarr_format=3)


def ingest(
    path: str | os.PathLike[str],
    *,
    daily: FrameLike = None,
    daily_basic: FrameLike = None,
    stk_limit: FrameLike = None,
    index_daily: FrameLike = None,
    index_weight: FrameLike = None,
    statements: FrameLike = None,
    macro: FrameLike = None,
    offshore: FrameLike = None,
    stock_basic: FrameLike = None,
    adj_factor: FrameLike = None,
    overwrite: bool = False,
) -> Path:
    """Build a market store from long tables in tushare layout.

    Every input is a CSV (optionally compressed) or Parquet path, or a
    :class:`pandas.DataFrame`; dates may be ``YYYYMMDD`` integers/strings or ISO strings.

    Parameters
    ----------
    path : str or os.PathLike
        Local directory of the new zarr store.
    daily : path or DataFrame, optional
        ``ts_code, trade_date, open, high, low, close, pre_close, vol, amount`` and optionally
        ``adj_factor``, ``is_st`` (0/1) and ``industry`` (Shenwan L1 code) per row. Rows with
        ``vol == 0`` are the vendor's suspension placeholders: their bar fields are stored as
        missing and the cell is flagged ``suspended``.
    daily_basic : path or DataFrame, optional
        ``ts_code, trade_date`` and any of ``turnover_rate, float_share, total_share,
        total_mv, circ_mv, pe_ttm, pb, ps_ttm, dv_ttm``.
    stk_limit : path or DataFrame, optional
        ``ts_code, trade_date, up_limit, down_limit``.
    index_daily : path or DataFrame, optional
        ``ts_code`` (index code, ``.SH/.SZ/.CSI``), ``trade_date, close`` and any of ``open,
        high, low, pre_close, vol, amount, total_mv, float_mv, pe_ttm, pb, dv_ttm``.
    index_weight : path or DataFrame, optional
        ``index_code, con_code, trade_date, weight`` with ``weight`` in % (tushare). Each
        (index, date) present is a snapshot: stored as fractions renormalised to sum to 1,
        non-members 0, carried forward to later dates until the next snapshot, NaN before the
        first.
    statements : path or DataFrame, optional
        ``ts_code, ann_date, end_date``, optionally ``update_flag`` (0 first announcement, 1
        restatement; derived from announcement order when absent) and any statement items of
        :data:`quantdask.io.schema.STATEMENT_ITEMS` (others are ignored).
    macro : path or DataFrame, optional
        ``trade_date`` and ``cgb_10y`` (or ``yield_pct``), in %.
    offshore : path or DataFrame, optional
        ``trade_date`` and any of ``a50_spot, a50_fut, a50_etf, hkd_cny``.
    stock_basic : path or DataFrame, optional
        ``ts_code`` and optionally ``name, list_date, delist_date, industry, is_st``. ``is_st``
        defaults to ``'ST' in name`` (a snapshot applied to every listed date). Without it an
        asset is listed from its first ``daily`` row and never delisted.
    adj_factor : path or DataFrame, optional
        ``ts_code, trade_date, adj_factor`` (tushare's separate adj_factor table).
    overwrite : bool, default False
        Replace an existing store at ``path``.

    Returns
    -------
    pathlib.Path
        The store path.

    Raises
    ------
    IngestError
        Bad input, naming the file (or ``DataFrame <keyword>``), row and field: missing
        columns, duplicate keys, unparseable dates, non-numeric text in numeric columns,
        non-positive prices, ``high < low``, unknown code formats, an announcement before its
        period end.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.

    Notes
    -----
    The calendar is the union of trade dates of ``daily``, ``adj_factor``, ``daily_basic``,
    ``stk_limit``, ``index_daily`` and ``index_weight`` (of ``macro``/``offshore`` when none of
    those is given); ``macro`` and ``offshore`` values on other dates are dropped. Assets are
    all stock codes of the inputs, sorted. Every date-dimensioned node shares the calendar.

    The store is written into a temporary sibling directory and renamed into place at the
    end, so a failed ingest leaves nothing behind. An explicit I/O point, not lazy: the inputs
    are read into memory, and the dense fields are built and written one ``DATE_CHUNK`` block
    of dates (all assets) at a time. For the whole market history, ingest the first years and
    :func:`append` the rest a year at a time to keep the input frames small.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    inp = _parse_inputs(
        dict(
            daily=daily,
            daily_basic=daily_basic,
            stk_limit=stk_limit,
            index_daily=index_daily,
            index_weight=index_weight,
            statements=statements,
            macro=macro,
            offshore=offshore,
            stock_basic=stock_basic,
            adj_factor=adj_factor,
        )
    )
    dates = _calendar(inp)
    if not len(dates):
        raise IngestError("ingest: no dated input (give at least daily, index_daily or macro)")
    codes = _asset_codes(inp)
    assets = _new_assets(inp, codes)
    carry = _Carry()
    indices = _index_codes(inp)
    # One date block (DATE_CHUNK dates, all assets) in memory at a time: the first block makes
    # the store, later blocks extend it like an append (without a journal: the store is
    # still a temporary directory). Index weights carry across blocks; nothing else does.
    block = schema.DATE_CHUNK
    first = dates[:block]
    nodes = {
        "daily": _daily_dataset(inp, first, assets, carry),
        "index": _index_dataset(inp, first, indices, assets, carry),
        "fundamentals": _fundamentals_dataset(inp),
        "macro": _series_dataset(inp.macro, first, schema.MACRO_FIELDS),
        "offshore": _series_dataset(inp.offshore, first, schema.OFFSHORE_FIELDS),
    }
    with atomic_directory(path, purpose="ingest") as tmp:
        _write_tree(tmp, nodes, {"quantdask_store": "market", "generator": "quantdask.ingest"})
        del nodes
        for start in range(block, len(dates), block):
            part = dates[start : start + block]
            state = _read_store_state(tmp)
            carry = _Carry(weight=state["carry"].weight)
            more = {
                "daily": _daily_dataset(inp, part, assets, carry),
                "index": _index_dataset(inp, part, indices, assets, carry),
                "macro": _series_dataset(inp.macro, part, schema.MACRO_FIELDS),
                "offshore": _series_dataset(inp.offshore, part, schema.OFFSHORE_FIELDS),
            }
            _apply(tmp, state["tree"], more, n_dates_old=start, journal=False)
    return path


# --------------------------------------------------------------------------------------------
# Appending


def _write_hook(step: str) -> None:
    """Called between array writes of :func:`append` (tests patch it to interrupt an append)."""


@dataclass
class _Write:
    """One region write into one stored array."""

    array: str  # store-relative array path, e.g. "daily/close"
    region: tuple[slice, ...]
    values: Any  # decoded values (encoded at write time) or None for the fill value


def _chunk_keys(arr: zarr.Array, region: tuple[slice, ...]) -> Iterable[tuple[int, ...]]:
    chunks = arr.metadata.chunk_grid.chunk_shape
    ranges = []
    for sl, c in zip(region, chunks, strict=True):
        if sl.stop <= sl.start:
            return []
        ranges.append(range(sl.start // c, (sl.stop - 1) // c + 1))
    return itertools.product(*ranges)


def _read_store_state(path: Path) -> dict[str, Any]:
    """The small parts of a store that append needs: coords, last rows, record keys."""
    with zarr_quiet():
        tree = xr.open_datatree(str(path), engine="zarr", chunks={})
    daily = tree["daily"].to_dataset()
    state: dict[str, Any] = {"tree": tree}
    dates = daily["date"].values.astype("datetime64[ns]")
    state["dates"] = dates
    codes = np.asarray(daily["asset"].values).astype(object)
    state["assets"] = _Assets(
        codes,
        np.asarray(daily["name"].values).astype(object)
        if "name" in daily.coords
        else np.full(len(codes), "", dtype=object),
        daily["list_date"].values.astype("datetime64[ns]"),
        daily["delist_date"].values.astype("datetime64[ns]"),
    )
    last = daily.isel(date=-1) if len(dates) else None
    state["carry"] = _Carry(
        is_st=np.asarray(last["is_st"].values, dtype=bool)
        if last is not None
        else np.zeros(len(codes), bool),
        industry=np.asarray(last["industry"].values).astype(schema.INDUSTRY_DTYPE)
        if last is not None
        else np.zeros(len(codes), schema.INDUSTRY_DTYPE),
    )
    if "index" in tree.children:
        idx = tree["index"].to_dataset()
        state["indices"] = (
            np.asarray(idx["index"].values).astype(object)
            if "index" in idx.dims
            else np.array([], dtype=object)
        )
        if schema.INDEX_WEIGHT_FIELD in idx and len(dates):
            w = idx[schema.INDEX_WEIGHT_FIELD].isel(date=-1).transpose("index", "asset")
            state["carry"].weight = np.asarray(w.values, dtype=np.float64)
    else:
        state["indices"] = np.array([], dtype=object)
    if "fundamentals" in tree.children:
        f = tree["fundamentals"].to_dataset()
        if "asset" in f and "end_date" in f:
            state["records"] = pd.DataFrame(
                {
                    "asset": np.asarray(f["asset"].values).astype(object),
                    "end_date": f["end_date"].values,
                }
            )
    return state


def append(
    path: str | os.PathLike[str],
    *,
    daily: FrameLike = None,
    daily_basic: FrameLike = None,
    stk_limit: FrameLike = None,
    index_daily: FrameLike = None,
    index_weight: FrameLike = None,
    statements: FrameLike = None,
    macro: FrameLike = None,
    offshore: FrameLike = None,
    stock_basic: FrameLike = None,
    adj_factor: FrameLike = None,
) -> Path:
    """Append later dates (the daily update), new assets and new statements to a store.

    Parameters
    ----------
    path : str or os.PathLike
        Local directory of an existing store (made by :func:`ingest` or
        :func:`quantdask.synthetic_market`).
    daily, daily_basic, stk_limit, index_daily, index_weight, statements, macro, offshore, stock_basic, adj_factor : path or DataFrame, optional
        As for :func:`ingest`. Every trade date must be after the store's last date.
        ``stock_basic`` supplies names and list dates of new assets (IPOs) and updates names
        and delist dates of known ones; ``is_st`` and ``industry`` carry forward from the
        store's last date unless given.

    Returns
    -------
    pathlib.Path
        The store path.

    Raises
    ------
    IngestError
        Bad input (as :func:`ingest`), or a date not after the store's last date.
    StoreError
        The store is missing or was left mid-write by an interrupted append.

    Notes
    -----
    History is not rewritten: only chunks holding new cells are written (the last date block
    of every ``(date, ...)`` array and, when new assets arrive, the last asset-column chunks),
    plus the small 1-D asset and index coordinates and the metadata. New assets are added
    after the existing ones (the asset order is not sorted after an append), missing before
    their listing. Before writing, every file the append may touch is saved in an undo
    journal (``<store>/.quantdask-journal``); it is deleted after success. If the process
    dies mid-append, :func:`quantdask.open_market` refuses the store and
    ``qd.verify(path, repair=True)`` restores it exactly as it was.
    """
    path = Path(path)
    _check_not_mid_write(path)
    if not (path / "daily").is_dir():
        raise StoreError(f"no market store at {path}")
    inp = _parse_inputs(
        dict(
            daily=daily,
            daily_basic=daily_basic,
            stk_limit=stk_limit,
            index_daily=index_daily,
            index_weight=index_weight,
            statements=statements,
            macro=macro,
            offshore=offshore,
            stock_basic=stock_basic,
            adj_factor=adj_factor,
        )
    )
    state = _read_store_state(path)
    old_dates: np.ndarray = state["dates"]
    old_assets: _Assets = state["assets"]
    last = old_dates[-1] if len(old_dates) else None
    if last is not None:
        for t in inp.dated():
            early = np.flatnonzero(t.dates <= last)
            if early.size:
                r = int(early[0])
                raise t.frame.fail(
                    r,
                    "trade_date",
                    f"{pd.Timestamp(t.dates[r]).date()} is not after the store's last date "
                    f"{pd.Timestamp(last).date()} (append only adds later dates)",
                )
    new_dates = _calendar(inp)
    codes = _asset_codes(inp)
    fresh = codes[~np.isin(codes, old_assets.codes)]
    fresh_assets = _new_assets(inp, fresh)
    assets = _Assets(
        np.concatenate([old_assets.codes, fresh_assets.codes]),
        np.concatenate([old_assets.name, fresh_assets.name]),
        np.concatenate([old_assets.list_date, fresh_assets.list_date]),
        np.concatenate([old_assets.delist_date, fresh_assets.delist_date]),
    )
    if inp.stock_basic is not None and old_assets.n:
        sb = inp.stock_basic.reindex(old_assets.codes)
        known = sb["name"].notna().to_numpy()
        assets.name[: old_assets.n][known] = sb["name"].to_numpy(dtype=object)[known]
        dl = sb["delist_date"].to_numpy(dtype="datetime64[ns]")
        has = ~np.isnat(dl)
        assets.delist_date[: old_assets.n][has] = dl[has]
    # Known assets that had no bar yet (e.g. index constituents) list at their first bar.
    unlisted = np.isnat(assets.list_date[: old_assets.n])
    if unlisted.any():
        first = _first_bar(inp, old_assets.codes)
        assets.list_date[: old_assets.n][unlisted] = first[unlisted]
    old_idx: np.ndarray = state["indices"]
    idx_codes = _index_codes(inp)
    indices = np.concatenate([old_idx, idx_codes[~np.isin(idx_codes, old_idx)]]).astype(object)
    carry: _Carry = state["carry"]
    new_nodes = {
        "daily": _daily_dataset(inp, new_dates, assets, carry),
        "index": _index_dataset(inp, new_dates, indices, assets, carry),
        "fundamentals": _fundamentals_dataset(inp, state.get("records")),
        "macro": _series_dataset(inp.macro, new_dates, schema.MACRO_FIELDS),
        "offshore": _series_dataset(inp.offshore, new_dates, schema.OFFSHORE_FIELDS),
    }
    if not len(new_dates) and inp.statements is None and not len(fresh) and inp.stock_basic is None:
        return path
    _apply(path, state["tree"], new_nodes, n_dates_old=len(old_dates))
    return path


def _apply(
    path: Path,
    tree: xr.DataTree,
    new_nodes: dict[str, xr.Dataset],
    *,
    n_dates_old: int,
    journal: bool = True,
) -> None:
    """Plan the region writes, journal the files they touch, write, consolidate, commit."""
    with zarr_quiet():
        group = zarr.open_group(str(path), mode="r+", zarr_format=3)
        plan: list[tuple[zarr.Array, tuple[int, ...], list[_Write]]] = []
        for node in tree.children:
            if node not in new_nodes or node not in group:
                continue
            new = new_nodes[node]
            stored = tree[node].to_dataset()
            for name in stored.variables:
                arr = group[f"{node}/{name}"]
                dims = tuple(arr.metadata.dimension_names or ())
                old_shape = tuple(arr.shape)
                new_shape = _grown_shape(dims, old_shape, new, n_dates_old)
                writes = _region_writes(
                    f"{node}/{name}", dims, old_shape, new_shape, new, name, n_dates_old
                )
                if node == "index" and name == schema.INDEX_WEIGHT_FIELD:
                    _weights_of_new_labels(writes, stored[name], dims, new_shape, n_dates_old)
                _check_string_width(arr, f"{node}/{name}", writes)
                if writes or new_shape != old_shape:
                    plan.append((arr, new_shape, writes))
        if not plan:
            return
        touched = {p for p in _journal.list_store_files(path) if p.endswith("zarr.json")}
        for arr, _, writes in plan:
            for w in writes:
                for key in _chunk_keys(arr, w.region):
                    touched.add(f"{w.array}/{arr.metadata.encode_chunk_key(key)}")
        if journal:
            _journal.begin(path, touched)
        for arr, new_shape, writes in plan:
            if tuple(arr.shape) != new_shape:
                arr.resize(new_shape)
            for w in writes:
                arr[w.region] = _encode(tree, w, arr)
                _write_hook(w.array)
        with warnings.catch_warnings():
            # The journal directory sits in the store while it is consolidated.
            warnings.filterwarnings("ignore", message=".*not recognized as a component.*")
            zarr.consolidate_metadata(str(path))
    if journal:
        _journal.commit(path)


def _weights_of_new_labels(
    writes: list[_Write],
    stored: xr.DataArray,
    dims: tuple[str, ...],
    new_shape: tuple[int, ...],
    n_dates_old: int,
) -> None:
    """Old dates x new assets of ``weight``: 0 (non-member) where the index existed, else NaN.

    Whether an index existed on a date is read from the first stored asset column only (every
    asset holds a weight or 0 on such dates), a small read of one chunk column.
    """
    if dims != ("date", "index", "asset"):
        return
    n_idx_old = stored.sizes["index"]
    exists = np.zeros((n_dates_old, new_shape[1]), dtype=bool)
    if stored.sizes["asset"] and n_idx_old and n_dates_old:
        exists[:, :n_idx_old] = ~np.isnan(np.asarray(stored.isel(asset=0).values))
    for w in writes:
        if w.values is not None or w.region[0].stop > n_dates_old:
            continue
        sub = exists[w.region[0], w.region[1]]
        shape = tuple(r.stop - r.start for r in w.region)
        w.values = np.broadcast_to(np.where(sub, 0.0, np.nan)[:, :, None], shape)


def _check_string_width(arr: zarr.Array, array: str, writes: list[_Write]) -> None:
    """Refuse (before anything is written) strings longer than a fixed-width store array."""
    if arr.dtype.kind != "U":
        return
    width = arr.dtype.itemsize // 4
    for w in writes:
        if w.values is None:
            continue
        lengths = np.char.str_len(np.asarray(w.values).astype(object).astype(str))
        if lengths.size and lengths.max() > width:
            long = np.asarray(w.values).ravel()[int(np.argmax(lengths))]
            raise IngestError(
                f"{array}: the store keeps fixed-width strings of {width} characters and "
                f"{long!r} is longer; rebuild the store with ingest to widen it"
            )


def _grown_shape(
    dims: tuple[str, ...], old_shape: tuple[int, ...], new: xr.Dataset, n_dates_old: int
) -> tuple[int, ...]:
    out = []
    for d, n in zip(dims, old_shape, strict=True):
        if d == "date":
            out.append(n_dates_old + new.sizes.get("date", 0))
        elif d == "record":
            out.append(n + new.sizes.get("record", 0))
        elif d in new.sizes:
            out.append(max(n, new.sizes[d]))
        else:
            out.append(n)
    return tuple(out)


def _region_writes(
    array: str,
    dims: tuple[str, ...],
    old_shape: tuple[int, ...],
    new_shape: tuple[int, ...],
    new: xr.Dataset,
    name: str,
    n_dates_old: int,
) -> list[_Write]:
    """The disjoint regions of new cells: new dates/records with data, old dates x new labels filled."""
    var = new.variables.get(name)
    writes: list[_Write] = []
    full = [slice(0, n) for n in new_shape]
    if len(dims) == 1 and dims[0] not in ("date", "record"):
        # Small 1-D label coordinates (asset, name, list_date, index, ...): rewritten whole,
        # so name and delist-date updates of known assets land too.
        if var is not None and var.dims == dims and var.shape == new_shape:
            return [_Write(array, (full[0],), var.values)]
        if new_shape != old_shape:
            return [_Write(array, (slice(old_shape[0], new_shape[0]),), None)]
        return []
    growth_dims = [d for d in ("date", "record") if d in dims]
    done: set[int] = set()
    for gd in growth_dims:
        k = dims.index(gd)
        if new_shape[k] == old_shape[k]:
            continue
        region = list(full)
        region[k] = slice(old_shape[k], new_shape[k])
        values = None
        if var is not None and set(var.dims) == set(dims):
            values = var.transpose(*dims).values
            sel = tuple(slice(0, s.stop - s.start) if j == k else s for j, s in enumerate(region))
            values = values[sel]
        writes.append(_Write(array, tuple(region), values))
        done.add(k)
    for k in range(len(dims)):
        if k in done or new_shape[k] == old_shape[k]:
            continue
        region = [
            slice(0, old_shape[j]) if (j in done or j < k) else full[j] for j in range(len(dims))
        ]
        region[k] = slice(old_shape[k], new_shape[k])
        writes.append(_Write(array, tuple(region), None))
        done.add(k)
    return writes


def _encode(tree: xr.DataTree, w: _Write, arr: zarr.Array) -> np.ndarray:
    shape = tuple(s.stop - s.start for s in w.region)
    if w.values is None:
        return np.full(shape, arr.fill_value, dtype=arr.dtype)
    node, name = w.array.split("/", 1)
    stored = tree[node].to_dataset().variables[name]
    enc = {
        k: v
        for k, v in stored.encoding.items()
        if k in ("units", "calendar", "dtype", "_FillValue", "scale_factor", "add_offset")
    }
    values = np.asarray(w.values)
    if np.issubdtype(values.dtype, np.datetime64):
        values = values.astype("datetime64[ns]")
    encoded = xr.conventions.encode_cf_variable(
        xr.Variable(stored.dims, values, encoding=enc), name=name
    )
    raw = np.asarray(encoded.values)
    if raw.dtype.kind in "OTU" or arr.dtype.kind in "OTU":
        return raw.astype(arr.dtype) if raw.dtype != arr.dtype else raw
    return raw.astype(arr.dtype, copy=False)
