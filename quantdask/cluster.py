"""Connecting to a dask.distributed cluster: a local one sized to the machine, or an existing one.

Everything in quantdask builds lazy dask graphs and runs them on whatever client is active
(dask's default client), so connecting once at the top of a session or script is all a user
needs; :func:`connect` is a thin, documented front door to :class:`distributed.Client`.
"""

from __future__ import annotations

import os
from typing import Any

import dask
from distributed import Client
from distributed.system import MEMORY_LIMIT

#: Share of the machine's memory a local cluster's workers may use together.
LOCAL_MEMORY_FRACTION = 0.9

_CLIENT_ONLY_KWARGS = frozenset(
    {
        "loop",
        "timeout",
        "set_as_default",
        "scheduler_file",
        "security",
        "asynchronous",
        "name",
        "heartbeat_interval",
        "serializers",
        "deserializers",
        "extensions",
        "direct_to_workers",
        "connection_limit",
    }
)


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def local_cluster_kwargs(
    *, cores: int | None = None, memory_bytes: int | None = None
) -> dict[str, Any]:
    """Default :class:`distributed.LocalCluster` sizing for this machine.

    Parameters
    ----------
    cores : int, optional
        Cores to plan for; the cores this process may run on by default.
    memory_bytes : int, optional
        Memory to plan for; the machine's (or cgroup's) limit by default.

    Returns
    -------
    dict
        ``processes=True``, ``n_workers``, ``threads_per_worker`` and ``memory_limit`` (bytes
        per worker). Up to 4 cores: one single-threaded worker process per core (quantdask's
        kernels are numpy/numba code that holds the GIL in places, so processes scale best).
        Above 4 cores: two threads per worker process, halving the number of processes and
        their fixed memory cost. Workers share :data:`LOCAL_MEMORY_FRACTION` of the memory.
    """
    cores = _usable_cores() if cores is None else int(cores)
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    memory_bytes = int(MEMORY_LIMIT if memory_bytes is None else memory_bytes)
    threads = 1 if cores <= 4 else 2
    n_workers = max(1, cores // threads)
    return {
        "processes": True,
        "n_workers": n_workers,
        "threads_per_worker": threads,
        "memory_limit": int(memory_bytes * LOCAL_MEMORY_FRACTION / n_workers),
    }


def connect(address: str | None = None, *, verbose: bool = True, **kwargs: Any) -> Client:
    """Connect to a dask cluster and make it the default for all quantdask computations.

    Parameters
    ----------
    address : str, optional
        Scheduler address of an existing cluster, ``tcp://host:8786`` or ``tls://host:8786``
        (TLS needs ``security=``, a :class:`distributed.security.Security`, or the
        ``distributed.comm.tls`` dask configuration, see ``cluster/tls/``). When omitted,
        quantdask joins the scheduler named by ``scheduler_file=`` or by the dask
        configuration key ``scheduler-address`` (e.g. ``DASK_SCHEDULER_ADDRESS``), and
        otherwise starts a :class:`distributed.LocalCluster` sized to the machine (see
        :func:`local_cluster_kwargs`).
    verbose : bool, default True
        Print the scheduler address and the dashboard link.
    **kwargs
        Passed to :class:`distributed.Client` (``scheduler_file``, ``security``, ``timeout``,
        ...) and, when a local cluster is started, to :class:`distributed.LocalCluster`
        (``n_workers``, ``threads_per_worker``, ``memory_limit``, ``processes``,
        ``dashboard_address``, ...), overriding the machine-sized defaults.

    Returns
    -------
    distributed.Client
        The connected client, set as dask's default; ``client.dashboard_link`` is the
        dashboard URL. Closing it also closes a local cluster started here.

    Raises
    ------
    ValueError
        If ``address`` is not a ``tcp://``, ``tls://``, ``ucx://``, ``inproc://`` URL or a
        bare ``host:port``, or if cluster-sizing keywords are given together with an address.
    TypeError
        If ``address`` is not a string.

    Notes
    -----
    This is a side-effecting entry point (it starts or joins a cluster), not a lazy function.

    Examples
    --------
    >>> import quantdask as qd
    >>> client = qd.connect(n_workers=2, threads_per_worker=1)  # doctest: +SKIP
    >>> client = qd.connect("tls://10.0.0.5:8786", security=sec)  # doctest: +SKIP
    >>> client = qd.connect(scheduler_file="/shared/scheduler.json")  # doctest: +SKIP
    """
    if address is not None:
        if not isinstance(address, str):
            raise TypeError(f"address must be a string like 'tcp://host:8786', got {address!r}")
        scheme = address.split("://", 1)[0] if "://" in address else None
        if scheme is not None and scheme not in {"tcp", "tls", "ucx", "inproc", "ws", "wss"}:
            raise ValueError(
                f"address {address!r} has an unsupported scheme {scheme!r}; use tcp:// or tls://"
            )
    cluster_kwargs = {k: v for k, v in kwargs.items() if k not in _CLIENT_ONLY_KWARGS}
    joins_existing = (
        address is not None
        or kwargs.get("scheduler_file") is not None
        or bool(dask.config.get("scheduler-address", None))
    )
    if joins_existing:
        if cluster_kwargs:
            raise ValueError(
                "cluster-sizing keywords "
                f"{sorted(cluster_kwargs)} only apply when starting a local cluster, "
                "not when joining an existing scheduler"
            )
        client = Client(address, **kwargs)
    else:
        client = Client(**{**local_cluster_kwargs(), **kwargs})
    if verbose:
        print(
            f"quantdask: connected to {client.scheduler.address} "
            f"({len(client.scheduler_info(n_workers=-1)['workers'])} workers); "
            f"dashboard: {client.dashboard_link}"
        )
    return client


__all__ = ["connect", "local_cluster_kwargs"]
