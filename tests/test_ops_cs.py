"""Cross-section ops against pandas / scipy / numpy-lstsq references, plain and group-wise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr

import quantdask as qd
from quantdask.testing import raise_if_dask_computes

N_DATES = 9
N_ASSETS = 37
CODES = np.array([0, 801010, 801030, 801780])


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_t(3, size=(N_DATES, N_ASSETS))
    a[rng.random(a.shape) < 0.15] = np.nan
    a[2, 5:9] = a[2, 4]  # ties
    a[3] = np.nan  # an empty date
    g = CODES[rng.integers(0, len(CODES), size=a.shape)]
    g[4, :] = 801030  # one group only
    return a, g


def _da(a: np.ndarray, name: str = "x") -> xr.DataArray:
    return xr.DataArray(
        a,
        dims=("date", "asset"),
        coords={
            "date": pd.bdate_range("2021-01-04", periods=a.shape[0]),
            "asset": [f"{i:06d}.SH" for i in range(a.shape[1])],
        },
        name=name,
    ).chunk({"date": 4, "asset": 10})


def _per_group(a: np.ndarray, g: np.ndarray | None, fn) -> np.ndarray:
    """Plain loops: apply ``fn(values) -> values`` to the valid cells of each (date, group)."""
    out = np.full(a.shape, np.nan)
    groups = np.ones_like(a, dtype=int) if g is None else g
    for i in range(a.shape[0]):
        for code in np.unique(groups[i]):
            if code == 0:
                continue
            cells = (groups[i] == code) & ~np.isnan(a[i])
            if cells.any():
                out[i, cells] = fn(a[i, cells])
    return out


def _zscore_ref(v: np.ndarray) -> np.ndarray:
    if len(v) < 2 or np.std(v) == 0:
        return np.full(len(v), np.nan)
    return scipy.stats.zscore(v)


def _bucket_ref(q: int):
    def fn(v: np.ndarray) -> np.ndarray:
        r = scipy.stats.rankdata(v, method="average")
        return np.floor((r - 1) * q / len(v)) + 1

    return fn


def _mad_ref(n_mad: float):
    def fn(v: np.ndarray) -> np.ndarray:
        med = np.median(v)
        mad = scipy.stats.median_abs_deviation(v, scale="normal")
        return np.clip(v, med - n_mad * mad, med + n_mad * mad)

    return fn


CASES = {
    "rank_pct": (
        lambda x, g: qd.cs_rank(x, group=g),
        lambda v: scipy.stats.rankdata(v) / len(v),
    ),
    "rank": (lambda x, g: qd.cs_rank(x, pct=False, group=g), scipy.stats.rankdata),
    "zscore": (lambda x, g: qd.cs_zscore(x, group=g), _zscore_ref),
    "winsor_q": (
        lambda x, g: qd.cs_winsorize(x, limits=(0.1, 0.8), group=g),
        lambda v: np.clip(v, np.quantile(v, 0.1), np.quantile(v, 0.8)),
    ),
    "winsor_mad": (
        lambda x, g: qd.cs_winsorize(x, method="mad", n_mad=1.5, group=g),
        _mad_ref(1.5),
    ),
    "quantile": (lambda x, g: qd.cs_quantile(x, q=4, group=g), _bucket_ref(4)),
}


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_cs_vs_reference(case: str, grouped: bool) -> None:
    a, g = _data(seed=1)
    op, ref = CASES[case]
    x = _da(a)
    group = _da(g, "industry") if grouped else None
    out = op(x, group)
    assert out.dims == x.dims
    expected = _per_group(a, g if grouped else None, ref)
    np.testing.assert_allclose(out.values, expected, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_cs_rank_matches_pandas() -> None:
    a, _ = _data(seed=2)
    expected = pd.DataFrame(a).rank(axis=1, pct=True).to_numpy()
    np.testing.assert_allclose(qd.cs_rank(_da(a)).values, expected, equal_nan=True)


def test_cs_quantile_bucket_sizes() -> None:
    a = np.random.default_rng(3).normal(size=(2, 100))
    b = qd.cs_quantile(_da(a), q=5).values
    for row in b:
        assert sorted(np.unique(row, return_counts=True)[1]) == [20] * 5


def _ols_resid(y: np.ndarray, cols: list[np.ndarray]) -> np.ndarray:
    X = np.column_stack(cols)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return y - X @ beta


@pytest.mark.parametrize("mode", ["both", "industry", "mcap"])
def test_cs_neutralize_vs_lstsq(mode: str) -> None:
    a, g = _data(seed=4)
    rng = np.random.default_rng(5)
    m = rng.normal(10, 1, size=a.shape)
    m[rng.random(m.shape) < 0.1] = np.nan
    y = a + 0.7 * np.nan_to_num(m)  # a real size effect
    expected = np.full(a.shape, np.nan)
    for i in range(a.shape[0]):
        ok = ~np.isnan(y[i])
        if mode != "mcap":
            ok &= g[i] != 0
        if mode != "industry":
            ok &= ~np.isnan(m[i])
        if not ok.any():
            continue
        cols = []
        if mode == "mcap":
            cols.append(np.ones(ok.sum()))
        else:
            cols += [(g[i, ok] == c).astype(float) for c in np.unique(g[i, ok])]
        if mode != "industry":
            cols.append(m[i, ok])
        expected[i, ok] = _ols_resid(y[i, ok], cols)
    kw = {}
    if mode != "mcap":
        kw["industry"] = _da(g, "industry")
    if mode != "industry":
        kw["log_mcap"] = _da(m, "log_mcap")
    out = qd.cs_neutralize(_da(y), **kw)
    np.testing.assert_allclose(out.values, expected, rtol=1e-8, atol=1e-9, equal_nan=True)


def test_cs_ops_are_lazy_and_keep_dims() -> None:
    a, g = _data()
    x = _da(a).transpose("asset", "date")
    group = _da(g, "industry")
    with raise_if_dask_computes():
        outs = [
            qd.cs_rank(x, group=group),
            qd.cs_zscore(x),
            qd.cs_winsorize(x, method="mad"),
            qd.cs_quantile(x, q=3, group=group),
            qd.cs_neutralize(x, industry=group, log_mcap=_da(a)),
        ]
    for o in outs:
        assert o.dims == ("asset", "date")
        assert o.chunks[0] == (N_ASSETS,)  # all assets of a date block in one chunk
    expected = pd.DataFrame(a).rank(axis=1, pct=True).to_numpy().T
    np.testing.assert_allclose(qd.cs_rank(x).values, expected, equal_nan=True)


def test_cs_numpy_backed_and_errors() -> None:
    a, _ = _data()
    x = _da(a).compute()
    np.testing.assert_allclose(
        qd.cs_rank(x).values, pd.DataFrame(a).rank(axis=1, pct=True).to_numpy(), equal_nan=True
    )
    with pytest.raises(ValueError, match="method"):
        qd.cs_winsorize(x, method="clip")
    with pytest.raises(ValueError, match="limits"):
        qd.cs_winsorize(x, limits=(0.9, 0.1))
    with pytest.raises(ValueError, match="q must"):
        qd.cs_quantile(x, q=0)
    with pytest.raises(ValueError, match="industry, log_mcap"):
        qd.cs_neutralize(x)
    with pytest.raises(ValueError, match="dimension 'asset'"):
        qd.cs_rank(x.rename(asset="stock"))
    with pytest.raises(TypeError, match="DataArray"):
        qd.cs_zscore(a)


def test_cs_date_blocks_are_split_not_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    import quantdask.ops.cs as cs_mod

    a, g = _data(seed=6)
    x = _da(a)  # date chunks (4, 4, 1)
    monkeypatch.setattr(cs_mod, "CS_BLOCK_CELLS", 2 * N_ASSETS)
    out = qd.cs_rank(x, group=_da(g, "industry"))
    assert out.chunks == ((2, 2, 2, 2, 1), (N_ASSETS,))
    np.testing.assert_allclose(
        out.values,
        _per_group(a, g, lambda v: scipy.stats.rankdata(v) / len(v)),
        equal_nan=True,
    )
    monkeypatch.setattr(cs_mod, "CS_BLOCK_CELLS", 10**9)
    assert qd.cs_zscore(x).chunks[0] == (4, 4, 1)


@pytest.mark.parametrize("pct", [True, False])
def test_cs_rank_and_quantile_wide_rows_vs_pandas(pct: bool) -> None:
    """Wide cross-sections (the radix-sort path of ``kernels.rank``) against pandas."""
    rng = np.random.default_rng(7)
    a = 10.0 * np.exp(rng.normal(0.0, 0.3, size=(11, 700)))
    a[:, 50:80] = np.round(a[:, 50:80])  # exact ties
    a[:, 100:140] = a[:, [100]] * (1.0 + rng.integers(-3, 4, size=(11, 40)) * 2.0**-52)
    a[:, 200] = -0.0
    a[:, 201] = 0.0
    a[rng.random(a.shape) < 0.1] = np.nan
    a[5] = np.nan  # an empty date
    x = _da(a).chunk({"date": 4, "asset": 128})
    ref = pd.DataFrame(a).rank(axis=1, pct=pct).to_numpy()
    np.testing.assert_allclose(qd.cs_rank(x, pct=pct).values, ref, rtol=1e-14, atol=0)
    if pct:
        ranks = pd.DataFrame(a).rank(axis=1).to_numpy()
        count = np.sum(~np.isnan(a), axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            buckets = np.floor((ranks - 1.0) * 5 / count) + 1.0
        np.testing.assert_array_equal(qd.cs_quantile(x, q=5).values, buckets)


def _groupby_ref(a: np.ndarray, g: np.ndarray, fn) -> np.ndarray:
    """``fn(x, by)`` on the long frame of the cells with a non-zero group, back to 2-D.

    ``x`` is the value Series, ``by`` the (date, group) key columns for ``x.groupby(by)``.
    """
    m, n = a.shape
    df = pd.DataFrame({"date": np.repeat(np.arange(m), n), "group": g.ravel(), "x": a.ravel()})
    df = df[df["group"] != 0]
    out = np.full(a.size, np.nan)
    out[df.index.to_numpy()] = np.asarray(fn(df["x"], [df["date"], df["group"]]))
    return out.reshape(a.shape)


def _zscore_by(x: pd.Series, by: list) -> pd.Series:
    d = x - x.groupby(by).transform("mean")
    sd = np.sqrt((d * d).groupby(by).transform("mean"))  # population std
    return (d / sd).where(sd > 0)


def _mad_clip_by(x: pd.Series, by: list, n_mad: float) -> pd.Series:
    med = x.groupby(by).transform("median")
    scale = 1.0 / scipy.stats.norm.ppf(0.75)  # MAD -> std of normal data
    mad = scale * (x - med).abs().groupby(by).transform("median")
    return x.clip(med - n_mad * mad, med + n_mad * mad)


@pytest.mark.parametrize("codes", ["shenwan", "negative_and_wide"])
def test_grouped_ops_wide_rows_vs_pandas_groupby(codes: str) -> None:
    """700-asset dates (the radix path of the (group, value) row sort) against pandas."""
    rng = np.random.default_rng(11)
    m, n = 11, 700
    a = rng.standard_t(4, size=(m, n))
    a[:, 50:90] = np.round(a[:, 50:90], 1)  # exact ties
    a[:, 200:204] = [-0.0, 0.0, -0.0, 0.0]
    a[rng.random(a.shape) < 0.2] = np.nan
    a[5] = np.nan  # an empty date
    table = 801010 + 10 * np.arange(31) if codes == "shenwan" else np.array([-9, -1, 4, 2**50])
    g = table[rng.integers(0, len(table), size=a.shape)]
    g[rng.random(a.shape) < 0.1] = 0
    g[:, 3] = table[0] - 1  # a one-member group on every date
    x = _da(a).chunk({"date": 4, "asset": 128})
    grp = _da(g, "industry").chunk({"date": 4, "asset": 128})

    for pct in (True, False):
        ref = _groupby_ref(a, g, lambda s, by, p=pct: s.groupby(by).rank(method="average", pct=p))
        np.testing.assert_array_equal(qd.cs_rank(x, pct=pct, group=grp).values, ref)

    def buckets(s: pd.Series, by: list) -> pd.Series:
        gb = s.groupby(by)
        return np.floor((gb.rank() - 1.0) * 5 / gb.transform("count")) + 1.0

    np.testing.assert_array_equal(
        qd.cs_quantile(x, q=5, group=grp).values, _groupby_ref(a, g, buckets)
    )

    def clip_q(s: pd.Series, by: list) -> pd.Series:
        gb = s.groupby(by)
        return s.clip(gb.transform("quantile", 0.1), gb.transform("quantile", 0.8))

    for got, fn in [
        (qd.cs_zscore(x, group=grp), _zscore_by),
        (qd.cs_neutralize(x, industry=grp), lambda s, by: s - s.groupby(by).transform("mean")),
        (qd.cs_winsorize(x, limits=(0.1, 0.8), group=grp), clip_q),
        (
            qd.cs_winsorize(x, method="mad", n_mad=2.0, group=grp),
            lambda s, by: _mad_clip_by(s, by, 2.0),
        ),
    ]:
        ref = _groupby_ref(a, g, fn)
        np.testing.assert_allclose(got.values, ref, rtol=1e-12, atol=1e-14, equal_nan=True)
