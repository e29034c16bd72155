#!/bin/bash
# ghostswapd's command line: a bare size after the mount point, as nbdkit
# takes it (ghostswapd MNT 64M); warnings for a key given twice; and no
# second device mounted over a live one (in the foreground or with -d,
# with or without a loop device on its file): exit 1, a message naming
# the mount point, and the first device still the only mount there,
# still serving.
#
# Needs root and /dev/fuse; skips (77) otherwise.  Environment: GHOSTSWAPD.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_fuse

# mounts - how many ghostswap mounts there are on $mnt.
mounts () {
    awk -v d="$mnt" '$5 == d && $0 ~ / - fuse\.ghostswap / { n++ } END { print n + 0 }' \
        /proc/self/mountinfo
}

# Bare size.
start_daemon "$mnt" 64M
size=$(stat -c %s "$mnt/swap") || fail "no $mnt/swap"
[ "$size" = 67108864 ] || fail "ghostswapd MNT 64M: the device has $size bytes"
grep -q "warning:" "$log" && grep "warning:" "$log" | grep -qv "failed (" &&
    fail "unexpected warning: $(grep warning: "$log" | grep -v 'failed (')"
echo "ok: ghostswapd MNT 64M serves 64 MiB"

# Over a live device: refused, in the foreground and with -d.
for d in "" -d; do
    status=0
    timeout 30 "$GHOSTSWAPD" $d --control none "$mnt" 32M \
            >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
    [ $status = 1 ] || fail "ghostswapd $d over a live device: exit status $status, expected 1"
    grep -q "error: $mnt is already a ghostswap device" "$tmp/err" ||
        { cat "$tmp/err" >&2; fail "ghostswapd $d over a live device: no clear error"; }
    [ "$(mounts)" = 1 ] || fail "ghostswapd $d over a live device: $(mounts) mounts on $mnt"
    [ "$(stat -c %s "$mnt/swap")" = 67108864 ] || fail "the first device is hidden"
done
echo "ok: over a live device: $(grep error: "$tmp/err")"

# The same with a loop device on its file (the state in which swap runs).
if command -v losetup >/dev/null && [ -e /dev/loop-control ] && losetup -f >/dev/null 2>&1; then
    loop=$(losetup --find --show "$mnt/swap") || fail "losetup $mnt/swap"
    status=0
    timeout 30 "$GHOSTSWAPD" --control none "$mnt" 32M \
            >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
    [ $status = 1 ] || fail "over a device on $loop: exit status $status, expected 1"
    grep -q "error: $mnt is already a ghostswap device" "$tmp/err" ||
        { cat "$tmp/err" >&2; fail "over a device on $loop: no clear error"; }
    [ "$(mounts)" = 1 ] || fail "over a device on $loop: $(mounts) mounts"
    losetup -d "$loop" || fail "losetup -d $loop"
    loop=
    echo "ok: over a device on a loop device: refused"
else
    echo "$prog: note: no loop device: the loop case is not tested"
fi

kill -TERM "$pid"
wait_exit 30
[ "$status" = 0 ] || fail "ghostswapd exit status $status after SIGTERM"

# Two bare values: an error before anything is mounted.
status=0
timeout 30 "$GHOSTSWAPD" --control none "$mnt" 64M 128M \
        >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
[ $status = 1 ] || fail "two bare sizes: exit status $status"
grep -q "'128M': not KEY=VALUE" "$tmp/err" || { cat "$tmp/err" >&2; fail "two bare sizes: no clear error"; }
[ "$(mounts)" = 0 ] || fail "two bare sizes: mounted anyway"
status=0
timeout 30 "$GHOSTSWAPD" --control none "$mnt" lots \
        >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
[ $status = 1 ] || fail "bare 'lots': exit status $status"
grep -q "size: 'lots' is not a size" "$tmp/err" || { cat "$tmp/err" >&2; fail "bare 'lots': no clear error"; }
echo "ok: bad bare sizes refused"

# A key given twice (the bare size and size=): served, with a warning.
start_daemon "$mnt" 64M size=128M ram-limit=16M
[ "$(stat -c %s "$mnt/swap")" = 134217728 ] || fail "the last size does not count"
grep -q "warning: size: given more than once: the last value counts" "$log" ||
    fail "no warning for size given twice"
echo "ok: size given twice: $(grep 'given more than once' "$log")"
kill -TERM "$pid"
wait_exit 30

echo "$prog: ok"
