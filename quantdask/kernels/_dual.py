"""Serial-or-parallel numba dispatch by array size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

#: Arrays with at least this many elements run the parallel (``prange``) build of a kernel.
#: Smaller ones (every block of a dask graph at the stored chunk size) run the serial build:
#: dask already runs blocks in parallel, and a parallel launch costs ~0.1-1 ms per call.
PARALLEL_MIN_SIZE: int = 1 << 22


def dual(py_func: Callable[..., Any]) -> Callable[..., Any]:
    """Compile ``py_func`` twice: serial (cached on disk) and parallel (built on first use).

    The returned function picks the build by the size of its first argument. ``prange``
    loops are plain ``range`` loops in the serial build, so both give the same results.
    """
    serial = numba.njit(cache=True, nogil=True)(py_func)
    parallel = numba.njit(nogil=True, parallel=True)(py_func)

    def call(*args: Any) -> Any:
        build = parallel if args[0].size >= PARALLEL_MIN_SIZE else serial
        return build(*args)

    call.__name__ = py_func.__name__
    call.__doc__ = py_func.__doc__
    call.serial = serial  # type: ignore[attr-defined]
    call.parallel = parallel  # type: ignore[attr-defined]
    return call
