"""Formulas: every operator prints a formula that parses back to it, random trees too
(hypothesis), Python's precedence, and errors that name the position and the token
without ever evaluating the string as Python."""

from __future__ import annotations

import inspect
import math
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import quantdask as qd
from quantdask.expression import OPERATORS, Const, Expr, Field, FormulaError, parse, to_formula
from quantdask.expression import formula as formula_module
from quantdask.expression import nodes as N
from quantdask.expression import window as W

LEAVES = [Field("close"), Field("vol"), Field("macro/cgb_10y"), Const(2.5), Const(-3.0)]


def _param(cls: type, name: str, typ: str):
    if typ == "float":  # Quantile's q
        return 0.25
    if cls is W.Ref:
        return -2  # a label's future reference prints and parses too
    return {"window": 5, "periods": 2, "min_periods": 20, "limit": 3}[name]


def instance(cls: type, kids: list[Expr] | None = None) -> Expr:
    """One node of ``cls`` built from its dataclass fields."""
    kids = list(kids or LEAVES)
    args = []
    for f in fields(cls):
        if f.type in ("Expr", Expr):
            args.append(kids.pop(0))
        else:
            args.append(_param(cls, f.name, f.type))
    return cls(*args)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_every_operator_round_trips(name):
    cls = OPERATORS[name]
    e = instance(cls)
    assert type(e) is cls and e.formula_name == name
    text = e.formula()
    assert parse(text) == e, text
    assert parse(text).formula() == text
    assert str(e) == text
    # inside other nodes, and with other nodes inside
    inner = instance(cls, [W.Mean(Field("high"), 3), Const(-1.5), N.Neg(Field("low"))])
    for outer in (
        W.Corr(e, W.Ref(e, 1), 10) / (Const(2.0) - e),
        -e,
        e**e,
        N.If(e > 0, e, -e),
        inner * inner - inner,
    ):
        assert parse(outer.formula()) == outer, outer.formula()


def test_operator_table_is_complete_and_named_by_its_classes():
    from quantdask.expression.formula import UNSUPPORTED

    for name, cls in OPERATORS.items():
        assert cls.__dict__["formula_name"] == name
        assert name not in UNSUPPORTED
    issue = "Ref Mean Sum Std Var Skew Kurt Max Min IdxMax IdxMin Quantile Med Mad Rank Count "
    issue += "Delta Slope Rsquare Resi WMA EMA Corr Cov Abs Sign Log Power Greater Less If "
    issue += "Not And Or"
    assert set(issue.split()) <= set(OPERATORS)


# --------------------------------------------------------------------------------------
# random trees
# --------------------------------------------------------------------------------------

field_names = st.sampled_from(["close", "vol", "adj_close", "pe_ttm", "macro/cgb_10y", "A_1"])
finite = st.floats(allow_nan=False, allow_infinity=False)
leaves = st.one_of(field_names.map(Field), finite.map(Const), st.integers(-9, 9).map(Const))


def _int_param(cls: type, name: str):
    if cls is W.Ref:
        return st.integers(-5, 40).filter(bool)
    if name == "window" and cls in (W.Std, W.Var, W.Skew, W.Kurt):
        return st.integers(2, 40)
    return st.integers(1, 40)


def _node(cls: type, children: st.SearchStrategy) -> st.SearchStrategy:
    parts = []
    for f in fields(cls):
        if f.type in ("Expr", Expr):
            parts.append(children)
        elif f.type == "float":
            parts.append(st.floats(0.0, 1.0))
        else:
            parts.append(_int_param(cls, f.name))
    return st.tuples(*parts).map(lambda args: cls(*args))


