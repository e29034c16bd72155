#!/bin/bash
# ghostswapd's FUSE transports: with the fuse module's enable_uring on,
# transport=uring carries requests of every kind (read, write, hole
# punch and zero range, flush, fsync, getattr, ...) over io_uring and none
# over /dev/fuse after INIT, with the data intact (checked against a copy
# kept here); transport=dev keeps to /dev/fuse; with enable_uring off, or
# with io_uring refused by the kernel (kernel.io_uring_disabled), uring
# and auto fall back to /dev/fuse with the reason logged; a bad value is
# a one-line error.  The per-kind counters come from the stats file;
# that the kernel answers at all over the ring is the kernel accepting
# it (it holds every request until each of its queues has an entry).
#
# Sets enable_uring and kernel.io_uring_disabled and restores them in
# the cleanup trap.  Needs root and /dev/fuse; skips (77) with the
# reason otherwise.  Environment: GHOSTSWAPD.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_fuse
set_uring_param Y
unset GS_TRANSPORT

KiB=1024
MiB=$((1024 * KiB))

stat_value () { awk -v k="$1" '$1 == k { print $2 }' "$mnt/stats"; }

# stop_daemon - SIGTERM, exit 0.
stop_daemon () {
    kill -TERM "$pid"
    wait_exit 20
    [ $status = 0 ] || fail "exit status $status after SIGTERM"
}

# transport_is T - the stats file names T as the transport serving.
transport_is () {
    [ "$(stat_value fuse_transport)" = "$1" ] ||
        fail "served over '$(stat_value fuse_transport)', expected $1"
}

# data_roundtrip - 1 MiB of random data in and out with O_DIRECT.
data_roundtrip () {
    head -c $MiB /dev/urandom >"$tmp/data"
    dd if="$tmp/data" of="$mnt/swap" bs=64k seek=16 oflag=direct conv=notrunc \
       status=none || fail "write"
    dd if="$mnt/swap" of="$tmp/back" bs=64k skip=16 count=16 iflag=direct \
       status=none || fail "read"
    cmp "$tmp/data" "$tmp/back" || fail "data read back differs"
}

# ---- io_uring: every kind of request over the ring ----

start_daemon --transport=uring "$mnt" size=64M
# The kernel holds every request until each of its queues has an entry:
# a daemon that registers too few hangs its mount, so the first access
# is timed.
timeout 20 cat "$mnt/stats" >/dev/null ||
    fail "the mount does not answer over io_uring within 20 s (every queue registered?)"
transport_is uring
[ "$(stat_value fuse_uring_queues)" = "$(( $(sed 's/.*-//' /sys/devices/system/cpu/possible) + 1 ))" ] ||
    fail "$(stat_value fuse_uring_queues) queues, not one per possible CPU"
grep -q "transport: io_uring, " "$log" || fail "-v did not log the transport"
echo "ok: transport=uring serves over io_uring, $(stat_value fuse_uring_queues) queues"

# A shadow copy of the first 4 MiB, changed as the device is.
head -c $((4 * MiB)) /dev/zero >"$tmp/shadow"

declare -A before
snapshot () {
    local k
    for k in read write fallocate flush fsync getattr; do
        before[$k]=$(stat_value fuse_uring_$k)
    done
}
# grew KIND N - at least N more KIND requests over the ring since snapshot.
grew () {
    local now
    now=$(stat_value fuse_uring_$1)
    [ $(( now - ${before[$1]} )) -ge "$2" ] ||
        fail "$1: $(( now - ${before[$1]} )) request(s) over io_uring, expected >= $2"
    echo "ok: $1: $(( now - ${before[$1]} )) request(s) over io_uring (>= $2)"
}

snapshot
head -c $((4 * MiB)) /dev/urandom >"$tmp/data"
dd if="$tmp/data" of="$mnt/swap" bs=4k count=1024 oflag=direct conv=notrunc \
   status=none || fail "O_DIRECT write"
dd if="$tmp/data" of="$tmp/shadow" bs=4k count=1024 conv=notrunc status=none
grew write 1024
snapshot
dd if="$mnt/swap" of="$tmp/back" bs=4k count=1024 iflag=direct status=none ||
    fail "O_DIRECT read"
cmp "$tmp/shadow" "$tmp/back" || fail "data read back over io_uring differs"
grew read 1024

snapshot
fallocate -p -o $((1 * MiB)) -l $((256 * KiB)) "$mnt/swap" || fail "fallocate -p"
fallocate -z -o $((2 * MiB)) -l $((128 * KiB)) "$mnt/swap" || fail "fallocate -z"
dd if=/dev/zero of="$tmp/shadow" bs=4k seek=256 count=64 conv=notrunc status=none
dd if=/dev/zero of="$tmp/shadow" bs=4k seek=512 count=32 conv=notrunc status=none
grew fallocate 2
dd if="$mnt/swap" of="$tmp/back" bs=1M count=4 iflag=direct status=none ||
    fail "read after fallocate"
