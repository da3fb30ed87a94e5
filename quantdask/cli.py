"""The ``quantdask`` command line: ``quantdask demo`` and store utilities."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path


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
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``quantdask`` command."""
    parser = argparse.ArgumentParser(
        prog="quantdask", description="Factor research over the A-share market on Dask."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="build a synthetic market and run the main job on it")
    d.add_argument("--assets", type=int, default=800, help="assets ever listed (default 800)")
    d.add_argument("--start", default="2019-01-01", help="first date (default 2019-01-01)")
    d.add_argument("--end", default="2024-12-31", help="last date (default 2024-12-31)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument(
        "--out", type=Path, default=Path("quantdask-demo"), help="output folder (./quantdask-demo)"
    )
    d.add_argument("--overwrite", action="store_true", help="rebuild the store")

    v = sub.add_parser("verify", help="check a market store against the layout")
    v.add_argument("path", type=Path)
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
        )
    if args.command == "verify":
        import quantdask as qd

        report = qd.verify(args.path, repair=args.repair)
        print(report)
        return 0 if report.ok else 1
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
