#!/bin/bash
# VM swap disk on NBD: a qemu guest (192 MiB of RAM) whose swap is a
# virtio disk on nbdkit ghostswap's Unix socket
# (-drive file=nbd+unix:///?socket=...,discard=unmap,cache=none), as in
# docs/guide-vm-thin-swap.md.  In the guest, the workload (256 MiB, more
# than the guest's RAM) fills and verifies its pages twice; the plugin
# must hold the guest's swapped pages while it waits, count the guest's
# discards (trims) and free the slots once the workload has exited; after
# swapoff + swapon a second workload's pages must reach the plugin again,
# and swapoff must succeed.  Exits 77 with the reason when qemu, the
# guest's kernel package or busybox-static is not available.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_bin GHOSTSWAP_PLUGIN
require_bin GHOSTSWAPCTL
guest_build
make_tmp

start_nbdkit -- size=2G ram-limit=512M
start_guest 192 "$here/guest-swap-disk.sh" \
    -drive "file=nbd+unix:///?socket=$tmp/nbd.sock,format=raw,if=virtio,discard=unmap,cache=none"

wait_sync swapon 120
say "guest: $(tr -d '\r' <"$tmp/console.log" | grep -m1 '^GS-READY')"
gs_stats
w0=$(gs_stat writes)
say "at swapon: $(gs_summary)"
answer

wait_sync filled 600
gs_stats
held=$(( $(gs_stat slots_ram) + $(gs_stat slots_same) ))
t1=$(gs_stat trims)
w1=$(gs_stat writes)
say "guest filled its pages ($(tr -d '\r' <"$tmp/console.log" | grep '^GS-NOTE Swap' | tail -n 1 | cut -c9-)): $(gs_summary)"
# 256 MiB in a guest with about 100 MiB free: at least 100 MiB swapped.
[ "$held" -ge $((100 * MiB / 4096)) ] ||
    fail "the plugin holds $held slots while the guest's workload waits, expected at least $((100 * MiB / 4096))"
[ "$w1" -gt "$w0" ] || fail "no write reached the plugin"
answer

wait_sync freed 900
say "guest workload: $(guest_value result), $(guest_value pages_checked) pages checked, verify $(guest_value verify_seconds) s"
# The discards are asynchronous in the guest kernel: give them time.
for i in $(seq 60); do
    gs_stats
    now=$(( $(gs_stat slots_ram) + $(gs_stat slots_same) ))
    [ "$(gs_stat trims)" -gt "$t1" ] && [ "$now" -le $((held / 4)) ] && break
    sleep 1
done
say "after the workload exited: $(gs_summary)"
[ "$(gs_stat trims)" -gt "$t1" ] || fail "no discard reached the plugin (trims $(gs_stat trims))"
[ "$now" -le $((held / 4)) ] ||
    fail "the guest's discards freed too little: $now slots held, was $held"
answer

wait_sync swapoff 120
gs_stats
w2=$(gs_stat writes)
answer

wait_sync filled2 600
gs_stats
say "after swapoff + swapon, second fill: $(gs_summary)"
[ "$(gs_stat writes)" -gt "$w2" ] || fail "no write reached the plugin after swapoff + swapon"
now=$(( $(gs_stat slots_ram) + $(gs_stat slots_same) ))
[ "$now" -ge $((80 * MiB / 4096)) ] ||
    fail "the plugin holds $now slots after the second fill, expected at least $((80 * MiB / 4096))"
answer

wait_sync end 600
answer
finish_guest 60
say "PASS"
