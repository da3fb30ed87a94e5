"""Factor sets: named lists of expression factors (qlib's Alpha158 and Alpha360).

A factor set is not a registered factor: :func:`factor_set` returns plain
:class:`~quantdask.factors.registry.Factor` objects built with :func:`quantdask.expr`, named
as the set's columns (``KMID`` ... ``VSUMD60``), so set names and column names never collide
with the registry's names. Pass the list to :func:`quantdask.compute`: every factor of a set
is an expression, so the whole set is evaluated as one graph (each input read once, common
subexpressions such as ``Ref($close, 1)`` computed once).

Sets (:data:`FACTOR_SETS`)
--------------------------
``"alpha158"``
    qlib's ``Alpha158`` (:mod:`quantdask.expression.alpha158`): 158 factors.
``"alpha360"``
    qlib's ``Alpha360`` (:mod:`quantdask.expression.alpha360`): 360 factors.

Semantics
---------
``semantics="qlib"``: the formulas as written, on qlib's inputs and conventions
(:mod:`quantdask.expression.context`: ``$close`` adjusted, ``$volume`` in shares / factor,
float32 inputs, ``min_periods=1`` windows skipping NaN, each instrument on its own span);
this reproduces qlib's published output (``tests/test_alpha158.py``).

``semantics="strict"`` (default): the same quantities under quantdask's rules (windows need
every row valid, comparisons are NaN on missing inputs). The strict context's ``$close`` is
the stored raw close, so the formulas are rewritten onto the strict inputs that mean what
qlib's do: ``$open/$high/$low/$close/$vwap`` -> ``$adj_open`` ... ``$adj_vwap``
(backward-adjusted), ``$volume`` -> ``($vol*100/$adj_factor)`` (shares / factor, qlib's
adjusted volume). Strict sets read ``daily/adj_factor`` and so are asset-level only.
"""

from __future__ import annotations

import dataclasses
import re

from quantdask.expression.alpha158 import ALPHA158
from quantdask.expression.alpha360 import ALPHA360
from quantdask.expression.context import check_semantics
from quantdask.factors.formulas import expr
from quantdask.factors.registry import Factor

#: Set name -> column name -> qlib formula.
FACTOR_SETS: dict[str, dict[str, str]] = {"alpha158": ALPHA158, "alpha360": ALPHA360}

_DOCS = {
    "alpha158": "qlib Alpha158",
    "alpha360": "qlib Alpha360",
}

_PRICE_RE = re.compile(r"\$(open|high|low|close|vwap)\b")
_VOLUME_RE = re.compile(r"\$volume\b")


def strict_formula(formula: str) -> str:
    """A qlib Alpha formula rewritten onto the strict context's inputs.

    Parameters
    ----------
    formula : str
        A formula on qlib's inputs (``$close``, ``$volume``, ...).

    Returns
    -------
    str
        The same formula on ``$adj_close`` ... ``$adj_vwap`` and ``($vol*100/$adj_factor)``.

    Examples
    --------
    >>> from quantdask.factors.sets import strict_formula
    >>> strict_formula("Mean($volume, 5)/($volume+1e-12) + $close")
    'Mean(($vol*100/$adj_factor), 5)/(($vol*100/$adj_factor)+1e-12) + $adj_close'
    """
    out = _PRICE_RE.sub(r"$adj_\1", formula)
    return _VOLUME_RE.sub("($vol*100/$adj_factor)", out)


def factor_set(name: str, *, semantics: str = "strict") -> list[Factor]:
    """The factors of a named factor set, in the set's column order.

    Parameters
    ----------
    name : {"alpha158", "alpha360"}
        The set (case-insensitive): qlib's ``Alpha158`` (158 factors, ``KMID`` ...
        ``VSUMD60``) or ``Alpha360`` (360 factors, ``CLOSE59`` ... ``VOLUME0``).
    semantics : {"strict", "qlib"}, default "strict"
        ``"qlib"`` reproduces qlib's numbers; ``"strict"`` computes the same quantities
        under quantdask's rules (module docstring).

    Returns
    -------
    list of Factor
        Expression factors whose ``variable`` is the qlib column name; pass them to
        :func:`quantdask.compute`.

    Raises
    ------
    ValueError
        For an unknown set (the message lists the available ones) or semantics.

    Examples
    --------
    >>> import quantdask as qd
    >>> fs = qd.factor_set("alpha158", semantics="qlib")
    >>> len(fs), fs[0].variable, fs[0].formula
    (158, 'KMID', '($close - $open) / $open')
    """
    semantics = check_semantics(semantics)
    key = name.lower() if isinstance(name, str) else name
    if key not in FACTOR_SETS:
        raise ValueError(
            f"unknown factor set {name!r}; available: {', '.join(sorted(FACTOR_SETS))}"
        )
    out = []
    for column, formula in FACTOR_SETS[key].items():
        text = formula if semantics == "qlib" else strict_formula(formula)
        f = expr(text, name=column, semantics=semantics, doc=f"{_DOCS[key]} {column}: {formula}")
        if semantics == "strict":
            f = dataclasses.replace(f, level=("asset",))
        out.append(f)
    return out


__all__ = ["FACTOR_SETS", "factor_set", "strict_formula"]
