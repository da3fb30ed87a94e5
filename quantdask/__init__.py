"""quantdask: factor research over the whole Chinese A-share market on Dask.

The documented import is ``import quantdask as qd``. Data flows one way::

    store (io) -> lazy panel -> kernels -> ops -> factors -> per-rebalance reduction -> results

Each import block below re-exports one layer's public functions, in data-flow order.
"""

from __future__ import annotations

# [io] market store: layout, open, synthetic market, ingest
from quantdask.io.store import StoreError, open_market, open_panel

# [ops] time-series and cross-section ops

# [factors] registry, compute, snapshot

# [fundamentals/models] point-in-time fundamentals and scoring models

# [portfolio] rebalance dates, weights, back-test, metrics

# [analytics] forward returns, IC, quantiles, tear sheets

# [cluster] connect and sweeps

# [timing] DTW and offshore-flow timing

__version__ = "0.1.0"

__all__ = [
    # [io]
    "StoreError",
    "open_market",
    "open_panel",
    # [ops]
    # [factors]
    # [fundamentals/models]
    # [portfolio]
    # [analytics]
    # [cluster]
    # [timing]
    "__version__",
]
