#!/bin/bash
# bench-vm-swap.sh - one guest workload, four ways for a qemu guest to
# swap: to a virtio disk on nbdkit ghostswap (qemu's NBD client), through
# the guest kernel's nbd-client to nbdkit --swap ghostswap (guestfwd to
# the plugin's socket through qemu's socket chardev, and through
# `-cmd:socat`), and to zram inside the guest (the in-guest anchor).
#
# Not a test: run it by hand as root, on a machine as idle as you can get:
#
#     bench/bench-vm-swap.sh [BUILD_DIR]
#
# BUILD_DIR (default: build) holds plugin/nbdkit-ghostswap-plugin.so and
# server/ghostswapctl; the guest (kernel and initramfs) is built or found
# in BUILD_DIR/tests/vm/guest by tests/vm/build-guest.sh.  The guests are
# TCG (no KVM), so absolute times mean little: compare the ratios.
#
# Each configuration boots the same guest (BENCH_GUEST_MIB, default 320
# MiB, one CPU, seed $VM_SEED, default 4242), which makes its swap device
# (mkswap, swapon -d), runs tests/swap/swap-workload --size BENCH_WL
# (default 320M: bigger than the guest's RAM, yet small enough for zram
# to hold its swapped part in the guest's RAM) --passes 2 (fill, then a
# forward and a random verifying pass), and reports the workload's own
# timers.  A configuration that has not finished after
# BENCH_LIMIT_SECONDS (default 600) is stopped and reported with the
# swap-in rate its guest-monitor saw.
#
# Output: one line per configuration, then the ratios to zram.

set -u
set -o pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
export GHOSTSWAP_PLUGIN=${GHOSTSWAP_PLUGIN:-$build/plugin/nbdkit-ghostswap-plugin.so}
export GHOSTSWAPCTL=${GHOSTSWAPCTL:-$build/server/ghostswapctl}
export VM_GUEST_DIR=${VM_GUEST_DIR:-$build/tests/vm/guest}
export VM_WORKLOAD_SRC=$root/tests/swap/swap-workload.c
export VM_SEED=${VM_SEED:-4242}
limit=${BENCH_LIMIT_SECONDS:-600}
mem=${BENCH_GUEST_MIB:-320}
wl=${BENCH_WL:-320M}

. "$root/tests/vm/lib.sh"
prog=bench-vm-swap
require_bin GHOSTSWAP_PLUGIN
require_bin GHOSTSWAPCTL
guest_build
make_tmp

# The guest halves: make the device swap, run the workload, report.
guest_common="
gs_workload $wl 2
grep -E '^pswp(in|out) ' /proc/vmstat | sed 's/^/GS-NOTE /'
swapoff \$dev || gs_fail \"swapoff \$dev\"
"
cat >"$tmp/guest-disk.sh" <<EOF
dev=/dev/vda
echo 0 >/sys/block/vda/queue/rotational
mkswap \$dev >/dev/null && swapon -d \$dev || gs_fail "swap on \$dev"
$guest_common
EOF
cat >"$tmp/guest-nbd.sh" <<EOF
dev=/dev/nbd0
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
nbd-client 10.0.2.100 10809 /dev/nbd0 -N ghostswap -block-size 4096 -swap || gs_fail nbd-client
mkswap \$dev >/dev/null && swapon -d \$dev || gs_fail "swap on \$dev"
guest-monitor 10 10809 &
$guest_common
nbd-client -d /dev/nbd0
EOF
cat >"$tmp/guest-zram.sh" <<EOF
dev=/dev/zram0
echo lzo-rle >/sys/block/zram0/comp_algorithm
echo 1G >/sys/block/zram0/disksize
mkswap \$dev >/dev/null && swapon -d \$dev || gs_fail "swap on \$dev"
guest-monitor 10 10809 &
$guest_common
echo "GS-NOTE zram mm_stat $(cat /sys/block/zram0/mm_stat)"
EOF

calc () { awk "BEGIN { print $1 }"; }

