#!/bin/bash
# bench-backing.sh - ghostswap's backing tier against the disk's limit and
# the kernel's swapoff: drain, migrate, O(1) relocation, metadata.
#
# Not a test: run it by hand, as root, on an otherwise idle machine:
#
#     bench/bench-backing.sh [BUILD_DIR]      (default: build in this checkout)
#
# It needs BUILD_DIR/bench/bench-drain (bench/bench-drain.c linked with
# libghostswap; BENCH_DRAIN=PATH overrides), fio, and for the kernel anchor
# root and mkswap/swapon/swapoff (bench-swapoff.sh uses
# BUILD_DIR/tests/swap/swap-workload, or compiles it itself).  All files go under DIR (a disk, never tmpfs); all of
# them, the swap file and the cgroup are removed at the end, also on error
# or Ctrl-C.
#
# One run measures:
#   1. the disk's limit: fio sequential read of the filled backing file
#      (--direct=1 --rw=read --bs=1M --iodepth=8 --ioengine=io_uring), run
#      by bench-drain's hooks just before and just after each drain and
#      migration; the best of all of them is "the limit" (each round also
#      shows its own figure against the mean of its two fio reads).  For
#      reference: fio sequential write of a scratch file of the same size,
#      and fio reading the file with the drain's own I/O pattern (batches
#      of 8 reads of 512 KiB submitted together, each batch waited for
#      whole before the next: --iodepth_batch_submit=8
#      --iodepth_batch_complete_min=8), which is what the drain would reach
#      if handling the pages took no time.
#   2. drain into RAM (bench-drain drain): DATA of page data written to
#      random ghost slots of a DEVICE_SIZE device with ram-limit RAM_LIMIT
#      and one backing file sized to the data, all of it written back, then
#      ram-limit raised to hold everything and gs_drain_start(A, NULL) +
#      gs_drain_wait timed: MB/s = pages moved * 4096 / s, and % of the
#      limit (target >= 70 %).  Every page is then read back and compared.
#   3. migrate to a second file on the same disk (bench-drain migrate): the
#      same fill, then gs_backing_add(B) + gs_drain_start(A, B, migrate)
#      timed (target >= 35 % of the limit).
#   4. the kernel anchor (bench-swapoff.sh): swapoff of DATA swapped out
#      from a plain swap file; drain and migrate should both be >= 5x it.
#   5. O(1) relocation (bench-drain relocate) at each size in RELOC_SIZES
#      (dense layout: every ghost cluster full): RELOCATIONS calls of
#      gs_relocate_slot on random live physical slots, into a second
#      backing (RAM at its smallest limit) and then into RAM; mean time per
#      relocation at each size and largest/smallest (target <= 1.5).  Each
#      run's hook also measures fio 4 KiB random reads at queue depth 1 on
#      the backing file: the disk latency a relocation cannot go below.
#      A size that does not fit in DIR (with 4 GiB to spare) is replaced by
#      the largest whole GiB that does, and the output says so.
#   6. metadata per backing-resident slot: gs_get_stats'
#      metadata_per_backing_slot after the relocate runs' fill (backing
#      sized to the data and full, so the reverse map has no free entries;
#      target <= 16 B), cross-checked with the process's RSS growth, less
#      the RAM pool's segments, per page on backing.  The drain run's
#      figure (sparse clusters) is shown too.
#
# Environment (defaults in brackets):
#   DIR [/var/tmp]            where every file goes
#   DATA [2G]                 page data for drain, migrate and swapoff
#   DEVICE_SIZE [64G]         ghost device for drain and migrate
#   RAM_LIMIT [64M]           ram-limit during the fills
#   RELOC_SIZES ["1G 32G"]    live data sizes for the relocation runs
#   RELOCATIONS [20000]       relocations per target and size
#   SWAP_LIMIT [512M]         the swapoff workload's cgroup limit
#   CORPUS [<repo>/../shared/data/memory-corpus.bin]  page data (cycled,
#                             same-filled pages skipped)
#   FIO60 [unset]             set: fio-like 60 %-compressible pages instead
#   THREADS [2]               writer threads during the fills
#   REPEAT [1]                rounds of drain and of migrate (each with its
#                             own fill and fio reads); the summary takes the
#                             best of each, and the best fio read as the
#                             limit (other load only ever slows a run down)
#   STEPS ["drain migrate swapoff relocate"]  the parts to run
#   KEEP [unset]              keep the work directory (logs, fio JSON)
#
# Exit status: 0 when it ran to the end (targets met or not: it only
# reports them), 1 on an error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

