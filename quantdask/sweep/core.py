"""Parameter-grid sweeps on a dask.distributed cluster: resumable, fault tolerant, one task per cell."""

from __future__ import annotations

import itertools
import numbers
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.sweep.store import SweepStore

#: Name of the cell dimension of a sweep over a list of parameter dicts.
CELL_DIM = "cell"


class _NoData:
    """Sentinel for "no shared data"; pickles by reference, so it stays itself on workers."""

    def __reduce__(self) -> str:
        return "_NO_DATA"

    def __repr__(self) -> str:
        return "<no data>"


_NO_DATA: Any = _NoData()
_SCALAR_KINDS = "biuf"


# -- the grid ----------------------------------------------------------------------------------
def _scalar(name: str, value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"parameter {name!r} has a non-finite value {value!r}")
        return value
    raise TypeError(
        f"parameter {name!r} has value {value!r} of type {type(value).__name__}; sweep "
        "parameters must be numbers, strings or bools (pass objects through data= or a closure)"
    )


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"parameter names must be identifiers (keyword names), got {name!r}")
    return name


def _coord_array(name: str, values: Sequence[Any]) -> np.ndarray:
    kinds = {
        "bool" if isinstance(v, bool | np.bool_) else "str" if isinstance(v, str) else "number"
        for v in values
    }
    arr = np.asarray(values)
    if len(kinds) > 1 or arr.dtype.kind not in "biufU":
        raise TypeError(
            f"parameter {name!r} mixes value types {sorted({type(v).__name__ for v in values})}; "
            "use one type per parameter"
        )
    return arr


