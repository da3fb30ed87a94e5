"""Formulas: qlib's expression syntax, parsed by hand and printed back.

Syntax (qlib's, which is Python's for the operators it uses)::

    formula := or ( ("<" | "<=" | ">" | ">=" | "==" | "!=") or )?
    or      := and ( "|" and )*
    and     := sum ( "&" sum )*
    sum     := product ( ("+" | "-") product )*
    product := unary ( ("*" | "/") unary )*
    unary   := "-" unary | power
    power   := atom ( "**" unary )?
    atom    := number | "$" name | Name "(" formula ( "," formula )* ")" | "(" formula ")"

``$name`` is an input (:mod:`quantdask.expression.context`), ``Name(...)`` an operator
(:data:`quantdask.expression.nodes.OPERATORS`: ``Mean($close, 5)``); an operator's window,
periods and quantile arguments must be numbers. Comparisons do not chain
(``a < b < c`` is refused, as it would mean something else in Python). Nothing in the
string is evaluated as Python: :func:`parse` builds nodes from tokens and reports an error
with the position and the token it could not use.

:func:`to_formula` prints an expression so that :func:`parse` gives back an equal tree
(infix operators with the parentheses precedence needs, everything else as calls).
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from typing import Any

from quantdask.expression import window  # noqa: F401  (registers the window operators)
from quantdask.expression.nodes import (
    OPERATORS,
    Add,
    And,
    Binary,
    Const,
    Div,
    Eq,
    Expr,
    Field,
    Ge,
    Gt,
    Le,
    Lt,
    Mul,
    Ne,
    Neg,
    Or,
    Power,
    Sub,
)


class FormulaError(ValueError):
    """A formula that cannot be parsed; the message names the position and the token.

    Attributes
    ----------
    formula : str
    position : int
        0-based character offset of the offending token.
    """

    def __init__(self, message: str, formula: str, position: int) -> None:
        pointer = " " * position + "^"
        super().__init__(f"{message} at position {position}\n  {formula}\n  {pointer}")
        self.formula = formula
        self.position = position


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<field>\$[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*(?![A-Za-z0-9_]|\s*\())?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|<=|>=|==|!=|[-+*/<>&|(),])
    """,
    re.VERBOSE,
)

_COMPARE = {"<": Lt, "<=": Le, ">": Gt, ">=": Ge, "==": Eq, "!=": Ne}
_SUM = {"+": Add, "-": Sub}
_PRODUCT = {"*": Mul, "/": Div}

#: qlib operators this parser knows it does not support, and why.
UNSUPPORTED = {
    "Mask": "reads another instrument's feature; write the other instrument as a field",
    "Feature": "write the input as $name",
    "PFeature": "point-in-time fields are read with quantdask.fundamentals",
    "TResample": "resample with quantdask.resample_bars",
}


