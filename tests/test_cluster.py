"""qd.connect, and the cluster/ command-line recipe run for real on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from distributed import Client, LocalCluster, default_client
from distributed.security import Security

import quantdask as qd
from quantdask.cluster import local_cluster_kwargs

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "cluster" / "cli"
TLS = REPO / "cluster" / "tls"


# -- a command-line cluster, started with the cluster/cli scripts ----------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


class CliCluster:
    """Scheduler + worker processes started by cluster/cli, always torn down by ``stop``."""

    def __init__(self, run_dir: Path, *, n_workers: int = 2, **env: str) -> None:
        self.run_dir = Path(run_dir)
        self.scheduler_file = self.run_dir / "scheduler.json"
        self.n_workers = n_workers
        self.env = {
            **os.environ,
            "QD_RUN_DIR": str(self.run_dir),
            "QD_SCHEDULER_FILE": str(self.scheduler_file),
            "QD_SCHEDULER_PORT": "0",
            "QD_DASHBOARD_ADDRESS": ":0",
            "QD_NWORKERS": str(n_workers),
            "QD_NTHREADS": "1",
            "QD_TIMEOUT": "60",
            # workers import quantdask (a real deployment pip-installs it on every node) and
            # the cell functions of the test modules (pickled by reference)
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")) if p
            ),
            **env,
        }
        self.pids: set[int] = set()

    def _run(self, script: str) -> str:
        out = subprocess.run(
            ["bash", str(CLI / script)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{script} failed ({out.returncode}): {out.stderr}\n{out.stdout}")
        return out.stdout

    def start(self, **client_kwargs) -> Client:
        try:
            self.address = self._run("start-scheduler.sh").strip().splitlines()[-1]
            self._record_pids()
            self._run("start-workers.sh")
            self._record_pids()
            client = qd.connect(
                scheduler_file=str(self.scheduler_file), verbose=False, **client_kwargs
            )
            client.wait_for_workers(self.n_workers, timeout=60)
            self.pids |= set(client.run(os.getpid).values())
            return client
        except BaseException:
            self.stop()
            raise

    def _record_pids(self) -> None:
        for f in self.run_dir.glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                self.pids.add(int(f.read_text().strip()))

    def worker_pids(self, client: Client) -> dict[str, int]:
        pids = client.run(os.getpid)
        self.pids |= set(pids.values())
        return pids

    def stop(self) -> None:
        self._record_pids()
        try:
            subprocess.run(["bash", str(CLI / "stop.sh")], env=self.env, timeout=60, check=False)
        finally:
            deadline = time.monotonic() + 15
            while any(_alive(p) for p in self.pids) and time.monotonic() < deadline:
                time.sleep(0.2)
            for pid in self.pids:  # last resort: only processes this cluster started
                if _alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    def all_stopped(self) -> bool:
        return not any(_alive(p) for p in self.pids)


@contextlib.contextmanager
def cli_cluster(
    run_dir: Path, *, client_kwargs: dict | None = None, **kwargs
) -> Iterator[tuple[CliCluster, Client]]:
    cluster = CliCluster(run_dir, **kwargs)
    client = cluster.start(**(client_kwargs or {}))
    try:
        yield cluster, client
    finally:
        try:
            client.close()
        finally:
            cluster.stop()
    assert cluster.all_stopped()


# -- cell functions for the real-process sweeps ----------------------------------------------
def momentum_ic(panel: xr.Dataset, window: int, horizon: int) -> dict[str, float]:
    """Rank IC of ``close / close.shift(window) - 1`` vs the next ``horizon``-day return."""
    close = np.asarray(panel["close"].values)
    mom = np.full_like(close, np.nan)
    mom[window:] = close[window:] / close[:-window] - 1
    fwd = np.full_like(close, np.nan)
    fwd[:-horizon] = close[horizon:] / close[:-horizon] - 1
    ok = np.isfinite(mom) & np.isfinite(fwd)
    rows = ok.sum(axis=1) >= 5
    a = np.where(ok, mom, np.nan)[rows]
    b = np.where(ok, fwd, np.nan)[rows]
    ra = pd.DataFrame(a).rank(axis=1).to_numpy()
    rb = pd.DataFrame(b).rank(axis=1).to_numpy()
    ra = ra - np.nanmean(ra, axis=1, keepdims=True)
    rb = rb - np.nanmean(rb, axis=1, keepdims=True)
    ic = np.nansum(ra * rb, axis=1) / np.sqrt(np.nansum(ra**2, axis=1) * np.nansum(rb**2, axis=1))
    return {
        "ic_mean": float(ic.mean()),
        "ic_ir": float(ic.mean() / ic.std(ddof=1)),
        "pid": os.getpid(),
    }


def reference_momentum_ic(close: pd.DataFrame, window: int, horizon: int) -> dict[str, float]:
    from scipy import stats

    mom = close / close.shift(window) - 1
    fwd = close.shift(-horizon) / close - 1
    ics = []
    for d in close.index:
        a, b = mom.loc[d], fwd.loc[d]
        m = a.notna() & b.notna()
        if m.sum() >= 5:
            ics.append(stats.spearmanr(a[m], b[m]).statistic)
    ics = np.asarray(ics)
    return {"ic_mean": ics.mean(), "ic_ir": ics.mean() / ics.std(ddof=1)}


def write_panel(path: Path, *, n_dates: int = 300, n_assets: int = 60, seed: int = 3) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_dates, n_assets)), axis=0))
    close[rng.random(close.shape) < 0.03] = np.nan
    ds = xr.Dataset(
        {"close": (("date", "asset"), close)},
        coords={
            "date": pd.bdate_range("2018-01-01", periods=n_dates),
            "asset": np.array([f"{i:06d}.SH" for i in range(n_assets)]),
        },
    ).chunk({"date": 128, "asset": 32})
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=True)
    return ds.load()


# -- connect ----------------------------------------------------------------------------------
def test_local_cluster_sizing():
    two = local_cluster_kwargs(cores=2, memory_bytes=8 * 2**30)
    assert two == {
        "processes": True,
        "n_workers": 2,
        "threads_per_worker": 1,
        "memory_limit": int(8 * 2**30 * 0.9 / 2),
    }
    big = local_cluster_kwargs(cores=16, memory_bytes=64 * 2**30)
    assert (big["n_workers"], big["threads_per_worker"]) == (8, 2)
    assert big["memory_limit"] * 8 <= 64 * 2**30
    with pytest.raises(ValueError, match="cores"):
        local_cluster_kwargs(cores=0)


def test_connect_starts_local_cluster_and_becomes_default(capsys):
    with qd.connect(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0"
    ) as client:
        out = capsys.readouterr().out
        assert client.dashboard_link in out and "1 workers" in out
        assert default_client() is client
        assert len(client.scheduler_info()["workers"]) == 1
        # quantdask's lazy results run on it: the computation shows up in its task log
        assert dask.array.ones(10, chunks=5).sum().compute() == 10
        assert (
            client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.transition_log)) > 0
        )


def test_connect_joins_address_config_and_rejects_bad_input():
    with LocalCluster(processes=False, n_workers=1, dashboard_address=":0") as cluster:
        with qd.connect(cluster.scheduler_address, verbose=False) as client:
            assert client.scheduler.address == cluster.scheduler_address
        with qd.connect(address=cluster.scheduler_address, verbose=False) as client:
            assert client.scheduler.address == cluster.scheduler_address
        with dask.config.set({"scheduler-address": cluster.scheduler_address}):
            with qd.connect(verbose=False) as client:
                assert client.scheduler.address == cluster.scheduler_address
        with pytest.raises(ValueError, match="only apply when starting a local cluster"):
            qd.connect(cluster.scheduler_address, n_workers=3)
    with pytest.raises(ValueError, match="unsupported scheme 'http'"):
        qd.connect("http://127.0.0.1:8786")
    with pytest.raises(TypeError, match="address must be a string"):
        qd.connect(8786)


def test_connect_tls_with_security():
    sec = Security.temporary()
    with LocalCluster(
        processes=False, n_workers=1, protocol="tls://", security=sec, dashboard_address=":0"
    ) as cluster:
        assert cluster.scheduler_address.startswith("tls://")
        with qd.connect(cluster.scheduler_address, security=sec, verbose=False) as client:
            assert client.submit(lambda x: x + 1, 1).result() == 2


# -- the command-line recipe, for real ---------------------------------------------------------
@pytest.mark.distributed
def test_cli_recipe_runs_sweep_on_two_worker_processes(tmp_path):
    store_url = f"file://{tmp_path}/panel.zarr"
    panel = write_panel(tmp_path / "panel.zarr", n_dates=160)
    grid = {"window": [5, 20, 60], "horizon": [1, 5]}
    with cli_cluster(tmp_path / "run") as (cluster, client):
        worker_pids = set(cluster.worker_pids(client).values())
        assert len(worker_pids) == 2 and os.getpid() not in worker_pids
        assert client.scheduler.address == cluster.address
        lazy = xr.open_zarr(store_url, consolidated=True)  # workers read the store by URL
        ds = qd.sweep(momentum_ic, grid, store=tmp_path / "sweep.zarr", data=lazy, progress=False)
    assert ds.attrs["n_failed"] == 0, ds.attrs["failures"][0]["traceback"]
    close = panel["close"].to_pandas()
    for w in grid["window"]:
        for h in grid["horizon"]:
            ref = reference_momentum_ic(close, w, h)
            for k, v in ref.items():
                np.testing.assert_allclose(ds[k].sel(window=w, horizon=h).item(), v, rtol=1e-9)
    assert set(np.unique(ds["pid"].values)) <= worker_pids
    assert ds.attrs["n_ok"] == 6


@pytest.mark.distributed
def test_cli_recipe_with_tls(tmp_path):
    certs = tmp_path / "certs"
    subprocess.run(
        ["bash", str(TLS / "make-certs.sh"), str(certs)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    sec = Security(
        tls_ca_file=str(certs / "ca.pem"),
        tls_client_cert=str(certs / "client.pem"),
        tls_client_key=str(certs / "client-key.pem"),
        require_encryption=True,
    )
    with cli_cluster(
        tmp_path / "run", n_workers=1, QD_TLS_DIR=str(certs), client_kwargs={"security": sec}
    ) as (cluster, client):
        assert cluster.address.startswith("tls://")
        info = json.loads(cluster.scheduler_file.read_text())
        assert info["address"] == cluster.address
        with qd.connect(cluster.address, security=sec, verbose=False) as tls_client:
            assert tls_client.submit(pow, 2, 10).result() == 1024
        # plain TCP is refused
        with pytest.raises((OSError, TimeoutError)):
            Client(cluster.address.replace("tls://", "tcp://"), timeout=3)


# -- the other recipes: checked as far as this machine allows ---------------------------------
def test_tls_dask_config_yields_encrypted_security(tmp_path):
    import yaml

    subprocess.run(
        ["bash", str(TLS / "make-certs.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    text = (TLS / "dask-tls.yaml").read_text().replace("/etc/quantdask/tls", str(tmp_path))
    config = yaml.safe_load(text)

    def flat(d: dict, prefix: str = "") -> dict:  # dotted keys merge into dask's config
        out = {}
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else k
            out.update(flat(v, key) if isinstance(v, dict) else {key: v})
        return out

    with dask.config.set(flat(config)):
        sec = Security()
        assert sec.require_encryption
        assert sec.tls_ca_file == str(tmp_path / "ca.pem")
        ctx = sec.get_connection_args("client")["ssl_context"]
        assert ctx is not None  # cert, key and CA load and match
        with LocalCluster(
            processes=False, n_workers=1, protocol="tls://", security=sec, dashboard_address=":0"
        ) as cluster:
            with qd.connect(cluster.scheduler_address, verbose=False) as client:
                assert client.submit(sum, [1, 2]).result() == 3


def test_kubernetes_manifest_is_a_daskcluster():
    import yaml

    doc = yaml.safe_load((REPO / "cluster" / "kubernetes" / "daskcluster.yaml").read_text())
    assert doc["apiVersion"] == "kubernetes.dask.org/v1" and doc["kind"] == "DaskCluster"
    worker = doc["spec"]["worker"]["spec"]["containers"][0]
    scheduler = doc["spec"]["scheduler"]["spec"]["containers"][0]
    assert worker["args"][:2] == ["dask", "worker"] and scheduler["args"][:2] == [
        "dask",
        "scheduler",
    ]
    assert worker["image"] == scheduler["image"]
    ports = {p["port"] for p in doc["spec"]["scheduler"]["service"]["ports"]}
    assert ports == {8786, 8787}
    dockerfile = (REPO / "cluster" / "kubernetes" / "Dockerfile").read_text()
    assert 'pip install ".[cluster]"' in dockerfile


def test_jobqueue_script_writes_slurm_and_pbs_jobs():
    pytest.importorskip("dask_jobqueue")
    script = REPO / "cluster" / "jobqueue" / "hpc_sweep.py"
    for system, marker in (("slurm", "#SBATCH -p debug"), ("pbs", "#PBS -q debug")):
        out = subprocess.run(
            [
                sys.executable,
                str(script),
                "--system",
                system,
                "--queue",
                "debug",
                "--cores",
                "4",
                "--memory",
                "16GiB",
                "--prologue",
                "source /shared/env/bin/activate",
                "--dry-run",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        assert marker in out
        assert "source /shared/env/bin/activate" in out
        assert "--nworkers 4" in out and "--nthreads 1" in out


@pytest.mark.parametrize("scheme", ["file", "memory"])
def test_market_store_by_fsspec_url_feeds_a_sweep(scheme, tmp_path):
    """Workers read the market by URL (``file://`` / fsspec memory) through qd.open_panel."""
    import uuid

    import fsspec

    path = qd.synthetic_market(
        tmp_path / "m.zarr", n_assets=20, start="2019-01-01", end="2019-04-30", seed=5
    )
    if scheme == "file":
        url = f"file://{path}"
    else:
        url = f"memory://qd-market-{uuid.uuid4().hex}.zarr"
        fsspec.filesystem("memory").put(str(path), url.removeprefix("memory://"), recursive=True)
    close = qd.open_panel(url)[["close"]]
    with (
        LocalCluster(
            processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        ds = qd.sweep(
            lambda d, window: {"m": float(d["close"].rolling(date=window).mean().mean())},
            {"window": [3, 10]},
            store=tmp_path / "s.zarr",
            data=close,
            client=client,
            progress=False,
        )
    ref = xr.open_zarr(path, group="daily")["close"].to_pandas()
    for w in (3, 10):
        expected = np.nanmean(ref.rolling(w).mean().to_numpy())
        np.testing.assert_allclose(ds["m"].sel(window=w).item(), expected, rtol=1e-12)


# -- item 11: a script calling qd.connect() outside the main guard gets an explanation --------
def _ours(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (our subprocess tree)."""
    import psutil

    pids = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("QD_TEST_MARKER") == marker and p.status() != "zombie":
                pids.append(p.pid)
        except (psutil.Error, OSError):
            continue
    return pids


def test_unguarded_script_connect_explains_the_main_guard(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import quantdask as qd\n"
        "client = qd.connect(n_workers=1, threads_per_worker=1, dashboard_address=':0',"
        " verbose=False)\n"
        "client.close()\n"
    )
    marker = f"unguarded-{os.getpid()}-{time.time_ns()}"
    env = {
        **os.environ,
        "QD_TEST_MARKER": marker,
        "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD": "spawn",
    }
    try:
        res = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
    finally:
        deadline = time.time() + 10
        while _ours(marker) and time.time() < deadline:
            time.sleep(0.2)
        left = _ours(marker)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left running: {left}"
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()
    tail = "\n".join(last[-25:])  # the script's own traceback ends the output
    assert tail.count("quantdask.connect() started a local cluster") == 1
    assert 'if __name__ == "__main__":' in tail
    assert f"(the call is at {script}:2)" in tail
    assert "'spawn' method" in tail


def test_guard_detection_reads_the_script(tmp_path):
    """Guarded and function-level calls are not reported; top-level ones are, with the line."""
    script = tmp_path / "where.py"
    script.write_text(
        "from quantdask.cluster import _unguarded_main_call\n"
        "print('top', _unguarded_main_call())\n"
        "def f():\n"
        "    return _unguarded_main_call()\n"
        "if __name__ == '__main__' and True:\n"
        "    print('guarded', _unguarded_main_call())\n"
        "    print('function', f())\n"
    )
    res = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"top {script}:2", "guarded None", "function None"]


# -- start-scheduler.sh without a `python` on PATH ---------------------------------------------
_SCRIPT_TOOLS = ("bash", "cat", "dirname", "mkdir", "rm", "setsid", "sleep", "ps", "tr", "hostname")


def _path_without_python(tmp_path: Path) -> str:
    """A PATH directory with only the tools the scripts need and the real ``dask`` script.

    ``dask`` is the console script of this interpreter's environment (its first line names the
    interpreter), so nothing called ``python`` or ``python3`` can be found on this PATH.
    """
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in _SCRIPT_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    dask_script = Path(sys.executable).parent / "dask"
    assert dask_script.read_text(errors="replace").startswith("#!"), dask_script
    (bin_dir / "dask").symlink_to(dask_script)
    assert not any((bin_dir / n).exists() for n in ("python", "python3"))
    return str(bin_dir)


def _run_script(
    script: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    import shutil

    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(CLI / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def _no_python_env(tmp_path: Path, **extra: str) -> Iterator[dict[str, str]]:
    marker = f"no-python-{os.getpid()}-{time.monotonic_ns()}"
    run_dir = tmp_path / "run"
    env = {
        "HOME": str(tmp_path),
        "PATH": _path_without_python(tmp_path),
        "QD_RUN_DIR": str(run_dir),
        "QD_SCHEDULER_HOST": "127.0.0.1",
        "QD_SCHEDULER_PORT": "0",
        "QD_DASHBOARD_ADDRESS": ":0",
        "QD_TEST_MARKER": marker,
        **extra,
    }
    try:
        yield env
    finally:
        _run_script("stop.sh", env)
        deadline = time.monotonic() + 10
        while _ours(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _ours(marker)
        for pid in left:  # last resort: only what this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left running: {left}"


@pytest.mark.distributed
def test_start_scheduler_without_python_on_path(tmp_path):
    """The scheduler file is read with the interpreter of the `dask` command, not `python`."""
    with _no_python_env(tmp_path, QD_TIMEOUT="20") as env:
        t0 = time.monotonic()
        res = _run_script("start-scheduler.sh", env)
        assert res.returncode == 0, res.stderr
        assert time.monotonic() - t0 < 15
        address = res.stdout.strip().splitlines()[-1]
        info = json.loads((tmp_path / "run" / "scheduler.json").read_text())
        assert address == info["address"] and address.startswith("tcp://127.0.0.1:")
        assert _ours(env["QD_TEST_MARKER"])  # the scheduler runs until stop.sh


@pytest.mark.distributed
def test_start_scheduler_failure_stops_the_scheduler(tmp_path):
    """An interpreter that cannot read the file: the script says so and stops the scheduler."""
    with _no_python_env(tmp_path, QD_TIMEOUT="4", QD_PYTHON="/bin/false") as env:
        res = _run_script("start-scheduler.sh", env)
        assert res.returncode == 1
        assert "/bin/false could not read the address" in res.stderr, res.stderr
        assert "stopped the scheduler" in res.stderr
        assert not _ours(env["QD_TEST_MARKER"])
        assert not (tmp_path / "run" / "scheduler.pid").exists()