def parse_grid(grid: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> tuple[dict, list[dict]]:
    """Turn ``grid`` into a JSON spec and the list of cells (parameter dicts) in cell order.

    Parameters
    ----------
    grid : dict or list of dict
        ``{name: values}`` for the Cartesian product (cells in C order: the last parameter
        varies fastest), or a list of parameter dicts sharing the same keys.

    Returns
    -------
    spec : dict
        ``{"kind": "product" | "list", "params": [...], "values": {...}}`` or
        ``{..., "cells": [...]}``.
    cells : list of dict
    """
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid is empty: give at least one parameter")
        values: dict[str, list[Any]] = {}
        for name, vals in grid.items():
            _check_name(name)
            if isinstance(vals, str | bytes) or not isinstance(vals, Sequence | np.ndarray | range):
                raise TypeError(
                    f"grid[{name!r}] must be a list of values, got {type(vals).__name__}"
                )
            vals = [_scalar(name, v) for v in vals]
            if not vals:
                raise ValueError(f"grid[{name!r}] is empty")
            if len(set(vals)) != len(vals):
                raise ValueError(f"grid[{name!r}] has duplicate values: {vals}")
            _coord_array(name, vals)
            values[name] = vals
        if CELL_DIM in values:
            raise ValueError(f"{CELL_DIM!r} is reserved; rename that parameter")
        params = list(values)
        cells = [
            dict(zip(params, combo, strict=True)) for combo in itertools.product(*values.values())
        ]
        return {"kind": "product", "params": params, "values": values}, cells
    if isinstance(grid, Sequence) and not isinstance(grid, str | bytes):
        if not grid:
            raise ValueError("grid is an empty list: give at least one cell")
        cells = []
        params = None
        for i, cell in enumerate(grid):
            if not isinstance(cell, Mapping):
                raise TypeError(
                    f"grid[{i}] must be a dict of parameters, got {type(cell).__name__}"
                )
            keys = [_check_name(k) for k in cell]
            if params is None:
                params = keys
                if not params:
                    raise ValueError("grid[0] has no parameters")
                if CELL_DIM in params:
                    raise ValueError(f"{CELL_DIM!r} is reserved; rename that parameter")
            elif set(keys) != set(params):
                raise ValueError(
                    f"grid[{i}] has parameters {sorted(keys)}, grid[0] has {sorted(params)}; "
                    "every cell of a list grid must name the same parameters"
                )
            cells.append({k: _scalar(k, cell[k]) for k in params})
        assert params is not None
        for p in params:
            _coord_array(p, [c[p] for c in cells])
        return {"kind": "list", "params": params, "cells": cells}, cells
    raise TypeError(f"grid must be a dict of name -> values or a list of dicts, got {type(grid)!r}")


# -- one cell, on a worker -------------------------------------------------------------------
def _as_dataset(out: Any, params: Sequence[str]) -> xr.Dataset:
    if isinstance(out, xr.Dataset):
        ds = out
    elif isinstance(out, xr.DataArray):
        ds = out.to_dataset(name=out.name if out.name is not None else "value")
    elif isinstance(out, Mapping):
        variables: dict[str, Any] = {}
        for key, val in out.items():
            if not isinstance(key, str):
                raise TypeError(f"func returned a dict with a non-string key {key!r}")
            variables[key] = _number_or_array(val, key)
        ds = xr.Dataset(variables)
    else:
        ds = xr.Dataset({"value": _number_or_array(out, "value")})
    clash = sorted((set(ds.variables) | set(ds.dims)) & set(params))
    if clash:
        raise ValueError(f"func output names {clash} clash with sweep parameters; rename them")
    return ds


def _number_or_array(val: Any, key: str) -> Any:
    if isinstance(val, xr.DataArray):
        return val
    arr = np.asarray(val) if isinstance(val, numbers.Number | np.generic | np.ndarray) else None
    if arr is None or arr.ndim != 0 or arr.dtype.kind not in _SCALAR_KINDS:
        raise TypeError(
            f"func must return a number, a dict of numbers or an xarray object; "
            f"{key!r} is {type(val).__name__}"
        )
    return ((), arr)


def run_cell(
    func: Callable[..., Any],
    data: Any,
    params: dict[str, Any],
    scheduler: str | None = "sync",
) -> tuple[str, Any]:
    """Run one sweep cell: ``func(**params)`` (or ``func(data, **params)``), caught and computed.

    Returns ``("ok", dataset)`` with every variable in memory, or ``("error", record)`` with the
    exception's type, message and traceback text. Runs inside a worker task; lazy outputs are
    computed there with ``scheduler`` (synchronous by default: the cluster's parallelism comes
    from running many cells at once).
    """
    try:
        out = func(**params) if data is _NO_DATA else func(data, **params)
        ds = _as_dataset(out, list(params))
        if dask.is_dask_collection(ds):
            ds = ds.compute(scheduler=scheduler)
        else:
            ds = ds.load()
        return "ok", ds
    except Exception as err:
        return "error", {
            "error_type": type(err).__name__,
            "message": str(err),
            "traceback": traceback.format_exc(),
        }


# -- assembling the result -------------------------------------------------------------------
def assemble(
    spec: dict[str, Any],
    outputs: Mapping[int, xr.Dataset],
    failures: Mapping[int, dict[str, Any]],
) -> xr.Dataset:
    """Combine per-cell outputs into one Dataset with a dimension per parameter.

    Missing and failed cells are NaN. ``attrs`` carry ``n_cells``, ``n_ok``, ``n_failed``,
    ``n_missing`` and ``failures`` (cell index, parameters, error type, message, traceback).
    """
    params: list[str] = list(spec["params"])
    if spec["kind"] == "product":
        cells = [
            dict(zip(params, c, strict=True)) for c in itertools.product(*spec["values"].values())
        ]
    else:
        cells = [dict(c) for c in spec["cells"]]
    n = len(cells)
    tmp = "__quantdask_cell__"
    ok = sorted(outputs)
    if ok:
        pieces = [outputs[i].expand_dims({tmp: [i]}) for i in ok]
        combined = xr.concat(
            pieces,
            dim=tmp,
            data_vars="all",
            coords="different",
            compat="equals",
            join="outer",
            combine_attrs="drop",
        ).reindex({tmp: np.arange(n)})
    else:
        combined = xr.Dataset(coords={tmp: np.arange(n)})
    if spec["kind"] == "product":
        shape = tuple(len(v) for v in spec["values"].values())
        coords: dict[str, Any] = {p: _coord_array(p, spec["values"][p]) for p in params}

        def reshape(var: xr.Variable) -> xr.Variable:
            if tmp not in var.dims:
                return var
            var = var.transpose(tmp, ...)
            rest = var.dims[1:]
            return xr.Variable(
                (*params, *rest), np.asarray(var.values).reshape(shape + var.shape[1:]), var.attrs
            )

        for name, coord in combined.coords.items():
            if name != tmp:
                coords[name] = reshape(coord.variable)
        data_vars = {name: reshape(v.variable) for name, v in combined.data_vars.items()}
        ds = xr.Dataset(data_vars, coords=coords)
    else:
        ds = combined.rename({tmp: CELL_DIM}).assign_coords(
            {CELL_DIM: np.arange(n)}
            | {p: (CELL_DIM, _coord_array(p, [c[p] for c in cells])) for p in params}
        )
    records = [
        {"cell": int(i), "params": cells[i], **{k: str(v) for k, v in failures[i].items()}}
        for i in sorted(failures)
    ]
    missing = sorted(set(range(n)) - set(ok) - set(failures))
    ds.attrs = {
        "grid_kind": spec["kind"],
        "params": params,
        "n_cells": n,
        "n_ok": len(ok),
        "n_failed": len(records),
        "n_missing": n - len(ok) - len(records),
        "failures": records,
        "missing_cells": [int(i) for i in missing],
    }
    return ds


# -- the driver ------------------------------------------------------------------------------
def _active_client(client: Any) -> Any:
    if client is not None:
        return client
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _share(client: Any, data: Any) -> Any:
    """Put the parameter-independent input on the cluster once; return what tasks receive."""
    if data is _NO_DATA:
        return data
    from distributed import Future

    if isinstance(data, Future):
        return data
    if dask.is_dask_collection(data):
        # computed once, on the cluster; workers fetch the result once and keep it
        return client.compute(data)
    [future] = client.scatter([data], broadcast=True, hash=False)
    return future


class _Progress:
    """A tqdm bar (terminal or notebook) when tqdm is installed, else periodic text lines."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.done = initial
        self.total = total
        self.failed = 0
        self._last = 0.0
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc="sweep", unit="cell")
        except ImportError:  # pragma: no cover - tqdm is a dependency; text lines otherwise
            self.bar = None

    def update(self, failed: bool) -> None:
        self.done += 1
        self.failed += int(failed)
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            if self.failed:
                self.bar.set_postfix(failed=self.failed)
        elif time.monotonic() - self._last > 2 or self.done == self.total:
            self._last = time.monotonic()
            print(f"sweep: {self.done}/{self.total} cells, {self.failed} failed", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def sweep(
    func: Callable[..., Any],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    store: str | os.PathLike[str],
    client: Any = None,
    data: Any = _NO_DATA,
    progress: bool = True,
    retry_failed: bool = False,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Run ``func`` over a parameter grid on the active dask cluster, cell by cell, resumably.

    Parameters
    ----------
    func : callable
        ``func(**params)``, or ``func(data, **params)`` when ``data`` is given, returning a
        number, a dict of numbers (summary metrics such as IC IR or Sharpe) or an xarray
        object. Lazy (dask-backed) outputs are computed inside the cell's task. ``func`` is
        pickled (cloudpickle) to the workers.
    grid : dict or list of dict
        ``{name: values}``: the Cartesian product, one result dimension per parameter; or a
        list of parameter dicts with the same keys: a ``cell`` dimension with one coordinate
        per parameter. Values must be numbers, strings or bools, one type per parameter.
    store : str or os.PathLike
        Zarr v3 store for the results: a path, ``file://`` or any fsspec URL (``s3://``,
        ``memory://``). Re-running on the same store resumes: only cells without a finished
        record are computed. A store holding a different grid raises ``ValueError``.
    client : distributed.Client, optional
        Cluster to run on; the active default client if omitted. Without any client the
        cells run one after the other in this process (handy for debugging).
    data : object, optional
        A parameter-independent input (e.g. the market panel) passed as ``func``'s first
        argument. It is shipped to the cluster once, not per cell: a dask-backed object is
        computed once on the cluster, anything else is scattered to every worker, and a
        :class:`distributed.Future` is used as is.
    progress : bool, default True
        Show a progress bar (tqdm, in terminals and notebooks) and print the dashboard link.
    retry_failed : bool, default False
        Also recompute cells whose previous run raised.
    overwrite : bool, default False
        Discard whatever ``store`` holds and start afresh.
    storage_options : dict, optional
        Passed to fsspec for remote stores.

    Returns
    -------
    xarray.Dataset
        One variable per output (``value`` for a plain number), dims = parameters (then the
        output's own dims), NaN where a cell failed. ``attrs``: ``n_cells``, ``n_ok``,
        ``n_failed``, ``n_missing`` and ``failures`` (cell, params, error type, message,
        traceback). Also written to ``store``: read it later with :func:`open_sweep` or
        ``xr.open_zarr(store)``; :func:`sweep_summary` gives one table row per cell.

    Raises
    ------
    TypeError
        If ``func`` is not callable or the grid holds unsupported values.
    ValueError
        If the grid is empty, malformed, or differs from the one already in ``store``.

    Notes
    -----
    Each cell is one task (``func`` runs on one worker thread; parallelism comes from running
    many cells at once), so a sweep of ``n`` cells is a graph of ``n`` (+1 for ``data``) tasks.
    Fault tolerance: a worker that dies mid-cell has its cells rerun elsewhere by the
    scheduler; each finished cell is written by this process as soon as it arrives, data
    first and completion marker last, so killing the client loses only cells in flight and a
    re-run picks up the rest. A cell that raises records its error and the sweep goes on; a
    cell that kills workers repeatedly is recorded as ``KilledWorker``. This function is a
    reduction point: it blocks until every cell is done.

    Examples
    --------
    >>> import quantdask as qd
    >>> def score(window, lag):
    ...     return {"ic_ir": window / 10 - lag, "sharpe": 1.0}
    >>> ds = qd.sweep(score, {"window": [5, 10], "lag": [1, 2]}, store="memory://doc-sweep",
    ...               progress=False)
    >>> ds["ic_ir"].sel(window=10, lag=2).item()
    -1.0
    """
    if not callable(func):
        raise TypeError(f"func must be callable, got {type(func).__name__}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {progress!r}")
    spec, cells = parse_grid(grid)
    spec = {
        "format": "quantdask-sweep",
        "version": 1,
        **spec,
        "func": f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}",
    }
    sstore = SweepStore(store, storage_options=storage_options)
    resumed = sstore.init(spec, overwrite=overwrite)
    states = sstore.cell_states() if resumed else {}
    if retry_failed:
        states = {i: s for i, s in states.items() if s.get("status") == "ok"}
    todo = [i for i in range(len(cells)) if i not in states]

    outputs: dict[int, xr.Dataset] = {}
    failures: dict[int, dict[str, Any]] = {}

    def record(i: int, status: str, payload: Any) -> None:
        info = {"status": status, "params": cells[i]}
        if status == "ok":
            sstore.write_cell(i, payload, info)
            outputs[i] = payload
        else:
            rec = {k: str(payload[k]) for k in ("error_type", "message", "traceback")}
            sstore.write_cell(i, None, {**info, **rec})
            failures[i] = rec

    client = _active_client(client)
    bar = _Progress(len(cells), len(cells) - len(todo), progress and bool(todo))
    try:
        if todo and client is None:
            for i in todo:
                status, payload = run_cell(func, data, cells[i], scheduler=None)
                record(i, status, payload)
                bar.update(status != "ok")
        elif todo:
            _run_distributed(client, func, data, cells, todo, record, bar, progress)
    finally:
        bar.close()

    for i, state in states.items():
        if state.get("status") == "ok":
            outputs[i] = sstore.read_cell(i, state)
        else:
            failures[i] = {k: state.get(k, "") for k in ("error_type", "message", "traceback")}
    ds = assemble(spec, outputs, failures)
    sstore.write_result(ds, spec)
    return ds


