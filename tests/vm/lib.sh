# shellcheck shell=bash
# Shared by the vm tests (sourced, not run): the host half.  Builds (or
# finds cached) the guest with build-guest.sh, starts nbdkit ghostswap and
# a qemu TCG guest whose /test.sh is the test's guest half, talks to the
# guest over two serial ports (ttyS0: the guest's console, read from
# $tmp/console.log; ttyS1: the host's answers to gs_sync), and removes
# everything in a trap on every exit, failures and signals included: no
# qemu, forwarder, nbdkit or file is left behind.
#
# The guest has no network unless a test asks for the guestfwd one, and
# that one is qemu user networking with restrict=on: the guest reaches
# nothing but the one forwarded port, and that leads to our Unix socket.
#
# Environment (set by tests/vm/meson.build):
#   GHOSTSWAP_PLUGIN  the built nbdkit plugin
#   GHOSTSWAPCTL      the built ghostswapctl
#   VM_GUEST_DIR      where build-guest.sh caches the kernel and initramfs
#   VM_WORKLOAD_SRC   tests/swap/swap-workload.c, built static for the guest
#   NBDKIT            nbdkit to run (default: nbdkit)

prog=$(basename "$0")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../common/proc.sh"     # stop_pid
MiB=$((1024 * 1024))

tmp=
logs=()
qemu_pid=
nbdkit_pid=
ctl=

say () { echo "$prog: $*"; }
skip () { echo "$prog: skipped: $*"; exit 77; }
fail () {
    local f
    echo "$prog: test failed: $*" >&2
    for f in "${logs[@]}"; do
        if [ -s "$f" ]; then
            echo "--- $(basename "$f") (last lines):" >&2
            tail -n 60 "$f" >&2
        fi
    done
    exit 1
}

# stop_qemu - qemu, and the forwarders a guestfwd=...-cmd: started
# (qemu's user networking runs them detached: they are found by the
# socket path in $tmp on their command line).
stop_qemu () {
    local k
    if [ -n "$qemu_pid" ]; then
        stop_pid "$qemu_pid" TERM 5
        qemu_pid=
    fi
    [ -n "$tmp" ] || return 0
    for k in $(pgrep -f -- "UNIX-CONNECT:$tmp/" 2>/dev/null); do
        stop_pid "$k" TERM 2
    done
}

cleanup () {
    local rc=$?
    set +e
    trap '' INT TERM HUP
    stop_qemu
    stop_pid "$nbdkit_pid" TERM 10
    nbdkit_pid=
    [ -z "$tmp" ] || rm -rf --one-file-system "$tmp"
    exit $rc
}
trap cleanup EXIT
for sig in INT TERM HUP; do
    # shellcheck disable=SC2064
    trap "echo \"\$prog: interrupted by SIG$sig\" >&2; exit 1" $sig
done
unset sig

# ---- Requirements ----

require_bin () {
    local v=$1
    [ -n "${!v:-}" ] || skip "$v is not set (run through meson test)"
    [ -e "${!v}" ] || skip "${!v} ($v) not found"
}

# guest_build - the guest's kernel and initramfs ($VM_GUEST_DIR), built
# once; skips with build-guest.sh's reason.
guest_build () {
    local out st=0
    # The guest directory is build-guest.sh's output: it need not exist.
    [ -n "${VM_GUEST_DIR:-}" ] || skip "VM_GUEST_DIR is not set (run through meson test)"
    require_bin VM_WORKLOAD_SRC
    command -v "${NBDKIT:-nbdkit}" >/dev/null || skip "no nbdkit"
    out=$("$here/build-guest.sh" "$VM_GUEST_DIR" "$VM_WORKLOAD_SRC" 2>&1) || st=$?
    [ $st = 77 ] && skip "${out#build-guest: skipped: }"
    [ $st = 0 ] || fail "build-guest.sh: $out"
}

make_tmp () {
    # /var/tmp: a disk file system (backing files need O_DIRECT).
    tmp=$(mktemp -d /var/tmp/ghostswap-vmtest-XXXXXX) || fail "mktemp"
    ctl=$tmp/ctl.sock
}

# ---- Host: nbdkit ----

# start_nbdkit [NBDKIT OPTIONS...] -- KEY=VALUE... - nbdkit ghostswap on
# $tmp/nbd.sock with control=$ctl, in the foreground (-f) of a background
# job; waits for both sockets.
start_nbdkit () {
    local opts=() i
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    logs+=("$tmp/nbdkit.log")
    "${NBDKIT:-nbdkit}" -U "$tmp/nbd.sock" -f --exit-with-parent "${opts[@]}" \
        "$GHOSTSWAP_PLUGIN" control="$ctl" "$@" \
        >"$tmp/nbdkit.log" 2>&1 </dev/null &
    nbdkit_pid=$!
    for i in $(seq 200); do
        [ -S "$tmp/nbd.sock" ] && [ -S "$ctl" ] && return 0
        kill -0 "$nbdkit_pid" 2>/dev/null || fail "nbdkit exited at start"
        sleep 0.05
    done
    fail "nbdkit did not listen within 10 s"
}