def _unsupported(name: str, text: str, pos: int) -> FormulaError:
    return FormulaError(f"qlib's {name} is not supported ({UNSUPPORTED[name]})", text, pos)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            # qlib's Mask($close, "sh000300"): name the operator, not its string argument
            for (kind, value, at), nxt in zip(tokens, [*tokens[1:], ("op", "", pos)], strict=False):
                if kind == "name" and value in UNSUPPORTED and nxt[:2] == ("op", "("):
                    raise _unsupported(value, text, at)
            raise FormulaError(f"unexpected character {text[pos]!r}", text, pos)
        kind = m.lastgroup or ""
        if kind != "space":
            tokens.append((kind, m.group(), pos))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # ---- token helpers -------------------------------------------------------------------

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: tuple[str, str, int] | None = None) -> FormulaError:
        kind, value, pos = tok or self.peek()
        shown = "the end of the formula" if kind == "end" else f"token {value!r}"
        return FormulaError(f"{message}: found {shown}", self.text, pos)

    def expect(self, value: str) -> None:
        tok = self.peek()
        if tok[0] != "op" or tok[1] != value:
            raise self.error(f"expected {value!r}")
        self.take()

    def at(self, *values: str) -> bool:
        kind, value, _ = self.peek()
        return kind == "op" and value in values

    # ---- grammar -------------------------------------------------------------------------

    def formula(self) -> Expr:
        left = self.or_()
        if self.at(*_COMPARE):
            op = self.take()[1]
            left = _COMPARE[op](left, self.or_())
            if self.at(*_COMPARE):
                raise self.error("comparisons do not chain; add parentheses")
        return left

    def or_(self) -> Expr:
        left = self.and_()
        while self.at("|"):
            self.take()
            left = Or(left, self.and_())
        return left

    def and_(self) -> Expr:
        left = self.sum()
        while self.at("&"):
            self.take()
            left = And(left, self.sum())
        return left

    def sum(self) -> Expr:
        left = self.product()
        while self.at(*_SUM):
            op = self.take()[1]
            left = _SUM[op](left, self.product())
        return left

    def product(self) -> Expr:
        left = self.unary()
        while self.at(*_PRODUCT):
            op = self.take()[1]
            left = _PRODUCT[op](left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.at("-"):
            self.take()
            inner = self.unary()
            if isinstance(inner, Const):
                return Const(-inner.value)
            return Neg(inner)
        if self.at("+"):
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Expr:
        base = self.atom()
        if self.at("**"):
            self.take()
            return Power(base, self.unary())
        return base

    def atom(self) -> Expr:
        kind, value, pos = self.peek()
        if kind == "number":
            self.take()
            return Const(float(value))
        if kind == "field":
            self.take()
            return Field(value[1:])
        if kind == "name":
            self.take()
            return self.call(value, pos)
        if kind == "op" and value == "(":
            self.take()
            inner = self.formula()
            self.expect(")")
            return inner
        raise self.error("expected a number, a $field, an operator call or '('")

    def call(self, name: str, pos: int) -> Expr:
        cls = OPERATORS.get(name)
        if cls is None:
            if name in UNSUPPORTED:
                raise _unsupported(name, self.text, pos)
            known = ", ".join(sorted(n for n in OPERATORS if n != "Neg"))
            raise FormulaError(f"unknown operator {name!r} (known: {known})", self.text, pos)
        if not self.at("("):
            raise self.error(f"expected '(' after {name}")
        self.take()
        args: list[tuple[Expr, int]] = []
        if not self.at(")"):
            while True:
                start = self.peek()[2]
                args.append((self.formula(), start))
                if self.at(","):
                    self.take()
                    continue
                break
        self.expect(")")
        spec = fields(cls)  # type: ignore[arg-type]
        if len(args) != len(spec):
            wanted = ", ".join(f.name for f in spec)
            raise FormulaError(
                f"{name} takes {len(spec)} argument(s) ({wanted}), got {len(args)}",
                self.text,
                pos,
            )
        values: list[Any] = []
        for f, (arg, at) in zip(spec, args, strict=True):
            if f.type in ("Expr", Expr):
                values.append(arg)
                continue
            if not isinstance(arg, Const):
                raise FormulaError(f"{name}: {f.name} must be a number", self.text, at)
            v = arg.value
            if f.type == "int":
                if not v.is_integer():
                    raise FormulaError(f"{name}: {f.name} must be an integer", self.text, at)
                v = int(v)
            values.append(v)
        try:
            return cls(*values)
        except (TypeError, ValueError) as err:
            raise FormulaError(str(err), self.text, pos) from None


def parse(formula: str) -> Expr:
    """Parse a formula into an expression tree.

    Parameters
    ----------
    formula : str
        qlib syntax, e.g. ``"Mean($close, 5) / $close"``.

    Returns
    -------
    Expr

    Raises
    ------
    FormulaError
        Naming the position and the token that could not be parsed.

    Examples
    --------
    >>> from quantdask.expression.formula import parse
    >>> parse("Mean($close, 5) / $close").lookback
    4
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a str, got {type(formula).__name__}")
    p = _Parser(formula)
    if p.peek()[0] == "end":
        raise FormulaError("empty formula", formula, 0)
    out = p.formula()
    if p.peek()[0] != "end":
        raise p.error("unexpected token after a complete formula")
    return out


# --------------------------------------------------------------------------------------
# printing
# --------------------------------------------------------------------------------------

_UNARY_PRECEDENCE = 6


def _number(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


def _param(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _precedence(e: Expr) -> int:
    if isinstance(e, Binary) and e.symbol is not None:
        return e.precedence
    if isinstance(e, Neg) and isinstance(e.x, Const):
        return 100  # printed as a call
    if isinstance(e, Neg) or (isinstance(e, Const) and e.value < 0):
        return _UNARY_PRECEDENCE
    return 100


def _wrap(e: Expr, minimum: int) -> str:
    text = to_formula(e)
    return f"({text})" if _precedence(e) < minimum else text


def to_formula(e: Expr) -> str:
    """Print an expression as a formula that :func:`parse` reads back to an equal tree.

    Parameters
    ----------
    e : Expr

    Returns
    -------
    str
    """
    if isinstance(e, Field):
        return f"${e.name}"
    if isinstance(e, Const):
        return _number(e.value)
    if isinstance(e, Neg):
        if isinstance(e.x, Const):  # "-2" parses as the constant -2
            return f"Neg({_number(e.x.value)})"
        return "-" + _wrap(e.x, _UNARY_PRECEDENCE + 1)
    if isinstance(e, Binary) and e.symbol is not None:
        p = e.precedence
        # left-associative: the right side needs parentheses at equal precedence;
        # comparisons do not chain, so both sides do
        left_min = p + 1 if p == 1 else p
        left = _wrap(e.left, left_min)
        right = _wrap(e.right, p + 1)
        if isinstance(e.left, Const) and e.left.value < 0:
            left = f"({left})"
        if isinstance(e.right, Const) and e.right.value < 0:
            right = f"({right})"
        return f"{left} {e.symbol} {right}"
    args = [to_formula(c) for c in e.children] + [_param(v) for v in e.params]
    return f"{e.formula_name}({', '.join(args)})"


__all__ = ["UNSUPPORTED", "FormulaError", "parse", "to_formula"]
