# shellcheck shell=bash
# ghostswap security tests: shared helpers (sourced).
#
# Each test gets a fresh directory $tmp under $GHOSTSWAP_BACKING_TMPDIR
# (else /var/tmp: backing files must not be on tmpfs), removed at exit
# with everything registered with on_exit (run in reverse order, also on
# failure and on INT/TERM/HUP).
#
# Environment: GHOSTSWAP_PLUGIN (the built plugin), GHOSTSWAPCTL (the
# built client), NBDKIT (default nbdkit).

set -e
set -o pipefail

prog=$(basename "$0")
fail () { echo "$prog: test failed: $*" >&2; exit 1; }
skip () { echo "$prog: skipped: $*"; exit 77; }
say () { echo "$prog: $*"; }

PLUGIN=${GHOSTSWAP_PLUGIN:-}
CTL=${GHOSTSWAPCTL:-}
NBDKIT=${NBDKIT:-nbdkit}
[ -n "$PLUGIN" ] || skip "GHOSTSWAP_PLUGIN is not set (run through meson test)"
[ -r "$PLUGIN" ] || skip "plugin $PLUGIN not found"
[ -n "$CTL" ] || skip "GHOSTSWAPCTL is not set (run through meson test)"
[ -x "$CTL" ] || skip "ghostswapctl $CTL not found"
command -v "$NBDKIT" >/dev/null || skip "$NBDKIT not found"
command -v nbdinfo >/dev/null || skip "nbdinfo not found (libnbd-bin)"

tmp=$(mktemp -d "${GHOSTSWAP_BACKING_TMPDIR:-/var/tmp}/ghostswap-sec-XXXXXX")
chmod 700 "$tmp"
exit_hooks=()
on_exit () { exit_hooks+=("$1"); }
run_exit_hooks () {
    local i
    for (( i = ${#exit_hooks[@]} - 1; i >= 0; i-- )); do
        eval "${exit_hooks[i]}" || true
    done
    rm -rf "$tmp"
}
trap run_exit_hooks EXIT
trap 'exit 1' INT TERM HUP

# mkfile PATH SIZE [MODE]: a file of SIZE bytes with a recognisable first
# page, mode MODE (default 600).
mkfile () {
    head -c 4096 /dev/urandom >"$1"
    truncate -s "$2" "$1"
    chmod "${3:-600}" "$1"
}

# try_start KEY=VALUE...: start nbdkit with the plugin and these
# parameters; $outcome is "served" once nbdinfo reads its size (it is
# stopped again), or "exited:STATUS" if it ended first.  Its stderr is in
# $tmp/err.  (Not --run: nbdkit 1.32 runs the command even after the
# plugin's .after_fork failed.)
nstarts=0
try_start () {
    local s=$tmp/nbd-$((++nstarts)).sock pid status=0
    "$NBDKIT" -U "$s" -f --exit-with-parent "$PLUGIN" size=16M ram-limit=1M \
              "$@" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    for _ in $(seq 1 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" || status=$?
            outcome=exited:$status
            return 0
        fi
        if [ -S "$s" ] && timeout 10 nbdinfo --size "nbd+unix:///?socket=$s" \
                >/dev/null 2>&1; then
            kill "$pid"; wait "$pid" || true
            outcome=served
            return 0
        fi
        sleep 0.1
    done
    kill "$pid"; wait "$pid" || true
    fail "nbdkit $*: neither served nor ended in 60 s"
}

# refused WHAT REGEX KEY=VALUE...: nbdkit with these parameters must fail
# to start, printing exactly one error line, which names "backing" (or
# "control") and matches REGEX.
refused () {
    local what=$1 re=$2 n
    shift 2
    try_start "$@"
    case $outcome in
        served) cat "$tmp/err" >&2; fail "$what: nbdkit started and served" ;;
        exited:0) cat "$tmp/err" >&2; fail "$what: nbdkit exited with status 0" ;;
    esac
    # "nbdkit: error: ..." (warnings may say "Input/output error").
    n=$(grep -c 'error: ' "$tmp/err" || true)
    if [ "$n" -ne 1 ]; then
        cat "$tmp/err" >&2
        fail "$what: $n error lines, expected 1"
    fi
    grep 'error: ' "$tmp/err" | grep -qE "(backing|control).*$re" \
        || { cat "$tmp/err" >&2; fail "$what: the error line does not match /$re/"; }
    say "$what: refused: $(grep 'error: ' "$tmp/err")"
}

# starts WHAT KEY=VALUE...: nbdkit with these parameters starts and serves
# (a positive control for a refusal).
starts () {
    local what=$1
    shift
    try_start "$@"
    [ "$outcome" = served ] || { cat "$tmp/err" >&2; fail "$what: nbdkit did not start ($outcome)"; }
    say "$what: accepted"
}

# start_server KEY=VALUE...: nbdkit in the background with the control
# socket $sock; stopped at exit.
sock=$tmp/ctl.sock
server_pid=
start_server () {
    "$NBDKIT" -U "$tmp/nbd-server.sock" -f --exit-with-parent "$PLUGIN" size=64M \
              ram-limit=1M control="$sock" "$@" 2>"$tmp/server.err" &
    server_pid=$!
    on_exit 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null'
    for _ in $(seq 1 300); do
        [ -S "$sock" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.err" >&2; fail "nbdkit exited early"; }
        sleep 0.1
    done
    fail "no control socket after 30 s"
}

# ctl_refused WHAT REGEX COMMAND...: ghostswapctl COMMAND must exit 1 (the
# server refused) with one line on stderr matching REGEX.
ctl_refused () {
    local what=$1 re=$2 status=0
    shift 2
    timeout 60 "$CTL" --socket "$sock" "$@" >"$tmp/out" 2>"$tmp/err" \
        </dev/null || status=$?
    [ "$status" -eq 1 ] || { cat "$tmp/out" "$tmp/err" >&2; fail "$what: ghostswapctl $*: exit status $status, expected 1"; }
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || { cat "$tmp/err" >&2; fail "$what: expected one line on stderr"; }
    grep -qE -- "$re" "$tmp/err" || { cat "$tmp/err" >&2; fail "$what: stderr does not match /$re/"; }
    say "$what: refused: $(cat "$tmp/err")"
}

# ctl_ok COMMAND...: ghostswapctl COMMAND must succeed.
ctl_ok () {
    timeout 60 "$CTL" --socket "$sock" "$@" >"$tmp/out" 2>"$tmp/err" \
        </dev/null || { cat "$tmp/out" "$tmp/err" >&2; fail "ghostswapctl $*: failed"; }
}

# unchanged PATH SUM: PATH's contents still have checksum SUM.
unchanged () {
    [ "$(md5sum <"$1")" = "$2" ] || fail "$1 was modified"
}
