#!/bin/bash
# bench-swapoff.sh - the kernel anchor for ghostswap's drain: how fast
# kernel `swapoff` brings SIZE of swapped-out pages back from a plain swap
# file.
#
# Not a test: run it by hand as root on an otherwise idle machine (or
# through bench/bench-backing.sh, which runs it along with the drain and
# migrate figures it is compared with):
#
#     bench/bench-swapoff.sh [SIZE]           (default 2G)
#
# What it does:
#   1. refuses to run if any swap is active (it would take some of the
#      pages) or zswap is on (pages would go to a compressed RAM pool, not
#      to the file);
#   2. makes a swap file of SIZE + HEADROOM in DIR (dd from /dev/zero with
#      direct I/O, chmod 600, mkswap, swapon);
#   3. starts the workload (the swap tests' tests/swap/swap-workload with
#      --hold, compiled here with cc if SWAP_WORKLOAD is not given) in a
#      fresh memory cgroup limited to LIMIT (v1: memory.limit_in_bytes; v2:
#      memory.max): it allocates SIZE + LIMIT, fills every page (zero,
#      same-filled, text-like and random pages: see swap-workload.c), and
#      holds, so that about SIZE of it sits in swap (less its zero pages,
#      which the kernel keeps in its zeromap, not in the file);
#   4. reads the swap file's Used from /proc/swaps once it stops changing;
#   5. lifts the cgroup's limit (so that everything fits in RAM again) and
#      times `swapoff FILE` while the workload still holds its memory:
#      swapoff has to read every page back and map it in;
#   6. has the workload check every page (SIGUSR1: one verifying pass),
#      then cleans up: kills
#      the workload, swapoff if still on, removes the cgroup and the file
#      (also on error or Ctrl-C).
#
# Output: a readable line per step, then "key value" lines
# (swap_used_bytes, swapoff_seconds, swapoff_MBps, ...) for scripts.
# MB/s is 10^6 bytes per second of Used swap.
#
# Environment (defaults in brackets):
#   DIR [/var/tmp]        where the swap file goes (a disk, not tmpfs)
#   LIMIT [512M]          the workload cgroup's memory limit
#   HEADROOM [256M]       extra swap file size, so that the workload's SIZE
#                         swapped pages never find the swap full
#   SWAP_WORKLOAD [unset] a built tests/swap/swap-workload
#   KEEP [unset]          keep the work directory (the swap file is removed)
#
# Exit status: 0 when it ran to the end, 1 on an error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

SIZE=${1:-2G}
DIR=${DIR:-/var/tmp}
LIMIT=${LIMIT:-512M}
HEADROOM=${HEADROOM:-256M}

die () { echo "bench-swapoff: $*" >&2; exit 1; }
say () { echo "bench-swapoff: $*" >&2; }

# to_bytes 2G -> 2147483648
to_bytes () {
  local s=$1 n u
  [[ $s =~ ^([0-9]+)([kKmMgGtT]?)$ ]] || die "bad size '$s'"
  n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]}
  case $u in
    k|K) echo $((n << 10)) ;; m|M) echo $((n << 20)) ;;
    g|G) echo $((n << 30)) ;; t|T) echo $((n << 40)) ;; *) echo "$n" ;;
  esac
}

((EUID == 0)) || die "must run as root (swapon, cgroups)"
for prog in mkswap swapon swapoff dd; do
  command -v "$prog" >/dev/null || die "$prog not found"
done
size=$(to_bytes "$SIZE")
limit=$(to_bytes "$LIMIT")
headroom=$(to_bytes "$HEADROOM")
((size % (1 << 20) == 0 && headroom % (1 << 20) == 0)) || die "SIZE and HEADROOM must be whole MiB"

# Only our swap file may take the pages.
if [[ -n $(tail -n +2 /proc/swaps) ]]; then
  cat /proc/swaps >&2
  die "swap is already active (above): swapoff it first; this benchmark needs its swap file to be the only one"
fi
if [[ $(cat /sys/module/zswap/parameters/enabled 2>/dev/null || echo N) == Y ]]; then
  die "zswap is enabled: swapped pages would go to its RAM pool, not the file (echo N > /sys/module/zswap/parameters/enabled)"
fi
[[ -d $DIR ]] || die "$DIR is not a directory"
fstype=$(findmnt -no FSTYPE --target "$DIR" 2>/dev/null || stat -f -c %T "$DIR")
[[ $fstype != tmpfs && $fstype != ramfs ]] || die "$DIR is on $fstype: give DIR on a disk"
avail=$(($(stat -f -c '%a * %S' "$DIR")))
((avail > size + headroom + (1 << 30))) || die "not enough room in $DIR for a $((size + headroom)) byte swap file"

work=$(mktemp -d "$DIR/bench-swapoff.XXXXXX")
swapfile=$work/swapfile
cg=
pid=

swap_active () { awk -v f="$swapfile" '$1 == f { found = 1 } END { exit !found }' /proc/swaps; }