cmp "$tmp/shadow" "$tmp/back" || fail "after hole punch and zero range: data differs"

snapshot
for _ in 1 2 3 4 5; do
    exec 3<>"$mnt/swap"
    exec 3>&-               # close: a FLUSH
done
dd if="$tmp/data" of="$mnt/swap" bs=4k count=1 conv=notrunc,fsync status=none ||
    fail "write with fsync"
grew flush 5
grew fsync 1

snapshot
for _ in 1 2 3; do
    sleep 1.1               # swap's attributes are cached for a second
    stat -c %s "$mnt/swap" >/dev/null || fail "stat"
done
grew getattr 3

for k in read write fallocate flush fsync getattr; do
    [ "$(stat_value fuse_dev_$k)" = 0 ] ||
        fail "$(stat_value fuse_dev_$k) $k request(s) over /dev/fuse"
done
[ "$(stat_value fuse_dev_init)" = 1 ] || fail "INIT not over /dev/fuse"
echo "ok: no read, write, fallocate, flush, fsync or getattr over /dev/fuse" \
     "($(stat_value fuse_dev_requests) request(s) there: INIT and notifications)"
cmp <(dd if="$mnt/swap" bs=1M count=4 status=none) "$tmp/shadow" ||
    fail "buffered read: data differs"
stop_daemon
grep -q "stats: fuse_uring_read " "$log" || fail "-v printed no transport statistics at exit"
echo "ok: stopped cleanly; transport statistics at exit"

# ---- transport=dev with io_uring on: /dev/fuse only ----

start_daemon --transport=dev "$mnt" size=64M
data_roundtrip
transport_is dev
[ "$(stat_value fuse_uring_requests)" = 0 ] || fail "transport=dev used io_uring"
[ "$(stat_value fuse_dev_read)" -gt 0 ] || fail "no read over /dev/fuse"
stop_daemon
echo "ok: transport=dev serves over /dev/fuse although io_uring is on"

# ---- auto with io_uring on: the ring (the key form) ----

start_daemon "$mnt" size=64M transport=auto
data_roundtrip
transport_is uring
stop_daemon
echo "ok: transport=auto takes io_uring when the kernel offers it"

# ---- enable_uring off: uring and auto fall back, saying why ----

set_uring_param N
start_daemon --transport=uring "$mnt" size=64M
data_roundtrip
transport_is dev
grep -q "warning: transport: io_uring asked for, but the fuse module's enable_uring parameter is off" "$log" ||
    fail "transport=uring without enable_uring: no warning with the reason"
stop_daemon
echo "ok: transport=uring with enable_uring off: /dev/fuse, warning: $(grep -o 'but the fuse.*is off' "$log")"

start_daemon "$mnt" size=64M
data_roundtrip
transport_is dev
grep -q "transport: /dev/fuse (the fuse module's enable_uring parameter is off" "$log" ||
    fail "auto without enable_uring: the reason was not logged"
grep -q "warning: transport" "$log" && fail "auto without enable_uring: a warning"
stop_daemon
echo "ok: transport=auto with enable_uring off: /dev/fuse, reason at -v"

# ---- io_uring refused by the kernel: the queues do not start ----

iud=/proc/sys/kernel/io_uring_disabled
if [ -w "$iud" ]; then
    set_uring_param Y
    set_param "$iud" 2
    start_daemon --transport=uring "$mnt" size=64M
    data_roundtrip
    transport_is dev
    grep -q "io_uring asked for, but the queues did not start (io_uring_setup" "$log" ||
        fail "io_uring refused: no warning naming io_uring_setup"
    stop_daemon
    set_param "$iud" "${saved_params[$iud]}"
    echo "ok: io_uring refused: /dev/fuse, warning: $(grep -o 'the queues did not start.*' "$log" | head -1)"
else
    echo "note: no $iud: the io_uring-refused case is not checked"
fi

# ---- Bad values ----

for arg in --transport=ring transport=ring; do
    st=0
    timeout 30 "$GHOSTSWAPD" --control none "$mnt" size=64M $arg \
            >"$tmp/out" 2>"$tmp/err" </dev/null || st=$?
    [ $st = 1 ] || fail "'$arg': exit status $st, expected 1"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "'$arg': not one line: $(cat "$tmp/err")"
    grep -q "transport: 'ring' is not 'auto', 'uring' or 'dev'" "$tmp/err" ||
        fail "'$arg': $(cat "$tmp/err")"
    ! is_mounted || fail "'$arg': mounted anyway"
done
echo "ok: a bad transport is a one-line error naming it"
echo PASS
