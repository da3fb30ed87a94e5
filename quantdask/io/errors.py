"""The errors and warnings of reading vendor data (:mod:`quantdask.io.ingest`, :mod:`quantdask.io.vendor`).

Kept apart so both modules raise them without importing each other.
"""

from __future__ import annotations

__all__ = ["IngestError", "IngestWarning"]


class IngestWarning(UserWarning):
    """Something :func:`~quantdask.io.ingest.ingest` or ``append`` derived, inferred or found suspicious.

    Raised once per finding and call, after the store is written, with counts and examples:
    a derived adjustment factor, stale assets treated as delisted, closes outside
    ``[low, high]``, returns beyond the board's price limit, off-calendar rows dropped.
    """


class IngestError(ValueError):
    """Bad input to :func:`~quantdask.io.ingest.ingest` or ``append``.

    The message names the input (file path or ``DataFrame <keyword>``), the row (1-based, data
    rows after the header; CSV inputs also give the file line) and the field.
    """
