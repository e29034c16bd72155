#!/bin/bash
# bench-ram.sh - ghostswap's RAM tier against nbdkit's memory plugin.
#
# Not a test: run it by hand, on an otherwise idle machine, from anywhere:
#
#     bench/bench-ram.sh [PATH/TO/nbdkit-ghostswap-plugin.so]
#
# (default: build/plugin/nbdkit-ghostswap-plugin.so in this checkout).
#
# For each store -- `nbdkit ghostswap`, `nbdkit memory allocator=zstd`,
# `nbdkit memory allocator=sparse` -- it starts a fresh nbdkit on a Unix
# socket with a 1 GiB device and runs fio's nbd engine over it:
#
#   write phase  4 KiB random writes, queue depth 16, 60 % compressible data
#                (buffer_compress_percentage=60, which turns refill_buffers
#                on: every write carries fresh data), size based: one pass
#                over the device (WRITE_PASSES) in which fio's random map
#                writes every block exactly once, so every store ends up
#                holding the same 1 GiB and the RAM figures compare.
#   RAM          VmRSS of the nbdkit process after the write phase minus
#                VmRSS before it: what the stored 1 GiB costs.
#   read phase   4 KiB random reads, queue depth 16, time based, RUNTIME s.
#
# Then, in another fresh nbdkit per store, it copies the real-memory corpus
# (../shared/data/memory-corpus.bin) in with nbdcopy, reads it back and
# compares, and reports compression ratio = corpus bytes / RSS growth.
#
# For ghostswap it also reads the engine's own accounting: the plugin logs
# its statistics (gs_stats_format's "key value" lines) at debug level when
# nbdkit shuts down, so nbdkit runs with -v (and -D
# nbdkit.backend.datapath=0 so the per-request lines stay out) and the
# script takes metadata_bytes / slots_ram from that block.
#
# Environment (defaults in brackets):
#   RUNTIME [20]       seconds of the (time based) read phase
#   WRITE_PASSES [1]   passes of the (size based) write phase
#   REPEAT [1]         rounds of write/read over all stores, interleaved;
#                      the summary takes each store's best IOPS (other load
#                      on the machine only ever slows a run down)
#   SIZE [1G]          device size
#   IODEPTH [16]       fio iodepth
#   COMPRESS [60]      fio buffer_compress_percentage
#   GS_ARGS [ram-limit=2G]  extra KEY=VALUE for nbdkit ghostswap
#   STORES ["ghostswap zstd sparse"]  any of: ghostswap zstd sparse null
#                      ghostswap-rc (ghostswap with recompress-level=
#                      RECOMPRESS_LEVEL [19] at the default recompress-cpu:
#                      IOPS with recompression running in the background;
#                      its corpus ratio is bench-memory.sh's RECOMPRESS=)
#   CORPUS [<repo>/../shared/data/memory-corpus.bin]  (skipped if absent)
#   CORPUS_COPIES [4]  after the first copy (ratio "1 copy"), write more
#                      copies side by side (ratio "N copies": the same
#                      pages, with fixed per-process costs weighing less)
#   KEEP [unset]       keep the temporary directory (logs, fio JSON)
#
# Exit status: 0 when it ran to the end (targets missed or not: it only
# reports them), 1 on an error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

plugin=${1:-$repo/build/plugin/nbdkit-ghostswap-plugin.so}
RUNTIME=${RUNTIME:-20}
WRITE_PASSES=${WRITE_PASSES:-1}
REPEAT=${REPEAT:-1}
REPEAT_TAG=
((REPEAT > 1)) && REPEAT_TAG=1
SIZE=${SIZE:-1G}
IODEPTH=${IODEPTH:-16}
COMPRESS=${COMPRESS:-60}
GS_ARGS=${GS_ARGS:-ram-limit=2G}
STORES=${STORES:-ghostswap zstd sparse}
CORPUS=${CORPUS:-$repo/../shared/data/memory-corpus.bin}
CORPUS_COPIES=${CORPUS_COPIES:-4}

# libnbd's nbdsh and our parsing want Debian's python3, not whatever a
# user's PATH puts first.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

die () { echo "bench-ram: $*" >&2; exit 1; }