def _run_distributed(client, func, data, cells, todo, record, bar, progress) -> None:
    from distributed import as_completed
    from distributed.client import FutureCancelledError

    if progress:
        print(f"quantdask sweep: {len(todo)} cells on {client.dashboard_link}", file=sys.stderr)
    shared = _share(client, data)
    token = uuid.uuid4().hex[:12]
    futures = {}
    for i in todo:
        fut = client.submit(
            run_cell, func, shared, cells[i], key=f"qd-sweep-cell-{token}-{i}", pure=False
        )
        futures[fut] = i
    try:
        # results are gathered in the background, in batches, while earlier ones are written
        completed = as_completed(list(futures), with_results=True, raise_errors=False)
        for batch in completed.batches():
            for fut, result in batch:
                i = futures.pop(fut)
                if fut.status == "cancelled":
                    raise FutureCancelledError(fut.key, reason="the cluster cancelled a sweep cell")
                if fut.status == "finished":
                    status, payload = result
                else:  # the task itself failed, e.g. KilledWorker after repeated worker deaths
                    err = result if isinstance(result, BaseException) else fut.exception()
                    payload = {
                        "error_type": type(err).__name__,
                        "message": str(err),
                        "traceback": "".join(traceback.format_exception(err)),
                    }
                    status = "error"
                fut.release()
                record(i, status, payload)
                bar.update(status != "ok")
    finally:
        for fut in futures:
            fut.cancel()
        if shared is not _NO_DATA and shared is not data:
            shared.release()