build=${1:-$repo/build}
DIR=${DIR:-/var/tmp}
DATA=${DATA:-2G}
DEVICE_SIZE=${DEVICE_SIZE:-64G}
RAM_LIMIT=${RAM_LIMIT:-64M}
RELOC_SIZES=${RELOC_SIZES:-1G 32G}
RELOCATIONS=${RELOCATIONS:-20000}
SWAP_LIMIT=${SWAP_LIMIT:-512M}
CORPUS=${CORPUS:-$repo/../shared/data/memory-corpus.bin}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-1}
STEPS=${STEPS:-drain migrate swapoff relocate}

PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

die () { echo "bench-backing: $*" >&2; exit 1; }
say () { echo "bench-backing: $*"; }
step () { [[ " $STEPS " == *" $1 "* ]]; }

bench_drain=${BENCH_DRAIN:-}
if [[ -z $bench_drain ]]; then
  for f in "$build/bench/bench-drain" "$build/bench-drain"; do
    [[ -x $f ]] && { bench_drain=$f; break; }
  done
fi
[[ -n $bench_drain && -x $bench_drain ]] || die "bench-drain not found in $build/bench (build it, or give BENCH_DRAIN=PATH)"
command -v fio >/dev/null || die "fio not found"
if [[ -n ${FIO60-} ]]; then
  data_args=(--fio60)
  data_desc="fio-like pages, 60 % compressible"
else
  [[ -f $CORPUS ]] || die "no corpus at $CORPUS (give CORPUS=PATH, or FIO60=1)"
  data_args=(--corpus "$CORPUS")
  data_desc="memory corpus pages, cycled, same-filled ones skipped"
fi
[[ -d $DIR ]] || die "$DIR is not a directory"
fstype=$(findmnt -no FSTYPE --target "$DIR" 2>/dev/null || stat -f -c %T "$DIR")
[[ $fstype != tmpfs && $fstype != ramfs ]] || die "$DIR is on $fstype: give DIR on a disk"
if step swapoff; then
  ((EUID == 0)) || die "the swapoff step needs root (or leave it out of STEPS)"
  [[ -z $(tail -n +2 /proc/swaps) ]] || die "swap is active (see /proc/swaps): the swapoff step needs none"
fi

work=$(mktemp -d "$DIR/bench-backing.XXXXXX")
pids=()
cleanup () {
  local p
  set +e
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  # bench-drain removes its own files; these are left only if it was killed.
  rm -f "$work"/bench-drain-*.img "$work/scratch"
  if [[ -n ${KEEP-} ]]; then
    echo "bench-backing: kept $work (logs, fio JSON)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

to_bytes () {
  "$PY" - "$1" <<'EOF'
import sys
s = sys.argv[1].strip()
m = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
u = s[-1].upper() if s[-1].isalpha() else ""
print(int(s[:-1] if u else s) * m[u])
EOF
}
calc () { "$PY" -c "print($1)"; }
# get FILE KEY: the value of "KEY VALUE" in a bench-drain or swapoff output.
get () { awk -v k="$2" '$1 == k { v = $2 } END { if (v == "") exit 1; print v }' "$1"; }
# fio_mbps FILE.json read|write
fio_mbps () {
  "$PY" -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]
print(round(j["bw_bytes"] / 1e6, 1))' "$1" "$2"
}
fio_lat_us () {
  "$PY" -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]["read"]
print(round(j["clat_ns"]["mean"] / 1e3, 1), round(j["iops"]))' "$1"
}
verdict () { if [[ $(calc "1 if $1 else 0") == 1 ]]; then echo met; else echo MISSED; fi; }
avail_bytes () { echo $(($(stat -f -c '%a * %S' "$DIR"))); }
# run NAME ARGS...: bench-drain with its "key value" output in
# $work/NAME.out; its progress lines go to $work/NAME.err and the terminal.
run () {
  local name=$1
  shift
  "$bench_drain" "$@" > "$work/$name.out" 2> >(tee "$work/$name.err" >&2) &
  pids+=($!)
  wait "${pids[-1]}" || { cat "$work/$name.out"; die "bench-drain $name failed"; }
  unset 'pids[-1]'
}

data_bytes=$(to_bytes "$DATA")
disk=$(findmnt -no SOURCE --target "$DIR")
disk_dev=$(basename "$(readlink -f "$disk")")
parent=$(lsblk -no PKNAME "/dev/$disk_dev" 2>/dev/null | head -n1)
[[ -n $parent ]] || parent=$disk_dev
model=$(cat "/sys/block/$parent/device/model" 2>/dev/null || true)
vendor=$(cat "/sys/block/$parent/device/vendor" 2>/dev/null || true)
[[ $vendor == 0x1af4 ]] && vendor="virtio ($vendor)"

