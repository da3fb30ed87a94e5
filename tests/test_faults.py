"""Faults with real processes: a worker SIGKILLed mid-sweep, the client SIGKILLed mid-sweep and
resumed, and a small-memory worker that must spill to disk instead of dying."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from distributed import wait
from test_cluster import REPO, cli_cluster

import quantdask as qd
from quantdask.sweep.store import SweepStore

pytestmark = pytest.mark.distributed

GRID = {"window": [3, 5, 8, 13], "horizon": [1, 2, 4]}


def make_panel(seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.02, size=(120, 30))


def slow_score(panel: np.ndarray, window: int, horizon: int, *, pause: float = 0.4) -> dict:
    """A deterministic per-cell score that takes ``pause`` seconds (keeps the sweep in flight)."""
    time.sleep(pause)
    ma = np.stack([panel[i : i + window].mean(axis=0) for i in range(len(panel) - window)])
    fwd = np.stack(
        [panel[i + window : i + window + horizon].sum(axis=0) for i in range(len(panel) - window)]
    )
    c = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(ma, fwd, strict=True)])
    return {"ic_mean": float(c.mean()), "ic_std": float(c.std())}


def logged_score(inputs: tuple[np.ndarray, str], window: int, horizon: int) -> dict:
    """``slow_score`` that appends ``window,horizon`` to a log file when it finishes."""
    panel, log = inputs
    out = slow_score(panel, window, horizon)
    with open(log, "a") as fh:
        fh.write(f"{window},{horizon}\n")
    return out


def clean_run(tmp_path: Path) -> xr.Dataset:
    """The same sweep without a cluster: the reference every fault run must reproduce."""
    return qd.sweep(
        lambda panel, window, horizon: slow_score(panel, window, horizon, pause=0),
        GRID,
        store=tmp_path / "clean.zarr",
        data=make_panel(),
        client=None,
        progress=False,
    )


def assert_same_cells(ds: xr.Dataset, ref: xr.Dataset) -> None:
    assert ds.attrs["n_ok"] == ref.attrs["n_ok"] == 12
    for name in ("ic_mean", "ic_std"):
        np.testing.assert_array_equal(ds[name].values, ref[name].values)
    xr.testing.assert_identical(ds.drop_attrs(), ref.drop_attrs())


def test_worker_sigkill_mid_sweep(tmp_path):
    store = tmp_path / "sweep.zarr"
    with cli_cluster(tmp_path / "run") as (cluster, client):
        pids = cluster.worker_pids(client)
        victim = next(iter(pids.values()))
        killed = {}

        def killer() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                done = len(SweepStore(store).cell_states()) if (store / "cells").exists() else 0
                if done >= 2:
                    killed["done_at_kill"] = done
                    os.kill(victim, signal.SIGKILL)
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=killer)
        thread.start()
        try:
            ds = qd.sweep(slow_score, GRID, store=store, data=make_panel(), progress=False)
        finally:
            thread.join()
        assert 2 <= killed["done_at_kill"] < 12  # the kill landed mid-sweep
        assert victim not in set(client.run(os.getpid).values())
        cluster.worker_pids(client)  # the nanny's replacement worker, for teardown
    assert_same_cells(ds, clean_run(tmp_path))


DRIVER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import quantdask as qd
    from test_faults import GRID, logged_score, make_panel

    scheduler_file, store, log = sys.argv[1:]
    qd.connect(scheduler_file=scheduler_file, verbose=False)
    qd.sweep(logged_score, GRID, store=store, data=(make_panel(), log), progress=False)
    """
)


def test_client_sigkill_then_resume(tmp_path):
    store = tmp_path / "sweep.zarr"
    log = tmp_path / "computed.log"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
    }
    with cli_cluster(tmp_path / "run") as (cluster, client):
        proc = subprocess.Popen(
            [sys.executable, str(driver), str(cluster.scheduler_file), str(store), str(log)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 90
            finished: set[int] = set()
            while time.monotonic() < deadline and proc.poll() is None:
                if (store / "cells").exists():
                    finished = set(SweepStore(store).cell_states())
                    if len(finished) >= 3:
                        break
                time.sleep(0.05)
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            proc.stderr.close()
        assert 3 <= len(finished) < 12, finished
        ds = qd.sweep(
            logged_score,
            GRID,
            store=store,
            data=(make_panel(), str(log)),
            client=client,
            progress=False,
        )
    cells = [f"{w},{h}" for w in GRID["window"] for h in GRID["horizon"]]
    counts = Counter(log.read_text().splitlines())
    assert set(counts) == set(cells)
    for i in finished:  # finished before the kill: never computed again
        assert counts[cells[i]] == 1, (cells[i], counts)
    assert_same_cells(ds, clean_run(tmp_path))


def test_small_memory_worker_spills_instead_of_dying(tmp_path, full_scale):
    # A (date, asset) panel of several fields that together exceed the worker's memory limit.
    # 500 MiB: an idle worker process already holds ~230 MiB of unmanaged memory (imports)
    limit = 500 * 2**20
    n_dates, n_assets, n_fields = (5000, 5500, 8) if full_scale else (2000, 5500, 8)
    shape, chunks = (n_dates, n_assets), (125, n_assets)
    assert n_dates * n_assets * 8 * n_fields > 1.3 * limit
    with cli_cluster(tmp_path / "run", n_workers=1, QD_MEMORY_LIMIT=str(limit)) as (
        cluster,
        client,
    ):
        [pid_before] = cluster.worker_pids(client).values()
        [addr_before] = client.scheduler_info()["workers"]

        def field(k: int) -> da.Array:
            return da.fromfunction(
                lambda i, j: np.sin(i * 1e-3) + np.cos(j * 1e-2) + k,
                shape=shape,
                chunks=chunks,
                dtype=float,
            )

        fields = client.persist([field(k) for k in range(n_fields)])
        wait(fields)
        spilled = client.run(lambda dask_worker: len(dask_worker.data.slow))
        cross_mean = client.compute(sum(fields).mean(axis=1)).result()
        total = client.compute(da.stack(fields).sum()).result()
        assert next(iter(spilled.values())) > 0  # chunks went to disk
        assert list(client.scheduler_info()["workers"]) == [addr_before]  # never restarted
        assert list(cluster.worker_pids(client).values()) == [pid_before]
        del fields
    i = np.arange(n_dates)
    j = np.arange(n_assets)
    ks = np.arange(n_fields)
    expected_mean = n_fields * (np.sin(i * 1e-3) + np.cos(j * 1e-2).mean()) + ks.sum()
    np.testing.assert_allclose(cross_mean, expected_mean, rtol=1e-10)
    expected_total = (
        n_fields * (n_assets * np.sin(i * 1e-3).sum() + n_dates * np.cos(j * 1e-2).sum())
        + n_dates * n_assets * ks.sum()
    )
    np.testing.assert_allclose(total, expected_total, rtol=1e-10)
