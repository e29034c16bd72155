# shellcheck shell=bash
# Shared by the shell tests' libraries (sourced, not run): stopping the
# processes a test started.  Uses $prog (the test's name) in messages.

# stop_pid PID SIGNAL SECONDS - signal, wait up to SECONDS, then SIGKILL.
stop_pid () {
    local p=$1 sig=$2 secs=$3 i
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
    kill -"$sig" "$p" 2>/dev/null
    for i in $(seq $((secs * 10))); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$p" 2>/dev/null; then
        echo "$prog: cleanup: $p still runs after SIG$sig, killing it" >&2
        kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
    return 0
}
