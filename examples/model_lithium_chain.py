"""Back-test the lithium-battery industry-chain model on a small synthetic market.

Loads the shipped ``lithium_chain`` model (upstream / midstream / downstream segments;
capacity expansion and R&D intensity scored within the segment; penalty for R&D far below the
segment median; boost for segments whose aggregate gross margin rose over the year),
back-tests it against the CSI 300, prints each segment's profitability and the three-tier
(top / middle / bottom third) test of both factors by industry, and writes a tear sheet.

Run::

    python examples/model_lithium_chain.py         # ~1 minute, writes ./quantdask-model-lithium_chain.html
    python examples/model_lithium_chain.py --market my.zarr --out report.html
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_soe import run

import quantdask as qd
from quantdask.models.chain import tier_summary


def chain_study(market) -> None:
    """Segment profitability and the three-tier tests of the two chain factors."""
    segments = qd.load_model("lithium_chain").config.grouping.groups
    prof = qd.segment_profitability(market, {k: list(v) for k, v in segments.items()})
    print("segment gross margin (TTM, aggregate), last 4 month-ends:")
    print(prof.tail(4).round(4).to_string())
    dates = qd.rebalance_dates(market, "M")[12:]
    for name in ("capacity_expansion", "rd_intensity"):
        summary = tier_summary(qd.tier_returns(market, name, dates=dates))
        print(
            f"{name}: tiers by industry, mean monthly long-short "
            f"{summary['long_short'].mean():+.4%} over {len(summary)} industries"
        )


def main(argv: list[str] | None = None) -> Path:
    return run("lithium_chain", argv, benchmark="000300.SH", doc=__doc__, after=chain_study)


if __name__ == "__main__":
    main(sys.argv[1:])
