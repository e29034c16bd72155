# shellcheck shell=bash
# Shared by the end-to-end swap tests (sourced, not run): skips with a
# printed reason, a work directory under /var/tmp (a disk file system:
# backing files need O_DIRECT and are refused on tmpfs), the swap servers
# (ghostswapd; nbdkit ghostswap + nbdfuse), a loop device made swap, the
# workload in a memory cgroup, the counters, and a cleanup trap that runs
# on every exit, failures and signals included, and leaves no workload,
# cgroup, swap area, loop device, mount, daemon or file behind.
#
# Environment (set by tests/swap/meson.build):
#   GHOSTSWAPD        the built ghostswapd
#   GHOSTSWAPCTL      the built ghostswapctl
#   GHOSTSWAP_PLUGIN  the built nbdkit plugin (nbdfuse test only)
#   SWAP_WORKLOAD     the built swap-workload
#   GS_TRANSPORT      optional: uring or dev, ghostswapd's FUSE transport
#                     (uring turns the fuse module's enable_uring on; the
#                     cleanup trap restores it)
#   NBDKIT            nbdkit to run (default: nbdkit; CI's ASan build
#                     passes a wrapper that preloads libasan)

prog=$(basename "$0")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../common/proc.sh"     # stop_pid
. "$here/cgroup.sh"

MiB=$((1024 * 1024))

tmp=
logs=()
fail () {
    local f
    echo "$prog: test failed: $*" >&2
    for f in "${logs[@]}"; do
        if [ -s "$f" ]; then
            echo "--- $(basename "$f"):" >&2
            tail -n 40 "$f" >&2
        fi
    done
    exit 1
}
skip () { echo "$prog: skipped: $*"; exit 77; }
say () { echo "$prog: $*"; }

# ---- Requirements (each skips with the reason) ----

require_root () {
    [ "$(id -u)" = 0 ] ||
        skip "not root (mounting, loop devices, swapon and cgroups need root)"
}
require_loop_swap () {
    local p
    for p in losetup mkswap swapon swapoff; do
        command -v $p >/dev/null || skip "no $p"
    done
    [ -e /dev/loop-control ] || skip "no loop device support (/dev/loop-control)"
    losetup -f >/dev/null 2>&1 || skip "no free loop device"
    grep -q '^SwapTotal:' /proc/meminfo || skip "the kernel has no swap support"
}
# require_no_zswap - with zswap on, swapped pages stay in its RAM pool
# and never reach the device.
require_no_zswap () {
    [ "$(cat /sys/module/zswap/parameters/enabled 2>/dev/null)" != Y ] ||
        skip "zswap is enabled (/sys/module/zswap/parameters/enabled): swapped pages would stay in its pool, not reach the device"
}
require_fuse () {
    [ -c /dev/fuse ] || skip "no /dev/fuse"
    grep -qw fuse /proc/filesystems || skip "the kernel has no FUSE"
    command -v fusermount3 >/dev/null || skip "no fusermount3"
}
require_memcg () {
    cg_detect || skip "$CG_WHY"
}
# require_bin VAR - $VAR names an executable built by meson.
require_bin () {
    local v=$1
    [ -n "${!v:-}" ] || skip "$v is not set (run through meson test)"
    [ -x "${!v}" ] || [ -f "${!v}" ] || skip "${!v} ($v) not found"
}

# ---- State, cleanup ----

wl_pid=         # the workload
cg=             # its cgroup
loop=           # our loop device
swapdev=        # our swap area ($loop, or a zram device)
swapped=        # set while $swapdev is active swap
zram=           # our zram device (bench-swap.sh)
zram_added=     # set if we hot-added it
gs_pid=         # ghostswapd
nbdkit_pid=
nbdfuse_pid=
ctl=            # the control socket

# is_mounted DIR - is something mounted on DIR?  (/proc/mounts, not
# mountpoint(1): a dead FUSE mount fails stat.)
is_mounted () {
    awk -v d="$1" '$2 == d { found = 1 } END { exit !found }' /proc/mounts
}

