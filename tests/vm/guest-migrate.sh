# shellcheck shell=dash disable=SC2154  # sourced by init.sh (busybox ash)
# Guest half of test-vm-migrate.sh (sourced by the guest's /init, see
# init.sh): swap on the virtio disk /dev/vda (nbdkit ghostswap with a
# backing file); the workload holds its pages after the fill until the
# host has started the migration, then verifies them while it runs.
dev=/dev/vda
echo 0 >/sys/block/vda/queue/rotational
mkswap $dev >/dev/null || gs_fail "mkswap $dev"
swapon -d $dev || gs_fail "swapon -d $dev"
gs_workload 256M 2 filled
swapoff $dev || gs_fail "swapoff $dev"
gs_sync end
