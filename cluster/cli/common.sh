# Shared settings of the quantdask command-line cluster recipe (sourced, not run).
# Every setting is an environment variable with a default; see cluster/README.md.
QD_RUN_DIR=${QD_RUN_DIR:-$HOME/.quantdask/cluster}
QD_SCHEDULER_FILE=${QD_SCHEDULER_FILE:-$QD_RUN_DIR/scheduler.json}
QD_TIMEOUT=${QD_TIMEOUT:-60}
QD_DASK=${QD_DASK:-dask}

# The Python interpreter for the scripts' small helpers (reading the scheduler file): QD_PYTHON
# when set; else the interpreter named on the first line of the QD_DASK console script (the
# environment dask and quantdask are installed in); else python3, else python from PATH.
qd_python() {
    if [[ -n "${QD_PYTHON:-}" ]]; then
        echo "$QD_PYTHON"
        return 0
    fi
    local dask_path first interp
    dask_path=$(command -v "$QD_DASK" 2>/dev/null || true)
    if [[ -n "$dask_path" && -f "$dask_path" ]]; then
        IFS= read -r first <"$dask_path" || true
        interp=${first#\#!}
        interp=${interp%% *}
        if [[ "$first" == '#!'* && "${interp##*/}" == python* && -x "$interp" ]]; then
            echo "$interp"
            return 0
        fi
    fi
    command -v python3 || command -v python || return 1
}

# TLS: QD_TLS_DIR holds ca.pem and <role>.pem / <role>-key.pem (cluster/tls/make-certs.sh).
qd_tls_args() {  # $1 = role: scheduler | worker
    if [[ -n "${QD_TLS_DIR:-}" ]]; then
        echo "--tls-ca-file $QD_TLS_DIR/ca.pem --tls-cert $QD_TLS_DIR/$1.pem --tls-key $QD_TLS_DIR/$1-key.pem"
    fi
}

# Stop the process group started for one pid file: TERM, wait, then KILL.
qd_stop_pidfile() {
    local pidfile=$1 pid pgid i
    pid=$(cat "$pidfile" 2>/dev/null || true)
    rm -f "$pidfile"
    [[ -z "$pid" ]] && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
    local target=$pid
    [[ "$pgid" == "$pid" ]] && target="-$pid"   # we started it as a group leader (setsid)
    kill -TERM -- "$target" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL -- "$target" 2>/dev/null || true
    # reap the rest of the group (nanny children) if any survived
    [[ "$target" == -* ]] && kill -KILL -- "$target" 2>/dev/null || true
    return 0
}
