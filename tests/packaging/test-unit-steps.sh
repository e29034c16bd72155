#!/bin/bash
# What the systemd units run, run for real without systemd: ghostswapd
# started as ghostswapd@.service starts it, ghostswap-unit-helper
# loop-start/loop-stop (losetup with direct I/O, mkswap, swapon, and back),
# the sleep hook on that real swap device (check; the swapoff policy with
# the real swapoff and swapon), the daemon's refusal to stop while its file
# is swap, cleanup-mount on a live and on a dead mount, wait-pidfile on
# nbdkit with the plugin, and fuse-uring on a stand-in parameter file.
#
# Runs as root; skips (77) with the reason otherwise, or without FUSE,
# loop devices or the built programs.  Touches only its own swap area and
# loop device (other swap areas, even other ghostswap ones, are left
# alone: the hook sees a /proc/swaps reduced to ours), and cleans up on
# every exit.
#
# Environment: SOURCE_ROOT, GHOSTSWAPD (the built daemon), PLUGIN (the
# built nbdkit plugin; optional), NBDKIT (default nbdkit).
# shellcheck disable=SC2015  # pass/fail never fail: A && pass || fail is fine
set -uo pipefail

prog=$(basename "$0")
src=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
helper=$src/packaging/systemd/ghostswap-unit-helper
hook=$src/packaging/systemd/system-sleep/ghostswap
skip () { echo "$prog: skipped: $*"; exit 77; }
failures=0
fail () { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass () { echo "ok: $*"; }

[[ $(id -u) == 0 ]] || skip "not root (mount, losetup and swapon need root)"
[[ -c /dev/fuse ]] && grep -qw fuse /proc/filesystems || skip "no FUSE"
[[ -e /dev/loop-control ]] || skip "no loop devices (/dev/loop-control)"
for p in losetup mkswap swapon swapoff umount; do
    command -v $p >/dev/null || skip "no $p"
done
[[ -n ${GHOSTSWAPD:-} && -x ${GHOSTSWAPD:-} ]] ||
    skip "GHOSTSWAPD is not set to the built ghostswapd (run through meson test)"
losetup -f >/dev/null 2>&1 || skip "no free loop device"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-unit-steps.XXXXXX")
tmp=$(realpath "$tmp")
run=$tmp/run                    # stands for /run/ghostswap
name=steps
mnt=$run/$name
mkdir -p "$mnt" "$run/dead" "$run/nbd"
export GHOSTSWAP_RUNDIR=$run
dpid='' dead_pid='' npid=''

# is_swap_prio5 DEV - is DEV swap with priority 5?
is_swap_prio5 () {
    awk -v d="$1" '$1 == d && $5 == 5 { f = 1 } END { exit !f }' /proc/swaps
}
ours () { losetup -n -O NAME -j "$mnt/swap" 2>/dev/null; }
mounted () { awk -v d="$1" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; }

cleanup () {
    local dev
    set +e
    for dev in $(ours); do
        grep -q "^$dev " /proc/swaps && swapoff "$dev"
        losetup -d "$dev"
    done
    for p in $dpid $dead_pid; do
        kill -QUIT "$p" 2>/dev/null
    done
    [[ -n $npid ]] && kill "$npid" 2>/dev/null
    sleep 0.5
    for d in "$mnt" "$run/dead"; do
        mounted "$d" && umount -l "$d"
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# wait_mount DIR - until DIR is a ghostswap mount (10 s).
wait_mount () {
    for _ in $(seq 100); do
        grep -q " $1 fuse.ghostswap " /proc/mounts && return 0
        sleep 0.1
    done
    return 1
}

# 1. ghostswapd as ghostswapd@steps starts it.
GHOSTSWAP_ARGS="size=256M ram-limit=64M"
# shellcheck disable=SC2086  # split as systemd splits $GHOSTSWAP_ARGS
"$GHOSTSWAPD" --foreground --control "$run/$name.sock" "$mnt" $GHOSTSWAP_ARGS \
    > "$tmp/daemon.log" 2>&1 &
dpid=$!
wait_mount "$mnt" || { cat "$tmp/daemon.log" >&2; fail "ghostswapd did not mount"; exit 1; }
for _ in $(seq 50); do [[ -S $run/$name.sock ]] && break; sleep 0.1; done
[[ -S $run/$name.sock ]] && pass "ghostswapd serves $mnt/swap, control socket $run/$name.sock" ||
    fail "no control socket $run/$name.sock"

# 2. ghostswap-loop@steps: loop-start.
if ! SWAP_PRIORITY=5 "$helper" loop-start "$name"; then
    fail "loop-start"; exit 1
fi
dev=$(ours)
if [[ $dev == /dev/loop* ]] && is_swap_prio5 "$dev" &&
   [[ $(cat "/sys/block/${dev#/dev/}/loop/dio") == 1 ]]; then
    pass "loop-start: $dev is swap, priority 5, direct I/O"
else
    fail "loop-start: dev '$dev'; $(cat /proc/swaps)"
fi
"$helper" loop-start "$name" 2>/dev/null && fail "a second loop-start succeeded"

# 3. The sleep hook on it.  Its view of /proc/swaps is reduced to our
# device (others may swap on this machine meanwhile); mountinfo is real.
fake=$tmp/proc
mkdir -p "$fake/self"
cp /proc/self/mountinfo "$fake/self/mountinfo"
{ head -n1 /proc/swaps; grep "^$dev " /proc/swaps; } > "$fake/swaps"
out=$(GHOSTSWAP_PROC=$fake "$hook" check)
[[ $? == 1 && $out == "$dev: a loop device over $mnt/swap, served by ghostswapd" ]] &&
    pass "hook check: $out" || fail "hook check: $out"
echo HIBERNATE_POLICY=swapoff > "$tmp/sleep.conf"
export GHOSTSWAP_SLEEP_CONF=$tmp/sleep.conf GHOSTSWAP_STATE=$tmp/sleep-state
GHOSTSWAP_PROC=$fake "$hook" pre hibernate
rc=$?
if [[ $rc == 0 ]] && ! grep -q "^$dev " /proc/swaps; then
    pass "hook pre hibernate (swapoff policy): $dev swapped off"
else
    fail "hook pre hibernate: rc $rc; $(cat /proc/swaps)"
fi
GHOSTSWAP_PROC=$fake "$hook" post hibernate
if is_swap_prio5 "$dev"; then
    pass "hook post hibernate: $dev swapped on again, priority 5"
else
    fail "hook post: $(cat /proc/swaps)"
fi
unset GHOSTSWAP_SLEEP_CONF GHOSTSWAP_STATE

# 4. What ghostswapd@'s stop relies on: SIGTERM is refused while its file
# is swap.
kill -TERM "$dpid"
sleep 1
if kill -0 "$dpid" 2>/dev/null && grep -q "refusing to stop" "$tmp/daemon.log"; then
    pass "ghostswapd refuses SIGTERM while $dev swaps on it"
else
    fail "ghostswapd did not refuse SIGTERM: $(tail -n3 "$tmp/daemon.log")"
fi

# 5. loop-stop, then the daemon stops on SIGTERM.
if "$helper" loop-stop "$name" && [[ -z $(ours) ]] && ! grep -q "^$dev " /proc/swaps; then
    pass "loop-stop: swapoff and losetup -d"
else
    fail "loop-stop: $(ours); $(cat /proc/swaps)"
fi
kill -TERM "$dpid"
for _ in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
if ! kill -0 "$dpid" 2>/dev/null && ! mounted "$mnt"; then
    pass "ghostswapd stops on SIGTERM once nothing swaps there"
    dpid=
else
    fail "ghostswapd did not stop"
fi
"$helper" cleanup-mount "$mnt" || fail "cleanup-mount on an unmounted directory"

# 6. cleanup-mount: leaves a live mount alone, unmounts a dead one.
"$GHOSTSWAPD" --foreground --control none "$run/dead" size=64M > "$tmp/dead.log" 2>&1 &
dead_pid=$!
wait_mount "$run/dead" || fail "second ghostswapd did not mount"
"$helper" cleanup-mount "$run/dead" >/dev/null
mounted "$run/dead" && pass "cleanup-mount leaves a live mount" ||
    fail "cleanup-mount unmounted a live mount"
kill -KILL "$dead_pid"
wait "$dead_pid" 2>/dev/null
dead_pid=
"$helper" cleanup-mount "$run/dead" >/dev/null
mounted "$run/dead" && fail "cleanup-mount left a dead mount" ||
    pass "cleanup-mount unmounts a dead mount"

# 7. wait-pidfile, as ghostswap-nbd@'s ExecStartPost.
nbdkit=${NBDKIT:-nbdkit}
if [[ -n ${PLUGIN:-} && -e ${PLUGIN:-} ]] && command -v "$nbdkit" >/dev/null; then
    "$nbdkit" --foreground --pidfile="$run/nbd/nbdkit.pid" --unix="$run/nbd/nbd.sock" \
        "$PLUGIN" control=none 64M > "$tmp/nbdkit.log" 2>&1 &
    npid=$!
    if timeout 30 "$helper" wait-pidfile "$run/nbd/nbdkit.pid" "$npid" &&
       [[ -S $run/nbd/nbd.sock ]]; then
        pass "wait-pidfile: nbdkit ready, socket there"
    else
        fail "wait-pidfile: $(cat "$tmp/nbdkit.log")"
    fi
    kill "$npid"; wait "$npid" 2>/dev/null; npid=
else
    echo "$prog: no PLUGIN or nbdkit: wait-pidfile on nbdkit not checked"
fi
gone=$(sh -c 'echo $$')         # a process that has exited
if timeout 10 "$helper" wait-pidfile "$run/nbd/never.pid" "$gone" 2>/dev/null; then
    fail "wait-pidfile succeeded for a process that is gone"
else
    pass "wait-pidfile fails when the process is gone"
fi

# 8. fuse-uring (ghostswap.conf's fuse-uring=yes), on a stand-in for the
# fuse module's parameter: N becomes Y, Y stays; no parameter (a kernel
# without FUSE over io_uring) fails with the reason, writing nothing.
echo N >"$tmp/enable_uring"
if GHOSTSWAP_ENABLE_URING=$tmp/enable_uring "$helper" fuse-uring >"$tmp/fu.out" 2>&1 &&
   [[ $(<"$tmp/enable_uring") == Y ]] &&
   GHOSTSWAP_ENABLE_URING=$tmp/enable_uring "$helper" fuse-uring >>"$tmp/fu.out" 2>&1 &&
   grep -q "already on" "$tmp/fu.out"; then
    pass "fuse-uring: enable_uring N -> Y, then left on"
else
    fail "fuse-uring: $(cat "$tmp/fu.out"), parameter $(cat "$tmp/enable_uring")"
fi
if GHOSTSWAP_ENABLE_URING=$tmp/no-such-param "$helper" fuse-uring >"$tmp/fu.out" 2>&1; then
    fail "fuse-uring succeeded without the parameter"
elif grep -q "this kernel has no FUSE over io_uring" "$tmp/fu.out" && [[ ! -e $tmp/no-such-param ]]; then
    pass "fuse-uring without the parameter: fails with the reason"
else
    fail "fuse-uring without the parameter: $(cat "$tmp/fu.out")"
fi

if ((failures > 0)); then
    echo "$prog: $failures check(s) failed" >&2
    exit 1
fi
echo "$prog: all checks passed"
