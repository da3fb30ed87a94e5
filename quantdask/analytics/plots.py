"""Plots for tear sheets, rendered to base64 PNG with matplotlib's Agg canvas.

Every function takes small, already computed pandas objects and returns a base64 string
(no pyplot state, no display, no files). Figures are built with :class:`matplotlib.figure.Figure`
and :class:`matplotlib.backends.backend_agg.FigureCanvasAgg`, so importing this module never
changes the user's matplotlib backend.
"""

from __future__ import annotations

import base64
import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

_DPI = 90


def _figure(width: float = 9.0, height: float = 3.2) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _log_if_positive(ax) -> str:
    """Log y-axis when every plotted wealth value is positive (growth reads as slope).

    Returns the scale's description for the title: ``"log scale"``, or ``"linear scale:
    a wealth path reaches 0"`` when some value is ``<= 0`` (a log axis cannot show it).
    """
    ys = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
    ys = [y[np.isfinite(y)] for y in ys]
    if ys and all(y.size == 0 or y.min() > 0 for y in ys):
        ax.set_yscale("log")
        _plain_log_ticks(ax)
        return "log scale"
    return "linear scale: a wealth path reaches 0"


def _plain_number(value: float, pos: object = None) -> str:
    """A tick label without exponents: ``0.5``, ``1``, ``1.2``, ``4``, ``1,024``."""
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _plain_log_ticks(ax) -> None:
    """Plain-number ticks on a log wealth axis (``0.5, 1, 2, 4``, never ``4x10^0``).

    Wealth that moves by a factor of 3 or more gets ticks at powers of 2 (each one a doubling
    or halving); a narrower range gets evenly spaced round numbers (``1, 1.1, 1.2``), as a
    log locator would leave at most one tick there. Minor ticks are not drawn.
    """
    lo, hi = ax.get_ylim()
    if hi / lo >= 3.0:
        ax.yaxis.set_major_locator(LogLocator(base=2.0, numticks=9))
    else:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
    ax.yaxis.set_minor_locator(NullLocator())


def figure_to_base64(fig: Figure) -> str:
    """Render a figure to a base64-encoded PNG string."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def wealth(returns: pd.Series) -> pd.Series:
    """``cumprod(1 + r)`` with missing returns counted as 0."""
    return (1.0 + returns.fillna(0.0)).cumprod()


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Drawdown ``wealth / running max - 1`` (<= 0), the wealth path starting at 1."""
    w = wealth(returns)
    return w / np.maximum(w.cummax(), 1.0) - 1.0


def monthly_returns_table(returns: pd.Series) -> pd.DataFrame:
    """Compounded calendar-month returns as a year x month (1..12) table."""
    r = returns.dropna()
    if not isinstance(r.index, pd.DatetimeIndex):
        raise TypeError("returns need a DatetimeIndex for the monthly table")
    grouped = (1.0 + r).groupby([r.index.year, r.index.month]).prod() - 1.0
    grouped.index.names = ["year", "month"]
    table = grouped.unstack("month")
    return table.reindex(columns=range(1, 13))


def cumulative_figure(
    returns: pd.Series,
    benchmark: pd.Series | None = None,
    *,
    ruin_date: pd.Timestamp | None = None,
) -> Figure:
    """The figure of :func:`plot_cumulative` (for inspection; not rendered).

    Parameters
    ----------
    returns : pandas.Series
        Daily portfolio returns by date.
    benchmark : pandas.Series, optional
        Benchmark daily returns; the benchmark and the excess ``returns - benchmark`` are
        drawn too.
    ruin_date : pandas.Timestamp, optional
        The day the portfolio was ruined (``BacktestResult.ruin_date``): the portfolio and
        excess lines stop there, and a vertical line labelled "ruined on <date>" marks it.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The y-axis is logarithmic when every drawn wealth value is positive, linear otherwise
    (a wealth of 0 cannot be drawn on a log axis); the title names the scale used, so a
    ruin never turns the axis linear silently.
    """
    fig = _figure()
    ax = fig.add_subplot()
    port = returns if ruin_date is None else returns.loc[:ruin_date]
    ax.plot(port.index, wealth(port), label="portfolio", color="C0", lw=1.2)
    if benchmark is not None:
        b = benchmark.reindex(returns.index)
        ax.plot(b.index, wealth(b), label="benchmark", color="0.4", lw=1.0)
        bp = b.reindex(port.index)
        ax.plot(bp.index, wealth(port - bp), label="excess", color="C2", lw=0.9, ls="--")
    ax.axhline(1.0, color="0.7", lw=0.6)
    scale = _log_if_positive(ax)
    title = f"Cumulative return (growth of 1, {scale})"
    if ruin_date is not None:
        day = pd.Timestamp(ruin_date)
        ax.axvline(day, color="C3", lw=1.0, ls=":")
        ax.text(
            day,
            0.5,
            f" ruined on {day.date()}",
            transform=ax.get_xaxis_transform(),
            color="C3",
            fontsize=8,
            ha="left",
            va="center",
        )
        title += f"; ruined on {day.date()}"
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    return fig


def plot_cumulative(
    returns: pd.Series,
    benchmark: pd.Series | None = None,
    *,
    ruin_date: pd.Timestamp | None = None,
) -> str:
    """Cumulative wealth of the portfolio (and benchmark, and excess when given).

    See :func:`cumulative_figure` for the parameters, the scale and the ruin mark.
    """
    return figure_to_base64(cumulative_figure(returns, benchmark, ruin_date=ruin_date))


