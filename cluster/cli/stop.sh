#!/usr/bin/env bash
# Stop the workers, then the scheduler, started by start-workers.sh / start-scheduler.sh.
# Only processes recorded in QD_RUN_DIR's pid files are stopped (TERM, then KILL after 10 s).
# With QD_HOSTS set, the workers on those hosts are stopped over ssh first.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"

if [[ -n "${QD_HOSTS:-}" ]]; then
    for h in $QD_HOSTS; do
        # shellcheck disable=SC2029
        ssh "$h" "env QD_RUN_DIR='$QD_RUN_DIR' QD_STOP_SCHEDULER=0 bash '$here/stop.sh'"
    done
fi
shopt -s nullglob
for f in "$QD_RUN_DIR"/worker-"$(hostname -s)"-*.pid; do
    qd_stop_pidfile "$f" &
done
wait
if [[ "${QD_STOP_SCHEDULER:-1}" == 1 && -f "$QD_RUN_DIR/scheduler.pid" ]]; then
    qd_stop_pidfile "$QD_RUN_DIR/scheduler.pid"
    rm -f "$QD_SCHEDULER_FILE"
fi
exit 0
