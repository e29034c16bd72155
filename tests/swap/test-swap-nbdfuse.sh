#!/bin/bash
# Real swap through the plugin (path 2, what stands in for nbd-client +
# swapon on machines without the nbd module): nbdkit ghostswap -> nbdfuse
# -> losetup -> mkswap -> swapon --discard.  Same workload and checks as
# test-swap-ghostswapd.sh: the kernel's counters and the plugin's
# statistics (ghostswapctl on its control socket) agree that pages went
# through the device, the discards free the slots, swapoff succeeds.
#
# Needs root, /dev/fuse, loop devices, a memory cgroup, nbdkit and
# nbdfuse; skips (77) with the reason otherwise.  Environment:
# GHOSTSWAP_PLUGIN, GHOSTSWAPCTL, SWAP_WORKLOAD, NBDKIT (optional).

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_root
require_fuse
require_loop_swap
require_no_zswap
require_memcg
require_bin GHOSTSWAP_PLUGIN
require_bin GHOSTSWAPCTL
require_bin SWAP_WORKLOAD
command -v "${NBDKIT:-nbdkit}" >/dev/null || skip "no nbdkit"
command -v nbdfuse >/dev/null || skip "no nbdfuse (libnbd-bin)"
make_tmp
note_foreign_swap

start_nbdkit_nbdfuse "$GHOSTSWAP_PLUGIN" size=4G ram-limit=2G control="$ctl"
say "nbdkit $nbdkit_pid serves $tmp/nbd.sock; nbdfuse $nbdfuse_pid presents it as $tmp/fmnt/ghost"
# losetup's default (buffered I/O on nbdfuse's file), as in the plugin's
# man page.
attach_swap "$tmp/fmnt/ghost"

swap_e2e

fusermount3 -u "$tmp/fmnt" || fail "fusermount3 -u $tmp/fmnt"
for i in $(seq 100); do kill -0 "$nbdfuse_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$nbdfuse_pid" 2>/dev/null && fail "nbdfuse still runs 10 s after the unmount"
wait "$nbdfuse_pid"
nbdfuse_pid=
kill -TERM "$nbdkit_pid"
st=0
wait "$nbdkit_pid" || st=$?
nbdkit_pid=
[ $st = 0 ] || fail "nbdkit exited with status $st after SIGTERM"
say "ok: nbdfuse unmounted, nbdkit stopped"
say "PASS"
