"""The daily broad-index snapshot: every section-1 measure for each index on one date."""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from quantdask.factors.compute import DateLike, _calendar, _timestamp, compute
from quantdask.factors.inputs import format_missing, missing_inputs
from quantdask.factors.registry import UNBOUNDED, Factor, factor
from quantdask.io import schema
from quantdask.io.store import MarketLike, as_market

#: (factor name, params, column label, number format) for each snapshot column, in order.
SNAPSHOT_MEASURES: tuple[tuple[str, dict, str, str], ...] = (
    *(("streak", {"freq": f}, f"streak {f}", "{:+.0f}") for f in ("D", "W", "M", "Q", "Y")),
    *(("close_vs_ma", {"window": w}, f"vs MA{w} %", "{:+.2f}") for w in (5, 10, 20, 60, 120, 250)),
    ("close_vs_high", {"window": 250}, "vs 250d high %", "{:+.2f}"),
    ("close_vs_low", {"window": 250}, "vs 250d low %", "{:+.2f}"),
    ("turnover", {}, "turnover %", "{:.2f}"),
    ("amount_share", {}, "amount share %", "{:.2f}"),
    ("ret_skew", {"window": 250}, "skew 1y", "{:+.2f}"),
    ("ret_skew_vs_5y", {"window": 250}, "skew - 5y mean", "{:+.2f}"),
    ("ret_kurt", {"window": 250}, "ex. kurt 1y", "{:+.2f}"),
    ("ret_kurt_vs_5y", {"window": 250}, "ex. kurt - 5y mean", "{:+.2f}"),
    ("risk_premium", {}, "risk premium %", "{:.2f}"),
    ("risk_premium_pct", {"window": 250}, "RP pct 1y", "{:.1f}"),
    ("risk_premium_pct", {"window": 1250}, "RP pct 5y", "{:.1f}"),
    *(("risk_premium_band", {"k": k}, f"RP mean{k:+d}sd", "{:.2f}") for k in (-2, -1, 0, 1, 2)),
    ("equity_bond_signal", {"window": 1250}, "equity-bond signal", "{:+.0f}"),
    ("pe_ttm", {}, "PE-TTM", "{:.2f}"),
    ("pe_ttm_pct", {"window": 250}, "PE pct 1y", "{:.1f}"),
    ("pe_ttm_pct", {"window": 1250}, "PE pct 5y", "{:.1f}"),
    ("pe_ttm_pct", {"window": "all"}, "PE pct all", "{:.1f}"),
    ("dv_ttm", {}, "div. yield %", "{:.2f}"),
    ("dv_ttm_pct", {"window": 250}, "DY pct 1y", "{:.1f}"),
    ("dv_ttm_pct", {"window": 1250}, "DY pct 5y", "{:.1f}"),
    ("dv_ttm_pct", {"window": "all"}, "DY pct all", "{:.1f}"),
    ("below_book_ratio", {}, "below book %", "{:.1f}"),
)


def snapshot_factors() -> list[Factor]:
    """The factors a snapshot shows, in column order."""
    return [factor(name, **params) for name, params, _, _ in SNAPSHOT_MEASURES]


_SIGNAL_WORDS = {1.0: "opportunity", -1.0: "danger", 0.0: "neutral"}


class SnapshotWarning(UserWarning):
    """Some snapshot measures cannot be computed from the market (their inputs are missing)."""


def snapshot_inputs() -> dict[str, tuple[str, ...]]:
    """What each snapshot measure reads: column variable -> input paths (index level).

    Returns
    -------
    dict
        ``{"close_vs_ma_20": ("index/close",), ...}`` in column order; paths as in
        :mod:`quantdask.factors.inputs`.
    """
    return {f.variable: f.inputs("index") for f in snapshot_factors()}