say "$(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 2^20 }' /proc/meminfo), kernel $(uname -r), $(fio --version)"
say "disk: $disk ($parent${model:+, $model}${vendor:+, $vendor}, scheduler $(grep -o '\[[^]]*\]' "/sys/block/$parent/queue/scheduler" 2>/dev/null | tr -d '[]')), $fstype, $(($(avail_bytes) >> 30)) GiB free in $DIR"
say "bench-drain: $bench_drain"
say "data: $DATA of $data_desc; device $DEVICE_SIZE, ram-limit $RAM_LIMIT during fills, $THREADS writers"
say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo

fio_read () {
  echo "fio --name=seqread --filename=\"\$GS_BACKING\" --direct=1 --rw=read --bs=1M --iodepth=8 --ioengine=io_uring --size=\"\$GS_BACKING_BYTES\" --output-format=json --output=$work/$1.json"
}
# The drain's own read pattern without any page handling: batches of 8
# reads of 512 KiB submitted together, each batch waited for whole.
fio_pattern () {
  echo "fio --name=drainpattern --filename=\"\$GS_BACKING\" --direct=1 --rw=read --bs=512k --iodepth=8 --iodepth_batch_submit=8 --iodepth_batch_complete_min=8 --ioengine=io_uring --size=\"\$GS_BACKING_BYTES\" --output-format=json --output=$work/$1.json"
}
fio_reads=() patterns=()
best () { calc "max(${*/%/,} 0)"; }

# drain_round MODE ROUND: one bench-drain drain or migrate, with fio
# sequential reads of the filled file just before and just after it.
drain_round () {
  local mode=$1 r=$2 name=$1-$2 o before after mbps pattern
  run "$name" "$mode" --dir "$work" --data "$DATA" --device-size "$DEVICE_SIZE" \
    --ram-limit "$RAM_LIMIT" --threads "$THREADS" "${data_args[@]}" \
    --hook "$(fio_pattern "fio-$name-pattern") && $(fio_read "fio-$name-before")" \
    --after-hook "$(fio_read "fio-$name-after")"
  o=$work/$name.out
  before=$(fio_mbps "$work/fio-$name-before.json" read)
  after=$(fio_mbps "$work/fio-$name-after.json" read)
  pattern=$(fio_mbps "$work/fio-$name-pattern.json" read)
  fio_reads+=("$before" "$after")
  patterns+=("$pattern")
  mbps=$(get "$o" "${mode}_MBps")
  printf '   round %s: fill %s MB/s (%s s, then %s s writing back the rest)\n' \
    "$r" "$(get "$o" fill_MBps)" "$(get "$o" fill_seconds)" "$(get "$o" writeback_rest_seconds)"
  printf '   round %s: %s: %s pages in %s s = %s MB/s (engine: %s MB/s), %s skipped; %s pages read back OK\n' \
    "$r" "$mode" "$(get "$o" "${mode}_done")" "$(get "$o" "${mode}_seconds")" "$mbps" \
    "$(get "$o" "${mode}_engine_MBps")" "$(get "$o" "${mode}_skipped")" "$(get "$o" verified_pages)"
  printf '   round %s: fio seq read of the file just before %s MB/s, just after %s MB/s: %s is %s %% of their mean\n' \
    "$r" "$before" "$after" "$mode" "$(calc "round(100 * $mbps / (($before + $after) / 2), 1)")"
  printf '   round %s: fio with the drain'"'"'s read pattern (8 x 512 KiB per batch, each batch waited for): %s MB/s\n' "$r" "$pattern"
  ROUND_MBPS=$mbps
}

drains=() migrates=()
if step drain; then
  echo "== drain into RAM"
  for ((r = 1; r <= REPEAT; r++)); do
    drain_round drain "$r"
    drains+=("$ROUND_MBPS")
  done
  o=$work/drain-1.out
  printf '   metadata (scattered over %s: %s clusters for %s pages): %s B per backing slot (engine), RSS cross-check %s B\n' \
    "$DEVICE_SIZE" "$(get "$o" fill_clusters)" "$(get "$o" fill_slots_backing)" \
    "$(get "$o" fill_metadata_per_backing_slot)" "$(get "$o" rss_per_backing_slot)"
  drain_mbps=$(best "${drains[@]}")
  echo
fi