def drawdown_figure(returns: pd.Series, benchmark: pd.Series | None = None) -> Figure:
    """The figure of :func:`plot_drawdown` (for inspection; not rendered).

    Parameters
    ----------
    returns : pandas.Series
        Daily portfolio returns by date.
    benchmark : pandas.Series, optional
        Benchmark daily returns; its drawdown is drawn as a line.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The legend sits outside the axes, to the right, so it never covers a trough wherever
    the deepest one falls.
    """
    fig = _figure(height=2.6)
    ax = fig.add_subplot()
    dd = drawdown_series(returns)
    ax.fill_between(dd.index, dd.to_numpy() * 100, 0, color="C3", alpha=0.4, label="portfolio")
    if benchmark is not None:
        bd = drawdown_series(benchmark.reindex(returns.index))
        ax.plot(bd.index, bd.to_numpy() * 100, color="0.4", lw=0.9, label="benchmark")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False)
    ax.set_ylabel("%")
    ax.set_title("Drawdown")
    ax.grid(alpha=0.3)
    return fig


def plot_drawdown(returns: pd.Series, benchmark: pd.Series | None = None) -> str:
    """Underwater plot of the portfolio (and benchmark); see :func:`drawdown_figure`."""
    return figure_to_base64(drawdown_figure(returns, benchmark))


def plot_monthly_heatmap(returns: pd.Series) -> str:
    """Year x month heat map of compounded monthly returns, in %."""
    table = monthly_returns_table(returns) * 100
    fig = _figure(height=max(2.0, 0.32 * len(table) + 1.0))
    ax = fig.add_subplot()
    values = table.to_numpy(dtype=float)
    lim = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    im = ax.imshow(values, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(12), [str(m) for m in range(1, 13)])
    ax.set_yticks(range(len(table)), [str(y) for y in table.index])
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7)
    ax.set_title("Monthly returns (%)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return figure_to_base64(fig)


def plot_ic_series(
    ic: pd.DataFrame, *, rolling: int = 20, title: str = "Information coefficient"
) -> str:
    """Daily IC series (one column per label) with its rolling mean.

    Parameters
    ----------
    ic : pandas.DataFrame
        Daily IC by date, one column per label.
    rolling : int, default 20
        Window of the rolling mean drawn over the daily bars.
    title : str, default "Information coefficient"
        The plot's title; name the IC (rank or Pearson) when a page shows both.

    Returns
    -------
    str
        The base64 PNG.
    """
    fig = _figure()
    ax = fig.add_subplot()
    for k, col in enumerate(ic.columns):
        s = ic[col]
        if k == 0:
            ax.bar(s.index, s.to_numpy(), width=1.0, color="0.75", label=f"{col} daily")
        ax.plot(
            s.index,
            s.rolling(rolling, min_periods=rolling).mean(),
            color=f"C{k}",
            lw=1.1,
            label=f"{col} {rolling}-day mean",
        )
    ax.axhline(0.0, color="0.3", lw=0.6)
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    return figure_to_base64(fig)


def plot_ic_histogram(ic: pd.DataFrame, *, title: str = "IC distribution") -> str:
    """Histogram of daily ICs, one overlaid histogram per column, titled ``title``."""
    fig = _figure(width=5.0, height=3.0)
    ax = fig.add_subplot()
    for k, col in enumerate(ic.columns):
        v = ic[col].dropna().to_numpy()
        if v.size:
            ax.hist(v, bins=40, alpha=0.5, color=f"C{k}", label=f"{col} (mean {v.mean():.3f})")
    ax.axvline(0.0, color="0.3", lw=0.6)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    return figure_to_base64(fig)


def plot_quantile_bars(mean_returns: pd.DataFrame) -> str:
    """Mean forward return per quantile (rows) for each horizon (columns), in bps."""
    fig = _figure(width=7.0, height=3.0)
    ax = fig.add_subplot()
    n_q, n_h = mean_returns.shape
    width = 0.8 / max(n_h, 1)
    x = np.arange(n_q)
    for k, col in enumerate(mean_returns.columns):
        ax.bar(x + k * width, mean_returns[col].to_numpy() * 1e4, width=width, label=str(col))
    ax.set_xticks(x + width * (n_h - 1) / 2, [str(q) for q in mean_returns.index])
    ax.set_xlabel("quantile (1 = lowest factor)")
    ax.set_ylabel("bps")
    ax.axhline(0.0, color="0.3", lw=0.6)
    ax.set_title("Mean forward return by quantile")
    ax.legend(frameon=False, fontsize=8)
    return figure_to_base64(fig)


def plot_quantile_cumulative(qret: pd.DataFrame, *, label: str = "") -> str:
    """Cumulative returns of each quantile portfolio (columns) over time."""
    fig = _figure()
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["coolwarm"]
    n = qret.shape[1]
    for k, col in enumerate(qret.columns):
        color = cmap(k / max(n - 1, 1))
        ax.plot(qret.index, wealth(qret[col]), color=color, lw=1.0, label=f"Q{col}")
    ax.axhline(1.0, color="0.7", lw=0.6)
    scale = _log_if_positive(ax)
    ax.set_title(f"Cumulative quantile returns {label} ({scale})".replace("  ", " "))
    ax.legend(loc="upper left", frameon=False, fontsize=8, ncol=min(n, 5))
    ax.grid(alpha=0.3)
    return figure_to_base64(fig)
