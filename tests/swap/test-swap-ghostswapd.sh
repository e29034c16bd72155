#!/bin/bash
# Real swap through ghostswapd (path 1): ghostswapd -> losetup
# --direct-io=on -> mkswap -> swapon --discard.  The workload (768 MiB in
# a 256 MiB memory cgroup, every page verified twice) swaps through it;
# the kernel's counters (/proc/swaps, /proc/vmstat pswpout/pswpin) and
# ghostswap's statistics (ghostswapctl --json stats) must agree that pages
# went through the device; once the workload exits, the discards must free
# the slots; swapoff must succeed and ghostswapd stop on SIGTERM.
#
# Needs root, /dev/fuse, loop devices and a memory cgroup; skips (77)
# with the reason otherwise.  Environment: GHOSTSWAPD, GHOSTSWAPCTL,
# SWAP_WORKLOAD.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_root
require_fuse
require_loop_swap
require_no_zswap
require_memcg
require_bin GHOSTSWAPD
require_bin GHOSTSWAPCTL
require_bin SWAP_WORKLOAD
make_tmp
note_foreign_swap

mkdir "$tmp/mnt"
start_ghostswapd "$tmp/mnt" size=4G ram-limit=2G
say "ghostswapd $gs_pid serves $tmp/mnt/swap"
attach_swap "$tmp/mnt/swap" --direct-io=on
[ "$(cat "/sys/block/${loop#/dev/}/loop/dio")" = 1 ] ||
    fail "$loop does not use direct I/O"
# ghostswapctl's device list names the swap device (the control socket
# $tmp/ctl.sock is the device "ctl").
list=$(GHOSTSWAP_RUNDIR=$tmp "$GHOSTSWAPCTL" --noheadings -o NAME,FRONTEND,SWAP-DEVICE) ||
    fail "ghostswapctl (the device list): exit status $?"
[ "$(echo $list)" = "ctl fuse $loop" ] ||
    fail "ghostswapctl (the device list): '$list', expected 'ctl fuse $loop'"
say "ok: ghostswapctl lists $(echo $list)"

swap_e2e

kill -TERM "$gs_pid"
for i in $(seq 100); do kill -0 "$gs_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$gs_pid" 2>/dev/null && fail "ghostswapd still runs 10 s after SIGTERM"
st=0
wait "$gs_pid" || st=$?
gs_pid=
[ $st = 0 ] || fail "ghostswapd exited with status $st after SIGTERM"
! is_mounted "$tmp/mnt" || fail "$tmp/mnt still mounted after ghostswapd exited"
say "ok: ghostswapd stopped on SIGTERM, exit 0"
say "PASS"