@dataclass(frozen=True)
class Snapshot:
    """The broad-index snapshot of one trading date (what :func:`snapshot` returns).

    Attributes
    ----------
    date : pandas.Timestamp
        The trading date shown.
    frame : pandas.DataFrame
        One row per broad index (index: the index code, named ``index``), a ``name``
        column, then one column per measure named canonically (``streak_D``,
        ``close_vs_ma_20``, ``risk_premium_pct_1250``, ...); units as in each factor's doc.
        A measure whose inputs the market lacks is a column of NaN.
    missing : dict
        Column variable -> the reason it is missing (the inputs the market lacks), for
        every measure that could not be computed; empty when all were.
    empty : dict
        Column variable -> why some of its cells are empty although it was computed: the
        indices with less history up to the date than the measure's lookback needs (a
        5-year mean of a 1-year skew needs ~6 years), or an input without a value on that
        date. The renderings list these under the table, so a blank row says why.
    """

    date: pd.Timestamp
    frame: pd.DataFrame
    missing: dict[str, str] = field(default_factory=dict)
    empty: dict[str, str] = field(default_factory=dict)

    def labelled(self) -> pd.DataFrame:
        """The frame with human-readable column labels and formatted values (strings)."""
        out = pd.DataFrame(index=self.frame.index)
        out["name"] = self.frame["name"]
        for name, params, label, fmt in SNAPSHOT_MEASURES:
            col = factor(name, **params).variable
            values = self.frame[col]
            if name == "equity_bond_signal":
                out[label] = [
                    "" if _isnan(v) else _SIGNAL_WORDS.get(float(v), str(v)) for v in values
                ]
            else:
                out[label] = ["" if _isnan(v) else fmt.format(v) for v in values]
        return out

    def to_markdown(self) -> str:
        """The snapshot as a GitHub-flavoured markdown table (measures as rows).

        Returns
        -------
        str
            A title line with the date, then a table with one column per index.
        """
        table = self.labelled().set_index("name").T
        header = ["measure", *[str(c) for c in table.columns]]
        lines = [
            f"**Broad-index snapshot, {self.date.date()}**",
            "",
            "| " + " | ".join(_md_escape(h) for h in header) + " |",
            "|" + "|".join([":---", *["---:"] * (len(header) - 1)]) + "|",
        ]
        for label, row in table.iterrows():
            cells = [str(label), *(str(v) for v in row.to_list())]
            lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
        notes = self._missing_lines()
        if notes:
            lines += ["", *(f"- {text}" for text in notes)]
        return "\n".join(lines) + "\n"

    def _missing_lines(self) -> list[str]:
        """One note per measure not computed, then per measure with empty cells."""
        labels = {factor(n, **p).variable: label for n, p, label, _ in SNAPSHOT_MEASURES}
        out = [f"{labels.get(v, v)}: not computed, {why}" for v, why in self.missing.items()]
        out += [f"{labels.get(v, v)}: empty, {why}" for v, why in self.empty.items()]
        return out

    def to_html(self) -> str:
        """The snapshot as an HTML table (measures as rows, one column per index).

        Returns
        -------
        str
        """
        table = self.labelled().set_index("name").T
        table.index.name = "measure"
        body = table.to_html(escape=True, border=0, classes="quantdask-snapshot")
        title = html.escape(f"Broad-index snapshot, {self.date.date()}")
        notes = ""
        lines = self._missing_lines()
        if lines:
            items = "".join(f"<li>{html.escape(t)}</li>" for t in lines)
            notes = f"<ul>{items}</ul>"
        return f"<div><h4>{title}</h4>{body}{notes}</div>"

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        extra = f", missing={len(self.missing)}" if self.missing else ""
        return f"Snapshot(date={self.date.date()}, indices={len(self.frame)}{extra})"


