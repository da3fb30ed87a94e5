"""Declared factor inputs and the check that a market holds them, without reading any data.

A factor declares the stored fields it reads (``inputs=`` of
:func:`quantdask.register_factor`) as paths:

``"node"``
    the node must exist (e.g. ``"fundamentals"``);
``"node/field"``
    the node must have the field, and the field must not be one the store records as
    missing (below);
``"node/field[label]"``
    as ``"node/field"``, and the field's second dimension (``asset`` / ``index``) must hold
    ``label`` (``"index/amount[000985.CSI]"``: the CSI All Share index).

What "missing" means is read from metadata only (STYLE.md, "Laziness"): a node or field that
is absent, a label that is not in the coordinate, a ``fundamentals`` node with no record, or a
field named in the node's ``attrs["missing_fields"]``, the list of fields that
:func:`quantdask.ingest` wrote as all-NaN placeholders because no input table provided them.
A store without that attribute is taken to hold everything it has arrays for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import xarray as xr

#: Attribute of a store node listing the fields no ingest input provided (all-NaN arrays).
MISSING_FIELDS_ATTR = "missing_fields"

_PATH_RE = re.compile(
    r"^(?P<node>[A-Za-z_]\w*)(?:/(?P<field>[A-Za-z_]\w*)(?:\[(?P<label>[^\]]+)\])?)?$"
)


class MissingInputError(ValueError):
    """A factor cannot be computed from what the market holds.

    Attributes
    ----------
    missing : dict
        Factor variable name -> list of ``(input path, reason)`` pairs, every missing input
        of every factor checked (not only the first).
    """

    def __init__(self, missing: Mapping[str, list[tuple[str, str]]]):
        self.missing = {k: list(v) for k, v in missing.items()}
        super().__init__(format_missing(self.missing))


def format_missing(missing: Mapping[str, list[tuple[str, str]]]) -> str:
    """The message of :class:`MissingInputError`: all missing inputs, then each factor's.

    Parameters
    ----------
    missing : mapping
        Factor variable name -> list of ``(input path, reason)``.

    Returns
    -------
    str
        A first line naming every missing input once, one line per input with its reason,
        then one line per factor with the inputs it lacks.
    """
    paths: dict[str, str] = {}
    for pairs in missing.values():
        for path, reason in pairs:
            paths.setdefault(path, reason)
    lines = [
        f"the market lacks {len(paths)} input(s) needed by {len(missing)} factor(s): "
        + ", ".join(paths)
    ]
    lines += [f"  {path}: {reason}" for path, reason in paths.items()]
    lines += [f"  {var} needs {', '.join(p for p, _ in pairs)}" for var, pairs in missing.items()]
    return "\n".join(lines)


def check_path(path: str) -> str:
    """Validate one input path (see the module doc).

    Parameters
    ----------
    path : str
        ``"node"``, ``"node/field"`` or ``"node/field[label]"``.

    Returns
    -------
    str
        ``path`` unchanged.

    Raises
    ------
    ValueError
        If ``path`` has another form.
    """
    if not isinstance(path, str) or not _PATH_RE.match(path):
        raise ValueError(f"input {path!r} is not 'node', 'node/field' or 'node/field[label]'")
    return path


def recorded_missing(tree: xr.DataTree, node: str) -> frozenset[str]:
    """Fields the store records as missing in ``node`` (``attrs["missing_fields"]``).

    Parameters
    ----------
    tree : xarray.DataTree
        A market tree.
    node : str
        Node name (``"daily"``, ...).

    Returns
    -------
    frozenset of str
        Empty when the node or the attribute is absent (nothing known missing).
    """
    if node not in tree.children:
        return frozenset()
    value = tree[node].attrs.get(MISSING_FIELDS_ATTR, ())
    if isinstance(value, str):
        value = [value]
    return frozenset(str(v) for v in value)


def missing_inputs(tree: xr.DataTree, paths: Iterable[str]) -> list[tuple[str, str]]:
    """The inputs among ``paths`` that ``tree`` cannot provide, each with the reason.

    Parameters
    ----------
    tree : xarray.DataTree
        A market tree.
    paths : iterable of str
        Input paths (module doc).

    Returns
    -------
    list of (str, str)
        ``(path, reason)`` for every missing input, in the order given.

    Notes
    -----
    Reads metadata only (node names, variable names, attrs, the in-memory index of a
    labelled dimension, dimension sizes); never computes data.
    """
    out: list[tuple[str, str]] = []
    for path in paths:
        m = _PATH_RE.match(check_path(path))
        assert m is not None
        node, field, label = m["node"], m["field"], m["label"]
        if node not in tree.children:
            out.append((path, f"the market has no {node!r} node"))
            continue
        ds = tree[node].to_dataset(inherit=False)
        if node == "fundamentals" and ds.sizes.get("record", 0) == 0:
            out.append((path, "the 'fundamentals' node holds no statement records"))
            continue
        if field is None:
            continue
        if field not in ds.variables:
            out.append((path, f"the {node!r} node has no field {field!r}"))
            continue
        if field in recorded_missing(tree, node):
            out.append(
                (
                    path,
                    f"no input provided it (the {node!r} node's "
                    f"attrs[{MISSING_FIELDS_ATTR!r}] lists it: the store holds NaN only)",
                )
            )
            continue
        if label is not None:
            dims = [d for d in ds[field].dims if d != "date"]
            dim = dims[0] if dims else None
            if dim is None or dim not in ds.indexes:
                out.append((path, f"{node}/{field} has no labelled dimension to hold {label!r}"))
            elif label not in ds.indexes[dim]:
                out.append((path, f"{node}/{field} has no {dim} {label!r}"))
    return out


__all__ = [
    "MISSING_FIELDS_ATTR",
    "MissingInputError",
    "check_path",
    "format_missing",
    "missing_inputs",
    "recorded_missing",
]
