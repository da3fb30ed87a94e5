"""Check a market store against the layout contract of :mod:`quantdask.io.schema`."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
import zarr

from quantdask.io import _journal, schema
from quantdask.io.calendar import _xshg_sessions
from quantdask.io.store import zarr_quiet

__all__ = ["VerifyReport", "verify"]

_PRICES = ("open", "high", "low", "close", "pre_close", "up_limit", "down_limit")
_NONNEG = ("vol", "amount")
_WEIGHT_TOL = 1e-6


@dataclass
class VerifyReport:
    """What :func:`verify` found.

    Attributes
    ----------
    path : str
        The store checked.
    ok : bool
        True when no problem was found.
    problems : list of str
        One line per problem.
    repaired : list of str
        What ``repair=True`` did (rolling back an interrupted append).
    """

    path: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"market store {self.path}: " + (
            "OK" if self.ok else f"{len(self.problems)} problem(s)"
        )
        lines = [head]
        lines += [f"  repaired: {r}" for r in self.repaired]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def __bool__(self) -> bool:
        return self.ok


def _chunk_shape(group: zarr.Group, name: str) -> tuple[int, ...] | None:
    try:
        arr = group[name]
    except KeyError:
        return None
    grid = arr.metadata.chunk_grid
    return tuple(getattr(grid, "chunk_shape", ()))


def _check_chunks(
    problems: list[str],
    where: str,
    chunks: tuple[int, ...] | None,
    shape: tuple[int, ...],
    want: tuple[int, ...],
) -> None:
    if chunks is None:
        return
    for c, n, w in zip(chunks, shape, want, strict=False):
        if c != w and not (n < w and c >= n):
            problems.append(f"{where}: stored chunks {chunks}, schema wants {want}")
            return


def _day(value: Any) -> str:
    return str(np.datetime_as_string(np.datetime64(value, "ns"), unit="D"))


def _trading_day_problems(dates: np.ndarray, where: str) -> list[str]:
    out: list[str] = []
    if not len(dates):
        return out
    if np.isnat(dates).any():
        out.append(f"{where}: date coordinate holds NaT")
        return out
    steps = np.diff(dates.astype("datetime64[ns]").astype(np.int64))
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0])
        out.append(f"{where}: dates not strictly ascending at {_day(dates[i + 1])}")
    weekday = (dates.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 0 = Monday
    if (weekday >= 5).any():
        out.append(
            f"{where}: weekend date {_day(dates[np.flatnonzero(weekday >= 5)[0]])} in the calendar"
        )
    sessions = _xshg_sessions().to_numpy()
    in_range = (dates >= sessions[0]) & (dates <= sessions[-1])
    bad = in_range & ~np.isin(dates.astype("datetime64[ns]"), sessions)
    if bad.any():
        out.append(
            f"{where}: {int(bad.sum())} date(s) are not Shanghai exchange sessions, "
            f"first {_day(dates[np.flatnonzero(bad)[0]])}"
        )
    return out


def _labels_unique(values: Any, where: str, pattern: Any = None) -> list[str]:
    out: list[str] = []
    labels = np.asarray(values).astype(object)
    uniq, counts = np.unique(labels.astype(str), return_counts=True)
    if (counts > 1).any():
        out.append(f"{where}: duplicate label {uniq[counts > 1][0]!r}")
    if pattern is not None and len(labels):
        bad = [c for c in labels.tolist() if not pattern.fullmatch(str(c))]
        if bad:
            out.append(f"{where}: {len(bad)} label(s) of unknown code format, first {bad[0]!r}")
    return out


def _label_dtype_problems(ds: xr.Dataset, node: str, names: tuple[str, ...]) -> list[str]:
    """Label coordinates must be fixed-width ``<U`` strings, as every quantdask writer stores.

    numpy's variable-width ``StringDType`` (what older ingests wrote) breaks ordinary idioms
    such as ``.values.astype(str)``.
    """
    out: list[str] = []
    for name in names:
        if name in ds.variables and ds[name].dtype.kind != "U":
            out.append(
                f"{node}/{name}: labels stored as {ds[name].dtype}, want fixed-width <U strings "
                "(rebuild the store with qd.ingest)"
            )
    return out


def verify(path: str | os.PathLike[str], *, repair: bool = False) -> VerifyReport:
    """Check a market store against the schema, optionally rolling back an interrupted append.

    Parameters
    ----------
    path : str or os.PathLike
        Local store directory (made by :func:`quantdask.ingest` or
        :func:`quantdask.synthetic_market`).
    repair : bool, default False
        Roll back an interrupted :func:`quantdask.append` from the store's undo journal before
        checking (the store returns to exactly its state before the append).

    Returns
    -------
    VerifyReport
        ``ok``, ``problems`` (one line each) and ``repaired``; ``str(report)`` prints them.

    Notes
    -----
    Checks: the nodes (``daily``, ``index``, ``fundamentals``, ``macro``; ``offshore`` when
    present), every field of :mod:`quantdask.io.schema` with its dims, dtype and stored
    chunking, the per-asset coordinates, sorted unique dates that are weekdays and Shanghai
    exchange sessions, unique asset and index labels of known code formats stored as
    fixed-width ``<U`` strings, the same calendar
    on every ``date`` node, no non-positive prices or negative volumes, ``high >= low``,
    weights in [0, 1] summing to 1 per (date, index) where present, announcements not before
    their period end, and a leftover append journal.

    This is an explicit reduction point: the value checks read the whole store, chunk by
    chunk, in one dask computation (memory stays at a few chunks per worker).
    """
    p = Path(path)
    problems: list[str] = []
    repaired: list[str] = []
    if not p.is_dir():
        return VerifyReport(str(p), False, [f"no store directory at {p}"])
    if _journal.has_journal(p):
        if repair:
            repaired += _journal.rollback(p)
        else:
            problems.append(
                "an interrupted append left its undo journal; "
                "run verify(path, repair=True) to roll it back"
            )
    with zarr_quiet(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not recognized as a component.*")
        try:
            tree = xr.open_datatree(str(p), engine="zarr", chunks={})
            group = zarr.open_group(str(p), mode="r")
        except Exception as err:
            problems.append(f"cannot open as a zarr store: {err}")
            return VerifyReport(str(p), False, problems, repaired)
        problems += _check_tree(tree, group)
    return VerifyReport(str(p), not problems, problems, repaired)


def _check_tree(tree: xr.DataTree, group: zarr.Group) -> list[str]:
    problems: list[str] = []
    for node in ("daily", "index", "fundamentals", "macro"):
        if node not in tree.children:
            problems.append(f"missing node {node!r}")
    lazy: dict[str, Any] = {}
    calendar = None
    if "daily" in tree.children:
        daily = tree["daily"].to_dataset()
        calendar = daily["date"].values if "date" in daily.coords else None
        problems += _check_daily(daily, group["daily"], lazy)
    if "index" in tree.children:
        problems += _check_index(tree["index"].to_dataset(), group["index"], lazy)
    if "fundamentals" in tree.children:
        problems += _check_fundamentals(tree["fundamentals"].to_dataset(), lazy)
    for node, fields in (("macro", schema.MACRO_FIELDS), ("offshore", schema.OFFSHORE_FIELDS)):
        if node not in tree.children:
            continue
        ds = tree[node].to_dataset()
        for f in fields:
            if f not in ds:
                problems.append(f"{node}: missing field {f!r}")
            elif ds[f].dims != ("date",) or ds[f].dtype != schema.FLOAT_DTYPE:
                problems.append(
                    f"{node}/{f}: dims {ds[f].dims} dtype {ds[f].dtype}, want ('date',) float64"
                )
    for node in ("index", "macro", "offshore"):
        if node in tree.children and calendar is not None and "date" in tree[node].coords:
            other = tree[node]["date"].values
            if len(other) != len(calendar) or (other != calendar).any():
                problems.append(f"{node}: date coordinate differs from the daily calendar")
    if lazy:
        try:
            (counts,) = dask.compute(lazy)
        except Exception as err:  # a damaged chunk is itself the finding
            problems.append(f"cannot read the data: {type(err).__name__}: {err}")
            return problems
        for key, n in counts.items():
            n = int(n)
            if n:
                problems.append(f"{key}: {n} cell(s)")
    return problems


def _check_daily(ds: xr.Dataset, group: zarr.Group, lazy: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for d in ("date", "asset"):
        if d not in ds.coords:
            problems.append(f"daily: missing coordinate {d!r}")
    if problems:
        return problems
    problems += _trading_day_problems(ds["date"].values, "daily")
    problems += _label_dtype_problems(ds, "daily", ("asset", "name", "exchange", "board"))
    problems += _labels_unique(ds["asset"].values, "daily asset", schema.STOCK_CODE)
    if ds["date"].dtype != np.dtype("datetime64[ns]"):
        problems.append(f"daily: date dtype {ds['date'].dtype}, want datetime64[ns]")
    for c in schema.ASSET_COORDS:
        if c not in ds.coords:
            problems.append(f"daily: missing per-asset coordinate {c!r}")
        elif ds[c].dims != ("asset",):
            problems.append(f"daily: coordinate {c!r} has dims {ds[c].dims}, want ('asset',)")
    want_dtype = {f: np.dtype(schema.FLOAT_DTYPE) for f in schema.DAILY_FLOAT_FIELDS}
    want_dtype.update({f: np.dtype(bool) for f in schema.DAILY_FLAG_FIELDS})
    want_dtype[schema.DAILY_INDUSTRY_FIELD] = np.dtype(schema.INDUSTRY_DTYPE)
    for f, dt in want_dtype.items():
        if f not in ds:
            problems.append(f"daily: missing field {f!r}")
            continue
        v = ds[f]
        if v.dims != ("date", "asset"):
            problems.append(f"daily/{f}: dims {v.dims}, want ('date', 'asset')")
            continue
        if v.dtype != dt:
            problems.append(f"daily/{f}: dtype {v.dtype}, want {dt}")
        _check_chunks(
            problems,
            f"daily/{f}",
            _chunk_shape(group, f),
            v.shape,
            (schema.DATE_CHUNK, schema.ASSET_CHUNK),
        )
    for f in _PRICES:
        if f in ds:
            lazy[f"daily/{f}: non-positive prices"] = (ds[f].data <= 0).sum()
    for f in _NONNEG:
        if f in ds:
            lazy[f"daily/{f}: negative values"] = (ds[f].data < 0).sum()
    if "high" in ds and "low" in ds:
        lazy["daily: high < low"] = (ds["high"].data < ds["low"].data).sum()
    if "suspended" in ds and "close" in ds and ds["suspended"].dtype == bool:
        lazy["daily: suspended but with a close price"] = (
            ds["suspended"].data & ~np.isnan(ds["close"].data)
        ).sum()
    return problems


def _check_index(ds: xr.Dataset, group: zarr.Group, lazy: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if "index" in ds.coords:
        problems += _labels_unique(ds["index"].values, "index labels", schema.INDEX_CODE)
    problems += _label_dtype_problems(ds, "index", ("index", "asset"))
    for f in schema.INDEX_FIELDS:
        if f not in ds:
            continue
        v = ds[f]
        if v.dims != ("date", "index") or v.dtype != schema.FLOAT_DTYPE:
            problems.append(
                f"index/{f}: dims {v.dims} dtype {v.dtype}, want ('date', 'index') float64"
            )
    if "close" not in ds:
        problems.append("index: missing field 'close'")
    for f in ("open", "high", "low", "close"):
        if f in ds:
            lazy[f"index/{f}: non-positive values"] = (ds[f].data <= 0).sum()
    w = ds.get(schema.INDEX_WEIGHT_FIELD)
    if w is None:
        problems.append(f"index: missing field {schema.INDEX_WEIGHT_FIELD!r}")
    elif w.dims != ("date", "index", "asset") or w.dtype != schema.FLOAT_DTYPE:
        problems.append(
            f"index/weight: dims {w.dims} dtype {w.dtype}, want ('date', 'index', 'asset') float64"
        )
    else:
        data = w.data
        lazy["index/weight: outside [0, 1]"] = ((data < 0) | (data > 1 + _WEIGHT_TOL)).sum()
        total = da.nansum(data, axis=2)
        present = (~da.isnan(data)).any(axis=2)
        lazy["index/weight: (date, index) sums not 1"] = (
            present & (abs(total - 1) > _WEIGHT_TOL)
        ).sum()
    return problems


def _check_fundamentals(ds: xr.Dataset, lazy: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for k in schema.FUNDAMENTAL_KEYS:
        if k not in ds.variables:
            problems.append(f"fundamentals: missing key {k!r}")
    if "asset" in ds.variables and ds.sizes.get("record", 0):
        problems += _label_dtype_problems(ds, "fundamentals", ("asset",))
    for f in schema.STATEMENT_ITEMS:
        if f not in ds:
            problems.append(f"fundamentals: missing item {f!r}")
    for name, v in ds.variables.items():
        if v.dims != ("record",):
            problems.append(f"fundamentals/{name}: dims {v.dims}, want ('record',)")
    if "ann_date" in ds and "end_date" in ds:
        lazy["fundamentals: announced before period end"] = (
            ds["ann_date"].data < ds["end_date"].data
        ).sum()
    return problems
