#!/bin/bash
# Live migration under a guest: a qemu guest (192 MiB of RAM) swaps to a
# virtio disk on nbdkit ghostswap with a small RAM tier (ram-limit=16M)
# and a backing file b0, so that most of the guest's swapped pages are
# written back to b0.  While the guest's workload (256 MiB) verifies its
# pages (swapping in and out through the device),
# `ghostswapctl migrate b0 b1`, then b1 b0 and so on, move every page
# to the other file; each must succeed, detach its source and leave pages
# on its target, and the workload must find every
# page intact in its two passes (during and after the migrations); then
# swapoff in the guest must succeed.  Exits 77 with the reason when qemu,
# the guest's kernel package or busybox-static is not available.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

require_bin GHOSTSWAP_PLUGIN
require_bin GHOSTSWAPCTL
guest_build
make_tmp

b0=$tmp/b0
b1=$tmp/b1
start_nbdkit -- size=2G ram-limit=16M backing="$b0" backing-size=1G
start_guest 192 "$here/guest-migrate.sh" \
    -drive "file=nbd+unix:///?socket=$tmp/nbd.sock,format=raw,if=virtio,discard=unmap,cache=none"

wait_sync filled 600
gs_stats
on_b0=$(gs_stat slots_backing)
say "guest filled its pages: $(gs_summary)"
[ "$on_b0" -ge $((50 * MiB / 4096)) ] ||
    fail "only $on_b0 pages on $b0 after the fill, expected at least $((50 * MiB / 4096))"

# Migrate, back and forth between b0 and b1, while the guest reads its
# pages back (and the kernel swaps others out), until the guest has
# finished its first pass (the forward one).
answer
bytes_read0=$(gs_stat bytes_read)
from=$b0 to=$b1 migrations=0
while :; do
    gs_stats
    r0=$(gs_stat bytes_read) w0=$(gs_stat bytes_written)
    "$GHOSTSWAPCTL" --socket "$ctl" migrate "$from" "$to" 1G \
        >"$tmp/migrate.out" 2>"$tmp/migrate.err" </dev/null ||
        fail "ghostswapctl migrate $from $to exited with status $?: $(cat "$tmp/migrate.err" "$tmp/migrate.out")"
    migrations=$((migrations + 1))
    gs_stats
    say "migration $migrations: $(tr '\n' ' ' <"$tmp/migrate.out")(guest I/O meanwhile: $(( ($(gs_stat bytes_read) - r0) / 1024 )) KiB read, $(( ($(gs_stat bytes_written) - w0) / 1024 )) KiB written)"
    "$GHOSTSWAPCTL" --socket "$ctl" backing list >"$tmp/list" || fail "backing list"
    grep -q "$from" "$tmp/list" && fail "$from is still attached after the migration: $(cat "$tmp/list")"
    grep -q "$to" "$tmp/list" || fail "$to is not attached after the migration: $(cat "$tmp/list")"
    [ "$(gs_stat slots_backing)" -gt 0 ] || fail "no page on $to after the migration"
    [ ! -e "$from" ] || rm -f "$from"
    t=$from from=$to to=$t
    tr -d '\r' <"$tmp/console.log" | grep -q '^GS-WL verify_pass 1 ' && break
    grep -q '^GS-FAIL' "$tmp/console.log" && fail "the guest reports: $(grep -m1 '^GS-FAIL' "$tmp/console.log")"
    [ $migrations -lt 200 ] || fail "the guest's first pass did not end within 200 migrations"
    sleep 0.2
done
gs_stats
say "$migrations migrations during the guest's first pass; it read $(( ($(gs_stat bytes_read) - bytes_read0) / MiB )) MiB from the device meanwhile; now: $(gs_summary)"
[ $migrations -ge 2 ] || fail "only $migrations migration during the guest's first pass"
[ $(( $(gs_stat bytes_read) - bytes_read0 )) -gt $((20 * MiB)) ] ||
    fail "the guest read less than 20 MiB during the migrations: not under load"

wait_sync end 900
say "guest workload: $(guest_value result), $(guest_value pages_checked) pages checked; passes: $(sed -n 's/^GS-WL verify_pass //p' "$tmp/console.log" | tr -d '\r' | tr '\n' ',')"
answer
finish_guest 60
say "PASS"