# gs_stats - ghostswapctl --json stats into $tmp/stats.json; gs_stat KEY
# - one figure of it (of the "stats" object).
gs_stats () {
    "$GHOSTSWAPCTL" --socket "$ctl" --json stats >"$tmp/stats.json" ||
        fail "ghostswapctl stats: exit status $?"
}
gs_stat () {
    sed -n 's/.*"stats":{\([^}]*\)}.*/\1/p' "$tmp/stats.json" |
        tr ',' '\n' | sed -n "s/^\"$1\":\\([0-9.]*\\)\$/\\1/p"
}
gs_summary () {
    echo "writes $(gs_stat writes) trims $(gs_stat trims) slots_ram $(gs_stat slots_ram) slots_same $(gs_stat slots_same) slots_backing $(gs_stat slots_backing) pool_bytes $(gs_stat pool_bytes)"
}

# ---- Host: the guest ----

# start_guest MEM GUEST_SCRIPT [QEMU ARGS...] - boot the guest with MEM
# MiB of RAM, one CPU, TCG, GUEST_SCRIPT as its /test.sh.  Its console
# goes to $tmp/console.log.
start_guest () {
    local mem=$1 script=$2
    shift 2
    mkdir -p "$tmp/extra"
    cp "$script" "$tmp/extra/test.sh"
    (cd "$tmp/extra" && find . | busybox cpio -o -H newc 2>/dev/null) |
        gzip -1 >"$tmp/extra.gz"
    cat "$VM_GUEST_DIR/initramfs.gz" "$tmp/extra.gz" >"$tmp/initramfs.gz"
    mkfifo "$tmp/s1.in" "$tmp/s1.out"
    : >"$tmp/console.log"
    seed=${VM_SEED:-$(( $(date +%s) % 100000 ))}
    say "guest: $mem MiB, seed $seed (replay: VM_SEED=$seed)"
    logs+=("$tmp/console.log")
    qemu-system-x86_64 -accel tcg -m "$mem" -smp 1 -no-reboot \
        -display none -nodefaults \
        -monitor "unix:$tmp/monitor.sock,server=on,wait=off" \
        -kernel "$VM_GUEST_DIR/vmlinuz" -initrd "$tmp/initramfs.gz" \
        -append "console=ttyS0 panic=-1 loglevel=4 gs.seed=$seed ${VM_APPEND:-}" \
        -serial "file:$tmp/console.log" -serial "pipe:$tmp/s1" \
        "$@" >"$tmp/qemu.log" 2>&1 </dev/null &
    qemu_pid=$!
    logs+=("$tmp/qemu.log")
    # Keep the answer pipe open for writing, so that qemu never sees EOF.
    exec 8<>"$tmp/s1.in"
}

# guest_sysrq KEYS - press Alt-SysRq-KEY on the guest's keyboard, for
# each KEY (through qemu's monitor: works when the guest's own processes
# cannot run any more).  t: every task's stack, w: blocked tasks, m:
# memory.
guest_sysrq () {
    local k
    for k in $1; do
        echo "sendkey alt-sysrq-$k" | socat - "UNIX-CONNECT:$tmp/monitor.sock" >/dev/null 2>&1
        sleep 2
    done
}

# wait_console PATTERN SECONDS - until a console line matches the ERE
# PATTERN; fails if the guest ends or reports GS-FAIL first.
wait_console () {
    local pat=$1 secs=$2 i
    for i in $(seq $((secs * 5))); do
        tr -d '\r' <"$tmp/console.log" | grep -qE "$pat" && return 0
        grep -q '^GS-FAIL' "$tmp/console.log" &&
            fail "the guest reports: $(grep -m1 '^GS-FAIL' "$tmp/console.log")"
        kill -0 "$qemu_pid" 2>/dev/null ||
            fail "qemu exited before the guest printed /$pat/"
        sleep 0.2
    done
    # The guest's state for the log: memory, blocked tasks (sysrq).
    guest_sysrq "9 m w"
    sleep 2
    grep -q '^GS-STALL' "$tmp/console.log" &&
        fail "no /$pat/ within $secs s; the guest saw a stall: $(grep -m1 '^GS-STALL' "$tmp/console.log")"
    fail "the guest did not print /$pat/ within $secs s"
}

# wait_sync NAME SECONDS - until the guest is at gs_sync NAME.  answer
# [TEXT] - release it (TEXT is its $gs_answer).
wait_sync () { wait_console "^GS-SYNC $1\$" "$2"; }
answer () { echo "${1:-go}" >&8; }

# guest_value KEY - the workload's last "KEY VALUE" line on the console.
guest_value () {
    sed -n "s/^GS-WL $1 //p" "$tmp/console.log" | tail -n 1 | tr -d '\r'
}

# finish_guest SECONDS - wait for GS-EXIT and qemu's exit; fail unless
# the guest's status is 0.
finish_guest () {
    local st i
    wait_console '^GS-EXIT [0-9]+' "$1"
    st=$(tr -d '\r' <"$tmp/console.log" | sed -n 's/^GS-EXIT \([0-9]*\)$/\1/p' | tail -n 1)
    for i in $(seq 100); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
    stop_qemu
    [ "$st" = 0 ] || fail "the guest's test failed (GS-EXIT $st): $(grep '^GS-FAIL' "$tmp/console.log" | tr '\n' ' ')"
}
