"""Connecting to a dask.distributed cluster: a local one sized to the machine, or an existing one.

Everything in quantdask builds lazy dask graphs and runs them on whatever client is active
(dask's default client), so connecting once at the top of a session or script is all a user
needs; :func:`connect` is a thin, documented front door to :class:`distributed.Client`.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
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


#: What :func:`connect` says when a script starts a local cluster without the main guard.
GUARD_MESSAGE = """\
quantdask.connect() started a local cluster from the top level of a script that is not
guarded by `if __name__ == "__main__":`.

The local cluster's workers are new Python processes started with multiprocessing's
'{method}' method: each one re-imports your script, reaches the same qd.connect() call and
tries to start a cluster of its own while it is still starting up, which Python refuses
("An attempt has been made to start a new process before the current process has finished
its bootstrapping phase"). Put the code that runs under the main guard:

    import quantdask as qd

    def main():
        client = qd.connect()
        ...

    if __name__ == "__main__":
        main()
{where}"""


def _start_method() -> str:
    method = dask.config.get("distributed.worker.multiprocessing-method", None)
    return str(method or multiprocessing.get_start_method(allow_none=True) or "spawn")


def _bootstrapping() -> bool:
    """True inside a worker process that is still importing the parent's main module."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either order), possibly inside an ``and``."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_is_main_guard(v) for v in test.values)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


def _unguarded_main_call() -> str | None:
    """``"path:line"`` of this call in a script's top-level code outside the main guard.

    Walks the stack to the frame running the ``__main__`` module's top-level code and reads
    the script's syntax tree; None when the call is guarded, made from a function, or there
    is no script file (interactive sessions and notebooks are not re-imported by workers).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals is vars(main):
            break
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for node in tree.body:
        end = getattr(node, "end_lineno", node.lineno)
        if node.lineno <= line <= end:
            if isinstance(node, ast.If) and _is_main_guard(node.test):
                return None
            return f"{path}:{line}"
    return None


def _guard_error(where: str | None) -> RuntimeError:
    text = f"\n(the call is at {where})\n" if where else ""
    return RuntimeError(GUARD_MESSAGE.format(method=_start_method(), where=text))


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
    RuntimeError
        When a local cluster's worker processes cannot start because a script calls
        ``connect()`` at its top level without the ``if __name__ == "__main__":`` guard:
        the message says so and shows the fix (raised in the script and in each worker).

    Notes
    -----
    This is a side-effecting entry point (it starts or joins a cluster), not a lazy function.

    Scripts that start a local cluster must keep that code under
    ``if __name__ == "__main__":``: worker processes are started with the ``spawn`` method
    (dask's default), and each one re-imports the script's top-level code.

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
        client = _start_local(kwargs)
    if verbose:
        print(
            f"quantdask: connected to {client.scheduler.address} "
            f"({len(client.scheduler_info(n_workers=-1)['workers'])} workers); "
            f"dashboard: {client.dashboard_link}"
        )
    return client


def _start_local(kwargs: dict[str, Any]) -> Client:
    """Start a machine-sized local cluster, explaining a missing main guard when it fails."""
    options = {**local_cluster_kwargs(), **kwargs}
    if _bootstrapping() and options.get("processes", True):
        # a worker re-importing the script: say why instead of multiprocessing's RuntimeError
        raise _guard_error(None)
    try:
        return Client(**options)
    except RuntimeError as err:
        chain, e = [], err
        while e is not None and len(chain) < 10:
            chain.append(str(e))
            e = e.__cause__ or e.__context__
        text = " ".join(chain)
        if "bootstrapping phase" in text:
            raise _guard_error(_unguarded_main_call()) from err
        where = _unguarded_main_call() if "failed to start" in text else None
        if where is not None:
            raise _guard_error(where) from err
        raise


__all__ = ["GUARD_MESSAGE", "connect", "local_cluster_kwargs"]