def _isnan(v: object) -> bool:
    try:
        return math.isnan(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def snapshot(market: MarketLike, date: DateLike) -> Snapshot:
    """The daily broad-index snapshot: every section-1 measure for each index on ``date``.

    Parameters
    ----------
    market : xarray.DataTree or path
        A market from :func:`quantdask.open_market` (or a store path). It needs the
        ``index`` node (dates, index codes). Each measure needs its own inputs
        (:func:`snapshot_inputs`): prices, ``pre_close`` and ``amount`` of the ``index``
        node, the CSI All Share index ``000985.CSI`` among the indices (amount share),
        ``index/pe_ttm``, ``index/dv_ttm``, ``macro/cgb_10y`` (risk premium, its percentiles,
        bands and the equity-bond signal), and ``index/weight`` with ``daily/float_share``,
        ``daily/turnover_rate`` (turnover) and ``daily/pb`` (below-book ratio). Measures
        whose inputs are missing are left out (NaN, listed in ``.missing``).
    date : date-like
        The report date; a non-trading date shows the last trading date before it.

    Returns
    -------
    Snapshot
        ``.frame`` (tidy DataFrame, one row per index), ``.missing`` (measures not computed,
        and why), ``.to_markdown()``, ``.to_html()``.

    Raises
    ------
    ValueError
        If ``date`` is before the first trading date of the market, or the market has no
        ``index`` node.

    Warns
    -----
    SnapshotWarning
        Once, listing every missing input and the measures it leaves out, when some
        measures cannot be computed; the others are computed as usual.

    Notes
    -----
    This is a reduction point: it computes. Only the history the measures' lookbacks need
    is read, up to ``date``: about five years of the ``index`` node for the 5-year
    percentiles and means, all of its history for the "all" percentiles and streaks, and the
    single date of ``daily`` and ``index/weight`` for turnover and the below-book ratio.
    Nothing after ``date`` is read.

    Examples
    --------
    >>> import quantdask as qd
    >>> snap = qd.snapshot(qd.open_market("market.zarr"), "2019-12-31")  # doctest: +SKIP
    >>> print(snap.to_markdown())  # doctest: +SKIP
    """
    tree = as_market(market)
    dates = _calendar(tree, "index")
    ts = _timestamp(date, "date")
    pos = int(dates.searchsorted(ts, side="right")) - 1
    if pos < 0:
        raise ValueError(f"date={date!r} is before the market's first date {dates[0].date()}")
    day = dates[pos]
    factors = snapshot_factors()
    gaps = {f.variable: missing_inputs(tree, f.inputs("index")) for f in factors}
    gaps = {v: g for v, g in gaps.items() if g}
    if gaps:
        warnings.warn(
            SnapshotWarning(
                f"snapshot {day.date()}: {len(gaps)} of {len(factors)} measures not computed; "
                + format_missing(gaps)
            ),
            stacklevel=2,
        )
    ok = [f for f in factors if f.variable not in gaps]
    codes = [str(c) for c in tree["index"].to_dataset(inherit=False).indexes["index"]]
    frame = pd.DataFrame(np.nan, index=pd.Index(codes, name="index"), columns=[])
    if ok:
        ds = compute(tree, ok, start=day, end=day, level="index").compute()
        got = ds.isel(date=0, drop=True).to_dataframe()[list(ds.data_vars)]
        got.index = pd.Index([str(c) for c in got.index], name="index")
        frame = got.reindex(codes)
    frame = frame.reindex(columns=[f.variable for f in factors])
    frame.insert(0, "name", [schema.INDICES.get(c, c) for c in codes])
    frame = frame.astype({c: np.float64 for c in frame.columns if c != "name"})
    missing = {v: "missing " + "; ".join(f"{p} ({why})" for p, why in g) for v, g in gaps.items()}
    empty = _empty_reasons(tree, ok, frame, pos)
    return Snapshot(date=pd.Timestamp(day), frame=frame, missing=missing, empty=empty)


def _empty_reasons(
    tree: xr.DataTree, computed: list[Factor], frame: pd.DataFrame, pos: int
) -> dict[str, str]:
    """Why computed measures have empty cells: short index history, or no value that day."""
    blank = {f.variable: f for f in computed if frame[f.variable].isna().any()}
    if not blank:
        return {}
    close = tree["index"].to_dataset(inherit=False)["close"].isel(date=slice(0, pos + 1))
    history = pd.Series(
        np.isfinite(close.transpose("date", "index").values).sum(axis=0),
        index=[str(c) for c in close["index"].values],
    )
    out = {}
    for v, f in blank.items():
        codes = [str(c) for c in frame.index[frame[v].isna()]]
        need = int(f.lookback) + 1
        short = [c for c in codes if f.lookback < UNBOUNDED and history.get(c, 0) < need]
        other = [c for c in codes if c not in short]
        parts = []
        if short:
            by_have: dict[int, list[str]] = {}
            for c in short:
                by_have.setdefault(int(history.get(c, 0)), []).append(c)
            have = "; ".join(
                f"{'every index' if len(cs) == len(frame) else ', '.join(cs)} has {h}"
                for h, cs in by_have.items()
            )
            parts.append(f"it needs {need} trading days of index history up to the date, {have}")
        if other:
            who = "every index" if len(other) == len(frame) else ", ".join(other)
            parts.append(
                f"{who}: no value on this date (too little history for its first complete "
                "bar or window, or an input without a value)"
            )
        out[v] = "; ".join(parts)
    return out


__all__ = [
    "SNAPSHOT_MEASURES",
    "Snapshot",
    "SnapshotWarning",
    "snapshot",
    "snapshot_factors",
    "snapshot_inputs",
]
