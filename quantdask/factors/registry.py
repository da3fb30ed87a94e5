"""The factor registry: register factor functions, look them up, list them.

A factor is a plain function ``func(market, **params) -> xarray.DataArray`` registered under a
name with :func:`register_factor`. :func:`factor` binds parameters to a registered function
and returns a :class:`Factor`: the name, the full parameter set (defaults filled in), the
lookback in trading days, the doc and the canonical variable name (``close_vs_ma_20``).
:func:`quantdask.compute` evaluates factors lazily over a date range and loads only the extra
history their lookbacks need.

What a factor function receives
-------------------------------
``market`` is an :class:`xarray.DataTree` laid out as in :mod:`quantdask.io.schema`. When the
factor is evaluated by :func:`quantdask.compute`, every node with a ``date`` dimension
(``daily``, ``index``, ``macro``, ``offshore``) is already sliced to
``[start - lookback, end]`` (by position on the trading calendar), and the ``fundamentals``
node is passed unsliced (records are filtered point-in-time by announcement date, not by row
position). The function must return a lazy DataArray with dims ``(date, asset)``, or
``(date, index)`` when called at the index level, on the same ``date`` coordinate it was
given; values at date ``t`` may depend only on data dated ``<= t`` and on at most
``lookback`` earlier trading days.

Functions that support more than one level (``level=("asset", "index")``) take a
keyword-only ``level`` argument (``"asset"`` or ``"index"``); it is passed by the engine and is
not a factor parameter.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import xarray as xr

from quantdask.expression import Expr, evaluate, nodes
from quantdask.expression.context import check_semantics, field_inputs
from quantdask.factors.inputs import MissingInputError, check_path, missing_inputs

#: Lookback meaning "all history before the start" (an expanding window).
UNBOUNDED: int = nodes.UNBOUNDED

#: Levels a factor may be computed at.
LEVELS: tuple[str, ...] = ("asset", "index")

FactorFunc = Callable[..., xr.DataArray]
Lookback = int | Callable[..., int]
Inputs = Iterable[str] | Mapping[str, Iterable[str]] | Callable[..., Iterable[str]] | None


def format_lookback(lookback: int) -> str:
    """A lookback as shown to people: ``"19"``, or ``"unbounded"`` for :data:`UNBOUNDED`.

    Parameters
    ----------
    lookback : int
        Trading days of history (``>= UNBOUNDED`` means all history).

    Returns
    -------
    str

    Examples
    --------
    >>> from quantdask.factors.registry import UNBOUNDED, format_lookback
    >>> format_lookback(19), format_lookback(UNBOUNDED)
    ('19', 'unbounded')
    """
    return "unbounded" if lookback >= UNBOUNDED else str(int(lookback))


@dataclass(frozen=True)
class FactorSpec:
    """A registered factor function and its metadata (what :func:`register_factor` stores).

    Attributes
    ----------
    name : str
        Registered name.
    func : callable
        ``func(market, **params) -> xarray.DataArray``.
    lookback : int or callable
        Trading days of history before a date that the value at that date needs; an int or
        a callable ``(**params) -> int``.
    level : tuple of str
        Levels the factor supports (``"asset"``, ``"index"``).
    doc : str
        Documentation (the function's docstring unless given).
    defaults : dict
        Parameter name -> default (``inspect.Parameter.empty`` for required parameters), in
        signature order.
    takes_level : bool
        Whether ``func`` accepts the keyword-only ``level`` argument.
    inputs : iterable, mapping, callable or None
        Stored fields the factor reads (:mod:`quantdask.factors.inputs` paths such as
        ``"daily/close"``): one list for every level, a mapping level -> list, or a callable
        ``(level=..., **params) -> list``; None when undeclared (nothing is checked).
    builds_expression : bool
        True when ``func(**params)`` returns an expression
        (:class:`quantdask.expression.Expr`) instead of computing on a market: lookback and
        inputs are then derived from the expression.
    """

    name: str
    func: FactorFunc
    lookback: Lookback
    level: tuple[str, ...]
    doc: str
    defaults: dict[str, Any] = field(default_factory=dict)
    takes_level: bool = False
    inputs: Inputs = None
    builds_expression: bool = False

    def inputs_for(self, params: Mapping[str, Any], level: str) -> tuple[str, ...]:
        """The declared input paths for bound parameters at ``level`` (empty if undeclared)."""
        spec = self.inputs
        if spec is None:
            return ()
        if callable(spec):
            paths = spec(level=level, **params)
        elif isinstance(spec, Mapping):
            paths = spec.get(level, ())
        else:
            paths = spec
        return tuple(check_path(p) for p in paths)

    def lookback_for(self, params: Mapping[str, Any]) -> int:
        """Evaluate the lookback for bound parameters (validating the result)."""
        lb = self.lookback(**params) if callable(self.lookback) else self.lookback
        if isinstance(lb, bool) or not isinstance(lb, int) or lb < 0:
            raise ValueError(
                f"factor {self.name!r}: lookback must be a non-negative int, got {lb!r}"
            )
        return int(lb)


_REGISTRY: dict[str, FactorSpec] = {}

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _signature_defaults(func: FactorFunc, name: str) -> tuple[dict[str, Any], bool, bool]:
    """``(defaults, takes_level, builds_expression)`` of a factor function's signature."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    builds = not params or params[0].kind == inspect.Parameter.KEYWORD_ONLY
    if not builds and params[0].kind not in positional:
        raise TypeError(
            f"factor {name!r}: the function must take the market as its first positional "
            "argument, func(market, **params), or only keyword parameters and return an "
            "expression, func(*, **params) -> Expr"
        )
    defaults: dict[str, Any] = {}
    takes_level = False
    for p in params if builds else params[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(
                f"factor {name!r}: *args/**kwargs are not allowed; declare each parameter "
                "explicitly so it can be validated and listed"
            )
        if p.name == "level":
            takes_level = True
            continue
        defaults[p.name] = p.default
    return defaults, takes_level, builds


def register_factor(
    name: str,
    *,
    lookback: Lookback = 0,
    level: Iterable[str] | str = ("asset",),
    doc: str | None = None,
    override: bool = False,
    inputs: Inputs = None,
) -> Callable[[FactorFunc], FactorFunc]:
    """Register a factor function under ``name`` (decorator).

    Parameters
    ----------
    name : str
        Factor name, a Python identifier (it starts the canonical variable names).
    lookback : int or callable, default 0
        Trading days of history before date ``t`` that the value at ``t`` needs (0: only
        ``t`` itself). A callable receives the bound parameters as keywords and returns the
        int, e.g. ``lambda window: window - 1``. Use :data:`UNBOUNDED` for expanding windows.
    level : str or iterable of str, default ("asset",)
        Levels the factor supports: ``"asset"`` (dims ``(date, asset)``) and/or ``"index"``
        (dims ``(date, index)``). A function supporting both takes a keyword-only ``level``
        argument.
    doc : str, optional
        Documentation; defaults to the function's docstring.
    override : bool, default False
        Replace an existing factor of the same name instead of raising.
    inputs : iterable of str, mapping or callable, optional
        The stored fields the factor reads, as paths ``"node/field"`` (``"daily/close"``),
        ``"node"`` or ``"node/field[label]"`` (:mod:`quantdask.factors.inputs`): one list for
        every level, a mapping ``{level: [...]}``, or a callable receiving ``level=`` and the
        bound parameters as keywords. Before evaluating, :func:`quantdask.compute` and
        :class:`Factor` check them against the market's metadata and raise
        :class:`~quantdask.factors.inputs.MissingInputError` naming every missing one,
        instead of returning an all-NaN panel. Undeclared (None): nothing is checked.

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.

    Raises
    ------
    ValueError
        If ``name`` is already registered (and ``override`` is False), is not an identifier,
        or ``level`` names an unknown level.
    TypeError
        If the function does not have the form ``func(market, *, param=default, ...)``.

    Notes
    -----
    The function receives the market tree described in :mod:`quantdask.factors.registry`:
    date-dimension nodes sliced to ``[start - lookback, end]``, ``fundamentals`` unsliced.
    Parameters should have defaults; :func:`quantdask.list_factors` shows them, and the
    look-ahead tests evaluate every registered factor at its defaults.

    Examples
    --------
    >>> import quantdask as qd
    >>> @qd.register_factor("hl_range", lookback=0, override=True)
    ... def hl_range(market, *, scale=100.0):
    ...     '''(high - low) / close, in %.'''
    ...     d = market["daily"]
    ...     return (d["high"] - d["low"]) / d["close"] * scale
    >>> qd.factor("hl_range").variable
    'hl_range_100p0'
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"factor name must be a Python identifier, got {name!r}")
    levels = (level,) if isinstance(level, str) else tuple(level)
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise ValueError(f"factor {name!r}: level must be a subset of {LEVELS}, got {levels!r}")
    if inputs is not None and not callable(inputs):
        groups = dict(inputs) if isinstance(inputs, Mapping) else {"": inputs}
        for key, group in groups.items():
            if isinstance(group, str):
                raise TypeError(
                    f"factor {name!r}: inputs must be a list of paths, got the string {group!r}"
                )
            groups[key] = tuple(check_path(p) for p in group)
        inputs = groups[""] if "" in groups else groups
    if not (callable(lookback) or (isinstance(lookback, int) and lookback >= 0)) or isinstance(
        lookback, bool
    ):
        raise ValueError(
            f"factor {name!r}: lookback must be a non-negative int or a callable, got {lookback!r}"
        )

    def decorator(func: FactorFunc) -> FactorFunc:
        if name in _REGISTRY and not override:
            raise ValueError(
                f"factor {name!r} is already registered; pass override=True to replace it"
            )
        defaults, takes_level, builds = _signature_defaults(func, name)
        if builds and (lookback != 0 or inputs is not None):
            raise TypeError(
                f"factor {name!r} returns an expression: its lookback and inputs are derived "
                "from it, do not declare them"
            )
        if len(levels) > 1 and not takes_level and not builds:
            raise TypeError(
                f"factor {name!r} supports levels {levels} so its function must take a "
                "keyword-only 'level' argument"
            )
        text = inspect.cleandoc(doc if doc is not None else (func.__doc__ or ""))
        _REGISTRY[name] = FactorSpec(
            name=name,
            func=func,
            lookback=lookback,
            level=levels,
            doc=text,
            defaults=defaults,
            takes_level=takes_level,
            inputs=inputs,
            builds_expression=builds,
        )
        return func

    return decorator


def unregister_factor(name: str) -> None:
    """Remove a registered factor (mainly for tests and interactive work).

    Parameters
    ----------
    name : str
        A registered factor name.

    Raises
    ------
    KeyError
        If ``name`` is not registered.
    """
    if name not in _REGISTRY:
        raise KeyError(_unknown_message(name))
    del _REGISTRY[name]


def _unknown_message(name: object) -> str:
    return f"unknown factor {name!r}; registered factors: {', '.join(sorted(_REGISTRY))}"


def get_spec(name: str) -> FactorSpec:
    """Return the :class:`FactorSpec` registered under ``name``.

    Raises
    ------
    KeyError
        If ``name`` is not registered; the message lists the registered names.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(_unknown_message(name)) from None


def _format_value(value: Any) -> str:
    """Render a parameter value for a variable name: ``-2`` -> ``m2``, ``0.5`` -> ``0p5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"m{-value}" if value < 0 else str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            text = f"{value:.1f}"
        else:
            text = repr(value)
        text = text.replace("-", "m").replace(".", "p").replace("+", "")
        return text
    text = str(value)
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_") or "none"


@dataclass(frozen=True)
class Factor:
    """A registered factor with bound parameters (what :func:`factor` returns).

    Attributes
    ----------
    name : str
        Registered name.
    params : dict
        All parameters, defaults filled in, in signature order.
    lookback : int
        Trading days of history before a date that the value at that date needs
        (:data:`UNBOUNDED` for expanding windows).
    level : tuple of str
        Levels the factor supports.
    doc : str
        Documentation.
    variable : str
        Canonical variable name: the name followed by each parameter value in signature
        order (``close_vs_ma_20``, ``streak_W``, ``pe_ttm_pct_all``, ``risk_premium_band_m2``;
        negative numbers get an ``m`` prefix, decimal points become ``p``).
    expression : Expr or None
        The factor's expression (:mod:`quantdask.expression`) when it is built from one
        (:func:`quantdask.expr`, or a registered function returning an expression); its
        lookback and inputs are derived from it. None for a function computing on the market.
    semantics : {"strict", "qlib"}
        The conventions the expression is evaluated with (bound when the factor is made).
    """

    name: str
    params: dict[str, Any]
    lookback: int
    level: tuple[str, ...]
    doc: str
    variable: str
    expression: Expr | None = None
    semantics: str = "strict"

    def __call__(self, market: xr.DataTree, *, level: str = "asset") -> xr.DataArray:
        """Evaluate the factor lazily on a whole market tree.

        Parameters
        ----------
        market : xarray.DataTree
            A market tree (:func:`quantdask.open_market`), not sliced by this call.
        level : {"asset", "index"}, default "asset"
            Level to compute at.

        Returns
        -------
        xarray.DataArray
            Dims ``(date, asset)`` or ``(date, index)``, named :attr:`variable`.
        """
        if level not in self.level:
            raise ValueError(f"factor {self.name!r} supports level(s) {self.level}, not {level!r}")
        check_inputs(market, [self], level=level)
        if self.expression is not None:
            out = evaluate(
                {self.variable: self.expression}, market, level=level, semantics=self.semantics
            )
            return out[self.variable]
        spec = get_spec(self.name)
        kwargs = dict(self.params)
        if spec.takes_level:
            kwargs["level"] = level
        out = spec.func(market, **kwargs)
        if not isinstance(out, xr.DataArray):
            raise TypeError(
                f"factor {self.name!r} returned {type(out).__name__}, expected an xarray.DataArray"
            )
        other = "index" if level == "asset" else "asset"
        if "date" not in out.dims or other in out.dims or len(out.dims) != 2:
            raise ValueError(
                f"factor {self.name!r} at level {level!r} returned dims {out.dims}, "
                f"expected ('date', {level!r})"
            )
        return out.transpose("date", level).rename(self.variable)

    def __hash__(self) -> int:
        return hash((self.name, self.variable))

    def inputs(self, level: str = "asset") -> tuple[str, ...]:
        """The stored fields this factor reads at ``level`` (``"daily/close"``, ...).

        Parameters
        ----------
        level : {"asset", "index"}, default "asset"

        Returns
        -------
        tuple of str
            Input paths (:mod:`quantdask.factors.inputs`); empty when the factor declares
            none (then nothing is checked before it runs). Derived from the expression for
            expression factors.
        """
        if self.expression is not None:
            paths: list[str] = []
            for name in self.expression.fields():
                paths.extend(field_inputs(name, level, self.semantics))
            return tuple(dict.fromkeys(check_path(p) for p in paths))
        return get_spec(self.name).inputs_for(self.params, level)

    @property
    def formula(self) -> str | None:
        """The expression as a formula (:func:`quantdask.expr` parses it back), or None."""
        return None if self.expression is None else self.expression.formula()

    @property
    def summary(self) -> str:
        """The first line of the doc."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return (
            f"Factor({self.name}({args}), lookback={format_lookback(self.lookback)}, "
            f"variable={self.variable!r})"
        )


def factor(name: str | Factor, **params: Any) -> Factor:
    """Bind parameters to a registered factor.

    Parameters
    ----------
    name : str
        A registered factor name (see :func:`list_factors`). A :class:`Factor` is returned
        as is when no parameters are given.
    **params
        Factor parameters; omitted ones take their defaults.

    Returns
    -------
    Factor

    Raises
    ------
    KeyError
        If ``name`` is not registered (the message lists the registered names).
    TypeError
        If a parameter is unknown or a required one is missing (the message lists the
        valid parameters).

    Examples
    --------
    >>> import quantdask as qd
    >>> f = qd.factor("close_vs_ma", window=20)
    >>> f.variable, f.lookback
    ('close_vs_ma_20', 19)
    """
    if isinstance(name, Factor):
        if params:
            return factor(name.name, **{**name.params, **params})
        return name
    spec = get_spec(name)
    valid = list(spec.defaults)
    unknown = [k for k in params if k not in spec.defaults]
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for factor {name!r}; "
            f"valid parameters: {', '.join(valid) if valid else '(none)'}"
        )
    bound: dict[str, Any] = {}
    for key, default in spec.defaults.items():
        if key in params:
            bound[key] = params[key]
        elif default is inspect.Parameter.empty:
            raise TypeError(
                f"factor {name!r} needs parameter {key!r}; valid parameters: {', '.join(valid)}"
            )
        else:
            bound[key] = default
    variable = "_".join([name, *(_format_value(v) for v in bound.values())])
    if spec.builds_expression:
        built = spec.func(**bound)
        expression = getattr(built, "expression", built)
        if not isinstance(expression, Expr):
            raise TypeError(
                f"factor {name!r} must return an expression (quantdask.expression.Expr or "
                f"qd.expr(...)), got {type(built).__name__}"
            )
        if expression.future():
            raise ValueError(
                f"factor {name!r} reads {expression.future()} row(s) after its date "
                f"({expression.formula()}); a factor must not look ahead"
            )
        return Factor(
            name=name,
            params=bound,
            lookback=expression.lookback,
            level=spec.level,
            doc=spec.doc,
            variable=variable,
            expression=expression,
            semantics=check_semantics(getattr(built, "semantics", "strict")),
        )
    return Factor(
        name=name,
        params=bound,
        lookback=spec.lookback_for(bound),
        level=spec.level,
        doc=spec.doc,
        variable=variable,
    )


