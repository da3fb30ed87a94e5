"""quantdask.factors: the factor registry, lazy compute, and the factor library.

Importing this package registers the section-1 market-state factors
(:mod:`quantdask.factors.market_state`).
"""

from __future__ import annotations

from quantdask.factors.compute import compute, to_zarr
from quantdask.factors.registry import (
    UNBOUNDED,
    Factor,
    factor,
    list_factors,
    register_factor,
    unregister_factor,
)

__all__ = [
    "UNBOUNDED",
    "Factor",
    "compute",
    "factor",
    "list_factors",
    "register_factor",
    "to_zarr",
    "unregister_factor",
]
