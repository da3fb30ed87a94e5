"""Evaluate registered factors lazily over a date range, and write the results to zarr."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from quantdask.expression import evaluate
from quantdask.factors.registry import (
    LEVELS,
    UNBOUNDED,
    Factor,
    check_inputs,
    factor,
    format_lookback,
)
from quantdask.io import schema
from quantdask.io.store import MarketLike, as_market, atomic_directory, zarr_quiet

FactorLike = Factor | str
DateLike = str | pd.Timestamp | np.datetime64 | None


def _as_factors(factors: FactorLike | Iterable[FactorLike]) -> list[Factor]:
    if isinstance(factors, Factor | str):
        items: list[Any] = [factors]
    else:
        try:
            items = list(factors)
        except TypeError:
            raise TypeError(
                "factors must be a Factor, a registered name, or a list of them; "
                f"got {type(factors).__name__}"
            ) from None
    if not items:
        raise ValueError("factors is empty: pass at least one Factor or registered name")
    out: list[Factor] = []
    for item in items:
        if isinstance(item, Factor):
            out.append(item)
        elif isinstance(item, str):
            out.append(factor(item))
        else:
            raise TypeError(
                f"expected a Factor or a registered factor name, got {type(item).__name__}"
            )
    names = [f.variable for f in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"factors repeat the same variable(s): {', '.join(dup)}")
    return out


def _calendar(tree: xr.DataTree, level: str) -> pd.DatetimeIndex:
    node = "daily" if level == "asset" else "index"
    if node not in tree.children:
        raise ValueError(f"level={level!r} needs the {node!r} node, which the market lacks")
    return pd.DatetimeIndex(tree[node].to_dataset(inherit=False).indexes["date"])


def _timestamp(value: DateLike, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}={value!r} is not a date") from err
    if ts is pd.NaT:
        raise ValueError(f"{what}={value!r} is not a date")
    return ts


def date_range_positions(
    dates: pd.DatetimeIndex, start: DateLike, end: DateLike
) -> tuple[int, int]:
    """Positions ``[i0, i1]`` (inclusive) of the trading dates in ``[start, end]``.

    Parameters
    ----------
    dates : pandas.DatetimeIndex
        The trading calendar (sorted).
    start, end : date-like or None
        Inclusive bounds; None means the first / last date.

    Returns
    -------
    tuple of int

    Raises
    ------
    ValueError
        If the range holds no trading date.
    """
    if len(dates) == 0:
        raise ValueError("the market has no dates")
    i0 = 0 if start is None else int(dates.searchsorted(_timestamp(start, "start"), side="left"))
    i1 = (
        len(dates) - 1
        if end is None
        else int(dates.searchsorted(_timestamp(end, "end"), side="right")) - 1
    )
    if i0 >= len(dates) or i1 < 0 or i0 > i1:
        raise ValueError(
            f"no trading date in [{start}, {end}]; the market covers "
            f"{dates[0].date()} .. {dates[-1].date()}"
        )
    return i0, i1


def slice_market(tree: xr.DataTree, first: pd.Timestamp, last: pd.Timestamp) -> xr.DataTree:
    """Slice every node with a ``date`` dimension to ``[first, last]`` (labels, inclusive).

    Nodes without ``date`` (``fundamentals``) are kept whole. Lazy: nothing is read.
    """
    return tree.sel(date=slice(first, last))


def compute(
    market: MarketLike,
    factors: FactorLike | Sequence[FactorLike],
    *,
    start: DateLike = None,
    end: DateLike = None,
    level: str = "asset",
) -> xr.Dataset:
    """Compute factors lazily over ``[start, end]``.

    Parameters
    ----------
    market : xarray.DataTree or path
        What :func:`quantdask.open_market` returns (possibly sliced by the caller), or a
        store path.
    factors : Factor, str, or a list of them
        Factors from :func:`quantdask.factor`; a bare name uses the factor's defaults.
    start, end : date-like, optional
        Inclusive range of trading dates to return; default the whole calendar.
    level : {"asset", "index"}, default "asset"
        ``"asset"``: per stock from the ``daily`` node, dims ``(date, asset)``.
        ``"index"``: per broad index from the ``index`` node, dims ``(date, index)``.

    Returns
    -------
    xarray.Dataset
        One lazy variable per factor, named canonically (``close_vs_ma_20``), on the trading
        dates in ``[start, end]``. Each variable's attrs hold ``factor``, ``params`` (JSON)
        and ``lookback`` (an int, or the string ``"unbounded"`` for expanding windows);
        expression factors also ``formula`` and ``semantics``.

    Raises
    ------
    MissingInputError
        If the market lacks inputs some factors declare (a ``ValueError``); the message
        names every missing input of every factor, and why (absent node or field, or a
        field the store records as not provided, see :mod:`quantdask.factors.inputs`).
    ValueError
        Unknown level, a factor that does not support the level, or an empty date range.

    Notes
    -----
    Each factor sees the market with its date-dimension nodes sliced by position on the
    trading calendar to ``[start_index - lookback, end]`` (clipped at the first date), so
    only the history its lookback needs is read; ``fundamentals`` is passed whole. The
    result is trimmed to ``[start, end]``. Expression factors (:func:`quantdask.expr`, and
    registered factors built from expressions) of one semantics are evaluated together on
    one slice covering the longest of their lookbacks, as one graph: each input field is
    read once and each common subexpression computed once. Building the dataset reads only coordinates; no
    dask computation happens until the caller computes or writes it (:func:`to_zarr`).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    tree = as_market(market)
    flist = _as_factors(factors)
    for f in flist:
        if level not in f.level:
            raise ValueError(
                f"factor {f.name!r} supports level(s) {', '.join(f.level)}, not {level!r}"
            )
    check_inputs(tree, flist, level=level)
    dates = _calendar(tree, level)
    i0, i1 = date_range_positions(dates, start, end)
    first, last = dates[i0], dates[i1]
    out: dict[str, xr.DataArray] = {}
    slices: dict[tuple[int, int], xr.DataTree] = {}

    def sliced(lo: int, hi: int) -> xr.DataTree:
        if (lo, hi) not in slices:
            slices[lo, hi] = slice_market(tree, dates[lo], dates[hi])
        return slices[lo, hi]

    # expression factors: one fused evaluation per semantics on one slice (each input read
    # once, common subexpressions computed once); function factors one by one
    # (expanding ones apart, so that bounded ones read only the history they need)
    groups: dict[tuple[str, bool], list[Factor]] = {}
    for f in flist:
        if f.expression is not None:
            groups.setdefault((f.semantics, f.lookback >= UNBOUNDED), []).append(f)
    for (semantics, _), group in groups.items():
        lo = max(0, i0 - max(f.lookback for f in group))
        hi = min(len(dates) - 1, i1 + max(f.expression.future() for f in group))
        values = evaluate(
            {f.variable: f.expression for f in group},
            sliced(lo, hi),
            level=level,
            semantics=semantics,
        )
        for f in group:
            out[f.variable] = values[f.variable].sel(date=slice(first, last))
    for f in flist:
        if f.expression is None:
            da = f(sliced(max(0, i0 - f.lookback), i1), level=level)
            out[f.variable] = da.sel(date=slice(first, last))
    for f in flist:
        da = out[f.variable]
        attrs = {
            **da.attrs,
            "factor": f.name,
            "params": json.dumps(f.params, default=str),
            "lookback": format_lookback(f.lookback) if f.lookback >= UNBOUNDED else f.lookback,
        }
        if f.expression is not None:
            attrs |= {"formula": f.formula, "semantics": f.semantics}
        da.attrs = attrs
        out[f.variable] = da
    out = {f.variable: out[f.variable] for f in flist}
    return xr.Dataset(out)


