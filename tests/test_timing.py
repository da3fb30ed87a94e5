"""DTW timing, the timing back-test and offshore-flow timing against independent references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import quantdask as qd


def prices(n: int, seed: int = 0) -> pd.Series:
    g = np.random.default_rng(seed)
    return pd.Series(
        100 * np.exp(np.cumsum(g.normal(0.0003, 0.012, n))),
        index=pd.bdate_range("2015-01-05", periods=n),
        name="close",
    )


# -- DTW timing against a plain reference ----------------------------------------------------
def ref_timing(p: np.ndarray, t: int, m: int, h: int, k: int, r: int, eps: float = 1e-8):
    """Plain loop: z-scored windows, dtaidistance (C) distances, k nearest by (distance, end)."""
    from dtaidistance import dtw as dd

    def z(w):
        sd = w.std()
        return (w - w.mean()) / sd if sd > 0 else np.zeros_like(w)

    q = z(p[t - m + 1 : t + 1])
    found = []
    for e in range(m - 1, t - h + 1):
        c = z(p[e - m + 1 : e + 1])
        d = dd.distance_fast(q, c, window=r + 1, use_pruning=False)
        found.append((d, e))
    if len(found) < k:
        return math.nan, math.nan, len(found)
    found.sort()
    near = found[:k]
    w = np.array([1.0 / (d + eps) for d, _ in near])
    ret = np.array([p[e + h] / p[e] - 1.0 for _, e in near])
    mu = (w * ret).sum() / w.sum()
    sd = math.sqrt((w * (ret - mu) ** 2).sum() / w.sum())
    return mu, sd, len(found)


@pytest.fixture(scope="module")
def small():
    p = prices(170, seed=3)
    out = qd.dtw_timing(p, window=12, horizon=4, k=5, radius=2, threshold=0.3, block_size=37)
    return p, out


def test_dtw_timing_matches_reference(small):
    p, out = small
    pv = p.to_numpy()
    for t in range(len(p)):
        mu, sd, nc = ref_timing(pv, t, 12, 4, 5, 2) if t >= 11 else (math.nan, math.nan, 0)
        row = out.iloc[t]
        assert row["n_candidates"] == nc
        if math.isnan(mu):
            assert math.isnan(row["expected_return"]) and row["signal"] == 0
            continue
        assert row["expected_return"] == pytest.approx(mu, rel=1e-9, abs=1e-14)
        assert row["dispersion"] == pytest.approx(sd, rel=1e-9, abs=1e-14)
        want = 1 if mu > 0.3 * sd else (-1 if mu < -0.3 * sd else 0)
        assert row["signal"] == want
    assert set(out.columns) >= {"expected_return", "dispersion", "signal", "n_candidates"}
    assert out.index.equals(p.index)
    assert out["signal"].dtype == np.int8
    assert (out["signal"] != 0).any()


def test_dtw_timing_first_normalisation_and_itakura():
    p = prices(90, seed=11)
    pv = p.to_numpy()
    m, h, k = 8, 3, 3
    out = qd.dtw_timing(
        p, window=m, horizon=h, k=k, constraint="itakura", slope=2.0, normalize="first"
    )
    from quantdask.kernels.dtw import ITAKURA, band

    lo, hi = band(m, m, ITAKURA, slope=2.0)

    def dist(a, b):  # plain DP restricted to the parallelogram cells
        acc = np.full((m + 1, m + 1), np.inf)
        acc[0, 0] = 0.0
        for i in range(m):
            for j in range(m):
                if (
                    j <= 2 * i
                    and i <= 2 * j
                    and (m - 1 - j) <= 2 * (m - 1 - i)
                    and (m - 1 - i) <= 2 * (m - 1 - j)
                ):
                    acc[i + 1, j + 1] = (a[i] - b[j]) ** 2 + min(
                        acc[i, j], acc[i, j + 1], acc[i + 1, j]
                    )
        return math.sqrt(acc[m, m])

    assert lo[0] == 0 and hi[-1] == m - 1
    for t in (40, 63, 89):
        q = pv[t - m + 1 : t + 1] / pv[t - m + 1]
        found = sorted(
            (dist(q, pv[e - m + 1 : e + 1] / pv[e - m + 1]), e) for e in range(m - 1, t - h + 1)
        )[:k]
        w = np.array([1 / (d + 1e-8) for d, _ in found])
        r = np.array([pv[e + h] / pv[e] - 1 for _, e in found])
        assert out["expected_return"].iloc[t] == pytest.approx((w * r).sum() / w.sum(), rel=1e-9)


def test_prune_does_not_change_result(small):
    p, out = small
    raw = qd.dtw_timing(p, window=12, horizon=4, k=5, radius=2, threshold=0.3, prune=False)
    cols = ["expected_return", "dispersion", "signal", "n_candidates"]
    pd.testing.assert_frame_equal(out[cols], raw[cols])
    assert out["n_dtw"].sum() < raw["n_dtw"].sum()


@pytest.mark.parametrize("t", [30, 77, 120, 169])
def test_no_lookahead_truncation(small, t):
    p, out = small
    cut = qd.dtw_timing(
        p.iloc[: t + 1], window=12, horizon=4, k=5, radius=2, threshold=0.3, block_size=37
    )
    pd.testing.assert_series_equal(cut.iloc[t], out.iloc[t])


def test_dataarray_input_and_nan_dates(small):
    p, out = small
    da = xr.DataArray(p.to_numpy(), dims="date", coords={"date": p.index})
    got = qd.dtw_timing(da, window=12, horizon=4, k=5, radius=2, threshold=0.3)
    # n_dtw (work done) depends on the block size (seeds restart per block); values do not
    pd.testing.assert_frame_equal(
        got.drop(columns="n_dtw"), out.drop(columns="n_dtw"), check_names=False
    )
    holed = p.copy()
    holed.iloc[50] = np.nan
    h = qd.dtw_timing(holed, window=12, horizon=4, k=5, radius=2, threshold=0.3)
    assert math.isnan(h["expected_return"].iloc[50]) and h["signal"].iloc[50] == 0
    # the remaining dates behave like the series with that day removed
    ref = qd.dtw_timing(p.drop(p.index[50]), window=12, horizon=4, k=5, radius=2, threshold=0.3)
    pd.testing.assert_frame_equal(h.drop(p.index[50]), ref)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"window": 0}, ValueError, "window"),
        ({"horizon": -1}, ValueError, "horizon"),
        ({"k": 1.5}, ValueError, "k must"),
        ({"normalize": "rank"}, ValueError, "normalize"),
        ({"constraint": "itakura", "radius": 2}, ValueError, "radius"),
    ],
)
def test_dtw_timing_bad_parameters(kwargs, err, match):
    base = {"window": 10, "horizon": 3, "k": 3}
    with pytest.raises(err, match=match):
        qd.dtw_timing(prices(50), **{**base, **kwargs})


def test_dtw_timing_bad_series():
    with pytest.raises(TypeError, match="series"):
        qd.dtw_timing(np.ones(50), window=10, horizon=3, k=3)
    with pytest.raises(ValueError, match="positive"):
        qd.dtw_timing(-prices(50), window=10, horizon=3, k=3)


@pytest.mark.distributed
def test_dtw_timing_on_a_cluster(small):
    from distributed import Client, LocalCluster, get_task_stream

    p, out = small
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cl:
        with Client(cl) as client, get_task_stream(client) as ts:
            got = qd.dtw_timing(
                p, window=12, horizon=4, k=5, radius=2, threshold=0.3, block_size=37
            )
    # one task per block of 37 dates ran on the worker processes
    blocks = [t for t in ts.data if "_block" in str(t["key"])]
    assert len(blocks) == math.ceil(len(p) / 37)
    pd.testing.assert_frame_equal(got, out)


# -- back-test -------------------------------------------------------------------------------
def test_timing_backtest_hand_case():
    d = pd.bdate_range("2024-01-01", periods=5)
    px = pd.Series([100.0, 101.0, 99.0, 102.0, 102.0], index=d)
    sig = pd.Series([1, -1, 0, 1, 1], index=d)
    bt = qd.timing_backtest(sig, px)
    r = bt.returns
    # position held over day i is the signal of day i - 1
    np.testing.assert_array_equal(r["position"], [1, -1, 0, 1])
    want = [0.01, -(99 / 101 - 1), 0.0, 0.0]
    np.testing.assert_allclose(r["strategy"], want)
    np.testing.assert_allclose(r["benchmark"], [0.01, 99 / 101 - 1, 102 / 99 - 1, 0.0])
    total = (1.01) * (1 + 2 / 101) - 1
    assert bt.metrics["total_return"] == pytest.approx(total)
    assert bt.metrics["benchmark_total_return"] == pytest.approx(0.02)
    assert bt.metrics["excess_total_return"] == pytest.approx(total - 0.02)
    assert bt.metrics["hit_rate"] == pytest.approx(2 / 3)
    assert bt.metrics["exposure"] == pytest.approx(0.75)
    assert bt.metrics["max_drawdown"] == 0.0
    long = qd.timing_backtest(sig, px, long_only=True)
    np.testing.assert_allclose(long.returns["strategy"], [0.01, 0.0, 0.0, 0.0])
    costly = qd.timing_backtest(sig, px, cost=0.001)
    # position changes: 0->1, 1->-1 (2 units), -1->0, 0->1
    np.testing.assert_allclose(
        costly.returns["strategy"], np.array(want) - 0.001 * np.array([1, 2, 1, 1])
    )


def test_timing_backtest_uses_qd_metrics(small):
    p, out = small
    bt = qd.timing_backtest(out, p)
    m = qd.metrics(bt.returns["strategy"], bt.returns["benchmark"])
    for key in (
        "annual_return",
        "sharpe",
        "max_drawdown",
        "excess_annual_return",
        "profit_loss_ratio",
    ):
        assert bt.metrics[key] == pytest.approx(m[key], nan_ok=True)
    with pytest.raises(ValueError, match="signal"):
        qd.timing_backtest(pd.DataFrame({"x": [1]}), p)


def test_dtw_sweep_cells_match_direct_runs(tmp_path):
    p = prices(120, seed=5)
    grid = [
        {"window": 10, "horizon": 3, "k": 3, "constraint": "sakoe_chiba", "radius": 1},
        {"window": 12, "horizon": 5, "k": 4, "constraint": "itakura", "radius": -1},
    ]
    ds = qd.dtw_sweep(p, grid, store=str(tmp_path / "sweep.zarr"))
    a = qd.timing_backtest(qd.dtw_timing(p, window=10, horizon=3, k=3, radius=1), p)
    b = qd.timing_backtest(qd.dtw_timing(p, window=12, horizon=5, k=4, constraint="itakura"), p)
    assert float(ds["total_return"].isel(cell=0)) == pytest.approx(a.metrics["total_return"])
    assert float(ds["total_return"].isel(cell=1)) == pytest.approx(b.metrics["total_return"])
    assert float(ds["hit_rate"].isel(cell=1)) == pytest.approx(b.metrics["hit_rate"])


# -- offshore timing -------------------------------------------------------------------------
def offshore_frame(n: int = 160, seed: int = 2) -> pd.DataFrame:
    g = np.random.default_rng(seed)
    d = pd.bdate_range("2016-01-04", periods=n)
    spot = 10000 * np.exp(np.cumsum(g.normal(0, 0.012, n)))
    fut = spot * (1 + g.normal(-0.002, 0.003, n))
    hkd = 0.87 * np.exp(np.cumsum(g.normal(0, 0.001, n)))
    etf = spot / 1000 * (1 + g.normal(0, 0.004, n)) / hkd
    return pd.DataFrame({"a50_spot": spot, "a50_fut": fut, "a50_etf": etf, "hkd_cny": hkd}, index=d)


def ref_offshore(f: pd.DataFrame, zw: int, sw: int, thr: float, cthr: float) -> dict:
    """Plain loops over dates with the statistics module."""
    import statistics

    spot, fut = list(f["a50_spot"]), list(f["a50_fut"])
    etf = [e * h for e, h in zip(f["a50_etf"], f["hkd_cny"], strict=True)]
    n = len(spot)
    nan = math.nan
    basis = [(fut[i] - spot[i]) / spot[i] * 100 for i in range(n)]
    fdiv = [nan] * n
    ediv = [nan] * n
    for i in range(sw, n):
        sr = spot[i] / spot[i - sw] - 1
        fdiv[i] = (fut[i] / fut[i - sw] - 1 - sr) * 100
        ediv[i] = (etf[i] / etf[i - sw] - 1 - sr) * 100

    def z(x):
        out = [nan] * n
        for i in range(zw - 1, n):
            win = x[i - zw + 1 : i + 1]
            if any(math.isnan(v) for v in win):
                continue
            sd = statistics.stdev(win)
            out[i] = (x[i] - statistics.fmean(win)) / sd if sd > 0 else nan
        return out

    zs = [z(basis), z(fdiv), z(ediv)]
    score, sig = [nan] * n, [0] * n
    for i in range(n):
        vals = [zz[i] for zz in zs if not math.isnan(zz[i])]
        if vals:
            score[i] = sum(vals) / len(vals)
            sig[i] = 1 if score[i] > cthr else (-1 if score[i] < -cthr else 0)
    comp = [[1 if v > thr else (-1 if v < -thr else 0) for v in zz] for zz in zs]
    return {
        "basis": basis,
        "fdiv": fdiv,
        "ediv": ediv,
        "zs": zs,
        "score": score,
        "signal": sig,
        "comp": comp,
    }


def test_offshore_timing_matches_reference():
    f = offshore_frame()
    out = qd.offshore_timing(f, z_window=20, short_window=3, threshold=0.5, combine_threshold=0.4)
    ref = ref_offshore(f, 20, 3, 0.5, 0.4)
    np.testing.assert_allclose(out["basis"], ref["basis"], rtol=1e-12)
    np.testing.assert_allclose(out["fut_divergence"], ref["fdiv"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["etf_divergence"], ref["ediv"], rtol=1e-9, atol=1e-12)
    for name, zz in zip(
        ("basis_z", "fut_divergence_z", "etf_divergence_z"), ref["zs"], strict=True
    ):
        np.testing.assert_allclose(out[name], zz, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(out["score"], ref["score"], rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(out["signal"], ref["signal"])
    np.testing.assert_array_equal(out["basis_signal"], ref["comp"][0])
    np.testing.assert_array_equal(out["etf_divergence_signal"], ref["comp"][2])
    assert out["signal"].isin([-1, 0, 1]).all() and (out["signal"] != 0).any()


@pytest.mark.parametrize("t", [25, 80, 159])
def test_offshore_no_lookahead(t):
    f = offshore_frame()
    full = qd.offshore_timing(f, z_window=20, short_window=3)
    cut = qd.offshore_timing(f.iloc[: t + 1], z_window=20, short_window=3)
    pd.testing.assert_series_equal(cut.iloc[t], full.iloc[t])


def test_offshore_weights_and_errors():
    f = offshore_frame()
    only_basis = qd.offshore_timing(f, z_window=20, weights={"basis": 1.0})
    np.testing.assert_allclose(only_basis["score"], only_basis["basis_z"])
    with pytest.raises(ValueError, match="unknown"):
        qd.offshore_timing(f, weights={"vix": 1.0})
    with pytest.raises(ValueError, match="a50_etf"):
        qd.offshore_timing(f.drop(columns="a50_etf"))
    with pytest.raises(TypeError, match="DataFrame"):
        qd.offshore_timing(np.ones(3))
    with pytest.raises(ValueError, match="z_window"):
        qd.offshore_timing(f, z_window=1)


def test_offshore_backtest_frame_uses_spot():
    f = offshore_frame()
    res = qd.offshore_backtest(f, z_window=20)
    lo, ls = res["long_only"], res["long_short"]
    assert (lo.returns["position"] >= 0).all() and (ls.returns["position"] < 0).any()
    spot_ret = f["a50_spot"].pct_change().iloc[1:]
    np.testing.assert_allclose(ls.returns["benchmark"], spot_ret)
    pos = res["signal"]["signal"].shift(1).iloc[1:]
    np.testing.assert_allclose(ls.returns["strategy"], pos * spot_ret)
    for key in ("annual_return", "sharpe", "hit_rate", "profit_loss_ratio", "max_drawdown"):
        assert key in lo.metrics and key in ls.metrics
    with pytest.raises(ValueError, match="market"):
        qd.offshore_backtest(f, index="000016.SH")


def test_offshore_on_synthetic_market(market):
    res = qd.offshore_backtest(market)  # SSE 50 from the market's index node
    sig = res["signal"]
    off = market["offshore"].to_dataset()
    assert sig.index.equals(off["date"].to_index())
    spot = off["a50_spot"].to_series()
    nxt = spot.shift(-1) / spot - 1
    # the planted lead: the offshore score carries information about the next day's A50 return
    assert sig["score"].corr(nxt) > 0.05
    sse50 = market["index"].to_dataset()["close"].sel(index="000016.SH").to_series()
    np.testing.assert_allclose(
        res["long_short"].returns["benchmark"].to_numpy(),
        sse50.dropna().pct_change().iloc[1:].to_numpy(),
    )


def test_dtw_timing_real_sse_composite(real_data_dir):
    """Real SSE Composite closes (hikyuu, examples/data): reference values and pruning."""
    frame = pd.read_csv(
        real_data_dir / "hikyuu_daily_8_securities_1990_2011.csv.gz",
        usecols=["ts_code", "trade_date", "close"],
    )
    frame = frame[frame["ts_code"] == "000001.SH"].iloc[-400:]
    p = pd.Series(frame["close"].to_numpy(float), index=pd.DatetimeIndex(frame["trade_date"]))
    out = qd.dtw_timing(p, window=20, horizon=5, k=6, radius=2, block_size=90)
    raw = qd.dtw_timing(p, window=20, horizon=5, k=6, radius=2, prune=False)
    cols = ["expected_return", "dispersion", "signal", "n_candidates"]
    pd.testing.assert_frame_equal(out[cols], raw[cols])
    pv = p.to_numpy()
    for t in (60, 211, 399):
        mu, sd, nc = ref_timing(pv, t, 20, 5, 6, 2)
        assert out["expected_return"].iloc[t] == pytest.approx(mu, rel=1e-9)
        assert out["dispersion"].iloc[t] == pytest.approx(sd, rel=1e-9)
        assert out["n_candidates"].iloc[t] == nc


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    t=st.integers(0, 119),
    window=st.integers(2, 15),
    horizon=st.integers(1, 10),
    k=st.integers(1, 6),
    constraint=st.sampled_from(["sakoe_chiba", "itakura", None]),
    normalize=st.sampled_from(["zscore", "first", "none"]),
)
def test_property_truncation_never_changes_row_t(
    seed, t, window, horizon, k, constraint, normalize
):
    p = prices(120, seed=seed % 1000)
    kw = dict(window=window, horizon=horizon, k=k, constraint=constraint, normalize=normalize)
    cols = ["expected_return", "dispersion", "signal", "n_candidates"]
    full = qd.dtw_timing(p, **kw, block_size=23)[cols]
    cut = qd.dtw_timing(p.iloc[: t + 1], **kw, block_size=11)[cols]
    pd.testing.assert_series_equal(cut.iloc[t], full.iloc[t])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31), t=st.integers(0, 159), zw=st.integers(2, 40), sw=st.integers(1, 10)
)
def test_property_offshore_truncation(seed, t, zw, sw):
    f = offshore_frame(seed=seed % 1000)
    full = qd.offshore_timing(f, z_window=zw, short_window=sw)
    cut = qd.offshore_timing(f.iloc[: t + 1], z_window=zw, short_window=sw)
    pd.testing.assert_series_equal(cut.iloc[t], full.iloc[t])
