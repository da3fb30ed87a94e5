"""Opening a market store lazily, and the small helpers every reader shares."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import xarray as xr

from quantdask.io import schema

#: Anything that names a market: a path or fsspec URL, or an already opened tree.
MarketLike = str | os.PathLike[str] | xr.DataTree


class StoreError(ValueError):
    """A market store is missing, malformed, or was left mid-write."""


@contextlib.contextmanager
def zarr_quiet() -> Iterator[None]:
    """Silence zarr's notices about data types and consolidated metadata.

    Zarr-python 3 warns that fixed-length strings (our ``asset`` codes) and consolidated
    metadata are not yet part of the v3 specification. quantdask writes and reads them
    deliberately, so the warnings carry no information for our users.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        yield


def _storage_options(path: MarketLike, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    return {"storage_options": storage_options} if storage_options else {}


def open_market(
    path: str | os.PathLike[str],
    *,
    storage_options: dict[str, Any] | None = None,
) -> xr.DataTree:
    """Open a market store lazily as an :class:`xarray.DataTree`.

    Parameters
    ----------
    path : str or os.PathLike
        Local path or fsspec URL (``s3://...``, ``gcs://...``) of the zarr v3 store.
    storage_options : dict, optional
        Passed to fsspec for remote stores.

    Returns
    -------
    xarray.DataTree
        Nodes ``daily``, ``index``, ``fundamentals``, ``macro`` and (when present)
        ``offshore``, every variable backed by a dask array chunked as stored. See
        :mod:`quantdask.io.schema` for the fields, units and chunk layout.

    Raises
    ------
    StoreError
        If the path holds no market store, or an interrupted ``append`` left a journal
        that has not been rolled back (run :func:`quantdask.verify`).

    Notes
    -----
    Nothing is read but metadata and coordinates. Access a field with item syntax
    (``tree["daily"]["close"]``): ``close`` is also a method name on xarray objects.

    Examples
    --------
    >>> import quantdask as qd
    >>> market = qd.open_market("market.zarr")  # doctest: +SKIP
    >>> market["daily"]["close"].sel(asset="600519.SH")  # doctest: +SKIP
    """
    _check_not_mid_write(path)
    with zarr_quiet():
        try:
            tree = xr.open_datatree(
                os.fspath(path) if isinstance(path, os.PathLike) else path,
                engine="zarr",
                chunks={},
                **_storage_options(path, storage_options),
            )
        except (FileNotFoundError, KeyError) as err:
            raise StoreError(f"no market store at {path!s}: {err}") from err
    missing = [n for n in ("daily",) if n not in tree.children]
    if missing:
        raise StoreError(f"{path!s} is not a quantdask market store: no node {missing[0]!r}")
    return tree


def open_panel(
    path: str | os.PathLike[str],
    *,
    storage_options: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Open the ``daily`` node of a market store as a lazy :class:`xarray.Dataset`.

    Parameters
    ----------
    path : str or os.PathLike
        Local path or fsspec URL of the store.
    storage_options : dict, optional
        Passed to fsspec for remote stores.

    Returns
    -------
    xarray.Dataset
        Dims ``(date, asset)``; fields as in :data:`quantdask.io.schema.DAILY_FIELDS`.
    """
    return open_market(path, storage_options=storage_options)["daily"].to_dataset()


def as_market(market: MarketLike) -> xr.DataTree:
    """Return ``market`` as a DataTree, opening it when given a path.

    Parameters
    ----------
    market : str, os.PathLike or xarray.DataTree
        A store path/URL or a tree returned by :func:`open_market` (possibly sliced).

    Returns
    -------
    xarray.DataTree
    """
    if isinstance(market, xr.DataTree):
        return market
    if isinstance(market, str | os.PathLike):
        return open_market(market)
    raise TypeError(
        f"expected a market store path or the DataTree from qd.open_market, got {type(market)!r}"
    )


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, purpose: str = "tmp") -> Iterator[Path]:
    """Build a directory under a temporary sibling name and move it to ``target`` on success.

    Parameters
    ----------
    target : str or os.PathLike
        Final local path. An existing directory there is replaced only once the new one is
        complete; checking whether replacing is allowed is the caller's job.
    purpose : str, default "tmp"
        Word in the temporary name (``.<name>.<purpose>-<random>``), to tell leftovers apart.

    Yields
    ------
    pathlib.Path
        The temporary directory path (not created) to write into.

    Notes
    -----
    Readers never see a half-written directory: on an exception (or interruption) the
    temporary directory is removed and ``target`` is left as it was. Replacing an existing
    ``target`` takes two renames; a crash between them leaves the old directory at
    ``.<name>.old-<random>`` beside it.
    """
    final = Path(os.fspath(target))
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{purpose}-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        if final.exists():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


JOURNAL_DIR = ".quantdask-journal"


def _check_not_mid_write(path: str | os.PathLike[str]) -> None:
    """Refuse to open a local store that an interrupted append left half-written."""
    local = os.fspath(path)
    if "://" in local:
        return
    if os.path.isdir(os.path.join(local, JOURNAL_DIR)):
        raise StoreError(
            f"{local} was left mid-write by an interrupted append; "
            "run qd.verify(path, repair=True) to roll it back"
        )


__all__ = [
    "MarketLike",
    "StoreError",
    "as_market",
    "atomic_directory",
    "open_market",
    "open_panel",
    "schema",
    "zarr_quiet",
]
