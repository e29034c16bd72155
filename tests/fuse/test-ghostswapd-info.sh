#!/bin/bash
# What serves a ghostswapd device, as `ghostswapctl stats` and the
# metrics show it: frontend fuse and the FUSE transport serving (the one
# the stats file names), with the reason recorded for it, in
# `stats --json` (info), in the text form, and as the labels of
# ghostswap_info, for --transport=dev, for auto with the fuse module's
# enable_uring off and, where the kernel has FUSE over io_uring, for
# --transport=uring with it on.
#
# Sets enable_uring and restores it in the cleanup trap.  Needs root and
# /dev/fuse; skips (77) with the reason otherwise.  Environment:
# GHOSTSWAPD, GHOSTSWAPCTL.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_fuse
[ -x "${GHOSTSWAPCTL:-}" ] || skip "GHOSTSWAPCTL is not set (run through meson test)"
command -v python3 >/dev/null || skip "python3 not found (to read JSON)"
unset GS_TRANSPORT

ctl () { "$GHOSTSWAPCTL" -s "$tmp/ctl.sock" "$@"; }
# info KEY - info.KEY of `stats --json` ("-" if absent).
info () {
    ctl --json stats >"$tmp/stats.json" || fail "ghostswapctl --json stats failed"
    python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["info"].get(sys.argv[2], "-"))' \
        "$tmp/stats.json" "$1" || fail "no info in $(cat "$tmp/stats.json")"
}

stop_daemon () {
    kill -TERM "$pid"
    wait_exit 20
    [ "$status" = 0 ] || fail "exit status $status after SIGTERM"
}

# check TRANSPORT REASON-PATTERN - the running daemon serves over
# TRANSPORT, and every view says so.
check () {
    local t v
    # The stats file is read through the mount: INIT is answered by then.
    t=$(awk '$1 == "fuse_transport" { print $2 }' "$mnt/stats")
    [ "$t" = "$1" ] || fail "the stats file says '$t', expected $1"
    [ "$(info frontend)" = fuse ] || fail "info.frontend: $(cat "$tmp/stats.json")"
    [ "$(info transport)" = "$1" ] ||
        fail "info.transport, expected $1: $(cat "$tmp/stats.json")"
    [[ $(info transport_reason) == $2 ]] ||
        fail "info.transport_reason '$(info transport_reason)' is not '$2'"
    v=$(info version)
    ctl stats >"$tmp/stats.txt" || fail "ghostswapctl stats failed"
    grep -qE "^frontend +fuse$" "$tmp/stats.txt" &&
        grep -qE "^transport +$1$" "$tmp/stats.txt" ||
        fail "ghostswapctl stats: $(head -5 "$tmp/stats.txt")"
    ctl metrics >"$tmp/metrics" || fail "ghostswapctl metrics failed"
    grep -qF "ghostswap_info{name=\"ctl\",version=\"$v\",frontend=\"fuse\",transport=\"$1\"} 1" \
         "$tmp/metrics" || fail "metrics: $(grep '^ghostswap_info' "$tmp/metrics")"
    echo "ok: $1 ($(info transport_reason)) in stats, stats --json and metrics"
}

start_daemon --transport=dev "$mnt" size=64M
check dev "transport=dev"
stop_daemon

if [ -w "$uring_param" ]; then
    set_uring_param N
    start_daemon --transport=auto "$mnt" size=64M
    check dev "*enable_uring parameter is off*"
    stop_daemon

    set_uring_param Y
    start_daemon --transport=uring "$mnt" size=64M
    timeout 20 cat "$mnt/stats" >/dev/null ||
        fail "the mount does not answer over io_uring within 20 s"
    check uring "transport=uring"
    stop_daemon
else
    echo "note: no writable $uring_param: the io_uring transport not checked"
fi
echo "$prog: ok"
