"""Tear sheets: self-contained HTML with each section's images and tables."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import quantdask as qd
from quantdask.testing import raise_if_dask_computes

DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')

PERFORMANCE_PLOTS = ("cumulative", "drawdown", "monthly")
FACTOR_PLOTS = ("ic-series", "ic-histogram", "quantile-bars", "quantile-cumulative")


def panel(seed: int = 0, n_dates: int = 260, n_assets: int = 30):
    """A factor that predicts next-day returns, and matching one- and five-day labels."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_dates)
    assets = [f"{600000 + i}.SH" for i in range(n_assets)]
    coords = {"date": dates, "asset": assets}
    f = rng.normal(size=(n_dates, n_assets))
    r1 = 0.002 * f + rng.normal(0, 0.02, size=f.shape)
    f[rng.random(f.shape) < 0.1] = np.nan
    dims = ("date", "asset")
    factor = xr.DataArray(f, dims=dims, coords=coords, name="signal")
    r5 = pd.DataFrame(r1).rolling(5).sum().shift(-4).to_numpy()
    forward = xr.Dataset({"fwd_ret_1": (dims, r1), "fwd_ret_5": (dims, r5)}, coords=coords).chunk(
        {"date": 50}
    )
    returns = pd.Series(rng.normal(4e-4, 0.01, n_dates), index=dates)
    bench = pd.Series(rng.normal(2e-4, 0.009, n_dates), index=dates)
    return factor.chunk({"date": 50}), forward, returns, bench


