"""Test helpers for quantdask and for users testing their own factors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask


class CountingScheduler:
    """A dask scheduler that counts calls and raises once more than ``max_computes`` happen.

    Parameters
    ----------
    max_computes : int
        Number of compute calls allowed before the next one raises ``RuntimeError``.
    """

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"Too many computes. Total: {self.total_computes} > max: {self.max_computes}."
            )
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[CountingScheduler]:
    """Raise if the code inside the block triggers more than ``max_computes`` dask computes.

    Parameters
    ----------
    max_computes : int, default 0
        How many computes are allowed.

    Yields
    ------
    CountingScheduler
        Its ``total_computes`` tells how many computes happened.

    Examples
    --------
    >>> import dask.array as da
    >>> from quantdask.testing import raise_if_dask_computes
    >>> with raise_if_dask_computes():
    ...     y = da.ones(10, chunks=5) + 1  # building a graph computes nothing
    """
    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler
