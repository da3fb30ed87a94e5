"""Read vendor dumps of daily bars (per-stock CSV or Parquet files) into tushare layout.

A vendor dump is usually a directory of one file per stock with the vendor's own headers
(often Chinese: 股票代码, 交易日期, 开盘价, ...), codes such as ``sh600000``, volume in shares
and amounts in CNY, sometimes a title line before the header, in UTF-8 (with or without a
byte-order mark) or GBK. :func:`read_vendor_daily` reads such a source into one long
:class:`pandas.DataFrame` in tushare layout and units, the layout :func:`quantdask.ingest`
takes; ``qd.ingest(daily=<directory>, columns=..., units=...)`` calls it directly.

How it reads
------------
* Files are read in a thread pool (pyarrow's CSV parser releases the GIL). Consecutive files
  with the same header are parsed as one buffer of their bodies (pyarrow's fixed cost per
  call is about the cost of parsing a 2,500-row file), with typed columns: float64 for
  numbers, dictionary-encoded strings for codes and names.
* The result is assembled once: each group's columns are copied into one preallocated array
  per column (sized from the bytes of the first group), so no list of per-file frames and no
  final concatenation copy is held. Codes and names are categoricals; dates datetime64[ns].
* Text is not transcoded: files in an ASCII-compatible encoding (UTF-8, GBK/GB18030, ...)
  are parsed as bytes, and only the header and the distinct values of the code and name
  columns are decoded. The encoding comes from a byte-order mark, else from the header
  (UTF-8 when it decodes, else GB18030, a superset of GBK and GB2312); under an ASCII header
  each distinct name is tried as UTF-8, then GB18030. UTF-16 files (with a BOM) are
  transcoded first.
"""

from __future__ import annotations

import bisect
import bz2
import codecs
import csv
import functools
import glob
import itertools
import lzma
import os
import re
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from quantdask.io import schema
from quantdask.io.errors import IngestError

__all__ = ["REQUIRED", "UNITS", "normalise_code", "read_vendor_daily"]

#: Accepted ``units=`` values: field -> {unit name: divisor to the store's (tushare) unit}.
#: The store keeps ``vol`` in lots, ``amount`` in thousand CNY, share counts in 10k shares and
#: market values in 10k CNY (:mod:`quantdask.io.schema`).
UNITS: dict[str, dict[str, float]] = {
    "vol": {"lots": 1.0, "shares": 100.0},
    "amount": {"thousand": 1.0, "yuan": 1000.0},
    "circ_mv": {"10k": 1.0, "yuan": 10_000.0},
    "total_mv": {"10k": 1.0, "yuan": 10_000.0},
    "float_share": {"10k": 1.0, "shares": 10_000.0},
    "total_share": {"10k": 1.0, "shares": 10_000.0},
}

#: Required columns (after ``columns=`` mapping) of the tables read from vendor files.
REQUIRED: dict[str, tuple[str, ...]] = {
    "daily": schema.DAILY_BAR_COLUMNS,
    "adj_factor": ("ts_code", "trade_date", "adj_factor"),
    "daily_basic": ("ts_code", "trade_date"),
    "stk_limit": ("ts_code", "trade_date", "up_limit", "down_limit"),
}

_KEYS = ("ts_code", "trade_date")
_TEXT_FIELDS = ("name",)
_FLOAT_FIELDS = (*schema.DAILY_FLOAT_FIELDS, "is_st", "industry")
_TARGETS = (*_KEYS, *_TEXT_FIELDS, *_FLOAT_FIELDS)
_CSV_SUFFIXES = (".csv", ".txt", ".tsv")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_NULLS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "none", "--", "-"]
#: Lines searched for the header when ``skiprows`` is not given (title lines before it).
_HEADER_SEARCH = 5
#: Bytes of CSV bodies parsed in one pyarrow call (many small per-stock files per call).
_GROUP_BYTES = 4 << 20
_MIN_GROUP_BYTES = 1 << 20
#: A CSV file larger than this on disk (one big table) is read in blocks of _STREAM_BLOCK.
_STREAM_BYTES = 64 << 20
_STREAM_BLOCK = 16 << 20
_DELIMITERS = (",", "\t", ";", "|")


# --------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class _Spec:
    """What to read: the keyword, column mapping, unit divisors and text options."""

    keyword: str
    required: tuple[str, ...]
    columns: Mapping[str, str]
    divisors: Mapping[str, float]
    encoding: str | None
    skiprows: int | None

    def target(self, vendor: str) -> str | None:
        """Our name of a vendor column (None: the column is not read)."""
        if vendor in self.columns:
            return self.columns[vendor]
        return vendor if vendor in _TARGETS else None


def _spec(
    keyword: str,
    columns: Mapping[str, str] | None,
    units: Mapping[str, str] | None,
    encoding: str | None,
    skiprows: int | None,
) -> _Spec:
    columns = dict(columns or {})
    for vendor, ours in columns.items():
        if ours not in _TARGETS:
            raise IngestError(
                f"{keyword}: columns maps {vendor!r} to unknown field {ours!r} "
                f"(known: {', '.join(_TARGETS)})"
            )
    divisors: dict[str, float] = {}
    for name, unit in dict(units or {}).items():
        if name not in UNITS:
            raise IngestError(
                f"{keyword}: units has no conversions for {name!r} (known: {', '.join(UNITS)})"
            )
        if unit not in UNITS[name]:
            raise IngestError(
                f"{keyword}: unknown unit {unit!r} for {name!r} "
                f"(accepted: {', '.join(map(repr, UNITS[name]))})"
            )
        if UNITS[name][unit] != 1.0:
            divisors[name] = UNITS[name][unit]
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError as err:
            raise IngestError(f"{keyword}: unknown encoding {encoding!r}") from err
    if skiprows is not None and (not isinstance(skiprows, int) or skiprows < 0):
        raise IngestError(f"{keyword}: skiprows must be a non-negative int, got {skiprows!r}")
    return _Spec(keyword, REQUIRED.get(keyword, _KEYS), columns, divisors, encoding, skiprows)


# --------------------------------------------------------------------------------------------
# Sources


