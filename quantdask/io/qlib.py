"""qlib data directories, both ways: :func:`ingest_qlib` reads one, :func:`to_qlib` writes one.

A qlib data directory (``provider_uri``) holds::

    calendars/day.txt                 one ISO date per line, the trading calendar
    instruments/<name>.txt            <code> TAB <start> TAB <end>, one line per membership span
    features/<code>/<field>.day.bin   little-endian float32: the index of the first date in
                                      the calendar, then one value per calendar date to the
                                      instrument's last date (NaN on suspended days)

Conventions (qlib's published China data, and ``tests/data/qlib_alpha158/README.md``)
------------------------------------------------------------------------------------
* Codes are ``SH600000`` / ``SZ000001`` / ``BJ430047`` (directories usually lower case, read
  in either case); they map to ``600000.SH``-style ``ts_code``. ``SH000xxx``, ``SZ399xxx``
  and ``CSIxxxxxx`` are indices (``000300.SH``, ``399006.SZ``, ``932000.CSI``) and go to the
  ``index`` node; any other code that is not an A-share stock code of
  :data:`~quantdask.io.schema.STOCK_CODE` (B shares, funds) is skipped with a warning.
* Prices are adjusted: ``close = raw close * factor`` (same for open, high, low, vwap);
  ``factor`` is the cumulative adjustment factor (quantdask's ``adj_factor``); ``volume`` is
  ``shares / factor``; ``change`` is ``close / previous close - 1`` (the adjusted return,
  i.e. ``raw close / pre_close - 1`` with an ex-rights ``pre_close``); ``amount`` is in CNY
  and ``vwap = amount / shares * factor``. Index instruments have ``factor`` 1 (or no factor
  bin) and ``volume`` in shares.

What :func:`ingest_qlib` stores (float64, units of :mod:`quantdask.io.schema`)
------------------------------------------------------------------------------
* ``open/high/low/close`` = bin / ``factor``; ``adj_factor`` = ``factor``. Kept as float64, so
  ``close * adj_factor`` rounded to float32 is exactly the bin's value (tested).
* ``vol`` (lots) = ``volume * factor / 100``; ``amount`` (thousand CNY) = ``amount / 1000``,
  or ``vwap * volume / 1000`` where an instrument has a ``vwap`` bin and no ``amount`` bin.
  With neither, ``amount`` is all-NaN and listed in the daily attrs' ``missing_fields`` (as
  :func:`quantdask.ingest` records a missing field); ``attrs["amount_source"]`` says which
  of ``"qlib amount"``, ``"qlib vwap * volume"`` were used (``"none"`` otherwise). ``vwap``
  is not a store field: it is ``amount / vol`` (``$vwap`` in formulas).
* ``pre_close`` = ``close / (1 + change)``; where ``change`` is missing (no bin, or NaN on a
  traded day), the previous traded adjusted close divided by today's factor (the previous
  close adjusted for corporate actions, as tushare's ``pre_close``); NaN at an instrument's
  first bar without ``change``.
* A NaN day inside an instrument's span is a suspension (``suspended`` True, bar fields NaN),
  as is a day with ``volume == 0`` (:func:`quantdask.ingest`'s rule for vendor placeholders).
  ``list_date`` is the first date of the instrument's bins; delisting follows
  :func:`quantdask.ingest`'s ``stale_days`` rule (an instrument whose bins stop more than
  20 sessions before the store's last date is delisted after its last bar, with a warning).
* Every ``instruments/<name>.txt`` (``all``, ``csi300``, ...) becomes a slice of the
  ``index`` node's boolean ``member`` field, dims ``(date, universe, asset)``, ``universe``
  the file's name (:data:`~quantdask.io.schema.INDEX_MEMBER_FIELD`): True on the dates of
  its spans. qlib's known market names carry the index code in the ``universe_index``
  coordinate (``csi300`` -> ``000300.SH``, :data:`QLIB_MARKETS`; ``""`` otherwise).
  No weights are invented: ``weight`` stays NaN.
* Everything else of the schema (valuations, limits' vendor source, ST flags, industries,
  fundamentals) is absent from qlib data: limits are derived and ``is_st`` is False, as
  :func:`quantdask.ingest` does without those inputs.

What differs from qlib
----------------------
* The store's calendar is the qlib calendar days on which at least one selected instrument is
  inside its span (:func:`quantdask.ingest` builds the calendar from the bars); days outside
  every span are dropped, and the dates must be exchange sessions (``qd.IngestError``
  otherwise).
* ``instruments`` selects which codes are *loaded*; qlib filters a universe per date. Use
  ``market["index"]["member"].sel(universe="csi300")`` for qlib's per-date universe.
* Stricter checks: every bin of an instrument must cover exactly its span in ``all.txt``
  (qlib reads whatever is there).

:func:`to_qlib` writes the reverse: adjusted prices, ``volume``, ``vwap``, ``amount``,
``factor`` and ``change`` from the store, one span per instrument (first to last traded
bar), ``instruments/all.txt`` (stocks and indices) and one file per ``member`` universe
(other than ``all``) and per index with constituent ``weight`` s not already covered by a
universe (named as in :data:`QLIB_MARKETS`, else the lower-case qlib code, ``sh000016``).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from quantdask.io import schema
from quantdask.io.errors import IngestError, IngestWarning
from quantdask.io.ingest import ingest
from quantdask.io.store import MarketLike, as_market, atomic_directory, zarr_quiet

__all__ = ["QLIB_FIELDS", "QLIB_MARKETS", "ingest_qlib", "to_qlib"]

#: The ``features/<code>/<field>.day.bin`` fields read and written.
QLIB_FIELDS: tuple[str, ...] = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "amount",
    "factor",
    "change",
)
_PRICES = ("open", "high", "low", "close")
_REQUIRED = (*_PRICES, "volume")
#: qlib's market (instruments file) names of broad indices -> index code.
QLIB_MARKETS: dict[str, str] = {
    "csi100": "000903.SH",
    "csi300": "000300.SH",
    "csi500": "000905.SH",
    "csi800": "000906.SH",
    "csi1000": "000852.SH",
}
_QLIB_CODE = re.compile(r"^(SH|SZ|BJ|CSI)(\d{6})$")
_INDEX_PREFIX = {"SH": ("000",), "SZ": ("399",), "CSI": ("",)}


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"[ingest_qlib] {msg}", file=sys.stderr, flush=True)


def qlib_to_ts_code(code: str) -> tuple[str, str | None]:
    """``("600519.SH", "stock")`` for ``SH600519``; kind ``"index"``, or None if neither."""
    m = _QLIB_CODE.match(code.upper())
    if m is None:
        return code, None
    exch, num = m.groups()
    ts = f"{num}.{exch}"
    if exch != "CSI" and schema.STOCK_CODE.match(ts):
        return ts, "stock"
    if exch in _INDEX_PREFIX and num.startswith(_INDEX_PREFIX[exch]):
        return ts, "index"
    return ts, None


def ts_to_qlib_code(ts_code: str) -> str:
    """``SH600519`` for ``600519.SH`` (``CSI932000`` for ``932000.CSI``)."""
    num, _, exch = ts_code.partition(".")
    return f"{exch.upper()}{num}"


# ------------------------------------------------------------------------------------------
# reading


def _read_calendar(root: Path) -> pd.DatetimeIndex:
    path = root / "calendars" / "day.txt"
    try:
        days = pd.DatetimeIndex(pd.to_datetime(path.read_text().split(), format="ISO8601"))
    except (ValueError, TypeError) as err:
        raise IngestError(f"{path}: not a list of dates: {err}") from err
    if not len(days):
        raise IngestError(f"{path}: empty calendar")
    if not days.is_monotonic_increasing or not days.is_unique:
        raise IngestError(f"{path}: dates are not strictly increasing")
    return days.normalize()


def _read_instruments(path: Path) -> pd.DataFrame:
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 3:
            raise IngestError(f"{path} line {lineno}: want '<code> <start> <end>', got {line!r}")
        rows.append((parts[0].upper(), parts[1], parts[2], lineno))
    df = pd.DataFrame(rows, columns=["code", "start", "end", "line"])
    for col in ("start", "end"):
        try:
            df[col] = pd.to_datetime(df[col], format="ISO8601")
        except (ValueError, TypeError) as err:
            raise IngestError(f"{path}: unparseable {col} date: {err}") from err
    bad = df["end"] < df["start"]
    if bad.any():
        r = df[bad].iloc[0]
        raise IngestError(f"{path} line {r.line}: end {r.end.date()} before start")
    return df


def _read_bin(path: Path, n_cal: int) -> tuple[int, np.ndarray]:
    raw = np.fromfile(path, dtype="<f4")
    if len(raw) < 1 or not np.isfinite(raw[0]) or raw[0] != int(raw[0]) or raw[0] < 0:
        raise IngestError(f"{path}: first value must be the start index into the calendar")
    first = int(raw[0])
    if first + len(raw) - 1 > n_cal:
        raise IngestError(
            f"{path}: {len(raw) - 1} values from calendar index {first} run past the "
            f"calendar's {n_cal} dates"
        )
    return first, raw[1:].astype(np.float64)


def _feature_dirs(root: Path) -> dict[str, Path]:
    dirs: dict[str, Path] = {}
    for d in (root / "features").iterdir():
        if d.is_dir():
            key = d.name.upper()
            if key in dirs:
                raise IngestError(f"{root / 'features'}: both {dirs[key].name} and {d.name}")
            dirs[key] = d
    return dirs


def _prev_traded(adj_close: np.ndarray) -> np.ndarray:
    """The previous finite value before each position (NaN when none)."""
    n = len(adj_close)
    ok = np.isfinite(adj_close)
    pos = np.where(ok, np.arange(n), -1)
    pos = np.maximum.accumulate(pos)
    prev = np.full(n, -1)
    prev[1:] = pos[:-1]
    return np.where(prev >= 0, adj_close[np.maximum(prev, 0)], np.nan)


def _select_codes(
    instruments: str | Sequence[str], files: dict[str, pd.DataFrame], dirs: dict[str, Path]
) -> list[str]:
    if isinstance(instruments, str):
        if instruments not in files:
            raise IngestError(
                f"instruments={instruments!r}: no instruments/{instruments}.txt "
                f"(have: {', '.join(sorted(files)) or 'none'})"
            )
        return sorted(set(files[instruments]["code"]))
    codes = sorted({str(c).upper() for c in instruments})
    known = set(dirs) | (set(files["all"]["code"]) if "all" in files else set())
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise IngestError(
            f"instruments: unknown code(s) {unknown[:5]} (no features directory"
            f"{' and not in all.txt' if 'all' in files else ''})"
        )
    return codes


def ingest_qlib(
    provider_uri: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    instruments: str | Sequence[str] = "all",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Build a market store from a qlib data directory.

    Parameters
    ----------
    provider_uri : str or os.PathLike
        The qlib data directory (``calendars/``, ``instruments/``, ``features/``).
    path : str or os.PathLike
        Local directory of the new zarr store.
    instruments : str or sequence of str, default "all"
        The name of an instruments file (``"all"``, ``"csi300"``: every code that file ever
        lists) or a list of qlib codes (``["SH600000", "sz000001"]``, any case).
    start, end : str or pandas.Timestamp, optional
        First and last calendar date to load (inclusive).
    overwrite : bool, default False
        Replace an existing store at ``path``.
    progress : bool, default False
        Print a line to stderr per step and per 500 instruments read.

    Returns
    -------
    pathlib.Path
        The store path.

    Raises
    ------
    IngestError
        ``provider_uri`` is not a qlib data directory (no ``calendars/day.txt``,
        ``instruments/`` or ``features/``); an unknown instruments name or code; a bin whose
        start index or length disagrees with the instrument's span in ``all.txt`` (or runs
        past the calendar); a missing required bin (open, high, low, close, volume; factor
        for stocks); a traded day without a factor; anything :func:`quantdask.ingest`
        rejects (e.g. calendar dates that are not exchange sessions).
    FileExistsError
        ``path`` exists and ``overwrite`` is False.

    Warns
    -----
    IngestWarning
        Skipped codes that are neither A-share stocks nor indices; whatever
        :func:`quantdask.ingest` warns about (inferred delistings, closes outside
        ``[low, high]``, returns beyond the price limit).

    Notes
    -----
    Conversions and what differs from qlib: the module docstring. An explicit I/O point:
    the selected bins are read into memory and written through :func:`quantdask.ingest`
    (the ``daily`` and ``index`` bars as tushare-layout tables), then the ``member`` field is
    added to the ``index`` node; all of it in a temporary sibling directory renamed into
    place at the end, so a failure leaves nothing at ``path``.

    Examples
    --------
    >>> import quantdask as qd
    >>> qd.ingest_qlib("~/.qlib/qlib_data/cn_data", "cn.zarr", start="2020-01-01")  # doctest: +SKIP
    >>> m = qd.open_market("cn.zarr")  # doctest: +SKIP
    >>> csi300 = m["index"]["member"].sel(universe="csi300")  # doctest: +SKIP
    """
    root = Path(os.fspath(provider_uri)).expanduser()
    path = Path(os.fspath(path))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    for part in ("calendars/day.txt", "instruments", "features"):
        if not (root / part).exists():
            raise IngestError(f"{root} is not a qlib data directory: no {part}")
    calendar = _read_calendar(root)
    files = {p.stem: _read_instruments(p) for p in sorted((root / "instruments").glob("*.txt"))}
    if not files:
        raise IngestError(f"{root} is not a qlib data directory: no instruments/*.txt")
    dirs = _feature_dirs(root)
    codes = _select_codes(instruments, files, dirs)
    lo = 0 if start is None else int(calendar.searchsorted(pd.Timestamp(start)))
    hi = len(calendar) if end is None else int(calendar.searchsorted(pd.Timestamp(end), "right"))
    if lo >= hi:
        raise IngestError(f"no calendar dates between start={start!r} and end={end!r}")
    n_cal = len(calendar)
    spans = None
    if "all" in files:
        a = files["all"]
        g = a.groupby("code")
        spans = pd.DataFrame({"start": g["start"].min(), "end": g["end"].max()})
    trade_date = calendar.strftime("%Y%m%d").astype(np.int64).to_numpy()
    _say(progress, f"{len(codes)} instruments, {hi - lo} of {n_cal} calendar dates")

    stocks: list[dict[str, np.ndarray]] = []
    indices: list[dict[str, np.ndarray]] = []
    list_dates: list[tuple[str, int]] = []
    skipped: list[str] = []
    amount_sources: set[str] = set()
    for k, code in enumerate(codes):
        if progress and k and k % 500 == 0:
            _say(progress, f"read {k} of {len(codes)} instruments")
        ts, kind = qlib_to_ts_code(code)
        if kind is None:
            skipped.append(code)
            continue
        d = dirs.get(code)
        if d is None:
            raise IngestError(f"{code}: listed in the instruments file but no features/{code}")
        bins: dict[str, np.ndarray] = {}
        first = None
        for f in QLIB_FIELDS:
            fp = d / f"{f}.day.bin"
            if not fp.exists():
                continue
            b0, vals = _read_bin(fp, n_cal)
            if spans is not None and code in spans.index:
                s, e = spans.loc[code, "start"], spans.loc[code, "end"]
                want0 = int(calendar.searchsorted(s))
                want1 = int(calendar.searchsorted(e, "right"))
                if (b0, b0 + len(vals)) != (want0, want1):
                    got = f"{calendar[b0].date()}..{calendar[b0 + len(vals) - 1].date()}"
                    raise IngestError(
                        f"{fp}: start index {b0} and {len(vals)} values cover {got}, but "
                        f"instruments/all.txt gives {code} {s.date()}..{e.date()} "
                        f"({want1 - want0} dates)"
                    )
            if first is None:
                first, n = b0, len(vals)
            elif (b0, len(vals)) != (first, n):
                raise IngestError(
                    f"{fp}: start index {b0} and length {len(vals)} disagree with the other "
                    f"bins of {code} (start {first}, length {n})"
                )
            bins[f] = vals
        missing = [
            f for f in (*_REQUIRED, *(("factor",) if kind == "stock" else ())) if f not in bins
        ]
        if missing:
            raise IngestError(f"{d}: no {missing[0]}.day.bin")
        assert first is not None
        n = len(bins["close"])
        factor = bins.get("factor", np.ones(n))
        adj_close = bins["close"]
        traded = np.isfinite(adj_close)
        if kind == "stock" and (traded & ~np.isfinite(factor)).any():
            at = calendar[first + int(np.flatnonzero(traded & ~np.isfinite(factor))[0])]
            raise IngestError(f"{d}: factor is missing on a traded day ({at.date()})")
        with np.errstate(divide="ignore", invalid="ignore"):
            fac = np.where(traded, factor, np.nan)
            rows = {f: bins[f] / fac for f in _PRICES}
            rows["adj_factor"] = fac
            shares = bins["volume"] * fac
            rows["vol"] = shares / 100.0
            if "amount" in bins:
                rows["amount"] = bins["amount"] / 1000.0
                amount_sources.add("qlib amount")
            elif "vwap" in bins:
                rows["amount"] = bins["vwap"] * bins["volume"] / 1000.0
                amount_sources.add("qlib vwap * volume")
            else:
                rows["amount"] = np.full(n, np.nan)
            fallback = _prev_traded(adj_close) / fac
            change = bins.get("change", np.full(n, np.nan))
            rows["pre_close"] = np.where(
                np.isfinite(change), rows["close"] / (1.0 + change), fallback
            )
        # the selected window
        pos = np.arange(first, first + n)
        keep = (pos >= lo) & (pos < hi)
        if kind == "stock":
            # a NaN day inside the span is a suspension: a vol == 0 placeholder row
            rows["vol"] = np.where(traded, rows["vol"], 0.0)
            if not keep.any():
                continue
            list_dates.append((ts, int(trade_date[first])))
        else:
            keep &= traded
            if not keep.any():
                continue
        out = {f: v[keep] for f, v in rows.items()}
        out["trade_date"] = trade_date[pos[keep]]
        out["ts_code"] = np.full(int(keep.sum()), ts, dtype=object)
        (stocks if kind == "stock" else indices).append(out)
    if skipped:
        warnings.warn(
            f"ingest_qlib: skipped {len(skipped)} code(s) that are neither A-share stocks nor "
            f"indices, e.g. {', '.join(skipped[:3])}",
            IngestWarning,
            stacklevel=2,
        )

    def table(parts: list[dict[str, np.ndarray]], cols: Sequence[str]) -> pd.DataFrame | None:
        if not parts:
            return None
        return pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in cols})

    bar_cols = list(schema.DAILY_BAR_COLUMNS)
    daily = table(stocks, [*bar_cols, "adj_factor"])
    index_daily = table(indices, bar_cols)
    del stocks, indices
    if daily is None and index_daily is None:
        raise IngestError(f"{root}: no bars of the selected instruments between start and end")
    basic = None
    if list_dates:
        basic = pd.DataFrame(list_dates, columns=["ts_code", "list_date"])
    _say(progress, "writing the store")
    with atomic_directory(path, purpose="ingest_qlib") as tmp:
        ingest(tmp, daily=daily, index_daily=index_daily, stock_basic=basic)
        del daily, index_daily
        _say(progress, "writing index/member")
        _write_membership(tmp, files, calendar)
        source = " + ".join(sorted(amount_sources)) or "none"
        with zarr_quiet():
            group = zarr.open_group(str(tmp), mode="r+", zarr_format=3)
            group["daily"].attrs.update({"amount_source": source})
            group.attrs.update(
                {"generator": "quantdask.ingest_qlib", "qlib_provider_uri": str(root)}
            )
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*not recognized as a component.*")
                zarr.consolidate_metadata(str(tmp))
    _say(progress, f"done: {path}")
    return path


