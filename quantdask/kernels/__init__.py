"""quantdask.kernels: numba / numbagg / bottleneck kernels on plain numpy arrays.

Moving-window kernels (:mod:`quantdask.kernels.moving`) take ``(m, n)`` arrays with time
along the last axis; cross-section kernels (:mod:`quantdask.kernels.cross`) take ``(dates,
assets)`` rows. No xarray here: the labelled, lazy layer is :mod:`quantdask.ops`.
"""

from quantdask.kernels import cross, moving

__all__ = ["cross", "moving"]
