#!/bin/bash
# ghostswapd end to end: configuration errors, readiness (sd_notify), the
# files of the mount, data through it (buffered, O_DIRECT, unaligned,
# hole punching), then real swap through a loop device: SIGTERM is refused
# while the file is active swap, and accepted once it is not.
#
# Runs once per FUSE transport (GS_TRANSPORT=dev or uring, see lib.sh).
# Needs root, /dev/fuse and loop devices; skips (77) with the reason
# otherwise.  Environment: GHOSTSWAPD, NOTIFY_WAIT, GS_TRANSPORT.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_fuse
require_loop_swap
use_transport
if [ -z "${NOTIFY_WAIT:-}" ] || [ ! -x "$NOTIFY_WAIT" ]; then
    skip "NOTIFY_WAIT is not set (run through meson test)"
fi

MiB=$((1024 * 1024))
size=$((256 * MiB))

# ---- Configuration errors: exit 1, one line naming the key, no mount ----

bad_config () {
    local key=$1; shift
    local status=0 lines
    timeout 30 "$GHOSTSWAPD" --control none "$mnt" "$@" \
            >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
    [ $status = 1 ] || fail "'$*': exit status $status, expected 1"
    lines=$(wc -l <"$tmp/err")
    [ "$lines" = 1 ] || { cat "$tmp/err" >&2; fail "'$*': $lines lines on stderr, expected 1"; }
    grep -q -- "$key" "$tmp/err" || { cat "$tmp/err" >&2; fail "'$*': the message does not name $key"; }
    ! is_mounted || fail "'$*': mounted anyway"
    echo "ok: '$*' -> $(cat "$tmp/err")"
}
bad_config bogus-key bogus-key=1
bad_config size size=12345
bad_config ram-limit size=64M ram-limit=lots
bad_config writeback-low writeback-high=50 writeback-low=60
bad_config noequals size=64M noequals

# A backing that cannot be attached is found after start-up began (the
# hardening warnings may precede it): exit 1, an error naming the path.
status=0
timeout 30 "$GHOSTSWAPD" --control none "$mnt" size=64M \
        "backing=$tmp/no/such/dir/b0" backing-size=64M \
        >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
[ $status = 1 ] || fail "bad backing: exit status $status, expected 1"
grep "error:" "$tmp/err" | grep -q "$tmp/no/such/dir/b0" ||
    { cat "$tmp/err" >&2; fail "bad backing: no error naming the path"; }
! is_mounted || fail "bad backing: mounted anyway"
echo "ok: bad backing -> $(grep error: "$tmp/err")"

# ---- Start; systemd readiness ----

"$NOTIFY_WAIT" "$tmp/notify.sock" 20 >"$tmp/notify.out" &
nw=$!
for _ in $(seq 100); do [ -S "$tmp/notify.sock" ] && break; sleep 0.05; done
[ -S "$tmp/notify.sock" ] || fail "notify-wait did not create its socket"
NOTIFY_SOCKET=$tmp/notify.sock start_daemon "$mnt" size=256M ram-limit=64M
wait $nw || fail "no READY=1 from ghostswapd on \$NOTIFY_SOCKET"
grep -qx "MAINPID=$pid" "$tmp/notify.out" ||
    fail "READY without MAINPID=$pid: $(cat "$tmp/notify.out")"
echo "ok: READY=1 with MAINPID=$pid"
[ -S "$tmp/ctl.sock" ] || fail "no control socket at $tmp/ctl.sock"

# ---- The files ----

[ "$(ls "$mnt" | tr '\n' ' ')" = "stats swap " ] ||
    fail "the mount holds: $(ls "$mnt")"
[ "$(stat -c %s "$mnt/swap")" = $size ] ||
    fail "swap is $(stat -c %s "$mnt/swap") bytes, expected $size"
[ "$(stat -c '%a %F' "$mnt/swap")" = "600 regular file" ] ||
    fail "swap: $(stat -c '%a %F' "$mnt/swap")"
[ "$(stat -c '%a %F' "$mnt/stats")" = "444 regular file" ] ||
    fail "stats: $(stat -c '%a %F' "$mnt/stats")"
echo "ok: swap is a $size-byte regular file, mode 600; stats mode 444"
expect_transport

# ---- Data ----

head -c $((8 * MiB)) /dev/urandom >"$tmp/data"

dd if="$tmp/data" of="$mnt/swap" bs=1M seek=1 conv=notrunc,fsync status=none ||
    fail "buffered write"
dd if="$mnt/swap" of="$tmp/back" bs=1M skip=1 count=8 status=none ||
    fail "buffered read"
cmp "$tmp/data" "$tmp/back" || fail "buffered: data read back differs"
echo "ok: 8 MiB written and read back"

dd if="$tmp/data" of="$mnt/swap" bs=1M seek=32 oflag=direct conv=notrunc status=none ||
    fail "O_DIRECT write"
dd if="$mnt/swap" of="$tmp/back" bs=1M skip=32 count=8 iflag=direct status=none ||
    fail "O_DIRECT read"
cmp "$tmp/data" "$tmp/back" || fail "O_DIRECT: data read back differs"
echo "ok: 8 MiB written and read back with O_DIRECT"

