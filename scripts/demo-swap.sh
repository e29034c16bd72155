#!/bin/bash
# demo-swap.sh - ghostswap as real swap: the kernel swaps through it.
#
#     scripts/demo-swap.sh [BUILDDIR]        (default: build; run as root)
#
# 1. starts ghostswapd (the engine as a file in a FUSE mount) on its
#    default settings, with a control socket;
# 2. attaches its swap file to a loop device (direct I/O), mkswap, and
#    swapon --discard at a high priority;
# 3. runs a workload of ours (tests/swap/swap-workload.c) that fills
#    768 MiB of mixed pages (zero, same-filled, text-like, random) inside a
#    256 MiB memory cgroup, so the kernel must swap most of it out;
# 4. while the workload still holds those pages, shows where they are: the
#    kernel's counters (pswpout, /proc/swaps) and the device's own
#    statistics (ghostswapctl stats);
# 5. lets the workload read every page back twice, checking every byte,
#    and shows the swap-ins;
# 6. tears everything down (swapoff, losetup -d, stop ghostswapd, remove
#    the cgroup), also on failure, leaving the machine as it found it.
#
# Exit status 0 when the workload verified every page; 77 when the machine
# cannot do this (not root, no FUSE, no loop devices, no memory cgroup),
# with the reason printed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
builddir=$(cd "${1:-$repo/build}" && pwd)
ghostswapd=$builddir/server/ghostswapd
ghostswapctl=$builddir/server/ghostswapctl
workload=$builddir/tests/swap/swap-workload
size=${DEMO_SWAP_SIZE:-805306368}      # 768 MiB
limit=${DEMO_SWAP_LIMIT:-268435456}    # 256 MiB

skip () { echo "demo-swap: cannot run here: $*" >&2; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (swapon, losetup, cgroups)"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
command -v losetup >/dev/null && losetup -f >/dev/null 2>&1 || skip "no free loop device"
for f in "$ghostswapd" "$ghostswapctl" "$workload"; do
  [[ -x $f ]] || skip "$f is not built (run scripts/build.sh)"
done
# shellcheck source=tests/swap/cgroup.sh
source "$repo/tests/swap/cgroup.sh"
cg_detect || skip "$CG_WHY"

dir=$(mktemp -d /tmp/ghostswap-demo.XXXXXX)
mnt=$dir/mnt
mkdir "$mnt"
daemon= loop= cg= swapped=false wl=
cleanup () {
  set +e
  [[ -n $wl ]] && kill "$wl" 2>/dev/null && wait "$wl" 2>/dev/null
  if $swapped; then swapoff "$loop"; fi
  [[ -n $loop ]] && losetup -d "$loop"
  [[ -n $cg ]] && cg_remove "$cg"
  if [[ -n $daemon ]]; then
    kill -TERM "$daemon" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
    kill -QUIT "$daemon" 2>/dev/null
    wait "$daemon" 2>/dev/null
  fi
  mountpoint -q "$mnt" && umount -l "$mnt"
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

step () { printf '\n== %s\n' "$*"; }
vmstat () { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }

step "ghostswapd $mnt (default settings)"
"$ghostswapd" "$mnt" control="$dir/ctl.sock" 2> "$dir/ghostswapd.log" &
daemon=$!
for _ in $(seq 100); do [[ -e $mnt/swap ]] && break; sleep 0.1; done
[[ -e $mnt/swap ]] || { cat "$dir/ghostswapd.log" >&2; exit 1; }
ls -l "$mnt"

step "losetup + mkswap + swapon --discard"
# Direct I/O (no second copy in the page cache); the default sector size
# and queue depth: neither 4096-byte sectors nor a shorter queue was
# faster (bench/bench-loop.sh, docs/benchmarks-swap.md).
loop=$(losetup --direct-io=on -f --show "$mnt/swap")
mkswap -q "$loop"
swapon --discard -p 32767 "$loop"
swapped=true
cat /proc/swaps

out0=$(vmstat pswpout) in0=$(vmstat pswpin)
step "workload: $((size >> 20)) MiB of mixed pages in a $((limit >> 20)) MiB memory cgroup"
cg=$(cg_create "ghostswap-demo-$$" "$limit")
# --hold: after the fill it waits for SIGUSR1, so that the statistics
# below show its pages where they are.
cg_exec "$cg" "$workload" --size "$size" --passes 2 --hold \
    --ready-file "$dir/ready" </dev/null &
wl=$!
for _ in $(seq 3000); do
  [[ -e $dir/ready ]] && break
  kill -0 "$wl" 2>/dev/null || { wait "$wl"; wl=; echo "the workload failed" >&2; exit 1; }
  sleep 0.1
done
[[ -e $dir/ready ]] || { echo "the workload did not fill within 300 s" >&2; exit 1; }
echo "pages swapped out: $(( $(vmstat pswpout) - out0 ))"
cat /proc/swaps

step "what the device holds while the workload keeps its pages (ghostswapctl stats)"
"$ghostswapctl" --socket "$dir/ctl.sock" stats

step "the workload reads every page back, twice, and checks every byte"
kill -USR1 "$wl"                # release it
st=0
wait "$wl" || st=$?
wl=
((st == 0)) || { echo "the workload failed (exit status $st)" >&2; exit 1; }
echo "pages swapped in: $(( $(vmstat pswpin) - in0 ))"

step "teardown"
swapoff "$loop"; swapped=false
losetup -d "$loop"; loop=
echo "swap off, loop device detached; ghostswapd stops with the trap"
