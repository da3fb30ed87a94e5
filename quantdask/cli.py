"""The ``quantdask`` command line: ``quantdask demo`` and store utilities."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import xarray as xr


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _done(t0: float) -> None:
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)


def demo(
    *,
    out: Path,
    n_assets: int,
    start: str,
    end: str,
    seed: int,
    overwrite: bool,
    workers: int = 2,
) -> int:
    """Build a synthetic market, open it and print a summary (the main job).

    Parameters
    ----------
    out : pathlib.Path
        Folder for the store and reports.
    n_assets : int
        Assets ever listed in the synthetic market.
    start, end : str
        First and last calendar date of the history.
    seed : int
        Random seed; the market is deterministic by seed.
    overwrite : bool
        Rebuild the store even when one with the same parameters exists.
    workers : int, default 2
        Worker processes of the LocalCluster the research steps run on (0: threads in
        this process).

    Returns
    -------
    int
        Process exit code.
    """
    import quantdask as qd
    from quantdask.io.summary import summarize_market

    out.mkdir(parents=True, exist_ok=True)
    store = out / "market.zarr"
    t0 = _step(f"synthetic market: {n_assets:,} assets, {start} .. {end}, seed {seed} -> {store}")
    wanted = {"n_assets": n_assets, "start": start, "end": end, "seed": seed}
    if store.exists() and not overwrite and _store_params(store) == wanted:
        print("   reusing the existing store (same parameters; --overwrite rebuilds it)")
    else:
        qd.synthetic_market(store, overwrite=True, progress=True, **wanted)
    _done(t0)

    t0 = _step("open and summarize")
    market = qd.open_market(store)
    print(summarize_market(market))
    _done(t0)

    client = None
    if workers > 0:
        t0 = _step(f"dask cluster: LocalCluster with {workers} worker processes")
        client = qd.connect(n_workers=workers, threads_per_worker=1, dashboard_address=":0")
        _done(t0)
    try:
        _research(market, out)
    finally:
        if client is not None:
            client.close()
    closed = " (the cluster and its dashboard are closed)" if client is not None else ""
    print(f"\nreports in {out.resolve()}/{closed}")
    return 0


def _research(market: xr.DataTree, out: Path) -> None:
    """Factors, the daily snapshot, factor analytics and a simple model's back-test."""
    import quantdask as qd

    last = pd.Timestamp(market["daily"]["date"].values[-1])
    t0 = _step("section-1 factors for every stock over the whole history -> factors.zarr")
    factors = [
        qd.factor("close_vs_ma", window=20),
        qd.factor("close_vs_ma", window=250),
        qd.factor("close_vs_high", window=250),
        qd.factor("ret_skew", window=250),
        qd.factor("streak", freq="W"),
        "turnover",
    ]
    ds = qd.compute(market, factors)
    qd.to_zarr(ds, out / "factors.zarr", mode="w")
    print(
        f"   {', '.join(ds.data_vars)}: {ds.sizes['date']:,} dates x {ds.sizes['asset']:,} assets"
    )
    _done(t0)

    t0 = _step(f"broad-index snapshot on {last:%Y-%m-%d} -> snapshot.html")
    snap = qd.snapshot(market, last)
    print(snap.to_markdown())
    _write_text(out / "snapshot.html", snap.to_html())
    _done(t0)

    t0 = _step("factor analytics: 20-day reversal vs forward returns -> factor_tear_sheet.html")
    close = market["daily"]["close"]
    reversal = -qd.factor("close_vs_ma", window=20)(market)
    forward = qd.forward_returns(market, periods=(1, 5, 20))
    print(qd.ic_summary(qd.ic(reversal, forward["fwd_ret_20"])).round(4).to_string())
    dates = qd.rebalance_dates(market, freq="M")
    top_quintile = qd.select_weights(reversal, dates=dates, quantile=0.2)
    factor_bt = qd.backtest(market, top_quintile, costs=qd.Costs(), benchmark="equal")
    qd.tear_sheet(
        out / "factor_tear_sheet.html",
        factor=reversal,
        forward=forward,
        backtest=factor_bt,
        title="20-day reversal (close vs 20-day MA, negated): factor and top quintile",
    )
    _done(t0)

    t0 = _step("simple model: reversal + value composite, top 50, score^3 -> model_tear_sheet.html")
    daily = market["daily"]
    value = 1.0 / daily["pb"].where(daily["pb"] > 0)
    score = (qd.cs_rank(reversal) + qd.cs_rank(value)) * 50.0
    tradable = ~daily["is_st"] & close.notnull()
    weights = qd.select_weights(
        score, dates=dates, top=50, universe=tradable, weighting="score", power=3, cap=0.05
    )
    model_bt = qd.backtest(market, weights, costs=qd.Costs(), benchmark="000300.SH")
    metrics = model_bt.metrics()
    for key in (
        "annual_return",
        "annual_volatility",
        "sharpe",
        "max_drawdown",
        "excess_annual_return",
        "monthly_win_rate",
    ):
        print(f"   {key:<22} {metrics[key]: .4f}")
    qd.tear_sheet(
        out / "model_tear_sheet.html",
        backtest=model_bt,
        title="Reversal + value composite, top 50, weights score^3 (vs CSI 300)",
    )
    _done(t0)