def external_refs(text: str) -> list[str]:
    """Anything in the HTML (outside embedded images) that would load from elsewhere."""
    bare = DATA_URI.sub('src=""', text)
    found = re.findall(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|<link\b|<script\b|@import", bare)
    found += [s for s in re.findall(r'\b(?:src|href)="([^"]*)"', bare) if s]
    return found


def images(text: str) -> dict[str, bytes]:
    out = {}
    for m in re.finditer(r'id="plot-([\w-]+)"[^>]*src="data:image/png;base64,([^"]+)"', text):
        out[m.group(1)] = base64.b64decode(m.group(2))
    return out


class _TableParser(HTMLParser):
    """Rows of an HTML table as lists of cell texts (stdlib only; no lxml needed)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _num(s: str):
    try:
        return float(s)
    except ValueError:
        return s


def table(text: str, name: str) -> pd.DataFrame:
    m = re.search(rf'<table[^>]*id="table-{name}".*?</table>', text, flags=re.S)
    assert m, f"table {name} missing"
    parser = _TableParser()
    parser.feed(m.group(0))
    header, *body = [r for r in parser.rows if r]
    body = [r for r in body if len(r) == len(header)]
    return pd.DataFrame(
        [[_num(c) for c in r[1:]] for r in body],
        index=[r[0] for r in body],
        columns=header[1:],
    )


def test_factor_only_tear_sheet(tmp_path: Path):
    factor, forward, _, _ = panel()
    out = qd.tear_sheet(tmp_path / "f.html", factor=factor, forward=forward, title="Signal")
    assert isinstance(out, Path) and out.exists()
    text = out.read_text(encoding="utf-8")
    assert external_refs(text) == []
    imgs = images(text)
    for name in FACTOR_PLOTS:
        assert imgs[name].startswith(b"\x89PNG\r\n\x1a\n"), name
    for name in PERFORMANCE_PLOTS:
        assert name not in imgs
    assert 'id="performance"' not in text and 'id="factor"' in text
    assert "<title>Signal</title>" in text

    # the IC summary table holds the scipy mean rank IC per horizon
    summary = table(text, "ic-summary")
    f, r1 = factor.values, forward["fwd_ret_1"].values
    ics = []
    for t in range(f.shape[0]):
        ok = np.isfinite(f[t]) & np.isfinite(r1[t])
        ics.append(stats.spearmanr(f[t][ok], r1[t][ok])[0])
    assert summary.loc["rank IC fwd_ret_1", "mean"] == pytest.approx(np.mean(ics), abs=1e-4)
    assert summary.loc["rank IC fwd_ret_1", "count"] == len(ics)
    assert {"IC fwd_ret_1", "rank IC fwd_ret_5", "IC fwd_ret_5"} <= set(summary.index)
    # quantile table: mean bps per quantile; the planted signal makes Q5 beat Q1
    qtable = table(text, "quantile-returns")
    assert list(qtable.columns[:5]) == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    assert qtable.loc["fwd_ret_1", "Q5"] > qtable.loc["fwd_ret_1", "Q1"]
    assert qtable.loc["fwd_ret_1", "top - bottom"] == pytest.approx(
        qtable.loc["fwd_ret_1", "Q5"] - qtable.loc["fwd_ret_1", "Q1"], abs=0.02
    )
    assert "table-factor-stability" in text


def test_backtest_only_tear_sheet_with_series(tmp_path: Path):
    _, _, returns, bench = panel()
    out = qd.tear_sheet(tmp_path / "sub" / "b.html", backtest=returns, benchmark=bench)
    text = out.read_text(encoding="utf-8")
    assert external_refs(text) == []
    imgs = images(text)
    for name in PERFORMANCE_PLOTS:
        assert imgs[name].startswith(b"\x89PNG"), name
    for name in FACTOR_PLOTS:
        assert name not in imgs
    assert 'id="factor"' not in text
    metrics = table(text, "metrics")["value"]
    want = qd.metrics(returns, bench)
    for key in ("annual_return", "sharpe", "max_drawdown", "excess_annual_return"):
        assert float(metrics[key]) == pytest.approx(want[key], abs=1e-4), key
    # independent check of the headline number: geometric annual return
    growth = np.prod(1 + returns.to_numpy())
    assert float(metrics["annual_return"]) == pytest.approx(
        growth ** (252 / len(returns)) - 1, abs=1e-4
    )


def test_both_sections_with_backtest_result(tmp_path: Path):
    factor, forward, returns, bench = panel(seed=3)
    dates = returns.index
    result = qd.BacktestResult(
        returns=returns,
        benchmark_returns=bench,
        holdings=xr.DataArray(np.zeros((len(dates), 1)), dims=("date", "asset")),
        cash=pd.Series(0.0, index=dates),
        nav=(1 + returns).cumprod(),
        turnover=pd.Series(0.1, index=dates),
        costs=pd.Series(0.0, index=dates),
        trades=pd.DataFrame(columns=["date", "asset", "side", "value", "cost"]),
    )
    path = tmp_path / "both.html"
    path.write_text("old")
    out = qd.tear_sheet(
        path, factor=factor, forward=forward["fwd_ret_5"], backtest=result, title="a <b> & c"
    )
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "a &lt;b&gt; &amp; c" in text
    assert external_refs(text) == []
    imgs = images(text)
    for name in (*PERFORMANCE_PLOTS, *FACTOR_PLOTS):
        assert name in imgs, name
    metrics = table(text, "metrics")["value"]
    assert float(metrics["monthly_win_rate"]) == pytest.approx(
        result.metrics()["monthly_win_rate"], abs=1e-4
    )
    assert "turnover" in metrics.index
    # atomic write leaves no temporary files behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["both.html"]


def test_tear_sheet_computes_once(tmp_path: Path):
    factor, forward, _, _ = panel(n_dates=120)
    with raise_if_dask_computes(max_computes=1):
        qd.tear_sheet(tmp_path / "x.html", factor=factor, forward=forward)


def test_tear_sheet_bad_input(tmp_path: Path):
    factor, forward, returns, bench = panel(n_dates=30)
    with pytest.raises(ValueError, match="neither"):
        qd.tear_sheet(tmp_path / "x.html")
    with pytest.raises(ValueError, match="forward"):
        qd.tear_sheet(tmp_path / "x.html", factor=factor)
    with pytest.raises(ValueError, match="benchmark"):
        qd.tear_sheet(tmp_path / "x.html", factor=factor, forward=forward, benchmark=bench)
    with pytest.raises(TypeError, match="backtest"):
        qd.tear_sheet(tmp_path / "x.html", backtest=[0.01, 0.02])
    with pytest.raises(TypeError, match="factor"):
        qd.tear_sheet(tmp_path / "x.html", factor=factor.values, forward=forward)
    assert not (tmp_path / "x.html").exists()


def test_tear_sheet_ic_by_group(tmp_path: Path):
    factor, forward, _, _ = panel(seed=5, n_dates=80)
    rng = np.random.default_rng(6)
    codes = rng.choice([0, 801010, 801780], size=factor.shape)
    group = xr.DataArray(codes, dims=factor.dims, coords=factor.coords)
    out = qd.tear_sheet(
        tmp_path / "g.html", factor=factor, forward=forward["fwd_ret_1"], group=group
    )
    text = out.read_text(encoding="utf-8")
    by_group = table(text, "ic-by-group")
    assert list(by_group.index) == ["801010 Agriculture", "801780 Banks"]
    f, r = factor.values, forward["fwd_ret_1"].values
    for code, row in ((801010, "801010 Agriculture"), (801780, "801780 Banks")):
        ics = []
        for t in range(f.shape[0]):
            ok = np.isfinite(f[t]) & np.isfinite(r[t]) & (codes[t] == code)
            ics.append(stats.spearmanr(f[t][ok], r[t][ok])[0])
        assert by_group.loc[row, "fwd_ret_1 mean"] == pytest.approx(np.mean(ics), abs=1e-4)
    with pytest.raises(ValueError, match="group"):
        qd.tear_sheet(tmp_path / "y.html", backtest=pd.Series([0.0]), group=group)


def test_tear_sheet_on_synthetic_market(market, tmp_path: Path):
    daily = market["daily"]
    close = daily["close"]
    reversal = -(close / close.shift(date=20) - 1.0)
    forward = qd.forward_returns(market, periods=(5,))
    dates = qd.rebalance_dates(market, freq="M")
    result = qd.backtest(market, qd.select_weights(reversal, dates=dates, top=20))
    out = qd.tear_sheet(
        tmp_path / "market.html",
        factor=reversal,
        forward=forward,
        backtest=result,
        benchmark=result.returns * 0.0,
        title="reversal",
    )
    text = out.read_text(encoding="utf-8")
    assert external_refs(text) == []
    imgs = images(text)
    for name in (*PERFORMANCE_PLOTS, *FACTOR_PLOTS):
        assert imgs[name].startswith(b"\x89PNG"), name
    # the planted reversal effect shows in the report's own table
    summary = table(text, "ic-summary")
    assert summary.loc["rank IC fwd_ret_5", "mean"] > 0


# -- what the plots show ------------------------------------------------------------------------
@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every figure the tear sheet renders, in order (still rendered to PNG as usual)."""
    from quantdask.analytics import plots

    figures = []
    render = plots.figure_to_base64

    def record(fig):
        figures.append(fig)
        return render(fig)

    monkeypatch.setattr(plots, "figure_to_base64", record)
    return figures


def _titles(figures: list) -> list[str]:
    return [fig.axes[0].get_title() for fig in figures]


def test_every_plot_has_its_own_title(tmp_path: Path, rendered: list):
    factor, forward, returns, bench = panel()
    qd.tear_sheet(
        tmp_path / "t.html", factor=factor, forward=forward, backtest=returns, benchmark=bench
    )
    titles = _titles(rendered)
    assert len(titles) == len(set(titles)), titles
    assert any(t.startswith("Rank IC (Spearman)") for t in titles), titles
    assert any(t.startswith("IC (Pearson)") for t in titles), titles


def _tick_texts(axis, *, minor: bool = False) -> list[str]:
    lo, hi = sorted(axis.get_view_interval())
    ticks = axis.get_minorticklocs() if minor else axis.get_majorticklocs()
    labels = axis.get_ticklabels(minor=minor)
    return [t.get_text() for loc, t in zip(ticks, labels, strict=True) if lo <= loc <= hi]


def _assert_plain_log_axis(ax) -> list[str]:
    assert ax.get_yscale() == "log"
    ax.figure.canvas.draw()
    major = [t for t in _tick_texts(ax.yaxis) if t]
    assert len(major) >= 2, major
    for text in major:
        assert float(text) > 0, text  # plain numbers such as 0.5 or 4, no 4x10^0 / $...$
    assert not any(_tick_texts(ax.yaxis, minor=True)), "minor ticks are unlabelled"
    return major


@pytest.mark.parametrize(
    ("growth", "expect"),
    [(8.0, {"1", "2", "4"}), (0.25, {"0.5", "1"}), (1.3, {"1", "1.2"})],
)
def test_log_wealth_axes_have_plain_tick_labels(growth: float, expect: set[str]):
    from quantdask.analytics import plots

    idx = pd.bdate_range("2020-01-01", periods=300)
    returns = pd.Series(growth ** (1 / 300) - 1, index=idx)
    major = _assert_plain_log_axis(plots.cumulative_figure(returns).axes[0])
    assert expect <= set(major), major


def test_tear_sheet_log_axes_have_plain_tick_labels(tmp_path: Path, rendered: list):
    factor, forward, returns, bench = panel()
    qd.tear_sheet(
        tmp_path / "t.html", factor=factor, forward=forward, backtest=returns, benchmark=bench
    )
    logs = [fig.axes[0] for fig in rendered if fig.axes[0].get_yscale() == "log"]
    assert len(logs) == 2  # the cumulative and the quantile-cumulative plots
    for ax in logs:
        _assert_plain_log_axis(ax)


@pytest.mark.parametrize("where", ["early", "late"])
def test_drawdown_legend_leaves_the_trough_visible(where: str):
    from matplotlib.dates import date2num

    from quantdask.analytics import plots

    idx = pd.bdate_range("2020-01-01", periods=400)
    r = np.full(len(idx), 5e-4)
    crash = slice(0, 12) if where == "early" else slice(388, 400)
    r[crash] = -0.02  # the deepest trough, at the lower left or the lower right
    returns = pd.Series(r, index=idx)
    bench = pd.Series(np.where(np.arange(len(idx)) % 50 < 25, -2e-3, 2e-3), index=idx)
    fig = plots.drawdown_figure(returns, bench)
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend()
    assert legend is not None
    box = legend.get_window_extent(fig.canvas.get_renderer())
    dd = plots.drawdown_series(returns) * 100
    for series in (dd, plots.drawdown_series(bench) * 100):
        day = series.idxmin()
        x, y = ax.transData.transform((date2num(day), series.min()))
        assert not box.contains(x, y), (where, day, box)
