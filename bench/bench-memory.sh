#!/bin/bash
# bench-memory.sh - where ghostswap's memory goes, by RSS.
#
# Not a test: run it by hand, on an otherwise idle machine:
#
#     bench/bench-memory.sh [PATH/TO/nbdkit-ghostswap-plugin.so]
#
# Part 1, the memory corpus (../shared/data/memory-corpus.bin): for
# `nbdkit ghostswap` and `nbdkit memory allocator=zstd`, each in a fresh
# nbdkit, nbdcopy the corpus in, then CORPUS_COPIES-1 more copies side by
# side (through nbdkit's offset filter), and report the ratio
# corpus bytes / RSS growth after one copy and after all of them.  For
# ghostswap it also reads the engine's own account through the control
# socket (memory_bytes: pool + table + patterns + reverse maps + fixed
# costs) and prints how far its growth is from the RSS growth.
#
# Part 2, metadata under hostile request patterns, on `nbdkit ghostswap
# size=4E ram-limit=1M` (bench/memory-patterns.py drives the requests
# through libnbd): RSS (and the engine's metadata) before, after each
# pattern, and after trimming what was written:
#   20000 zero pages at random offsets; 16 WRITE_ZEROES of 4 GiB with
#   NO_HOLE and 16 without; 2000 pages of data at random offsets, then a
#   trim of each.
#
# Environment:
#   BEFORE [unset]       another plugin .so to run part 2 (and the corpus)
#                        with as well, e.g. a build of an older commit
#   RECOMPRESS [unset]   a zstd level: part 1 also runs ghostswap with
#                        recompress-level=RECOMPRESS (recompress-cpu=
#                        RECOMPRESS_CPU [100]) and, after the first copy
#                        and after the last, waits until every RAM page
#                        has been recompressed (or tried) before it reads
#                        RSS; it reports nbdkit's CPU time (utime + stime)
#                        and the engine's recompress_cpu_seconds
#   CORPUS, CORPUS_COPIES [4], PARTS ["1 2"], KEEP (keep the temp dir)
#
# Exit status: 0 when it ran to the end, 1 on an error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
plugin=${1:-$repo/build/plugin/nbdkit-ghostswap-plugin.so}
ctl=${GHOSTSWAPCTL:-$(dirname "$plugin")/../server/ghostswapctl}
CORPUS=${CORPUS:-$repo/../shared/data/memory-corpus.bin}
CORPUS_COPIES=${CORPUS_COPIES:-4}
PARTS=${PARTS:-1 2}
PY=/usr/bin/python3

die () { echo "bench-memory: $*" >&2; exit 1; }
for prog in nbdkit nbdcopy; do
  command -v "$prog" >/dev/null || die "$prog not found (run scripts/install-deps.sh)"
done
[[ -f $plugin ]] || die "plugin $plugin not found (meson setup build && ninja -C build)"
[[ -x $ctl ]] || die "ghostswapctl not found at $ctl (set GHOSTSWAPCTL)"
"$PY" -c 'import nbd' 2>/dev/null || die "python3-libnbd is missing"

tmp=$(mktemp -d /tmp/bench-memory.XXXXXX)
pid=
cleanup () {
  [[ -n $pid ]] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; } || true
  if [[ -n ${KEEP-} ]]; then echo "bench-memory: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start TAG ARGS...: nbdkit -f -U $tmp/TAG.sock ARGS; sets pid, sock.