def _write_text(path: Path, text: str) -> None:
    """Write a text file atomically (temporary sibling, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _store_params(store: Path) -> dict[str, object] | None:
    """The generator parameters recorded in a synthetic store's attributes, if any."""
    import zarr

    from quantdask.io.store import zarr_quiet

    try:
        with zarr_quiet():
            attrs = dict(zarr.open_group(store, mode="r").attrs)
    except Exception:  # any unreadable store is simply rebuilt
        return None
    params = attrs.get("synthetic")
    return dict(params) if isinstance(params, dict) else None


def _non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (argparse turns the ValueError into exit code 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


_DEMO_DESCRIPTION = """\
Build a deterministic synthetic A-share market (a zarr store), then run the main job on it:
section-1 factors for every stock (factors.zarr), the broad-index snapshot on the last date
(snapshot.html), and tear sheets of a 20-day reversal factor (factor_tear_sheet.html) and of
a simple reversal + value model's back-test against CSI 300 (model_tear_sheet.html), in --out.
A second run with the same parameters reuses the store."""

_VERIFY_DESCRIPTION = """\
Check a market store against the layout contract (quantdask.io.schema) and print one line
per problem. Checked: the nodes (daily, index, fundamentals, macro; offshore when present);
every schema field with its dims, dtype and stored chunk shape; the per-asset coordinates;
dates sorted, unique, weekdays and Shanghai exchange sessions, the same calendar on every
date node; asset and index labels unique, of known code formats, stored as fixed-width
strings; no non-positive prices or negative volumes, high >= low, no close on a suspended
day; index weights in [0, 1] summing to 1 per (date, index); announcements not before their
period end; and a leftover journal of an interrupted append (--repair rolls it back).

exit codes: 0 when the store passes every check, 1 when a problem was found (or the path is
not a readable store), 2 on a usage error."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``quantdask`` command."""
    parser = argparse.ArgumentParser(
        prog="quantdask", description="Factor research over the A-share market on Dask."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "demo",
        help="build a synthetic market and run the main job on it",
        description=_DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--assets", type=int, default=800, help="assets ever listed (default 800)")
    d.add_argument("--start", default="2019-01-01", help="first date (default 2019-01-01)")
    d.add_argument("--end", default="2024-12-31", help="last date (default 2024-12-31)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument(
        "--out",
        type=Path,
        default=Path("quantdask-demo"),
        help="output folder (default ./quantdask-demo)",
    )
    d.add_argument("--overwrite", action="store_true", help="rebuild the store")
    d.add_argument(
        "--workers",
        type=_non_negative_int,
        default=2,
        help="LocalCluster worker processes (default 2; 0: threads in this process, no cluster)",
    )

    v = sub.add_parser(
        "verify",
        help="check a market store against the layout",
        description=_VERIFY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("path", type=Path, help="the market store directory")
    v.add_argument("--repair", action="store_true", help="roll back an interrupted append")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``quantdask`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        Process exit code.
    """
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        if args.assets < 10:
            print("quantdask demo: --assets must be at least 10", file=sys.stderr)
            return 2
        return demo(
            out=args.out,
            n_assets=args.assets,
            start=args.start,
            end=args.end,
            seed=args.seed,
            overwrite=args.overwrite,
            workers=args.workers,
        )
    if args.command == "verify":
        import quantdask as qd

        report = qd.verify(args.path, repair=args.repair)
        print(report)
        return 0 if report.ok else 1
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
