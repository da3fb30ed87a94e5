"""Data files shipped with quantdask (read with :mod:`importlib.resources`, never from disk paths).

* ``cn_gov_bond_10y_yield_2002_2024.csv``: the China 10-year government bond yield, daily,
  2002-01-04..2024-02-29 (``yield_pct`` in percent), test data of the hikyuu project (table
  ``zh_bond10``), Apache License 2.0 (``LICENSE-hikyuu-Apache-2.0.txt``; attribution in
  ``NOTICE``). :func:`quantdask.synthetic_market` puts it into the ``macro`` node's ``cgb_10y``.

Model configurations live with their code, in ``quantdask/models/configs/``.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

#: File name of the 10-year CGB yield series in this package.
CGB_10Y_FILE = "cn_gov_bond_10y_yield_2002_2024.csv"


def data_file(name: str) -> Traversable:
    """The packaged data file ``name``.

    Parameters
    ----------
    name : str
        File name inside ``quantdask/data``.

    Returns
    -------
    importlib.resources.abc.Traversable
        Open it with ``.open()`` or read it with ``.read_bytes()``; it works the same from a
        source checkout, an installed wheel or a zip.

    Raises
    ------
    FileNotFoundError
        If the installation does not carry the file (a broken install).
    """
    path = resources.files(__name__) / name
    if not path.is_file():
        raise FileNotFoundError(f"quantdask package data {name!r} is missing: reinstall quantdask")
    return path


__all__ = ["CGB_10Y_FILE", "data_file"]