def check_inputs(market: xr.DataTree, factors: Iterable[Factor], *, level: str = "asset") -> None:
    """Raise if the market lacks any declared input of any of ``factors`` at ``level``.

    Parameters
    ----------
    market : xarray.DataTree
        A market tree.
    factors : iterable of Factor
    level : {"asset", "index"}, default "asset"

    Raises
    ------
    MissingInputError
        Naming every missing input of every factor (and why each is missing).

    Notes
    -----
    Reads metadata only (:func:`quantdask.factors.inputs.missing_inputs`); no data.
    """
    missing = {}
    for f in factors:
        gaps = missing_inputs(market, f.inputs(level))
        if gaps:
            missing[f.variable] = gaps
    if missing:
        raise MissingInputError(missing)


def list_factors() -> pd.DataFrame:
    """List the registered factors.

    Returns
    -------
    pandas.DataFrame
        One row per factor, sorted by name, with columns ``name``, ``params`` (signature
        text with defaults, e.g. ``window=20``), ``defaults`` (dict), ``lookback`` (at the
        defaults; ``"all"`` for expanding windows, ``None`` when a required parameter has no
        default), ``level`` (e.g. ``"asset, index"``) and ``doc`` (first line).
    """
    rows = []
    for name in sorted(_REGISTRY):
        spec = _REGISTRY[name]
        parts = []
        defaults = {}
        for key, default in spec.defaults.items():
            if default is inspect.Parameter.empty:
                parts.append(key)
            else:
                parts.append(f"{key}={default!r}")
                defaults[key] = default
        complete = len(defaults) == len(spec.defaults)
        lookback: int | str | None = None
        if complete:
            lookback = (
                factor(name).lookback if spec.builds_expression else spec.lookback_for(defaults)
            )
        if lookback is not None and lookback >= UNBOUNDED:
            lookback = format_lookback(lookback)
        doc = spec.doc.strip().splitlines()[0] if spec.doc.strip() else ""
        rows.append(
            {
                "name": name,
                "params": ", ".join(parts),
                "defaults": defaults,
                "lookback": lookback,
                "level": ", ".join(spec.level),
                "doc": doc,
            }
        )
    cols = ["name", "params", "defaults", "lookback", "level", "doc"]
    return pd.DataFrame(rows, columns=cols)


__all__ = [
    "LEVELS",
    "MissingInputError",
    "check_inputs",
    "format_lookback",
    "UNBOUNDED",
    "Factor",
    "FactorSpec",
    "factor",
    "get_spec",
    "list_factors",
    "register_factor",
    "unregister_factor",
]
