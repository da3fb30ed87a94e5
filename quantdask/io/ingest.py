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

import dataclasses
import itertools
import os
import warnings
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from quantdask.io import _journal, schema, vendor
from quantdask.io.calendar import XSHG_FIRST, XSHG_LAST, session_status, trading_calendar
from quantdask.io.errors import IngestError, IngestWarning
from quantdask.io.store import StoreError, _check_not_mid_write, atomic_directory, zarr_quiet
from quantdask.kernels import limits

FrameLike = str | os.PathLike[str] | pd.DataFrame | None

__all__ = ["IngestError", "IngestWarning", "append", "ingest"]


# --------------------------------------------------------------------------------------------
# Column specifications of the accepted inputs

_PRICE_FIELDS = ("open", "high", "low", "close", "pre_close")
_DAILY_REQUIRED = schema.DAILY_BAR_COLUMNS
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


@dataclass
class _FilesFrame(_Frame):
    """A frame read by :mod:`quantdask.io.vendor`: a row is named by its file and line."""

    origin: Any = None

    def where(self, row: int, field: str) -> str:
        return f"{self.origin.locate(row)}, field {field!r}"


def _load(
    obj: FrameLike | _Frame,
    keyword: str,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
) -> _Frame | None:
    """Read one input. Directories, globs and lists of per-stock files, and any stock table
    given with ``columns``/``units``, are read by :func:`quantdask.io.vendor.read_table`."""
    if obj is None:
        return None
    if isinstance(obj, _Frame):
        return obj

    if vendor.is_file_set(obj) or columns or units:
        if keyword not in vendor.REQUIRED:
            raise IngestError(
                f"{keyword}: directories, globs and lists of files (and columns=/units=) are "
                f"read for {', '.join(vendor.REQUIRED)}; give {keyword} as one file or a "
                "DataFrame in tushare layout"
            )
        df, origin = vendor.read_table(obj, keyword, columns=columns, units=units)
        return _FilesFrame(keyword, origin.label, origin.csv, df, origin)
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
        f"{keyword} must be a CSV/Parquet path or a pandas DataFrame (or, for stock tables, a "
        f"directory, glob or list of such files), got {type(obj).__name__}"
    )


def _vendor_inputs(
    kw: dict[str, Any], columns: Mapping[str, str] | None, units: Mapping[str, str] | None
) -> dict[str, Any]:
    """Read the stock tables with ``columns``/``units`` (the other inputs are left as given)."""
    if not columns and not units:
        return kw

    return {
        k: _load(v, k, columns=columns, units=units) if k in vendor.REQUIRED else v
        for k, v in kw.items()
    }


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
    if s.dtype == np.dtype("datetime64[ns]"):  # as read_table gives them: used as they are
        values = s.to_numpy()
        missing = np.isnat(values)
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
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


