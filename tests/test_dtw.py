"""DTW distance, LB_Keogh and k-NN search against plain-Python references and dtaidistance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quantdask as qd
from quantdask.timing import dtw_knn, lb_keogh


# -- plain O(n*m) references -----------------------------------------------------------------
def ref_dtw(a, b, allowed) -> float:
    """Full cost matrix with a cell predicate; sqrt of the summed squared differences."""
    n, m = len(a), len(b)
    acc = [[math.inf] * (m + 1) for _ in range(n + 1)]
    acc[0][0] = 0.0
    for i in range(n):
        for j in range(m):
            if allowed(i, j):
                acc[i + 1][j + 1] = (a[i] - b[j]) ** 2 + min(
                    acc[i][j], acc[i][j + 1], acc[i + 1][j]
                )
    return math.sqrt(acc[n][m])


def sakoe(n, m, r):
    return lambda i, j: i - r - max(0, n - m) <= j <= i + r + max(0, m - n)


def itakura(n, m, s):
    ii, jj, tol = n - 1, m - 1, 1e-9

    def ok(i, j):
        return (
            j <= s * i + tol
            and i <= s * j + tol
            and (jj - j) <= s * (ii - i) + tol
            and (ii - i) <= s * (jj - j) + tol
        )

    return ok


def ref_lb_keogh(q, c, r) -> float:
    total = 0.0
    for j in range(len(q)):
        seg = q[max(0, j - r) : j + r + 1]
        u, lo = max(seg), min(seg)
        if c[j] > u:
            total += (c[j] - u) ** 2
        elif c[j] < lo:
            total += (lo - c[j]) ** 2
    return math.sqrt(total)


rng = np.random.default_rng(42)
PAIRS = [
    (rng.normal(size=n), rng.normal(size=m))
    for n, m in [(12, 12), (25, 25), (20, 27), (31, 18), (1, 5)]
]


# -- distance --------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", PAIRS)
def test_unconstrained_matches_reference(a, b):
    got = qd.dtw_distance(a, b)
    assert got == pytest.approx(ref_dtw(a, b, lambda i, j: True), rel=1e-12)


@pytest.mark.parametrize("a, b", PAIRS)
@pytest.mark.parametrize("r", [0, 1, 3, 8])
def test_sakoe_chiba_matches_reference(a, b, r):
    got = qd.dtw_distance(a, b, constraint="sakoe_chiba", radius=r)
    assert got == pytest.approx(ref_dtw(a, b, sakoe(len(a), len(b), r)), rel=1e-12)


@pytest.mark.parametrize(
    "n, m, s", [(20, 20, 2.0), (25, 25, 1.5), (20, 26, 2.0), (30, 21, 3.0), (16, 16, 1.0)]
)
def test_itakura_matches_reference(n, m, s):
    r = np.random.default_rng(n * m)
    a, b = r.normal(size=n), r.normal(size=m)
    got = qd.dtw_distance(a, b, constraint="itakura", slope=s)
    assert got == pytest.approx(ref_dtw(a, b, itakura(n, m, s)), rel=1e-12)


def test_itakura_slope_one_is_euclidean():
    a, b = rng.normal(size=30), rng.normal(size=30)
    assert qd.dtw_distance(a, b, constraint="itakura", slope=1) == pytest.approx(
        float(np.sqrt(((a - b) ** 2).sum()))
    )


@pytest.mark.parametrize("a, b", PAIRS)
@pytest.mark.parametrize("r", [0, 2, 5])
def test_sakoe_chiba_matches_dtaidistance(a, b, r):
    from dtaidistance import dtw as dd

    # dtaidistance's window w admits |i - j| < w (plus the length difference): w = r + 1
    want = dd.distance(a, b, window=r + 1)
    assert qd.dtw_distance(a, b, constraint="sakoe_chiba", radius=r) == pytest.approx(
        want, rel=1e-12
    )
    fast = dd.distance_fast(a, b, window=r + 1, use_pruning=False)
    assert qd.dtw_distance(a, b, constraint="sakoe_chiba", radius=r) == pytest.approx(
        fast, rel=1e-12
    )
    assert qd.dtw_distance(a, b) == pytest.approx(dd.distance(a, b), rel=1e-12)


def test_default_radius_is_ten_percent():
    a, b = rng.normal(size=40), rng.normal(size=40)
    assert qd.dtw_distance(a, b, constraint="sakoe_chiba") == pytest.approx(
        ref_dtw(a, b, sakoe(40, 40, 4)), rel=1e-12
    )


def test_simple_hand_case():
    # [0, 1, 2] vs [0, 0, 1, 2]: the repeated 0 warps onto the first 0 at no cost
    assert qd.dtw_distance([0.0, 1.0, 2.0], [0.0, 0.0, 1.0, 2.0]) == 0.0
    # equal length, radius 0: Euclidean
    assert qd.dtw_distance([0.0, 3.0], [4.0, 3.0], constraint="sakoe_chiba", radius=0) == 4.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"constraint": "foo"}, "constraint"),
        ({"radius": 3}, "radius"),
        ({"constraint": "itakura", "radius": 3}, "radius"),
        ({"constraint": "sakoe_chiba", "slope": 2.0}, "slope"),
        ({"constraint": "sakoe_chiba", "radius": -1}, "radius"),
        ({"constraint": "itakura", "slope": 0.5}, "slope"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        qd.dtw_distance([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        qd.dtw_distance([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        qd.dtw_distance(np.ones((2, 2)), [1.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        qd.dtw_distance([], [1.0])
    with pytest.raises(TypeError, match="b"):
        qd.dtw_distance([1.0], ["x"])
    with pytest.raises(ValueError, match="ratio"):
        qd.dtw_distance(np.ones(5), np.ones(20), constraint="itakura", slope=2.0)


# -- LB_Keogh --------------------------------------------------------------------------------
@pytest.mark.parametrize("r", [0, 1, 4])
def test_lb_keogh_matches_reference(r):
    q, c = rng.normal(size=30), rng.normal(size=30)
    assert lb_keogh(q, c, r) == pytest.approx(ref_lb_keogh(list(q), list(c), r), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 25),
    r=st.integers(0, 6),
    seed=st.integers(0, 2**31),
)
def test_lb_keogh_is_a_lower_bound(n, r, seed):
    g = np.random.default_rng(seed)
    q, c = g.normal(size=n).cumsum(), g.normal(size=n).cumsum()
    lb = lb_keogh(q, c, r)
    assert lb <= qd.dtw_distance(q, c, constraint="sakoe_chiba", radius=r) + 1e-9


# -- k-NN search -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "constraint, kw", [("sakoe_chiba", {"radius": 3}), ("itakura", {"slope": 2.0}), (None, {})]
)
@pytest.mark.parametrize("k", [1, 5])
def test_knn_pruned_equals_unpruned_and_brute_force(constraint, kw, k):
    g = np.random.default_rng(5)
    m = 16
    cands = g.normal(size=(200, m)).cumsum(axis=1)
    cands[17] = cands[3]  # an exact tie: the earlier row wins in both modes
    q = cands[3] + g.normal(scale=1e-3, size=m)
    d1, i1, n1 = dtw_knn(q, cands, k=k, constraint=constraint, prune=True, **kw)
    d0, i0, n0 = dtw_knn(q, cands, k=k, constraint=constraint, prune=False, **kw)
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_allclose(d1, d0, rtol=1e-12)
    assert n0 == 200
    if constraint is not None:
        assert n1 < n0  # pruning skipped some full DTW computations
    n, allowed = (
        m,
        {
            "sakoe_chiba": sakoe(m, m, 3),
            "itakura": itakura(m, m, 2.0),
            None: lambda i, j: True,
        }[constraint],
    )
    ref = [ref_dtw(q, c, allowed) for c in cands]
    order = sorted(range(len(ref)), key=lambda j: (ref[j], j))[:k]
    np.testing.assert_array_equal(i0, order)
    np.testing.assert_allclose(d0, [ref[j] for j in order], rtol=1e-10)
    assert n == m


def test_knn_fewer_candidates_than_k():
    cands = rng.normal(size=(3, 8))
    d, i, _ = dtw_knn(cands[0], cands, k=5, constraint="sakoe_chiba", radius=1)
    assert len(i) == 3 and i[0] == 0 and d[0] == 0.0


def test_knn_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        dtw_knn(np.ones(4), np.ones((3, 5)), k=1)
    with pytest.raises(ValueError, match="k must"):
        dtw_knn(np.ones(4), np.ones((3, 4)), k=0)