if step migrate; then
  echo "== migrate to a second file on the same disk"
  for ((r = 1; r <= REPEAT; r++)); do
    drain_round migrate "$r"
    migrates+=("$ROUND_MBPS")
    printf '   round %s: adding the target took %s s (counted in the time above)\n' \
      "$r" "$(get "$work/migrate-$r.out" backing_add_seconds)"
  done
  migrate_mbps=$(best "${migrates[@]}")
  # For reference: what the disk writes sequentially (migrate reads and
  # writes the same disk).
  fio --name=seqwrite --filename="$work/scratch" --direct=1 --rw=write --bs=1M \
    --iodepth=8 --ioengine=io_uring --size="$data_bytes" --output-format=json \
    --output="$work/fio-write.json" >/dev/null
  rm -f "$work/scratch"
  fio_write=$(fio_mbps "$work/fio-write.json" write)
  printf '   fio seq write of a %s scratch file (reference): %s MB/s\n' "$DATA" "$fio_write"
  echo
fi

if step swapoff; then
  echo "== kernel swapoff of $DATA from a swap file (the anchor)"
  workload=
  [[ -x $build/tests/swap/swap-workload ]] && workload=$build/tests/swap/swap-workload
  DIR=$work LIMIT=$SWAP_LIMIT SWAP_WORKLOAD=$workload "$here/bench-swapoff.sh" "$DATA" > "$work/swapoff.out" &
  pids+=($!)
  wait "${pids[-1]}" || die "bench-swapoff.sh failed"
  unset 'pids[-1]'
  swapoff_mbps=$(get "$work/swapoff.out" swapoff_MBps)
  printf '   %s MiB swapped out; swapoff took %s s = %s MB/s\n' \
    "$(($(get "$work/swapoff.out" swap_used_bytes) >> 20))" \
    "$(get "$work/swapoff.out" swapoff_seconds)" "$swapoff_mbps"
  echo
fi

declare -A RB RR RBP RRP RBC RRC RMETA RRSS RLAT
reloc_done=()
if step relocate; then
  for sz in $RELOC_SIZES; do
    want=$(to_bytes "$sz")
    room=$(($(avail_bytes) - (4 << 30) - RELOCATIONS * 4096 * 2))
    if ((want > room)); then
      got=$(((room >> 30) << 30))
      ((got >= 1 << 30)) || die "no room in $DIR for a relocation run"
      say "NOTE: $sz of live data does not fit in $DIR ($(($(avail_bytes) >> 30)) GiB free, 4 GiB kept spare): using $((got >> 30))G"
      sz=$((got >> 30))G
    fi
    echo "== O(1) relocation with $sz of live data on the backing"
    run "relocate-$sz" relocate --dir "$work" --data "$sz" --ram-limit "$RAM_LIMIT" \
      --threads "$THREADS" --relocations "$RELOCATIONS" "${data_args[@]}" \
      --hook "fio --name=randread --filename=\"\$GS_BACKING\" --direct=1 --rw=randread --bs=4k --iodepth=1 --ioengine=psync --time_based --runtime=10 --output-format=json --output=$work/fio-randread-$sz.json"
    o=$work/relocate-$sz.out
    RB[$sz]=$(get "$o" reloc_backing_mean_us)
    RR[$sz]=$(get "$o" reloc_ram_mean_us)
    RBP[$sz]=$(get "$o" reloc_backing_p50_us)
    RRP[$sz]=$(get "$o" reloc_ram_p50_us)
    RBC[$sz]=$(get "$o" reloc_backing_cpu_us)
    RRC[$sz]=$(get "$o" reloc_ram_cpu_us)
    RMETA[$sz]=$(get "$o" fill_metadata_per_backing_slot)
    RRSS[$sz]=$(get "$o" rss_per_backing_slot)
    RLAT[$sz]=$(fio_lat_us "$work/fio-randread-$sz.json")
    reloc_done+=("$sz")
    printf '   fill %s MB/s (%s s); fio 4 KiB random read, QD1: %s us mean (%s IOPS)\n' \
      "$(get "$o" fill_MBps)" "$(get "$o" fill_seconds)" "${RLAT[$sz]% *}" "${RLAT[$sz]#* }"
    printf '   into a 2nd backing: %s us mean, %s us p50, %s us p99, %s us CPU (%s relocations; %s more went to RAM and are not counted; %s free slots hit)\n' \
      "${RB[$sz]}" "${RBP[$sz]}" "$(get "$o" reloc_backing_p99_us)" "${RBC[$sz]}" \
      "$(get "$o" reloc_backing_count)" "$(get "$o" reloc_backing_other_target)" "$(get "$o" reloc_backing_enoent)"
    printf '   into RAM:           %s us mean, %s us p50, %s us p99, %s us CPU (%s relocations)\n' \
      "${RR[$sz]}" "${RRP[$sz]}" "$(get "$o" reloc_ram_p99_us)" "${RRC[$sz]}" "$(get "$o" reloc_ram_count)"
    printf '   metadata: %s B per backing slot (engine: %s clusters, rmap %s B for %s pages), RSS cross-check %s B\n' \
      "${RMETA[$sz]}" "$(get "$o" fill_clusters)" "$(get "$o" fill_rmap_bytes)" \
      "$(get "$o" fill_slots_backing)" "${RRSS[$sz]}"
    echo
  done
