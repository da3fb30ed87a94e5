"""quantdask.kernels: numba / numbagg / bottleneck kernels on plain numpy arrays.

Moving-window kernels (:mod:`quantdask.kernels.moving`) take ``(m, n)`` arrays with time
along the last axis; cross-section kernels (:mod:`quantdask.kernels.cross`) take ``(dates,
assets)`` rows; exact row sorting and average ranks (:mod:`quantdask.kernels.rank`) are
shared by the cross-section ops and the analytics. No xarray here: the labelled, lazy layer
is :mod:`quantdask.ops`.
"""

from quantdask.kernels import cross, moving, rank

__all__ = ["cross", "moving", "rank"]