def _write_membership(
    store: Path, files: dict[str, pd.DataFrame], calendar: pd.DatetimeIndex
) -> None:
    """Add ``member`` (date, universe, asset) to the index node of ``store``."""
    with zarr_quiet():
        node = xr.open_zarr(str(store), group="index", consolidated=False)
        dates = node.indexes["date"]
        assets = node["asset"].values.astype(str)
    del calendar  # spans are matched on the store's dates
    names = sorted(files)
    T, A = len(dates), len(assets)
    member = np.zeros((T, len(names), A), dtype=bool)
    ts_of = {a: i for i, a in enumerate(assets)}
    for u, name in enumerate(names):
        df = files[name]
        ts = np.array([qlib_to_ts_code(c)[0] for c in df["code"]])
        a = np.array([ts_of.get(t, -1) for t in ts], dtype=np.int64)
        ok = a >= 0
        s = dates.searchsorted(df["start"].to_numpy()[ok])
        e = dates.searchsorted(df["end"].to_numpy()[ok], "right")
        inc = np.zeros((T + 1, A), dtype=np.int64)
        np.add.at(inc, (s, a[ok]), 1)
        np.add.at(inc, (e, a[ok]), -1)
        member[:, u, :] = np.cumsum(inc, axis=0)[:T] > 0
    width = max([len(n) for n in names] + [1])
    ds = xr.Dataset(
        {schema.INDEX_MEMBER_FIELD: (("date", "universe", "asset"), member)},
        coords={
            "universe": np.array(names, dtype=f"<U{width}"),
            "universe_index": (
                "universe",
                np.array([QLIB_MARKETS.get(n, "") for n in names], dtype="<U12"),
            ),
        },
    )
    enc = {
        schema.INDEX_MEMBER_FIELD: {"chunks": (schema.DATE_CHUNK, 1, schema.ASSET_CHUNK)},
    }
    with zarr_quiet():
        ds.to_zarr(
            str(store), group="index", mode="a", consolidated=False, zarr_format=3, encoding=enc
        )


