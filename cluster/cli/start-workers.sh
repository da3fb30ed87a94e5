#!/usr/bin/env bash
# Start dask worker processes that join the scheduler named in the scheduler file.
#
#   QD_NWORKERS=2 QD_NTHREADS=1 QD_MEMORY_LIMIT=4GiB cluster/cli/start-workers.sh
#   QD_HOSTS="node1 node2" cluster/cli/start-workers.sh     # over ssh, shared QD_RUN_DIR
#
# Settings (environment): QD_NWORKERS (worker processes per host, default: number of cores),
# QD_NTHREADS (threads per worker, default 1), QD_MEMORY_LIMIT (per worker, default auto =
# machine memory / workers), QD_HOSTS (space-separated hosts to start workers on over ssh;
# empty = this host; the repository and QD_RUN_DIR must be at the same path on every host,
# e.g. a shared home), QD_WORKER_HOST (interface to listen on, default 127.0.0.1 for a
# loopback cluster; set it to the host's address or 0.0.0.0 for multi-host), QD_TLS_DIR,
# QD_WORKER_ARGS (extra flags, e.g. --no-nanny). Each worker is its own process group
# with a pid file worker-<host>-<i>.pid in QD_RUN_DIR. Stop with cluster/cli/stop.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"

if [[ -n "${QD_HOSTS:-}" ]]; then
    for h in $QD_HOSTS; do
        # shellcheck disable=SC2029
        ssh "$h" "env QD_RUN_DIR='$QD_RUN_DIR' QD_SCHEDULER_FILE='$QD_SCHEDULER_FILE' \
            QD_NWORKERS='${QD_NWORKERS:-}' QD_NTHREADS='${QD_NTHREADS:-}' \
            QD_MEMORY_LIMIT='${QD_MEMORY_LIMIT:-}' QD_TLS_DIR='${QD_TLS_DIR:-}' \
            QD_WORKER_HOST='${QD_WORKER_HOST:-0.0.0.0}' QD_WORKER_ARGS='${QD_WORKER_ARGS:-}' \
            bash '$here/start-workers.sh'"
    done
    exit 0
fi

if [[ ! -s "$QD_SCHEDULER_FILE" ]]; then
    echo "no scheduler file at $QD_SCHEDULER_FILE; run start-scheduler.sh first" >&2
    exit 1
fi
nworkers=${QD_NWORKERS:-$(nproc)}
nthreads=${QD_NTHREADS:-1}
memory=${QD_MEMORY_LIMIT:-auto}
listen=${QD_WORKER_HOST:-127.0.0.1}
me=$(hostname -s)
mkdir -p "$QD_RUN_DIR"
for ((i = 0; i < nworkers; i++)); do
    name="$me-$i"
    # shellcheck disable=SC2046,SC2086
    setsid "$QD_DASK" worker \
        --scheduler-file "$QD_SCHEDULER_FILE" \
        --name "$name" --host "$listen" \
        --nworkers 1 --nthreads "$nthreads" --memory-limit "$memory" \
        --local-directory "$QD_RUN_DIR/$name" \
        $(qd_tls_args worker) ${QD_WORKER_ARGS:-} \
        >"$QD_RUN_DIR/worker-$name.log" 2>&1 </dev/null &
    echo $! >"$QD_RUN_DIR/worker-$name.pid"
    echo "worker $name pid $!"
done
