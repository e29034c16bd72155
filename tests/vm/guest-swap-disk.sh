# shellcheck shell=dash disable=SC2154  # sourced by init.sh (busybox ash)
# Guest half of test-vm-swap-disk.sh (sourced by the guest's /init, see
# init.sh): swap on the virtio disk /dev/vda, which qemu serves from
# nbdkit ghostswap.  The host checks the plugin's counters at each
# gs_sync.
dev=/dev/vda
# virtio disks say they are rotational, and the kernel discards freed
# swap space only on non-rotational ones.
echo 0 >/sys/block/vda/queue/rotational
mkswap $dev >/dev/null || gs_fail "mkswap $dev"
swapon -d $dev || gs_fail "swapon -d $dev"
cat /proc/swaps
gs_sync swapon
# Bigger than the guest's RAM: most of it goes to the disk and back.
gs_workload 256M 2 filled
# The workload has exited: the kernel frees its swap and discards it.
gs_sync freed
swapoff $dev || gs_fail "swapoff $dev"
gs_sync swapoff
# Again after swapoff + swapon: the writes still reach the plugin.
swapon -d $dev || gs_fail "swapon -d $dev (second time)"
gs_workload 224M 1 filled2
swapoff $dev || gs_fail "swapoff $dev (second time)"
gs_sync end
