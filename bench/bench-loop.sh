#!/bin/bash
# bench-loop.sh - which loop device settings help I/O through ghostswapd:
# the logical block size (losetup --sector-size 512, the default, or
# 4096) and the queue depth (/sys/block/loopN/queue/nr_requests), always
# with --direct-io=on (without it the page cache holds a second copy of
# every swapped page).
#
# Not a test: run it by hand as root on an otherwise idle machine:
#
#     bench/bench-loop.sh [BUILD_DIR]
#
# One ghostswapd (BUILD_DIR/server/ghostswapd, default build/) serves a
# DEVSIZE device whose first FILL bytes are written with 50 % compressible
# data through a loop device first, so that reads find pages stored in
# the RAM tier as swap-ins do.  Then, RUNS times, each configuration in
# turn (interleaved: a slow minute of the machine hits all of them): a
# loop device over the file with that configuration, and fio 4 KiB random
# reads at queue depth 1 (a swap-in: one synchronous fault) and 16 (swap
# readahead and several faulting threads), and random writes at depth 16
# (swap-out), each for SECS seconds over the FILL bytes, libaio with
# O_DIRECT on the loop device.
#
# Figures per configuration: the median over the runs of each job's IOPS
# and of its median completion latency (fio's clat p50, microseconds),
# and the IOPS ratio to the first configuration (the default).
#
# Environment (defaults in brackets):
#   RUNS [3]  SECS [8]  DEVSIZE [2G]  FILL [512M]
#   TRANSPORT [dev]      ghostswapd's --transport (uring needs enable_uring=Y)
#   CONFIGS ["512:128 4096:128 512:32 4096:32"]   SECTOR:NR_REQUESTS each
#             (nr_requests is at most the loop module's hw_queue_depth,
#             128 by default; a loop device keeps the value it was last
#             given across losetup -d, so each attach sets it)
#   GHOSTSWAPD           instead of BUILD_DIR's
set -euo pipefail

build=${1:-build}
GHOSTSWAPD=${GHOSTSWAPD:-$build/server/ghostswapd}
RUNS=${RUNS:-3} SECS=${SECS:-8} DEVSIZE=${DEVSIZE:-2G} FILL=${FILL:-512M}
TRANSPORT=${TRANSPORT:-dev}
CONFIGS=${CONFIGS:-"512:128 4096:128 512:32 4096:32"}

[[ $(id -u) == 0 ]] || { echo "bench-loop.sh: run as root" >&2; exit 1; }
[[ -x $GHOSTSWAPD ]] || { echo "bench-loop.sh: no $GHOSTSWAPD" >&2; exit 1; }
command -v fio >/dev/null || { echo "bench-loop.sh: no fio" >&2; exit 1; }

tmp=$(mktemp -d /tmp/bench-loop.XXXXXX)
mnt=$tmp/mnt
mkdir "$mnt"
pid='' loop=''
cleanup () {
    set +e
    [[ -n $loop ]] && losetup -d "$loop"
    if [[ -n $pid ]]; then
        kill -TERM "$pid"; wait "$pid"
    fi
    grep -q " $mnt " /proc/mounts && umount -l "$mnt"
    rm -rf "$tmp"
}
trap cleanup EXIT

"$GHOSTSWAPD" --control "$tmp/ctl.sock" --transport="$TRANSPORT" "$mnt" \
    size="$DEVSIZE" ram-limit="$DEVSIZE" 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do
    [[ -e $mnt/stats ]] && break
    sleep 0.1
done
served=$(awk '$1 == "fuse_transport" { print $2 }' "$mnt/stats")
echo "ghostswapd over $served (asked: $TRANSPORT); $(nproc) CPUs; $(uname -r)"

# attach SECTOR NR - a loop device over the file with these settings.
attach () {
    loop=$(losetup --direct-io=on --sector-size "$1" --find --show "$mnt/swap")
    [[ $(cat "/sys/block/${loop#/dev/}/loop/dio") == 1 ]] ||
        echo "warning: $loop without direct I/O" >&2
    echo "$2" >"/sys/block/${loop#/dev/}/queue/nr_requests" ||
        echo "warning: $loop: nr_requests $2 refused" >&2
}
detach () { losetup -d "$loop"; loop=; }

attach 4096 128
fio --name=fill --filename="$loop" --rw=write --bs=1M --size="$FILL" \
    --direct=1 --ioengine=libaio --iodepth=4 --buffer_compress_percentage=50 \
    --refill_buffers --output-format=terse >/dev/null
detach

# job NAME RW DEPTH - one fio run on $loop: "IOPS P50_US" (the median
# completion latency: what the path costs when a CPU is free; the mean
# and IOPS also count waiting for one).
job () {
    fio --name="$1" --filename="$loop" --rw="$2" --bs=4k --iodepth="$3" \
        --size="$FILL" --direct=1 --ioengine=libaio --time_based \
        --runtime="$SECS" --buffer_compress_percentage=50 --refill_buffers \
        --randrepeat=0 --output-format=json |
        python3 -c 'import json, sys
j = json.load(sys.stdin)["jobs"][0]
d = j["read"] if j["read"]["io_bytes"] else j["write"]
print("%.0f %.1f" % (d["iops"], d["clat_ns"]["percentile"]["50.000000"] / 1000))'
}

declare -A res
for ((run = 1; run <= RUNS; run++)); do
    for c in $CONFIGS; do
        attach "${c%%:*}" "${c##*:}"
        nr=$(cat "/sys/block/${loop#/dev/}/queue/nr_requests")
        res[$c,rr1]+="$(job rr1 randread 1) "
        res[$c,rr16]+="$(job rr16 randread 16) "
        res[$c,rw16]+="$(job rw16 randwrite 16) "
        res[$c,nr]=$nr
        detach
        echo "run $run: $c done (nr_requests $nr)" >&2
    done
done

# median of the IOPS (field 1) or p50 clat (field 2) of "a b a b ..." pairs.
median () {
    local f=$1; shift
    printf '%s %s\n' "$@" | awk -v f="$f" '{ print $f }' | sort -n |
        awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

first=${CONFIGS%% *}
printf '%-12s %6s | %8s %7s %6s | %8s %7s %6s | %8s %7s %6s\n' \
    sector:nr eff randread-QD1 clat ratio randread-QD16 clat ratio \
    randwrite-QD16 clat ratio
for c in $CONFIGS; do
    line=$(printf '%-12s %6s' "$c" "${res[$c,nr]}")
    for j in rr1 rr16 rw16; do
        # shellcheck disable=SC2086  # the pairs are words on purpose
        i=$(median 1 ${res[$c,$j]}) l=$(median 2 ${res[$c,$j]})
        # shellcheck disable=SC2086
        b=$(median 1 ${res[$first,$j]})
        line+=$(printf ' | %8s %7s %6.2f' "$i" "$l" "$(awk -v a="$i" -v b="$b" 'BEGIN { print a / b }')")
    done
    echo "$line"
done
echo "(IOPS: medians of $RUNS runs of ${SECS}s; clat: the median of the runs'"
echo " p50 completion latency, us; ratio: IOPS against $first, the default)"
for c in $CONFIGS; do
    echo "raw $c: rr1 ${res[$c,rr1]}| rr16 ${res[$c,rr16]}| rw16 ${res[$c,rw16]}"
done