# ------------------------------------------------------------------------------------------
# writing


def _write_bin(path: Path, first: int, values: np.ndarray) -> None:
    np.concatenate([[float(first)], values]).astype("<f4").tofile(path)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(column, first row, last row)`` of each run of True along axis 0 of a 2-D mask."""
    T, A = mask.shape
    pad = np.zeros((T + 2, A), dtype=np.int8)
    pad[1:-1] = mask
    d = np.diff(pad, axis=0)
    s_t, s_a = np.nonzero(d == 1)
    e_t, e_a = np.nonzero(d == -1)
    so, eo = np.lexsort((s_t, s_a)), np.lexsort((e_t, e_a))
    return s_a[so], s_t[so], e_t[eo] - 1


def _qlib_features(fields: dict[str, np.ndarray], factor: np.ndarray) -> dict[str, np.ndarray]:
    """qlib fields of raw (date, column) bars: NaN wherever the close is."""
    traded = np.isfinite(fields["close"])
    with np.errstate(divide="ignore", invalid="ignore"):
        fac = np.where(traded, factor, np.nan)
        out = {f: fields[f] * fac for f in _PRICES}
        out["volume"] = fields["vol"] * 100.0 / fac
        vol = np.where(fields["vol"] > 0, fields["vol"], np.nan)
        out["vwap"] = fields["amount"] * 10.0 / vol * fac
        out["amount"] = np.where(traded, fields["amount"] * 1000.0, np.nan)
        out["factor"] = fac
        out["change"] = fields["close"] / fields["pre_close"] - 1.0
    return out


def _write_features(
    root: Path, codes: np.ndarray, feats: dict[str, np.ndarray]
) -> list[tuple[str, int, int]]:
    """Bins of each column's span (first to last traded date); the spans written."""
    traded = np.isfinite(feats["close"])
    spans = []
    for j in np.flatnonzero(traded.any(axis=0)):
        rows = np.flatnonzero(traded[:, j])
        t0, t1 = int(rows[0]), int(rows[-1])
        code = ts_to_qlib_code(str(codes[j]))
        d = root / "features" / code.lower()
        d.mkdir(parents=True, exist_ok=True)
        has_amount = bool(np.isfinite(feats["amount"][t0 : t1 + 1, j]).any())
        for f in QLIB_FIELDS:
            if f in ("amount", "vwap") and not has_amount:
                continue
            _write_bin(d / f"{f}.day.bin", t0, feats[f][t0 : t1 + 1, j])
        spans.append((code, t0, t1))
    return spans


