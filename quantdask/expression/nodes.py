"""Expression nodes: inputs, constants and element-wise operators.

An expression is a small immutable tree. Leaves are :class:`Field` (a named input such as
``$close``) and :class:`Const`; every other node is an operator class defined in this module
(element-wise arithmetic, comparisons, logic) or in :mod:`quantdask.expression.window` (rolling
windows along ``date``) and :mod:`quantdask.expression.cross` (cross-sections). Each operator class
is one findable definition holding its formula name, its lookback rule and its evaluation.

Nodes compare and hash by structure (``Mean(Field("close"), 5) == Mean(Field("close"), 5)``),
so the evaluator (:mod:`quantdask.expression.evaluate`) computes a common subexpression once.
Python operators build nodes: ``a + b``, ``a / 2``, ``-a``, ``a > b``, ``a & b``, ``~a``;
``==`` stays structural equality (use :meth:`Expr.eq` / :meth:`Expr.ne` for the element-wise
comparison).

The lookback of a node is the number of rows before ``t`` the value at ``t`` needs: 0 for a
leaf, the maximum over the children for an element-wise node, and the child's lookback plus
the window's own (``window - 1`` rows, ``periods`` for a shift) for a window node.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    from quantdask.expression.context import Context

#: Formula name -> operator class, filled by :meth:`Expr.__init_subclass__`.
OPERATORS: dict[str, type[Op]] = {}

#: Lookback meaning "all history before the start" (same value as the registry's).
UNBOUNDED: int = 2**62


def _add_lookback(a: int, b: int) -> int:
    return UNBOUNDED if a >= UNBOUNDED or b >= UNBOUNDED else a + b


class Expr:
    """Base class of expression nodes.

    Subclasses are frozen dataclasses whose fields are the child expressions (annotated
    ``Expr``) followed by plain parameters (windows, quantiles). Do not instantiate
    :class:`Expr` itself.
    """

    #: Name in formulas (``"Mean"``); leaves and infix operators print differently.
    formula_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("formula_name")
        if name:
            if name in OPERATORS and OPERATORS[name].__qualname__ != cls.__qualname__:
                raise TypeError(f"operator name {name!r} is defined twice")
            OPERATORS[name] = cls  # type: ignore[assignment]

    # ---- structure -------------------------------------------------------------------

    @property
    def children(self) -> tuple[Expr, ...]:
        """The child expressions, in order."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.type in ("Expr", Expr))  # type: ignore[arg-type]

    @property
    def params(self) -> tuple[Any, ...]:
        """The non-expression parameters (windows, quantiles), in order."""
        return tuple(
            getattr(self, f.name)
            for f in fields(self)  # type: ignore[arg-type]
            if f.type not in ("Expr", Expr)
        )

    @property
    def lookback(self) -> int:
        """Rows before ``t`` the value at ``t`` needs (derived from the tree)."""
        own = self.own_lookback()
        kids = [c.lookback for c in self.children]
        return _add_lookback(max(kids, default=0), own)

    def own_lookback(self) -> int:
        """Rows this node adds to its children's lookback (0 for element-wise nodes)."""
        return 0

    def walk(self) -> Iterator[Expr]:
        """Every node of the tree, children before parents, each distinct node once."""
        seen: set[Expr] = set()
        stack: list[tuple[Expr, bool]] = [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                if node not in seen:
                    seen.add(node)
                    yield node
                continue
            if node in seen:
                continue
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(node.children))

    def fields(self) -> tuple[str, ...]:
        """Names of the :class:`Field` inputs the expression reads, in order of appearance."""
        return tuple(dict.fromkeys(n.name for n in self.walk() if isinstance(n, Field)))

    def future(self) -> int:
        """Rows after ``t`` the value at ``t`` reads (``Ref(x, -2)``: 2); 0 when causal."""
        kids = max((c.future() for c in self.children), default=0)
        own = self.own_future()
        return kids + own if own else kids

    def own_future(self) -> int:
        """Rows after ``t`` this node itself reads (only a negative shift has any)."""
        return 0

    def compute(self, ctx: Context, *args: xr.DataArray) -> xr.DataArray:
        """Evaluate this node on its evaluated children (lazy DataArrays)."""
        raise NotImplementedError(type(self).__name__)

    # ---- formulas --------------------------------------------------------------------

    def formula(self) -> str:
        """The expression as a formula that :func:`quantdask.expr` parses back to it."""
        from quantdask.expression.formula import to_formula

        return to_formula(self)

    def __str__(self) -> str:
        return self.formula()

    def __hash__(self) -> int:
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((type(self).__name__, *(getattr(self, f.name) for f in fields(self))))  # type: ignore[arg-type]
            object.__setattr__(self, "_hash", h)
        return h

    # ---- Python operators build nodes --------------------------------------------------

    def __add__(self, other: Any) -> Expr:
        return Add(self, as_expr(other))

    def __radd__(self, other: Any) -> Expr:
        return Add(as_expr(other), self)

    def __sub__(self, other: Any) -> Expr:
        return Sub(self, as_expr(other))

    def __rsub__(self, other: Any) -> Expr:
        return Sub(as_expr(other), self)

    def __mul__(self, other: Any) -> Expr:
        return Mul(self, as_expr(other))

    def __rmul__(self, other: Any) -> Expr:
        return Mul(as_expr(other), self)

    def __truediv__(self, other: Any) -> Expr:
        return Div(self, as_expr(other))

    def __rtruediv__(self, other: Any) -> Expr:
        return Div(as_expr(other), self)

    def __pow__(self, other: Any) -> Expr:
        return Power(self, as_expr(other))

    def __neg__(self) -> Expr:
        return Neg(self)

    def __abs__(self) -> Expr:
        return Abs(self)

    def __gt__(self, other: Any) -> Expr:  # type: ignore[override]
        return Gt(self, as_expr(other))

    def __ge__(self, other: Any) -> Expr:  # type: ignore[override]
        return Ge(self, as_expr(other))

    def __lt__(self, other: Any) -> Expr:  # type: ignore[override]
        return Lt(self, as_expr(other))

    def __le__(self, other: Any) -> Expr:  # type: ignore[override]
        return Le(self, as_expr(other))

    def __and__(self, other: Any) -> Expr:
        return And(self, as_expr(other))

    def __or__(self, other: Any) -> Expr:
        return Or(self, as_expr(other))

    def __invert__(self) -> Expr:
        return Not(self)

    def eq(self, other: Any) -> Expr:
        """Element-wise ``self == other`` (``==`` itself compares trees)."""
        return Eq(self, as_expr(other))

    def ne(self, other: Any) -> Expr:
        """Element-wise ``self != other``."""
        return Ne(self, as_expr(other))

    def __bool__(self) -> bool:
        raise TypeError(
            "an expression has no truth value; use & | ~ for logic and If(...) to choose"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.formula()!r})"


