#!/bin/bash
# Kernel NBD client: in a qemu guest (192 MiB of RAM), `nbd-client
# 10.0.2.100 10809 /dev/nbd0 -swap` to `nbdkit --swap ghostswap` on the
# host, reached through qemu's user networking with restrict=on (the
# guest reaches nothing else) and a guestfwd from 10.0.2.100:10809 to the
# plugin's Unix socket, as in docs/guide-nbd-client.md.  The guest swaps
# on /dev/nbd0; its workload (256 MiB, more than its RAM) fills and
# verifies its pages twice; the plugin must hold the swapped pages while
# the workload waits; swapoff and nbd-client -d must succeed.
#
# The forwarder is qemu's own socket chardev
# (guestfwd=tcp:10.0.2.100:10809-unix:SOCK).  With
# guestfwd=...-cmd:socat - UNIX-CONNECT:SOCK instead, swap-in crawls at
# about 150 pages/s (a 15th of this path's rate, with the guest idle and
# nbdkit waiting, which is what looks like a stall): see
# docs/guide-nbd-client.md and bench/bench-vm-swap.sh.
#
# The guest sets vm.min_free_kbytes=16384 first (gs.min_free_kbytes=N in
# VM_APPEND sets another): with the kernel's default (about 1.5 MiB
# here) the guest deadlocked in 3 of 4 runs, its free memory at the
# floor, unable to allocate the network receive buffers that would bring
# the replies to its swap writes; with 16384, 6 of 6 ran through
# (docs/guide-nbd-client.md).  VM_APPEND=gs.min_free_kbytes=1523 shows it.
#
# Exits 77 with the reason when qemu, the guest's kernel package,
# busybox-static or nbd-client is not available.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_bin GHOSTSWAP_PLUGIN
require_bin GHOSTSWAPCTL
guest_build
make_tmp

# VM_NBD_FORWARDER=socat: the forwarder that crawls, to see it fail.
case ${VM_NBD_FORWARDER:-chardev} in
    chardev) fwd="unix:$tmp/nbd.sock" ;;
    socat) fwd="cmd:socat - UNIX-CONNECT:$tmp/nbd.sock" ;;
    *) fail "VM_NBD_FORWARDER must be chardev or socat" ;;
esac
say "forwarder: guestfwd=tcp:10.0.2.100:10809-$fwd"
start_nbdkit --swap -- size=2G ram-limit=512M
start_guest 192 "$here/guest-nbd-client.sh" \
    -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:10809-$fwd" \
    -device virtio-net-pci,netdev=n0

wait_sync filled 480
gs_stats
held=$(( $(gs_stat slots_ram) + $(gs_stat slots_same) ))
say "guest filled its pages: $(gs_summary)"
[ "$held" -ge $((100 * MiB / 4096)) ] ||
    fail "the plugin holds $held slots while the guest's workload waits, expected at least $((100 * MiB / 4096))"
answer

wait_sync end 480
gs_stats
say "guest workload: $(guest_value result), $(guest_value pages_checked) pages checked; passes: $(sed -n 's/^GS-WL verify_pass //p' "$tmp/console.log" | tr -d '\r' | tr '\n' ',')"
say "at the end: $(gs_summary)"
answer
finish_guest 60
say "PASS"