def trees(max_leaves: int = 12) -> st.SearchStrategy:
    ops = [OPERATORS[n] for n in sorted(OPERATORS)]
    return st.recursive(
        leaves,
        lambda kids: st.one_of(*(_node(cls, kids) for cls in ops)),
        max_leaves=max_leaves,
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_random_trees_round_trip(e):
    text = to_formula(e)
    back = parse(text)
    assert back == e, text
    assert hash(back) == hash(e)
    assert back.lookback == e.lookback and back.future() == e.future()


@settings(max_examples=200, deadline=None)
@given(finite)
def test_constants_round_trip_exactly(v):
    for e in (Const(v), Field("a") - v, Field("a") * v, Field("a") ** v, v / Field("a")):
        assert parse(e.formula()) == e, e.formula()


# --------------------------------------------------------------------------------------
# precedence (Python's, which qlib formulas use)
# --------------------------------------------------------------------------------------

a, b, c, d = (Field(x) for x in "abcd")


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("$a - ($b - $c)", N.Sub(a, N.Sub(b, c))),
        ("$a - $b - $c", N.Sub(N.Sub(a, b), c)),
        ("$a / ($b * $c)", N.Div(a, N.Mul(b, c))),
        ("$a / $b * $c", N.Mul(N.Div(a, b), c)),
        ("$a + $b * $c", N.Add(a, N.Mul(b, c))),
        ("-$a ** 2", N.Neg(N.Power(a, Const(2)))),
        ("(-$a) ** 2", N.Power(N.Neg(a), Const(2))),
        ("-1 ** 2", N.Neg(N.Power(Const(1), Const(2)))),
        ("$a ** -1", N.Power(a, Const(-1))),
        ("2 ** 3 ** 2", N.Power(Const(2), N.Power(Const(3), Const(2)))),
        ("-$a * $b", N.Mul(N.Neg(a), b)),
        ("--$a", N.Neg(N.Neg(a))),
        ("+$a", a),
        ("$a - -1", N.Sub(a, Const(-1))),
        ("-2.5", Const(-2.5)),
        ("Ref($a, -1)", W.Ref(a, -1)),
        ("Mean($a, 5.0)", W.Mean(a, 5)),
        ("1e-3 * $a", N.Mul(Const(0.001), a)),
        ("($a > $b) & ($c < 1) | Not($d)", N.Or(N.And(N.Gt(a, b), N.Lt(c, Const(1))), N.Not(d))),
        ("$a > $b & $c", N.Gt(a, N.And(b, c))),  # & binds tighter than > (Python)
        ("$a | $b & $c", N.Or(a, N.And(b, c))),
        ("$a + 1 > $b * 2", N.Gt(N.Add(a, Const(1)), N.Mul(b, Const(2)))),
        ("($a > $b) > $c", N.Gt(N.Gt(a, b), c)),
        ("$a == $b", N.Eq(a, b)),
        ("$a != $b", N.Ne(a, b)),
        ("  Mean( $a ,5 )/$a", N.Div(W.Mean(a, 5), a)),
    ],
)
def test_precedence(text, tree):
    assert parse(text) == tree
    assert parse(tree.formula()) == tree


def test_printing_adds_only_needed_parentheses():
    assert N.Sub(a, N.Sub(b, c)).formula() == "$a - ($b - $c)"
    assert N.Sub(N.Sub(a, b), c).formula() == "$a - $b - $c"
    assert N.Neg(N.Add(a, b)).formula() == "-($a + $b)"
    assert N.Sub(a, Const(-1)).formula() == "$a - (-1)"
    assert N.And(N.Gt(a, b), N.Lt(c, Const(1))).formula() == "($a > $b) & ($c < 1)"


@pytest.mark.parametrize(
    "e",
    [
        N.Neg(Const(1.0)),
        N.Neg(Const(-1.0)),
        N.Neg(Const(0.0)),
        N.Sub(Const(1.0), N.Neg(Const(2.0))),
        N.Neg(N.Neg(Const(3.0))),
        -qd.expression.as_expr(2),
    ],
)
def test_negated_constants_round_trip(e):
    assert parse(e.formula()) == e, e.formula()


@pytest.mark.parametrize("name", ["a/b/c", "x/", "a//b", "/a", "a/1b"])
def test_field_names_are_those_a_formula_can_write(name):
    """A Field that could not be printed as a formula is refused when it is made."""
    with pytest.raises(ValueError, match="field name"):
        Field(name)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_constants_are_refused(value):
    """A formula has no way to write inf or NaN; such a constant is refused when made."""
    with pytest.raises((ValueError, TypeError)):
        Const(value)


