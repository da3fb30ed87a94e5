"""The scoring model: one type, configured by data (:mod:`quantdask.models.config`).

``Model.scores(market, dates)`` evaluates the configured factors lazily over the market,
takes their values on the rebalance dates and computes them in **one** ``dask.compute`` (the
model's documented reduction point); universe filtering, grouping, percentile scoring,
combination and multipliers then run in numpy on the small ``(rebalance date, asset)``
arrays, vectorised over dates and assets (:mod:`quantdask.models.scoring`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.factors.fundamental import USER_PANEL_FACTORS
from quantdask.factors.registry import factor as bind_factor
from quantdask.fundamentals.pit import MODE_TTM, views_panel
from quantdask.io.store import MarketLike, as_market
from quantdask.models import scoring as sc
from quantdask.models.config import FactorEntry, ModelConfig, read_config


def _dates(daily: xr.Dataset, dates: Any) -> pd.DatetimeIndex:
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(list(dates))).astype("datetime64[ns]")
    except (TypeError, ValueError) as err:
        raise ValueError(f"dates: could not read the rebalance dates: {err}") from err
    if len(idx) == 0:
        raise ValueError("dates is empty: pass rebalance dates, e.g. qd.rebalance_dates(market)")
    cal = pd.DatetimeIndex(daily.indexes["date"])
    missing = idx.difference(cal)
    if len(missing):
        raise ValueError(
            f"dates: {missing[0].date()} is not a trading date of the market "
            "(snap dates with qd.rebalance_dates first)"
        )
    return idx.unique().sort_values()


def _var(key: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]+", "_", key).strip("_")


class Model:
    """A stock-selection scoring model built from a validated configuration.

    Parameters
    ----------
    config : ModelConfig
        From :func:`load_model` / :func:`quantdask.models.config.read_config`.

    Attributes
    ----------
    name : str
    config : ModelConfig

    Notes
    -----
    Scores on date ``t`` use factor values on ``t`` only (all factors are point in time), so
    a model cannot see the future. User-supplied inputs (ESG scores, patents, ...) are passed
    as ``inputs={"esg_score": panel}``; a factor whose input is missing is left out of the
    combination (unless its entry says ``required = true``).
    """

    def __init__(self, config: ModelConfig) -> None:
        if not isinstance(config, ModelConfig):
            raise TypeError(f"expected a ModelConfig, got {type(config).__name__}")
        self.config = config
        self.name = config.name

    #: Evaluate lookback-0 factors on the rebalance dates only (see :meth:`_factor_market`).
    _sparse: bool = True

    def _factor_market(
        self, market: xr.DataTree, dates: pd.DatetimeIndex, inputs: Mapping[str, Any]
    ) -> xr.DataTree:
        """The market restricted to the rebalance dates, when every factor allows it.

        Factors with lookback 0 (all fundamental factors) give the same value on ``t``
        whether the daily calendar is complete or holds only the rebalance dates: point-in-
        time records are usable on ``t`` iff announced before ``t`` (``as_of`` convention) in
        both cases. Evaluating them on the rebalance dates only cuts the work and memory by
        the ratio of trading days to rebalance dates. Any factor with a lookback (e.g. a
        technical factor) keeps the full calendar.
        """
        cfg = self.config
        entries: list[FactorEntry] = []

        def flat(e: FactorEntry) -> None:
            if e.components:
                for c in e.components:
                    flat(c)
            else:
                entries.append(e)

        for e in cfg.entries():
            flat(e)
        entries += [r.factor for r in (*cfg.universe.require_any, *cfg.universe.require_all)]
        for m in cfg.multipliers:
            if m.kind in ("ps", "penalty"):
                entries.append(FactorEntry(m.options["factor"], dict(m.options.get("params", {}))))
        for e in entries:
            if e.name in USER_PANEL_FACTORS:
                continue
            if bind_factor(e.name, **e.params).lookback != 0:
                return market
        nodes = {}
        for name, node in market.children.items():
            ds = node.to_dataset()
            nodes[name] = ds.sel(date=dates) if "date" in ds.dims else ds
        return xr.DataTree.from_dict(nodes)

    def __repr__(self) -> str:
        c = self.config
        n = len(c.entries())
        groups = ", ".join(c.grouping.names)
        return (
            f"Model({self.name!r}: {n} factor entries, grouping={c.grouping.by!r} [{groups}], "
            f"rule={c.combine.rule!r}, top={c.portfolio.top}, weighting={c.portfolio.weighting!r})"
        )

    # ------------------------------------------------------------------------------------
    def _lazy_panels(
        self, market: xr.DataTree, dates: pd.DatetimeIndex, inputs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """Lazy arrays on the rebalance dates, keyed, plus the skipped input factors."""
        cfg = self.config
        daily = market["daily"]
        lazy: dict[str, Any] = {}
        skipped: list[str] = []

        def field(name: str) -> None:
            if name not in lazy and name in daily:
                lazy[name] = daily[name].sel(date=dates).data

        def need(entry: FactorEntry) -> None:
            if entry.components:
                for c in entry.components:
                    need(c)
                return
            key = "f:" + entry.key
            if key in lazy:
                return
            if entry.name in USER_PANEL_FACTORS:
                if entry.name not in inputs:
                    if entry.required:
                        raise ValueError(
                            f"model {self.name!r}: factor {entry.name!r} needs a user-supplied "
                            f"panel: pass inputs={{{entry.name!r}: (date, asset) DataArray}}"
                        )
                    skipped.append(entry.name)
                    return
                panel = bind_factor(entry.name, panel=inputs[entry.name])(market)
            else:
                panel = bind_factor(entry.name, **entry.params)(market)
            lazy[key] = panel.sel(date=dates).data

        for f in ("close", "suspended", "is_st", "industry"):
            field(f)
        if cfg.universe.min_listed_days > 0:
            if "list_date" not in daily.coords:
                raise ValueError(
                    f"model {self.name!r}: universe.min_listed_days needs the daily node's "
                    "list_date coordinate"
                )
            lazy["list_date"] = daily["list_date"].data
        for e in cfg.entries():
            need(e)
        for r in (*cfg.universe.require_any, *cfg.universe.require_all):
            need(r.factor)
        if cfg.grouping.by == "lifecycle":
            need(FactorEntry("lifecycle"))
        if cfg.universe.index is not None:
            if "index" not in market.children or "weight" not in market["index"]:
                raise ValueError(
                    f"model {self.name!r}: universe.index={cfg.universe.index!r} needs the "
                    "market's index weights (market['index']['weight'])"
                )
            w = market["index"]["weight"]
            codes = list(w["index"].values)
            if cfg.universe.index not in codes:
                raise ValueError(
                    f"model {self.name!r}: index {cfg.universe.index!r} not in the store; "
                    f"available: {codes}"
                )
            lazy["index_weight"] = (
                w.sel(index=cfg.universe.index, date=dates)
                .reindex(asset=daily["asset"].values)
                .transpose("date", "asset")
                .data
            )
        if cfg.universe.include is not None:
            name = cfg.universe.include
            if name in inputs:
                lazy["include"] = _user_grid(daily, inputs[name], name).sel(date=dates).data
            else:
                skipped.append(f"universe.include:{name}")
        for m in cfg.multipliers:
            if m.kind == "rd_industry":
                need(FactorEntry("rd_to_mcap"))
                field("total_mv")
            elif m.kind in ("ps", "penalty"):
                need(FactorEntry(m.options["factor"], params=dict(m.options.get("params", {}))))
            elif m.kind == "segment_trend":
                p = int(m.options["periods"])
                for item in ("revenue", "oper_cost"):
                    (now, before), _ = views_panel(
                        market, item, views=[(MODE_TTM, 0), (MODE_TTM, p)], anchor="report"
                    )
                    lazy[f"seg:{item}:0"] = now.sel(date=dates).data
                    lazy[f"seg:{item}:{p}"] = before.sel(date=dates).data
        return lazy, skipped

    def _universe(
        self, market: xr.DataTree, dates: pd.DatetimeIndex, arr: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        u = self.config.universe
        daily = market["daily"]
        close = arr["close"]
        ok = np.isfinite(close)
        if u.exclude_suspended and "suspended" in arr:
            ok &= ~arr["suspended"].astype(bool)
        if u.exclude_st and "is_st" in arr:
            ok &= ~arr["is_st"].astype(bool)
        if u.min_listed_days > 0:
            cal = daily.indexes["date"].values
            ld = np.asarray(arr["list_date"], "M8[ns]")
            # listed before the panel starts: listed "long ago"; NaT: never listed
            list_pos = np.where(ld < cal[0], -(2**40), np.searchsorted(cal, ld).astype(np.int64))
            date_pos = np.searchsorted(cal, dates.values)
            ok &= (date_pos[:, None] - list_pos[None, :]) >= u.min_listed_days
        if "index_weight" in arr or "include" in arr:
            member = np.zeros(ok.shape, dtype=bool)
            if "index_weight" in arr:
                member |= np.nan_to_num(arr["index_weight"]) > 0
            if "include" in arr:
                member |= np.nan_to_num(np.asarray(arr["include"], dtype=np.float64)) > 0
            ok &= member
        if u.industries:
            ok &= np.isin(arr["industry"], np.array(u.industries))
        for reqs, mode in ((u.require_any, "any"), (u.require_all, "all")):
            if not reqs:
                continue
            tests = []
            for r in reqs:
                v = arr["f:" + r.factor.key]
                with np.errstate(invalid="ignore"):
                    t = {
                        ">": v > r.value,
                        ">=": v >= r.value,
                        "<": v < r.value,
                        "<=": v <= r.value,
                    }[r.op]
                tests.append(t & np.isfinite(v))
            ok &= np.any(tests, axis=0) if mode == "any" else np.all(tests, axis=0)
        return ok

    def _groups(self, arr: Mapping[str, np.ndarray], ok: np.ndarray) -> np.ndarray:
        g = self.config.grouping
        if g.by == "none":
            return ok.astype(np.int64)
        src = arr["industry"] if g.by == "industry" else arr["f:lifecycle"]
        src = np.nan_to_num(np.asarray(src, dtype=np.float64), nan=0).astype(np.int64)
        codes, labels = [], []
        for i, members in enumerate(g.groups.values(), start=1):
            codes.extend(members)
            labels.extend([i] * len(members))
        order = np.argsort(codes)
        keys, vals = np.asarray(codes)[order], np.asarray(labels)[order]
        pos = np.clip(np.searchsorted(keys, src), 0, len(keys) - 1)
        out = np.where(keys[pos] == src, vals[pos], 0)
        return np.where(ok, out, 0)

    def _weights(self, entry: FactorEntry, groups: np.ndarray) -> np.ndarray | float:
        if not isinstance(entry.weight, dict):
            return float(entry.weight)
        g = self.config.grouping
        table = np.zeros(len(g.names) + 1)
        for i, name in enumerate(g.names, start=1):
            fam = g.family_of(name)
            if name in entry.weight:
                table[i] = entry.weight[name]
            elif fam is not None and fam in entry.weight:
                table[i] = entry.weight[fam]
            else:
                table[i] = entry.weight.get("default", 1.0)
        return table[groups]

    def _scope_codes(self, scope: str, groups: np.ndarray) -> np.ndarray:
        if scope == "universe":
            return (groups > 0).astype(np.int64)
        if scope == "group":
            return groups
        g = self.config.grouping
        fam_names = list(g.families)
        table = np.zeros(len(g.names) + 1, dtype=np.int64)
        for i, name in enumerate(g.names, start=1):
            fam = g.family_of(name)
            # groups outside every family form their own comparison set
            table[i] = fam_names.index(fam) + 1 if fam is not None else len(fam_names) + i
        return table[groups]

    def _entry_score(
        self, entry: FactorEntry, arr: Mapping[str, np.ndarray], codes: np.ndarray
    ) -> np.ndarray | None:
        if entry.components:
            parts = [self._entry_score(c, arr, codes) for c in entry.components]
            parts = [p for p in parts if p is not None]
            if not parts:
                return None
            stack = np.stack(parts)
            cnt = np.isfinite(stack).sum(axis=0)
            with np.errstate(invalid="ignore"):
                mean = np.where(cnt > 0, np.nansum(stack, axis=0) / np.maximum(cnt, 1), np.nan)
            return sc.percentile_score(mean, direction=1, groups=codes)
        key = "f:" + entry.key
        if key not in arr:
            return None  # user input not supplied
        return sc.percentile_score(arr[key], direction=entry.direction, groups=codes)

    def _multiplier(
        self, kind: str, opts: Mapping[str, Any], arr: Mapping[str, np.ndarray], groups: np.ndarray
    ) -> np.ndarray | None:
        ok = groups > 0
        if kind == "rd_industry":
            rd = np.where(ok, arr["f:rd_to_mcap"], np.nan)
            return sc.rd_multiplier(
                rd, arr["total_mv"], arr["industry"], low=opts["low"], high=opts["high"]
            )
        entry = FactorEntry(opts.get("factor", ""), params=dict(opts.get("params", {})))
        if kind == "ps":
            return sc.ps_multiplier(arr["f:" + entry.key], universe=ok)
        if kind == "penalty":
            key = "f:" + entry.key
            if key not in arr:
                if opts.get("required", False):
                    raise ValueError(
                        f"model {self.name!r}: penalty on {entry.name!r} needs its user input"
                    )
                return None
            v = np.where(ok, arr[key], np.nan)
            if "below" in opts:
                limit = np.full(v.shape, float(opts["below"]))
            else:
                limit = float(opts["below_group_median"]) * sc.group_median(v, groups)
            with np.errstate(invalid="ignore"):
                low = np.isfinite(v) & np.isfinite(limit) & (v < limit)
            return np.where(low, float(opts["penalty"]), 1.0)
        # segment_trend: groups whose aggregate TTM gross margin rose get the boost
        p = int(opts["periods"])
        m0 = _group_margin(arr["seg:revenue:0"], arr["seg:oper_cost:0"], groups)
        m1 = _group_margin(arr[f"seg:revenue:{p}"], arr[f"seg:oper_cost:{p}"], groups)
        with np.errstate(invalid="ignore"):
            rising = np.isfinite(m0) & np.isfinite(m1) & (m0 > m1)
        return np.where(rising, float(opts["boost"]), 1.0)

    # ------------------------------------------------------------------------------------
    def score_table(
        self,
        market: MarketLike,
        dates: Sequence[Any] | pd.DatetimeIndex,
        *,
        inputs: Mapping[str, xr.DataArray] | None = None,
    ) -> xr.Dataset:
        """All intermediate results of the model on the rebalance dates.

        Parameters
        ----------
        market : str, os.PathLike or xarray.DataTree
            The market.
        dates : sequence of date-like
            Rebalance dates (trading dates of the market), e.g. ``qd.rebalance_dates(market)``.
        inputs : mapping, optional
            User-supplied ``(date, asset)`` panels for input factors (``esg_score``,
            ``patents``, ``policy_uncertainty_beta``, ``chain_exposure``, ...).

        Returns
        -------
        xarray.Dataset
            In-memory, dims ``(date, asset)``: ``score`` (final), ``combined`` (before
            multipliers), ``multiplier``, ``universe`` (bool), ``group`` (int code, 0 = out;
            names in the ``group_names`` attribute), ``score_<factor>`` per factor entry
            (``common_``/``<group>_`` prefixed). Attribute ``skipped_inputs`` lists input
            factors left out because no panel was supplied.

        Notes
        -----
        Reduction point: one ``dask.compute`` of every factor on the rebalance dates.
        Lookback: what the factors need (fundamental factors: none); no look-ahead.
        """
        market = as_market(market)
        daily = market["daily"].to_dataset()
        dates = _dates(daily, dates)
        inputs = dict(inputs or {})
        sub = self._factor_market(market, dates, inputs) if self._sparse else market
        lazy, skipped = self._lazy_panels(sub, dates, inputs)
        keys = list(lazy)
        computed = dask.compute(*[lazy[k] for k in keys])
        arr = {k: np.asarray(v) for k, v in zip(keys, computed, strict=True)}
        for k in list(arr):
            if k.startswith("f:") or k.startswith("seg:") or k in ("close", "total_mv"):
                arr[k] = arr[k].astype(np.float64)

        ok = self._universe(market, dates, arr)
        groups = self._groups(arr, ok)
        cfg = self.config
        out: dict[str, np.ndarray] = {}
        common_s, common_w, spec_s, spec_w = [], [], [], []
        if cfg.common is not None:
            codes = self._scope_codes(cfg.common.scope, groups)
            for e in cfg.common.factors:
                s = self._entry_score(e, arr, codes)
                if s is None:
                    continue
                out[f"score_common_{_var(e.key)}"] = s
                common_s.append(s)
                common_w.append(np.broadcast_to(self._weights(e, groups), s.shape))
        for gi, gname in enumerate(cfg.grouping.names, start=1):
            fs = cfg.specific.get(gname)
            if fs is None:
                continue
            codes = (groups == gi).astype(np.int64)
            for e in fs.factors:
                s = self._entry_score(e, arr, codes)
                if s is None:
                    continue
                out[f"score_{_var(gname)}_{_var(e.key)}"] = s
                spec_s.append(s)
                spec_w.append(np.broadcast_to(self._weights(e, groups), s.shape))
        all_s, all_w = common_s + spec_s, common_w + spec_w
        shape = (len(dates), daily.sizes["asset"])
        if not all_s:
            raise ValueError(
                f"model {self.name!r}: no factor could be scored (user inputs missing: {skipped})"
            )
        cb = cfg.combine
        enough = np.isfinite(np.stack(all_s)).sum(axis=0) >= cb.min_factors
        if cb.rule == "weighted_mean":
            combined = sc.weighted_mean(np.stack(all_s), np.stack(all_w))
        elif cb.rule == "mean_over_5_plus_mean_over_std":
            combined = sc.mean_over_5_plus_mean_over_std(
                np.stack(all_s),
                std_floor=cb.std_floor,
                ddof=cb.ddof,
                min_count=max(2, cb.min_factors),
            )
        else:
            common = (
                sc.weighted_mean(np.stack(common_s), np.stack(common_w))
                if common_s
                else np.full(shape, np.nan)
            )
            specific = (
                sc.weighted_mean(np.stack(spec_s), np.stack(spec_w))
                if spec_s
                else np.full(shape, np.nan)
            )
            out["common"] = common
            out["specific"] = specific
            combined = sc.common_specific(
                common,
                specific,
                common_weight=cb.common_weight,
                specific_weight=cb.specific_weight,
                normalize_method="none",
            )
        # stocks outside the universe or with too few factor scores are not scored; the
        # per-date rescaling runs over the scored stocks only
        combined = np.where((groups > 0) & enough, combined, np.nan)
        combined = sc.normalize(combined, method=cb.normalize)
        mult = np.ones(shape)
        for i, m in enumerate(cfg.multipliers):
            mi = self._multiplier(m.kind, m.options, arr, groups)
            if mi is None:
                skipped.append(f"multiplier:{m.kind}:{m.options.get('factor', '')}")
                continue
            out[f"multiplier_{i}_{m.kind}"] = mi
            mult = mult * mi
        score = np.where(groups > 0, combined * mult, np.nan)
        coords = {"date": dates.values, "asset": daily["asset"].values}
        dims = ("date", "asset")
        ds = xr.Dataset(
            {
                "score": (dims, score),
                "combined": (dims, combined),
                "multiplier": (dims, np.where(groups > 0, mult, np.nan)),
                "universe": (dims, groups > 0),
                "group": (dims, groups.astype(np.int32)),
                **{k: (dims, v) for k, v in out.items()},
            },
            coords=coords,
            attrs={
                "model": self.name,
                "group_names": list(cfg.grouping.names),
                "skipped_inputs": sorted(set(skipped)),
            },
        )
        return ds

    def scores(
        self,
        market: MarketLike,
        dates: Sequence[Any] | pd.DatetimeIndex,
        *,
        inputs: Mapping[str, xr.DataArray] | None = None,
    ) -> xr.DataArray:
        """Model scores on the rebalance dates (higher is better; NaN outside the universe).

        Parameters
        ----------
        market : str, os.PathLike or xarray.DataTree
            The market.
        dates : sequence of date-like
            Rebalance dates (trading dates of the market).
        inputs : mapping, optional
            User-supplied panels for input factors (see :meth:`score_table`).

        Returns
        -------
        xarray.DataArray
            In-memory ``(date, asset)`` named ``score``.

        Notes
        -----
        Reduction point (one compute); no look-ahead. See :meth:`score_table`.
        """
        return self.score_table(market, dates, inputs=inputs)["score"].rename(self.name)

    def weights(
        self,
        market: MarketLike,
        dates: Sequence[Any] | pd.DatetimeIndex,
        *,
        inputs: Mapping[str, xr.DataArray] | None = None,
    ) -> xr.DataArray:
        """Target weights on the rebalance dates: top-N by score, score-based weights.

        Parameters
        ----------
        market : str, os.PathLike or xarray.DataTree
            The market.
        dates : sequence of date-like
            Rebalance dates.
        inputs : mapping, optional
            User-supplied panels for input factors.

        Returns
        -------
        xarray.DataArray
            ``(date, asset)`` weights from :func:`quantdask.select_weights` with the model's
            ``[portfolio]`` settings (``top``, ``weighting``, ``power``, ``cap``); each date
            sums to 1 (or 0 when nothing is selectable). Feed to :func:`quantdask.backtest`.
        """
        from quantdask.portfolio import select_weights

        market = as_market(market)
        p = self.config.portfolio
        scores = self.scores(market, dates, inputs=inputs)
        mcap = market["daily"]["total_mv"] if p.weighting == "mcap" else None
        return select_weights(
            scores,
            dates=scores["date"].values,
            top=p.top,
            weighting=p.weighting,  # type: ignore[arg-type]
            power=p.power,
            cap=p.cap,
            mcap=mcap,
        )

    def backtest(
        self,
        market: MarketLike,
        dates: Sequence[Any] | pd.DatetimeIndex,
        *,
        inputs: Mapping[str, xr.DataArray] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Back-test the model's weights with :func:`quantdask.backtest`.

        Parameters
        ----------
        market : str, os.PathLike or xarray.DataTree
            The market.
        dates : sequence of date-like
            Rebalance dates.
        inputs : mapping, optional
            User-supplied panels for input factors.
        **kwargs
            Passed to :func:`quantdask.backtest` (``costs``, ``benchmark``, ``start``, ...).

        Returns
        -------
        quantdask.BacktestResult
        """
        from quantdask.portfolio import backtest

        market = as_market(market)
        return backtest(market, self.weights(market, dates, inputs=inputs), **kwargs)


