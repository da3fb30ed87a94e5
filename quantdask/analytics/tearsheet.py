"""Self-contained HTML tear sheets for a factor, a back-test, or both."""

from __future__ import annotations

import datetime as _dt
import html
import os
import tempfile
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from quantdask.analytics import plots
from quantdask.analytics.ic import ic as _ic
from quantdask.analytics.ic import ic_summary
from quantdask.analytics.quantiles import quantile_spread
from quantdask.analytics.report import factor_report
from quantdask.analytics.turnover import factor_turnover, rank_autocorrelation
from quantdask.io.schema import SW_L1

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1000px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; }
img { max-width: 100%; display: block; margin: .6em 0; }
.note { color: #666; font-size: .85em; }
"""


def _img(b64: str, name: str, alt: str) -> str:
    return f'<img id="plot-{name}" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _table(df: pd.DataFrame, name: str, *, float_format: str = "{:.4f}") -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return float_format.format(v) if np.isfinite(v) else ""
        return str(v)

    return df.to_html(
        table_id=f"table-{name}", formatters={c: fmt for c in df.columns}, na_rep="", border=0
    )


def _as_forward_dataset(forward: xr.Dataset | xr.DataArray) -> xr.Dataset:
    if isinstance(forward, xr.DataArray):
        name = forward.name if forward.name is not None else "forward"
        return forward.to_dataset(name=str(name))
    if isinstance(forward, xr.Dataset):
        if not forward.data_vars:
            raise ValueError("forward has no variables")
        return forward
    raise TypeError(
        f"forward must be a Dataset from qd.forward_returns or a DataArray, got {type(forward)!r}"
    )


def _horizon(name: str) -> int | None:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _factor_section(
    factor: xr.DataArray,
    forward: xr.Dataset,
    *,
    quantiles: int,
    rolling: int,
    group: xr.DataArray | None = None,
) -> str:
    names = list(forward.data_vars)
    lazy: dict[str, Any] = {}
    labels = None
    if group is not None:
        codes = np.unique(np.asarray(group.values))  # the group labels, computed once
        labels = codes[(codes != 0) & ~pd.isna(codes)]
    for v in names:
        if labels is not None and labels.size:
            lazy[f"group/{v}"] = _ic(
                factor, forward[v], method="spearman", group=group, groups=labels
            )
    # rank IC, IC and quantile returns of every horizon in one pass (factor ranked once)
    lazy["report"] = factor_report(factor, forward, quantiles=quantiles)
    lazy["turnover"] = factor_turnover(factor, quantiles=quantiles)
    lazy["autocorr"] = rank_autocorrelation(factor, lag=1)
    # the reduction point: one compute for every factor statistic
    (done,) = dask.compute(lazy)
    rep = done.pop("report")
    for i, v in enumerate(names):
        done[f"rank_ic/{v}"] = rep["rank_ic"].isel(horizon=i, drop=True).rename("rank_ic")
        done[f"ic/{v}"] = rep["ic"].isel(horizon=i, drop=True).rename("ic")
        done[f"q/{v}"] = rep["quantile_returns"].isel(horizon=i, drop=True)

    rank_ic = pd.DataFrame({v: done[f"rank_ic/{v}"].to_pandas() for v in names})
    pearson_ic = pd.DataFrame({v: done[f"ic/{v}"].to_pandas() for v in names})
    summary = pd.concat(
        [
            ic_summary(xr.Dataset({f"rank IC {v}": done[f"rank_ic/{v}"] for v in names})),
            ic_summary(xr.Dataset({f"IC {v}": done[f"ic/{v}"] for v in names})),
        ]
    )
    summary.index.name = None

    qmeans = pd.DataFrame({v: done[f"q/{v}"].mean("date").to_pandas() for v in names})
    qmeans.index.name = "quantile"
    spreads = {v: quantile_spread(done[f"q/{v}"]).to_pandas() for v in names}
    qtable = qmeans.T * 1e4
    qtable.columns = [f"Q{q}" for q in qmeans.index]
    qtable["top - bottom"] = [spreads[v].mean() * 1e4 for v in names]
    qtable["spread t"] = [
        spreads[v].mean() / (spreads[v].std(ddof=1) / np.sqrt(spreads[v].count())) for v in names
    ]
    turnover = done["turnover"].to_pandas()
    autocorr = done["autocorr"].to_pandas()
    stability = pd.DataFrame(
        {
            "value": [turnover.mean(), autocorr.mean()],
        },
        index=[
            f"top-bucket turnover (Q{quantiles} of {quantiles}, per date)",
            "rank autocorrelation (lag 1)",
        ],
    )

    # cumulative quantile returns on the shortest horizon, non-overlapping periods
    by_h = sorted(names, key=lambda v: (_horizon(v) or 10**9, v))
    short = by_h[0]
    h = _horizon(short) or 1
    qdaily = done[f"q/{short}"].to_pandas().iloc[::h]
    cum_note = (
        f"Compounded from {short} every {h} dates (non-overlapping holding periods)."
        if h > 1
        else f"Compounded from {short}."
    )

    group_html: list[str] = []
    if labels is not None and labels.size:
        by_group = pd.concat(
            {v: ic_summary(done[f"group/{v}"])[["mean", "t_stat", "count"]] for v in names},
            axis=1,
        )
        by_group.columns = [f"{v} {c}" for v, c in by_group.columns]
        by_group.index = [
            f"{g} {SW_L1[g]}" if g in SW_L1 else str(g) for g in by_group.index.tolist()
        ]
        group_html = [
            "<h3>Rank IC by group</h3>",
            _table(by_group, "ic-by-group"),
            '<p class="note">Rank IC computed within each group per date; mean over dates.</p>',
        ]

    parts = [
        '<section id="factor">',
        "<h2>Factor analysis</h2>",
        "<h3>IC summary</h3>",
        _table(summary, "ic-summary"),
        '<p class="note">IR = mean / std of daily IC (not annualised); '
        "t = mean / (std / sqrt(count)); positive = share of dates with IC &gt; 0.</p>",
        _img(
            plots.plot_ic_series(rank_ic, rolling=rolling, title="Rank IC (Spearman) by date"),
            "ic-series",
            "rank IC series",
        ),
        _img(
            plots.plot_ic_histogram(rank_ic, title="Rank IC (Spearman) distribution"),
            "ic-histogram",
            "rank IC histogram",
        ),
        _img(
            plots.plot_ic_series(pearson_ic, rolling=rolling, title="IC (Pearson) by date"),
            "ic-pearson",
            "IC series",
        ),
        *group_html,
        "<h3>Quantile returns</h3>",
        _table(qtable, "quantile-returns", float_format="{:.2f}"),
        '<p class="note">Mean forward return per quantile in bps (1 = lowest factor); '
        "buckets from per-date average ranks cut like pandas.qcut.</p>",
        _img(plots.plot_quantile_bars(qmeans), "quantile-bars", "mean return by quantile"),
        _img(
            plots.plot_quantile_cumulative(qdaily, label=f"({short})"),
            "quantile-cumulative",
            "cumulative quantile returns",
        ),
        f'<p class="note">{html.escape(cum_note)}</p>',
        "<h3>Factor stability</h3>",
        _table(stability, "factor-stability"),
        "</section>",
    ]
    return "\n".join(parts)


def _backtest_returns(backtest: Any, benchmark: Any) -> tuple[pd.Series, pd.Series | None, dict]:
    from quantdask.portfolio.metrics import metrics as _metrics

    if isinstance(backtest, pd.Series):
        returns = backtest.astype(float)
        bench = benchmark
        table = _metrics(returns, bench)
    elif hasattr(backtest, "returns") and hasattr(backtest, "metrics"):
        returns = backtest.returns
        if benchmark is None:
            bench = getattr(backtest, "benchmark_returns", None)
            table = backtest.metrics()
        else:
            bench = benchmark
            table = _metrics(returns, bench, turnover=getattr(backtest, "turnover", None))
    else:
        raise TypeError(
            "backtest must be a BacktestResult from qd.backtest or a pandas Series of "
            f"returns, got {type(backtest)!r}"
        )
    if not isinstance(returns.index, pd.DatetimeIndex):
        raise ValueError("backtest returns need a DatetimeIndex")
    if bench is not None:
        if not isinstance(bench, pd.Series):
            raise TypeError(f"benchmark must be a pandas Series of returns, got {type(bench)!r}")
        bench = bench.reindex(returns.index)
    return returns, bench, table


def _performance_section(backtest: Any, benchmark: Any) -> str:
    returns, bench, table = _backtest_returns(backtest, benchmark)
    rows = {
        k: (v.date().isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in table.items()
    }
    mtable = pd.DataFrame({"value": pd.Series(rows, dtype=object)})
    ruin_date = table.get("ruin_date")
    ruin_note = []
    if ruin_date is not None:
        ruin_date = pd.Timestamp(ruin_date)
        ruin_note = [
            f'<p class="note" id="ruin">The portfolio was ruined on {ruin_date.date()}: '
            "it stopped trading there and the metrics cover the dates up to it.</p>"
        ]
    parts = [
        '<section id="performance">',
        "<h2>Performance</h2>",
        "<h3>Metrics</h3>",
        *ruin_note,
        _table(mtable, "metrics"),
        _img(
            plots.plot_cumulative(returns, bench, ruin_date=ruin_date),
            "cumulative",
            "cumulative returns",
        ),
        _img(plots.plot_drawdown(returns, bench), "drawdown", "drawdown"),
        _img(plots.plot_monthly_heatmap(returns), "monthly", "monthly returns heat map"),
        "</section>",
    ]
    return "\n".join(parts)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def tear_sheet(
    path: str | os.PathLike[str],
    *,
    factor: xr.DataArray | None = None,
    forward: xr.Dataset | xr.DataArray | None = None,
    backtest: Any = None,
    benchmark: pd.Series | None = None,
    title: str = "quantdask tear sheet",
    quantiles: int = 5,
    rolling: int = 20,
    group: xr.DataArray | None = None,
) -> Path:
    """Write a self-contained HTML tear sheet for a factor, a back-test, or both.

    Parameters
    ----------
    path : str or os.PathLike
        The HTML file to write (parent folders are created).
    factor : xarray.DataArray, optional
        Factor values (date, asset). Needs ``forward``.
    forward : xarray.Dataset or xarray.DataArray, optional
        Forward returns, e.g. ``qd.forward_returns(market, periods=(1, 5, 20))``; each
        variable is one horizon.
    backtest : BacktestResult or pandas.Series, optional
        A result of :func:`quantdask.backtest`, or daily portfolio returns by date.
    benchmark : pandas.Series, optional
        Benchmark daily returns by date; default the back-test's own benchmark.
    title : str, default "quantdask tear sheet"
    quantiles : int, default 5
        Quantile buckets for the quantile-return and turnover sections.
    rolling : int, default 20
        Window (dates) of the rolling mean drawn over the IC series.
    group : xarray.DataArray, optional
        Group codes (date, asset), e.g. ``market["daily"]["industry"]``: adds a table of
        the mean rank IC within each group (Shenwan codes are shown with their names).
        Finding the group codes is one extra compute of ``group``.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        If neither a factor nor a back-test is given, or a factor without forward returns.

    Notes
    -----
    A reduction point: all factor statistics (rank IC and IC per horizon, quantile returns,
    turnover, rank autocorrelation) are computed in one ``dask.compute`` on the active
    scheduler (a distributed client when one is connected). Sections: *Performance*
    (metrics table from :func:`quantdask.metrics` / ``BacktestResult.metrics()``,
    cumulative return vs benchmark, drawdown, monthly return heat map) when a back-test is
    given (a ruined back-test, see :func:`quantdask.backtest`, gets a note "ruined on
    <date>", metrics on the dates up to the ruin, and the date marked on the cumulative
    plot, whose title names the scale it uses); *Factor analysis* (IC summary, IC series with rolling mean, IC histogram,
    quantile mean returns, cumulative quantile returns, turnover and rank autocorrelation)
    when a factor is given. Plots are embedded as base64 PNG; the file has no external
    links or assets. Written atomically (temporary file, then rename).

    Examples
    --------
    >>> fwd = qd.forward_returns(market)  # doctest: +SKIP
    >>> qd.tear_sheet("reversal.html", factor=reversal, forward=fwd)  # doctest: +SKIP
    """
    if factor is None and backtest is None:
        raise ValueError("tear_sheet needs a factor (with forward) or a backtest, got neither")
    if factor is not None and forward is None:
        raise ValueError("factor given without forward: pass forward=qd.forward_returns(market)")
    if forward is not None and factor is None:
        raise ValueError("forward given without factor")
    if group is not None and factor is None:
        raise ValueError("group given without factor")
    if group is not None and not isinstance(group, xr.DataArray):
        raise TypeError(f"group must be an xarray.DataArray (date, asset), got {type(group)!r}")
    if benchmark is not None and backtest is None:
        raise ValueError("benchmark given without backtest")
    if factor is not None and not isinstance(factor, xr.DataArray):
        raise TypeError(f"factor must be an xarray.DataArray (date, asset), got {type(factor)!r}")

    sections = []
    if backtest is not None:
        sections.append(_performance_section(backtest, benchmark))
    if factor is not None:
        fwd = _as_forward_dataset(forward)
        sections.append(
            _factor_section(factor, fwd, quantiles=quantiles, rolling=rolling, group=group)
        )

    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="note">Generated by quantdask on {stamp}.</p>',
            *sections,
            "</body></html>",
        ]
    )
    out = Path(path)
    _write_atomic(out, doc)
    return out