# Unaligned: 50 blocks of 1000 bytes at byte 3001000 (read-modify-write
# of partial slots).
dd if="$tmp/data" of="$mnt/swap" bs=1000 seek=3001 count=50 conv=notrunc status=none ||
    fail "unaligned write"
dd if="$mnt/swap" of="$tmp/back" bs=1000 skip=3001 count=50 status=none ||
    fail "unaligned read"
head -c 50000 "$tmp/data" | cmp - "$tmp/back" || fail "unaligned: data differs"
echo "ok: unaligned write and read"

# Never written: zeroes.
dd if="$mnt/swap" bs=1M skip=100 count=1 status=none | cmp - <(head -c $MiB /dev/zero) ||
    fail "an unwritten MiB does not read as zeroes"

# Past the end: ENOSPC, as on a block device.  The size cannot change.
if dd if="$tmp/data" of="$mnt/swap" bs=1M seek=256 count=1 conv=notrunc status=none 2>"$tmp/err"; then
    fail "a write past the end succeeded"
fi
grep -q "No space left" "$tmp/err" || fail "write past the end: $(cat "$tmp/err")"
truncate -s 1G "$mnt/swap" 2>/dev/null && fail "truncate to 1G succeeded"
( : >"$mnt/swap" ) 2>/dev/null && fail "opening with O_TRUNC succeeded"
[ "$(stat -c %s "$mnt/swap")" = $size ] || fail "the size changed"
( echo x >"$mnt/stats" ) 2>/dev/null && fail "stats is writable"
echo "ok: fixed size; ENOSPC past the end; stats read-only"

# Punch a hole (what a discard through a loop device becomes).
fallocate -p -o $((2 * MiB)) -l $((4 * MiB)) "$mnt/swap" || fail "fallocate -p"
dd if="$mnt/swap" bs=1M skip=2 count=4 status=none | cmp - <(head -c $((4 * MiB)) /dev/zero) ||
    fail "a punched hole does not read as zeroes"
dd if="$mnt/swap" bs=1M skip=6 count=3 status=none |
    cmp - <(tail -c $((3 * MiB)) "$tmp/data") || fail "data after the hole changed"
echo "ok: punched hole reads as zeroes"

# ---- Statistics ----

stat_value () { awk -v k="$1" '$1 == k { print $2 }' "$mnt/stats"; }
[ "$(stat_value size)" = $size ] || fail "stats: size is '$(stat_value size)'"
[ "$(stat_value writes)" -gt 0 ] || fail "stats: no writes counted"
[ "$(stat_value bytes_written)" -ge $((16 * MiB + 50000)) ] ||
    fail "stats: bytes_written is $(stat_value bytes_written)"
[ "$(stat_value trims)" -gt 0 ] || fail "stats: the hole punch was not a trim"
[ "$(stat_value slots_ram)" -gt 0 ] || fail "stats: nothing in RAM"
echo "ok: stats: writes $(stat_value writes), bytes_written $(stat_value bytes_written), trims $(stat_value trims)"
if [ "${GS_TRANSPORT:-}" = uring ]; then
    # Everything after INIT came over the ring.
    for k in read write fallocate; do
        [ "$(stat_value fuse_uring_$k)" -gt 0 ] ||
            fail "stats: no $k request over io_uring"
        [ "$(stat_value fuse_dev_$k)" = 0 ] ||
            fail "stats: $(stat_value fuse_dev_$k) $k request(s) over /dev/fuse"
    done
    echo "ok: reads, writes and hole punches came over io_uring"
fi

# ---- Real swap through a loop device ----

loop=$(losetup --direct-io=on -f --show "$mnt/swap") || fail "losetup"
echo "ok: $loop over $mnt/swap, direct I/O $(cat "/sys/block/${loop#/dev/}/loop/dio")"
mkswap "$loop" >/dev/null || fail "mkswap $loop"
swapon --discard "$loop" || fail "swapon $loop"
swapped=1
grep -q "^$loop " /proc/swaps || fail "$loop is not in /proc/swaps"

for sig in TERM INT HUP; do
    kill -$sig "$pid"
    sleep 1
    kill -0 "$pid" 2>/dev/null || fail "ghostswapd stopped on SIG$sig while $loop is active swap"
    grep -q "SIG$sig received, but refusing to stop: $loop is active swap" "$log" ||
        fail "no refusal message for SIG$sig"
done
is_mounted || fail "unmounted while in use"
echo "ok: SIGTERM, SIGINT, SIGHUP refused while $loop is active swap"

swapoff "$loop" || fail "swapoff $loop"
swapped=
losetup -d "$loop" || fail "losetup -d $loop"
loop=

kill -TERM "$pid"
wait_exit 20
[ $status = 0 ] || fail "exit status $status after SIGTERM, expected 0"
! is_mounted || fail "still mounted after exit"
[ ! -e "$tmp/ctl.sock" ] || fail "the control socket was left behind"
grep -q "stats: writes" "$log" || fail "-v printed no statistics at exit"
echo "ok: SIGTERM once unused: exit 0, unmounted, socket removed"
