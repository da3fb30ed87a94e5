"""Kernels on plain numpy: references, state carrying, serial vs parallel builds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from quantdask.kernels import cross, moving, rank


def _rows(m: int = 6, n: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(m, n))
    a[rng.random(a.shape) < 0.2] = np.nan
    return a


KERNELS = {
    "mean": (moving.move_mean, lambda r: r.mean()),
    "sum": (moving.move_sum, lambda r: r.sum()),
    "std": (moving.move_std, lambda r: r.std()),
    "min": (moving.move_min, lambda r: r.min()),
    "max": (moving.move_max, lambda r: r.max()),
    "skew": (moving.move_skew, lambda r: r.skew()),
    "kurt": (moving.move_kurt, lambda r: r.kurt()),
    "q75": (lambda a, w, mc: moving.move_quantile(a, w, mc, 0.75), lambda r: r.quantile(0.75)),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize(("window", "min_count"), [(5, 5), (8, 4), (70, 30)])
def test_kernel_vs_pandas(name: str, window: int, min_count: int) -> None:
    """Time along the last axis; windows longer than the array are NaN-padded, not errors."""
    kernel, agg = KERNELS[name]
    a = _rows()
    expected = agg(pd.DataFrame(a.T).rolling(window, min_periods=min_count)).to_numpy().T
    np.testing.assert_allclose(kernel(a, window, min_count), expected, rtol=1e-9, equal_nan=True)


def test_percentile_matches_scipy() -> None:
    a = np.round(_rows(m=3, n=40), 1)  # rounding makes ties
    w = 9
    out = moving.move_percentile(a, w, 3)
    for i in range(a.shape[0]):
        for t in range(a.shape[1]):
            win = a[i, max(0, t - w + 1) : t + 1]
            v = win[~np.isnan(win)]
            if np.isnan(a[i, t]) or len(v) < 3:
                assert np.isnan(out[i, t])
            else:
                exp = scipy.stats.percentileofscore(v, a[i, t], kind="mean")
                assert out[i, t] == pytest.approx(exp)


def test_corr_cov_pairwise() -> None:
    a, b = _rows(seed=1), _rows(seed=2)
    for j in range(a.shape[0]):
        sa, sb = pd.Series(a[j]), pd.Series(b[j])
        np.testing.assert_allclose(
            moving.move_corr(a, b, 7, 4)[j],
            sa.rolling(7, min_periods=4).corr(sb).to_numpy(),
            rtol=1e-9,
            equal_nan=True,
        )
        np.testing.assert_allclose(
            moving.move_cov(a, b, 7, 4)[j],
            sa.rolling(7, min_periods=4).cov(sb).to_numpy(),
            rtol=1e-9,
            equal_nan=True,
        )


def test_moments_stable_on_price_levels() -> None:
    """Power sums are shifted, so large price levels do not cancel away the moments."""
    rng = np.random.default_rng(3)
    a = 1e4 + np.cumsum(rng.normal(size=(2, 400)), axis=1)
    ref = pd.DataFrame(a.T).rolling(60).skew().to_numpy().T
    np.testing.assert_allclose(moving.move_skew(a, 60, 60), ref, rtol=1e-6, equal_nan=True)


def test_constant_window_skew_is_nan() -> None:
    a = np.array([[1.0, 1.0, 1.0, 1.0, 2.0]])
    out = moving.move_skew(a, 4, 4)
    assert np.isnan(out[0, 3]) and np.isfinite(out[0, 4])


def test_scans_carry_state_exactly() -> None:
    rng = np.random.default_rng(4)
    close = 100 + np.cumsum(rng.choice([-1.0, 0.0, 1.0], size=(3, 60)), axis=1)
    close[rng.random(close.shape) < 0.2] = np.nan
    period = (np.arange(60) // 4).astype(float)
    whole, _ = moving.streak_scan(close, period)
    first, state = moving.streak_scan(close[:, :25], period[:25])
    second, _ = moving.streak_scan(close[:, 25:], period[25:], state)
    np.testing.assert_array_equal(np.hstack([first, second]), whole)

    whole, _ = moving.ewm_mean_scan(close, 0.2, 3, False)
    first, state = moving.ewm_mean_scan(close[:, :17], 0.2, 3, False)
    second, _ = moving.ewm_mean_scan(close[:, 17:], 0.2, 3, False, state)
    np.testing.assert_allclose(np.hstack([first, second]), whole, rtol=1e-12, equal_nan=True)


def test_compress_valid_and_shift() -> None:
    valid = np.array([[True, False, True, False, True]])
    idx = moving.compress_valid(valid)
    assert idx.tolist() == [[1, 3, 0, 2, 4]]  # invalid first, valid in time order last
    np.testing.assert_array_equal(
        moving.shift(np.arange(5.0)[None], 2), [[np.nan, np.nan, 0.0, 1.0, 2.0]]
    )


def test_serial_and_parallel_builds_agree() -> None:
    a = _rows(m=40, n=300, seed=5)
    order = rank.argsort_rows(a, nan_only=True)
    srt = np.take_along_axis(a, order, axis=1)
    np.testing.assert_array_equal(
        moving._move_order_stat.serial(order, srt, 20, 10, 0.5, 0),
        moving._move_order_stat.parallel(order, srt, 20, 10, 0.5, 0),
    )
    g = np.random.default_rng(6).integers(0, 3, size=(300, 40))
    v = np.ascontiguousarray(a.T)
    args = cross._grouped(v, g)
    for kernel, extra in [
        (cross._rank, (1, 0)),
        (cross._zscore, ()),
        (cross._winsorize_mad, (3.0, 1.4826)),
        (cross._neutralize, (np.zeros((1, 1)), False)),
    ]:
        np.testing.assert_array_equal(kernel.serial(*args, *extra), kernel.parallel(*args, *extra))


def test_cross_kernels_rowwise() -> None:
    v = np.array([[3.0, 1.0, np.nan, 2.0, 2.0, 9.0]])
    g = np.array([[1, 1, 1, 2, 2, 0]])
    np.testing.assert_array_equal(
        cross.cs_rank_kernel(v, g, False), [[2.0, 1.0, np.nan, 1.5, 1.5, np.nan]]
    )
    ones = np.ones_like(g)
    np.testing.assert_array_equal(
        cross.cs_quantile_kernel(v, ones, 2), [[2.0, 1.0, np.nan, 1.0, 1.0, 2.0]]
    )
    z = cross.cs_zscore_kernel(v, ones)
    valid = v[~np.isnan(v)]
    np.testing.assert_allclose(z[~np.isnan(v)], scipy.stats.zscore(valid))


def _tricky_rows(seed: int = 0, m: int = 40, n: int = 300) -> np.ndarray:
    """Rows with NaNs, exact ties, signed zeros, +/-inf and values a few ulps apart."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(m, n))
    a[:, 10:20] = np.round(a[:, 10:20], 1)  # exact ties
    base = rng.normal(size=(m, 1))
    ulps = rng.integers(-40, 40, size=(m, 60))
    a[:, 20:80] = base + ulps * np.spacing(np.abs(base))  # near-ties: differ in low bits only
    a[:, 80:84] = [-0.0, 0.0, -0.0, 0.0]
    a[:, 84] = np.inf
    a[:, 85] = -np.inf
    a[:, 86:90] = 5e-324 * np.array([-1.0, 1.0, -2.0, 2.0])  # subnormals around zero
    a[rng.random(a.shape) < 0.15] = np.nan
    a[0] = np.nan  # an all-NaN row
    a[1] = 7.0  # a constant row
    a[2, :] = np.nan
    a[2, 5] = 1.0  # a single valid value
    perm = rng.permutation(n)  # the tricky columns anywhere in the row
    return a[:, perm]