start () {
  local tag=$1; shift
  sock=$tmp/$tag.sock
  rm -f "$sock" "$tmp/ctl.sock"
  nbdkit -f -U "$sock" "$@" 2>"$tmp/$tag.log" &
  pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S $sock ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/$tag.log" >&2; die "nbdkit $tag did not start"; }
    sleep 0.1
  done
  [[ -S $sock ]] || die "nbdkit $tag: no socket"
  sleep 0.2
}
stop () { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }
rss () { awk '$1 == "VmRSS:" { print $2 * 1024 }' "/proc/$pid/status"; }
# cpu: nbdkit's utime + stime so far, in seconds.
cpu () { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$pid/stat"; }
# gsstat KEY: one figure from the control socket ("-" if the plugin lacks it).
gsstat () {
  [[ -S $tmp/ctl.sock ]] || { echo -; return; }
  "$ctl" -s "$tmp/ctl.sock" -j stats 2>/dev/null | "$PY" -c '
import json, sys
v = json.load(sys.stdin)["stats"].get(sys.argv[1])
print("-" if v is None else v)' "$1"
}
calc () { "$PY" -c "print($1)"; }
# settle: with recompression on, wait until every RAM page was recompressed
# or tried (recompressed_pages + recompress_kept_pages >= slots_ram; the
# corpus writes each page once), at most 600 s.
settle () {
  [[ -n ${settling-} ]] || return 0
  local i done ram
  for ((i = 0; i < 600; i++)); do
    done=$(calc "$(gsstat recompressed_pages) + $(gsstat recompress_kept_pages)")
    ram=$(gsstat slots_ram)
    ((done >= ram)) && return 0
    sleep 1
  done
  echo "bench-memory: recompression did not settle ($done of $ram pages)" >&2
}
mib () { [[ $1 == - ]] && echo - || calc "round($1 / 2**20, 2)"; }

echo "bench-memory: $(nproc) cores, kernel $(uname -r), $(nbdkit --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench-memory: plugin $plugin"
[[ -n ${BEFORE-} ]] && echo "bench-memory: before $BEFORE"

corpus () {   # corpus LABEL ARGS...
  local label=$1; shift
  local cb r0 r1 rn m0 m1 mn c c0 c1 cn
  cb=$(stat -c %s "$CORPUS")
  start corpus "$@"
  r0=$(rss); m0=$(gsstat memory_bytes); c0=$(cpu)
  nbdcopy "$CORPUS" "nbd+unix:///?socket=$sock"
  settle
  r1=$(rss); m1=$(gsstat memory_bytes); c1=$(cpu)
  cmp "$CORPUS" <(nbdcopy "nbd+unix:///?socket=$sock" - | head -c "$cb") \
    || die "$label: the corpus read back differs"
  for ((c = 1; c < CORPUS_COPIES; c++)); do
    nbdcopy "$CORPUS" -- [ nbdkit --exit-with-parent --filter=offset nbd \
      socket="$sock" offset=$((c * cb)) range="$cb" ]
  done
  settle
  rn=$(rss); mn=$(gsstat memory_bytes); cn=$(cpu)
  local rcpu rsaved
  rcpu=$(gsstat recompress_cpu_seconds); rsaved=$(gsstat recompress_saved_bytes)
  stop
  printf '%-22s 1 copy: RSS +%6s MiB ratio %5s' "$label" "$(mib $((r1 - r0)))" \
    "$(calc "round($cb / ($r1 - $r0), 3)")"
  printf ' | %d copies: RSS +%6s MiB ratio %5s' "$CORPUS_COPIES" "$(mib $((rn - r0)))" \
    "$(calc "round($CORPUS_COPIES * $cb / ($rn - $r0), 3)")"
  if [[ $m0 != - ]]; then
    printf ' | account +%s / +%s MiB (%s %% / %s %% of RSS growth)' \
      "$(mib $((m1 - m0)))" "$(mib $((mn - m0)))" \
      "$(calc "round(100 * ($m1 - $m0) / ($r1 - $r0), 1)")" \
      "$(calc "round(100 * ($mn - $m0) / ($rn - $r0), 1)")"
  fi
  printf ' | CPU %s s / %s s' "$(calc "round($c1 - $c0, 2)")" "$(calc "round($cn - $c0, 2)")"
  [[ -n ${settling-} ]] && printf ' (recompression %s s, %s MiB saved)' \
    "$(calc "round($rcpu, 2)")" "$(mib "$rsaved")"
  echo
}

patterns () {   # patterns LABEL PLUGIN
  local label=$1 so=$2 r0 r
  echo "== $label: nbdkit ghostswap size=4E ram-limit=1M"
  start pat "$so" size=4E ram-limit=1M control="$tmp/ctl.sock"
  r0=$(rss)
  printf '   %-44s RSS %8s MiB  metadata %8s MiB\n' "empty device" "$(mib "$r0")" "$(mib "$(gsstat metadata_bytes)")"
  step () {
    local what=$1; shift
    "$PY" "$here/memory-patterns.py" "$sock" "$@"
    r=$(rss)
    printf '   %-44s RSS %+8s MiB  metadata %8s MiB\n' "$what" "$(mib $((r - r0)))" "$(mib "$(gsstat metadata_bytes)")"
  }
  step "20000 zero pages at random offsets" zero-pages 20000
  step "16 x WRITE_ZEROES 4 GiB, NO_HOLE" zeroes-nohole 16
  step "16 x WRITE_ZEROES 4 GiB" zeroes 16
  step "2000 data pages at random offsets" data 2000 7
  step "... and a trim of each" trim-data 2000 7
  stop
}

if [[ " $PARTS " == *" 1 "* ]]; then
  if [[ -f $CORPUS ]]; then
    echo; echo "== memory corpus ($(stat -c %s "$CORPUS") bytes)"
    corpus "ghostswap" "$plugin" size=1G ram-limit=2G control="$tmp/ctl.sock"
    corpus "memory allocator=zstd" memory size=1G allocator=zstd
    if [[ -n ${RECOMPRESS-} ]]; then
      settling=1
      corpus "ghostswap recompress-level=$RECOMPRESS" "$plugin" size=1G ram-limit=2G \
        control="$tmp/ctl.sock" recompress-level="$RECOMPRESS" \
        recompress-cpu="${RECOMPRESS_CPU:-100}"
      settling=
    fi
    [[ -n ${BEFORE-} ]] && corpus "ghostswap (before)" "$BEFORE" size=1G ram-limit=2G control="$tmp/ctl.sock"
  else
    echo "bench-memory: no corpus at $CORPUS: part 1 skipped"
  fi
fi
if [[ " $PARTS " == *" 2 "* ]]; then
  echo
  patterns ghostswap "$plugin"
  [[ -n ${BEFORE-} ]] && patterns "ghostswap (before)" "$BEFORE"
fi
echo
echo "bench-memory: done, load $(cut -d' ' -f1-3 /proc/loadavg)"
