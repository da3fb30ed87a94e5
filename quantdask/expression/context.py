"""What an expression's inputs mean: fields by level and semantics, and each semantics' rules.

A :class:`Context` is built once per evaluation (one level of one sliced market) and caches
every input it reads, so each stored field is read once however many expressions use it.

Input names (``$name`` in formulas)
-----------------------------------
``semantics="strict"`` (quantdask's names and units, :mod:`quantdask.io.schema`):

* any field of the level's node: ``close``, ``open``, ``high``, ``low``, ``pre_close``,
  ``vol`` (lots), ``amount`` (thousand CNY), ``turnover_rate``, ``pe_ttm``, ...; at the
  ``index`` level the ``index`` node's fields;
* ``adj_open``, ``adj_high``, ``adj_low``, ``adj_close``: backward-adjusted prices
  (``price * adj_factor``; index points as they are);
* ``vwap`` (``amount / vol`` in CNY per share) and ``adj_vwap``;
* ``returns``: the daily return, :func:`quantdask.ops.daily_returns` (NaN when not traded);
* ``node/field`` (``macro/cgb_10y``): a field of another date node, on the level's dates.

``semantics="qlib"`` (qlib's data conventions, so qlib formulas mean what they mean there):
``open``, ``high``, ``low``, ``close``, ``vwap`` are adjusted prices (``price * factor``),
``volume`` is ``shares / factor`` (stocks; shares at the index level), ``factor`` the
adjustment factor, ``change`` ``close / pre_close - 1``, ``amount`` in CNY; all as float32 as
in qlib's ``.bin`` files. Any other name is the store's field as float32.

Semantics rules
---------------
Strict: windows need every row valid; comparisons and logic are NaN where an input is NaN;
``If`` is NaN where its condition is. qlib: windows use ``min_periods=1`` and skip NaN;
comparisons are false (0) on NaN, and every value that does not come from a NaN input
(comparisons, logic, ``If``, ``Count``, ``IdxMax``) is kept only inside each instrument's
span (from its ``list_date`` to its last bar; before that there is no row in qlib).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from quantdask.ops import daily_returns

#: The semantics an expression can be bound to.
SEMANTICS: tuple[str, ...] = ("strict", "qlib")

_ADJUSTED = ("open", "high", "low", "close")


class InputError(ValueError):
    """An expression reads an input the market does not have."""


def check_semantics(semantics: Any) -> str:
    """``semantics`` if it is one of :data:`SEMANTICS`, else a ``ValueError``."""
    if semantics not in SEMANTICS:
        raise ValueError(f"semantics must be one of {SEMANTICS}, got {semantics!r}")
    return str(semantics)


def field_inputs(name: str, level: str, semantics: str) -> tuple[str, ...]:
    """Store paths (``"daily/close"``) an input name reads at ``level`` under ``semantics``.

    Parameters
    ----------
    name : str
        An input name as in formulas, without the ``$``.
    level : {"asset", "index"}
    semantics : {"strict", "qlib"}

    Returns
    -------
    tuple of str
        Paths checked by :func:`quantdask.factors.inputs.missing_inputs` before evaluation.
    """
    node = "daily" if level == "asset" else "index"
    adj = ("daily/adj_factor",) if level == "asset" else ()
    if "/" in name:
        return (name,)
    if semantics == "qlib":
        if name in _ADJUSTED:
            return (f"{node}/{name}", *adj)
        if name == "vwap":
            return (f"{node}/amount", f"{node}/vol", *adj)
        if name == "volume":
            return (f"{node}/vol", *adj)
        if name == "factor":
            return adj or (f"{node}/close",)
        if name == "change":
            return (f"{node}/close", f"{node}/pre_close")
        return (f"{node}/{name}",)
    if name.startswith("adj_") and name[4:] in _ADJUSTED:
        return (f"{node}/{name[4:]}", *adj)
    if name in ("vwap", "adj_vwap"):
        return (f"{node}/amount", f"{node}/vol", *(adj if name == "adj_vwap" else ()))
    if name == "returns":
        return (f"{node}/close", f"{node}/pre_close")
    return (f"{node}/{name}",)


class Context:
    """Inputs and rules of one evaluation: a level of a (sliced) market, a semantics.

    Parameters
    ----------
    market : xarray.DataTree
        The market, date nodes already sliced to the rows the evaluation needs.
    level : {"asset", "index"}
        ``"asset"`` reads the ``daily`` node, ``"index"`` the ``index`` node.
    semantics : {"strict", "qlib"}
        The conventions (module docstring).
    """

    def __init__(self, market: xr.DataTree, level: str, semantics: str) -> None:
        self.market = market
        self.level = level
        self.semantics = check_semantics(semantics)
        self.node_name = "daily" if level == "asset" else "index"
        if self.node_name not in market.children:
            raise InputError(f"level={level!r} needs the market's {self.node_name!r} node")
        node = market[self.node_name].to_dataset(inherit=False)
        self._coords = node.coords
        # non-index coordinates are dask-backed in the store; keep bare data so that
        # arithmetic between inputs never compares them eagerly
        self.node = node.reset_coords(drop=True)
        if level == "index" and "weight" in self.node:
            self.node = self.node.drop_vars("weight")
        self.dates = self.node.indexes["date"]
        self._cache: dict[str, xr.DataArray] = {}
        self._span: xr.DataArray | None = None

    # ---- inputs ------------------------------------------------------------------------

    def _stored(self, name: str) -> xr.DataArray:
        if name not in self.node.data_vars:
            raise InputError(
                f"the {self.node_name!r} node has no field {name!r} "
                f"(fields: {', '.join(sorted(map(str, self.node.data_vars)))})"
            )
        return self.node[name]

    def _adjusted(self, name: str) -> xr.DataArray:
        px = self._stored(name)
        if self.level == "asset":
            px = px * self._stored("adj_factor")
        return px

    def _vwap(self) -> xr.DataArray:
        vol = self._stored("vol")
        # amount: thousand CNY; vol: lots of 100 shares -> CNY per share
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self._stored("amount") * 10.0 / vol).where(vol > 0)

    def _other_node(self, path: str) -> xr.DataArray:
        node, _, name = path.partition("/")
        if node not in self.market.children:
            raise InputError(f"input {path!r}: the market has no {node!r} node")
        ds = self.market[node].to_dataset(inherit=False).reset_coords(drop=True)
        if name not in ds.data_vars:
            raise InputError(f"input {path!r}: the {node!r} node has no field {name!r}")
        da = ds[name]
        if "date" not in da.dims:
            raise InputError(f"input {path!r} has no date dimension")
        return da.reindex(date=self.dates)

    def _resolve(self, name: str) -> xr.DataArray:
        if "/" in name:
            return self._other_node(name)
        if self.semantics == "qlib":
            return self._resolve_qlib(name).astype(np.float32)
        if name.startswith("adj_") and name[4:] in _ADJUSTED:
            return self._adjusted(name[4:])
        if name == "vwap":
            return self._vwap()
        if name == "adj_vwap":
            vwap = self._vwap()
            return vwap * self._stored("adj_factor") if self.level == "asset" else vwap
        if name == "returns":
            if self.level == "asset":
                return daily_returns(self.node)
            return self._stored("close") / self._stored("pre_close") - 1.0
        return self._stored(name)

    def _resolve_qlib(self, name: str) -> xr.DataArray:
        asset = self.level == "asset"
        if name in _ADJUSTED:
            return self._adjusted(name)
        if name == "vwap":
            vwap = self._vwap()
            return vwap * self._stored("adj_factor") if asset else vwap
        if name == "volume":
            shares = self._stored("vol") * 100.0
            return shares / self._stored("adj_factor") if asset else shares
        if name == "factor":
            return self._stored("adj_factor") if asset else xr.ones_like(self._stored("close"))
        if name == "change":
            return self._stored("close") / self._stored("pre_close") - 1.0
        if name == "amount":
            return self._stored("amount") * 1000.0
        return self._stored(name)

    def field(self, name: str) -> xr.DataArray:
        """The input called ``name`` (cached: one read per evaluation)."""
        out = self._cache.get(name)
        if out is None:
            out = self._resolve(name)
            self._cache[name] = out
        return out

    def constant(self, value: float) -> Any:
        """A constant as arithmetic sees it (a Python float keeps float32 inputs float32)."""
        return float(value)

    def row_index(self) -> xr.DataArray:
        """The row position along ``date`` (float64), for regressions on time."""
        return xr.DataArray(
            np.arange(len(self.dates), dtype=np.float64),
            dims="date",
            coords={"date": self.dates},
        )

    # ---- rules -------------------------------------------------------------------------

    def min_periods(self, window: int) -> int:
        """Valid rows a window needs: all of them (strict) or 1 (qlib)."""
        return 1 if self.semantics == "qlib" else int(window)

    @property
    def span(self) -> xr.DataArray:
        """True from each instrument's listing (``list_date``) to its last bar."""
        if self._span is None:
            self._span = self._listed_span()
        return self._span

    def _listed_span(self) -> xr.DataArray:
        close = self._stored("close")
        dates = xr.DataArray(self.dates, dims="date", coords={"date": self.dates})
        valid = close.notnull()
        coords = self._coords if self.level == "asset" else {}
        if "list_date" in coords:
            listed = coords["list_date"].reset_coords(drop=True)
            inside = (dates >= listed) | listed.isnull()
        else:
            inside = valid.cumsum("date") > 0
        # an instrument that left the market ends at its last bar (no valid close after it)
        after = (
            valid.isel(date=slice(None, None, -1)).cumsum("date").isel(date=slice(None, None, -1))
        )
        if "delist_date" in coords:
            still = coords["delist_date"].reset_coords(drop=True).isnull()
            inside = inside & ((after > 0) | still)
        else:
            inside = inside & (after > 0)
        return inside.transpose(*close.dims)

    def on_span(self, x: xr.DataArray) -> xr.DataArray:
        """``x`` inside each instrument's span, NaN outside (qlib semantics only)."""
        if self.semantics != "qlib":
            return x
        return x.where(self.span)

    @staticmethod
    def truth(x: Any) -> Any:
        """Where a condition holds: non-zero and not NaN."""
        return (x != 0) & (x == x)

    def logical(self, test: xr.DataArray, *inputs: Any) -> xr.DataArray:
        """A boolean result as 1.0 / 0.0 under the semantics' NaN rule."""
        if self.semantics == "qlib":
            return self.on_span(test.astype(np.float32))
        out = test.astype(np.float64)
        for x in inputs:
            if isinstance(x, xr.DataArray):
                out = out.where(x.notnull())
        return out


__all__ = ["SEMANTICS", "Context", "InputError", "check_semantics", "field_inputs"]