def _run_quietly(func: Any, *xs: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return func(*xs)


def quietly(func: Any, *args: Any) -> Any:
    """``func(*args)`` (a numpy ufunc) with floating-point warnings silenced when it runs.

    The inputs are lazy: an ``np.errstate`` around building the graph does not cover its
    computation, so the ufunc runs inside one, block by block. Division by 0 gives +-inf
    (NaN for 0 / 0), the log of 0 -inf and of a negative NaN, as numpy computes them.
    """
    if not any(isinstance(a, xr.DataArray) for a in args):
        return _run_quietly(func, *args)
    probe = [np.ones(1, a.dtype) if isinstance(a, xr.DataArray) else a for a in args]
    dtype = _run_quietly(func, *probe).dtype
    return xr.apply_ufunc(
        partial(_run_quietly, func), *args, dask="parallelized", output_dtypes=[dtype]
    )


def as_expr(value: Any) -> Expr:
    """An :class:`Expr` as is, a real number as :class:`Const`; anything else raises.

    Parameters
    ----------
    value : Expr or real number

    Returns
    -------
    Expr

    Raises
    ------
    TypeError
        For any other type (strings are not parsed here: use :func:`quantdask.expr`).
    """
    if isinstance(value, Expr):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(
            f"expected an expression or a number, got {type(value).__name__}: {value!r}"
        )
    return Const(float(value))


# --------------------------------------------------------------------------------------
# leaves
# --------------------------------------------------------------------------------------

#: A name ``$name`` can write: an identifier, or ``node/field`` (two identifiers).
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True, eq=True, repr=False)
class Field(Expr):
    """A named input: a stored field (``close``), a derived input (``adj_close``,
    ``returns``) or a field of another node (``macro/cgb_10y``); ``$name`` in formulas.

    What a name resolves to depends on the level and the semantics
    (:class:`quantdask.expression.context.Context`).
    """

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _FIELD_NAME.fullmatch(self.name):
            raise ValueError(
                "a field name is an identifier (letters, digits, '_', not starting with a "
                f"digit) or node/identifier, got {self.name!r}"
            )

    def compute(self, ctx: Context, *args: xr.DataArray) -> xr.DataArray:
        return ctx.field(self.name)

    __hash__ = Expr.__hash__