# teardown - undo everything set up so far, in order; leaves the state
# variables empty.  (Between the configurations of bench/bench-swap.sh,
# and in the exit trap.)
teardown () {
    local m id
    # The workload first: swapoff would have to bring its pages back into
    # a cgroup too small for them.
    stop_pid "$wl_pid" KILL 10
    wl_pid=
    cg_remove "$cg"
    cg=
    if [ -n "$swapped" ]; then
        swapoff "$swapdev" || echo "$prog: cleanup: swapoff $swapdev failed" >&2
        swapped=
    fi
    swapdev=
    if [ -n "$zram" ]; then
        # zramctl --reset also removes the device (util-linux >= 2.29)
        # where the kernel can: leave the zram devices as they were.
        zramctl --reset "$zram" || echo "$prog: cleanup: zramctl --reset $zram failed" >&2
        if [ -n "$zram_added" ] && [ -e "/sys/block/${zram#/dev/}" ]; then
            echo "${zram#/dev/zram}" >/sys/class/zram-control/hot_remove ||
                echo "$prog: cleanup: cannot remove $zram" >&2
        elif [ -z "$zram_added" ] && [ ! -e "/sys/block/${zram#/dev/}" ]; then
            id=$(cat /sys/class/zram-control/hot_add)
            if [ "$id" != "${zram#/dev/zram}" ]; then
                echo "$prog: cleanup: could not re-create $zram as it was" >&2
                [ -z "$id" ] || echo "$id" >/sys/class/zram-control/hot_remove
            fi
        fi
        zram=
        zram_added=
    fi
    if [ -n "$loop" ]; then
        losetup -d "$loop" || echo "$prog: cleanup: losetup -d $loop failed" >&2
        loop=
    fi
    # ghostswapd: SIGQUIT is the forced stop (nothing swaps there now).
    stop_pid "$gs_pid" QUIT 10
    gs_pid=
    # nbdfuse exits when unmounted; nbdkit when killed.
    if [ -n "$tmp" ] && is_mounted "$tmp/fmnt"; then
        fusermount3 -u "$tmp/fmnt" 2>/dev/null
    fi
    stop_pid "$nbdfuse_pid" TERM 10
    nbdfuse_pid=
    stop_pid "$nbdkit_pid" TERM 10
    nbdkit_pid=
    if [ -n "$tmp" ]; then
        for m in $(awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/mounts); do
            fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"
        done
        rm -rf --one-file-system "$tmp"
        tmp=
    fi
    logs=()
}

uring_param=/sys/module/fuse/parameters/enable_uring
uring_saved=                    # enable_uring as found, once changed

cleanup () {
    local rc=$?
    set +e
    trap '' INT TERM HUP
    teardown
    if [ -n "$uring_saved" ]; then
        echo "$uring_saved" >"$uring_param" ||
            echo "$prog: cleanup: cannot restore $uring_param to $uring_saved" >&2
    fi
    exit $rc
}
trap cleanup EXIT
for sig in INT TERM HUP; do
    # shellcheck disable=SC2064
    trap "echo \"\$prog: interrupted by SIG$sig\" >&2; exit 1" $sig
done
unset sig

make_tmp () {
    tmp=$(mktemp -d /var/tmp/ghostswap-swaptest-XXXXXX) || fail "mktemp"
    tmp=$(realpath "$tmp")
    ctl=$tmp/ctl.sock
}

# note_foreign_swap - say so if some other swap area is active (ours get
# the highest priority, so the pages still come to us first).
note_foreign_swap () {
    local other
    other=$(awk 'NR > 1 { print $1 }' /proc/swaps | tr '\n' ' ')
    [ -z "$other" ] || say "note: other swap already active, not ours: $other"
}

# ---- Servers ----

# start_ghostswapd [OPTIONS] MOUNTPOINT KEY=VALUE... - ghostswapd in the
# foreground with -v and $ctl; waits until MOUNTPOINT is mounted.
#   With GS_TRANSPORT set, it runs with --transport=GS_TRANSPORT and must
#   serve over it (its stats file says which).
start_ghostswapd () {
    local i mp t targs=()
    for mp; do case $mp in -*) ;; *) break ;; esac; done
    case ${GS_TRANSPORT:-} in
        '') ;;
        uring)
            [ -w "$uring_param" ] ||
                skip "no writable $uring_param (kernel without FUSE over io_uring?)"
            [ -n "$uring_saved" ] || uring_saved=$(cat "$uring_param")
            echo Y >"$uring_param" || fail "cannot turn $uring_param on"
            targs=(--transport=uring) ;;
        dev) targs=(--transport=dev) ;;
        *) fail "GS_TRANSPORT='$GS_TRANSPORT' is not uring or dev" ;;
    esac
    logs+=("$tmp/ghostswapd.log")
    "$GHOSTSWAPD" -v --control "$ctl" "${targs[@]}" "$@" \
        >"$tmp/ghostswapd.log" 2>&1 </dev/null &
    gs_pid=$!
    for i in $(seq 200); do
        if is_mounted "$mp" && [ -S "$ctl" ]; then
            [ -n "${GS_TRANSPORT:-}" ] || return 0
            t=$(awk '$1 == "fuse_transport" { print $2 }' "$mp/stats")
            [ "$t" = "$GS_TRANSPORT" ] ||
                fail "ghostswapd serves over '$t', not over $GS_TRANSPORT"
            return 0
        fi
        kill -0 "$gs_pid" 2>/dev/null || fail "ghostswapd exited at start"
        sleep 0.05
    done
    fail "ghostswapd did not mount $mp within 10 s"
}