# run NAME GUEST_SCRIPT NBDKIT_OPTS [QEMU ARGS...] - one configuration;
# prints its line, keeps its figures in fill_NAME, verify_NAME.
results=()
run () {
    local name=$1 script=$2 nopts=$3 t0 i st fill v1 v2 rate
    shift 3
    rm -f "$tmp/nbd.sock" "$ctl" "$tmp/console.log" "$tmp/s1.in" "$tmp/s1.out"
    logs=()
    if [ "$nopts" != none ]; then
        # shellcheck disable=SC2086
        start_nbdkit $nopts -- size=2G ram-limit=512M
    fi
    start_guest "$mem" "$script" "$@"
    t0=$(date +%s)
    st=timeout
    for i in $(seq $((limit * 2))); do
        if tr -d '\r' <"$tmp/console.log" | grep -q '^GS-EXIT'; then
            st=$(tr -d '\r' <"$tmp/console.log" | sed -n 's/^GS-EXIT //p')
            break
        fi
        kill -0 "$qemu_pid" 2>/dev/null || { st=qemu-exited; break; }
        sleep 0.5
    done
    stop_qemu
    stop_pid "$nbdkit_pid" TERM 10
    nbdkit_pid=
    exec 8>&-
    fill=$(guest_value fill_seconds)
    v1=$(sed -n 's/^GS-WL verify_pass 1 forward //p' "$tmp/console.log" | tr -d '\r')
    v2=$(sed -n 's/^GS-WL verify_pass 2 random //p' "$tmp/console.log" | tr -d '\r')
    # The guest-monitor's swap-in rate over its last minute.
    rate=$(tr -d '\r' <"$tmp/console.log" | grep '^GS-MON t=' | grep -v ' tcp ' | tail -n 6 |
           grep -o 'pswpin+[0-9]*' | awk -F+ '{ s += $2 } END { if (NR) printf "%d", s / (NR * 10) }')
    if [ "$st" = 0 ]; then
        printf '%-22s fill %7.1f s  verify forward %7.1f s  random %7.1f s  total %7.1f s\n' \
            "$name" "$fill" "$v1" "$v2" "$(calc "$fill + $v1 + $v2")"
        results+=("$name $fill $v1 $v2")
    else
        printf '%-22s did not finish (%s) in %d s; fill %s s, forward pass %s s; last minute: %s pages/s swapped in\n' \
            "$name" "$st" "$(( $(date +%s) - t0 ))" "${fill:-?}" "${v1:-?}" "${rate:-?}"
    fi
    cp "$tmp/console.log" "$tmp/console-$name.log"
}

say "guest $mem MiB, workload $wl, 2 passes, seed $VM_SEED; host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
run zram "$tmp/guest-zram.sh" none
run nbd-disk "$tmp/guest-disk.sh" "" \
    -drive "file=nbd+unix:///?socket=$tmp/nbd.sock,format=raw,if=virtio,discard=unmap,cache=none"
run nbd-client-chardev "$tmp/guest-nbd.sh" --swap \
    -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:10809-unix:$tmp/nbd.sock" \
    -device virtio-net-pci,netdev=n0
run nbd-client-socat "$tmp/guest-nbd.sh" --swap \
    -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:10809-cmd:socat - UNIX-CONNECT:$tmp/nbd.sock" \
    -device virtio-net-pci,netdev=n0
say "host load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# Ratios to zram (time / zram's time).
z=
for r in "${results[@]}"; do
    set -- $r
    [ "$1" = zram ] && z="$2 $3 $4"
done
if [ -n "$z" ]; then
    set -- $z
    zf=$1 zv1=$2 zv2=$3
    echo "ratios to zram (time / zram's time):"
    for r in "${results[@]}"; do
        set -- $r
        printf '  %-22s fill %5.1fx  forward %5.1fx  random %5.1fx  total %5.1fx\n' "$1" \
            "$(calc "$2 / $zf")" "$(calc "$3 / $zv1")" "$(calc "$4 / $zv2")" \
            "$(calc "($2 + $3 + $4) / ($zf + $zv1 + $zv2)")"
    done
fi
