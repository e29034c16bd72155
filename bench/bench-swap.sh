#!/bin/bash
# bench-swap.sh - the same swap workload through every way of swapping we
# compare: ghostswapd (loop device with direct I/O, and without; FUSE over
# /dev/fuse or over io_uring), nbdkit
# ghostswap via nbdfuse, `nbdkit memory allocator=zstd` via nbdfuse (the
# userspace anchor), and in-kernel zram with lz4 (the physical anchor).
#
# Not a test: run it by hand as root on an otherwise idle machine:
#
#     bench/bench-swap.sh [BUILD_DIR]
#
# BUILD_DIR (default: build) holds server/ghostswapd, server/ghostswapctl,
# plugin/nbdkit-ghostswap-plugin.so and tests/swap/swap-workload (if that
# is missing, the workload is compiled from tests/swap/swap-workload.c
# with cc).  Each may be given instead as GHOSTSWAPD, GHOSTSWAPCTL,
# GHOSTSWAP_PLUGIN, SWAP_WORKLOAD.
#
# For each configuration, RUNS times (the configurations interleaved, so
# that a slow minute of the machine does not hit one of them only):
#   1. start the server, attach the device, mkswap, swapon --discard -p 32767;
#   2. start the workload (tests/swap/swap-workload, SIZE in a fresh memory
#      cgroup limited to LIMIT, with --hold) and wait for its fill;
#   3. while it holds its pages: /proc/swaps Used (the pages in swap), the
#      servers' RSS (VmRSS of ghostswapd, or of nbdkit + nbdfuse), zram's
#      mm_stat, and the memory the whole system uses;
#   4. release it: it verifies every page PASSES times, in a different
#      order each pass; then tear everything down (also on error or ^C).
#
# Figures, per configuration (medians over the runs):
#   fill, verify, total   the workload's own timers (seconds)
#   pswpout, pswpin       /proc/vmstat deltas over the whole run (pages)
#   swapped               pages in swap after the fill (/proc/swaps Used)
#   B/page                RAM used per swapped page: the servers' RSS after
#                         the fill minus before, over `swapped` (zram:
#                         mm_stat mem_used_total over `swapped`)
#   cache                 how much the page cache grew meanwhile (MiB,
#                         /proc/meminfo Cached): a loop device without
#                         direct I/O over nbdfuse's file keeps a second,
#                         uncompressed copy of swapped pages there
#                         (reclaimable, so not counted in B/page; fincore
#                         cannot see it: opening a FUSE file drops it)
#   sys B/page            the whole machine's: (MemTotal - MemFree) after
#                         the fill minus before, less what the workload's
#                         cgroup holds, over `swapped`; this also counts
#                         page cache holding second copies of swapped
#                         pages and the kernel's own costs, and is noisy
#                         (anything else running moves it)
#   best                  the shortest total of the runs (noise on a shared
#                         machine only ever adds time)
#   load                  the 1-minute load average when the workload started
# and the ratios of total time and B/page to zram's.  A run during which
# another swap area was active is flagged (other_swaps > 0): its pages
# may have gone there, and the counters are global.
#
# Environment (defaults in brackets):
#   RUNS [3]          runs of each configuration
#   SIZE [768M]       the workload's memory
#   LIMIT [256M]      its cgroup's memory limit
#   PASSES [2]        verify passes
#   DEVSIZE [4G]      the device size of each configuration
#   RAMLIMIT [2G]     ghostswap's ram-limit
#   CONFIGS           which configurations, among
#                     [gsd-dio gsd-buffered gs-nbdfuse memory-nbdfuse zram]
#                     and gsd-uring (ghostswapd over io_uring, loop direct
#                     I/O; gsd-dio and gsd-buffered use /dev/fuse; the
#                     fuse module's enable_uring is turned on for it and
#                     restored at exit)
#                     and gs-nbdfuse-dio, memory-nbdfuse-dio (the nbdfuse
#                     paths with losetup --direct-io=on: no page cache copy)
#   OUT [unset]       also write the per-run lines there
#   GSD_OPTS [unset]  more ghostswapd options (e.g. --queue-threads=4)
#
# It refuses to run while any swap is active (pages would go there too,
# and the counters would mix) or with zswap enabled.
set -u
set -o pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath "${1:-build}" 2>/dev/null || echo "${1:-build}")
GHOSTSWAPD=${GHOSTSWAPD:-$build/server/ghostswapd}
GHOSTSWAPCTL=${GHOSTSWAPCTL:-$build/server/ghostswapctl}
GHOSTSWAP_PLUGIN=${GHOSTSWAP_PLUGIN:-$build/plugin/nbdkit-ghostswap-plugin.so}
SWAP_WORKLOAD=${SWAP_WORKLOAD:-$build/tests/swap/swap-workload}
RUNS=${RUNS:-3}
SIZE=${SIZE:-768M}
LIMIT=${LIMIT:-256M}
PASSES=${PASSES:-2}
DEVSIZE=${DEVSIZE:-4G}
RAMLIMIT=${RAMLIMIT:-2G}
CONFIGS=${CONFIGS:-gsd-dio gsd-buffered gs-nbdfuse memory-nbdfuse zram}
OUT=${OUT:-}
GSD_OPTS=${GSD_OPTS:-}