def is_file_set(obj: Any) -> bool:
    """True when ``obj`` names several files: a directory, a glob pattern or a list of paths."""
    if isinstance(obj, list | tuple):
        return bool(obj) and all(isinstance(p, str | os.PathLike) for p in obj)
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        return path.is_dir() or (not path.exists() and glob.has_magic(str(obj)))
    return False


def _is_table_file(path: Path) -> bool:
    """A CSV file (optionally compressed) or a Parquet file, by its name."""
    name = path.name.lower()
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            return name[: -len(suffix)].endswith(_CSV_SUFFIXES)
    return name.endswith(_CSV_SUFFIXES + _PARQUET_SUFFIXES)


def _resolve(source: Any, keyword: str) -> tuple[list[Path], str]:
    """The files of a source (sorted by name) and a label for messages."""
    if isinstance(source, list | tuple):
        files = [Path(p) for p in source]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise IngestError(f"{keyword}: no such file(s): {', '.join(missing[:5])}")
        label = f"{len(files)} files"
    else:
        path = Path(source)
        if path.is_dir():
            files = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and not p.name.startswith(".") and _is_table_file(p)
            )
            label = f"directory {path}"
        elif path.is_file():
            files, label = [path], f"file {path}"
        elif glob.has_magic(str(source)):
            files = sorted(Path(p) for p in glob.glob(str(source), recursive=True))
            files = [p for p in files if p.is_file() and _is_table_file(p)]
            label = f"glob {source}"
        else:
            raise IngestError(f"{keyword}: no such file or directory {path}")
    if not files:
        raise IngestError(
            f"{keyword}: no CSV or Parquet files in {label} "
            f"(accepted: {', '.join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)}, optionally "
            f"{'/'.join(_COMPRESSED)} compressed)"
        )
    return files, label


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(_PARQUET_SUFFIXES)


def _file_bytes(path: Path) -> bytes:
    """Raw (decompressed) bytes of one CSV file."""
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise IngestError(f"{path}: a zip file must hold one CSV, has {len(members)}")
            return zf.read(members[0])
    if name.endswith(".xz"):
        return lzma.decompress(path.read_bytes())
    if name.endswith(".bz2"):
        return bz2.decompress(path.read_bytes())
    if name.endswith((".gz", ".zst")):
        with pa.input_stream(str(path), compression="detect") as f:
            return f.read()
    return path.read_bytes()


# --------------------------------------------------------------------------------------------
# One CSV file: encoding, header line, body


@dataclass
class _Raw:
    """One CSV file: its header and the bytes of its data rows."""

    path: Path
    names: tuple[str, ...]  # vendor column names of the header (stripped, made unique)
    delimiter: str
    header_line: int  # 0-based line of the header
    body: bytes
    encoding: str | None  # of text cells; None: UTF-8, else GB18030


def _ascii_compatible(encoding: str) -> bool:
    """Whether the delimiters, quotes and newlines of the encoding are the ASCII bytes, and no
    multi-byte character contains them (UTF-8, GBK/GB18030, Big5, ...): such files are parsed
    as bytes and only their text cells are decoded."""
    try:
        return ',;|\t"\r\n'.encode(encoding) == b',;|\t"\r\n' and encoding not in (
            "utf-7",
            "hz",
        )
    except (LookupError, UnicodeError):
        return False


def _decode(path: Path, data: bytes, spec: _Spec) -> tuple[bytes, str | None]:
    """The bytes to parse and the encoding of their text cells (None: UTF-8, else GB18030).

    Files in an ASCII-compatible encoding are not transcoded: the parser splits the bytes and
    only the distinct values of text columns (codes, names) and the header are decoded.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:], "utf-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16").encode("utf-8"), "utf-8"
    if spec.encoding is not None:
        if _ascii_compatible(spec.encoding):
            return data, spec.encoding
        try:
            return data.decode(spec.encoding).encode("utf-8"), "utf-8"
        except UnicodeDecodeError as err:
            raise IngestError(f"{spec.keyword}: {path}: not valid {spec.encoding}: {err}") from err
    return data, None


def _text(values: list[Any], encoding: str | None) -> list[str | None]:
    """Decode distinct byte values of a text column: in ``encoding``, or each value as UTF-8
    and else GB18030 when the file's encoding is not known (an ASCII header). None: neither."""
    out: list[str | None] = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
            continue
        for enc in (encoding,) if encoding else ("utf-8", "gb18030"):
            try:
                out.append(v.decode(enc))
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append(None)
    return out


def _split_header(line: str) -> tuple[list[str], str]:
    counts = [line.count(d) for d in _DELIMITERS]
    delimiter = _DELIMITERS[int(np.argmax(counts))] if max(counts) else ","
    fields = next(csv.reader([line], delimiter=delimiter), [])
    return [f.strip().lstrip("\ufeff").strip() for f in fields], delimiter


def _unique_names(names: list[str]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}.{k}")
    return tuple(out)


def _check_columns(spec: _Spec, where: str, names: Sequence[str]) -> dict[str, str]:
    """Vendor name -> our name of the columns read; raises naming what is missing."""
    targets: dict[str, str] = {}
    for n in names:
        t = spec.target(n)
        if t is None:
            continue
        if t in targets.values():
            other = next(v for v, o in targets.items() if o == t)
            raise IngestError(
                f"{spec.keyword}: {where}: columns {other!r} and {n!r} both map to {t!r}"
            )
        targets[n] = t
    missing = [c for c in spec.required if c not in targets.values()]
    if missing:
        raise IngestError(
            f"{spec.keyword}: {where}: missing required column(s) "
            f"{', '.join(map(repr, missing))} after mapping columns= "
            f"(it has {', '.join(map(repr, names))})"
        )
    return targets


def _line_text(line: bytes, encoding: str | None) -> tuple[str, str | None]:
    """A header line as text, and the encoding it was read in."""
    if encoding is not None:
        return line.decode(encoding, errors="replace"), encoding
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError:
        return line.decode("gb18030", errors="replace"), "gb18030"