# -- reading -----------------------------------------------------------------------------------
def open_sweep(
    store: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
) -> xr.Dataset:
    """Read a sweep store: every finished cell, assembled as :func:`sweep` returns it.

    Parameters
    ----------
    store : str or os.PathLike
        Path or fsspec URL of a store written by :func:`sweep`, finished or interrupted.
    storage_options : dict, optional
        Passed to fsspec for remote stores.

    Returns
    -------
    xarray.Dataset
        In memory; cells not (yet) finished are NaN and counted in ``attrs["n_missing"]``.

    Raises
    ------
    ValueError
        If ``store`` holds no sweep.
    """
    sstore = SweepStore(store, storage_options=storage_options)
    spec = sstore.read_spec()
    if spec is None:
        raise ValueError(f"no quantdask sweep in {sstore.url}")
    outputs, failures = {}, {}
    for i, state in sstore.cell_states().items():
        if state.get("status") == "ok":
            outputs[i] = sstore.read_cell(i, state)
        else:
            failures[i] = {k: state.get(k, "") for k in ("error_type", "message", "traceback")}
    return assemble(spec, outputs, failures)


def sweep_summary(ds: xr.Dataset) -> pd.DataFrame:
    """One row per cell: parameters, every scalar output (summary metrics) and the error if any.

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`sweep` or :func:`open_sweep`.

    Returns
    -------
    pandas.DataFrame
        Rows in cell order (the grid's C order for a product grid); columns: the parameters,
        the outputs with no dims beyond the parameters, ``status`` (``ok``, ``failed`` or
        ``missing``), ``error_type`` and ``error``.
    """
    if not isinstance(ds, xr.Dataset) or "params" not in ds.attrs or "n_cells" not in ds.attrs:
        raise TypeError("sweep_summary expects the Dataset returned by qd.sweep / qd.open_sweep")
    params = list(ds.attrs["params"])
    cell_dims = {CELL_DIM} if ds.attrs.get("grid_kind") == "list" else set(params)
    scalar_vars = [v for v in ds.data_vars if set(ds[v].dims) <= cell_dims]
    if ds.attrs.get("grid_kind") == "list":
        frame = pd.DataFrame({p: ds[p].values for p in params})
        for v in scalar_vars:
            frame[v] = ds[v].values
    else:
        idx = pd.MultiIndex.from_product([ds[p].values for p in params], names=params)
        frame = idx.to_frame(index=False)
        for v in scalar_vars:
            frame[v] = ds[v].transpose(*params).values.reshape(-1)
    n = len(frame)
    status = np.array(["ok"] * n, dtype=object)
    err_type = np.array([""] * n, dtype=object)
    err_msg = np.array([""] * n, dtype=object)
    for rec in ds.attrs.get("failures", []):
        i = int(rec["cell"])
        status[i], err_type[i], err_msg[i] = "failed", rec["error_type"], rec["message"]
    for i in ds.attrs.get("missing_cells", []):
        status[int(i)] = "missing"
    frame["status"] = status
    frame["error_type"] = err_type
    frame["error"] = err_msg
    return frame


__all__ = ["CELL_DIM", "assemble", "open_sweep", "parse_grid", "run_cell", "sweep", "sweep_summary"]
