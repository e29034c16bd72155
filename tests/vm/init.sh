#!/bin/busybox sh
# shellcheck shell=dash disable=SC2034,SC2013  # busybox ash; gs_answer is for /test.sh
# /init of the vm tests' guest (copied into the initramfs by
# build-guest.sh).  Mounts the pseudo file systems, loads the modules in
# /lib/modules/order, then runs the test's guest half, /test.sh (which
# the host appends to the initramfs as a second cpio archive), in this
# shell, so that it can use the functions below.  Its output goes to the
# console (ttyS0), which the host reads; the host answers on ttyS1.
# Ends with a line "GS-EXIT STATUS" and powers the guest off.
#
# Kernel command line (besides console=): gs.seed=N (the workload's
# seed), passed on as $gs_seed; gs.min_free_kbytes=N, as
# $gs_min_free_kbytes (for the test that sets vm.min_free_kbytes).

/bin/busybox mkdir -p /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo 1 >/proc/sys/kernel/sysrq
# A task blocked for 30 s has its stack printed on the console.
echo 30 >/proc/sys/kernel/hung_task_timeout_secs
for m in $(cat /lib/modules/order); do
    insmod "/lib/modules/$m.ko" || echo "GS-NOTE insmod $m failed"
done

gs_seed=1
for a in $(cat /proc/cmdline); do
    case $a in
        gs.seed=*) gs_seed=${a#gs.seed=} ;;
        gs.min_free_kbytes=*) gs_min_free_kbytes=${a#gs.min_free_kbytes=} ;;
    esac
done

# gs_sync NAME - tell the host we reached NAME, wait for its answer
# (a line on ttyS1) and put it in $gs_answer.
gs_sync () {
    echo "GS-SYNC $1"
    read -r gs_answer </dev/ttyS1
}

# gs_fail MESSAGE - report a failure (the test's status is 1).
gs_fail () {
    echo "GS-FAIL $*"
    gs_status=1
}

# gs_dump - what the kernel is doing: memory, swap, and every task's
# stack (sysrq t) and the blocked ones (sysrq w), on the console.
gs_dump () {
    echo "GS-DUMP begin"
    cat /proc/meminfo /proc/swaps
    grep -E '^(pswp|pgmajfault|allocstall|pgscan|pgsteal|oom|workingset)' /proc/vmstat
    cat /proc/sys/vm/min_free_kbytes
    for p in /proc/[0-9]*; do
        [ -r "$p/stat" ] || continue
        read -r s <"$p/stat"
        echo "task ${p#/proc/} state $(echo "$s" | cut -d' ' -f3) wchan $(cat "$p/wchan" 2>/dev/null) $(cat "$p/comm" 2>/dev/null)"
    done
    echo w >/proc/sysrq-trigger
    echo t >/proc/sysrq-trigger
    dmesg | tail -n 400
    echo "GS-DUMP end"
}

# gs_watchdog FILE SECONDS - in the background: if FILE (the workload's
# output) does not grow for SECONDS while the workload runs, dump the
# guest's state once.  The PID is in $gs_watchdog_pid.
gs_watchdog () {
    (
        last=-1; still=0; dumped=
        while :; do
            sleep 5
            n=$(wc -c <"$1" 2>/dev/null || echo 0)
            n=$((n + $(grep -E '^(pswpin|pswpout)' /proc/vmstat | awk '{ s += $2 } END { print s }')))
            if [ "$n" = "$last" ]; then
                still=$((still + 5))
            else
                still=0; last=$n
            fi
            if [ "$still" -ge "$2" ] && [ -z "$dumped" ]; then
                echo "GS-STALL no progress (workload output and pswpin+pswpout) for $still s"
                gs_dump
                dumped=1
            fi
        done
    ) &
    gs_watchdog_pid=$!
}

# gs_workload SIZE PASSES [SYNC] - run the workload, its output on the
# console too (lines "GS-WL ..."), its status in $gs_wl_status.  With
# SYNC, it holds its pages after the fill until the host answers
# gs_sync SYNC.
gs_workload () {
    echo "GS-NOTE workload --size $1 --passes $2 --seed $gs_seed"
    rm -f /tmp/wl.ready
    if [ -n "${3:-}" ]; then
        swap-workload --size "$1" --passes "$2" --seed "$gs_seed" \
            --hold --ready-file /tmp/wl.ready >/tmp/wl.out 2>&1 </dev/null &
    else
        swap-workload --size "$1" --passes "$2" --seed "$gs_seed" \
            >/tmp/wl.out 2>&1 </dev/null &
    fi
    wl=$!
    gs_watchdog /tmp/wl.out "${GS_STALL_SECONDS:-60}"
    if [ -n "${3:-}" ]; then
        while [ ! -e /tmp/wl.ready ] && kill -0 $wl 2>/dev/null; do sleep 1; done
        echo "GS-NOTE $(grep -E '^(SwapTotal|SwapFree)' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
        gs_sync "$3"
        kill -USR1 $wl 2>/dev/null
    fi
    wait $wl
    gs_wl_status=$?
    kill "$gs_watchdog_pid" 2>/dev/null
    wait "$gs_watchdog_pid" 2>/dev/null
    sed 's/^/GS-WL /' /tmp/wl.out
    [ "$gs_wl_status" = 0 ] && grep -qx 'result ok' /tmp/wl.out ||
        gs_fail "workload exited with status $gs_wl_status"
}

gs_status=0
echo "GS-READY $(uname -r) $(grep MemTotal /proc/meminfo)"
if [ -r /test.sh ]; then
    . /test.sh
else
    gs_fail "no /test.sh in the initramfs"
fi
echo "GS-EXIT $gs_status"
sync
poweroff -f
