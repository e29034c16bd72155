#!/bin/bash
# ghostswap security test: a block device in use is refused.
#
# On a loop device (over a file in the test directory):
#  - mounted (ext4 on a directory of the test): refused, naming the
#    device and the mount point;
#  - active swap (mkswap + swapon for a moment): refused, naming it;
#  - held open exclusively by someone else (a second device attaching
#    it): refused as already attached;
#  - idle: accepted (the positive control), and while attached nobody
#    else can mount or swapon it (ghostswap holds it with O_EXCL).
# Needs root, losetup and loop devices, mkfs.ext4, mkswap and swapon;
# skips (77) otherwise.  Everything is undone in the exit trap.

. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (losetup, mount, swapon)"
for p in losetup mkfs.ext4 mkswap swapon swapoff mount umount; do
    command -v $p >/dev/null || skip "$p not found"
done
truncate -s 32M "$tmp/disk"
loop=$(losetup -f --show "$tmp/disk" 2>"$tmp/losetup.err") \
    || skip "no loop device: $(cat "$tmp/losetup.err")"
on_exit 'losetup -d "$loop"'
say "loop device $loop"

# Mounted.
mkfs.ext4 -q -F "$loop" >/dev/null 2>&1 || fail "mkfs.ext4 $loop"
mkdir "$tmp/mnt"
mount "$loop" "$tmp/mnt" || skip "cannot mount ext4 on $loop"
on_exit 'mountpoint -q "$tmp/mnt" && umount "$tmp/mnt"'
refused "a mounted block device" "$loop is a mounted block device.*mounted on $tmp/mnt" \
        backing="$loop"
umount "$tmp/mnt"

# Active swap, for as short a time as the check takes.
mkswap "$loop" >/dev/null || fail "mkswap $loop"
swapon "$loop" || skip "cannot swapon $loop"
on_exit 'grep -q "^$loop " /proc/swaps && swapoff "$loop"'
refused "an active swap device" "$loop is an active swap device" \
        backing="$loop"
swapoff "$loop"            # (and by the exit hook, should refused fail)

# Idle: accepted; then held against mount and swapon, and against a
# second attach.
starts "an idle block device" backing="$loop"
start_server backing="$loop"
if mount "$loop" "$tmp/mnt" 2>/dev/null; then
    umount "$tmp/mnt"
    fail "$loop could be mounted while ghostswap uses it"
fi
if swapon "$loop" 2>/dev/null; then
    swapoff "$loop"
    fail "$loop could be swapped on while ghostswap uses it"
fi
ctl_refused "the same device attached twice" "backing add: backing: $loop is already attached" \
            backing add "$loop"
refused "a device another server holds" "$loop is in use" backing="$loop"
say "ok"