for prog in nbdkit fio nbdcopy; do
  command -v "$prog" >/dev/null || die "$prog not found (run scripts/install-deps.sh)"
done
if [[ " $STORES " == *" ghostswap "* || " $STORES " == *" ghostswap-rc "* ]]; then
  [[ -f $plugin ]] || die "plugin $plugin not found (build it: meson setup build && ninja -C build)"
  plugin=$(cd "$(dirname "$plugin")" && pwd)/$(basename "$plugin")
fi

tmp=$(mktemp -d /tmp/bench-ram.XXXXXX)
pids=()
cleanup () {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [[ -n ${KEEP-} ]]; then
    echo "bench-ram: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_store NAME TAG: start nbdkit for store NAME on $tmp/TAG.sock,
# stderr to $tmp/TAG.log; sets $pid and $uri.
start_store () {
  local name=$1 tag=$2 sock=$tmp/$2.sock
  local -a args
  case $name in
    ghostswap) args=(-v -D nbdkit.backend.datapath=0 "$plugin" size="$SIZE" $GS_ARGS) ;;
    ghostswap-rc) args=(-v -D nbdkit.backend.datapath=0 "$plugin" size="$SIZE" $GS_ARGS
                        recompress-level="${RECOMPRESS_LEVEL:-19}") ;;
    zstd)      args=(memory size="$SIZE" allocator=zstd) ;;
    sparse)    args=(memory size="$SIZE" allocator=sparse) ;;
    null)      args=(null size="$SIZE") ;;
    *) die "unknown store $name" ;;
  esac
  rm -f "$sock"
  nbdkit -f -U "$sock" "${args[@]}" 2>"$tmp/$tag.log" &
  pid=$!
  pids+=("$pid")
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S $sock ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/$tag.log" >&2; die "nbdkit $name did not start"; }
    sleep 0.1
  done
  [[ -S $sock ]] || die "nbdkit $name: no socket after 10 s"
  uri="nbd+unix:///?socket=$sock"
}

