# shellcheck shell=dash disable=SC2154  # sourced by init.sh (busybox ash)
# Guest half of test-vm-nbd-client.sh (sourced by the guest's /init, see
# init.sh): the kernel's NBD client, through qemu's user networking
# (restrict=on) to 10.0.2.100:10809, which qemu forwards to nbdkit
# ghostswap's Unix socket on the host; swap on /dev/nbd0.
# The reserves the NBD socket (SOCK_MEMALLOC) and the NIC's receive
# buffers live on when the guest is short of memory: see
# test-vm-nbd-client.sh.
echo "${gs_min_free_kbytes:-16384}" >/proc/sys/vm/min_free_kbytes
echo "GS-NOTE vm.min_free_kbytes $(cat /proc/sys/vm/min_free_kbytes)"
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
nbd-client 10.0.2.100 10809 /dev/nbd0 -N ghostswap -block-size 4096 -swap ||
    gs_fail "nbd-client 10.0.2.100 10809 /dev/nbd0 failed"
echo "GS-NOTE nbd0: $(cat /sys/block/nbd0/size) sectors, rotational $(cat /sys/block/nbd0/queue/rotational)"
mkswap /dev/nbd0 >/dev/null || gs_fail "mkswap /dev/nbd0"
swapon -d /dev/nbd0 || gs_fail "swapon -d /dev/nbd0"
# If the guest stalls, this (locked in memory) still reports its TCP
# and swap counters on the console.
guest-monitor 10 10809 &
mon=$!
gs_workload 256M 2 filled
swapoff /dev/nbd0 || gs_fail "swapoff /dev/nbd0"
kill $mon
nbd-client -d /dev/nbd0 || gs_fail "nbd-client -d /dev/nbd0"
gs_sync end
