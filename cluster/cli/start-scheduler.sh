#!/usr/bin/env bash
# Start a dask scheduler in the background on this host and wait for its scheduler file.
#
#   QD_RUN_DIR=/shared/qd-cluster QD_SCHEDULER_HOST=0.0.0.0 cluster/cli/start-scheduler.sh
#
# Settings (environment): QD_RUN_DIR (pid, log and scheduler file; put it on a shared file
# system for multi-host clusters), QD_SCHEDULER_FILE, QD_SCHEDULER_HOST (127.0.0.1 = loopback
# only), QD_SCHEDULER_PORT (8786; 0 = any free port), QD_DASHBOARD_ADDRESS (:8787; :0 = any),
# QD_TLS_DIR (serve tls:// with the certificates there), QD_SCHEDULER_ARGS (extra flags),
# QD_TIMEOUT (seconds to wait for the scheduler file, 60), QD_PYTHON (the interpreter that
# reads the scheduler file; default: the one the QD_DASK command runs on, see common.sh).
# Prints the scheduler address. When it fails (scheduler exited, no address within
# QD_TIMEOUT, interrupted) it stops the scheduler it started. Stop with cluster/cli/stop.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"

host=${QD_SCHEDULER_HOST:-127.0.0.1}
port=${QD_SCHEDULER_PORT:-8786}
dashboard=${QD_DASHBOARD_ADDRESS:-:8787}
protocol=tcp
[[ -n "${QD_TLS_DIR:-}" ]] && protocol=tls

mkdir -p "$QD_RUN_DIR"
if [[ -f "$QD_RUN_DIR/scheduler.pid" ]] && kill -0 "$(cat "$QD_RUN_DIR/scheduler.pid")" 2>/dev/null; then
    echo "a scheduler is already running (pid $(cat "$QD_RUN_DIR/scheduler.pid")); run stop.sh first" >&2
    exit 1
fi
if ! py=$(qd_python); then
    echo "no Python interpreter to read the scheduler file: set QD_PYTHON" >&2
    exit 1
fi
rm -f "$QD_SCHEDULER_FILE"

# On any failure from here on, stop the scheduler this script started (and only that one).
pid=
on_exit() {
    local rc=$?
    if [[ $rc -ne 0 && -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        qd_stop_pidfile "$QD_RUN_DIR/scheduler.pid"
        rm -f "$QD_SCHEDULER_FILE"
        echo "stopped the scheduler (pid $pid) this script started" >&2
    fi
    rm -f "$QD_RUN_DIR/scheduler-file.err"
    return "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# setsid: the scheduler leads its own process group, so stop.sh can end it and its children.
# shellcheck disable=SC2046,SC2086
setsid "$QD_DASK" scheduler \
    --host "$host" --port "$port" --protocol "$protocol" \
    --dashboard-address "$dashboard" \
    --scheduler-file "$QD_SCHEDULER_FILE" \
    $(qd_tls_args scheduler) ${QD_SCHEDULER_ARGS:-} \
    >"$QD_RUN_DIR/scheduler.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$QD_RUN_DIR/scheduler.pid"

for ((i = 0; i < QD_TIMEOUT * 10; i++)); do
    # the file may still be half written: retry until it parses
    if [[ -s "$QD_SCHEDULER_FILE" ]] && address=$("$py" -c \
        'import json,sys; print(json.load(open(sys.argv[1]))["address"])' \
        "$QD_SCHEDULER_FILE" 2>"$QD_RUN_DIR/scheduler-file.err"); then
        echo "$address"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "scheduler exited; log:" >&2
        cat "$QD_RUN_DIR/scheduler.log" >&2
        rm -f "$QD_RUN_DIR/scheduler.pid"
        exit 1
    fi
    sleep 0.1
done
if [[ -s "$QD_SCHEDULER_FILE" ]]; then
    echo "the scheduler wrote $QD_SCHEDULER_FILE, but $py could not read the address in it" \
        "within ${QD_TIMEOUT}s (set QD_PYTHON to a working interpreter):" >&2
    cat "$QD_RUN_DIR/scheduler-file.err" >&2 2>/dev/null || true
else
    echo "scheduler did not write $QD_SCHEDULER_FILE within ${QD_TIMEOUT}s; log in $QD_RUN_DIR/scheduler.log" >&2
fi
exit 1
