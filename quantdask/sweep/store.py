"""The zarr layout of a sweep store: one group per finished cell, the assembled result at the root.

Layout (zarr v3, any local path, ``file://`` or fsspec URL)::

    sweep.zarr/
      zarr.json          root attrs ``quantdask_sweep``: the grid (kind, parameter names,
                         values or cell list) and, after a run, the result's summary attrs;
                         root arrays: the assembled result (``xr.open_zarr(store)`` reads it)
      cells/c000017/     one group per finished cell: the cell's output variables, its
                         parameters and status in attrs ``quantdask_cell``, and the completion
                         marker ``quantdask_done`` written last

A cell counts as finished only once its marker is written, after all of its data, so an
interrupted write is never taken for a result: a re-run overwrites it. Only the process driving
the sweep (the client) writes to the store, so an in-memory (``memory://``) store works as well
as a shared file system or object store.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import xarray as xr
import zarr

from quantdask.io.store import zarr_quiet

SPEC_ATTR = "quantdask_sweep"
CELL_ATTR = "quantdask_cell"
DONE_ATTR = "quantdask_done"
SCALARS_ATTR = "quantdask_scalars"
CELLS_GROUP = "cells"
FORMAT_VERSION = 1


def normalize_store(store: str | os.PathLike[str]) -> str:
    """Return ``store`` as a string zarr accepts: a local path or an fsspec URL.

    ``file://`` URLs become plain paths (zarr's local store creates missing directories;
    fsspec's local file system would not).
    """
    if isinstance(store, os.PathLike):
        return os.fspath(store)
    if not isinstance(store, str):
        raise TypeError(f"store must be a path or fsspec URL string, got {type(store)!r}")
    if not store:
        raise ValueError("store must not be empty")
    if store.startswith("file://"):
        return store[len("file://") :]
    return store


def cell_key(index: int) -> str:
    """Group name of cell ``index`` inside ``cells/``."""
    return f"c{index:06d}"


class SweepStore:
    """Reads and writes the cells and the result of one sweep store.

    Parameters
    ----------
    store : str or os.PathLike
        Local path, ``file://`` or fsspec URL of the zarr v3 store.
    storage_options : dict, optional
        Passed to fsspec for remote stores.
    """

    def __init__(
        self, store: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
    ) -> None:
        self.url = normalize_store(store)
        self.storage_options = dict(storage_options or {})

    # -- low level -----------------------------------------------------------------------
    def _so(self) -> dict[str, Any]:
        return {"storage_options": self.storage_options} if self.storage_options else {}

    def _group(self, path: str = "", mode: str = "r") -> zarr.Group:
        return zarr.open_group(
            self.url, path=path, mode=mode, zarr_format=3, use_consolidated=False, **self._so()
        )

    # -- spec ----------------------------------------------------------------------------
    def read_spec(self) -> dict[str, Any] | None:
        """The grid spec stored at the root, or None when the store holds no sweep."""
        try:
            root = self._group()
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
            return None
        except zarr.errors.NodeTypeValidationError as err:
            raise ValueError(f"{self.url} is a zarr array, not a sweep store") from err
        spec = root.attrs.get(SPEC_ATTR)
        return dict(spec) if spec is not None else None

    def init(self, spec: dict[str, Any], *, overwrite: bool = False) -> bool:
        """Create the store for ``spec``, or check that an existing one holds the same grid.

        Returns
        -------
        bool
            True when an existing sweep with the same grid was found (a resume).
        """
        existing = None if overwrite else self._existing_spec_or_none()
        if existing is not None:
            if _grid_part(existing) != _grid_part(spec):
                raise ValueError(
                    f"store {self.url} holds a sweep over a different grid "
                    f"({_describe(existing)}) than requested ({_describe(spec)}); "
                    "use another store or overwrite=True"
                )
            return True
        root = zarr.open_group(self.url, mode="w", zarr_format=3, **self._so())
        root.attrs.put({SPEC_ATTR: spec})
        return False

    def _existing_spec_or_none(self) -> dict[str, Any] | None:
        try:
            root = self._group()
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
            return None
        except zarr.errors.NodeTypeValidationError as err:
            raise ValueError(f"{self.url} is a zarr array, not a sweep store") from err
        spec = root.attrs.get(SPEC_ATTR)
        if spec is None:
            if list(root.keys()):
                raise ValueError(
                    f"{self.url} is a zarr store that is not a quantdask sweep; "
                    "use another store or overwrite=True"
                )
            return None
        return dict(spec)

    # -- cells ---------------------------------------------------------------------------
    def cell_states(self) -> dict[int, dict[str, Any]]:
        """Finished cells: index -> their ``quantdask_cell`` attrs (``status`` ok or error).

        Cells without the completion marker (interrupted writes) are left out.
        """
        try:
            cells = self._group(CELLS_GROUP)
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
            return {}
        states: dict[int, dict[str, Any]] = {}
        for name in _child_names(cells):
            if not (name.startswith("c") and name[1:].isdigit()):
                continue
            try:  # a torn or missing zarr.json means "not finished"
                attrs = self._group(f"{CELLS_GROUP}/{name}").attrs.asdict()
            except Exception:
                continue
            if attrs.get(DONE_ATTR) is True and CELL_ATTR in attrs:
                states[int(name[1:])] = {
                    **attrs[CELL_ATTR],
                    SCALARS_ATTR: attrs.get(SCALARS_ATTR),
                }
        return states

    def write_cell(self, index: int, ds: xr.Dataset | None, info: dict[str, Any]) -> None:
        """Write one cell's output (or its error record), then its completion marker.

        A cell of plain numbers (the usual dict of summary metrics) or an error record is
        one metadata document holding values and marker together, written in one go; other
        outputs are written as zarr arrays first and marked finished afterwards.
        """
        path = f"{CELLS_GROUP}/{cell_key(index)}"
        scalars = _encode_scalars(ds)
        with zarr_quiet():
            if scalars is not None:
                zarr.open_group(
                    self.url,
                    path=path,
                    mode="w",
                    zarr_format=3,
                    attributes={CELL_ATTR: info, SCALARS_ATTR: scalars, DONE_ATTR: True},
                    **self._so(),
                )
                return
            assert ds is not None
            out = ds.copy(deep=False)
            out.attrs = {CELL_ATTR: info}
            out.to_zarr(
                self.url, group=path, mode="w", zarr_format=3, consolidated=False, **self._so()
            )
            self._group(path, mode="r+").attrs.update({DONE_ATTR: True})

    def read_cell(self, index: int, state: dict[str, Any] | None = None) -> xr.Dataset:
        """Read a finished cell's output into memory (without the store's attrs).

        ``state`` is the cell's entry from :meth:`cell_states`; a cell of plain numbers is
        decoded from it without another read.
        """
        if state is not None and state.get(SCALARS_ATTR) is not None:
            return _decode_scalars(state[SCALARS_ATTR])
        with zarr_quiet():
            ds = xr.open_zarr(
                self.url,
                group=f"{CELLS_GROUP}/{cell_key(index)}",
                consolidated=False,
                chunks=None,
                zarr_format=3,
                **self._so(),
            ).load()
        ds.attrs = {}
        return ds

    # -- result --------------------------------------------------------------------------
    def write_result(self, ds: xr.Dataset, spec: dict[str, Any]) -> None:
        """Replace the root arrays with ``ds`` and consolidate the metadata for readers."""
        root = self._group(mode="r+")
        for name in list(root.array_keys()):
            del root[name]
        with zarr_quiet():
            ds.to_zarr(self.url, mode="a", zarr_format=3, consolidated=False, **self._so())
            root = self._group(mode="r+")
            root.attrs.put({**_jsonable(ds.attrs), SPEC_ATTR: spec})
            target: Any = self.url
            if self.storage_options:
                target = zarr.storage.FsspecStore.from_url(
                    self.url, storage_options=self.storage_options
                )
            zarr.consolidate_metadata(target, zarr_format=3)


def _encode_scalars(ds: xr.Dataset | None) -> dict[str, Any] | None:
    """Exact JSON form of a Dataset of 0-d numbers, or None when it holds anything else."""
    if ds is None:
        return {}
    if ds.coords or any(v.ndim or v.attrs for v in ds.data_vars.values()):
        return None
    out: dict[str, Any] = {}
    for name, var in ds.data_vars.items():
        kind, value = var.dtype.kind, var.values.item()
        if kind == "f":
            out[str(name)] = {"dtype": var.dtype.str, "value": repr(float(value))}
        elif kind in "iub":
            out[str(name)] = {"dtype": var.dtype.str, "value": value}
        else:
            return None
    return out


def _decode_scalars(scalars: dict[str, Any]) -> xr.Dataset:
    variables = {}
    for name, enc in scalars.items():
        dtype = np.dtype(enc["dtype"])
        value = float(enc["value"]) if dtype.kind == "f" else enc["value"]
        variables[name] = ((), np.array(value, dtype=dtype))
    return xr.Dataset(variables)


def _child_names(group: zarr.Group) -> list[str]:
    """Names directly under ``group`` in the store, without parsing their metadata."""
    from zarr.core.sync import sync

    store, prefix = group.store_path.store, group.store_path.path

    async def collect() -> list[str]:
        return [name async for name in store.list_dir(prefix)]

    return sorted(sync(collect()))


def _jsonable(attrs: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(attrs, default=str))


def _grid_part(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: spec.get(k) for k in ("kind", "params", "values", "cells")}


def _describe(spec: dict[str, Any]) -> str:
    if spec.get("kind") == "product":
        sizes = {p: len(v) for p, v in spec.get("values", {}).items()}
        return f"product grid {sizes}"
    return f"list of {len(spec.get('cells', []))} cells over {spec.get('params')}"


__all__ = ["SweepStore", "cell_key", "normalize_store"]