def _raw(path: Path, data: bytes, encoding: str | None, spec: _Spec) -> _Raw:
    """Find the header (the first line with the key columns, or the line after ``skiprows``)."""
    lines = data[: 1 << 16].split(b"\n", _HEADER_SEARCH)
    complete = len(data) <= 1 << 16
    candidates = [spec.skiprows] if spec.skiprows is not None else range(_HEADER_SEARCH)
    found = None
    shown: list[str] = []
    for i in candidates:
        if i >= len(lines) or (i == len(lines) - 1 and not complete and i == _HEADER_SEARCH):
            break
        text, enc = _line_text(lines[i], encoding)
        names, delimiter = _split_header(text.rstrip("\r"))
        shown = shown or names
        targets = {spec.target(n) for n in names}
        if all(k in targets for k in _KEYS):
            found = (i, names, delimiter)
            encoding = encoding or enc
            break
    if found is None:
        where = (
            f"line {spec.skiprows + 1}"
            if spec.skiprows is not None
            else f"the first {_HEADER_SEARCH} lines"
        )
        raise IngestError(
            f"{spec.keyword}: {path}: no header with the ts_code and trade_date columns in "
            f"{where} after mapping columns= (the first line has "
            f"{', '.join(map(repr, shown)) or 'nothing'})"
        )
    line, names, delimiter = found
    _check_columns(spec, str(path), names)
    start = 0
    for _ in range(line + 1):
        nl = data.find(b"\n", start)
        start = len(data) if nl < 0 else nl + 1
    body = data[start:]
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return _Raw(path, _unique_names(names), delimiter, line, body, encoding)


def _read_raw(path: Path, spec: _Spec) -> _Raw | None:
    """The header and body of a CSV file; None for an empty file (no bytes but blanks)."""
    try:
        data = _file_bytes(path)
    except IngestError:
        raise
    except Exception as err:  # OSError, zlib/lzma/bz2/zip errors
        raise IngestError(f"{spec.keyword}: cannot read {path}: {err}") from err
    data, encoding = _decode(path, data, spec)
    if not data.strip():
        return None
    return _raw(path, data, encoding, spec)


# --------------------------------------------------------------------------------------------
# Parsing and converting to numpy


class _RowError(Exception):
    """A bad value at a row of a parsed table (the caller names the file and line)."""

    def __init__(self, row: int | None, column: str, what: str) -> None:
        super().__init__(what)
        self.row, self.column, self.what = row, column, what


def _csv_types(spec: _Spec, names: Sequence[str]) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {}
    for n in names:
        t = spec.target(n)
        if t is None:
            continue
        if t == "trade_date":
            types[n] = pa.string()
        elif t in ("ts_code", *_TEXT_FIELDS):
            types[n] = pa.dictionary(pa.int32(), pa.binary())
        else:
            types[n] = pa.float64()
    return types


def _parse_csv(body: bytes, raw: _Raw, types: Mapping[str, pa.DataType]) -> pa.Table:
    if not body.strip():  # a header and no rows
        return pa.schema(list(types.items())).empty_table()
    return pacsv.read_csv(
        pa.py_buffer(body),
        read_options=pacsv.ReadOptions(
            column_names=list(raw.names), use_threads=False, block_size=1 << 26
        ),
        parse_options=pacsv.ParseOptions(delimiter=raw.delimiter),
        convert_options=pacsv.ConvertOptions(
            include_columns=list(types),
            column_types=dict(types),
            null_values=_NULLS,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+)")


def _locate_parse_error(raw: _Raw, spec: _Spec, err: pa.ArrowInvalid) -> IngestError:
    """A precise message for a pyarrow error on one file: the row, line and bad value."""
    row_err = _bad_cell(raw, err)
    if row_err is None:
        return IngestError(f"{spec.keyword}: {raw.path}: cannot parse: {err}")
    return IngestError(_row_message(spec, str(raw.path), row_err, raw.header_line))


def _bad_cell(raw: _Raw, err: pa.ArrowInvalid) -> _RowError | None:
    """The cell a pyarrow conversion error is about (row of ``raw.body``), if it says."""
    msg = str(err)
    m = _CONVERSION.search(msg)
    if m is None:
        return None
    col = raw.names[int(m.group(1))]  # pyarrow counts the file's columns
    cells = pacsv.read_csv(
        pa.py_buffer(raw.body),
        read_options=pacsv.ReadOptions(column_names=list(raw.names), use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=raw.delimiter),
        convert_options=pacsv.ConvertOptions(
            include_columns=[col], column_types={col: pa.binary()}, null_values=_NULLS
        ),
    ).column(col)
    values = cells.to_pylist()
    if m.group(2) == "string":
        what = "text is not valid UTF-8"
        rows = [i for i, b in enumerate(values) if b is not None and not _is_utf8(b)]
    else:
        what = "expected a number"
        text = pd.Series(
            [None if b is None else b.decode("utf-8", "replace") for b in values], dtype=object
        )
        bad = pd.to_numeric(text, errors="coerce").isna() & text.notna()
        rows = list(np.flatnonzero(bad.to_numpy()))
    if not rows:
        return None
    r = int(rows[0])
    return _RowError(r, col, f"{what}, got {values[r].decode('utf-8', 'replace')!r}")


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_CODE_FORMS = re.compile(
    r"^(?:(?P<p>SH|SZ|BJ|SHSE|SZSE|BJSE)[.]?(?P<d1>\d{6})"
    r"|(?P<d2>\d{6})(?:[.](?P<s>SH|SZ|BJ|XSHG|XSHE|BJSE))?)$"
)
_EXCHANGE_ALIASES = {"SHSE": "SH", "XSHG": "SH", "SZSE": "SZ", "XSHE": "SZ", "BJSE": "BJ"}


@functools.lru_cache(maxsize=1 << 16)
def normalise_code(text: str) -> str | None:
    """``600000.SH`` from a vendor spelling of a stock code, or None when it is not one.

    Accepts ``600000.SH``, ``sh600000``, ``SZ000001``, ``sh.600000``, ``SHSE.600000``,
    ``600000.XSHG`` and bare ``600000`` (any case, surrounding blanks ignored). A bare code
    takes its exchange from its number range: 4xxxxx, 8xxxxx and 920xxx are Beijing, other
    6xxxxx/9xxxxx Shanghai, the rest Shenzhen. The result must be a code of a known board
    (:mod:`quantdask.io.schema`).
    """
    m = _CODE_FORMS.match(text.strip().upper())
    if m is None:
        return None
    digits = m.group("d1") or m.group("d2")
    exch = m.group("p") or m.group("s")
    if exch is None:
        if digits.startswith(("4", "8", "92")):
            exch = "BJ"
        elif digits.startswith(("6", "9")):
            exch = "SH"
        else:
            exch = "SZ"
    code = f"{digits}.{_EXCHANGE_ALIASES.get(exch, exch)}"
    return code if schema.STOCK_CODE.match(code) else None


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _dictionary(
    col: pa.ChunkedArray,
    column: str,
    *,
    code: bool,
    decode: Callable[[list[Any]], list[str | None]],
) -> tuple[np.ndarray, list[str]]:
    """int32 ids into the list of distinct values of a text column (normalised codes if
    ``code``); null cells get -1, and for codes a null or an unreadable code raises."""
    if pa.types.is_integer(col.type) and code:
        # Codes stored as numbers lost their leading zeros (1 was 000001).
        col = pc.utf8_lpad(pc.cast(col, pa.string()), 6, "0")
    if not pa.types.is_dictionary(col.type):
        if not pa.types.is_string(col.type):
            col = pc.cast(col, pa.string())
        col = pc.dictionary_encode(col)
    if isinstance(col, pa.Array):
        col = pa.chunked_array([col])
    values: dict[str, int] = {}
    out = np.empty(len(col), dtype=np.int32)
    at = 0
    for chunk in col.chunks:
        n = len(chunk)
        if not n:
            continue
        idx = chunk.indices
        ids = (
            idx.fill_null(0).to_numpy().astype(np.int64, copy=False)
            if idx.null_count
            else idx.to_numpy()
        )
        lut = np.empty(max(len(chunk.dictionary), 1), dtype=np.int32)
        raw_values = chunk.dictionary.to_pylist()
        for i, v in enumerate(decode(raw_values)):
            if v is None:
                raise _RowError(
                    at + _first_row(ids == i),
                    column,
                    f"text {raw_values[i]!r} is neither UTF-8 nor GBK/GB18030 (pass encoding=)",
                )
            key = normalise_code(v) if code else v.strip()
            if key is None:
                raise _RowError(
                    at + _first_row(ids == i),
                    column,
                    f"cannot read {v!r} as a stock code (expected e.g. 600000.SH, sh600000, "
                    "SZ000001 or 600000 of a known board: 600/601/603/605/688/689 .SH, "
                    "000/001/002/003/300/301 .SZ, 43/83/87/920 .BJ)",
                )
            lut[i] = values.setdefault(key, len(values))
        got = lut[ids]
        if idx.null_count:
            null = idx.is_null().to_numpy(zero_copy_only=False)
            if code:
                raise _RowError(at + _first_row(null), column, "code is missing")
            got[null] = -1
        out[at : at + n] = got
        at += n
    return out, list(values)


_DATE_FORMS = (
    (re.compile(r"^\d{8}$"), "compact"),
    (re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$"), "%Y-%m-%d"),
    (re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$"), "%Y/%m/%d"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d*)?)?$"), "datetime"),
)


def _compact_dates(v: np.ndarray) -> np.ndarray:
    """datetime64[ns] of YYYYMMDD integers; NaT where not a calendar date."""
    y, m, d = v // 10_000, v // 100 % 100, v % 100
    ok = (y >= 1900) & (y <= 2200) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= 31)
    months = (np.where(ok, y, 1970) - 1970) * 12 + np.where(ok, m, 1) - 1
    month = months.astype("datetime64[M]")
    days = month.astype("datetime64[D]") + (np.where(ok, d, 1) - 1)
    ok &= days.astype("datetime64[M]") == month
    return np.where(ok, days.astype("datetime64[ns]"), np.datetime64("NaT", "ns"))


