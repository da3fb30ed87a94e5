"""Heat map of a sweep metric over two parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr


def plot_sweep(
    ds: xr.Dataset,
    metric: str,
    *,
    x: str,
    y: str,
    sel: Mapping[str, Any] | None = None,
    ax: Any = None,
    cmap: str = "RdYlGn",
    annotate: bool = True,
    fmt: str = ".3g",
) -> Any:
    """Draw a heat map of ``metric`` over the parameters ``x`` and ``y`` of a sweep result.

    Parameters
    ----------
    ds : xarray.Dataset
        Result of :func:`quantdask.sweep` / :func:`quantdask.open_sweep` over a product grid.
    metric : str
        Name of a scalar output (e.g. ``"ic_ir"``).
    x, y : str
        Parameters on the horizontal and vertical axes.
    sel : dict, optional
        Values of the remaining parameters (``{"lag": 5}``); required when the grid has more
        than two parameters.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when omitted.
    cmap : str, default "RdYlGn"
        Matplotlib colormap; failed or missing cells are drawn grey.
    annotate : bool, default True
        Write each cell's value in it.
    fmt : str, default ".3g"
        Format of the annotations.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If ``metric``, ``x`` or ``y`` is not in ``ds``, ``x == y``, or other dims are left
        unselected.

    Notes
    -----
    Loads the selected 2-D slice (a reduction point); the sweep result is small.
    """
    import matplotlib.pyplot as plt

    if metric not in ds.data_vars:
        raise ValueError(f"metric {metric!r} is not in the sweep; outputs: {list(ds.data_vars)}")
    if x == y:
        raise ValueError(f"x and y must be different parameters, got {x!r} twice")
    for name, axis in ((x, "x"), (y, "y")):
        if name not in ds[metric].dims:
            raise ValueError(f"{axis}={name!r} is not a dimension of {metric!r}: {ds[metric].dims}")
    da = ds[metric]
    if sel:
        da = da.sel(dict(sel))
    left = [d for d in da.dims if d not in (x, y)]
    if left:
        raise ValueError(
            f"{metric!r} still has dims {left} besides {x!r} and {y!r}; fix them with sel="
        )
    da = da.transpose(y, x)
    values = np.ma.masked_invalid(np.asarray(da.values, dtype=float))
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.6 * da.sizes[x], 1.0 + 0.45 * da.sizes[y]))
    cm = plt.get_cmap(cmap).with_extremes(bad="lightgrey")
    mesh = ax.imshow(values, cmap=cm, aspect="auto", origin="lower")
    ax.set_xticks(range(da.sizes[x]), [str(v) for v in da[x].values])
    ax.set_yticks(range(da.sizes[y]), [str(v) for v in da[y].values])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    title = metric + ("" if not sel else " (" + ", ".join(f"{k}={v}" for k, v in sel.items()) + ")")
    ax.set_title(title)
    ax.figure.colorbar(mesh, ax=ax, label=metric)
    if annotate:
        for (r, c), v in np.ndenumerate(values.filled(np.nan)):
            ax.text(
                c,
                r,
                "fail" if np.isnan(v) else format(v, fmt),
                ha="center",
                va="center",
                fontsize=7,
            )
    return ax


__all__ = ["plot_sweep"]
