"""Back-test the consumer scoring model on a small synthetic market.

Loads the shipped ``consumer`` model (four consumer domains; common factors scored over the
whole consumer universe, domain factors within the domain; 2:1 mix; P/S multiplier
1 / (PS - min(PS) + 1); top 50 weighted by score), back-tests it under A-share rules against
the CSI 300 and writes a tear sheet. ESG scores, policy-uncertainty beta and marketing share
are user inputs the store lacks; they are left out here.

Run::

    python examples/model_consumer.py              # ~1 minute, writes ./quantdask-model-consumer.html
    python examples/model_consumer.py --market my.zarr --out report.html
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_soe import run


def main(argv: list[str] | None = None) -> Path:
    return run("consumer", argv, benchmark="000300.SH", doc=__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