stop_store () {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# status_kib PID FIELD: a field of /proc/PID/status in KiB.
status_kib () { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# stat_from LOG OFFSET KEY: the last "KEY NUMBER" the plugin logged in LOG
# after byte OFFSET, or nothing.
stat_from () {
  tail -c +"$(($2 + 1))" "$1" | grep -oE "(^|[^a-z_])$3[ =:]+[0-9.e+-]+\$" \
    | tail -n1 | grep -oE '[0-9.e+-]+$' || true
}

# fio_run URI RW OUT.json
#   randwrite: size based, WRITE_PASSES passes over the whole device, each
#              writing every block once (fio's random map), so that every
#              store ends up holding the same data volume;
#   randread:  time based, RUNTIME seconds.
fio_run () {
  local -a extra
  if [[ $2 == randwrite ]]; then
    extra=(--buffer_compress_percentage="$COMPRESS" --loops="$WRITE_PASSES")
  else
    extra=(--time_based --runtime="$RUNTIME")
  fi
  fio --name="$2" --ioengine=nbd --uri="$1" --rw="$2" --bs=4k \
      --iodepth="$IODEPTH" --size="$SIZE" \
      "${extra[@]}" --output-format=json --output="$3" >/dev/null
}

# fio_get FILE DIR FIELD (DIR is read or write; FIELD iops or total_ios)
fio_get () {
  "$PY" -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]
v = j[sys.argv[3]]
print(int(v) if sys.argv[3] != "iops" else round(v))' "$@"
}

calc () { "$PY" -c "print($1)"; }

size_bytes=$("$PY" - "$SIZE" <<'EOF'
import sys
s = sys.argv[1].strip()
m = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
u = s[-1].upper() if s[-1].isalpha() else ""
print(int(s[:-1] if u else s) * m[u])
EOF
)
blocks=$((size_bytes / 4096))

echo "bench-ram: $(nproc) cores, kernel $(uname -r), $(nbdkit --version), $(fio --version), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench-ram: device $SIZE, 4 KiB random I/O, iodepth $IODEPTH, ${COMPRESS}% compressible writes (${WRITE_PASSES} pass), ${RUNTIME} s of reads"
[[ " $STORES " == *" ghostswap "* ]] && echo "bench-ram: plugin $plugin ($GS_ARGS)"
echo

declare -A W R RAM HWM CR CRN WALL
gs_meta= gs_slots= gs_pool= gs_same= gs_cratio= gs_mratio=
gs_corpus_cratio= gs_corpus_mratio= gs_corpus_meta= gs_corpus_slots=
gs_corpus_pool= gs_corpus_mps= gs_mps=

for ((round = 1; round <= REPEAT; round++)); do
for s in $STORES; do
  tag=$s-$round
  echo "== $s: write / read${REPEAT_TAG:+ (round $round of $REPEAT)}"
  start_store "$s" "$tag"
  rss0=$(status_kib "$pid" VmRSS)
  off=$(stat -c %s "$tmp/$tag.log")
  fio_run "$uri" randwrite "$tmp/$tag-write.json"
  rss1=$(status_kib "$pid" VmRSS)
  hwm=$(status_kib "$pid" VmHWM)
  w=$(fio_get "$tmp/$tag-write.json" write iops)
  ios=$(fio_get "$tmp/$tag-write.json" write total_ios)
  ram=$(((rss1 - rss0) * 1024))
  ((ios >= blocks * WRITE_PASSES)) || echo "   WARNING: only $ios of $((blocks * WRITE_PASSES)) blocks written"
  fio_run "$uri" randread "$tmp/$tag-read.json"
  r=$(fio_get "$tmp/$tag-read.json" read iops)
  cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$pid/stat")
  stop_store
  # Best of the rounds for IOPS (other load only ever slows a run down);
  # RAM from the last round (it does not depend on timing).
  ((w > ${W[$s]:-0})) && W[$s]=$w
  ((r > ${R[$s]:-0})) && R[$s]=$r
  RAM[$s]=$ram
  HWM[$s]=$hwm
  if [[ $s == ghostswap ]]; then
    # Logged at shutdown; reads do not change what is stored, so these are
    # the figures of the device as the write phase left it.
    gs_meta=$(stat_from "$tmp/$tag.log" "$off" metadata_bytes)
    gs_slots=$(stat_from "$tmp/$tag.log" "$off" slots_ram)
    gs_same=$(stat_from "$tmp/$tag.log" "$off" slots_same)
    gs_pool=$(stat_from "$tmp/$tag.log" "$off" pool_bytes)
    gs_cratio=$(stat_from "$tmp/$tag.log" "$off" compression_ratio)
    gs_mratio=$(stat_from "$tmp/$tag.log" "$off" memory_ratio)
    gs_mps=$(stat_from "$tmp/$tag.log" "$off" metadata_per_ram_slot)
    [[ -n $gs_meta ]] || echo "   WARNING: no statistics in the plugin's debug log (run with KEEP=1 and look)"
  fi
  printf '   write %7d IOPS (%d writes), read %7d IOPS, RSS growth %s MiB (VmHWM %s MiB), load %s\n' \
    "$w" "$ios" "$r" "$(calc "round($ram / 2**20, 1)")" \
    "$(calc "round($hwm / 1024, 1)")" "$(cut -d' ' -f1 /proc/loadavg)"
  if [[ $s == ghostswap-rc ]]; then
    echo "   nbdkit CPU $cpu_s s; recompression: $(stat_from "$tmp/$tag.log" "$off" recompress_cpu_seconds) s CPU, $(stat_from "$tmp/$tag.log" "$off" recompressed_pages) pages smaller, $(stat_from "$tmp/$tag.log" "$off" recompress_kept_pages) kept, $(stat_from "$tmp/$tag.log" "$off" recompress_saved_bytes) bytes saved"
  fi
  if [[ $s == ghostswap && -n $gs_meta ]]; then
    echo "   engine: slots_ram $gs_slots, slots_same $gs_same, pool_bytes $gs_pool, metadata_bytes $gs_meta, compression_ratio $gs_cratio, memory_ratio $gs_mratio"
  fi
done
done

if [[ -f $CORPUS ]]; then
  corpus_bytes=$(stat -c %s "$CORPUS")
  ((CORPUS_COPIES * corpus_bytes <= size_bytes)) || die "CORPUS_COPIES=$CORPUS_COPIES copies do not fit in $SIZE"
  echo
  for s in $STORES; do
    [[ $s == null || $s == ghostswap-rc ]] && continue
    echo "== $s: memory corpus ($corpus_bytes bytes, then $CORPUS_COPIES copies side by side)"
    start_store "$s" "$s-corpus"
    sock=$tmp/$s-corpus.sock
    rss0=$(status_kib "$pid" VmRSS)
    off=$(stat -c %s "$tmp/$s-corpus.log")
    t0=$(date +%s.%N)
    nbdcopy "$CORPUS" "$uri"
    t1=$(date +%s.%N)
    rss1=$(status_kib "$pid" VmRSS)
    if ! cmp -n "$corpus_bytes" <(nbdcopy "$uri" - 2>/dev/null | head -c "$corpus_bytes") "$CORPUS"; then
      die "$s: the corpus read back differs"
    fi
    # More copies at the following offsets, through nbdkit's offset filter
    # over the nbd plugin (nbdcopy has no output offset): the same pages
    # again, so the ratio is the same but fixed costs weigh less.
    for ((c = 1; c < CORPUS_COPIES; c++)); do
      nbdcopy "$CORPUS" -- [ nbdkit --exit-with-parent --filter=offset nbd \
        socket="$sock" offset=$((c * corpus_bytes)) range="$corpus_bytes" ]
    done
    rssn=$(status_kib "$pid" VmRSS)
    if ((CORPUS_COPIES > 1)) && ! cmp "$CORPUS" <(nbdcopy -- [ nbdkit --exit-with-parent \
        --filter=offset nbd socket="$sock" offset=$(((CORPUS_COPIES - 1) * corpus_bytes)) \
        range="$corpus_bytes" ] - ); then
      die "$s: the last copy of the corpus read back differs"
    fi
    CR[$s]=$(calc "round($corpus_bytes / max(1, $(((rss1 - rss0) * 1024))), 2)")
    CRN[$s]=$(calc "round($CORPUS_COPIES * $corpus_bytes / max(1, $(((rssn - rss0) * 1024))), 2)")
    WALL[$s]=$(calc "round($corpus_bytes / 2**20 / ($t1 - $t0))")
    stop_store
    if [[ $s == ghostswap ]]; then
      gs_corpus_cratio=$(stat_from "$tmp/$s-corpus.log" "$off" compression_ratio)
      gs_corpus_mratio=$(stat_from "$tmp/$s-corpus.log" "$off" memory_ratio)
      gs_corpus_meta=$(stat_from "$tmp/$s-corpus.log" "$off" metadata_bytes)
      gs_corpus_slots=$(stat_from "$tmp/$s-corpus.log" "$off" slots_ram)
      gs_corpus_pool=$(stat_from "$tmp/$s-corpus.log" "$off" pool_bytes)
      gs_corpus_mps=$(stat_from "$tmp/$s-corpus.log" "$off" metadata_per_ram_slot)
    fi
    printf '   1 copy: RSS growth %s MiB, ratio %s (copy in at %s MiB/s); %d copies: RSS growth %s MiB, ratio %s; read back OK\n' \
      "$(calc "round($(((rss1 - rss0) * 1024)) / 2**20, 2)")" "${CR[$s]}" "${WALL[$s]}" \
      "$CORPUS_COPIES" "$(calc "round($(((rssn - rss0) * 1024)) / 2**20, 2)")" "${CRN[$s]}"
    if [[ $s == ghostswap && -n $gs_corpus_meta && ${gs_corpus_slots:-0} -gt 0 ]]; then
      echo "   engine ($CORPUS_COPIES copies): slots_ram $gs_corpus_slots, pool_bytes $gs_corpus_pool, metadata_bytes $gs_corpus_meta ($(calc "round($gs_corpus_meta / $gs_corpus_slots, 2)") B per RAM slot; metadata_per_ram_slot $gs_corpus_mps), compression_ratio $gs_corpus_cratio, memory_ratio $gs_corpus_mratio"
    fi
  done
else
  echo
  echo "bench-ram: no corpus at $CORPUS: compression ratio skipped"
fi

# Summary.
echo
printf '%-10s %11s %11s %14s %14s %14s\n' store "write IOPS" "read IOPS" "RAM (MiB)" "corpus ratio" "x$CORPUS_COPIES ratio"
for s in $STORES; do
  printf '%-10s %11s %11s %14s %14s %14s\n' "$s" "${W[$s]}" "${R[$s]}" \
    "$(calc "round(${RAM[$s]} / 2**20, 1)")" "${CR[$s]:--}" "${CRN[$s]:--}"
done

verdict () { if [[ $(calc "1 if $1 else 0") == 1 ]]; then echo met; else echo MISSED; fi; }

if [[ -n ${W[ghostswap]-} ]]; then
  echo
  for a in ghostswap-rc zstd sparse null; do
    [[ -n ${W[$a]-} ]] || continue
    printf 'ghostswap/%-6s write %sx, read %sx, RAM %sx\n' "$a" \
      "$(calc "round(${W[ghostswap]} / ${W[$a]}, 2)")" \
      "$(calc "round(${R[ghostswap]} / ${R[$a]}, 2)")" \
      "$(calc "round(${RAM[ghostswap]} / max(1, ${RAM[$a]}), 2)")"
  done
  if [[ -n ${W[ghostswap-rc]-} && -n ${W[zstd]-} ]]; then
    printf 'ghostswap-rc/zstd   write %sx, read %sx, RAM %sx\n' \
      "$(calc "round(${W[ghostswap-rc]} / ${W[zstd]}, 2)")" \
      "$(calc "round(${R[ghostswap-rc]} / ${R[zstd]}, 2)")" \
      "$(calc "round(${RAM[ghostswap-rc]} / max(1, ${RAM[zstd]}), 2)")"
  fi
  echo
  echo "targets:"
  if [[ -n ${W[zstd]-} ]]; then
    echo "  write IOPS >= 2x zstd:     $(verdict "${W[ghostswap]} >= 2 * ${W[zstd]}")"
    echo "  read IOPS >= 1.3x zstd:    $(verdict "${R[ghostswap]} >= 1.3 * ${R[zstd]}")"
    echo "  RAM <= zstd:               $(verdict "${RAM[ghostswap]} <= ${RAM[zstd]}")"
  fi
  if [[ -n $gs_meta && -n $gs_slots && $gs_slots -gt 0 ]]; then
    per=$(calc "round($gs_meta / $gs_slots, 2)")
    echo "  metadata/RAM slot <= 16:   $(verdict "$per <= 16") (fio: $per B = metadata_bytes $gs_meta / slots_ram $gs_slots; engine's metadata_per_ram_slot $gs_mps)"
    # Cross-check against the kernel's view: whatever RSS grew by beyond
    # the pool's segments is metadata plus everything else (heap slack,
    # threads, zstd contexts).
    echo "    cross-check: (RSS growth - pool_bytes) / slots_ram = $(calc "round((${RAM[ghostswap]} - $gs_pool) / $gs_slots, 2)") B"
  fi
  if [[ -n $gs_corpus_meta && ${gs_corpus_slots:-0} -gt 0 ]]; then
    echo "    corpus: $(calc "round($gs_corpus_meta / $gs_corpus_slots, 2)") B = metadata_bytes $gs_corpus_meta / slots_ram $gs_corpus_slots"
  fi
  if [[ -n ${CR[ghostswap]-} ]]; then
    echo "  corpus ratio >= 3.5 (RSS): $(verdict "${CR[ghostswap]} >= 3.5") (1 copy ${CR[ghostswap]}, $CORPUS_COPIES copies ${CRN[ghostswap]}; zstd ${CR[zstd]:--} / ${CRN[zstd]:--}, sparse ${CR[sparse]:--} / ${CRN[sparse]:--})"
    [[ -n $gs_corpus_mratio ]] && echo "    engine's own memory_ratio: $gs_corpus_mratio (compression_ratio of the codec alone $gs_corpus_cratio)"
  fi
fi
echo
echo "bench-ram: done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