fi

# Summary.
echo "== summary (MB/s = 10^6 bytes/s)"
limit=
if ((${#fio_reads[@]} > 0)); then
  limit=$(best "${fio_reads[@]}")
  echo "  disk limit (best fio seq read of the backing): $limit MB/s (runs: ${fio_reads[*]})"
  [[ -n ${fio_write-} ]] && echo "  fio seq write:                                 $fio_write MB/s"
  echo "  fio, the drain's read pattern (best):          $(best "${patterns[@]}") MB/s (runs: ${patterns[*]})"
fi
((${#drains[@]} > 0)) && echo "  drain into RAM (best of ${drains[*]}):  $drain_mbps MB/s"
((${#migrates[@]} > 0)) && echo "  migrate (best of ${migrates[*]}):        $migrate_mbps MB/s"
[[ -n ${swapoff_mbps-} ]] && echo "  kernel swapoff:                                $swapoff_mbps MB/s"
echo
echo "targets:"
if [[ -n ${drain_mbps-} && -n $limit ]]; then
  echo "  drain into RAM >= 70 % of seq read:   $(verdict "$drain_mbps >= 0.70 * $limit") ($drain_mbps MB/s = $(calc "round(100 * $drain_mbps / $limit, 1)") %)"
fi
if [[ -n ${migrate_mbps-} && -n $limit ]]; then
  echo "  migrate >= 35 % of seq read:          $(verdict "$migrate_mbps >= 0.35 * $limit") ($migrate_mbps MB/s = $(calc "round(100 * $migrate_mbps / $limit, 1)") %)"
fi
if [[ -n ${swapoff_mbps-} ]]; then
  [[ -n ${drain_mbps-} ]] && echo "  drain >= 5x kernel swapoff:           $(verdict "$drain_mbps >= 5 * $swapoff_mbps") ($(calc "round($drain_mbps / $swapoff_mbps, 1)")x)"
  [[ -n ${migrate_mbps-} ]] && echo "  migrate >= 5x kernel swapoff:         $(verdict "$migrate_mbps >= 5 * $swapoff_mbps") ($(calc "round($migrate_mbps / $swapoff_mbps, 1)")x)"
fi
if ((${#reloc_done[@]} >= 2)); then
  a=${reloc_done[0]} b=${reloc_done[-1]}
  ratio () { calc "round($2 / $1, 2)"; }
  echo "  relocation $b / $a <= 1.5, into backing: $(verdict "${RB[$b]} <= 1.5 * ${RB[$a]}") (mean ${RB[$a]} -> ${RB[$b]} us: $(ratio "${RB[$a]}" "${RB[$b]}"); p50 $(ratio "${RBP[$a]}" "${RBP[$b]}"); CPU ${RBC[$a]} -> ${RBC[$b]} us: $(ratio "${RBC[$a]}" "${RBC[$b]}"))"
  echo "  relocation $b / $a <= 1.5, into RAM:     $(verdict "${RR[$b]} <= 1.5 * ${RR[$a]}") (mean ${RR[$a]} -> ${RR[$b]} us: $(ratio "${RR[$a]}" "${RR[$b]}"); p50 $(ratio "${RRP[$a]}" "${RRP[$b]}"); CPU ${RRC[$a]} -> ${RRC[$b]} us: $(ratio "${RRC[$a]}" "${RRC[$b]}"))"
  echo "    the disk alone (fio 4 KiB read, QD1):  ${RLAT[$a]% *} -> ${RLAT[$b]% *} us"
fi
for sz in "${reloc_done[@]}"; do
  echo "  metadata per backing slot <= 16 B, $sz: $(verdict "${RMETA[$sz]} <= 16") (${RMETA[$sz]} B; RSS cross-check ${RRSS[$sz]} B)"
done
echo
say "done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
