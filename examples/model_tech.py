"""Back-test the technology scoring model on a small synthetic market.

Loads the shipped ``tech`` model (technology industries with R&D / revenue > 5% or R&D staff
> 10% of employees; life-cycle stages "growth" (introduction + growth) and "mature" scored
separately; total = mean(S)/5 + mean(S)/std(S) times the industry R&D multiplier; top 50
weighted by score), back-tests it under A-share rules against the CSI 300 and writes a tear
sheet. Patents, the "average distance" and the R&D amortization / direct R&D shares are user
inputs the store lacks; they are left out here (pass them as
``model.scores(market, dates, inputs={"patents": panel, ...})``).

Run::

    python examples/model_tech.py                  # ~1 minute, writes ./quantdask-model-tech.html
    python examples/model_tech.py --market my.zarr --out report.html
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_soe import run


def main(argv: list[str] | None = None) -> Path:
    return run("tech", argv, benchmark="000300.SH", doc=__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
