"""qd.sweep / open_sweep / sweep_summary / plot_sweep, checked against independent references."""

from __future__ import annotations

import functools
import json
import uuid
import warnings
from pathlib import Path

import bottleneck as bn
import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import quantdask as qd
from quantdask.sweep.store import SweepStore, cell_key

N_DATES, N_ASSETS = 160, 40


# -- a self-contained factor + IC, and its independent pandas/scipy reference ---------------
def make_panel(seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    ret = rng.normal(0, 0.02, size=(N_DATES, N_ASSETS))
    ret[rng.random(ret.shape) < 0.05] = np.nan  # suspensions
    ret[:30, :5] = np.nan  # late listings
    dates = pd.bdate_range("2020-01-01", periods=N_DATES)
    assets = [f"{i:06d}.SZ" for i in range(N_ASSETS)]
    return xr.DataArray(ret, dims=("date", "asset"), coords={"date": dates, "asset": assets})


def factor_ic(ret: xr.DataArray, window: int, horizon: int) -> dict[str, float]:
    """Rolling-mean reversal factor and its rank IC vs the next ``horizon``-day return."""
    x = np.asarray(ret.values)
    factor = -bn.move_mean(x, window, min_count=window, axis=0)
    fwd = bn.move_sum(x, horizon, min_count=horizon, axis=0)
    fwd = np.roll(fwd, -horizon, axis=0)
    fwd[-horizon:] = np.nan
    ok = np.isfinite(factor) & np.isfinite(fwd)
    f = np.where(ok, factor, np.nan)
    r = np.where(ok, fwd, np.nan)
    fr = bn.nanrankdata(f, axis=1)
    rr = bn.nanrankdata(r, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # dates with no valid pair
        fr -= np.nanmean(fr, axis=1, keepdims=True)
        rr -= np.nanmean(rr, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = np.nansum(fr * rr, axis=1) / np.sqrt(
            np.nansum(fr**2, axis=1) * np.nansum(rr**2, axis=1)
        )
    ic = ic[ok.sum(axis=1) >= 5]
    return {"ic_mean": float(ic.mean()), "ic_ir": float(ic.mean() / ic.std(ddof=1))}


def reference_ic(ret: xr.DataArray, window: int, horizon: int) -> dict[str, float]:
    df = ret.to_pandas()
    factor = -df.rolling(window, min_periods=window).mean()
    fwd = df.rolling(horizon, min_periods=horizon).sum().shift(-horizon)
    ics = []
    for d in df.index:
        a, b = factor.loc[d], fwd.loc[d]
        m = a.notna() & b.notna()
        if m.sum() >= 5:
            ics.append(stats.spearmanr(a[m], b[m]).statistic)
    ics = np.array(ics)
    return {"ic_mean": ics.mean(), "ic_ir": ics.mean() / ics.std(ddof=1)}


GRID = {"window": [5, 10, 20], "horizon": [1, 5]}


@pytest.fixture
def panel() -> xr.DataArray:
    return make_panel()


@pytest.fixture
def client():
    from distributed import Client

    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0") as c:
        yield c


def mem_store() -> str:
    return f"memory://qd-test-sweep-{uuid.uuid4().hex}"


@functools.cache
def reference_for_default_panel(window: int, horizon: int) -> dict[str, float]:
    return reference_ic(make_panel(), window, horizon)


def assert_matches_reference(ds: xr.Dataset, ret: xr.DataArray) -> None:
    xr.testing.assert_identical(ret, make_panel())  # the cached reference is for this panel
    for w in GRID["window"]:
        for h in GRID["horizon"]:
            ref = reference_for_default_panel(w, h)
            for k, v in ref.items():
                np.testing.assert_allclose(ds[k].sel(window=w, horizon=h).item(), v, rtol=1e-9)


# -- core behaviour ---------------------------------------------------------------------------
def test_sweep_product_grid_without_client_matches_reference(panel, tmp_path):
    ds = qd.sweep(factor_ic, GRID, store=tmp_path / "s.zarr", data=panel, progress=False)
    assert ds["ic_ir"].dims == ("window", "horizon")
    assert ds["window"].values.tolist() == [5, 10, 20]
    assert ds["horizon"].values.tolist() == [1, 5]
    assert ds.attrs["n_ok"] == 6 and ds.attrs["n_failed"] == 0
    assert_matches_reference(ds, panel)


def test_sweep_on_client_shares_data_once(panel, client, tmp_path):
    log = tmp_path / "loads.log"

    def load(values):
        with open(log, "a") as fh:  # tasks are pickled even in-process: count via a file
            fh.write("load\n")
        return values

    lazy = da.from_delayed(dask.delayed(load)(panel.values), panel.shape, float)
    lazy_panel = panel.copy(data=lazy)
    ds = qd.sweep(
        factor_ic, GRID, store=tmp_path / "s.zarr", data=lazy_panel, client=client, progress=False
    )
    assert log.read_text().splitlines() == ["load"]  # one load for six cells
    assert_matches_reference(ds, panel)


def test_sweep_uses_default_client_and_prints_dashboard(panel, client, tmp_path, capsys):
    ds = qd.sweep(factor_ic, GRID, store=tmp_path / "s.zarr", data=panel)
    assert client.dashboard_link in capsys.readouterr().err
    assert_matches_reference(ds, panel)


def test_list_grid_gives_cell_dim_with_param_coords(tmp_path):
    grid = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "x"}]
    ds = qd.sweep(
        lambda a, b: a * (10 if b == "x" else 100), grid, store=tmp_path / "s.zarr", progress=False
    )
    assert ds["value"].dims == ("cell",)
    assert ds["a"].values.tolist() == [1, 2, 2]
    assert ds["b"].values.tolist() == ["x", "y", "x"]
    assert ds["value"].values.tolist() == [10, 200, 20]


def test_xarray_outputs_keep_their_dims_and_lazy_outputs_are_computed(tmp_path):
    def curve(scale):
        lazy = da.arange(4, chunks=2) * scale
        return xr.DataArray(lazy, dims="t", coords={"t": [0, 1, 2, 3]}, name="curve")

    ds = qd.sweep(curve, {"scale": [1.0, 2.0, 3.0]}, store=tmp_path / "s.zarr", progress=False)
    assert ds["curve"].dims == ("scale", "t")
    expected = np.outer([1.0, 2.0, 3.0], np.arange(4))
    np.testing.assert_array_equal(ds["curve"].values, expected)
    again = qd.open_sweep(tmp_path / "s.zarr")
    np.testing.assert_array_equal(again["curve"].values, expected)


def test_failing_cell_is_recorded_and_sweep_goes_on(tmp_path):
    def f(x, y):
        if x == 2 and y == "b":
            raise ZeroDivisionError("no luck with x=2")
        return {"m": x * 1.5}

    store = tmp_path / "s.zarr"
    ds = qd.sweep(f, {"x": [1, 2, 3], "y": ["a", "b"]}, store=store, progress=False)
    assert ds.attrs["n_failed"] == 1 and ds.attrs["n_ok"] == 5
    [fail] = ds.attrs["failures"]
    assert fail["params"] == {"x": 2, "y": "b"}
    assert fail["error_type"] == "ZeroDivisionError"
    assert "no luck" in fail["message"] and "Traceback" in fail["traceback"]
    assert np.isnan(ds["m"].sel(x=2, y="b").item())
    assert ds["m"].sel(x=3, y="a").item() == 4.5
    summary = qd.sweep_summary(ds)
    assert summary["status"].tolist() == ["ok", "ok", "ok", "failed", "ok", "ok"]
    assert summary.loc[3, "error_type"] == "ZeroDivisionError"
    assert summary["m"].tolist()[:3] == [1.5, 1.5, 3.0]
    # the failure is stored: a re-run does not retry it unless asked
    calls = []

    def g(x, y):
        calls.append((x, y))
        return {"m": x * 1.5}

    again = qd.sweep(g, {"x": [1, 2, 3], "y": ["a", "b"]}, store=store, progress=False)
    assert calls == [] and again.attrs["n_failed"] == 1
    fixed = qd.sweep(
        g, {"x": [1, 2, 3], "y": ["a", "b"]}, store=store, progress=False, retry_failed=True
    )
    assert calls == [(2, "b")] and fixed.attrs["n_failed"] == 0
    assert fixed["m"].sel(x=2, y="b").item() == 3.0


class Interrupt(BaseException):
    """Stands in for a KeyboardInterrupt / killed process in the middle of a sweep."""


def test_resume_computes_only_missing_cells(panel, tmp_path):
    store = tmp_path / "s.zarr"
    calls: list[tuple[int, int]] = []

    def flaky(ret, window, horizon):
        if len(calls) == 3:
            raise Interrupt
        calls.append((window, horizon))
        return factor_ic(ret, window, horizon)

    with pytest.raises(Interrupt):
        qd.sweep(flaky, GRID, store=store, data=panel, progress=False)
    assert sorted(SweepStore(store).cell_states()) == [0, 1, 2]
    partial = qd.open_sweep(store)
    assert partial.attrs["n_missing"] == 3
    assert qd.sweep_summary(partial)["status"].tolist() == ["ok"] * 3 + ["missing"] * 3
    calls.clear()

    def counted(ret, window, horizon):
        calls.append((window, horizon))
        return factor_ic(ret, window, horizon)

    ds = qd.sweep(counted, GRID, store=store, data=panel, progress=False)
    assert calls == [(10, 5), (20, 1), (20, 5)]
    assert_matches_reference(ds, panel)


def test_half_written_cell_is_recomputed(tmp_path):
    store = tmp_path / "s.zarr"
    qd.sweep(lambda k: float(k), {"k": [1, 2, 3]}, store=store, progress=False)
    # simulate a write interrupted before its completion marker, and a torn metadata file
    meta = store / "cells" / cell_key(1) / "zarr.json"
    doc = json.loads(meta.read_text())
    del doc["attributes"]["quantdask_done"]
    meta.write_text(json.dumps(doc))
    (store / "cells" / cell_key(2) / "zarr.json").write_text('{"zarr_format": 3, "node')
    assert sorted(SweepStore(store).cell_states()) == [0]
    calls = []

    def f(k):
        calls.append(k)
        return float(k) * 2

    ds = qd.sweep(f, {"k": [1, 2, 3]}, store=store, progress=False)
    assert calls == [2, 3]
    assert ds["value"].values.tolist() == [1.0, 4.0, 6.0]


def test_store_readable_with_open_zarr_and_open_sweep(tmp_path):
    store = tmp_path / "s.zarr"
    ds = qd.sweep(
        lambda a, b: {"s": a + b, "p": a * b},
        {"a": [1, 2], "b": [0.5, 1.5, 2.5]},
        store=store,
        progress=False,
    )
    with xr.open_zarr(store) as plain:
        xr.testing.assert_equal(plain.load(), ds)
        assert plain.attrs["n_ok"] == 6
    xr.testing.assert_identical(qd.open_sweep(store), ds)
    np.testing.assert_array_equal(ds["p"].values, np.outer([1, 2], [0.5, 1.5, 2.5]))


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_fsspec_urls(kind, tmp_path):
    url = mem_store() if kind == "memory" else f"file://{tmp_path}/s.zarr"
    ds = qd.sweep(lambda n: {"sq": n * n}, {"n": [1, 2, 3]}, store=url, progress=False)
    assert ds["sq"].values.tolist() == [1, 4, 9]
    xr.testing.assert_identical(qd.open_sweep(url), ds)
    calls = []
    qd.sweep(lambda n: calls.append(n) or {"sq": 0}, {"n": [1, 2, 3]}, store=url, progress=False)
    assert calls == []


def test_different_grid_on_same_store_raises_unless_overwrite(tmp_path):
    store = tmp_path / "s.zarr"
    qd.sweep(lambda k: k, {"k": [1, 2]}, store=store, progress=False)
    with pytest.raises(ValueError, match="different grid"):
        qd.sweep(lambda k: k, {"k": [1, 2, 3]}, store=store, progress=False)
    ds = qd.sweep(lambda k: k, {"k": [1, 2, 3]}, store=store, progress=False, overwrite=True)
    assert ds["value"].values.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("func", "grid", "err", "match"),
    [
        (42, {"a": [1]}, TypeError, "callable"),
        (abs, {}, ValueError, "empty"),
        (abs, {"a": []}, ValueError, "empty"),
        (abs, {"a": [1, 1]}, ValueError, "duplicate"),
        (abs, {"a": 3}, TypeError, "list of values"),
        (abs, {"a": [[1, 2]]}, TypeError, "numbers, strings or bools"),
        (abs, {"a": [1, "x"]}, TypeError, "mixes value types"),
        (abs, {"a": [float("nan")]}, ValueError, "non-finite"),
        (abs, {"cell": [1]}, ValueError, "reserved"),
        (abs, [{"a": 1}, {"b": 2}], ValueError, "same parameters"),
        (abs, [{"a": 1}, 5], TypeError, r"grid\[1\]"),
        (abs, "a", TypeError, "grid must be"),
    ],
)
def test_bad_inputs_raise(func, grid, err, match, tmp_path):
    with pytest.raises(err, match=match):
        qd.sweep(func, grid, store=tmp_path / "s.zarr", progress=False)


