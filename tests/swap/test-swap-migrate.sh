#!/bin/bash
# Live migration of a backing under a real kernel client: ghostswapd with
# a small RAM tier (64 MiB) and a backing file b0, swapped to through a
# loop device.  The workload (768 MiB in a 256 MiB memory cgroup) fills
# its pages and holds them: most go to swap, and most of those are
# written back to b0.  Then `ghostswapctl migrate b0 b1 2G` runs while the
# workload verifies its pages (the kernel swaps in and out through the
# device meanwhile); the migration must succeed, b0 must be detached and
# b1 hold the pages, and the workload must find every page intact, in
# two passes: the first while the migration runs, the second after it.
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

b0=$tmp/b0
b1=$tmp/b1
mkdir "$tmp/mnt"
start_ghostswapd "$tmp/mnt" size=4G ram-limit=64M backing="$b0" backing-size=2G
attach_swap "$tmp/mnt/swap" --direct-io=on

start_workload $WL_SIZE $WL_LIMIT 2
wait_filled 600
gs_stats
on_b0=$(gs_stat slots_backing)
say "filled in $(wl_value fill_seconds) s; /proc/swaps Used $(swap_used_kib) KiB; ghostswap: slots_ram $(gs_stat slots_ram), slots_same $(gs_stat slots_same), slots_backing $on_b0, writeback_pages $(gs_stat writeback_pages)"
[ "$on_b0" -gt 0 ] || fail "no page was written back to $b0"
"$GHOSTSWAPCTL" --socket "$ctl" backing list >"$tmp/list" || fail "backing list"
grep -q "$b0" "$tmp/list" || fail "$b0 is not in the backing list: $(cat "$tmp/list")"

# Migrate while the workload reads its pages back (and the kernel swaps
# others out through the device).
"$GHOSTSWAPCTL" --socket "$ctl" migrate "$b0" "$b1" 2G \
    >"$tmp/migrate.out" 2>"$tmp/migrate.err" </dev/null &
mig_pid=$!
logs+=("$tmp/migrate.out" "$tmp/migrate.err")
kill -USR1 "$wl_pid" || fail "the workload is gone"
st=0
wait "$mig_pid" || st=$?
[ $st = 0 ] || fail "ghostswapctl migrate exited with status $st: $(cat "$tmp/migrate.err" "$tmp/migrate.out")"
say "ok: migrate: $(cat "$tmp/migrate.out")"
"$GHOSTSWAPCTL" --socket "$ctl" --json drain status >"$tmp/drain.json" || fail "drain status"
grep -q '"result":0' "$tmp/drain.json" || fail "drain status: $(cat "$tmp/drain.json")"
say "drain status: $(cat "$tmp/drain.json")"
"$GHOSTSWAPCTL" --socket "$ctl" backing list >"$tmp/list" || fail "backing list"
grep -q "$b0" "$tmp/list" && fail "$b0 is still attached after the migration: $(cat "$tmp/list")"
grep -q "$b1" "$tmp/list" || fail "$b1 is not attached after the migration: $(cat "$tmp/list")"
say "ok: $b0 detached, $b1 attached"
gs_stats
say "after the migration: slots_ram $(gs_stat slots_ram), slots_backing $(gs_stat slots_backing), workload at: $(tail -n 1 "$tmp/workload.out")"
[ "$(gs_stat slots_backing)" -gt 0 ] || fail "no page on $b1 after the migration"

# The rest of the verification: every page, twice.
kill -0 "$wl_pid" 2>/dev/null || say "note: the workload finished verifying before the migration ended"
for i in $(seq 6000); do kill -0 "$wl_pid" 2>/dev/null || break; sleep 0.1; done
st=0
wait "$wl_pid" || st=$?
wl_pid=
[ $st = 0 ] || fail "the workload exited with status $st: $(cat "$tmp/workload.err")"
grep -qx "result ok" "$tmp/workload.out" || fail "the workload did not report 'result ok'"
say "ok: workload verified $(wl_value pages_checked) pages ($(awk '$1 == "verify_pass" { printf "%s%s %s s", sep, $3, $4; sep = ", " }' "$tmp/workload.out"))"
cg_remove "$cg" || fail "cannot remove the cgroup"
cg=

detach_swap
kill -TERM "$gs_pid"
for i in $(seq 100); do kill -0 "$gs_pid" 2>/dev/null || break; sleep 0.1; done
st=0
wait "$gs_pid" || st=$?
gs_pid=
[ $st = 0 ] || fail "ghostswapd exited with status $st after SIGTERM"
say "PASS"
