#!/bin/bash
# ghostswapctl's device list on a real ghostswapd: the device is found by
# its socket (NAME.sock in GHOSTSWAP_RUNDIR), its FRONTEND is "fuse" (the
# server process, from SO_PEERCRED), its SIZE the one ghostswapd was
# given; SWAP-DEVICE is "-" while nothing swaps to it, also with a loop
# device attached that is not swap (the kernel's /proc/swaps is what
# counts; that the loop device shows once swapon'd is tests/swap's).
#
# Needs root and /dev/fuse; skips (77) otherwise.  Environment:
# GHOSTSWAPD, GHOSTSWAPCTL.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_fuse
[ -x "${GHOSTSWAPCTL:-}" ] || skip "GHOSTSWAPCTL is not set (run through meson test)"
mkdir "$tmp/run"
export GHOSTSWAP_RUNDIR=$tmp/run

"$GHOSTSWAPD" -v --control "$tmp/run/fs0.sock" "$mnt" 96M >"$log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 200); do
    is_mounted && [ -S "$tmp/run/fs0.sock" ] && break
    kill -0 "$pid" 2>/dev/null || fail "ghostswapd exited at start"
    sleep 0.05
done
[ -S "$tmp/run/fs0.sock" ] || fail "no control socket"

out=$("$GHOSTSWAPCTL" --noheadings -o NAME,FRONTEND,SWAP-DEVICE,SIZE,PID) ||
    fail "ghostswapctl list: exit status $?"
[ "$(echo $out)" = "fs0 fuse - 96M $pid" ] ||
    fail "list: '$out', expected fs0 fuse - 96M $pid"
echo "ok: list: $(echo $out)"

if command -v losetup >/dev/null && [ -e /dev/loop-control ] && losetup -f >/dev/null 2>&1; then
    loop=$(losetup --find --show "$mnt/swap") || fail "losetup"
    out=$("$GHOSTSWAPCTL" --noheadings -o NAME,SWAP-DEVICE) || fail "list with $loop: exit status $?"
    [ "$(echo $out)" = "fs0 -" ] || fail "list with $loop attached (not swap): '$out'"
    out=$("$GHOSTSWAPCTL" --json -o NAME,FRONTEND,SWAP-DEVICE)
    echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"]; sys.exit(0 if d == [{"name": "fs0", "frontend": "fuse", "swap-device": None}] else 1)' ||
        fail "list --json: $out"
    losetup -d "$loop" || fail "losetup -d $loop"
    loop=
    echo "ok: a loop device that is not swap is not a swap device"
fi

kill -TERM "$pid"
wait_exit 30
echo "$prog: ok"