def test_bad_outputs_are_cell_errors(tmp_path):
    def f(kind):
        return {"str": "text", "clash": xr.Dataset({"kind": 1.0})}[kind]

    ds = qd.sweep(f, {"kind": ["str", "clash"]}, store=tmp_path / "s.zarr", progress=False)
    errors = {r["params"]["kind"]: r for r in ds.attrs["failures"]}
    assert errors["str"]["error_type"] == "TypeError"
    assert errors["clash"]["error_type"] == "ValueError" and "clash" in errors["clash"]["message"]


def test_progress_bar_reports_cells(tmp_path, capsys):
    qd.sweep(lambda k: k, {"k": [1, 2, 3, 4]}, store=tmp_path / "s.zarr", progress=True)
    assert "4/4" in capsys.readouterr().err


# -- plot -------------------------------------------------------------------------------------
def test_plot_sweep_heat_map(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def f(a, b, c):
        if a == 2 and b == 20:
            raise RuntimeError("x")
        return {"score": a * 100 + b + c}

    ds = qd.sweep(
        f, {"a": [1, 2, 3], "b": [10, 20], "c": [0, 1]}, store=tmp_path / "s.zarr", progress=False
    )
    ax = qd.plot_sweep(ds, "score", x="a", y="b", sel={"c": 1})
    image = ax.images[0].get_array()
    expected = np.array([[111, 211, 311], [121, np.nan, 321]])
    np.testing.assert_array_equal(image.filled(np.nan), expected)
    assert image.mask[1, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "b"
    with pytest.raises(ValueError, match="still has dims"):
        qd.plot_sweep(ds, "score", x="a", y="b")
    with pytest.raises(ValueError, match="metric 'nope'"):
        qd.plot_sweep(ds, "nope", x="a", y="b")
    with pytest.raises(ValueError, match="not a dimension"):
        qd.plot_sweep(ds, "score", x="a", y="zz", sel={"c": 0})
    plt.close("all")


def test_reference_self_check(panel):
    """The numpy factor used above agrees with the pandas/scipy reference (sanity of the test)."""
    got, ref = factor_ic(panel, 10, 5), reference_ic(panel, 10, 5)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-9)
    assert Path(__file__).name == "test_sweep.py"


def test_scalar_outputs_round_trip_exactly(tmp_path):
    def f(k):
        return {
            "third": k / 3,
            "tiny": 1e-300 * k,
            "nan": float("nan"),
            "int": np.int64(2**53 + k),
            "flag": bool(k % 2),
            "f32": np.float32(k / 7),
        }

    store = tmp_path / "s.zarr"
    ds = qd.sweep(f, {"k": [1, 2]}, store=store, progress=False)
    again = qd.open_sweep(store)
    for name in ("third", "tiny", "int", "flag", "f32"):
        assert again[name].dtype == ds[name].dtype
        np.testing.assert_array_equal(again[name].values, ds[name].values)
    assert again["third"].values.tolist() == [1 / 3, 2 / 3]
    assert again["int"].values.tolist() == [2**53 + 1, 2**53 + 2]
    assert again["f32"].values.tolist() == [np.float32(1 / 7), np.float32(2 / 7)]
    assert np.isnan(again["nan"].values).all()


def test_sweep_without_data_on_client(client, tmp_path):
    """Cells without ``data=`` on a cluster (the tasks are pickled even in-process)."""
    ds = qd.sweep(
        lambda a, b: {"p": a * b},
        {"a": [1, 2], "b": [3, 4]},
        store=tmp_path / "s.zarr",
        client=client,
        progress=False,
    )
    assert ds.attrs["n_failed"] == 0, ds.attrs["failures"]
    np.testing.assert_array_equal(ds["p"].values, [[3, 4], [6, 8]])


def test_sweep_on_client_computes_nothing_locally(panel, client, tmp_path):
    """The lazy panel is computed on the cluster, never by a local dask scheduler."""
    from quantdask.testing import raise_if_dask_computes

    lazy_panel = panel.chunk({"date": 40})
    with raise_if_dask_computes():
        ds = qd.sweep(
            factor_ic,
            GRID,
            store=tmp_path / "s.zarr",
            data=lazy_panel,
            client=client,
            progress=False,
        )
    assert_matches_reference(ds, panel)