@pytest.mark.parametrize("n", [300, 1500])  # np.sort path and radix-sort path
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_rows_vs_scipy(seed: int, n: int) -> None:
    assert 300 < rank.RADIX_MIN_COLUMNS <= 1500
    a = _tricky_rows(seed, n=n)
    ref = scipy.stats.rankdata(a, axis=1, nan_policy="omit")
    count = np.sum(~np.isnan(a), axis=1, keepdims=True)
    got = rank.rank_rows(a)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(a))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_allclose(rank.rank_rows(a, pct=True), ref / count, rtol=1e-15)
        q = 7
        buckets = np.floor((ref - 1.0) * q / count) + 1.0
    np.testing.assert_array_equal(rank.rank_rows(a, buckets=q), buckets)


def test_rank_rows_shapes_and_errors() -> None:
    a = _tricky_rows(3, m=12, n=300)[:, :90].reshape(3, 4, 90)
    ref = scipy.stats.rankdata(a, axis=-1, nan_policy="omit")
    np.testing.assert_allclose(rank.rank_rows(a), ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(rank.rank_rows(np.array([[3.0]])), [[1.0]])
    assert rank.rank_rows(np.empty((0, 5))).shape == (0, 5)
    with pytest.raises(ValueError, match="at least one axis"):
        rank.rank_rows(np.float64(1.0))


@pytest.mark.parametrize("n", [300, 1500])
@pytest.mark.parametrize("seed", [0, 1])
def test_argsort_rows_sorts_exactly(seed: int, n: int) -> None:
    a = _tricky_rows(seed, n=n)
    order = rank.argsort_rows(a)
    assert sorted(order[5].tolist()) == list(range(a.shape[1]))  # a permutation
    s = np.take_along_axis(a, order, axis=1)
    fin = np.isfinite(a).sum(axis=1)
    for i in range(a.shape[0]):  # reference: numpy's sort of the finite values
        k = fin[i]
        np.testing.assert_array_equal(s[i, :k], np.sort(a[i][np.isfinite(a[i])]))
        assert not np.isfinite(s[i, k:]).any()  # non-finite cells last


# --- grouped cross-section kernels: rows sorted by (group, value) ------------------------------

_I64 = np.iinfo(np.int64)
CODE_SETS = {  # the last code is held by a single cell per row (a one-member group)
    "small": np.arange(1, 33),  # dense codes 1..31 (as qd.ic passes them)
    "shenwan": 801010 + 10 * np.arange(32),  # lookup table to 1..G
    "negative_and_extreme": np.array([-7, -1, 3, 2**40, -(2**62), _I64.max, _I64.min, 5]),
}


def _grouped_case(seed: int, n: int, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tricky rows with group codes: group 0 (about 10%), a one-member group, one-group rows."""
    rng = np.random.default_rng(seed + 50)
    a = _tricky_rows(seed, m=12, n=n)
    g = codes[rng.integers(0, len(codes) - 1, size=a.shape)]
    g[rng.random(a.shape) < 0.1] = 0
    g[4] = codes[0]  # a row with one group only
    g[:, 7] = codes[-1]
    return a, g


def _by_group(a: np.ndarray, g: np.ndarray, fn) -> np.ndarray:
    """Reference: ``fn(df, groupby)`` on the long frame of the cells with a non-zero group."""
    m, n = a.shape
    df = pd.DataFrame({"date": np.repeat(np.arange(m), n), "group": g.ravel(), "x": a.ravel()})
    df = df[df["group"] != 0]
    out = np.full(a.size, np.nan)
    out[df.index.to_numpy()] = np.asarray(fn(df, df.groupby(["date", "group"])["x"]))
    return out.reshape(a.shape)


@pytest.mark.parametrize("codes", sorted(CODE_SETS))
@pytest.mark.parametrize("n", [90, 300, 1500])  # np.sort path and radix path
def test_grouped_rank_and_quantile_vs_pandas(n: int, codes: str) -> None:
    assert 300 < rank.RADIX_MIN_COLUMNS <= 1500
    a, g = _grouped_case(n % 7, n, CODE_SETS[codes])
    remap = codes == "negative_and_extreme"  # codes spanning > 2**16 values: np.unique remap
    assert (rank.group_codes(g)[0] is g) != remap  # else a lookup table, codes as they are
    for pct in (False, True):
        ref = _by_group(a, g, lambda df, gb, p=pct: gb.rank(method="average", pct=p))
        got = cross.cs_rank_kernel(a, g, pct)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got, ref, rtol=1e-15, atol=0)
    q = 5

    def buckets(df: pd.DataFrame, gb) -> pd.Series:
        return np.floor((gb.rank(method="average") - 1.0) * q / gb.transform("count")) + 1.0

    np.testing.assert_array_equal(cross.cs_quantile_kernel(a, g, q), _by_group(a, g, buckets))
    lone = cross.cs_rank_kernel(a, g, True)[:, 7]  # the one-member group: rank 1 of 1
    np.testing.assert_array_equal(lone, np.where(np.isnan(a[:, 7]), np.nan, 1.0))
    assert np.isnan(cross.cs_rank_kernel(a, g, False)[g == 0]).all()


def _finite_case(seed: int, n: int, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As ``_grouped_case`` with finite, well-separated values (ties, signed zeros, NaNs)."""
    _, g = _grouped_case(seed, n, codes)
    rng = np.random.default_rng(seed + 70)
    a = rng.standard_t(4, size=g.shape)
    a[:, : n // 5] = np.round(a[:, : n // 5], 1)  # exact ties
    a[:, n // 5 : n // 5 + 6] = [-0.0, 0.0, -0.0, 0.0, -0.0, 0.0]
    a[rng.random(a.shape) < 0.15] = np.nan
    a[0] = np.nan  # an empty row
    a[1] = 7.0  # a constant row: zero std
    return a[:, rng.permutation(n)], g


@pytest.mark.parametrize("codes", ["shenwan", "negative_and_extreme"])
@pytest.mark.parametrize("n", [90, 1500])
def test_grouped_zscore_and_winsorize_vs_pandas(n: int, codes: str) -> None:
    a, g = _finite_case(n % 5, n, CODE_SETS[codes])

    def zscore(df: pd.DataFrame, gb) -> pd.Series:
        d = df["x"] - gb.transform("mean")
        sd = np.sqrt((d * d).groupby([df["date"], df["group"]]).transform("mean"))  # ddof=0
        return (d / sd).where(sd > 0)

    np.testing.assert_allclose(
        cross.cs_zscore_kernel(a, g), _by_group(a, g, zscore), rtol=1e-9, atol=1e-12
    )

    def clip_q(df: pd.DataFrame, gb) -> pd.Series:
        return df["x"].clip(gb.transform("quantile", 0.05), gb.transform("quantile", 0.9))

    np.testing.assert_allclose(
        cross.cs_winsorize_quantile_kernel(a, g, 0.05, 0.9),
        _by_group(a, g, clip_q),
        rtol=1e-12,
        atol=1e-300,
    )

    def clip_mad(df: pd.DataFrame, gb) -> pd.Series:
        med = gb.transform("median")
        dev = (df["x"] - med).abs()
        mad = 1.4826 * dev.groupby([df["date"], df["group"]]).transform("median")
        return df["x"].clip(med - 2.0 * mad, med + 2.0 * mad)

    np.testing.assert_allclose(
        cross.cs_winsorize_mad_kernel(a, g, 2.0, 1.4826),
        _by_group(a, g, clip_mad),
        rtol=1e-12,
        atol=1e-300,
    )


def test_group_codes_table_or_remap() -> None:
    sw = np.array([[0, 801030, 801010], [801980, 0, 801030]])
    codes, table, base, gbits = rank.group_codes(sw)
    np.testing.assert_array_equal(codes, sw)  # narrow codes: used as they are, via a table
    dense = np.where(codes == 0, 0, table[np.where(codes == 0, base, codes) - base])
    np.testing.assert_array_equal(dense, [[0, 2, 1], [3, 0, 2]])  # 1..G in code order
    assert gbits == 2
    wide = np.array([[0, _I64.max, -5], [_I64.min, 7, -5]])
    codes, table, base, gbits = rank.group_codes(wide)
    np.testing.assert_array_equal(codes, [[0, 4, 2], [1, 3, 2]])  # remapped, in code order
    np.testing.assert_array_equal(table[codes - base], codes)
    assert gbits == 3
    assert rank.group_codes(np.zeros((2, 3), dtype=np.int64))[0].shape == (2, 3)


def test_grouped_kernels_bad_shapes() -> None:
    with pytest.raises(ValueError, match="groups shape"):
        cross.cs_rank_kernel(np.ones((2, 3)), np.ones((2, 4), dtype=np.int64), True)


@pytest.mark.parametrize("seed", range(4))
def test_abs_dev_median_without_a_second_sort(seed: int) -> None:
    """Merging the deviations below / above the median equals sorting them (hand formula)."""
    rng = np.random.default_rng(seed)
    for k in range(1, 40):
        seg = np.sort(np.round(rng.normal(size=k), 1))  # ties
        if k > 3:
            seg[:2] = [-0.0, 0.0] if seed % 2 else seg[:2]
            seg = np.sort(seg)
        if seed == 3 and k > 5:
            seg[-1] = np.inf  # the plain-sort fallback
        pos = 0.5 * (k - 1)
        lo = int(np.floor(pos))
        med = seg[lo] + (pos - lo) * (seg[min(lo + 1, k - 1)] - seg[lo]) if pos > lo else seg[lo]
        dev = np.sort(np.abs(seg - med))
        want = dev[lo] + (pos - lo) * (dev[lo + 1] - dev[lo]) if pos > lo else dev[lo]
        got = cross._abs_dev_median(seg, med)
        assert got == want or (np.isnan(got) and np.isnan(want)), (k, seg)