cleanup () {
  local i
  set +e
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  if swap_active; then
    swapoff "$swapfile" || say "WARNING: swapoff $swapfile failed: see /proc/swaps"
  fi
  if [[ -n $cg && -d $cg ]]; then
    for ((i = 0; i < 50; i++)); do
      rmdir "$cg" 2>/dev/null && break
      sleep 0.1
    done
    [[ -d $cg ]] && say "WARNING: could not remove cgroup $cg"
  fi
  rm -f "$swapfile"
  if [[ -n ${KEEP-} ]]; then
    say "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The workload.
workload=${SWAP_WORKLOAD:-}
if [[ -z $workload ]]; then
  workload=$work/swap-workload
  ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -o "$workload" \
    "$here/../tests/swap/swap-workload.c" \
    || die "cannot compile $here/../tests/swap/swap-workload.c"
fi

# The swap file.
say "making a $(((size + headroom) >> 20)) MiB swap file in $work ($fstype)"
dd if=/dev/zero of="$swapfile" bs=1M count=$(((size + headroom) >> 20)) \
  oflag=direct status=none
chmod 600 "$swapfile"
mkswap -q "$swapfile" >/dev/null
swapon "$swapfile"
swap_active || die "swapon $swapfile did not take"

# The cgroup.
name=bench-swapoff-$$
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  cgv=2
  grep -qw memory /sys/fs/cgroup/cgroup.controllers || die "cgroup v2 without the memory controller"
  grep -qw memory /sys/fs/cgroup/cgroup.subtree_control \
    || echo +memory > /sys/fs/cgroup/cgroup.subtree_control
  cg=/sys/fs/cgroup/$name
  mkdir "$cg"
  echo "$limit" > "$cg/memory.max"
  echo max > "$cg/memory.swap.max"
  limit_file=memory.max unlimited=max
elif [[ -d /sys/fs/cgroup/memory ]]; then
  cgv=1
  cg=/sys/fs/cgroup/memory/$name
  mkdir "$cg"
  echo "$limit" > "$cg/memory.limit_in_bytes"
  limit_file=memory.limit_in_bytes unlimited=-1
else
  die "no memory cgroup found (neither v2 nor v1 at /sys/fs/cgroup/memory)"
fi

alloc=$((size + limit))
ready=$work/ready
say "workload: $((alloc >> 20)) MiB in cgroup v$cgv $cg limited to $((limit >> 20)) MiB"
t0=$(date +%s.%N)
bash -c 'echo $$ > "$1/cgroup.procs" && exec "$2" --size "$3" --passes 1 --hold --ready-file "$4" </dev/null' \
  swap-workload "$cg" "$workload" "$alloc" "$ready" >"$work/workload.out" 2>&1 &
pid=$!
while [[ ! -e $ready ]]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$work/workload.out" >&2
    grep -E '^(oom_kill|under_oom) ' "$cg/memory.oom_control" "$cg/memory.events" 2>/dev/null >&2 || true
    die "the workload died before filling its memory (OOM? see above)"
  fi
  sleep 0.2
done
t1=$(date +%s.%N)

# Wait for swap-out to settle: Used unchanged over a second, no writeback.
used_kib () { awk -v f="$swapfile" '$1 == f { print $4 }' /proc/swaps; }
prev=-1
for ((i = 0; i < 60; i++)); do
  cur=$(used_kib)
  wb=$(awk '$1 == "Writeback:" { print $2 }' /proc/meminfo)
  [[ $cur == "$prev" && $wb -lt 1024 ]] && break
  prev=$cur
  sleep 1
done
used=$(($(used_kib) * 1024))
say "filled in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; swap Used $((used >> 20)) MiB"
((used > 0)) || die "nothing went to swap"
# An eighth of the pages are zero: they reach no swap device.
((used >= size * 7 / 10)) || say "WARNING: only $((used >> 20)) MiB swapped out of $((size >> 20)) MiB wanted"

others=$(tail -n +2 /proc/swaps | awk -v f="$swapfile" '$1 != f' | wc -l)
((others == 0)) || say "WARNING: another swap area appeared meanwhile: $(tail -n +2 /proc/swaps | awk -v f="$swapfile" '$1 != f { print $1 }' | tr '\n' ' ')"

# Let everything fit in RAM again, then time swapoff with the workload
# still holding its memory.
echo "$unlimited" > "$cg/$limit_file"
sync
say "swapoff $swapfile"
t2=$(date +%s.%N)
swapoff "$swapfile"
t3=$(date +%s.%N)
secs=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.3f", b - a }')
mbps=$(awk -v u="$used" -v s="$secs" 'BEGIN { printf "%.1f", u / 1e6 / s }')
say "swapoff took $secs s: $mbps MB/s"

# Every page must have come back intact: one verifying pass, then the
# workload exits (0 and "result ok", or 1 naming the first wrong byte).
kill -USR1 "$pid"
rc=0
wait "$pid" || rc=$?
pid=
verdict=$(grep -E '^(result|pages_checked) ' "$work/workload.out" | tr '\n' ' ' || true)
if ((rc != 0)) || ! grep -q '^result ok' "$work/workload.out"; then
  die "workload check after swapoff (exit $rc): $(tail -n 3 "$work/workload.out" | tr '\n' ' ')"
fi
say "workload check: $verdict"

echo "swapfile_bytes $((size + headroom))"
echo "cgroup_version $cgv"
echo "cgroup_limit $limit"
echo "workload_bytes $alloc"
echo "swap_used_bytes $used"
echo "swapoff_seconds $secs"
echo "swapoff_MBps $mbps"