def _user_grid(daily: xr.DataTree, panel: Any, name: str) -> xr.DataArray:
    if not isinstance(panel, xr.DataArray) or set(panel.dims) != {"date", "asset"}:
        raise ValueError(f"input {name!r} must be a (date, asset) xarray.DataArray")
    return panel.transpose("date", "asset").reindex(date=daily["date"], asset=daily["asset"])


def _group_margin(rev: np.ndarray, cost: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Aggregate gross margin ``sum(rev - cost) / sum(rev)`` of each (row, group)."""
    ok = np.isfinite(rev) & np.isfinite(cost) & (groups > 0)
    n_rows = rev.shape[0]
    n_codes = int(groups.max()) + 1 if groups.size else 1
    key = np.arange(n_rows)[:, None] * n_codes + groups
    r = np.bincount(key[ok], weights=rev[ok], minlength=n_rows * n_codes)
    c = np.bincount(key[ok], weights=cost[ok], minlength=n_rows * n_codes)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(r > 0, (r - c) / r, np.nan)
    return np.where(groups > 0, m[key], np.nan)


def load_model(
    name_or_path: str | Path | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> Model:
    """Load a scoring model by shipped name, TOML path or configuration dict.

    Parameters
    ----------
    name_or_path : str, pathlib.Path or mapping
        ``"soe"``, ``"tech"``, ``"consumer"``, ``"lithium_chain"`` (shipped in
        ``quantdask/models/configs``), a path to a TOML file, or a configuration dict.
    overrides : mapping, optional
        Deep-merged into the configuration before validation, e.g.
        ``{"portfolio": {"top": 20}}``; ``None`` values delete keys
        (``{"universe": {"index": None}}``).

    Returns
    -------
    Model

    Raises
    ------
    quantdask.models.config.ModelConfigError
        (a ``ValueError``) for unknown names or invalid configurations; the message names
        the bad entry and lists valid choices.

    Examples
    --------
    >>> import quantdask as qd
    >>> qd.load_model("soe").config.combine.rule
    'common_specific'
    """
    return Model(read_config(name_or_path, overrides=overrides))


__all__ = ["Model", "load_model"]
