"""Scoring-model configuration: parse and validate a TOML file or a dict.

One model type covers the SOE, technology, consumer and industry-chain models of FACTORS.md
section 4. A configuration is plain data (no code is evaluated)::

    name = "soe"
    description = "State-owned enterprises, dividend and growth families"

    [universe]
    index = "000955.CSI"        # constituents of this index (weight > 0) on the date
    include = "soe_flag"        # optional user input panel: stocks where it is > 0 are added
    min_listed_days = 120       # trading days since listing (about 6 months)
    exclude_st = true
    exclude_suspended = true
    industries = []             # optional whitelist of Shenwan L1 codes
    require_any = [{ factor = "rd_to_revenue", op = ">", value = 0.05 }]
    require_all = []

    [grouping]
    by = "industry"             # "industry" | "lifecycle" | "none"
    [grouping.groups]           # group -> SW L1 codes (industry) or stage codes (lifecycle)
    banks = [801780]
    resources = [801950, 801050]
    [grouping.families]         # optional: family -> groups (for weights and scope)
    dividend = ["banks", "resources"]

    [common]                    # factors every stock is scored on
    scope = "universe"          # comparison set: "universe" | "family" | "group"
    factors = [
      { name = "dividend_yield", direction = "+", weight = { dividend = 4, default = 2 } },
      { name = "debt_to_asset", direction = "-" },
    ]

    [specific.banks]            # per-group factors, scored within the group
    factors = [{ name = "capital_adequacy_change" }]

    [combine]
    rule = "common_specific"    # "weighted_mean" | "mean_over_5_plus_mean_over_std" | "common_specific"
    common_weight = 0.3
    specific_weight = 0.7
    normalize = "minmax"        # "minmax" | "rank" | "none"

    [[multipliers]]
    kind = "rd_industry"        # "rd_industry" | "ps" | "penalty" | "segment_trend"

    [portfolio]
    top = 50
    weighting = "score"         # "equal" | "score" | "mcap"
    power = 3

Factor entries: ``name`` (a registered factor, see ``qd.list_factors()``), optional
``params`` (table of factor parameters), ``direction`` (``"+"``/``"-"``, ``1``/``-1``,
``"positive"``/``"negative"``; default ``+``), ``weight`` (a non-negative number, or a table
keyed by group or family names with an optional ``default``; unlisted keys weigh 1),
``components`` (a list of factor entries: a composite scored as the percentile score of the
mean of its components' scores; ``name`` is then a free label), ``required`` (for
user-supplied input factors: raise when the input is missing instead of skipping the factor).
A bare string ``"roe_ttm"`` is shorthand for ``{ name = "roe_ttm" }``.

Combination rules (:mod:`quantdask.models.scoring`): ``weighted_mean`` averages all of a
stock's factor scores (common and its group's specific ones) with their weights;
``mean_over_5_plus_mean_over_std`` is ``mean(S)/5 + mean(S)/std(S)`` over the same scores,
unweighted (``std_floor`` bounds the std, ``ddof`` 0 or 1, at least two scores);
``common_specific`` mixes the
weighted mean of the common scores and of the specific scores with ``common_weight`` /
``specific_weight`` and rescales per date (``normalize``). Missing factor values are left
out of every rule; ``min_factors`` (default 1) is the number of available factor scores a
stock needs to be scored at all. Multipliers then multiply the combined score: ``rd_industry``
(``low + (high - low) * normalize(sqrt(RD/mcap of the industry / RD/mcap of the universe))``),
``ps`` (``1 / (PS - min(PS) + 1)``), ``penalty`` (``penalty`` when the factor is ``below`` a
value or below ``below_group_median`` times its group median) and ``segment_trend``
(``boost`` for groups whose aggregate TTM gross margin rose over ``periods`` quarters).
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantdask.io import schema
from quantdask.models.scoring import NORMALIZE, RULES

GROUPINGS: tuple[str, ...] = ("industry", "lifecycle", "none")
SCOPES: tuple[str, ...] = ("universe", "family", "group")
MULTIPLIERS: tuple[str, ...] = ("rd_industry", "ps", "penalty", "segment_trend")
WEIGHTINGS: tuple[str, ...] = ("equal", "score", "mcap")
OPS: tuple[str, ...] = (">", ">=", "<", "<=")
LIFECYCLE_CODES: tuple[int, ...] = (1, 2, 3, 4, 5)


class ModelConfigError(ValueError):
    """A scoring-model configuration is invalid (the message names the bad entry)."""


@dataclass(frozen=True)
class FactorEntry:
    """One scored factor of a model.

    Attributes
    ----------
    name : str
        Registered factor name (or a label for a composite).
    params : dict
        Factor parameters.
    direction : int
        1 (higher is better) or -1.
    weight : float or dict
        A number, or ``{group_or_family: weight, "default": weight}``.
    components : tuple of FactorEntry
        Non-empty for a composite.
    required : bool
        For user-supplied input factors: raise when the input is missing.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    direction: int = 1
    weight: float | dict[str, float] = 1.0
    components: tuple[FactorEntry, ...] = ()
    required: bool = False

    @property
    def key(self) -> str:
        """A label unique to the factor and its parameters."""
        if not self.params:
            return self.name
        args = ",".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{self.name}({args})"