# --------------------------------------------------------------------------------------
# errors: position and token; nothing evaluated as Python
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "says"),
    [
        ("Foo($close)", 0, "unknown operator 'Foo'"),
        ("Mean(Bar($close), 5)", 5, "unknown operator 'Bar'"),
        ("mean($close, 5)", 0, "unknown operator 'mean'"),
        ("Mean($close)", 0, "Mean takes 2 argument(s)"),
        ("Corr($a, $b)", 0, "Corr takes 3"),
        ("Abs($a, 1)", 0, "Abs takes 1"),
        ("Mean($close, 2.5)", 13, "window must be an integer"),
        ("Mean($close, $vol)", 13, "window must be a number"),
        ("Ref($close, 0)", 0, "non-zero"),
        ("Quantile($close, 5, 2)", 0, "q must be a number in [0, 1]"),
        ("Std($close, 0)", 0, "window must be an int >= 1"),
        ("Mean($close, 5", 14, "expected ')': found the end of the formula"),
        ("($close + 1", 11, "expected ')'"),
        ("Mean($close, 5))", 15, "found token ')'"),
        ("$a < $b < $c", 8, "comparisons do not chain"),
        ("$a < $b == $c", 8, "comparisons do not chain"),
        ('Mask($close, "sh000300")', 0, "Mask is not supported"),
        ("Mask($close, 'csi300') / $close", 0, "Mask is not supported"),
        ("$", 0, "unexpected character '$'"),
        ("$1a", 0, "unexpected character '$'"),
        ("Mean($close, 5) @ 2", 16, "unexpected character '@'"),
        ("$close; 1", 6, "unexpected character ';'"),
        ("$close.x", 6, "unexpected character '.'"),
        ("$a = 1", 3, "unexpected character '='"),
        ("1 +* 2", 3, "found token '*'"),
        ("$close $open", 7, "found token '$open'"),
        ("()", 1, "found token ')'"),
        ("Mean(, 5)", 5, "found token ','"),
        ("Mean($a, 5,)", 11, "found token ')'"),
        ("Mean", 4, "expected '(' after Mean"),
        ("", 0, "empty formula"),
        ("   ", 0, "empty formula"),
    ],
)
def test_errors_name_position_and_token(text, position, says):
    with pytest.raises(FormulaError) as err:
        parse(text)
    assert err.value.position == position, str(err.value)
    assert says in str(err.value)
    assert f"at position {position}" in str(err.value)
    assert err.value.formula == text
    # the message points at the position under the formula
    lines = str(err.value).splitlines()
    assert lines[-1].index("^") - 2 == position


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('x')",
        '__import__("os").system("x")',
        "exec('1')",
        "eval('1 + 1')",
        "open('/etc/passwd')",
        "().__class__.__bases__",
        "$close.__class__",
        "lambda: 1",
        "[x for x in ()]",
        "Mean.__globals__",
        "Mean($close, 5).real",
        "{}",
        "1 if 1 else 2",
        "print(1)",
        "b'x'",
        "\\x00",
    ],
)
def test_python_is_never_evaluated(text, monkeypatch):
    import builtins
    import os

    def forbidden(*args, **kwargs):
        raise AssertionError("the formula was evaluated as Python")

    monkeypatch.setattr(os, "system", forbidden)
    monkeypatch.setattr(builtins, "__import__", forbidden, raising=True)
    try:
        with pytest.raises(FormulaError):
            parse(text)
    finally:
        monkeypatch.undo()
    with pytest.raises(FormulaError):
        qd.expr(text)


def test_parser_has_no_eval():
    source = inspect.getsource(formula_module)
    for call in ("eval(", "exec(", "__import__", "getattr(builtins", "builtins"):
        assert call not in source


def test_non_string_formula_is_a_type_error():
    with pytest.raises(TypeError):
        parse(5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# qlib formulas as written in qlib configs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "($close-$open)/$open",
        "($high-Greater($open, $close))/$open",
        "(2*$close-$high-$low)/($high-$low+1e-12)",
        "Ref($close, 5)/$close",
        "Std($close, 20)/$close",
        "Slope($close, 10)/$close",
        "Rsquare($close, 10)",
        "Resi($close, 10)/$close",
        "Quantile($close, 20, 0.8)/$close",
        "Rank($close, 20)",
        "($close-Min($low, 20))/(Max($high, 20)-Min($low, 20)+1e-12)",
        "IdxMax($high, 30)/30",
        "(IdxMax($high, 5)-IdxMin($low, 5))/5",
        "Corr($close, Log($volume+1), 10)",
        "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), 10)",
        "Mean($close>Ref($close, 1), 20)",
        "Mean($close>Ref($close, 1), 20)-Mean($close<Ref($close, 1), 20)",
        "Sum(Greater($close-Ref($close, 1), 0), 20)/(Sum(Abs($close-Ref($close, 1)), 20)+1e-12)",
        "Std(Abs($close/Ref($close, 1)-1)*$volume, 5)/(Mean(Abs($close/Ref($close, 1)-1)*$volume, 5)+1e-12)",
        "Mean($volume, 5)/($volume+1e-12)",
        "EMA($close, 12) - EMA($close, 26)",
        "WMA($close, 10) / $close",
        "If($close > $open, 1, 0) * Sign(Delta($close, 1))",
        "Power(Mad($close, 10), 2) / Var($close, 10)",
        "Count($close > 0, 5) + Med($close, 5) + Skew($close, 20) + Kurt($close, 20)",
        "Less($high, Cov($close, $volume, 10))",
        "Ref($close, -2)/Ref($close, -1) - 1",
    ],
)
def test_qlib_config_formulas_parse_and_round_trip(text):
    e = parse(text)
    assert parse(e.formula()) == e
    assert parse(e.formula()).formula() == e.formula()