# start_nbdkit_nbdfuse PLUGIN KEY=VALUE... - nbdkit PLUGIN on
# $tmp/nbd.sock, and nbdfuse presenting it as $tmp/fmnt/ghost.  For the
# ghostswap plugin, pass control="$ctl": this waits for that socket too.
start_nbdkit_nbdfuse () {
    local i nbdkit=${NBDKIT:-nbdkit} want_ctl=
    case " $* " in *" control=$ctl "*) want_ctl=1 ;; esac
    logs+=("$tmp/nbdkit.log" "$tmp/nbdfuse.log")
    "$nbdkit" -U "$tmp/nbd.sock" -f --exit-with-parent \
        -v -D nbdkit.backend.datapath=0 "$@" \
        >"$tmp/nbdkit.log" 2>&1 </dev/null &
    nbdkit_pid=$!
    for i in $(seq 200); do
        [ -S "$tmp/nbd.sock" ] && { [ -z "$want_ctl" ] || [ -S "$ctl" ]; } && break
        kill -0 "$nbdkit_pid" 2>/dev/null || fail "nbdkit exited at start"
        sleep 0.05
    done
    [ -S "$tmp/nbd.sock" ] || fail "nbdkit did not listen within 10 s"
    mkdir "$tmp/fmnt"
    nbdfuse -P "$tmp/nbdfuse.pid" "$tmp/fmnt/ghost" --unix "$tmp/nbd.sock" \
        >"$tmp/nbdfuse.log" 2>&1 </dev/null &
    nbdfuse_pid=$!
    for i in $(seq 200); do
        [ -s "$tmp/nbdfuse.pid" ] && is_mounted "$tmp/fmnt" && return 0
        kill -0 "$nbdfuse_pid" 2>/dev/null || fail "nbdfuse exited at start"
        sleep 0.05
    done
    fail "nbdfuse did not mount $tmp/fmnt within 10 s"
}

# ---- Swap ----

# attach_swap FILE [LOSETUP OPTIONS...] - a loop device over FILE, made
# swap with discard, at the highest priority.
attach_swap () {
    local file=$1
    shift
    loop=$(losetup "$@" -f --show "$file") || fail "losetup $* $file"
    say "$loop over $file, direct I/O $(cat "/sys/block/${loop#/dev/}/loop/dio")"
    swapdev=$loop
    make_swap
}
# make_swap - mkswap $swapdev, swapon --discard at the highest priority.
make_swap () {
    mkswap "$swapdev" >/dev/null || fail "mkswap $swapdev"
    swapon --discard -p 32767 "$swapdev" || fail "swapon --discard $swapdev"
    swapped=1
    grep -q "^$swapdev " /proc/swaps || fail "$swapdev is not in /proc/swaps"
}

# attach_zram SIZE ALGORITHM - a zram device made swap (the in-kernel
# anchor of bench-swap.sh).
attach_zram () {
    local before
    command -v zramctl >/dev/null || fail "no zramctl"
    before=$(ls -d /sys/block/zram* 2>/dev/null | tr '\n' ' ')
    zram=$(zramctl --find --size "$1" --algorithm "$2") ||
        fail "zramctl --find --size $1 --algorithm $2"
    case " $before " in *" /sys/block/${zram#/dev/} "*) ;; *) zram_added=1 ;; esac
    say "$zram: zram, $1, $(cat "/sys/block/${zram#/dev/}/comp_algorithm")"
    swapdev=$zram
    make_swap
}