@dataclass(frozen=True)
class Requirement:
    """A universe threshold: ``factor op value``."""

    factor: FactorEntry
    op: str
    value: float


@dataclass(frozen=True)
class UniverseConfig:
    """Universe filter (see the module docstring)."""

    index: str | None = None
    include: str | None = None
    min_listed_days: int = 0
    exclude_st: bool = True
    exclude_suspended: bool = True
    industries: tuple[int, ...] = ()
    require_any: tuple[Requirement, ...] = ()
    require_all: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class GroupingConfig:
    """Grouping of the universe into comparison sets."""

    by: str = "none"
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict)
    families: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.groups) if self.by != "none" else ("all",)

    def family_of(self, group: str) -> str | None:
        for fam, members in self.families.items():
            if group in members:
                return fam
        return None


@dataclass(frozen=True)
class FactorSet:
    """Factors scored within one comparison scope."""

    factors: tuple[FactorEntry, ...]
    scope: str = "group"


@dataclass(frozen=True)
class CombineConfig:
    """How factor scores combine into one score."""

    rule: str = "weighted_mean"
    common_weight: float = 0.3
    specific_weight: float = 0.7
    normalize: str = "none"
    std_floor: float = 1.0
    ddof: int = 0
    min_factors: int = 1


@dataclass(frozen=True)
class MultiplierConfig:
    """A score multiplier applied after the combination."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PortfolioConfig:
    """Top-N selection and weighting (passed to ``qd.select_weights``)."""

    top: int | None = 50
    weighting: str = "score"
    power: float = 1.0
    cap: float | None = None


@dataclass(frozen=True)
class ModelConfig:
    """A validated scoring-model configuration."""

    name: str
    description: str
    universe: UniverseConfig
    grouping: GroupingConfig
    common: FactorSet | None
    specific: dict[str, FactorSet]
    combine: CombineConfig
    multipliers: tuple[MultiplierConfig, ...]
    portfolio: PortfolioConfig
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def entries(self) -> list[FactorEntry]:
        """Every factor entry the model scores (common first, then specific by group)."""
        out = list(self.common.factors) if self.common else []
        for fs in self.specific.values():
            out.extend(fs.factors)
        return out


# ----------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------
_TOP_KEYS = {
    "name",
    "description",
    "universe",
    "grouping",
    "common",
    "specific",
    "combine",
    "multipliers",
    "portfolio",
}


def _err(where: str, msg: str) -> ModelConfigError:
    return ModelConfigError(f"model config: {where}: {msg}")


def _check_keys(d: Mapping[str, Any], allowed: set[str], where: str) -> None:
    if not isinstance(d, Mapping):
        raise _err(where, f"expected a table, got {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise _err(where, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _number(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(where, f"expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise _err(where, f"expected a finite number, got {value!r}")
    if v < 0 or (positive and v == 0):
        raise _err(where, f"must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return v


def _direction(value: Any, where: str) -> int:
    table = {1: 1, -1: -1, "+": 1, "-": -1, "positive": 1, "negative": -1}
    if isinstance(value, bool) or value not in table:
        raise _err(
            where, f"direction must be '+', '-', 1, -1, 'positive' or 'negative', got {value!r}"
        )
    return table[value]


def _known_factors() -> list[str]:
    from quantdask.factors.registry import list_factors

    return list(list_factors()["name"])


def _factor_entry(d: Any, where: str, known: list[str], labels: set[str]) -> FactorEntry:
    if isinstance(d, str):
        d = {"name": d}
    _check_keys(d, {"name", "params", "direction", "weight", "components", "required"}, where)
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise _err(where, f"each factor needs a 'name' string, got {name!r}")
    where = f"{where} ({name})"
    comps_raw = d.get("components", [])
    if not isinstance(comps_raw, list):
        raise _err(where, "components must be a list of factor entries")
    components = tuple(
        _factor_entry(c, f"{where}.components[{i}]", known, labels) for i, c in enumerate(comps_raw)
    )
    if "components" in d and not components:
        raise _err(where, "components is empty")
    if not components and name not in known:
        raise _err(where, f"unknown factor {name!r}; valid factors: {', '.join(known)}")
    params = d.get("params", {})
    if not isinstance(params, Mapping):
        raise _err(where, f"params must be a table, got {params!r}")
    if params and not components:
        from quantdask.factors.registry import factor as bind

        try:
            bind(name, **params)
        except TypeError as err:
            raise _err(where, str(err)) from None
    weight_raw = d.get("weight", 1.0)
    if isinstance(weight_raw, Mapping):
        weight: float | dict[str, float] = {}
        for k, v in weight_raw.items():
            if k != "default" and k not in labels:
                raise _err(
                    where,
                    f"weight key {k!r} is not a group or family; known: {sorted(labels)}",
                )
            weight[k] = _number(v, f"{where}.weight.{k}")
    else:
        weight = _number(weight_raw, f"{where}.weight")
    required = d.get("required", False)
    if not isinstance(required, bool):
        raise _err(where, f"required must be true or false, got {required!r}")
    return FactorEntry(
        name=name,
        params=dict(params),
        direction=_direction(d.get("direction", 1), f"{where}.direction"),
        weight=weight,
        components=components,
        required=required,
    )


def _factor_set(d: Any, where: str, known: list[str], labels: set[str], scope: str) -> FactorSet:
    if isinstance(d, list):
        d = {"factors": d}
    _check_keys(d, {"factors", "scope"}, where)
    facs = d.get("factors")
    if not isinstance(facs, list) or not facs:
        raise _err(where, "empty group: needs a non-empty 'factors' list")
    scope = d.get("scope", scope)
    if scope not in SCOPES:
        raise _err(where, f"scope must be one of {SCOPES}, got {scope!r}")
    entries = tuple(
        _factor_entry(f, f"{where}.factors[{i}]", known, labels) for i, f in enumerate(facs)
    )
    keys = [e.key for e in entries]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise _err(where, f"factor(s) listed twice: {dup}")
    return FactorSet(factors=entries, scope=scope)


def _requirements(raw: Any, where: str, known: list[str]) -> tuple[Requirement, ...]:
    if not isinstance(raw, list):
        raise _err(where, "expected a list of {factor, op, value} tables")
    out = []
    for i, r in enumerate(raw):
        w = f"{where}[{i}]"
        _check_keys(r, {"factor", "params", "op", "value"}, w)
        entry = _factor_entry(
            {"name": r.get("factor"), "params": r.get("params", {})}, w, known, set()
        )
        op = r.get("op")
        if op not in OPS:
            raise _err(w, f"op must be one of {OPS}, got {op!r}")
        value = r.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _err(w, f"value must be a number, got {value!r}")
        out.append(Requirement(entry, op, float(value)))
    return tuple(out)


def _universe(d: Any, known: list[str]) -> UniverseConfig:
    where = "universe"
    d = d or {}
    _check_keys(
        d,
        {
            "index",
            "include",
            "min_listed_days",
            "exclude_st",
            "exclude_suspended",
            "industries",
            "require_any",
            "require_all",
        },
        where,
    )
    index = d.get("index")
    if index is not None and (not isinstance(index, str) or not index):
        raise _err(where, f"index must be an index code string, got {index!r}")
    include = d.get("include")
    if include is not None and (not isinstance(include, str) or not include):
        raise _err(where, f"include must be the name of a user input panel, got {include!r}")
    mld = d.get("min_listed_days", 0)
    if isinstance(mld, bool) or not isinstance(mld, int) or mld < 0:
        raise _err(where, f"min_listed_days must be a non-negative integer, got {mld!r}")
    for key in ("exclude_st", "exclude_suspended"):
        if not isinstance(d.get(key, True), bool):
            raise _err(where, f"{key} must be true or false, got {d[key]!r}")
    inds = d.get("industries", [])
    bad = [c for c in inds if c not in schema.SW_L1]
    if not isinstance(inds, list) or bad:
        raise _err(where, f"industries: unknown Shenwan L1 code(s) {bad}")
    return UniverseConfig(
        index=index,
        include=include,
        min_listed_days=mld,
        exclude_st=d.get("exclude_st", True),
        exclude_suspended=d.get("exclude_suspended", True),
        industries=tuple(inds),
        require_any=_requirements(d.get("require_any", []), f"{where}.require_any", known),
        require_all=_requirements(d.get("require_all", []), f"{where}.require_all", known),
    )


def _grouping(d: Any) -> GroupingConfig:
    where = "grouping"
    d = d or {"by": "none"}
    _check_keys(d, {"by", "groups", "families"}, where)
    by = d.get("by", "none")
    if by not in GROUPINGS:
        raise _err(where, f"by must be one of {GROUPINGS}, got {by!r}")
    groups_raw = d.get("groups", {})
    if by == "none":
        if groups_raw:
            raise _err(where, "by = 'none' takes no groups")
        return GroupingConfig(by="none")
    if not isinstance(groups_raw, Mapping) or not groups_raw:
        raise _err(where, f"by = {by!r} needs a non-empty [grouping.groups] table")
    groups: dict[str, tuple[int, ...]] = {}
    seen: dict[int, str] = {}
    valid = set(schema.SW_L1) if by == "industry" else set(LIFECYCLE_CODES)
    for g, codes in groups_raw.items():
        if not isinstance(codes, list) or not codes:
            raise _err(f"{where}.groups.{g}", "empty group: list at least one code")
        bad = [c for c in codes if c not in valid]
        if bad:
            what = "Shenwan L1 code(s)" if by == "industry" else "life-cycle stage code(s) (1..5)"
            raise _err(f"{where}.groups.{g}", f"unknown {what} {bad}")
        for c in codes:
            if c in seen:
                raise _err(f"{where}.groups.{g}", f"code {c} is already in group {seen[c]!r}")
            seen[c] = g
        groups[g] = tuple(codes)
    families: dict[str, tuple[str, ...]] = {}
    fam_raw = d.get("families", {})
    if not isinstance(fam_raw, Mapping):
        raise _err(f"{where}.families", "expected a table family -> list of groups")
    in_family: dict[str, str] = {}
    for fam, members in fam_raw.items():
        if not isinstance(members, list) or not members:
            raise _err(f"{where}.families.{fam}", "empty family: list at least one group")
        for m in members:
            if m not in groups:
                raise _err(
                    f"{where}.families.{fam}", f"unknown group {m!r}; groups: {list(groups)}"
                )
            if m in in_family:
                raise _err(f"{where}.families.{fam}", f"group {m!r} is already in {in_family[m]!r}")
            in_family[m] = fam
        if fam in groups:
            raise _err(f"{where}.families.{fam}", "a family cannot share a group's name")
        families[fam] = tuple(members)
    return GroupingConfig(by=by, groups=groups, families=families)


def _combine(d: Any) -> CombineConfig:
    where = "combine"
    d = d or {}
    _check_keys(
        d,
        {
            "rule",
            "common_weight",
            "specific_weight",
            "normalize",
            "std_floor",
            "ddof",
            "min_factors",
        },
        where,
    )
    rule = d.get("rule", "weighted_mean")
    if rule not in RULES:
        raise _err(where, f"unknown combination rule {rule!r}; valid rules: {', '.join(RULES)}")
    norm = d.get("normalize", "minmax" if rule == "common_specific" else "none")
    if norm not in NORMALIZE:
        raise _err(where, f"normalize must be one of {NORMALIZE}, got {norm!r}")
    cw = _number(d.get("common_weight", 0.3), f"{where}.common_weight")
    sw = _number(d.get("specific_weight", 0.7), f"{where}.specific_weight")
    if cw + sw <= 0:
        raise _err(where, "common_weight + specific_weight must be > 0")
    ddof = d.get("ddof", 0)
    if ddof not in (0, 1):
        raise _err(where, f"ddof must be 0 or 1, got {ddof!r}")
    min_factors = d.get("min_factors", 1)
    if isinstance(min_factors, bool) or not isinstance(min_factors, int) or min_factors < 1:
        raise _err(where, f"min_factors must be a positive integer, got {min_factors!r}")
    return CombineConfig(
        rule=rule,
        min_factors=min_factors,
        common_weight=cw,
        specific_weight=sw,
        normalize=norm,
        std_floor=_number(d.get("std_floor", 1.0), f"{where}.std_floor", positive=True),
        ddof=ddof,
    )


_MULT_KEYS = {
    "rd_industry": {"low", "high"},
    "ps": {"factor", "params"},
    "penalty": {"factor", "params", "below", "below_group_median", "penalty", "required"},
    "segment_trend": {"boost", "periods"},
}


def _multipliers(raw: Any, known: list[str]) -> tuple[MultiplierConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _err("multipliers", "expected an array of tables ([[multipliers]])")
    out = []
    for i, m in enumerate(raw):
        where = f"multipliers[{i}]"
        if not isinstance(m, Mapping) or m.get("kind") not in MULTIPLIERS:
            kind = m.get("kind") if isinstance(m, Mapping) else m
            raise _err(where, f"unknown multiplier kind {kind!r}; valid: {', '.join(MULTIPLIERS)}")
        kind = m["kind"]
        _check_keys(m, {"kind"} | _MULT_KEYS[kind], where)
        opts = {k: v for k, v in m.items() if k != "kind"}
        if kind == "rd_industry":
            lo = _number(opts.setdefault("low", 0.9), f"{where}.low")
            hi = _number(opts.setdefault("high", 1.1), f"{where}.high")
            if hi < lo:
                raise _err(where, f"high ({hi}) must be >= low ({lo})")
        elif kind in ("ps", "penalty"):
            name = opts.setdefault("factor", "ps_ttm" if kind == "ps" else None)
            _factor_entry({"name": name, "params": opts.get("params", {})}, where, known, set())
        if kind == "penalty":
            if ("below" in opts) == ("below_group_median" in opts):
                raise _err(where, "penalty needs exactly one of 'below' or 'below_group_median'")
            for key in ("below", "below_group_median"):
                if key in opts and (
                    isinstance(opts[key], bool) or not isinstance(opts[key], int | float)
                ):
                    raise _err(where, f"{key} must be a number, got {opts[key]!r}")
            opts["penalty"] = _number(opts.get("penalty", 0.8), f"{where}.penalty")
        if kind == "segment_trend":
            opts["boost"] = _number(opts.get("boost", 1.2), f"{where}.boost", positive=True)
            periods = opts.setdefault("periods", 4)
            if isinstance(periods, bool) or not isinstance(periods, int) or periods < 1:
                raise _err(where, f"periods must be a positive integer, got {periods!r}")
        out.append(MultiplierConfig(kind=kind, options=opts))
    return tuple(out)


def _portfolio(d: Any) -> PortfolioConfig:
    where = "portfolio"
    d = d or {}
    _check_keys(d, {"top", "weighting", "power", "cap"}, where)
    top = d.get("top", 50)
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise _err(where, f"top must be a positive integer, got {top!r}")
    weighting = d.get("weighting", "score")
    if weighting not in WEIGHTINGS:
        raise _err(where, f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    cap = d.get("cap")
    if cap is not None:
        cap = _number(cap, f"{where}.cap", positive=True)
    return PortfolioConfig(
        top=top,
        weighting=weighting,
        power=_number(d.get("power", 1.0), f"{where}.power", positive=True),
        cap=cap,
    )


def parse_config(config: Mapping[str, Any]) -> ModelConfig:
    """Validate a model configuration given as a dict (the parsed TOML).

    Parameters
    ----------
    config : mapping
        The configuration (layout in the module docstring).

    Returns
    -------
    ModelConfig

    Raises
    ------
    ModelConfigError
        (a ``ValueError``) naming the bad entry: unknown keys or factors (listing the valid
        ones), negative or non-numeric weights, empty groups or factor lists, unknown
        combination rules, groupings, scopes or multiplier kinds, specific factor sets for
        unknown groups, a ``common_specific`` rule without common or specific factors.
    """
    if not isinstance(config, Mapping):
        raise ModelConfigError(f"model config must be a table/dict, got {type(config).__name__}")
    _check_keys(config, _TOP_KEYS, "top level")
    raw = copy.deepcopy(dict(config))
    known = _known_factors()
    name = config.get("name", "model")
    if not isinstance(name, str):
        raise _err("name", f"expected a string, got {name!r}")
    grouping = _grouping(config.get("grouping"))
    labels = set(grouping.names) | set(grouping.families)
    common = None
    if config.get("common") is not None:
        common = _factor_set(config["common"], "common", known, labels, "universe")
    spec_raw = config.get("specific", {}) or {}
    if not isinstance(spec_raw, Mapping):
        raise _err("specific", "expected a table group -> factor set")
    specific = {}
    for g, fs in spec_raw.items():
        if g not in grouping.names:
            raise _err(f"specific.{g}", f"unknown group {g!r}; groups: {list(grouping.names)}")
        specific[g] = _factor_set(fs, f"specific.{g}", known, labels, "group")
        if specific[g].scope != "group":
            raise _err(f"specific.{g}", "specific factors are scored within their group")
    combine = _combine(config.get("combine"))
    if common is None and not specific:
        raise _err("model", "no factors: give [common] and/or [specific.<group>] factors")
    if combine.rule == "common_specific":
        if common is None:
            raise _err("combine", "rule 'common_specific' needs [common] factors")
        missing = [g for g in grouping.names if g not in specific]
        if missing:
            raise _err("combine", f"rule 'common_specific' needs specific factors for {missing}")
    return ModelConfig(
        name=name,
        description=str(config.get("description", "")),
        universe=_universe(config.get("universe"), known),
        grouping=grouping,
        common=common,
        specific=specific,
        combine=combine,
        multipliers=_multipliers(config.get("multipliers"), known),
        portfolio=_portfolio(config.get("portfolio")),
        raw=raw,
    )


CONFIG_DIR = Path(__file__).with_name("configs")


def shipped_models() -> list[str]:
    """Names of the models shipped in ``quantdask/models/configs``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base`` (tables merge, other values replace).

    A value of ``None`` removes the key (e.g. ``{"universe": {"index": None}}``).
    """
    out = copy.deepcopy(dict(base))
    for k, v in overrides.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_config(
    name_or_path: str | Path | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> ModelConfig:
    """Read and validate a model configuration.

    Parameters
    ----------
    name_or_path : str, pathlib.Path or mapping
        A shipped model name (``"soe"``, ``"tech"``, ``"consumer"``, ``"lithium_chain"``), a
        path to a TOML file, or the configuration itself as a dict.
    overrides : mapping, optional
        Deep-merged into the configuration before validation (see :func:`merge`).

    Returns
    -------
    ModelConfig

    Raises
    ------
    ModelConfigError
        Unknown name, unreadable TOML, or an invalid configuration.
    """
    if isinstance(name_or_path, Mapping):
        data = dict(name_or_path)
    else:
        path = Path(name_or_path)
        if path.suffix != ".toml" and not path.exists():
            shipped = CONFIG_DIR / f"{name_or_path}.toml"
            if not shipped.exists():
                raise ModelConfigError(
                    f"unknown model {str(name_or_path)!r}: not a shipped model "
                    f"({', '.join(shipped_models())}) nor an existing TOML file"
                )
            path = shipped
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ModelConfigError(f"model config file not found: {path}") from None
        except tomllib.TOMLDecodeError as err:
            raise ModelConfigError(f"model config {path}: invalid TOML: {err}") from None
        data.setdefault("name", path.stem)
    if overrides:
        data = merge(data, overrides)
    return parse_config(data)


__all__ = [
    "GROUPINGS",
    "MULTIPLIERS",
    "SCOPES",
    "CombineConfig",
    "FactorEntry",
    "FactorSet",
    "GroupingConfig",
    "ModelConfig",
    "ModelConfigError",
    "MultiplierConfig",
    "PortfolioConfig",
    "Requirement",
    "UniverseConfig",
    "merge",
    "parse_config",
    "read_config",
    "shipped_models",
]
