"""Offshore-flow timing: FTSE China A50 futures basis, futures and ETF divergence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from quantdask.io import schema
from quantdask.timing.backtest import TimingBacktest, timing_backtest

#: Components of the offshore signal, in output order.
COMPONENTS = ("basis", "fut_divergence", "etf_divergence")
#: Default benchmark index of the offshore back-test.
DEFAULT_INDEX = "000016.SH"


def _offshore_frame(data: Any) -> pd.DataFrame:
    """In-memory offshore frame (a reduction point: the offshore node is small, (date,))."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, xr.DataTree):
        if "offshore" not in data.children:
            raise ValueError("market has no 'offshore' node")
        frame = data["offshore"].to_dataset().to_dataframe()
    elif isinstance(data, xr.Dataset):
        frame = data.to_dataframe()
    else:
        raise TypeError(
            f"expected a market (DataTree), an offshore Dataset or a DataFrame, got "
            f"{type(data).__name__}"
        )
    need = ("a50_spot", "a50_fut", "a50_etf", "hkd_cny")
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValueError(
            f"offshore data lacks columns {missing} (schema: {list(schema.OFFSHORE_FIELDS)})"
        )
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise ValueError("offshore data: the date index must be strictly increasing")
    return frame[list(need)].astype(np.float64)


def _zscore(x: pd.Series, window: int) -> pd.Series:
    mean = x.rolling(window, min_periods=window).mean()
    std = x.rolling(window, min_periods=window).std(ddof=1)
    return (x - mean) / std.where(std > 0)