def _date_text(col: pa.ChunkedArray, form: str | None) -> np.ndarray:
    """datetime64[ns] of date strings of one form (fast casts first; NaT where unparseable)."""
    if form is None:
        return np.full(len(col), np.datetime64("NaT", "ns"))
    if form == "compact":
        try:
            ints = pc.cast(col, pa.int64())
        except pa.ArrowInvalid:
            col = pc.utf8_trim_whitespace(col)
            ok = pc.match_substring_regex(col, r"^\d{8}$")
            ints = pc.cast(pc.if_else(ok, col, pa.scalar(None, pa.string())), pa.int64())
        return _compact_dates(pc.fill_null(ints, 0).to_numpy().astype(np.int64, copy=False))
    if form == "%Y-%m-%d":
        try:
            return pc.cast(col, pa.date32()).to_numpy(zero_copy_only=False).astype("M8[ns]")
        except pa.ArrowInvalid:
            pass  # not zero-padded, or blanks around
    col = pc.utf8_trim_whitespace(col)
    if form == "datetime":
        col, form = pc.utf8_slice_codeunits(col, 0, 10), "%Y-%m-%d"
    parsed = pc.strptime(col, format=form, unit="s", error_is_null=True)
    return parsed.to_numpy(zero_copy_only=False).astype("datetime64[ns]")


def _dates(col: pa.ChunkedArray, column: str) -> np.ndarray:
    """datetime64[ns] of a date column: YYYYMMDD, YYYY-MM-DD, YYYY/MM/DD, ISO datetimes, dates."""
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if pa.types.is_timestamp(t) and t.tz is not None:
            col = pc.local_timestamp(col)
        days = pc.cast(col, pa.timestamp("ns")).to_numpy().astype("datetime64[D]")
        out = days.astype("datetime64[ns]")
    elif pa.types.is_integer(t):
        out = _compact_dates(pc.fill_null(col, 0).to_numpy().astype(np.int64))
    else:
        if not pa.types.is_string(t):
            col = pc.cast(col, pa.string())
        given = pc.drop_null(col)
        sample = given[0].as_py().strip() if len(given) else ""
        form = next((f for rx, f in _DATE_FORMS if rx.match(sample)), None)
        out = _date_text(col, form)
    bad = np.isnat(out)
    if bad.any():
        r = _first_row(bad)
        value = col[r].as_py()
        if value is None:
            raise _RowError(r, column, "date is missing")
        raise _RowError(
            r, column, f"unparseable date {value!r} (use YYYYMMDD, YYYY-MM-DD or YYYY/MM/DD)"
        )
    return out


