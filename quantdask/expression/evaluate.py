"""Evaluate many expressions as one dask graph, each input and subexpression once.

:func:`evaluate` walks the trees children first and memoises every node by structure, so a
subexpression shared by several expressions (``Mean($close, 20)`` in ``MA20`` and
``RESI20``, the adjusted close in all of Alpha158) becomes one set of dask tasks, and each
stored field is read once through the evaluation's :class:`~quantdask.expression.context.Context`.
Nothing is computed: the result is lazy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from quantdask.expression.context import Context, check_semantics
from quantdask.expression.nodes import Expr


def evaluate(
    exprs: Mapping[str, Expr],
    market: xr.DataTree,
    *,
    level: str = "asset",
    semantics: str = "strict",
) -> dict[str, xr.DataArray]:
    """Evaluate named expressions lazily on a market, sharing common subexpressions.

    Parameters
    ----------
    exprs : mapping of str to Expr
        Output name -> expression.
    market : xarray.DataTree
        A market tree; date nodes already cover the history the lookbacks need (see
        :func:`quantdask.compute`, which slices it).
    level : {"asset", "index"}, default "asset"
        Where ``$close`` and the other inputs come from.
    semantics : {"strict", "qlib"}, default "strict"
        The conventions (:mod:`quantdask.expression.context`).

    Returns
    -------
    dict of str to xarray.DataArray
        Lazy float64 ``(date, level)`` arrays, named by their keys.

    Raises
    ------
    quantdask.expression.context.InputError
        If an expression reads an input the market lacks.
    """
    semantics = check_semantics(semantics)
    for name, e in exprs.items():
        if not isinstance(e, Expr):
            raise TypeError(f"{name!r}: expected an expression, got {type(e).__name__}")
    ctx = Context(market, level, semantics)
    memo: dict[Expr, Any] = {}
    out: dict[str, xr.DataArray] = {}
    template = None
    for name, root in exprs.items():
        for node in root.walk():
            if node not in memo:
                memo[node] = node.compute(ctx, *(memo[c] for c in node.children))
        value = memo[root]
        if not isinstance(value, xr.DataArray) or value.ndim < 2:
            if template is None:
                template = xr.zeros_like(ctx.field("close"), dtype=np.float64)
            value = template + value
        if semantics == "qlib":
            value = ctx.on_span(value)
        if value.dtype != np.float64:
            value = value.astype(np.float64)
        value = value.transpose("date", level).rename(name)
        value.attrs = {}
        out[name] = value
    return out


def count_nodes(exprs: Mapping[str, Expr] | list[Expr]) -> tuple[int, int]:
    """``(nodes over all trees, distinct nodes)``: what sharing saves.

    Parameters
    ----------
    exprs : mapping or list of Expr

    Returns
    -------
    tuple of int
    """
    roots = list(exprs.values()) if isinstance(exprs, Mapping) else list(exprs)

    def size(e: Expr) -> int:
        return 1 + sum(size(c) for c in e.children)

    distinct: set[Expr] = set()
    for r in roots:
        distinct.update(r.walk())
    return sum(size(r) for r in roots), len(distinct)


__all__ = ["count_nodes", "evaluate"]