def _instrument_lines(lines: list[tuple[str, int, int]], dates: pd.DatetimeIndex) -> str:
    iso = dates.strftime("%Y-%m-%d")
    return "".join(f"{c}\t{iso[s]}\t{iso[e]}\n" for c, s, e in sorted(lines))


def to_qlib(
    market: MarketLike,
    provider_uri: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a market as a qlib data directory that pyqlib can read.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        A store path or the tree from :func:`quantdask.open_market` (possibly sliced).
    provider_uri : str or os.PathLike
        The directory to write (qlib's ``provider_uri``).
    overwrite : bool, default False
        Replace an existing directory.

    Returns
    -------
    pathlib.Path
        ``provider_uri``.

    Raises
    ------
    FileExistsError
        ``provider_uri`` exists and ``overwrite`` is False.

    Notes
    -----
    Writes ``calendars/day.txt`` (the store's dates), ``instruments/all.txt`` (every stock
    and index with a traded bar: first to last traded date), one ``instruments/<name>.txt``
    per ``member`` universe other than ``all`` and per index with ``weight`` > 0 not already
    named by a universe's ``universe_index`` (:data:`QLIB_MARKETS` names, else the lower-case
    qlib code), and ``features/<lower-case code>/<field>.day.bin`` for open, high, low,
    close, volume, vwap, amount, factor, change in qlib's conventions (module docstring):
    float32, every field NaN on the days without a close inside the span. ``amount`` and
    ``vwap`` are not written for an instrument with no ``amount`` value. Index instruments
    get ``factor`` 1 and ``volume`` in shares.

    An explicit I/O point: the daily fields are read one block of ``ASSET_CHUNK`` assets
    (all dates) at a time. Written into a temporary sibling directory renamed into place at
    the end.

    Examples
    --------
    >>> import quantdask as qd
    >>> qd.to_qlib("market.zarr", "qlib_data")  # doctest: +SKIP
    """
    tree = as_market(market)
    target = Path(os.fspath(provider_uri)).expanduser()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    daily = tree["daily"].to_dataset(inherit=False).reset_coords(drop=True)
    dates = pd.DatetimeIndex(daily.indexes["date"])
    assets = daily["asset"].values.astype(str)
    raw = ("open", "high", "low", "close", "pre_close", "vol", "amount")
    all_lines: list[tuple[str, int, int]] = []
    with atomic_directory(target, purpose="to_qlib") as tmp:
        (tmp / "calendars").mkdir(parents=True)
        (tmp / "instruments").mkdir()
        (tmp / "features").mkdir()
        (tmp / "calendars" / "day.txt").write_text(
            "".join(f"{d}\n" for d in dates.strftime("%Y-%m-%d"))
        )
        for a0 in range(0, len(assets), schema.ASSET_CHUNK):
            block = daily.isel(asset=slice(a0, a0 + schema.ASSET_CHUNK))
            fields = {f: block[f].values.astype(np.float64) for f in raw}
            feats = _qlib_features(fields, block["adj_factor"].values.astype(np.float64))
            all_lines += _write_features(tmp, assets[a0 : a0 + schema.ASSET_CHUNK], feats)
        idx = None
        if "index" in tree.children:
            idx = tree["index"].to_dataset(inherit=False)
        if idx is not None and idx.sizes.get("index", 0):
            ix = idx.reset_coords(drop=True).reindex(date=dates)
            fields = {f: ix[f].values.astype(np.float64) for f in raw if f in ix}
            feats = _qlib_features(fields, np.ones_like(fields["close"]))
            all_lines += _write_features(tmp, ix["index"].values.astype(str), feats)
        (tmp / "instruments" / "all.txt").write_text(_instrument_lines(all_lines, dates))
        if idx is not None:
            _write_memberships(tmp, idx, dates)
    return target


def _write_memberships(root: Path, idx: xr.Dataset, dates: pd.DatetimeIndex) -> None:
    """One instruments file per ``member`` universe (but ``all``) and per weighted index."""
    idx = idx.reindex(date=dates)
    masks: dict[str, Any] = {}
    covered: set[str] = set()
    member = idx.get(schema.INDEX_MEMBER_FIELD)
    if member is not None:
        covered = {str(c) for c in member.coords.get("universe_index", xr.DataArray([])).values}
        for u in member["universe"].values.astype(str):
            if u != "all":
                masks[u] = lambda u=u: member.sel(universe=u).transpose("date", "asset").values
    weight = idx.get(schema.INDEX_WEIGHT_FIELD)
    if weight is not None:
        by_code = {v: k for k, v in QLIB_MARKETS.items()}
        for code in idx["index"].values.astype(str):
            if code in covered:
                continue
            name = by_code.get(code, ts_to_qlib_code(code).lower())
            if name in masks or name == "all":
                continue
            masks[name] = lambda c=code: (weight.sel(index=c).transpose("date", "asset") > 0).values
    if not masks:
        return
    assets = idx["asset"].values.astype(str)
    qcodes = np.array([ts_to_qlib_code(a) for a in assets])
    for name, get in masks.items():
        mask = np.asarray(get(), dtype=bool)
        if not mask.any():
            continue
        cols, s, e = _runs(mask)
        lines = list(zip(qcodes[cols].tolist(), s.tolist(), e.tolist(), strict=True))
        (root / "instruments" / f"{name}.txt").write_text(_instrument_lines(lines, dates))
