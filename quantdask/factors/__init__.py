"""quantdask.factors: the factor registry, lazy compute, and the factor library.

Importing this package registers the section-1 market-state factors
(:mod:`quantdask.factors.market_state`).
"""

from __future__ import annotations

import quantdask.factors.fundamental  # noqa: F401  (registers the fundamental factors)
from quantdask.factors import market_state
from quantdask.factors.compute import compute, to_zarr
from quantdask.factors.formulas import expr
from quantdask.factors.inputs import MissingInputError
from quantdask.factors.registry import (
    UNBOUNDED,
    Factor,
    factor,
    list_factors,
    register_factor,
    unregister_factor,
)
from quantdask.factors.sets import factor_set
from quantdask.factors.snapshot import Snapshot, SnapshotWarning, snapshot

__all__ = [
    "market_state",
    "UNBOUNDED",
    "Factor",
    "MissingInputError",
    "Snapshot",
    "SnapshotWarning",
    "compute",
    "expr",
    "factor",
    "factor_set",
    "list_factors",
    "register_factor",
    "snapshot",
    "to_zarr",
    "unregister_factor",
]
