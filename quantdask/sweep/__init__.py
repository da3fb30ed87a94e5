"""Parameter-grid sweeps on a dask cluster: resumable, fault tolerant, written to zarr."""

from quantdask.sweep.core import open_sweep, sweep, sweep_summary
from quantdask.sweep.plot import plot_sweep

__all__ = ["open_sweep", "plot_sweep", "sweep", "sweep_summary"]