def _floats(col: pa.ChunkedArray, column: str) -> np.ndarray:
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t):
        return pc.cast(col, pa.float64()).to_numpy()
    try:
        text = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
        return pc.cast(text, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = pd.Series(col.to_pylist(), dtype=object)
        bad = (pd.to_numeric(values, errors="coerce").isna() & values.notna()).to_numpy()
        bad &= ~values.astype(str).str.strip().isin(_NULLS).to_numpy()
        if not bad.any():
            raise
        r = _first_row(bad)
        raise _RowError(r, column, f"expected a number, got {values.iloc[r]!r}") from None


@dataclass
class _Part:
    """Converted columns of one or more consecutive files (or of a DataFrame)."""

    files: list[tuple[str, int]]  # (source, header line) of each file, in row order
    counts: list[int] | None  # rows of each file (None: parsed together, not counted)
    code_ids: np.ndarray
    code_values: list[str]
    dates: np.ndarray
    floats: dict[str, np.ndarray]
    name_ids: np.ndarray | None = None
    name_values: list[str] = field(default_factory=list)
    offset: int = 0  # row of its file the part starts at (blocks of a streamed file)
    nbytes: int | None = None  # bytes of the file it covers (None: its whole files)

    @property
    def n(self) -> int:
        return len(self.dates)


def _convert(
    table: pa.Table, targets: Mapping[str, str], decode: Callable[[list[Any]], list[str | None]]
) -> dict[str, Any]:
    """Columns of a parsed table (vendor names) as numpy arrays under our names."""
    by_target = {t: v for v, t in targets.items()}
    vc, vd = by_target["ts_code"], by_target["trade_date"]
    out: dict[str, Any] = {}
    out["code_ids"], out["code_values"] = _dictionary(
        table.column(vc), vc, code=True, decode=decode
    )
    out["dates"] = _dates(table.column(vd), vd)
    if "name" in by_target:
        v = by_target["name"]
        out["name_ids"], out["name_values"] = _dictionary(
            table.column(v), v, code=False, decode=decode
        )
    out["floats"] = {
        t: _floats(table.column(v), v) for t, v in by_target.items() if t in _FLOAT_FIELDS
    }
    return out


def _row_message(spec: _Spec, where: str, err: _RowError, header_line: int | None) -> str:
    at = ""
    if err.row is not None:
        line = "" if header_line is None else f" (line {header_line + err.row + 2})"
        at = f"row {err.row + 1}{line}, "
    return f"{spec.keyword}: {where}: {at}column {err.column!r}: {err.what}"


def _decoder(raw: _Raw) -> Callable[[list[Any]], list[str | None]]:
    return functools.partial(_text, encoding=raw.encoding)


def _one_csv(raw: _Raw, spec: _Spec) -> _Part:
    types = _csv_types(spec, raw.names)
    try:
        table = _parse_csv(raw.body, raw, types)
    except pa.ArrowInvalid as err:
        raise _locate_parse_error(raw, spec, err) from None
    try:
        cols = _convert(table, _targets(spec, raw.names), _decoder(raw))
    except _RowError as err:
        raise IngestError(_row_message(spec, str(raw.path), err, raw.header_line)) from None
    return _Part([(str(raw.path), raw.header_line)], [len(cols["dates"])], **cols)


def _targets(spec: _Spec, names: Iterable[str]) -> dict[str, str]:
    return {n: t for n in names if (t := spec.target(n)) is not None}


def _csv_run(raws: list[_Raw], spec: _Spec) -> list[_Part]:
    """Files with one header parsed as one buffer; on any error they are redone one by one."""
    if len(raws) == 1:
        return [_one_csv(raws[0], spec)]
    try:
        table = _parse_csv(b"".join(r.body for r in raws), raws[0], _csv_types(spec, raws[0].names))
        cols = _convert(table, _targets(spec, raws[0].names), _decoder(raws[0]))
    except (pa.ArrowInvalid, _RowError, IngestError):
        return [_one_csv(r, spec) for r in raws]
    del table
    return [_Part([(str(r.path), r.header_line) for r in raws], None, **cols)]


def _read_csv_files(paths: Sequence[Path], spec: _Spec) -> list[_Part]:
    raws = [r for p in paths if (r := _read_raw(p, spec)) is not None]
    parts: list[_Part] = []
    i = 0
    while i < len(raws):
        j = i + 1
        key = (raws[i].names, raws[i].delimiter, raws[i].encoding)
        while j < len(raws) and (raws[j].names, raws[j].delimiter, raws[j].encoding) == key:
            j += 1
        parts.extend(_csv_run(raws[i:j], spec))
        i = j
    return parts


def _read_parquet(path: Path, spec: _Spec) -> _Part:
    try:
        names = pq.read_schema(path).names
        targets = _check_columns(spec, str(path), names)
        table = pq.read_table(path, columns=list(targets), use_threads=False)
    except IngestError:
        raise
    except Exception as err:  # pyarrow raises many kinds
        raise IngestError(f"{spec.keyword}: cannot read {path}: {err}") from err
    try:
        cols = _convert(table, targets, functools.partial(_text, encoding=None))
    except _RowError as err:
        raise IngestError(_row_message(spec, str(path), err, None)) from None
    return _Part([(str(path), -1)], [table.num_rows], **cols)


def _streamable(path: Path, size: int, spec: _Spec) -> bool:
    """A CSV file large enough to be read in blocks (pyarrow's streaming reader), in a
    compression and encoding that can be streamed."""
    name = path.name.lower()
    return (
        size > _STREAM_BYTES
        and not _is_parquet(path)
        and not name.endswith((".xz", ".zip"))
        and (spec.encoding is None or _ascii_compatible(spec.encoding))
    )


def _big_csv(path: Path, size: int, spec: _Spec) -> tuple[_Raw, list[tuple[int, int]]] | None:
    """The header and the byte ranges (of about ``_STREAM_BLOCK``) of a large uncompressed
    CSV file, parsed in parallel like small files; None when it must be streamed instead
    (compressed, UTF-16)."""
    if path.name.lower().endswith(_COMPRESSED):
        return None
    with path.open("rb") as f:
        head = f.read(1 << 16)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    data, encoding = _decode(path, head, spec)
    if not data.strip():
        return None
    raw = _raw(path, data, encoding, spec)
    start = bom
    for _ in range(raw.header_line + 1):
        start = data.index(b"\n", start - bom) + 1 + bom
    bounds = list(range(start, size, _STREAM_BLOCK)) + [size]
    return raw, list(itertools.pairwise(bounds))


def _read_range(raw: _Raw, lo: int, hi: int, spec: _Spec) -> _Part:
    """The rows of a file that start in bytes ``[lo, hi)``; a bad cell raises _RowError with
    the row counted from ``lo`` (the caller adds the rows before)."""
    with raw.path.open("rb") as f:
        f.seek(lo - 1)
        f.readline()  # to the first line that starts at or after lo
        at = f.tell()
        data = f.read(hi - at) if at < hi else b""
        if data and not data.endswith(b"\n"):
            data += f.readline()
    chunk = _Raw(raw.path, raw.names, raw.delimiter, raw.header_line, data, raw.encoding)
    try:
        table = _parse_csv(data, chunk, _csv_types(spec, raw.names))
    except pa.ArrowInvalid as err:
        located = _bad_cell(chunk, err)
        if located is None:
            raise IngestError(f"{spec.keyword}: {raw.path}: cannot parse: {err}") from None
        raise located from None
    cols = _convert(table, _targets(spec, raw.names), _decoder(raw))
    return _Part([(str(raw.path), raw.header_line)], [table.num_rows], **cols, nbytes=hi - lo)


def _stream_csv(path: Path, spec: _Spec) -> Iterator[_Part]:
    """The parts of one large CSV file, one per block of ``_STREAM_BLOCK`` bytes; the
    parser's threads work on the blocks while the caller copies the previous one."""
    try:
        with pa.input_stream(str(path), compression="detect") as f:
            head = f.read(1 << 16)
    except Exception as err:  # OSError, codec errors
        raise IngestError(f"{spec.keyword}: cannot read {path}: {err}") from err
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: transcoded whole instead
        yield from _read_group([path], spec)
        return
    data, encoding = _decode(path, head, spec)
    if not data.strip():
        return
    raw = _raw(path, data, encoding, spec)
    types = _csv_types(spec, raw.names)
    targets = _targets(spec, raw.names)
    try:
        reader = pacsv.open_csv(
            pa.input_stream(str(path), compression="detect"),
            read_options=pacsv.ReadOptions(
                column_names=list(raw.names),
                skip_rows=raw.header_line + 1,
                block_size=_STREAM_BLOCK,
                use_threads=True,
            ),
            parse_options=pacsv.ParseOptions(delimiter=raw.delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(types),
                column_types=types,
                null_values=_NULLS,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        offset = 0
        for batch in reader:
            try:
                cols = _convert(pa.Table.from_batches([batch]), targets, _decoder(raw))
            except _RowError as err:
                if err.row is not None:
                    err.row += offset
                raise IngestError(_row_message(spec, str(path), err, raw.header_line)) from None
            n = batch.num_rows
            yield _Part([(str(path), raw.header_line)], [n], **cols, offset=offset)
            offset += n
    except pa.ArrowInvalid as err:
        raise IngestError(f"{spec.keyword}: {path}: cannot parse: {err}") from None


def _read_group(paths: Sequence[Path], spec: _Spec) -> list[_Part]:
    """Parts of consecutive files (CSV files with one header parsed together)."""
    parts: list[_Part] = []
    csvs: list[Path] = []
    for p in paths:
        if _is_parquet(p):
            parts.extend(_read_csv_files(csvs, spec))
            csvs = []
            parts.append(_read_parquet(p, spec))
        else:
            csvs.append(p)
    parts.extend(_read_csv_files(csvs, spec))
    return parts


def _arrow(s: pd.Series) -> pa.Array:
    try:
        return pa.array(s, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if pd.isna(v) else str(v) for v in s], type=pa.string())


def _frame_part(df: pd.DataFrame, spec: _Spec) -> _Part:
    where = f"DataFrame {spec.keyword}"
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        raise IngestError(f"{spec.keyword}: {where} has duplicate column names")
    targets = _check_columns(spec, where, names)
    by_name = dict(zip(names, df.columns, strict=True))
    table = pa.table({v: _arrow(df[by_name[v]]) for v in targets})
    try:
        cols = _convert(table, targets, functools.partial(_text, encoding=None))
    except _RowError as err:
        raise IngestError(_row_message(spec, where, err, None)) from None
    return _Part([(where, -1)], [len(df)], **cols)


# --------------------------------------------------------------------------------------------
# Assembling the long frame


class _Sink:
    """One preallocated array per column; parts are copied in as they arrive.

    The arrays are sized from the bytes per row of the first part (plus a margin); pages
    beyond the rows written are never touched, so the margin costs address space, not memory.
    A short estimate grows the arrays (one column at a time).
    """

    def __init__(self, total_bytes: int, sizes: Mapping[str, int]) -> None:
        self.total_bytes, self.sizes = total_bytes, sizes
        self.n = 0
        self.cap = 0
        self.floats: dict[str, np.ndarray] = {}
        self.dates = np.empty(0, "datetime64[ns]")
        self.codes = np.empty(0, np.int32)
        self.names: np.ndarray | None = None
        self.code_index: dict[str, int] = {}
        self.name_index: dict[str, int] = {}
        self.parts: list[tuple[int, _Part]] = []  # (first row, part without its arrays)
        self.bytes_done = 0

    def _bytes(self, part: _Part) -> int:
        if part.nbytes is not None:
            return part.nbytes
        return sum(self.sizes.get(f, 0) for f, _ in part.files)

    def _grow(self, need: int, part: _Part) -> None:
        part_bytes = self._bytes(part)
        left = max(self.total_bytes - self.bytes_done - part_bytes, 0)
        rows_per_byte = part.n / part_bytes if part_bytes else 0.0
        cap = max(need + int(left * rows_per_byte * 1.05) + 1024, 2 * self.cap)

        def grown(a: np.ndarray) -> np.ndarray:
            b = np.empty(cap, dtype=a.dtype)
            b[: self.n] = a[: self.n]
            return b

        for k in list(self.floats):
            self.floats[k] = grown(self.floats[k])
        self.dates, self.codes = grown(self.dates), grown(self.codes)
        if self.names is not None:
            self.names = grown(self.names)
        self.cap = cap

    def add(self, part: _Part) -> None:
        a, b = self.n, self.n + part.n
        if b > self.cap:
            self._grow(b, part)
        sl = slice(a, b)
        for k, v in part.floats.items():
            if k not in self.floats:
                self.floats[k] = np.empty(self.cap)
                self.floats[k][:a] = np.nan
            self.floats[k][sl] = v
        for k, arr in self.floats.items():
            if k not in part.floats:
                arr[sl] = np.nan
        self.dates[sl] = part.dates
        lut = np.array(
            [self.code_index.setdefault(c, len(self.code_index)) for c in part.code_values],
            dtype=np.int32,
        )
        self.codes[sl] = lut[part.code_ids] if len(lut) else 0
        if part.name_ids is not None and self.names is None:
            self.names = np.empty(self.cap, np.int32)
            self.names[:a] = -1
        if self.names is not None:
            if part.name_ids is None:
                self.names[sl] = -1
            else:
                nl = [self.name_index.setdefault(c, len(self.name_index)) for c in part.name_values]
                self.names[sl] = np.array([*nl, -1], dtype=np.int32)[part.name_ids]
        self.n = b
        self.bytes_done += self._bytes(part)
        self.parts.append((a, _Part(part.files, part.counts, *_EMPTY, offset=part.offset)))

    def frame(self, divisors: Mapping[str, float]) -> pd.DataFrame:
        n = self.n
        codes = np.array(list(self.code_index), dtype=object)
        order = np.argsort(codes, kind="stable")
        rank = np.empty(len(order), np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        out: dict[str, Any] = {
            "ts_code": pd.Categorical.from_codes(rank[self.codes[:n]], categories=codes[order]),
            "trade_date": self.dates[:n],
        }
        if self.names is not None:
            names = np.array(list(self.name_index), dtype=object)
            out["name"] = pd.Categorical.from_codes(self.names[:n], categories=names)
        for k in _FLOAT_FIELDS:
            if k in self.floats:
                v = self.floats[k][:n]
                if k in divisors:
                    v /= divisors[k]
                out[k] = v
        self.floats.clear()
        return pd.DataFrame(out, copy=False)


_EMPTY = (np.empty(0, np.int32), [], np.empty(0, "datetime64[ns]"), {})


class Origin:
    """Where each row of a read frame came from: the file, its row and line.

    Rows of files parsed together are counted again (by re-reading those files) only when a
    message needs them.
    """

    def __init__(self, label: str, spec: _Spec, parts: list[tuple[int, _Part]], csv: bool):
        self.label, self.spec, self.csv = label, spec, csv
        self._starts = [a for a, _ in parts]
        self._parts = [p for _, p in parts]

    def locate(self, row: int) -> str:
        """``file <path>: row <r> (line <l>)`` of a 0-based row of the frame."""
        k = max(bisect.bisect_right(self._starts, row) - 1, 0)
        part = self._parts[k]
        if part.counts is None:
            part.counts = [
                sum(p.n for p in _read_group([Path(f)], self.spec)) for f, _ in part.files
            ]
        r = row - self._starts[k]
        for (f, header), c in zip(part.files, part.counts, strict=True):
            if r < c:
                r += part.offset
                line = f" (line {header + r + 2})" if header >= 0 else ""
                kind = "" if f.startswith("DataFrame") else "file "
                return f"{kind}{f}: row {r + 1}{line}"
            r -= c
        return f"{self.label}: row {row + 1}"


# --------------------------------------------------------------------------------------------
# Entry points


def _tasks(groups: list[list[Path]], big: set[str], spec: _Spec) -> Iterator[tuple[Any, ...]]:
    """What to read, in file order: ("group", files), ("range", header, lo, hi) of a large
    uncompressed file, or ("stream", path) of a large compressed one."""
    for g in groups:
        if len(g) == 1 and str(g[0]) in big:
            ranges = _big_csv(g[0], g[0].stat().st_size, spec)
            if ranges is None:
                yield ("stream", g[0])
                continue
            raw, spans = ranges
            for lo, hi in spans:
                yield ("range", raw, lo, hi)
        else:
            yield ("group", g)


def _threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def _groups(
    files: Sequence[Path], sizes: Sequence[int], workers: int, alone: set[str]
) -> list[list[Path]]:
    """Consecutive files in groups of about ``_GROUP_BYTES`` (4 groups per worker or more,
    unless the groups would be smaller than ``_MIN_GROUP_BYTES``)."""
    target = min(_GROUP_BYTES, max(sum(sizes) // (4 * workers), _MIN_GROUP_BYTES))
    groups: list[list[Path]] = []
    cur: list[Path] = []
    acc = 0
    for p, s in zip(files, sizes, strict=True):
        if str(p) in alone:  # a file streamed on its own
            groups.extend([cur, [p]] if cur else [[p]])
            cur, acc = [], 0
            continue
        cur.append(p)
        acc += s
        if acc >= target:
            groups.append(cur)
            cur, acc = [], 0
    if cur:
        groups.append(cur)
    return groups


def read_table(
    source: Any,
    keyword: str = "daily",
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    encoding: str | None = None,
    skiprows: int | None = None,
) -> tuple[pd.DataFrame, Origin]:
    """:func:`read_vendor_daily` for any stock table of :data:`REQUIRED`, with the rows' origin."""
    spec = _spec(keyword, columns, units, encoding, skiprows)
    if isinstance(source, pd.DataFrame):
        part = _frame_part(source, spec)
        sink = _Sink(0, {})
        sink.add(part)
        return sink.frame(spec.divisors), Origin(f"DataFrame {keyword}", spec, sink.parts, False)
    files, label = _resolve(source, keyword)
    sizes = [p.stat().st_size for p in files]
    workers = min(_threads(), len(files))
    big = {str(p) for p, s in zip(files, sizes, strict=True) if _streamable(p, s, spec)}
    groups = _groups(files, sizes, workers, big)
    sink = _Sink(sum(sizes), {str(p): s for p, s in zip(files, sizes, strict=True)})
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="quantdask-read") as pool:
        # A bounded window of groups in flight keeps parsed-but-unassembled parts small. A
        # large file is streamed in the main thread when its turn comes (its parts are
        # copied as they are parsed, never held all at once).
        pending: deque[tuple[str, Any, _Raw | None]] = deque()
        todo = iter(_tasks(groups, big, spec))

        def submit() -> None:
            task = next(todo, None)
            if task is None:
                return
            kind, *args = task
            if kind == "stream":
                pending.append((kind, args[0], None))
            elif kind == "range":
                pending.append((kind, pool.submit(_read_range, *args, spec), args[0]))
            else:
                pending.append((kind, pool.submit(_read_group, args[0], spec), None))

        file_rows: dict[str, int] = {}  # rows so far of each file read in byte ranges
        try:
            for _ in range(2 * workers):
                submit()
            while pending:
                kind, item, raw = pending.popleft()
                submit()
                if kind == "stream":
                    parts: Iterable[_Part] = _stream_csv(item, spec)
                elif kind == "group":
                    parts = item.result()
                else:
                    assert raw is not None
                    done = file_rows.get(str(raw.path), 0)
                    try:
                        part = item.result()
                    except _RowError as err:
                        err.row = None if err.row is None else err.row + done
                        raise IngestError(
                            _row_message(spec, str(raw.path), err, raw.header_line)
                        ) from None
                    part.offset = done
                    file_rows[str(raw.path)] = done + part.n
                    parts = [part]
                for part in parts:
                    sink.add(part)
        except BaseException:
            for _, f, _ in pending:
                if isinstance(f, Future):
                    f.cancel()
            raise
    csv = any(not _is_parquet(p) for p in files)
    return sink.frame(spec.divisors), Origin(label, spec, sink.parts, csv)


def read_vendor_daily(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | pd.DataFrame,
    /,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    encoding: str | None = None,
    skiprows: int | None = None,
) -> pd.DataFrame:
    """Read vendor daily bars (a directory, glob or list of per-stock files) in tushare layout.

    Parameters
    ----------
    source : path, glob pattern, list of paths or DataFrame
        A directory (every ``.csv``, ``.txt``, ``.tsv``, ``.parquet`` or ``.pq`` file in it,
        CSV optionally ``.gz``/``.bz2``/``.xz``/``.zip``/``.zst`` compressed; not recursive;
        hidden files skipped), a glob pattern (``"dump/sh*.csv"``; ``**`` recurses), a list
        of files, one file, or a DataFrame in the vendor's layout. Files are read in name
        order; files may have different headers.
    columns : mapping of str to str, optional
        Vendor column name -> our name, e.g. ``{"股票代码": "ts_code", "交易日期":
        "trade_date", "开盘价": "open", "成交量": "vol", "股票名称": "name"}``. Our names:
        ``ts_code``, ``trade_date``, ``name`` (per-row stock name), ``is_st``, ``industry``
        and the float fields of :data:`quantdask.io.schema.DAILY_FLOAT_FIELDS`. Columns
        already named so need no entry; other columns are not read.
    units : mapping of str to str, optional
        The vendor's units, converted to the store's (tushare) units: ``{"vol": "shares" |
        "lots", "amount": "yuan" | "thousand", "circ_mv" / "total_mv": "yuan" | "10k",
        "float_share" / "total_share": "shares" | "10k"}`` (:data:`UNITS`). Default: the
        store's units (lots, thousand CNY, 10k).
    encoding : str, optional
        Text encoding of CSV files. Default: from a byte-order mark (UTF-8, UTF-16), else
        UTF-8, else GB18030 (which reads GBK and GB2312), decided per file.
    skiprows : int, optional
        Lines before the header. Default: the header is the first of the first 5 lines
        that holds the ``ts_code`` and ``trade_date`` columns (after ``columns``), so a
        title line before it is skipped.

    Returns
    -------
    pandas.DataFrame
        One row per input row: ``ts_code`` (categorical, ``600000.SH`` form), ``trade_date``
        (datetime64[ns]), ``name`` (categorical, when mapped) and the float64 fields read,
        in store units. Rows keep file order; nothing is sorted or de-duplicated (that is
        :func:`quantdask.ingest`'s job).

    Raises
    ------
    IngestError
        No files match; a file has no header with the key columns or lacks a required
        column (``ts_code, trade_date, open, high, low, close, pre_close, vol, amount``)
        after mapping (the message names the file and the column and lists the file's
        columns); a mapping to an unknown field; an unknown unit; a code that cannot be
        read as a stock code, a missing or unparseable date, or text in a numeric column
        (naming the file, row and line); a file that is neither UTF-8 nor GB18030.

    Notes
    -----
    Codes are normalised from ``600000.SH``, ``sh600000``, ``SZ000001``, ``sh.600000``,
    ``SHSE.600000``, ``600000.XSHG`` or a bare ``600000`` (see :func:`normalise_code`). Dates
    may be ``YYYYMMDD``, ``YYYY-MM-DD``, ``YYYY/MM/DD`` or ISO date-times (the time is
    dropped). Cells ``""``, ``NaN``, ``NULL``, ``None``, ``--`` and ``-`` are missing.

    An explicit I/O point (not lazy). Files are parsed with pyarrow's CSV reader in a thread
    pool, consecutive files with one header as one buffer, and copied once into one array per
    column, so the peak memory is about the size of the result (12 M rows x 9 fields is about
    0.8 GB) plus a few tens of MB in flight. One large CSV file (over 64 MiB, a whole table)
    is read the same way in 16 MiB byte ranges split at line ends (a quoted field holding a
    newline is not supported there); a compressed one with pyarrow's streaming reader.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "sh600000.csv").write_text(
    ...     "浦发银行 日线\\n"
    ...     "股票代码,交易日期,开盘价,最高价,最低价,收盘价,前收盘价,成交量,成交额\\n"
    ...     "sh600000,2024-01-02,6.60,6.64,6.56,6.62,6.58,31000000,205000000\\n",
    ...     encoding="gbk",
    ... )
    >>> cols = {"股票代码": "ts_code", "交易日期": "trade_date", "开盘价": "open",
    ...         "最高价": "high", "最低价": "low", "收盘价": "close", "前收盘价": "pre_close",
    ...         "成交量": "vol", "成交额": "amount"}
    >>> df = read_vendor_daily(d, columns=cols, units={"vol": "shares", "amount": "yuan"})
    >>> df[["ts_code", "vol", "amount"]].to_dict("records")
    [{'ts_code': '600000.SH', 'vol': 310000.0, 'amount': 205000.0}]
    """
    return read_table(
        source, "daily", columns=columns, units=units, encoding=encoding, skiprows=skiprows
    )[0]