. "$root/tests/swap/lib.sh"
prog=bench-swap

to_bytes () {
    local s=$1 n u
    [[ $s =~ ^([0-9]+)([kKmMgG]?)$ ]] || fail "bad size '$s'"
    n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]}
    case $u in
        k|K) echo $((n << 10)) ;; m|M) echo $((n << 20)) ;;
        g|G) echo $((n << 30)) ;; *) echo "$n" ;;
    esac
}

[ "$(id -u)" = 0 ] || fail "must run as root (mounts, loop devices, swapon, cgroups)"
require_fuse
require_loop_swap
cg_detect || fail "$CG_WHY"
if [ -n "$(tail -n +2 /proc/swaps)" ]; then
    cat /proc/swaps >&2
    fail "swap is already active (above): swapoff it first; this benchmark needs its device to be the only swap"
fi
if [ "$(cat /sys/module/zswap/parameters/enabled 2>/dev/null)" = Y ]; then
    fail "zswap is enabled: pages would go to its pool, not to the device (echo N > /sys/module/zswap/parameters/enabled)"
fi
for c in $CONFIGS; do
    case $c in
        gsd-*) [ -x "$GHOSTSWAPD" ] && [ -x "$GHOSTSWAPCTL" ] ||
                   fail "$c: no $GHOSTSWAPD or $GHOSTSWAPCTL (give BUILD_DIR)" ;;
        gs-nbdfuse|gs-nbdfuse-dio)
            [ -f "$GHOSTSWAP_PLUGIN" ] || fail "$c: no $GHOSTSWAP_PLUGIN" ;&
        memory-nbdfuse|memory-nbdfuse-dio) command -v nbdkit >/dev/null && command -v nbdfuse >/dev/null ||
                            fail "$c: needs nbdkit and nbdfuse" ;;
        zram) command -v zramctl >/dev/null || fail "zram: no zramctl"
              [ -e /sys/class/zram-control ] || modprobe zram 2>/dev/null ||
                  fail "zram: no zram in this kernel (modprobe zram)" ;;
        *) fail "unknown configuration '$c'" ;;
    esac
done

size=$(to_bytes "$SIZE")
limit=$(to_bytes "$LIMIT")

# The workload: the built one, else compiled here.
wl_tmp=
if [ ! -x "$SWAP_WORKLOAD" ]; then
    wl_tmp=$(mktemp -d /tmp/bench-swap-XXXXXX)
    trap 'rc=$?; rm -rf "$wl_tmp"; (exit $rc); cleanup' EXIT
    cc -O2 -o "$wl_tmp/swap-workload" "$root/tests/swap/swap-workload.c" ||
        fail "cannot compile the workload"
    SWAP_WORKLOAD=$wl_tmp/swap-workload
