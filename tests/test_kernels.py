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
    np.testing.assert_array_equal(
        moving._move_moments.serial(a, 20, 10, 4), moving._move_moments.parallel(a, 20, 10, 4)
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