# detach_swap - swapoff and losetup -d, each must succeed.
detach_swap () {
    swapoff "$swapdev" || fail "swapoff $swapdev"
    swapped=
    ! grep -q "^$swapdev " /proc/swaps || fail "$swapdev still in /proc/swaps after swapoff"
    swapdev=
    if [ -n "$loop" ]; then
        losetup -d "$loop" || fail "losetup -d $loop"
        loop=
    fi
}

# swap_used_kib - Used (KiB) of our device in /proc/swaps.
swap_used_kib () {
    awk -v d="$swapdev" '$1 == d { print $4; found = 1 } END { if (!found) print 0 }' /proc/swaps
}

# vmstat KEY - a counter from /proc/vmstat.
vmstat () {
    awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat
}

# gs_stats - ghostswapctl --json stats, saved in $tmp/stats.json.
# gs_stat KEY - one figure of the last gs_stats (of the "stats" object,
# not the backings').
gs_stats () {
    "$GHOSTSWAPCTL" --socket "$ctl" --json stats >"$tmp/stats.json" ||
        fail "ghostswapctl stats: exit status $?"
}
gs_stat () {
    sed -n 's/.*"stats":{\([^}]*\)}.*/\1/p' "$tmp/stats.json" |
        tr ',' '\n' | sed -n "s/^\"$1\":\\([0-9.]*\\)\$/\\1/p"
}

# ---- Workload ----

# start_workload SIZE LIMIT PASSES [ARGS...] - swap-workload --hold in a
# fresh memory cgroup of LIMIT bytes, in the background ($wl_pid); its
# output in $tmp/workload.out.
start_workload () {
    local size=$1 limit=$2 passes=$3
    shift 3
    [ -n "${CG_VERSION:-}" ] || cg_detect || fail "$CG_WHY"
    cg=$(cg_create "ghostswap-test-$$" "$limit") || fail "cannot create the memory cgroup"
    say "workload: $((size / MiB)) MiB in cgroup v$CG_VERSION $cg limited to $((limit / MiB)) MiB, $passes passes"
    logs+=("$tmp/workload.out" "$tmp/workload.err")
    rm -f "$tmp/ready"
    cg_exec "$cg" "$SWAP_WORKLOAD" --size "$size" --passes "$passes" \
        --hold --ready-file "$tmp/ready" "$@" \
        >"$tmp/workload.out" 2>"$tmp/workload.err" </dev/null &
    wl_pid=$!
}

# wait_filled SECONDS - until the workload has written every page.
wait_filled () {
    local i
    for i in $(seq $(($1 * 10))); do
        [ -e "$tmp/ready" ] && return 0
        if ! kill -0 "$wl_pid" 2>/dev/null; then
            wait "$wl_pid"
            local st=$?
            wl_pid=
            fail "the workload ended during the fill, status $st"
        fi
        sleep 0.1
    done
    fail "the workload did not finish its fill within $1 s"
}

# finish_workload SECONDS - release it to verify; wait (at most SECONDS)
# and fail unless it exits 0.
finish_workload () {
    local i st
    kill -USR1 "$wl_pid" || fail "the workload is gone"
    for i in $(seq $(($1 * 10))); do
        kill -0 "$wl_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$wl_pid" 2>/dev/null && fail "the workload did not finish verifying within $1 s"
    st=0
    wait "$wl_pid" || st=$?
    wl_pid=
    [ $st = 0 ] || fail "the workload exited with status $st: $(cat "$tmp/workload.err")"
    grep -qx "result ok" "$tmp/workload.out" || fail "the workload did not report 'result ok'"
    cg_remove "$cg" || fail "cannot remove the cgroup $cg"
    cg=
}

# wl_value KEY - a figure from the workload's output.
wl_value () {
    awk -v k="$1" '$1 == k { print $2 }' "$tmp/workload.out"
}

# ---- The end-to-end check shared by the ghostswapd and nbdfuse paths ----