def _target_chunks(ds: xr.Dataset) -> dict[str, int]:
    chunks = {"date": schema.DATE_CHUNK, "asset": schema.ASSET_CHUNK}
    return {d: min(c, ds.sizes[d]) for d, c in chunks.items() if d in ds.dims}


def to_zarr(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    mode: str = "w-",
    dtype: str | np.dtype[Any] | type | None = None,
) -> Path:
    """Write factor results to a zarr v3 store, chunked like the stored panel, atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        Typically what :func:`compute` returns (lazy or in memory).
    path : str or os.PathLike
        Local directory of the new store.
    mode : {"w-", "w"}, default "w-"
        ``"w-"`` refuses an existing path; ``"w"`` replaces it.
    dtype : str, numpy.dtype or None, default None
        Floating dtype to store the floating variables as (``"float32"``: half the bytes
        of float64, values rounded to float32's ~7 significant digits; qlib's own
        precision). None keeps each variable's dtype. Non-floating variables are kept.

    Returns
    -------
    pathlib.Path
        The store path.

    Raises
    ------
    FileExistsError
        If ``mode="w-"`` and ``path`` exists.
    ValueError
        For another mode, a remote URL, or a ``dtype`` that is not a floating dtype.

    Notes
    -----
    This is a reduction point: it computes ``ds``. Chunks are ``DATE_CHUNK`` dates x
    ``ASSET_CHUNK`` assets, compressed with :func:`quantdask.io.schema.output_compressors`
    (Blosc LZ4 + shuffle). The store is written to a hidden temporary directory next to
    ``path`` and renamed into place, so readers never see a half-written store; on failure
    the temporary directory is removed.
    """
    if mode not in ("w-", "w"):
        raise ValueError(f"mode must be 'w-' or 'w', got {mode!r}")
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset, got {type(ds).__name__}")
    text = os.fspath(path)
    if "://" in text:
        raise ValueError(f"to_zarr writes local stores only (atomic rename), got {text!r}")
    target = Path(text)
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError as err:
            raise ValueError(f"dtype must be a floating dtype, got {dtype!r}") from err
        if not np.issubdtype(dtype, np.floating):
            raise ValueError(f"dtype must be a floating dtype, got {dtype!r}")
    if target.exists() and mode == "w-":
        raise FileExistsError(f"{target} exists; pass mode='w' to replace it")
    if dtype is not None:
        ds = ds.copy()
        for name, var in ds.data_vars.items():
            if np.issubdtype(var.dtype, np.floating) and var.dtype != dtype:
                ds[name] = var.astype(dtype)
    out = ds.chunk(_target_chunks(ds))
    for var in out.variables.values():
        var.encoding = {}
    encoding = {name: {"compressors": schema.output_compressors()} for name in out.data_vars}
    with atomic_directory(target) as tmp, zarr_quiet():
        out.to_zarr(tmp, mode="w", zarr_format=3, consolidated=True, encoding=encoding)
    return target


__all__ = ["compute", "date_range_positions", "slice_market", "to_zarr"]