def _codes(
    fr: _Frame, col: str, *, index: bool = False, inverse: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Validated, stripped codes of a column (and, with ``inverse``, their int codes)."""
    s = fr.df[col]
    inv, uniq = pd.factorize(s, use_na_sentinel=True)
    u = pd.Series(np.asarray(uniq, dtype=object), dtype=object)
    u_missing = _text_missing(u) if len(u) else np.zeros(0, dtype=bool)
    if not len(u) or u_missing.any() or (inv < 0).any():  # else no row is missing
        safe = np.where(inv >= 0, inv, 0)
        missing = (inv < 0) | (u_missing[safe] if len(u) else True)
        if np.any(missing):
            r = int(np.flatnonzero(missing)[0])
            raise fr.fail(r, col, "code is missing")
    text = u.astype(str).str.strip()
    pattern = schema.INDEX_CODE if index else schema.STOCK_CODE
    ok = text.str.fullmatch(pattern.pattern).fillna(False).to_numpy(dtype=bool)
    if not ok.all():
        r = int(np.flatnonzero(~ok[inv])[0])
        kind = (
            "an index code (6 digits + .SH/.SZ/.CSI)"
            if index
            else "a stock code of a known board (600/601/603/605/688/689 .SH, "
            "000/001/002/003/300/301 .SZ, 43/83/87/920 .BJ)"
        )
        raise fr.fail(r, col, f"unknown code format {s.iloc[r]!r}: expected {kind}")
    out = text.to_numpy(dtype=object)[inv]
    if not inverse:
        return out
    # Codes equal after stripping share one int code.
    t_inv, t_uniq = pd.factorize(text.to_numpy(dtype=object))
    if len(t_uniq) < len(t_inv):
        inv = t_inv[inv]
    return out, inv, np.asarray(t_uniq, dtype=object)


def _key_ranks(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """Order-preserving int64 ranks of one key column (equal values, equal ranks)."""
    if isinstance(arr, pd.Categorical | pd.Series) and isinstance(
        getattr(arr, "dtype", None), pd.CategoricalDtype
    ):
        cat = pd.Categorical(arr)
        return cat.codes.astype(np.int64), max(len(cat.categories), 1)
    if arr.dtype.kind == "M":
        arr = arr.view(np.int64)
    inv, uniq = pd.factorize(arr, use_na_sentinel=False)
    if len(uniq) and arr.dtype.kind in "iuf":
        # Rank the distinct values so sorted input gives a sorted key (the fast path below).
        order = np.argsort(np.asarray(uniq), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order), dtype=np.int64)
        inv = rank[inv]
    return inv.astype(np.int64, copy=False), max(len(uniq), 1)


#: Rows per block of the allocation-free checks over per-row arrays (small temporaries,
#: reused by the allocator, instead of several arrays as long as the table).
_ROW_BLOCK = 1 << 20


def _strictly_increasing(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether the rows' ``(first, second)`` pairs increase strictly (lexicographically)."""
    n = len(first)
    for lo in range(0, max(n - 1, 0), _ROW_BLOCK):
        hi = min(lo + _ROW_BLOCK + 1, n)
        a, b = first[lo:hi], second[lo:hi]
        up = a[1:] > a[:-1]
        same = a[1:] == a[:-1]
        if not (up | (same & (b[1:] > b[:-1]))).all():
            return False
    return True


def _no_duplicates(
    fr: _Frame, keys: dict[str, np.ndarray], ranks: Mapping[str, np.ndarray] | None = None
) -> None:
    """Raise on the first repeated key; ``ranks`` gives integer codes of some key columns."""
    n = len(next(iter(keys.values())))
    if ranks is not None and len(keys) == 2 and n > 1:
        (k1, a1), (_, a2) = keys.items()
        if k1 in ranks and np.asarray(a2).dtype.kind == "M":
            # Sorted, distinct keys (per-stock files sorted by date) pass without building
            # the combined key below: the integer codes order the rows exactly as it does.
            if _strictly_increasing(np.asarray(ranks[k1]), np.asarray(a2).view(np.int64)):
                return
    combined = np.zeros(n, dtype=np.int64)
    width = 1
    for name, arr in keys.items():
        if ranks is not None and name in ranks:
            codes = np.asarray(ranks[name], dtype=np.int64)
            size = int(codes.max()) + 1 if n else 1
        else:
            codes, size = _key_ranks(arr)
        if width * size >= 2**62:  # re-number the combined key so far
            combined, uniq = pd.factorize(combined)
            width = max(len(uniq), 1)
        combined *= size
        combined += codes
        width *= size
    if n < 2:
        return
    step = np.diff(combined)
    if (step > 0).all():  # sorted, distinct keys (per-stock files sorted by date)
        return
    del step
    srt = np.sort(combined)
    if not (srt[1:] == srt[:-1]).any():
        return
    del srt
    dup = pd.Series(combined).duplicated(keep="first").to_numpy()
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
    dates: np.ndarray  # datetime64[ns] (None in the grouped write, where ``pos`` has them)
    codes: np.ndarray | None  # object (ts_code), None for macro/offshore
    values: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    # Integer codes of ``codes`` (per row, into ``uniq``, the distinct codes; ``uniq`` may
    # hold codes no row has any more after rows were dropped), so per-code steps need not
    # hash strings.
    ids: np.ndarray | None = None
    uniq: np.ndarray | None = None
    # Per-row (store date position, asset position within the asset group): set by the
    # grouped write, so a date block finds its rows without searching dates and codes.
    pos: tuple[np.ndarray, np.ndarray] | None = None
    # With ``pos``: the rows of each date block (by its first date position) as one slice,
    # when the rows are ordered by date block (the grouped write orders them so).
    spans: dict[int, slice] | None = None


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
    codes, inv, uniq = _codes(fr, "ts_code", index=index, inverse=True)
    dates = _dates(fr, "trade_date")
    ids = inv.astype(np.int32 if len(uniq) < 2**31 else np.int64)
    del inv
    _no_duplicates(fr, {"ts_code": codes, "trade_date": dates}, {"ts_code": ids})
    fields = [
        c
        for c in (*required, *optional)
        if c not in ("ts_code", "trade_date") and c in fr.df.columns
    ]
    values = {c: _numeric(fr, c) for c in fields}
    _positive(fr, values, positive)
    _nonnegative(fr, values, _NONNEG_FIELDS)
    _high_low(fr, values)
    return _Table(fr, dates, codes, values, ids=ids, uniq=uniq)


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
        # A per-row short name: ST by day (1.0 / 0.0, NaN where the name is missing).
        df = inp.daily.frame.df
        if "name" in df.columns:
            inp.daily.extra["st_name"] = _st_from_names(df["name"])
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
        st = _numeric(fr, "is_st")
        out["is_st"] = np.nan_to_num(st, nan=0.0).astype(bool)
        out["is_st_given"] = ~np.isnan(st)
    # else: ST from the name (ST / *ST prefix), applied to the asset's stored name
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
    inferred: np.ndarray | None = None  # bool: delist_date inferred from stale bars
    # The stock_basic snapshot (kept in the store, so appends without stock_basic use it):
    basic_industry: np.ndarray | None = None  # int32, 0 = none
    basic_is_st: np.ndarray | None = None  # bool: explicit is_st, else an ST name

    def __post_init__(self) -> None:
        # Own writable copies (pandas hands out read-only views).
        n = len(self.codes)
        self.name = np.array(self.name, dtype=object)
        self.list_date = np.array(self.list_date, dtype="datetime64[ns]")
        self.delist_date = np.array(self.delist_date, dtype="datetime64[ns]")
        if self.inferred is None:
            self.inferred = np.zeros(n, dtype=bool)
        self.inferred = np.array(self.inferred, dtype=bool)
        if self.basic_industry is None:
            self.basic_industry = np.zeros(n, dtype=schema.INDUSTRY_DTYPE)
        self.basic_industry = np.array(self.basic_industry, dtype=schema.INDUSTRY_DTYPE)
        if self.basic_is_st is None:
            self.basic_is_st = _st_from_names(self.name) == 1.0
        self.basic_is_st = np.array(self.basic_is_st, dtype=bool)

    def update_basic(self, sb: pd.DataFrame | None, at: slice) -> None:
        """Take names, delist dates and the snapshot of the assets at ``at`` from stock_basic."""
        if sb is None or not self.n:
            return
        s = sb.reindex(self.codes[at])
        known = s["name"].notna().to_numpy()
        self.name[at][known] = s["name"].to_numpy(dtype=object)[known]
        if "industry" in s.columns:
            gi = known & s["industry"].notna().to_numpy()
            self.basic_industry[at][gi] = s["industry"].to_numpy()[gi].astype(schema.INDUSTRY_DTYPE)
        st = _st_from_names(self.name[at]) == 1.0
        if "is_st_given" in s.columns:
            given = s["is_st_given"].fillna(False).to_numpy(dtype=bool)
            st[given] = s["is_st"].to_numpy()[given].astype(bool)
        self.basic_is_st[at][known] = st[known]

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
    parts: list[Any] = [
        t for t in (inp.daily, inp.adj_factor, inp.daily_basic, inp.stk_limit) if t is not None
    ]
    if inp.index_weight is not None:
        parts.append(inp.index_weight.codes)
    if inp.stock_basic is not None:
        parts.append(inp.stock_basic.index.to_numpy(dtype=object))
    if not parts:
        return np.array([], dtype=object)
    # Distinct codes by hashing first (long tables repeat each code), then sorted; a table
    # with integer codes gives the distinct codes its rows still have.
    distinct = [
        t.uniq[_present(t.ids, len(t.uniq))]
        if getattr(t, "ids", None) is not None and len(t.ids)
        else pd.unique(np.asarray(getattr(t, "codes", t), dtype=object))
        for t in parts
    ]
    return np.unique(np.concatenate(distinct).astype(str)).astype(object)


def _present(ids: np.ndarray, n: int) -> np.ndarray:
    """Which of ``n`` integer codes occur in ``ids`` (no int64 copy of the rows' codes)."""
    out = np.zeros(n, dtype=bool)
    out[ids] = True
    return out


def _per_code(
    t: _Table, codes: np.ndarray, dates: np.ndarray, op: np.ufunc, mask: np.ndarray | None
) -> np.ndarray:
    """``op`` (``np.minimum``/``np.maximum``) of ``dates`` over the rows of each of ``codes``
    where ``mask`` (None: every row), by the table's integer codes (NaT for a code without
    such rows)."""
    nat = np.datetime64("NaT", "ns").astype(np.int64)
    empty = np.iinfo(np.int64).max if op is np.minimum else nat
    acc = np.full(len(t.uniq), empty, dtype=np.int64)
    values = np.asarray(dates, dtype="datetime64[ns]").view(np.int64)
    if mask is None:
        op.at(acc, t.ids, values)
    else:
        op.at(acc, t.ids[mask], values[mask])
    acc[acc == np.iinfo(np.int64).max] = nat
    where = pd.Index(t.uniq).get_indexer(codes)
    out = np.where(where >= 0, acc[np.maximum(where, 0)], nat)
    return out.view("datetime64[ns]")


def _first_bar(inp: _Inputs, codes: np.ndarray) -> np.ndarray:
    """First bar date of each code in ``daily`` (NaT when it has none)."""
    out = np.full(len(codes), np.datetime64("NaT"), dtype="datetime64[ns]")
    if inp.daily is None or len(codes) == 0:
        return out
    d = inp.daily
    if d.ids is not None:
        return _per_code(d, codes, d.dates, np.minimum, None)
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
        ld = sb["list_date"].to_numpy(dtype="datetime64[ns]")
        list_date = np.where(np.isnat(ld), list_date, ld)
        delist = sb["delist_date"].to_numpy(dtype="datetime64[ns]")
    assets = _Assets(codes, name, list_date, delist)
    assets.update_basic(inp.stock_basic, slice(None))
    return assets


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
    return _distinct_dates(primary)


def _distinct_dates(parts: list[np.ndarray]) -> np.ndarray:
    """Sorted distinct dates of ``parts`` (hashed first: long tables repeat each date)."""
    distinct = [pd.unique(np.asarray(p, dtype="datetime64[ns]")) for p in parts]
    return np.unique(np.concatenate(distinct)).astype("datetime64[ns]")


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
    """Per-asset state at the end of the dates written so far (a store, or earlier blocks).

    The same state is read from a store by :func:`append` and handed from one date block to
    the next by :func:`ingest`, so splitting the inputs by date never changes a value.
    ``known`` marks assets listed on some earlier date: their ``is_st``/``industry`` (and a
    vendor ``adj_factor``) are the values of their last listed cell. ``last_close`` is the
    close of the last traded bar (the base of the next ``pre_close`` step).
    """

    known: np.ndarray | None = None  # (asset,) bool, store asset order (old assets)
    is_st: np.ndarray | None = None  # (asset,) bool
    industry: np.ndarray | None = None  # (asset,) int32
    adj: np.ndarray | None = None  # (asset,) float, NaN when none yet
    last_close: np.ndarray | None = None  # (asset,) float, NaN when no traded bar yet
    weight: np.ndarray | None = None  # (index, asset) float, NaN when none

    def widen(self, n: int) -> _Carry:
        """The state for ``n`` assets: the known ones first, new assets unknown."""
        m = 0 if self.known is None else len(self.known)

        def grow(a: np.ndarray | None, fill: Any, dtype: Any) -> np.ndarray:
            out = np.full(n, fill, dtype=dtype)
            if a is not None and m:
                out[:m] = a[:m]
            return out

        return _Carry(
            known=grow(self.known, False, bool),
            is_st=grow(self.is_st, False, bool),
            industry=grow(self.industry, 0, schema.INDUSTRY_DTYPE),
            adj=grow(self.adj, np.nan, np.float64),
            last_close=grow(self.last_close, np.nan, np.float64),
            weight=self.weight,
        )


#: Default of ``stale_days``: an asset whose bars stop more than this many sessions before
#: the store's last date (and that has no ``delist_date``) is treated as delisted.
STALE_DAYS = 20

#: ST names: ``ST...``, ``*ST...``, ``SST...``, ``S*ST...`` (tushare / exchange short names).
_ST_NAME = r"^\s*S?\*?ST"

_SOURCE_VENDOR = "vendor"
_SOURCE_CHAIN = "pre_close chain"
_SOURCE_DERIVED = "derived"


def _st_from_names(names: np.ndarray | pd.Series) -> np.ndarray:
    """1.0 for ST names, 0.0 for others, NaN where the name is missing (float, per row).

    The pattern is evaluated once per distinct name (a long table repeats each name).
    """
    if isinstance(getattr(names, "dtype", None), pd.CategoricalDtype):
        cat = pd.Categorical(names)
        inv = cat.codes
        uniq = np.asarray(cat.categories, dtype=object)
    else:
        inv, uniq = pd.factorize(np.asarray(names, dtype=object), use_na_sentinel=True)
        uniq = np.asarray(uniq, dtype=object)
    s = pd.Series(uniq, dtype=object)
    missing = _text_missing(s) if len(s) else np.zeros(0, dtype=bool)
    st = s.astype(str).str.match(_ST_NAME).to_numpy(dtype=bool)
    per_name = np.append(np.where(missing, np.nan, st.astype(np.float64)), np.nan)
    return per_name[inv]  # a missing name (-1) takes the NaN appended last


def _ffill(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along dates of a ``(T, A)`` float block, starting from ``seed``."""
    T, A = values.shape
    stacked = np.vstack([np.asarray(seed, dtype=np.float64)[None, :], values])
    idx = np.where(~np.isnan(stacked), np.arange(T + 1)[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    return stacked[idx, np.arange(A)[None, :]][1:]


def _last_where(mask: np.ndarray) -> np.ndarray:
    """Row of the last True per column of a ``(T, A)`` mask (-1 when none)."""
    T = mask.shape[0]
    if T == 0:
        return np.full(mask.shape[1], -1, dtype=np.int64)
    last = T - 1 - np.argmax(mask[::-1], axis=0)
    return np.where(mask.any(axis=0), last, -1).astype(np.int64)


@dataclass
class _Rules:
    """Call-wide settings of the daily derivations (the same for every date block)."""

    derive_adj: bool
    derive_limits: bool
    derive_turnover: bool
    st_rows: str | None  # "is_st" / "name": per-row ST column of daily, None when none
    st_snap: np.ndarray  # (asset,) bool: ST before an asset's first per-row value
    ind_snap: np.ndarray  # (asset,) int32
    board: np.ndarray  # (asset,) int8 board codes
    nolimit: np.ndarray  # (asset,) int64
    old_ipo: np.ndarray  # (asset,) bool
    list_pos: np.ndarray  # (asset,) int64 session number of the listing date
    sessions: np.ndarray  # exchange sessions (datetime64[ns]) the session numbers count
    has_stock_basic: bool = False


def _rules(inp: _Inputs, assets: _Assets, first: np.datetime64, last: np.datetime64) -> _Rules:
    """The derivation settings of one call; ``first`` is the store's first date."""
    d = inp.daily
    sb = inp.stock_basic
    A = assets.n
    st_snap = assets.basic_is_st
    ind_snap = assets.basic_industry
    board = limits.board_codes(board_of(assets.codes)) if A else np.zeros(0, np.int8)
    nolimit = limits.nolimit_days(board, assets.list_date)
    lo = pd.Timestamp(first)
    hi = max(pd.Timestamp(last), lo)
    sessions = trading_calendar(lo, hi).to_numpy()
    ld = assets.list_date
    # Listed on or before the store's first date (or unknown): the IPO rules do not apply.
    old = np.isnat(ld) | (ld <= first)
    list_pos = np.where(
        old, np.int64(-(10**9)), np.searchsorted(sessions, np.where(old, first, ld))
    ).astype(np.int64)
    st_rows = None
    if d is not None:
        st_rows = "is_st" if "is_st" in d.extra else ("name" if "st_name" in d.extra else None)
    return _Rules(
        derive_adj=inp.adj_factor is None and (d is None or "adj_factor" not in d.values),
        derive_limits=inp.stk_limit is None,
        derive_turnover=inp.daily_basic is None or "turnover_rate" not in inp.daily_basic.values,
        st_rows=st_rows,
        st_snap=st_snap,
        ind_snap=ind_snap,
        board=board,
        nolimit=nolimit,
        old_ipo=nolimit == 0,
        list_pos=list_pos,
        sessions=sessions,
        has_stock_basic=sb is not None,
    )


@dataclass
class _Diag:
    """What the daily derivations found, summed over date blocks, reported once."""

    has_values: dict[str, bool] = field(default_factory=dict)
    derived_adj: set[str] = field(default_factory=set)
    turnover: set[str] = field(default_factory=set)
    outside_range: int = 0
    outside_examples: list[str] = field(default_factory=list)
    beyond_limit: int = 0
    beyond_examples: list[str] = field(default_factory=list)
    traded_any: bool = False


def _examples(
    mask: np.ndarray,
    dates: np.ndarray,
    codes: np.ndarray,
    what: Any,
    k: int = 3,
) -> list[str]:
    """``code date (what)`` of the first ``k`` True cells; ``what(r, c)`` describes a cell."""
    rows, cols = np.nonzero(mask)
    return [
        f"{codes[c]} {pd.Timestamp(dates[r]).date()} ({what(r, c)})"
        for r, c in zip(rows[:k], cols[:k], strict=True)
    ]


def _daily_dataset(
    inp: _Inputs,
    dates: np.ndarray,
    assets: _Assets,
    carry: _Carry,
    rules: _Rules,
    diag: _Diag,
    date0: int | None = None,
    *,
    dataset: bool = True,
) -> tuple[Any, _Carry]:
    """The ``daily`` node of one date block, and the state at its end.

    ``date0``: the block's first date position in the store calendar, for tables whose rows
    carry their positions (``_Table.pos``, relative to ``assets``). ``dataset=False`` gives
    the node's arrays by variable name instead of a Dataset (for region writes).
    """
    T, A = len(dates), assets.n
    c = carry.widen(A)
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
    st_rows: np.ndarray | None = None  # per-row ST / industry values, NaN where none
    ind_rows: np.ndarray | None = None
    for t, fields in sources:
        if t is None:
            continue
        keep: np.ndarray | slice
        if t.pos is not None and date0 is not None and t.spans is not None:
            keep = t.spans.get(date0, slice(0, 0))  # the block's rows: views, no gathers
            di = t.pos[0][keep] - date0
            ai = t.pos[1][keep]
        elif t.pos is not None and date0 is not None:
            dp = t.pos[0]
            keep = (dp >= date0) & (dp < date0 + T)
            di = dp[keep] - date0
            ai = t.pos[1][keep]
        else:
            keep, di = _on_calendar(t, dates)
            ai = _positions(t.codes[keep], assets.codes)
            di = di[keep]
        # Flat cell numbers: one scatter index for every field (C-ordered (T, A) blocks).
        flat = di.astype(np.int64) * A + ai
        del di, ai
        for f in fields:
            if f in t.values:
                arrays[f].reshape(-1)[flat] = t.values[f][keep]
        if t is inp.daily:
            bar.reshape(-1)[flat] = True
            with np.errstate(invalid="ignore"):
                zero_vol.reshape(-1)[flat] = t.values["vol"][keep] == 0
            st = t.extra.get("is_st")
            if st is None:
                st = t.extra.get("st_name")
            if st is not None:
                st_rows = _scatter((T * A,), (flat,), st[keep]).reshape(T, A)
            if "industry" in t.extra:
                ind_rows = _scatter((T * A,), (flat,), t.extra["industry"][keep]).reshape(T, A)
    # Vendor rows with zero volume are suspension placeholders (previous close repeated).
    for f in _DAILY_REQUIRED[2:]:
        arrays[f][zero_vol] = np.nan
    listed = assets.listed(dates)
    traded = bar & ~zero_vol & ~np.isnan(arrays["close"])
    suspended = listed & ~traded

    # is_st and industry: the last per-row value on or before the date (carried over
    # suspensions), before an asset's first one its state from earlier dates, else the
    # stock_basic snapshot.
    st0 = np.where(c.known, c.is_st, rules.st_snap)
    if st_rows is None:
        is_st = st0[None, :] & listed
    else:
        is_st = (_ffill(st_rows, st0.astype(np.float64)) != 0) & listed
    del st_rows
    ind0 = np.where(c.known, c.industry, rules.ind_snap).astype(schema.INDUSTRY_DTYPE)
    if ind_rows is None:
        industry = np.where(listed, ind0[None, :], 0).astype(schema.INDUSTRY_DTYPE)
    else:
        industry = np.where(listed, _ffill(ind_rows, ind0.astype(np.float64)), 0).astype(
            schema.INDUSTRY_DTYPE
        )
    del ind_rows

    close, pre = arrays["close"], arrays["pre_close"]
    started = np.logical_or.accumulate(np.vstack([~np.isnan(c.adj)[None, :], traded]), axis=0)[1:]
    if rules.derive_adj:
        # factor_t = factor_{t-1} * prev_close / pre_close on each traded day (1.0 at the
        # first bar ever), multiplied in date order so any split by date gives the same bits.
        prev = np.vstack(
            [c.last_close[None, :], _ffill(np.where(traded, close, np.nan), c.last_close)[:-1]]
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.where(traded & np.isfinite(prev) & np.isfinite(pre), prev / pre, 1.0)
        seed = np.where(np.isnan(c.adj), 1.0, c.adj)
        chain = np.multiply.accumulate(np.vstack([seed[None, :], step]), axis=0)[1:]
        arrays["adj_factor"] = np.where(started & (traded | listed), chain, np.nan)
        diag.derived_adj.update(assets.codes[traded.any(axis=0)].tolist())
    else:
        adj = arrays["adj_factor"]
        fill = listed & np.isnan(adj)
        arrays["adj_factor"] = np.where(fill, _ffill(adj, c.adj), adj)

    if rules.derive_limits and T and A:
        regime = limits.limit_regime(dates)
        date_pos = np.searchsorted(rules.sessions, dates).astype(np.int64)
        up, dn = limits.limit_panel(
            np.where(traded, pre, np.nan),
            rules.board,
            is_st,
            regime,
            date_pos,
            rules.list_pos,
            rules.nolimit,
            rules.old_ipo,
        )
        arrays["up_limit"], arrays["down_limit"] = up, dn
    if T and A and traded.any():
        diag.traded_any = True
        _check_bars(arrays, traded, dates, assets, rules, diag)

    if rules.derive_turnover:
        vol, fs, cmv = arrays["vol"], arrays["float_share"], arrays["circ_mv"]
        with np.errstate(invalid="ignore", divide="ignore"):
            by_fs = traded & (fs > 0) & np.isfinite(vol)
            by_mv = traded & ~by_fs & (cmv > 0) & np.isfinite(vol)
            # vol lots x 100 / (float_share x 10,000) x 100% = vol / float_share; float
            # shares from market value: circ_mv (10k CNY) / close (CNY) in 10k shares.
            tr = np.where(by_fs, vol / fs, np.nan)
            arrays["turnover_rate"] = np.where(by_mv, vol * close / cmv, tr)
        if by_fs.any():
            diag.turnover.add("vol / float_share")
        if by_mv.any():
            diag.turnover.add("vol * close / circ_mv")

    for f, v in arrays.items():
        if not diag.has_values.get(f) and np.isfinite(v).any():
            diag.has_values[f] = True

    # State at the end of the block (what a store read back by append gives).
    last_listed = _last_where(listed)
    got = last_listed >= 0
    cols = np.flatnonzero(got)
    rows = last_listed[got]
    out = _Carry(
        known=c.known | got,
        is_st=c.is_st.copy(),
        industry=c.industry.copy(),
        adj=c.adj.copy(),
        last_close=c.last_close.copy(),
        weight=carry.weight,
    )
    out.is_st[cols] = is_st[rows, cols]
    out.industry[cols] = industry[rows, cols]
    out.adj[cols] = arrays["adj_factor"][rows, cols]
    last_bar = _last_where(traded)
    tb = np.flatnonzero(last_bar >= 0)
    out.last_close[tb] = close[last_bar[tb], tb]

    data = {f: (("date", "asset"), arrays[f]) for f in schema.DAILY_FLOAT_FIELDS}
    data["suspended"] = (("date", "asset"), suspended)
    data["is_st"] = (("date", "asset"), is_st)
    data[schema.DAILY_INDUSTRY_FIELD] = (("date", "asset"), industry)
    if not dataset:
        return {k: v for k, (_, v) in data.items()}, out
    return xr.Dataset(data, coords={"date": dates, **_asset_coords(assets)}), out


#: Tolerance of the daily-return check beyond the limit price: the larger of 0.01 CNY and
#: 0.1% of ``pre_close``.
_LIMIT_TOL_CNY, _LIMIT_TOL_REL = 0.01, 1e-3


def _check_bars(
    arrays: dict[str, np.ndarray],
    traded: np.ndarray,
    dates: np.ndarray,
    assets: _Assets,
    rules: _Rules,
    diag: _Diag,
) -> None:
    """Count closes outside [low, high] and returns beyond the board's widest limit."""
    close, high, low, pre = arrays["close"], arrays["high"], arrays["low"], arrays["pre_close"]
    with np.errstate(invalid="ignore"):
        out = traded & ((close > high * (1 + 1e-9)) | (close < low * (1 - 1e-9)))
    if out.any():
        diag.outside_range += int(out.sum())

        def span(r: int, c: int) -> str:
            return f"close {close[r, c]:g} not in {low[r, c]:g}..{high[r, c]:g}"

        diag.outside_examples += _examples(out, dates, assets.codes, span)
    # The widest range the board allows on the day (ST ignored: 5% is inside 10%); days
    # without a limit (new listings, before 1996-12-16) and listing days are not checked.
    regime = limits.limit_regime(dates)
    date_pos = np.searchsorted(rules.sessions, dates).astype(np.int64)
    up, dn = limits.limit_panel(
        np.where(traded, pre, np.nan),
        rules.board,
        np.zeros(traded.shape, dtype=bool),
        regime,
        date_pos,
        rules.list_pos,
        rules.nolimit,
        rules.old_ipo,
    )
    first_day = (date_pos[:, None] - rules.list_pos[None, :]) == 0
    tol = np.maximum(_LIMIT_TOL_CNY, _LIMIT_TOL_REL * pre)
    with np.errstate(invalid="ignore"):
        beyond = traded & ~first_day & ((close > up + tol) | (close < dn - tol))
    if beyond.any():
        diag.beyond_limit += int(beyond.sum())

        def ret(r: int, c: int) -> str:
            return f"{(close[r, c] / pre[r, c] - 1) * 100:+.1f}%"

        diag.beyond_examples += _examples(beyond, dates, assets.codes, ret)


def _str_array(values: Iterable[Any], width: int = 0) -> np.ndarray:
    """Fixed-width ``<U`` strings (what numpy, pandas and the synthetic store use).

    ``width`` is a floor, so a later append of a longer label still fits.
    """
    text = [str(v) for v in values]
    longest = max((len(t) for t in text), default=0)
    return np.array(text, dtype=f"<U{max(width, longest, 1)}")


#: Stored widths of label coordinates (fixed-width strings; longer values need a rebuild).
CODE_WIDTH = 12
NAME_WIDTH = 32


def _asset_coords(assets: _Assets) -> dict[str, Any]:
    return {
        "asset": _str_array(assets.codes, CODE_WIDTH),
        "name": ("asset", _str_array(assets.name, NAME_WIDTH)),
        "exchange": ("asset", _str_array(exchange_of(assets.codes), 2)),
        "board": ("asset", _str_array(board_of(assets.codes), 7)),
        "list_date": ("asset", assets.list_date.astype("datetime64[ns]")),
        "delist_date": ("asset", assets.delist_date.astype("datetime64[ns]")),
        "basic_industry": ("asset", assets.basic_industry.astype(schema.INDUSTRY_DTYPE)),
        "basic_is_st": ("asset", assets.basic_is_st.astype(bool)),
    }


def _take(t: _Table, keep: np.ndarray) -> _Table:
    """The rows of ``t`` where ``keep`` (row numbers in later messages are of the kept rows)."""
    return _Table(
        t.frame,
        t.dates[keep],
        None if t.codes is None else t.codes[keep],
        {k: v[keep] for k, v in t.values.items()},
        {k: v[keep] for k, v in t.extra.items()},
        None if t.ids is None else t.ids[keep],
        t.uniq,
        None if t.pos is None else (t.pos[0][keep], t.pos[1][keep]),
    )


_CALENDAR_TABLES = (
    "daily",
    "adj_factor",
    "daily_basic",
    "stk_limit",
    "index_daily",
    "index_weight",
)


def _off_calendar(inp: _Inputs, mode: str, notes: list[str]) -> None:
    """Reject (or drop) rows dated on days that are not exchange sessions.

    Inside the real XSHG calendar's range (1991-01-02 .. 2026-12-31) such a row is certainly
    wrong: ``mode="raise"`` raises, ``"drop"`` drops it with a note. Outside it only the
    approximate fallback calendar is known, so those rows are kept with a note.
    """
    if mode not in ("raise", "drop"):
        raise ValueError(f"off_calendar must be 'raise' or 'drop', got {mode!r}")
    names = [k for k in _CALENDAR_TABLES if getattr(inp, k) is not None]
    if not names:
        names = [k for k in ("macro", "offshore") if getattr(inp, k) is not None]
    if not names:
        return
    uniq = _distinct_dates([getattr(inp, k).dates for k in names])
    is_session, in_range = session_status(uniq)
    certain = uniq[~is_session & in_range]
    maybe = uniq[~is_session & ~in_range]
    if len(certain):
        rows = sum(int(np.isin(getattr(inp, k).dates, certain).sum()) for k in names)
        first = ", ".join(str(pd.Timestamp(d).date()) for d in certain[:5])
        what = (
            f"{rows} row(s) on {len(certain)} date(s) that are not sessions of the Shanghai "
            f"exchange calendar (first: {first})"
        )
        if mode == "raise":
            raise IngestError(
                f"{what}; weekend or holiday prints would enter the store's calendar and leave "
                "every other stock missing on those days. Pass off_calendar='drop' to drop them"
            )
        for k in names:
            t = getattr(inp, k)
            setattr(inp, k, _take(t, ~np.isin(t.dates, certain)))
        notes.append(f"dropped {what}")
    if len(maybe):
        rows = sum(int(np.isin(getattr(inp, k).dates, maybe).sum()) for k in names)
        first = ", ".join(str(pd.Timestamp(d).date()) for d in maybe[:5])
        notes.append(
            f"kept {rows} row(s) on {len(maybe)} date(s) outside the real exchange calendar "
            f"({XSHG_FIRST.date()} .. {XSHG_LAST.date()}) that the approximate fallback "
            f"calendar does not have as sessions (first: {first}); check them"
        )


def _last_traded_bar(inp: _Inputs, codes: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Position in ``dates`` of each code's last traded ``daily`` bar (-1 when none)."""
    out = np.full(len(codes), -1, dtype=np.int64)
    d = inp.daily
    if d is None or not len(codes) or not len(d.dates):
        return out
    with np.errstate(invalid="ignore"):
        ok = (d.values["vol"] != 0) & ~np.isnan(d.values["close"])
    if not ok.any():
        return out
    if d.ids is not None:
        last_date = _per_code(d, codes, d.dates, np.maximum, ok)
    else:
        last_date = (pd.Series(d.dates[ok]).groupby(d.codes[ok]).max().reindex(codes)).to_numpy(
            dtype="datetime64[ns]"
        )
    has = ~np.isnat(last_date)
    out[has] = np.searchsorted(dates, last_date[has])
    return out


def _infer_delisting(
    assets: _Assets, last_bar: np.ndarray, dates: np.ndarray, stale_days: int
) -> np.ndarray:
    """Set ``delist_date`` of stale assets (no delist date, bars stopped long ago).

    An asset whose last traded bar is more than ``stale_days`` sessions before the last of
    ``dates`` is delisted on the session after that bar. Returns the mask of the assets this
    call marked.
    """
    n = len(dates)
    stale = (
        np.isnat(assets.delist_date)
        & (last_bar >= 0)
        & ((n - 1 - last_bar) > stale_days)
        & (last_bar + 1 < n)
    )
    idx = np.flatnonzero(stale)
    assets.delist_date[idx] = dates[last_bar[idx] + 1]
    assets.inferred[idx] = True
    return stale


def _warn(notes: list[str]) -> None:
    for note in notes:
        warnings.warn(note, IngestWarning, stacklevel=3)


def _summary_notes(diag: _Diag, rules: _Rules, n_inferred: int, stale_days: int) -> list[str]:
    notes: list[str] = []
    if rules.derive_adj and diag.derived_adj:
        notes.append(
            f"no adj_factor input: derived the adjustment factor of {len(diag.derived_adj)} "
            "asset(s) from the pre_close chain (factor *= previous close / pre_close on each "
            "traded day); attrs['adj_factor_source'] records it"
        )
    if n_inferred:
        notes.append(
            f"{n_inferred} asset(s) without a delist_date have no bar in the last {stale_days} "
            "sessions of the store: treated as delisted after their last bar "
            "(attrs['delist_inferred'] lists them; a later append with bars reverses it)"
        )
    if diag.outside_range:
        notes.append(
            f"{diag.outside_range} bar(s) with a close outside [low, high], e.g. "
            + "; ".join(diag.outside_examples[:3])
        )
    if diag.beyond_limit:
        notes.append(
            f"{diag.beyond_limit} bar(s) with a daily return (close / pre_close - 1) beyond "
            "the board's price limit, e.g. "
            + "; ".join(diag.beyond_examples[:3])
            + " (a broken pre_close chain or unadjusted pre_close?)"
        )
    return notes


def _merge_source(old: Any, new: str | None) -> Any:
    """Sources of a field over the calls that built a store: ``"a"`` or ``"a + b"``."""
    if new is None:
        return old
    parts = [] if not old else str(old).split(" + ")
    if new not in parts:
        parts.append(new)
    return " + ".join(parts)


def _daily_attrs(
    old: Mapping[str, Any] | None,
    diag: _Diag,
    rules: _Rules,
    assets: _Assets,
    stale_days: int | None,
) -> dict[str, Any]:
    """The ``daily`` node's attrs after a call (``old``: the store's, None for ingest).

    ``missing_fields`` stays the fields that no call provided: those the store recorded as
    missing and this call did not provide (a store from another writer, e.g. the synthetic
    market, records none).
    """
    attrs = dict(old or {})
    prior: Mapping[str, Any] = old or {}
    missing_now = [f for f in schema.DAILY_FLOAT_FIELDS if not diag.has_values.get(f)]
    if old is not None:
        before = set(old.get("missing_fields", ()))
        missing_now = [f for f in missing_now if f in before]
    attrs["missing_fields"] = missing_now
    if diag.traded_any:
        attrs["adj_factor_source"] = _merge_source(
            prior.get("adj_factor_source"), _SOURCE_CHAIN if rules.derive_adj else _SOURCE_VENDOR
        )
        attrs["limit_source"] = _merge_source(
            prior.get("limit_source"), _SOURCE_DERIVED if rules.derive_limits else _SOURCE_VENDOR
        )
        st = {"is_st": "daily is_st column", "name": "daily name column"}.get(
            rules.st_rows or "", "stock_basic" if rules.has_stock_basic else "none"
        )
        if st == "none" and old is not None:
            st = None  # an append without ST input uses the store's (carried, snapshot)
        attrs["is_st_source"] = _merge_source(prior.get("is_st_source"), st)
        if rules.derive_turnover:
            tr = " + ".join(sorted(diag.turnover)) if diag.turnover else None
        else:
            tr = _SOURCE_VENDOR
        attrs["turnover_rate_source"] = _merge_source(prior.get("turnover_rate_source"), tr)
    if stale_days is not None:
        attrs["delist_inferred"] = assets.codes[assets.inferred].astype(str).tolist()
        attrs["stale_days"] = int(stale_days)
    return {k: v for k, v in attrs.items() if v is not None}


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
        coords={
            "date": dates,
            "index": _str_array(indices, CODE_WIDTH),
            "asset": _str_array(assets.codes, CODE_WIDTH),
        },
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
        "asset": ("record", _str_array(asset, CODE_WIDTH)),
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


def _write_tree(
    path: Path, nodes: dict[str, xr.Dataset], attrs: dict[str, Any], *, compute: bool = True
) -> None:
    tree = xr.DataTree.from_dict(
        {"/": xr.Dataset(attrs=attrs), **{f"/{k}": v for k, v in nodes.items()}}
    )
    encoding = {f"/{node}": _encoding(node, ds) for node, ds in nodes.items()}
    with zarr_quiet():
        tree.to_zarr(
            str(path),
            mode="w",
            encoding=encoding,
            consolidated=True,
            zarr_format=3,
            compute=compute,
        )


#: Assets per group of the grouped write of :func:`ingest` (a store asset chunk): with more
#: assets, the daily node is built one (date block x asset group) region at a time.
_ASSET_GROUP: int | None = schema.ASSET_CHUNK
#: Threads writing (compressing) the regions of the grouped write, and how many region
#: writes (one per variable) may still be pending when the next region is derived.
_WRITE_THREADS = 2
_WRITE_PENDING = 2

_DAILY_VARS = (
    *schema.DAILY_FLOAT_FIELDS,
    "suspended",
    "is_st",
    schema.DAILY_INDUSTRY_FIELD,
)


def _daily_skeleton(dates: np.ndarray, assets: _Assets) -> xr.Dataset:
    """The ``daily`` node's full shape as lazy arrays (written as metadata only)."""
    import dask.array as da

    shape = (len(dates), assets.n)
    chunks = (schema.DATE_CHUNK, schema.ASSET_CHUNK)
    dtypes = {"suspended": bool, "is_st": bool, schema.DAILY_INDUSTRY_FIELD: schema.INDUSTRY_DTYPE}
    data = {
        f: (("date", "asset"), da.zeros(shape, chunks=chunks, dtype=dtypes.get(f, np.float64)))
        for f in _DAILY_VARS
    }
    return xr.Dataset(data, coords={"date": dates, **_asset_coords(assets)})


def _rows_by_group(t: _Table | None, assets: _Assets, group: int) -> np.ndarray | None:
    """The asset group of each row of ``t`` (a small int per row; a group's rows, in input
    order, are ``np.flatnonzero(gid == g)``: no sorted row order as long as the table)."""
    if t is None:
        return None
    n_groups = (assets.n + group - 1) // group
    if t.ids is not None:
        inv, uniq = t.ids, t.uniq
    else:
        inv, uniq = pd.factorize(t.codes)
    gid_of = pd.Index(assets.codes).get_indexer(np.asarray(uniq, dtype=object)) // group
    return gid_of.astype(np.int16 if n_groups < 2**15 else np.int32)[inv]


def _with_positions(t: _Table | None, dates: np.ndarray, assets: _Assets) -> _Table | None:
    """``t`` with each row's store date position and store asset position (``pos``)."""
    if t is None or t.ids is None:
        return t
    small = np.int32 if max(len(dates), assets.n) < 2**31 else np.int64
    di = _date_positions(t.dates, dates, small)
    if di is None:  # not on the calendar (cannot happen: the calendar is the input dates)
        return t
    ai = pd.Index(assets.codes).get_indexer(t.uniq).astype(small)[t.ids]
    if (ai < 0).any():
        return t
    pos = (di, ai)
    del di, ai
    # The positions replace the rows' dates and codes (dropped to save memory).
    return dataclasses.replace(t, dates=None, codes=None, ids=None, uniq=None, pos=pos)


_DAY_NS = 86_400 * 10**9


def _date_positions(values: np.ndarray, dates: np.ndarray, dtype: type) -> np.ndarray | None:
    """Position of each of ``values`` in the sorted distinct ``dates`` (``dtype``), or None
    when one is not in ``dates``.

    Whole-day calendars use a lookup table by day number instead of a binary search per
    row; either way the work is done in blocks of rows, so the temporaries stay small.
    """
    n, m = len(values), len(dates)
    out = np.empty(n, dtype=dtype)
    if not n:
        return out
    if not m:
        return None
    cal = np.asarray(dates, dtype="datetime64[ns]").view(np.int64)
    d0, span = int(cal[0]), int(cal[-1] - cal[0])
    lut = None
    if not (cal % _DAY_NS).any() and span // _DAY_NS < 1 << 24:
        lut = np.full(span // _DAY_NS + 1, -1, dtype=dtype)
        lut[(cal - d0) // _DAY_NS] = np.arange(m, dtype=dtype)
    v = np.asarray(values, dtype="datetime64[ns]").view(np.int64)
    for lo in range(0, n, _ROW_BLOCK):
        block = v[lo : lo + _ROW_BLOCK]
        if lut is not None:
            r = block - d0
            if (r < 0).any() or (r > span).any() or (r % _DAY_NS).any():
                return None
            pos = lut[r // _DAY_NS]
            if (pos < 0).any():
                return None
        else:
            pos = np.minimum(np.searchsorted(cal, block), m - 1)
            if not (cal[pos] == block).all():
                return None
        out[lo : lo + len(block)] = pos
    return out


def _group_rows(t: _Table, rows: np.ndarray, a0: int, block: int) -> _Table:
    """The rows ``rows`` of ``t`` (one asset group starting at asset ``a0``); with row
    positions, ordered by date block of ``block`` dates (input order within a block), with
    the span of each block."""
    if t.pos is None:
        return _take(t, rows)
    # The rows carry their positions: no per-row code strings needed. Each cell has at most
    # one row (duplicate keys were rejected), so the order of the rows does not matter to
    # the values; by date block, a block's rows are a slice of the group's arrays.
    bid = t.pos[0][rows] // block
    n_blocks = int(bid.max()) + 1 if len(bid) else 0
    if n_blocks > 1:
        bid = bid.astype(np.int16 if n_blocks < 2**15 else np.int32, copy=False)
        order = np.argsort(bid, kind="stable")  # a radix sort of small ints
        rows = rows[order]
        bounds = np.searchsorted(bid[order], np.arange(n_blocks + 1))
        del order
    else:
        bounds = np.array([0, len(rows)])
    del bid
    return _Table(
        t.frame,
        None,
        None,
        {k: v[rows] for k, v in t.values.items()},
        {k: v[rows] for k, v in t.extra.items()},
        pos=(t.pos[0][rows], t.pos[1][rows] - a0),
        spans={
            b * block: slice(int(bounds[b]), int(bounds[b + 1])) for b in range(len(bounds) - 1)
        },
    )


def _group_assets(assets: _Assets, at: slice) -> _Assets:
    return _Assets(
        assets.codes[at],
        assets.name[at],
        assets.list_date[at],
        assets.delist_date[at],
        assets.inferred[at],
        assets.basic_industry[at],
        assets.basic_is_st[at],
    )


def _group_rules(rules: _Rules, at: slice) -> _Rules:
    per_asset = ("st_snap", "ind_snap", "board", "nolimit", "old_ipo", "list_pos")
    return dataclasses.replace(rules, **{k: getattr(rules, k)[at] for k in per_asset})


def _example_key(text: str) -> tuple[str, str]:
    code, date = text.split(" ", 2)[:2]
    return date, code


def _all_nan(x: np.ndarray) -> bool:
    flat = x.reshape(-1)
    return bool(flat.size) and bool(np.isnan(flat[0])) and bool(np.isnan(flat).all())


def _write_by_asset_groups(
    tmp: Path,
    inp: _Inputs,
    dates: np.ndarray,
    assets: _Assets,
    rules: _Rules,
    diag: _Diag,
    indices: np.ndarray,
    group: int,
) -> None:
    """Write a new store with the ``daily`` node built per (date block x asset group).

    The daily arrays are created for the whole store up front, then each group of ``group``
    assets is derived over all dates (date blocks chained by :class:`_Carry`, as one call
    does) and written into its region. Assets do not interact in the derivations, so the
    values are those of one pass over all assets; the examples in the findings are the
    first ones in (date, asset) order, as there.
    """
    block = schema.DATE_CHUNK
    carry = _Carry()  # the index weights' state only
    first = dates[:block]
    nodes = {
        "daily": _daily_skeleton(dates, assets),
        "index": _index_dataset(inp, first, indices, assets, carry),
        "fundamentals": _fundamentals_dataset(inp),
        "macro": _series_dataset(inp.macro, first, schema.MACRO_FIELDS),
        "offshore": _series_dataset(inp.offshore, first, schema.OFFSHORE_FIELDS),
    }
    attrs = {"quantdask_store": "market", "generator": "quantdask.ingest"}
    _write_tree(tmp, nodes, attrs, compute=False)
    del nodes
    for start in range(block, len(dates), block):
        part = dates[start : start + block]
        state = _read_store_state(tmp, tail=False)
        carry.weight = state["carry"].weight
        more = {
            "index": _index_dataset(inp, part, indices, assets, carry),
            "macro": _series_dataset(inp.macro, part, schema.MACRO_FIELDS),
            "offshore": _series_dataset(inp.offshore, part, schema.OFFSHORE_FIELDS),
        }
        _apply(tmp, state["tree"], more, n_dates_old=start, journal=False)
    names = ("daily", "adj_factor", "daily_basic", "stk_limit")
    rows = {k: _rows_by_group(getattr(inp, k), assets, group) for k in names}
    for k in names:  # the inputs' tables are not needed in another form after this
        setattr(inp, k, _with_positions(getattr(inp, k), dates, assets))
    tables = {k: getattr(inp, k) for k in names}
    # The region writes (compression) run in _WRITE_THREADS threads while the next region
    # is derived; before a region is submitted all but one write of the previous one have
    # finished, so memory stays a few date-block x group slabs.
    pending: deque[Future[None]] = deque()

    def write(arr: zarr.Array, region: tuple[slice, slice], values: np.ndarray) -> None:
        arr[region] = values

    with (
        zarr_quiet(),
        ThreadPoolExecutor(
            max_workers=_WRITE_THREADS, thread_name_prefix="quantdask-write"
        ) as pool,
    ):
        zg = zarr.open_group(str(tmp), mode="r+", zarr_format=3)
        arrays = {v: zg[f"daily/{v}"] for v in _DAILY_VARS}
        # An all-NaN region of an array whose fill value is NaN is left unwritten: zarr would
        # store no chunk for it either (empty chunks are not written), so the store is the
        # same without the write's encode and delete calls (fields no input has).
        nan_fill = {
            v
            for v, a in arrays.items()
            if a.dtype.kind == "f" and np.isnan(np.asarray(a.fill_value, dtype=np.float64))
        }
        if zarr.config.get("array.write_empty_chunks", False):
            nan_fill = set()  # configured to store empty chunks too: write every region
        for g, a0 in enumerate(range(0, assets.n, group)):
            at = slice(a0, min(a0 + group, assets.n))
            sub = dataclasses.replace(
                inp,
                **{
                    k: None
                    if rows[k] is None
                    else _group_rows(tables[k], np.flatnonzero(rows[k] == g), a0, block)
                    for k in names
                },
            )
            g_assets, g_rules, g_carry = (
                _group_assets(assets, at),
                _group_rules(rules, at),
                _Carry(),
            )
            for start in range(0, len(dates), block):
                part = slice(start, start + block)
                data, g_carry = _daily_dataset(
                    sub, dates[part], g_assets, g_carry, g_rules, diag, date0=start, dataset=False
                )
                values = {
                    v: np.asarray(data[v]).astype(arrays[v].dtype, copy=False) for v in _DAILY_VARS
                }
                del data
                while len(pending) >= _WRITE_PENDING:
                    pending.popleft().result()
                pending.extend(
                    pool.submit(write, arrays[v], (part, at), x)
                    for v, x in values.items()
                    if not (v in nan_fill and _all_nan(x))
                )
                del values
            del sub
        while pending:
            pending.popleft().result()
    diag.outside_examples.sort(key=_example_key)
    diag.beyond_examples.sort(key=_example_key)


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
    off_calendar: Literal["raise", "drop"] = "raise",
    stale_days: int = STALE_DAYS,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
) -> Path:
    """Build a market store from long tables in tushare layout.

    Every input is a CSV (optionally compressed) or Parquet path, or a
    :class:`pandas.DataFrame`; dates may be ``YYYYMMDD`` integers/strings or ISO strings.

    Parameters
    ----------
    path : str or os.PathLike
        Local directory of the new zarr store.
    daily : path, directory, glob, list of paths or DataFrame, optional
        ``ts_code, trade_date, open, high, low, close, pre_close, vol, amount`` and optionally
        ``adj_factor``, ``is_st`` (0/1), ``name`` (the short name on the day: ``ST...``,
        ``*ST...``, ``SST...``, ``S*ST...`` mean ST) and ``industry`` (Shenwan L1 code) per
        row. Rows with ``vol == 0`` are the vendor's suspension placeholders: their bar fields
        are stored as missing and the cell is flagged ``suspended``.
    daily_basic : path or DataFrame, optional
        ``ts_code, trade_date`` and any of ``turnover_rate, float_share, total_share,
        total_mv, circ_mv, pe_ttm, pb, ps_ttm, dv_ttm``.
    stk_limit : path or DataFrame, optional
        ``ts_code, trade_date, up_limit, down_limit``. Without it the limit prices are derived
        (Notes).
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
        defaults to an ST name (``ST``/``*ST`` prefix): a snapshot used on the dates before an
        asset's first per-row ``is_st``/``name`` value. Without it an asset is listed from its
        first ``daily`` row, and delisted only when its bars go stale (``stale_days``).
    adj_factor : path or DataFrame, optional
        ``ts_code, trade_date, adj_factor`` (tushare's separate adj_factor table). Without it
        (and without an ``adj_factor`` column in ``daily``) the factor is derived (Notes).
    overwrite : bool, default False
        Replace an existing store at ``path``.
    off_calendar : {"raise", "drop"}, default "raise"
        Rows dated on a day that is not a session of the Shanghai exchange calendar
        (:func:`quantdask.trading_calendar`; weekend and holiday prints): ``"raise"`` raises
        :class:`IngestError` naming how many rows and the first dates, ``"drop"`` drops them
        with an :class:`IngestWarning`. Dates beyond the real calendar's range (1991-01-02 ..
        2026-12-31), checked only against the approximate fallback, are kept with a warning.
        The exchange calendar only rejects dates; the store's calendar is the input dates.
    stale_days : int, default 20
        An asset without a ``delist_date`` whose last traded bar is more than this many
        sessions before the store's last date is treated as delisted (Notes).
    columns : mapping of str to str, optional
        Vendor column name -> our name for ``daily``, ``adj_factor``, ``daily_basic`` and
        ``stk_limit`` (e.g. ``{"股票代码": "ts_code", "收盘价": "close"}``); see
        :func:`quantdask.read_vendor_daily`, which reads those inputs when this or ``units``
        is given, or when one is a directory, glob or list of per-stock files.
    units : mapping of str to str, optional
        The vendor's units of those tables, converted to the store's: ``{"vol": "shares",
        "amount": "yuan", "circ_mv": "yuan", ...}`` (:data:`quantdask.io.vendor.UNITS`).

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
        period end; rows on dates that are not exchange sessions (``off_calendar``).
    FileExistsError
        ``path`` exists and ``overwrite`` is False.

    Warns
    -----
    IngestWarning
        Once per finding, after the store is written: the adjustment factor was derived
        (with the number of assets), assets were inferred delisted (with the count), closes
        outside ``[low, high]`` or daily returns beyond the board's price limit (with counts
        and examples), off-calendar rows dropped or kept.

    Notes
    -----
    The calendar is the union of trade dates of ``daily``, ``adj_factor``, ``daily_basic``,
    ``stk_limit``, ``index_daily`` and ``index_weight`` (of ``macro``/``offshore`` when none of
    those is given); ``macro`` and ``offshore`` values on other dates are dropped. Assets are
    all stock codes of the inputs, sorted. Every date-dimensioned node shares the calendar.

    Derived fields, recorded in the ``daily`` node's attrs (:mod:`quantdask.io.schema`):

    * ``adj_factor`` without a vendor factor: 1.0 at an asset's first traded bar, then
      ``factor *= prev_close / pre_close`` on each traded day (``prev_close`` = the close of
      the asset's previous traded bar), carried over suspensions; ``adj_factor_source`` is
      ``"pre_close chain"`` (else ``"vendor"``). A vendor factor is carried over suspended
      days too.
    * ``up_limit`` / ``down_limit`` without ``stk_limit``: from ``pre_close``, board, date,
      ST status and listing age by the rules of :mod:`quantdask.kernels.limits` (the ones the
      synthetic market uses), rounded half up to 0.01; ``limit_source`` ``"derived"``.
      The listing age counts exchange sessions from ``list_date`` (from ``stock_basic``, else
      the first bar); an asset listed on or before the store's first date gets no IPO rule.
    * ``turnover_rate`` without a vendor column: ``vol / float_share`` (in %, vol in lots,
      float_share in 10k shares), or ``vol * close / circ_mv`` where only the float market
      value is known; ``turnover_rate_source`` names the formula.
    * ``is_st`` from a per-row ``is_st`` or ``name`` column of ``daily`` (carried over
      suspensions), else the ``stock_basic`` snapshot; ``is_st_source`` says which.
    * ``missing_fields``: the daily float fields no input provided (stored all-NaN); factors
      that need one raise instead of returning NaN.
    * ``delist_inferred``: the assets delisted by ``stale_days``: their ``delist_date`` is the
      session after their last traded bar, cells from there on are missing and not
      ``suspended``; an :func:`append` that brings bars for one reverses it.

    The store is written into a temporary sibling directory and renamed into place at the
    end, so a failed ingest leaves nothing behind. An explicit I/O point, not lazy: the inputs
    are read into memory, and the dense fields are built and written one ``DATE_CHUNK`` block
    of dates at a time, for one group of ``ASSET_CHUNK`` assets at a time when there are
    more (the daily arrays are created for the whole store first, and each group is derived
    over all dates and written into its region); each block continues from the state at the
    end of the previous one exactly as :func:`append` continues a store, so one call and an
    ingest of the first dates plus appends of the rest give the same values, and the grouped
    write gives the store (and warnings) of one pass over all assets.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    inp = _parse_inputs(
        _vendor_inputs(
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
            ),
            columns,
            units,
        )
    )
    for t in (*inp.dated(), inp.statements):
        if t is not None:  # parsed: the rows are in t's arrays, messages need only t.frame
            t.frame.df = t.frame.df.iloc[:0]
    notes: list[str] = []
    _off_calendar(inp, off_calendar, notes)
    dates = _calendar(inp)
    if not len(dates):
        raise IngestError("ingest: no dated input (give at least daily, index_daily or macro)")
    codes = _asset_codes(inp)
    assets = _new_assets(inp, codes)
    inferred = _infer_delisting(assets, _last_traded_bar(inp, codes, dates), dates, stale_days)
    rules = _rules(inp, assets, dates[0], dates[-1])
    diag = _Diag()
    carry = _Carry()
    indices = _index_codes(inp)
    group = _ASSET_GROUP
    if group and assets.n > group:
        with atomic_directory(path, purpose="ingest") as tmp:
            _write_by_asset_groups(tmp, inp, dates, assets, rules, diag, indices, group)
            _set_attrs(tmp, {"daily": _daily_attrs(None, diag, rules, assets, stale_days)})
        _warn(notes + _summary_notes(diag, rules, int(inferred.sum()), stale_days))
        return path
    # One date block (DATE_CHUNK dates, all assets) in memory at a time: the first block makes
    # the store, later blocks extend it like an append (without a journal: the store is
    # still a temporary directory), continuing from the state the previous block ended in.
    block = schema.DATE_CHUNK
    first = dates[:block]
    daily_ds, carry = _daily_dataset(inp, first, assets, carry, rules, diag)
    nodes = {
        "daily": daily_ds,
        "index": _index_dataset(inp, first, indices, assets, carry),
        "fundamentals": _fundamentals_dataset(inp),
        "macro": _series_dataset(inp.macro, first, schema.MACRO_FIELDS),
        "offshore": _series_dataset(inp.offshore, first, schema.OFFSHORE_FIELDS),
    }
    with atomic_directory(path, purpose="ingest") as tmp:
        _write_tree(tmp, nodes, {"quantdask_store": "market", "generator": "quantdask.ingest"})
        del nodes, daily_ds
        for start in range(block, len(dates), block):
            part = dates[start : start + block]
            state = _read_store_state(tmp, tail=False)  # the carry is in memory
            carry.weight = state["carry"].weight
            daily_ds, carry = _daily_dataset(inp, part, assets, carry, rules, diag)
            more = {
                "daily": daily_ds,
                "index": _index_dataset(inp, part, indices, assets, carry),
                "macro": _series_dataset(inp.macro, part, schema.MACRO_FIELDS),
                "offshore": _series_dataset(inp.offshore, part, schema.OFFSHORE_FIELDS),
            }
            _apply(tmp, state["tree"], more, n_dates_old=start, journal=False)
        _set_attrs(tmp, {"daily": _daily_attrs(None, diag, rules, assets, stale_days)})
    _warn(notes + _summary_notes(diag, rules, int(inferred.sum()), stale_days))
    return path


def _set_attrs(path: Path, attrs: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace node attrs and re-consolidate the metadata."""
    with zarr_quiet():
        group = zarr.open_group(str(path), mode="r+", zarr_format=3)
        for node, a in attrs.items():
            group[node].attrs.put(dict(a))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not recognized as a component.*")
            zarr.consolidate_metadata(str(path))


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


def _read_store_state(path: Path, *, tail: bool = True) -> dict[str, Any]:
    """The small parts of a store that append needs: coords, per-asset state, record keys.

    The per-asset state (:class:`_Carry`) is read at each asset's last listed date
    (``is_st``, ``industry``, ``adj_factor``) and last traded bar (``close``), pointwise from
    the zarr arrays; the last traded bar is found by scanning ``close`` back one date block at
    a time, which for a live universe stops after the last block. ``tail=False`` skips those
    reads (ingest's date blocks keep the state in memory).
    """
    with zarr_quiet():
        tree = xr.open_datatree(str(path), engine="zarr", chunks={})
        group = zarr.open_group(str(path), mode="r")
    daily = tree["daily"].to_dataset()
    attrs = dict(tree["daily"].attrs)
    state: dict[str, Any] = {"tree": tree, "attrs": attrs}
    dates = daily["date"].values.astype("datetime64[ns]")
    state["dates"] = dates
    codes = np.asarray(daily["asset"].values).astype(object)
    inferred = np.isin(codes, np.asarray(attrs.get("delist_inferred", []), dtype=object))
    assets = _Assets(
        codes,
        np.asarray(daily["name"].values).astype(object)
        if "name" in daily.coords
        else np.full(len(codes), "", dtype=object),
        daily["list_date"].values.astype("datetime64[ns]"),
        daily["delist_date"].values.astype("datetime64[ns]"),
        inferred,
        daily["basic_industry"].values if "basic_industry" in daily.coords else None,
        daily["basic_is_st"].values if "basic_is_st" in daily.coords else None,
    )
    state["assets"] = assets
    n, A = len(dates), len(codes)
    carry = _Carry().widen(A)
    last_bar = np.full(A, -1, dtype=np.int64)
    if tail and n and A:
        start = np.where(
            np.isnat(assets.list_date), n, np.searchsorted(dates, assets.list_date)
        ).astype(np.int64)
        end = np.where(
            np.isnat(assets.delist_date), n, np.searchsorted(dates, assets.delist_date)
        ).astype(np.int64)
        p_l = np.minimum(end, n) - 1
        known = (p_l >= start) & (p_l >= 0)
        cols = np.flatnonzero(known)
        if cols.size:
            rows = p_l[cols]
            with zarr_quiet():
                carry.is_st[cols] = np.asarray(group["daily/is_st"].vindex[rows, cols], dtype=bool)
                carry.industry[cols] = np.asarray(group["daily/industry"].vindex[rows, cols])
                carry.adj[cols] = np.asarray(group["daily/adj_factor"].vindex[rows, cols])
        carry.known = known
        last_bar, carry.last_close = _scan_last_close(group["daily/close"], start, n, A)
    state["last_bar"] = last_bar
    state["carry"] = carry
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


def _scan_last_close(
    arr: zarr.Array, start: np.ndarray, n: int, A: int
) -> tuple[np.ndarray, np.ndarray]:
    """Last row with a close per asset column, and that close, scanning blocks backwards."""
    last = np.full(A, -1, dtype=np.int64)
    value = np.full(A, np.nan)
    todo = start < n
    block = schema.DATE_CHUNK
    hi = n
    with zarr_quiet():
        while todo.any() and hi > 0:
            lo = max(0, ((hi - 1) // block) * block)
            cols = np.flatnonzero(todo)
            vals = np.asarray(arr[lo:hi])[:, cols]
            pos = _last_where(~np.isnan(vals))
            hit = pos >= 0
            last[cols[hit]] = lo + pos[hit]
            value[cols[hit]] = vals[pos[hit], np.flatnonzero(hit)]
            todo[cols[hit]] = False
            todo &= start < lo
            hi = lo
    return last, value


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
    off_calendar: Literal["raise", "drop"] = "raise",
    stale_days: int = STALE_DAYS,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
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
        and delist dates of known ones; ``is_st`` and ``industry`` of known listed assets
        carry forward from their last listed date unless given per row in ``daily``.
    off_calendar : {"raise", "drop"}, default "raise"
        As for :func:`ingest`.
    stale_days : int, default 20
        As for :func:`ingest`, counted back from the new last date.
    columns, units : mapping of str to str, optional
        As for :func:`ingest` (vendor column names and units of the stock tables).

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

    Warns
    -----
    IngestWarning
        As for :func:`ingest`.

    Notes
    -----
    The derived fields continue the store: the ``pre_close`` chain of a derived
    ``adj_factor`` goes on from each asset's last stored factor and last traded close,
    ``is_st``/``industry`` from their last listed values, so the same inputs give the same
    values whether they are ingested at once or ingested and appended in parts (the asset
    order may differ: new assets follow the existing ones). The ``daily`` attrs are updated
    (a source that changes between calls reads ``"vendor + pre_close chain"``).

    History is not rewritten, with one exception: only chunks holding new cells are written
    (the last date block of every ``(date, ...)`` array and, when new assets arrive, the last
    asset-column chunks), plus the small 1-D asset and index coordinates and the metadata.
    The exception is the ``stale_days`` delisting: an asset newly inferred delisted, or an
    inferred one that has bars again, gets its cells from the (former) delist date on
    rewritten (``suspended``, ``is_st``, ``industry``, ``adj_factor``). New assets are added
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
        _vendor_inputs(
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
            ),
            columns,
            units,
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
    notes: list[str] = []
    _off_calendar(inp, off_calendar, notes)
    new_dates = _calendar(inp)
    codes = _asset_codes(inp)
    fresh = codes[~np.isin(codes, old_assets.codes)]
    fresh_assets = _new_assets(inp, fresh)
    assets = _Assets(
        np.concatenate([old_assets.codes, fresh_assets.codes]),
        np.concatenate([old_assets.name, fresh_assets.name]),
        np.concatenate([old_assets.list_date, fresh_assets.list_date]),
        np.concatenate([old_assets.delist_date, fresh_assets.delist_date]),
        np.concatenate([old_assets.inferred, fresh_assets.inferred]),
        np.concatenate([old_assets.basic_industry, fresh_assets.basic_industry]),
        np.concatenate([old_assets.basic_is_st, fresh_assets.basic_is_st]),
    )
    n_old_a = old_assets.n
    if inp.stock_basic is not None and n_old_a:
        assets.update_basic(inp.stock_basic, slice(0, n_old_a))
        sb = inp.stock_basic.reindex(old_assets.codes)
        dl = sb["delist_date"].to_numpy(dtype="datetime64[ns]")
        has = ~np.isnat(dl)
        assets.delist_date[:n_old_a][has] = dl[has]
        assets.inferred[:n_old_a][has] = False
    # Known assets that had no bar yet (e.g. index constituents) list at their first bar.
    unlisted = np.isnat(assets.list_date[:n_old_a])
    if unlisted.any():
        first = _first_bar(inp, old_assets.codes)
        assets.list_date[:n_old_a][unlisted] = first[unlisted]

    # Stale-bar delisting over the whole calendar: reverse inferences that got bars again,
    # infer new ones, and rewrite the old cells either change.
    n_old = len(old_dates)
    all_dates = np.concatenate([old_dates, new_dates]).astype("datetime64[ns]")
    new_bar = _last_traded_bar(inp, assets.codes, new_dates)
    last_bar = np.concatenate([state["last_bar"], np.full(len(fresh), -1, dtype=np.int64)])
    last_bar = np.where(new_bar >= 0, n_old + new_bar, last_bar)
    carry: _Carry = state["carry"]
    patch_from = np.full(assets.n, -1, dtype=np.int64)  # first old row to rewrite
    # Stores from other writers (the synthetic market) hold true delist dates: no inference.
    infer = "stale_days" in state["attrs"]
    relist = assets.inferred & (new_bar >= 0)
    if relist.any():
        j = np.flatnonzero(relist)
        patch_from[j] = np.searchsorted(old_dates, assets.delist_date[j])
        assets.delist_date[j] = np.datetime64("NaT")
        assets.inferred[j] = False
    was = assets.inferred.copy()
    newly = np.zeros(assets.n, dtype=bool)
    if infer:
        newly = _infer_delisting(assets, last_bar, all_dates, stale_days) & ~was
    j_new = np.flatnonzero(newly & (last_bar + 1 < n_old))
    patch_from[j_new] = last_bar[j_new] + 1
    patches = _delisting_patches(carry, relist, patch_from, n_old)

    old_idx: np.ndarray = state["indices"]
    idx_codes = _index_codes(inp)
    indices = np.concatenate([old_idx, idx_codes[~np.isin(idx_codes, old_idx)]]).astype(object)
    first_date = old_dates[0] if n_old else (new_dates[0] if len(new_dates) else None)
    last_date = new_dates[-1] if len(new_dates) else first_date
    diag = _Diag()
    if first_date is not None:
        rules = _rules(inp, assets, first_date, last_date)
        daily_ds, carry = _daily_dataset(inp, new_dates, assets, carry, rules, diag)
    else:
        rules = None
        daily_ds = xr.Dataset(coords={"date": new_dates, **_asset_coords(assets)})
    new_nodes = {
        "daily": daily_ds,
        "index": _index_dataset(inp, new_dates, indices, assets, carry),
        "fundamentals": _fundamentals_dataset(inp, state.get("records")),
        "macro": _series_dataset(inp.macro, new_dates, schema.MACRO_FIELDS),
        "offshore": _series_dataset(inp.offshore, new_dates, schema.OFFSHORE_FIELDS),
    }
    attrs = state["attrs"]
    if rules is not None:
        attrs = _daily_attrs(state["attrs"], diag, rules, assets, stale_days if infer else None)
    nothing = (
        not len(new_dates)
        and inp.statements is None
        and not len(fresh)
        and inp.stock_basic is None
        and not patches
    )
    if nothing:
        return path
    _apply(
        path,
        state["tree"],
        new_nodes,
        n_dates_old=n_old,
        patches=patches,
        attrs={"daily": attrs} if attrs != state["attrs"] else None,
    )
    if rules is not None:
        _warn(notes + _summary_notes(diag, rules, int(newly.sum()), stale_days))
    return path


def _delisting_patches(
    carry: _Carry, relist: np.ndarray, patch_from: np.ndarray, n_old: int
) -> list[_Write]:
    """Old cells an append rewrites because an asset's inferred delisting changed.

    A re-listed asset (inferred delisted, bars again) is listed again from its former delist
    date: ``suspended`` there (no bar), ``is_st``/``industry``/``adj_factor`` carried from its
    last listed date. A newly inferred asset is delisted from the session after its last bar:
    missing (NaN, ``False``, 0).
    """
    writes: list[_Write] = []
    for j in np.flatnonzero((patch_from >= 0) & (patch_from < n_old)):
        region = (slice(int(patch_from[j]), n_old), slice(int(j), int(j) + 1))
        k = n_old - int(patch_from[j])
        back = bool(relist[j])
        cols = {
            "suspended": np.full((k, 1), back),
            "is_st": np.full((k, 1), bool(carry.is_st[j]) and back),
            schema.DAILY_INDUSTRY_FIELD: np.full(
                (k, 1), carry.industry[j] if back else 0, dtype=schema.INDUSTRY_DTYPE
            ),
            "adj_factor": np.full((k, 1), carry.adj[j] if back else np.nan),
        }
        writes += [_Write(f"daily/{f}", region, v) for f, v in cols.items()]
    return writes


def _apply(
    path: Path,
    tree: xr.DataTree,
    new_nodes: dict[str, xr.Dataset],
    *,
    n_dates_old: int,
    journal: bool = True,
    patches: list[_Write] | None = None,
    attrs: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Plan the region writes, journal the files they touch, write, consolidate, commit.

    ``patches`` are extra writes into existing cells (same store-relative array names);
    ``attrs`` replace the attrs of the named nodes.
    """
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
        for w in patches or ():
            arr = group[w.array]
            entry = next((e for e in plan if e[0].path == arr.path), None)
            if entry is None:
                plan.append((arr, tuple(arr.shape), [w]))
            else:
                entry[2].append(w)
        if not plan and not attrs:
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
        for node, a in (attrs or {}).items():
            group[node].attrs.put(dict(a))
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