# swap_e2e - with $loop active swap over a ghostswap device served with
# control socket $ctl: the workload (WL_SIZE in a WL_LIMIT cgroup,
# WL_PASSES passes) swaps through it; the kernel's counters and the
# engine's statistics must agree that pages went through the device; once
# the workload is gone, the discards must free the slots.
WL_SIZE=$((768 * MiB))
WL_LIMIT=$((256 * MiB))
WL_PASSES=2
swap_e2e () {
    local out0 in0 out1 in1 w0 t0 used held_ram held_same held_backing
    local slots_used used_pages min_out i ram same trims now_used

    out0=$(vmstat pswpout)
    in0=$(vmstat pswpin)
    gs_stats
    w0=$(gs_stat writes)
    t0=$(gs_stat trims)

    start_workload $WL_SIZE $WL_LIMIT $WL_PASSES
    wait_filled 600
    say "workload filled in $(wl_value fill_seconds) s: $(head -n 1 "$tmp/workload.out")"

    # While it holds its pages: the kernel has them in our swap area, and
    # the engine holds them.
    used=$(swap_used_kib)
    used_pages=$((used / 4))
    out1=$(vmstat pswpout)
    say "while held: /proc/swaps Used $used KiB ($used_pages pages), pswpout +$((out1 - out0))"
    [ "$used" -gt 0 ] || fail "/proc/swaps shows nothing used on $swapdev after the fill"
    min_out=$(( (WL_SIZE - WL_LIMIT) / 4096 / 2 ))
    [ $((out1 - out0)) -ge $min_out ] ||
        fail "pswpout rose by $((out1 - out0)) pages during the fill, expected at least $min_out"
    gs_stats
    held_ram=$(gs_stat slots_ram)
    held_same=$(gs_stat slots_same)
    held_backing=$(gs_stat slots_backing)
    say "ghostswap while held: writes $(gs_stat writes) (+$(( $(gs_stat writes) - w0 ))), slots_ram $held_ram, slots_same $held_same, slots_backing $held_backing, pool $(gs_stat pool_bytes) B, compression $(gs_stat compression_ratio)x"
    [ "$(gs_stat writes)" -gt "$w0" ] || fail "ghostswap counted no writes"
    [ $((held_ram + held_same)) -gt 0 ] || fail "ghostswap holds no page in RAM or same-filled"
    # Agreement: the kernel's swapped pages (less the zero pages it keeps
    # in its zeromap and never writes) are in the engine's tiers.  At
    # most Used + 1 (mkswap's header), at least half of Used.
    slots_used=$((held_ram + held_same + held_backing))
    [ $slots_used -le $((used_pages + 1)) ] ||
        fail "ghostswap holds $slots_used pages, more than the $used_pages the kernel has in swap"
    [ $slots_used -ge $((used_pages / 2)) ] ||
        fail "ghostswap holds $slots_used pages, less than half the $used_pages the kernel has in swap"
    say "ok: the kernel has $used_pages pages in swap, ghostswap holds $slots_used"

    # Verify every page, WL_PASSES times.
    finish_workload 600
    out1=$(vmstat pswpout)
    in1=$(vmstat pswpin)
    say "ok: workload verified $(wl_value pages_checked) pages; fill $(wl_value fill_seconds) s, verify $(wl_value verify_seconds) s ($(awk '$1 == "verify_pass" { printf "%s%s %s s", sep, $3, $4; sep = ", " }' "$tmp/workload.out")); pswpout +$((out1 - out0)), pswpin +$((in1 - in0))"
    [ $((in1 - in0)) -ge $min_out ] ||
        fail "pswpin rose by $((in1 - in0)) pages, expected at least $min_out"
    gs_stats
    [ "$(gs_stat reads)" -gt 0 ] || fail "ghostswap counted no reads"

    # The workload is gone: its swap is free, and with --discard the
    # kernel's discard work trims the freed clusters.
    for i in $(seq 100); do
        gs_stats
        ram=$(gs_stat slots_ram)
        same=$(gs_stat slots_same)
        trims=$(gs_stat trims)
        now_used=$(swap_used_kib)
        if [ "$trims" -gt "$t0" ] && [ $((ram + same)) -le $(( (held_ram + held_same) / 10 )) ]; then
            break
        fi
        sleep 0.1
    done
    say "after exit (${i}00 ms): /proc/swaps Used $now_used KiB; ghostswap trims $trims (+$((trims - t0))), slots_ram $ram, slots_same $same, slots_backing $(gs_stat slots_backing)"
    [ "$now_used" -lt $((used / 10 + 64)) ] ||
        fail "/proc/swaps still shows $now_used KiB used after the workload exited"
    [ "$trims" -gt "$t0" ] || fail "no discard reached ghostswap (trims $trims)"
    [ $((ram + same)) -le $(( (held_ram + held_same) / 10 )) ] ||
        fail "the discards did not free the slots: slots_ram $ram + slots_same $same, was $held_ram + $held_same"
    say "ok: discards freed the slots"

    detach_swap
    say "ok: swapoff, loop device detached"
}