@dataclass(frozen=True, eq=True, repr=False)
class Const(Expr):
    """A finite number (float64)."""

    value: float

    def __post_init__(self) -> None:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise TypeError(f"a constant is a real number, got {v!r}")
        if not math.isfinite(float(v)):
            raise ValueError(
                f"a constant is a finite number (a formula cannot write it), got {v!r}"
            )
        object.__setattr__(self, "value", float(v))

    def compute(self, ctx: Context, *args: xr.DataArray) -> xr.DataArray:
        return ctx.constant(self.value)

    __hash__ = Expr.__hash__


class Op(Expr):
    """Base of operator nodes (everything but the leaves)."""


# --------------------------------------------------------------------------------------
# element-wise: unary
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=True, repr=False)
class Unary(Op):
    """Base of element-wise one-argument operators."""

    x: Expr

    __hash__ = Expr.__hash__


class Neg(Unary):
    """``-x`` (formula ``-x``)."""

    formula_name = "Neg"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return -x


class Abs(Unary):
    """Absolute value (qlib ``Abs``)."""

    formula_name = "Abs"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return np.abs(x)


class Sign(Unary):
    """Sign: -1, 0 or +1, NaN stays NaN (qlib ``Sign``)."""

    formula_name = "Sign"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return np.sign(x)


class Log(Unary):
    """Natural logarithm; NaN for ``x <= 0`` (qlib ``Log``: ``-inf`` at 0 there)."""

    formula_name = "Log"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        out = quietly(np.log, x)
        if ctx.semantics == "qlib":
            return out
        return out.where(x > 0)


class Not(Unary):
    """Logical not of a condition (qlib ``Not``); NaN stays NaN under strict semantics."""

    formula_name = "Not"

    def compute(self, ctx: Context, x: xr.DataArray) -> xr.DataArray:
        return ctx.logical(~ctx.truth(x), x)


# --------------------------------------------------------------------------------------
# element-wise: binary
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=True, repr=False)
class Binary(Op):
    """Base of element-wise two-argument operators."""

    left: Expr
    right: Expr

    #: Infix symbol and precedence for printing (None: printed as a call).
    symbol: ClassVar[str | None] = None
    precedence: ClassVar[int] = 0

    __hash__ = Expr.__hash__


