"""select_weights warns when a date's selection is far smaller than ``top`` asked for."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import quantdask as qd


def _scores(n_scored_by_date, n_assets=60):
    """One row per date; the first n assets of row k have a score (higher for lower i)."""
    rows = []
    for n in n_scored_by_date:
        row = np.full(n_assets, np.nan)
        row[:n] = np.arange(n, 0, -1, dtype=float)
        rows.append(row)
    dates = pd.bdate_range("2024-01-01", periods=len(rows))
    return xr.DataArray(
        np.array(rows),
        dims=("date", "asset"),
        coords={"date": dates, "asset": [f"{i:06d}.SZ" for i in range(n_assets)]},
    )


def test_warns_when_a_date_has_one_scored_name_for_top_50():
    # the case: a date on which only one stock has a score gets 100% of the book
    s = _scores([60, 1, 60, 3])
    with pytest.warns(UserWarning, match=r"2 of 4 rebalance dates.*2024-01-02.*1 name"):
        w = qd.select_weights(s, dates=s.date.values, top=50)
    assert w.values[1, 0] == 1.0  # the weights themselves are unchanged
    np.testing.assert_allclose(w.values[3, :3], 1 / 3)


def test_no_warning_for_a_moderate_shortfall_or_an_empty_date():
    s = _scores([60, 40, 5, 0])  # 5 = a tenth of 50: not flagged; 0: all cash, documented
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = qd.select_weights(s, dates=s.date.values, top=50)
        qd.select_weights(s, dates=s.date.values, quantile=0.5)
        qd.select_weights(_scores([60, 1]), dates=_scores([60, 1]).date.values, top=5)
    assert (w.values[3] == 0).all()