fi

# other_swaps - how many swap areas other than ours are active.
other_swaps () {
    awk -v d="${swapdev:-none}" 'NR > 1 && $1 != d { n++ } END { print n + 0 }' /proc/swaps
}

rss_kib () {
    local p t=0 v
    for p; do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo $t
}
cached_kib () {
    awk '/^Cached:/ { print $2 }' /proc/meminfo
}
mem_used_kib () {
    awk '/^MemTotal:/ { t = $2 } /^MemFree:/ { f = $2 } END { print t - f }' /proc/meminfo
}

dio_of () { case $1 in *-dio) echo on ;; *) echo off ;; esac; }

# setup CONFIG - start its server and swap device; sets $procs.
setup () {
    make_tmp
    procs=
    case $1 in
        gsd-dio|gsd-buffered|gsd-uring)
            mkdir "$tmp/mnt"
            if [ "$1" = gsd-uring ]; then
                GS_TRANSPORT=uring
            else
                GS_TRANSPORT=dev
            fi
            # shellcheck disable=SC2086
            start_ghostswapd $GSD_OPTS "$tmp/mnt" size="$DEVSIZE" ram-limit="$RAMLIMIT"
            if [ "$1" != gsd-buffered ]; then
                attach_swap "$tmp/mnt/swap" --direct-io=on
            else
                attach_swap "$tmp/mnt/swap" --direct-io=off
            fi
            procs=$gs_pid ;;
        gs-nbdfuse|gs-nbdfuse-dio)
            start_nbdkit_nbdfuse "$GHOSTSWAP_PLUGIN" size="$DEVSIZE" \
                ram-limit="$RAMLIMIT" control="$ctl"
            attach_swap "$tmp/fmnt/ghost" --direct-io="$(dio_of "$1")"
            procs="$nbdkit_pid $nbdfuse_pid" ;;
        memory-nbdfuse|memory-nbdfuse-dio)
            start_nbdkit_nbdfuse memory "$DEVSIZE" allocator=zstd
            attach_swap "$tmp/fmnt/ghost" --direct-io="$(dio_of "$1")"
            procs="$nbdkit_pid $nbdfuse_pid" ;;
        zram)
            attach_zram "$DEVSIZE" lz4 ;;
    esac
}

# run_one CONFIG RUN - one measured run; prints a RESULT line.
run_one () {
    local c=$1 r=$2 rss0 mem0 out0 in0 rss1 mem1 cgu used pages ram fill verify
    local extra="" cache cached0 load others
    # Other swap areas (someone else's) would take pages and move the
    # counters: note them on the result line, with the load.
    others=$(other_swaps)
    setup "$c"
    sleep 1
    rss0=$(rss_kib $procs)
    mem0=$(mem_used_kib)
    cached0=$(cached_kib)
    out0=$(vmstat pswpout)
    in0=$(vmstat pswpin)
    load=$(cut -d' ' -f1 /proc/loadavg)
    start_workload "$size" "$limit" "$PASSES"
    wait_filled 900
    others=$((others + $(other_swaps)))
    sleep 0.5           # in-flight writes
    used=$(swap_used_kib)
    pages=$((used / 4))
    rss1=$(rss_kib $procs)
    mem1=$(mem_used_kib)
    cache=$(( ($(cached_kib) - cached0) * 1024 ))
    cgu=$(cg_usage "$cg")
    if [ "$c" = zram ]; then
        # orig compr mem_used_total ...
        read -r zorig zcompr zused _ < "/sys/block/${zram#/dev/}/mm_stat"
        ram=$zused
        extra="zram orig $zorig compr $zcompr mem_used_total $zused"
    else
        ram=$(((rss1 - rss0) * 1024))
        if [ "${c%%-*}" != memory ]; then
            gs_stats
            extra="engine pool $(gs_stat pool_bytes) metadata $(gs_stat metadata_bytes) slots_ram $(gs_stat slots_ram) slots_same $(gs_stat slots_same)"
        fi
    fi
    finish_workload 1800
    others=$((others + $(other_swaps)))
    fill=$(wl_value fill_seconds)
    verify=$(wl_value verify_seconds)
    local line
    line=$(printf 'RESULT %s %s fill %s verify %s total %.3f pswpout %d pswpin %d swapped %d ram %d cache %d sys %d load %s other_swaps %d' \
        "$c" "$r" "$fill" "$verify" "$(echo "$fill + $verify" | bc -l)" \
        $(( $(vmstat pswpout) - out0 )) $(( $(vmstat pswpin) - in0 )) \
        "$pages" "$ram" "$cache" $(( (mem1 - mem0) * 1024 - cgu )) "$load" "$others")
    [ "$others" = 0 ] || say "  warning: another swap area was active during this run: its figures are suspect"
    echo "$line"
    say "  $extra; verify passes: $(awk '$1 == "verify_pass" { printf "%s%s %s s", sep, $3, $4; sep = ", " }' "$tmp/workload.out")"
    [ -z "$OUT" ] || echo "$line $extra" >>"$OUT"
    results+=("$line")
    detach_swap
    teardown
}

