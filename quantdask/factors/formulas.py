"""Factors from formulas: :func:`expr` turns a qlib-syntax formula into a factor.

The factor it returns is a :class:`~quantdask.factors.registry.Factor` like any registered
one: :func:`quantdask.compute` evaluates it (fused with every other expression factor of
the call), its lookback and inputs come from the expression, and its ``formula`` prints
back to the same expression, so it can be stored with results and in models' TOML.
"""

from __future__ import annotations

import re

from quantdask.expression import Expr, parse
from quantdask.expression.context import check_semantics
from quantdask.factors.registry import LEVELS, Factor

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def formula_variable(formula: str) -> str:
    """A variable name made from a formula: ``Mean($close, 5) / $close`` ->
    ``Mean_close_5_div_close``.

    Parameters
    ----------
    formula : str

    Returns
    -------
    str
    """
    text = formula.replace("/", " div ").replace("*", " mul ").replace("+", " add ")
    text = text.replace("-", " sub ").replace(".", "p")
    out = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")
    if not out or out[0].isdigit():
        out = f"expr_{out}"
    return out


def expr(
    formula: str | Expr,
    *,
    name: str | None = None,
    semantics: str = "strict",
    label: bool = False,
    doc: str | None = None,
) -> Factor:
    """A factor from a formula in qlib's syntax (or from an expression tree).

    Parameters
    ----------
    formula : str or Expr
        E.g. ``"Mean($close, 5) / $close"`` (:mod:`quantdask.expression.formula` lists
        the syntax and operators, :mod:`quantdask.expression.context` the inputs).
    name : str, optional
        Variable name of the result (a Python identifier); default made from the formula
        (``fwd_`` is prepended for a label).
    semantics : {"strict", "qlib"}, default "strict"
        ``"strict"``: quantdask's conventions (a window needs all its rows; comparisons
        are NaN on missing inputs; ``$close`` is the stored raw close). ``"qlib"``:
        qlib's (``min_periods=1``, NaN skipped, ``$close`` adjusted, float32 inputs; see
        :mod:`quantdask.expression.window`). Bound here, recorded in the results' attrs.
    label : bool, default False
        Allow references to the future (``Ref($close, -2)``: qlib's label). Such a formula
        is refused unless ``label=True``; its variable is then named ``fwd_...``.
    doc : str, optional
        Documentation (default: the formula).

    Returns
    -------
    Factor
        With ``expression``, ``formula``, ``semantics``, a derived ``lookback`` and no
        parameters.

    Raises
    ------
    quantdask.expression.FormulaError
        For a formula that does not parse (the message names the position and token).
    ValueError
        For a future reference without ``label=True``, a bad name or semantics.

    Examples
    --------
    >>> import quantdask as qd
    >>> f = qd.expr("Mean($close, 5) / $close", name="ma5")
    >>> f.variable, f.lookback, f.formula
    ('ma5', 4, 'Mean($close, 5) / $close')
    """
    semantics = check_semantics(semantics)
    tree = formula if isinstance(formula, Expr) else parse(formula)
    text = tree.formula()
    ahead = tree.future()
    if ahead and not label:
        raise ValueError(
            f"{text!r} reads {ahead} row(s) after its date; a factor must not look ahead. "
            "Pass label=True for a forward-looking label (named fwd_...)"
        )
    if name is None:
        name = formula_variable(text)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    if label and not name.startswith("fwd_"):
        name = f"fwd_{name}"
    return Factor(
        name=name,
        params={},
        lookback=tree.lookback,
        level=LEVELS,
        doc=doc if doc is not None else text,
        variable=name,
        expression=tree,
        semantics=semantics,
    )


__all__ = ["expr", "formula_variable"]
