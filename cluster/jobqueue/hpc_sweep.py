"""Run a quantdask parameter sweep on an HPC batch system (SLURM or PBS) with dask-jobqueue.

The scheduler runs inside this script (on the login node or in a small batch job); each batch
job started by dask-jobqueue runs ``--processes`` single-threaded dask workers.

    pip install "quantdask[cluster]"       # dask-jobqueue, on a shared file system
    python cluster/jobqueue/hpc_sweep.py --system slurm --queue normal --account proj42 \
        --jobs 4 --cores 16 --memory 64GiB --market /shared/market.zarr --store /shared/sweep.zarr
    python cluster/jobqueue/hpc_sweep.py --system pbs --queue workq --dry-run   # show job script

Stores must be on a file system (or object store) every node can read: the market is read by
the workers, the sweep store is written by this script (the client).
"""

from __future__ import annotations

import argparse
from typing import Any


def make_cluster(
    system: str,
    *,
    queue: str | None,
    account: str | None,
    cores: int,
    processes: int,
    memory: str,
    walltime: str,
    local_directory: str,
    prologue: list[str],
    interface: str | None,
) -> Any:
    """A dask-jobqueue cluster: one batch job = ``processes`` workers sharing ``cores``/``memory``."""
    from dask_jobqueue import PBSCluster, SLURMCluster

    cls = {"slurm": SLURMCluster, "pbs": PBSCluster}[system]
    kwargs: dict[str, Any] = {
        "cores": cores,
        "processes": processes,  # cores // processes threads per worker
        "memory": memory,
        "walltime": walltime,
        "local_directory": local_directory,  # node-local disk: where workers spill
        "job_script_prologue": prologue,  # e.g. activate the environment with quantdask
        "interface": interface,
        "log_directory": "dask-logs",
    }
    if queue:
        kwargs["queue"] = queue
    if account:
        kwargs["account"] = account
    return cls(**kwargs)


def reversal_ic(daily, window: int, horizon: int) -> dict[str, float]:
    """IC mean and IR of the ``window``-day reversal factor vs ``horizon``-day forward returns."""
    import quantdask as qd

    factor = -qd.ts_mean(qd.daily_returns(daily), window=window)
    fwd = qd.forward_returns(daily, periods=[horizon])[f"fwd_ret_{horizon}"]
    ic = qd.ic(factor, fwd, method="spearman").compute(scheduler="sync").dropna("date")
    return {"ic_mean": float(ic.mean()), "ic_ir": float(ic.mean() / ic.std())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--system", choices=["slurm", "pbs"], required=True)
    p.add_argument("--queue")
    p.add_argument("--account")
    p.add_argument("--jobs", type=int, default=2, help="batch jobs to start")
    p.add_argument("--cores", type=int, default=16, help="cores per job")
    p.add_argument("--processes", type=int, default=None, help="workers per job (default: cores)")
    p.add_argument("--memory", default="64GiB", help="memory per job")
    p.add_argument("--walltime", default="02:00:00")
    p.add_argument("--local-directory", default="/tmp", help="node-local scratch for spilling")
    p.add_argument(
        "--prologue",
        action="append",
        default=[],
        help="shell line run before the workers start (repeatable)",
    )
    p.add_argument("--interface", default=None, help="network interface, e.g. ib0")
    p.add_argument("--market", help="market store path/URL visible to all nodes")
    p.add_argument("--store", help="sweep store path/URL")
    p.add_argument("--dry-run", action="store_true", help="print the job script and exit")
    args = p.parse_args()

    cluster = make_cluster(
        args.system,
        queue=args.queue,
        account=args.account,
        cores=args.cores,
        processes=args.processes or args.cores,
        memory=args.memory,
        walltime=args.walltime,
        local_directory=args.local_directory,
        prologue=args.prologue,
        interface=args.interface,
    )
    try:
        if args.dry_run:
            print(cluster.job_script())
            return
        if not (args.market and args.store):
            p.error("--market and --store are required unless --dry-run")
        import quantdask as qd

        cluster.scale(jobs=args.jobs)
        client = qd.connect(cluster.scheduler_address)
        client.wait_for_workers(1)
        daily = qd.open_panel(args.market)[["close", "pre_close", "suspended", "up_limit"]]
        ds = qd.sweep(
            reversal_ic,
            {"window": [5, 10, 20, 60, 120, 250], "horizon": [1, 5, 20]},
            store=args.store,
            data=daily,
        )
        print(qd.sweep_summary(ds).to_string())
        client.close()
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