def _check_int(v: Any, name: str, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
        raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    return int(v)


def offshore_timing(
    data: xr.DataTree | xr.Dataset | pd.DataFrame,
    *,
    z_window: int = 60,
    short_window: int = 5,
    threshold: float = 0.5,
    combine_threshold: float = 0.5,
    weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Offshore-flow timing signal from the A50 futures basis and the futures / ETF divergence.

    Parameters
    ----------
    data : xarray.DataTree, xarray.Dataset or pandas.DataFrame
        A market (its ``offshore`` node), the offshore Dataset, or a frame by date with
        ``a50_spot``, ``a50_fut``, ``a50_etf`` (HKD) and ``hkd_cny`` (CNY per HKD).
    z_window : int, default 60
        Trailing window (days, including ``t``) of the z-scores; strict (NaN until full).
    short_window : int, default 5
        Return window ``w`` of the two divergences.
    threshold : float, default 0.5
        Component signal: +1 when its z-score is above ``threshold``, -1 below
        ``-threshold``, else 0.
    combine_threshold : float, default 0.5
        Combined signal: +1 when the weighted mean of the component z-scores exceeds
        ``combine_threshold``, -1 below ``-combine_threshold``, else 0.
    weights : mapping, optional
        Weight of each component (keys among ``basis``, ``fut_divergence``,
        ``etf_divergence``; missing keys weigh 0); equal weights by default.

    Returns
    -------
    pandas.DataFrame
        By date: ``basis`` (``(a50_fut - a50_spot) / a50_spot * 100``, in % of spot),
        ``fut_divergence`` (``w``-day futures return minus ``w``-day spot return, in %),
        ``etf_divergence`` (``w``-day return of the ETF in CNY, ``a50_etf * hkd_cny``, minus
        the ``w``-day spot return, in %), their trailing z-scores ``<name>_z``, component
        signals ``<name>_signal`` (int8), ``score`` (weighted mean of the available
        z-scores) and ``signal`` (int8 -1/0/1; 0 while the score is NaN).

    Raises
    ------
    TypeError, ValueError
        Wrong input type, missing columns, bad parameters.

    Notes
    -----
    Lookback: ``z_window + short_window`` days. Every column at ``t`` uses data up to ``t``
    only (trailing rolling windows; no look-ahead), so truncating the data after ``t`` leaves
    row ``t`` unchanged. Sign convention: a rich futures basis, futures outperforming spot,
    and the offshore ETF outperforming spot are read as offshore buying (bullish, +1).
    Reduction point: the small ``(date,)`` offshore node is loaded into memory.

    Examples
    --------
    >>> import numpy as np, pandas as pd, quantdask as qd
    >>> d = pd.bdate_range("2020-01-01", periods=120)
    >>> spot = pd.Series(np.exp(np.cumsum(np.random.default_rng(1).normal(0, .01, 120))), d)
    >>> f = pd.DataFrame({"a50_spot": spot, "a50_fut": spot * 1.001,
    ...                   "a50_etf": spot / 0.9, "hkd_cny": 0.9})
    >>> qd.offshore_timing(f)["signal"].isin([-1, 0, 1]).all()
    np.True_
    """
    f = _offshore_frame(data)
    z_window = _check_int(z_window, "z_window", 2)
    short_window = _check_int(short_window, "short_window", 1)
    for name, v in (("threshold", threshold), ("combine_threshold", combine_threshold)):
        if not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a non-negative number, got {v!r}")
    w = {c: 1.0 for c in COMPONENTS} if weights is None else dict(weights)
    bad = sorted(set(w) - set(COMPONENTS))
    if bad:
        raise ValueError(f"weights: unknown components {bad}; expected among {COMPONENTS}")
    wv = np.array([float(w.get(c, 0.0)) for c in COMPONENTS])
    if not np.all(np.isfinite(wv)) or np.any(wv < 0) or wv.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights!r}")

    spot, fut = f["a50_spot"], f["a50_fut"]
    etf_cny = f["a50_etf"] * f["hkd_cny"]
    spot_ret = spot / spot.shift(short_window) - 1.0
    out = pd.DataFrame(index=f.index)
    out["basis"] = (fut - spot) / spot * 100.0
    out["fut_divergence"] = (fut / fut.shift(short_window) - 1.0 - spot_ret) * 100.0
    out["etf_divergence"] = (etf_cny / etf_cny.shift(short_window) - 1.0 - spot_ret) * 100.0
    zs = []
    for c in COMPONENTS:  # three columns, not dates
        z = _zscore(out[c], z_window)
        out[f"{c}_z"] = z
        zv = z.to_numpy()
        sig = np.where(zv > threshold, 1, np.where(zv < -threshold, -1, 0))
        out[f"{c}_signal"] = sig.astype(np.int8)
        zs.append(zv)
    zm = np.column_stack(zs)
    ok = np.isfinite(zm)
    wsum = (ok * wv).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(ok, zm, 0.0) @ wv / np.where(wsum > 0, wsum, np.nan)
    out["score"] = score
    with np.errstate(invalid="ignore"):
        sig = np.where(score > combine_threshold, 1, np.where(score < -combine_threshold, -1, 0))
    out["signal"] = sig.astype(np.int8)
    out.index.name = "date"
    return out


def _index_close(market: xr.DataTree, code: str) -> pd.Series:
    if "index" not in market.children:
        raise ValueError("market has no 'index' node")
    idx = market["index"].to_dataset()
    codes = [str(c) for c in idx["index"].values]
    if code not in codes:
        raise ValueError(f"index {code!r} not in the market's index node ({codes})")
    close = idx["close"].sel(index=code)
    return pd.Series(np.asarray(close.values, dtype=np.float64), index=close["date"].to_index())


def offshore_backtest(
    data: xr.DataTree | xr.Dataset | pd.DataFrame,
    *,
    index: str | pd.Series | None = None,
    cost: float = 0.0,
    **params: Any,
) -> dict[str, TimingBacktest]:
    """Back-test the offshore signal long-only and long-short on an index.

    Parameters
    ----------
    data : xarray.DataTree, xarray.Dataset or pandas.DataFrame
        As in :func:`offshore_timing`.
    index : str, pandas.Series or None, optional
        The traded index: a code of the market's ``index`` node (needs a market), or a price
        Series by date. None: ``000016.SH`` (SSE 50) when ``data`` is a market, else
        ``a50_spot`` itself.
    cost : float, default 0.0
        Proportional cost per unit of position change (see :func:`timing_backtest`).
    **params
        Passed to :func:`offshore_timing`.

    Returns
    -------
    dict
        ``{"long_only": TimingBacktest, "long_short": TimingBacktest, "signal": DataFrame}``;
        each back-test's ``metrics`` holds annual return, Sharpe, max drawdown,
        ``hit_rate`` (daily win rate), ``profit_loss_ratio`` and the excess vs the index.

    Notes
    -----
    The signal at ``t`` is held from ``t`` to ``t + 1`` (no look-ahead). Reduction point.
    """
    sig = offshore_timing(data, **params)
    if isinstance(index, pd.Series):
        prices = index.astype(np.float64)
    elif isinstance(index, str):
        if not isinstance(data, xr.DataTree):
            raise ValueError(f"index={index!r} needs a market (DataTree); pass a price Series")
        prices = _index_close(data, index)
    elif index is None:
        if isinstance(data, xr.DataTree):
            prices = _index_close(data, DEFAULT_INDEX)
        else:
            prices = _offshore_frame(data)["a50_spot"]
    else:
        raise TypeError(f"index must be a code, a price Series or None, got {type(index).__name__}")
    return {
        "long_only": timing_backtest(sig, prices, long_only=True, cost=cost),
        "long_short": timing_backtest(sig, prices, long_only=False, cost=cost),
        "signal": sig,
    }
