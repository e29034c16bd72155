#!/bin/bash
# demo.sh - show ghostswap at work, end to end, through real NBD.
#
#     scripts/demo.sh [BUILDDIR]        (default: build)
#
# 1. starts `nbdkit ghostswap` with its default settings on a Unix socket in
#    a temporary directory (the plugin is loaded from BUILDDIR by path, so
#    nothing needs installing);
# 2. writes data through NBD: the real-memory corpus
#    ../shared/data/memory-corpus.bin when it is there (else 48 MiB of
#    generated mixed data) at offset 0, 8 MiB of zero pages after it, and
#    1 MiB at the far end of the device;
# 3. reads everything back and verifies it (cmp);
# 4. shows `nbdinfo` of the device and its allocation map totals;
# 5. stops nbdkit and shows the statistics the plugin logs (at debug level,
#    nbdkit -v) as it shuts down.
#
# Exit status 0 when every byte read back matched.
set -euo pipefail

# As root on a machine with FUSE, loop devices and a memory cgroup, the
# demonstration is real swap (scripts/demo-swap.sh); elsewhere it says why
# and shows the device over NBD instead.
if [[ -z ${DEMO_NBD_ONLY-} ]]; then
  rc=0
  "$(dirname "${BASH_SOURCE[0]}")/demo-swap.sh" "$@" || rc=$?
  ((rc == 77)) || exit "$rc"
  echo "demo: falling back to the NBD demonstration" >&2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
builddir=${1:-$repo/build}
plugin=$(cd "$builddir" 2>/dev/null && pwd)/plugin/nbdkit-ghostswap-plugin.so
corpus=${DEMO_CORPUS:-$repo/../shared/data/memory-corpus.bin}

# nbdsh runs "python3 -m nbd": make that Debian's python3, which has the
# libnbd bindings, whatever a user's PATH puts first.
nbdsh () { PATH=/usr/bin:/bin:$PATH command nbdsh "$@"; }

die () { echo "demo: $*" >&2; exit 1; }
step () { printf '\n== %s\n' "$*"; }

[[ -f $plugin ]] || die "no plugin at $plugin: build first (meson setup build && ninja -C build)"
for prog in nbdkit nbdcopy nbdinfo nbdsh cmp; do
  command -v "$prog" >/dev/null || die "$prog not found: run scripts/install-deps.sh"
done

tmp=$(mktemp -d /tmp/ghostswap-demo.XXXXXX)
pid=
cleanup () {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sock=$tmp/sock
uri="nbd+unix:///?socket=$sock"
log=$tmp/nbdkit.log

step "nbdkit ghostswap (default settings) on $sock"
# -v for the plugin's debug messages (the statistics at shutdown);
# -D nbdkit.backend.datapath=0 keeps nbdkit's per-request lines out.
nbdkit -f -v -D nbdkit.backend.datapath=0 -U "$sock" "$plugin" 2>"$log" &
pid=$!
for ((i = 0; i < 100; i++)); do
  [[ -S $sock ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; pid=; die "nbdkit did not start"; }
  sleep 0.1
done
[[ -S $sock ]] || { cat "$log" >&2; die "nbdkit did not listen within 10 s"; }
grep -E 'ghostswap: device ' "$log" | sed 's/^.*debug: ghostswap: /   /' || true
rss0=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status")

if [[ -r $corpus ]]; then
  data=$corpus
  echo "   data: $corpus (real memory pages, see its README)"
else
  data=$tmp/data.bin
  echo "   data: no corpus at $corpus: generating 48 MiB of mixed pages"
  (
    set +o pipefail    # the producers die of SIGPIPE when head has enough
    head -c 12M /dev/zero                                  # zero pages
    head -c 12M /dev/zero | tr '\0' '\253'                 # same-filled pages
    seq 1 2000000 | sed 's/$/ ghostswap demo line/' | head -c 12M   # text
    head -c 12M /dev/urandom                               # incompressible
  ) > "$data.raw"
  # Interleave 1 MiB runs of the four kinds, as real memory would be.
  for ((i = 0; i < 12; i++)); do
    for k in 0 1 2 3; do
      dd if="$data.raw" bs=1M skip=$((k * 12 + i)) count=1 status=none
    done
  done > "$data"
  rm -f "$data.raw"
fi
len=$(stat -c %s "$data")
mib=$((len >> 20))

step "write: nbdcopy $mib MiB to offset 0, zero pages and the far end with nbdsh"
t0=$(date +%s.%N)
nbdcopy "$data" "$uri"
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v m="$mib" \
  'BEGIN { printf "   nbdcopy: %d MiB in %.2f s (%.0f MiB/s)\n", m, b - a, m / (b - a) }'
nbdsh -u "$uri" -c "
import os
size = h.get_size()
zoff = ($len + (1 << 20) - 1) // (1 << 20) * (1 << 20)
h.pwrite(bytes(8 << 20), zoff)                       # 8 MiB of zero pages, written as data
with open('$data', 'rb') as f:
    head = f.read(1 << 20)
h.pwrite(head, size - len(head))                     # 1 MiB at the far end
h.flush()
print('   device size %d bytes (%.1f GiB); wrote 8 MiB of zeroes at %d and 1 MiB at %d'
      % (size, size / 2**30, zoff, size - len(head)))
"
rss1=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status")
echo "   nbdkit's RSS grew by $(((rss1 - rss0) / 1024)) MiB for these $((mib + 9)) MiB"

step "read back and verify"
nbdcopy "$uri" - 2>/dev/null | head -c "$len" > "$tmp/readback.bin" || true
if cmp "$data" "$tmp/readback.bin"; then
  echo "   $len bytes at offset 0: identical (cmp)"
else
  die "the data read back differs from what was written"
fi
nbdsh -u "$uri" -c "
size = h.get_size()
zoff = ($len + (1 << 20) - 1) // (1 << 20) * (1 << 20)
assert h.pread(8 << 20, zoff) == bytes(8 << 20), 'zero pages differ'
with open('$data', 'rb') as f:
    head = f.read(1 << 20)
assert h.pread(len(head), size - len(head)) == head, 'far end differs'
assert h.pread(1 << 20, size // 2) == bytes(1 << 20), 'never-written area is not zero'
print('   8 MiB of zero pages, 1 MiB at the far end, 1 MiB never written: as expected')
"

step "nbdinfo $uri"
nbdinfo "$uri" | sed 's/^/   /'
echo "   allocation map totals (nbdinfo --map --totals):"
nbdinfo --map --totals "$uri" | sed 's/^/   /'

step "stop nbdkit; the plugin's statistics at shutdown"
kill "$pid"
wait "$pid" || true
pid=
# The plugin logs "ghostswap: statistics:" and then one "ghostswap: KEY VALUE"
# line per figure (gs_stats_format).
if grep -q 'ghostswap: statistics:' "$log"; then
  sed -n '/ghostswap: statistics:/,$p' "$log" \
    | sed -n 's/^nbdkit: .*debug: ghostswap: \([a-z_]* [0-9][0-9.e+-]*\)$/   \1/p'
else
  echo "   (no statistics in the log; its tail:)"
  tail -n 20 "$log" | sed 's/^/   /'
fi
echo
echo "demo: OK"
