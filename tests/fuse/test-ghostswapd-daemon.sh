#!/bin/bash
# ghostswapd -d: the command returns once the mount is ready (exit 0),
# or with the child's exit status 1 and its error on stderr when start-up
# fails; the detached daemon stops on SIGTERM and unmounts.
#
# Needs root and /dev/fuse; skips (77) otherwise.  Environment: GHOSTSWAPD.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_fuse
command -v pgrep >/dev/null || skip "no pgrep"

# A start-up failure after the fork reaches the caller.
status=0
timeout 30 "$GHOSTSWAPD" -d --control none "$mnt" size=64M \
        "backing=$tmp/no/such/dir/b0" backing-size=64M \
        >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
[ $status = 1 ] || fail "-d with a bad backing: exit status $status, expected 1"
grep "error:" "$tmp/err" | grep -q "$tmp/no/such/dir/b0" ||
    { cat "$tmp/err" >&2; fail "-d with a bad backing: no error on stderr"; }
! is_mounted || fail "-d with a bad backing: mounted anyway"
echo "ok: -d start-up failure: exit 1, $(grep error: "$tmp/err")"

# Ready when it returns.
status=0
timeout 30 "$GHOSTSWAPD" -d --control "$tmp/ctl.sock" "$mnt" size=64M ram-limit=16M \
        >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
[ $status = 0 ] || { cat "$tmp/err" >&2; fail "-d: exit status $status"; }
is_mounted || fail "-d returned before the mount was ready"
[ "$(stat -c %s "$mnt/swap")" = $((64 * 1024 * 1024)) ] || fail "-d: wrong size"
pid=$(pgrep -f -- "ghostswapd -d --control $tmp/ctl.sock $mnt") ||
    fail "cannot find the detached daemon"
[ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] ||
    fail "the daemon is not a session leader (setsid)"
echo "ok: -d returned with the mount ready; daemon $pid"

kill -TERM "$pid"
for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the detached daemon did not stop on SIGTERM"
pid=
! is_mounted || fail "still mounted after SIGTERM"
echo "ok: the detached daemon stopped on SIGTERM and unmounted"