command -v bc >/dev/null || fail "needs bc"
say "workload: $SIZE in a $LIMIT memory cgroup (v$CG_VERSION), $PASSES verify passes; device $DEVSIZE, ghostswap ram-limit $RAMLIMIT; $RUNS run(s) of: $CONFIGS"
say "machine: $(nproc) CPUs, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
results=()
for r in $(seq "$RUNS"); do
    for c in $CONFIGS; do
        say "run $r: $c"
        run_one "$c" "$r"
    done
done

# The table: medians over the runs, ratios to zram.
printf '%s\n' "${results[@]}" | awk -v configs="$CONFIGS" '
function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    c = $2; n[c]++
    for (i = 4; i < NF; i += 2) v[c, $i, n[c]] = $(i + 1)
}
END {
    nc = split(configs, cs, " ")
    nk = split("fill verify total pswpout pswpin swapped ram cache sys load", ks, " ")
    for (ci = 1; ci <= nc; ci++) {
        c = cs[ci]
        for (ki = 1; ki <= nk; ki++) {
            k = ks[ki]
            for (i = 1; i <= n[c]; i++) a[i] = v[c, k, i]
            m[c, k] = median(a, n[c])
            if (k == "total") best[c] = a[1]      # sorted by median()
        }
    }
    z = n["zram"] > 0
    printf "\n%-15s %7s %7s %7s %5s %6s %5s %8s %8s %8s %7s %5s %6s %8s %5s\n",
        "config", "fill s", "verify", "total", "xzram", "best", "xzram", "pswpout", "pswpin", "swapped",
        "B/page", "xzram", "cache", "sys B/pg", "load"
    for (ci = 1; ci <= nc; ci++) {
        c = cs[ci]
        pages = m[c, "swapped"] > 0 ? m[c, "swapped"] : 1
        bpp = m[c, "ram"] / pages
        tr = z && m["zram", "total"] > 0 ? sprintf("%.2f", m[c, "total"] / m["zram", "total"]) : "-"
        zb = z ? m["zram", "ram"] / (m["zram", "swapped"] > 0 ? m["zram", "swapped"] : 1) : 0
        rr = z && zb > 0 ? sprintf("%.2f", bpp / zb) : "-"
        br = z && best["zram"] > 0 ? sprintf("%.2f", best[c] / best["zram"]) : "-"
        printf "%-15s %7.2f %7.2f %7.2f %5s %6.2f %5s %8d %8d %8d %7.0f %5s %5.0fM %8.0f %5.2f\n",
            c, m[c, "fill"], m[c, "verify"], m[c, "total"], tr, best[c], br,
            m[c, "pswpout"], m[c, "pswpin"], m[c, "swapped"], bpp, rr,
            (m[c, "cache"] > 0 ? m[c, "cache"] : 0) / 1048576, m[c, "sys"] / pages, m[c, "load"]
    }
}'