class Add(Binary):
    """``left + right`` (qlib ``Add``)."""

    formula_name = "Add"
    symbol = "+"
    precedence = 4

    def compute(self, ctx: Context, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a + b


class Sub(Binary):
    """``left - right`` (qlib ``Sub``)."""

    formula_name = "Sub"
    symbol = "-"
    precedence = 4

    def compute(self, ctx: Context, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a - b


class Mul(Binary):
    """``left * right`` (qlib ``Mul``)."""

    formula_name = "Mul"
    symbol = "*"
    precedence = 5

    def compute(self, ctx: Context, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a * b


class Div(Binary):
    """``left / right`` (qlib ``Div``); division by 0 gives +-inf (or NaN for 0 / 0)."""

    formula_name = "Div"
    symbol = "/"
    precedence = 5

    def compute(self, ctx: Context, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return quietly(np.divide, a, b)


class Power(Binary):
    """``left ** right`` (qlib ``Power``); ``**`` in formulas too."""

    formula_name = "Power"

    def compute(self, ctx: Context, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return quietly(np.power, a, b)


class Greater(Binary):
    """Element-wise maximum of the two (qlib ``Greater``); NaN if either is NaN."""

    formula_name = "Greater"

    def compute(self, ctx: Context, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return np.maximum(a, b)


class Less(Binary):
    """Element-wise minimum of the two (qlib ``Less``); NaN if either is NaN."""

    formula_name = "Less"

    def compute(self, ctx: Context, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return np.minimum(a, b)


class Compare(Binary):
    """Base of comparisons: 1.0 (true) / 0.0 (false).

    Strict semantics: NaN when either side is NaN. qlib semantics: false (0) when either
    side is NaN, as numpy compares, inside each instrument's span.
    """

    precedence = 1

    def test(self, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        raise NotImplementedError

    def compute(self, ctx: Context, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return ctx.logical(self.test(a, b), a, b)


class Gt(Compare):
    """``left > right`` (qlib ``Gt``)."""

    formula_name = "Gt"
    symbol = ">"

    def test(self, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a > b


class Ge(Compare):
    """``left >= right`` (qlib ``Ge``)."""

    formula_name = "Ge"
    symbol = ">="

    def test(self, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a >= b


class Lt(Compare):
    """``left < right`` (qlib ``Lt``)."""

    formula_name = "Lt"
    symbol = "<"

    def test(self, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a < b


class Le(Compare):
    """``left <= right`` (qlib ``Le``)."""

    formula_name = "Le"
    symbol = "<="

    def test(self, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a <= b


class Eq(Compare):
    """``left == right`` element-wise (qlib ``Eq``)."""

    formula_name = "Eq"
    symbol = "=="

    def test(self, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a == b


class Ne(Compare):
    """``left != right`` element-wise (qlib ``Ne``)."""

    formula_name = "Ne"
    symbol = "!="

    def test(self, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return a != b


class And(Compare):
    """Logical and of two conditions (qlib ``And``; ``&`` in formulas)."""

    formula_name = "And"
    symbol = "&"
    precedence = 3

    def test(self, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return ((a != 0) & (a == a)) & ((b != 0) & (b == b))


class Or(Compare):
    """Logical or of two conditions (qlib ``Or``; ``|`` in formulas)."""

    formula_name = "Or"
    symbol = "|"
    precedence = 2

    def test(self, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        return ((a != 0) & (a == a)) | ((b != 0) & (b == b))


@dataclass(frozen=True, eq=True, repr=False)
class If(Op):
    """``If(cond, a, b)``: ``a`` where the condition holds, else ``b`` (qlib ``If``).

    Strict semantics: NaN where the condition is NaN. qlib semantics: a NaN condition is
    false (``np.where``).
    """

    cond: Expr
    then: Expr
    other: Expr

    formula_name = "If"

    def compute(
        self, ctx: Context, c: xr.DataArray, a: xr.DataArray, b: xr.DataArray
    ) -> xr.DataArray:
        out = xr.where(ctx.truth(c), a, b)
        if ctx.semantics == "qlib":
            return ctx.on_span(out)
        return out.where(c.notnull())

    __hash__ = Expr.__hash__


def check_window(window: Any, what: str, *, minimum: int = 1) -> int:
    """A window length as an int ``>= minimum``, or a ``ValueError`` naming ``what``."""
    if isinstance(window, float) and window.is_integer():
        window = int(window)
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < minimum:
        raise ValueError(f"{what}: window must be an int >= {minimum}, got {window!r}")
    return int(window)


def is_number(value: Any) -> bool:
    """True for a real, finite number (not a bool)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and math.isfinite(float(value))
    )


__all__ = [
    "OPERATORS",
    "Abs",
    "Add",
    "And",
    "Binary",
    "Compare",
    "Const",
    "Div",
    "Eq",
    "Expr",
    "Field",
    "Ge",
    "Greater",
    "Gt",
    "If",
    "Le",
    "Less",
    "Log",
    "Lt",
    "Mul",
    "Ne",
    "Neg",
    "Not",
    "Op",
    "Or",
    "Power",
    "Sign",
    "Sub",
    "Unary",
    "as_expr",
]
