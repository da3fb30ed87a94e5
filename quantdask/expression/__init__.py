"""quantdask.expression: factor expressions with derived lookbacks, formulas and factor sets.

The layer between the ``ts_*`` / ``cs_*`` ops (:mod:`quantdask.ops`) and the factor library:

* :mod:`~quantdask.expression.nodes`: the expression tree (inputs, constants, element-wise
  operators); :mod:`~quantdask.expression.window`: window operators along ``date``. Every
  operator is one class with its formula name, lookback rule and evaluation.
* :mod:`~quantdask.expression.context`: what ``$close`` means at each level and under each
  semantics (``"strict"``, ``"qlib"``).
* :mod:`~quantdask.expression.evaluate`: many expressions as one dask graph, each input read
  once and each common subexpression computed once.
* :mod:`~quantdask.expression.formula`: qlib's formula syntax, parsed by hand and printed
  back.

Users write ``qd.expr("Mean($close, 5) / $close")`` (a factor, usable wherever a factor is),
or build trees in Python: ``Mean(Field("close"), 5) / Field("close")``.
"""

from quantdask.expression import window
from quantdask.expression.context import SEMANTICS, Context, InputError
from quantdask.expression.evaluate import count_nodes, evaluate
from quantdask.expression.formula import FormulaError, parse, to_formula
from quantdask.expression.nodes import OPERATORS, Const, Expr, Field, as_expr

__all__ = [
    "OPERATORS",
    "SEMANTICS",
    "Const",
    "Context",
    "Expr",
    "Field",
    "FormulaError",
    "InputError",
    "as_expr",
    "count_nodes",
    "evaluate",
    "parse",
    "to_formula",
    "window",
]
