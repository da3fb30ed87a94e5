"""Scoring math against hand-computed small cases and scipy/pandas references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from quantdask.models import scoring as sc

nan = np.nan


def test_percentile_score_hand_cases():
    x = np.array([[10.0, 30.0, 20.0, nan, 20.0]])
    # ascending ranks 1, 4, 2.5, -, 2.5 of n=4
    np.testing.assert_allclose(sc.percentile_score(x), [[25.0, 100.0, 62.5, nan, 62.5]])
    # negative direction: highest value scores lowest
    np.testing.assert_allclose(
        sc.percentile_score(x, direction=-1), [[100.0, 25.0, 62.5, nan, 62.5]]
    )
    # within groups: {0, 1} and {2, 4}; code 0 = no set
    g = np.array([[1, 1, 2, 2, 0]])
    np.testing.assert_allclose(sc.percentile_score(x, groups=g), [[50.0, 100.0, 100.0, nan, nan]])
    with pytest.raises(ValueError, match="direction"):
        sc.percentile_score(x, direction=2)


def test_percentile_score_matches_pandas_rank():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=(7, 40)).astype(float)
    x[rng.random(x.shape) < 0.2] = nan
    g = rng.integers(0, 4, size=x.shape)
    got = sc.percentile_score(x, groups=g, direction=-1)
    for r in range(x.shape[0]):
        df = pd.DataFrame({"x": -x[r], "g": g[r]})
        df = df[df.g > 0]
        ref = df.groupby("g")["x"].rank(pct=True, method="average") * 100
        exp = np.full(x.shape[1], nan)
        exp[ref.index] = ref.to_numpy()
        np.testing.assert_allclose(got[r], exp)


def test_weighted_mean_hand():
    s = np.array([[80.0, nan], [40.0, 50.0], [nan, nan]])  # 3 factors x 2 assets
    w = np.array([4.0, 1.0, 2.0])
    np.testing.assert_allclose(sc.weighted_mean(s, w), [(4 * 80 + 40) / 5, 50.0])
    # per-asset weights (e.g. by family): factor 0 weighs 4 for asset 0, 2 for asset 1
    w2 = np.array([[4.0, 2.0], [1.0, 1.0], [1.0, 1.0]])
    s2 = np.array([[100.0, 100.0], [50.0, 50.0], [0.0, 0.0]])
    np.testing.assert_allclose(sc.weighted_mean(s2, w2), [450 / 6, 250 / 4])
    assert np.isnan(sc.weighted_mean(np.array([[nan], [nan]]))).all()
    with pytest.raises(ValueError, match="non-negative"):
        sc.weighted_mean(s, np.array([1.0, -1.0, 1.0]))


def test_mean_over_5_plus_mean_over_std_hand():
    s = np.array([[60.0, 50.0, 10.0, nan], [80.0, 50.0, 10.0, nan], [nan, 50.0, nan, 30.0]])
    got = sc.mean_over_5_plus_mean_over_std(s)
    # asset 0: scores 60, 80 -> mean 70, population std 10 -> 70/5 + 70/10 = 21
    # asset 1: all 50 -> std 0 floored at 1 -> 10 + 50 = 60
    # asset 2: 10, 10 -> 2 + 10 = 12; asset 3: one score -> NaN (needs two)
    np.testing.assert_allclose(got, [21.0, 60.0, 12.0, nan])
    got1 = sc.mean_over_5_plus_mean_over_std(s[:, :1], ddof=1)
    sd = np.std([60.0, 80.0], ddof=1)
    np.testing.assert_allclose(got1, [14 + 70 / sd])


def test_common_specific_and_normalize_hand():
    common = np.array([[50.0, 100.0, 20.0, nan]])
    specific = np.array([[100.0, 0.0, 20.0, 40.0]])
    # mixes 0.3c + 0.7s: 85, 30, 20, 40 (common missing -> specific alone)
    got = sc.common_specific(common, specific, common_weight=0.3, specific_weight=0.7)
    np.testing.assert_allclose(got, [[100.0, 10 / 65 * 100, 0.0, 20 / 65 * 100]])
    raw = sc.common_specific(common, specific, normalize_method="none")
    np.testing.assert_allclose(raw, [[85.0, 30.0, 20.0, 40.0]])
    two_to_one = sc.common_specific(
        common, specific, common_weight=2, specific_weight=1, normalize_method="none"
    )
    np.testing.assert_allclose(two_to_one, [[200 / 3, 200 / 3, 20.0, 40.0]])
    np.testing.assert_allclose(sc.normalize(np.array([3.0, 3.0])), [50.0, 50.0])
    with pytest.raises(ValueError, match="normalize"):
        sc.normalize(common, method="zscore")


def test_rd_multiplier_hand():
    # industry 1: rd 10 + 30 on mcap 100 + 100 -> 0.2; industry 2: 5 on 100 -> 0.05
    # market: 45 / 300 = 0.15; sqrt ratios: sqrt(4/3), sqrt(1/3): normalised 1 and 0
    rd_to_mcap = np.array([[0.1, 0.3, 0.05, nan]])
    mcap = np.array([[100.0, 100.0, 100.0, 100.0]])
    ind = np.array([[1, 1, 2, 2]])
    np.testing.assert_allclose(sc.rd_multiplier(rd_to_mcap, mcap, ind), [[1.1, 1.1, 0.9, nan]])
    # three industries: the middle one normalises between the extremes
    rd3 = np.array([[0.1, 0.4, 0.2]])
    m3 = np.ones((1, 3))
    got = sc.rd_multiplier(rd3, m3, np.array([[1, 2, 3]]))
    r = np.sqrt(np.array([0.1, 0.4, 0.2]) / (0.7 / 3))
    np.testing.assert_allclose(got, [0.9 + 0.2 * (r - r.min()) / (r.max() - r.min())])


def test_ps_multiplier_hand():
    ps = np.array([[2.0, 5.0, nan, 3.0], [1.0, 1.0, 2.0, -1.0]])
    np.testing.assert_allclose(
        sc.ps_multiplier(ps), [[1.0, 1 / 4, nan, 1 / 2], [1.0, 1.0, 1 / 2, nan]]
    )


def test_group_median_against_pandas():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 30))
    x[rng.random(x.shape) < 0.2] = nan
    g = rng.integers(0, 3, size=x.shape)
    got = sc.group_median(x, g)
    for r in range(5):
        df = pd.DataFrame({"x": x[r], "g": g[r]})
        med = df[df.g > 0].dropna().groupby("g")["x"].median()
        exp = np.where((g[r] > 0) & np.isfinite(x[r]), med.reindex(g[r]).to_numpy(), nan)
        np.testing.assert_allclose(got[r], exp)


def test_percentile_is_rank_over_n():
    x = np.array([5.0, 1.0, 4.0, 4.0, 9.0])
    np.testing.assert_allclose(sc.percentile_score(x), rankdata(x) / 5 * 100)
