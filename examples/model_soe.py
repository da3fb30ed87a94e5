"""Back-test the state-owned-enterprise scoring model on a small synthetic market.

Loads the shipped ``soe`` model (common dividend/quality factors + industry-specific factors,
30/70 mix, top 50, score**3 weights), scores it on month-end rebalance dates, back-tests it
under A-share rules against the CSI SOE index and writes a tear sheet.

The configured universe is the CSI SOE index; a 150-stock synthetic market's CSI SOE has
only ~20 members (the model keeps its top 50), so by default the index filter is dropped (all
listed stocks form the universe) and the back-test is still judged against the CSI SOE
index; pass ``--soe-index`` to keep the configured universe.

Run::

    python examples/model_soe.py                        # ~1 minute, writes ./quantdask-model-soe.html
    python examples/model_soe.py --market my.zarr --out report.html --soe-index
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import quantdask as qd


def run(
    name: str,
    argv: list[str] | None,
    *,
    benchmark: str,
    doc: str,
    overrides: dict | None = None,
    extra_args=None,
    after=None,
) -> Path:
    """Shared driver of the model examples: build/open a market, score, back-test, report."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--market", type=Path, help="existing market store (default: build one)")
    parser.add_argument("--assets", type=int, default=150, help="synthetic market size")
    parser.add_argument("--start", default="2015-01-01")
    parser.add_argument("--end", default="2019-12-31")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(f"quantdask-model-{name}.html"),
        help=f"tear sheet to write (default: quantdask-model-{name}.html here)",
    )
    if extra_args is not None:
        extra_args(parser)
    args = parser.parse_args(argv)
    if extra_args is not None and getattr(args, "soe_index", False):
        overrides = None

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quantdask-") as tmp:
        path = args.market
        if path is None:
            path = Path(tmp) / "market.zarr"
            qd.synthetic_market(path, n_assets=args.assets, start=args.start, end=args.end, seed=3)
        out = _score_and_report(path, name, args.out, benchmark, overrides, after)
    print(f"tear sheet: {out}  ({time.perf_counter() - t0:.1f} s)")
    return out


def _score_and_report(path, name, out_path, benchmark, overrides, after) -> Path:
    market = qd.open_market(path)
    model = qd.load_model(name, overrides=overrides)
    print(model)
    # the first year is history for the year-on-year factors
    dates = qd.rebalance_dates(market, "M")[12:]
    table = model.score_table(market, dates)
    print(f"universe per date: {int(table['universe'].sum('asset').median())} stocks (median)")
    if table.attrs["skipped_inputs"]:
        print(f"user inputs not supplied (left out): {', '.join(table.attrs['skipped_inputs'])}")
    result = model.backtest(market, dates, costs=qd.Costs(), benchmark=benchmark)
    m = result.metrics()
    for key in ("annual_return", "annual_volatility", "sharpe", "calmar", "max_drawdown",
                "excess_annual_return", "monthly_win_rate"):  # fmt: skip
        print(f"  {key:22s} {m[key]: .4f}")
    if after is not None:
        after(market)
    return qd.tear_sheet(out_path, backtest=result, title=f"quantdask model: {name}")


def main(argv: list[str] | None = None) -> Path:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--soe-index", action="store_true", help="keep the CSI SOE index universe filter"
        )

    return run(
        "soe",
        argv,
        benchmark="000955.CSI",
        doc=__doc__,
        overrides={"universe": {"index": None}},
        extra_args=extra,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
