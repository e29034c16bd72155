#!/bin/bash
# ghostswapd's deadlock-safety measures, checked on the running daemon
# from outside, one per run:
#
#   test-ghostswapd-harden.sh mlock | io-flusher | oom-score-adj
#
#   mlock          VmLck > 0 in /proc/PID/status
#   io-flusher     PF_MEMALLOC_NOIO and PF_LOCAL_THROTTLE (what
#                  PR_SET_IO_FLUSHER sets and PR_GET_IO_FLUSHER tests) in
#                  the flags of every thread, FUSE workers included
#   oom-score-adj  /proc/PID/oom_score_adj is -1000
#
# Where the capability a measure needs is missing (containers often drop
# CAP_SYS_RESOURCE), the test checks that the daemon warned about that
# measure at start, then skips (77) saying so.  So it does for mlock in
# sanitizer builds (GS_SANITIZE, from meson's b_sanitize), whose mlockall
# does nothing.  Not root: skip.

set -u
set -o pipefail
. "$(dirname "$0")/lib.sh"

measure=${1:-}
case "$measure" in
    mlock) cap=$CAP_IPC_LOCK; capname=CAP_IPC_LOCK; warn="mlockall failed" ;;
    io-flusher) cap=$CAP_SYS_RESOURCE; capname=CAP_SYS_RESOURCE
                warn="PR_SET_IO_FLUSHER failed" ;;
    oom-score-adj) cap=$CAP_SYS_RESOURCE; capname=CAP_SYS_RESOURCE
                   warn="oom_score_adj=-1000 failed" ;;
    *) echo "usage: $prog mlock|io-flusher|oom-score-adj" >&2; exit 1 ;;
esac

require_fuse
start_daemon "$mnt" size=64M ram-limit=16M

# Make the FUSE loop start its workers: they must carry the flags too.
dd if=/dev/urandom of="$mnt/swap" bs=64k count=16 conv=notrunc status=none ||
    fail "write"

case "$measure,${GS_SANITIZE:-none}" in
    mlock,none | mlock,) ;;
    mlock,*)
        grep -q "warning: $warn (Input/output error)" "$log" ||
            fail "built with b_sanitize=$GS_SANITIZE, whose mlockall is a no-op, and the daemon did not warn '$warn'"
        skip "built with b_sanitize=$GS_SANITIZE, whose mlockall is a no-op: checked that ghostswapd warns '$warn'"
        ;;
esac
if ! has_cap "$cap" && ! { [ "$measure" = mlock ] && [ "$(ulimit -l)" = unlimited ]; }; then
    grep -q "warning: $warn" "$log" ||
        fail "no $capname, and the daemon did not warn '$warn'"
    skip "no $capname here: checked that ghostswapd warns '$warn', cannot check the effect"
fi
! grep -q "warning: $warn" "$log" || fail "the daemon warned '$warn'"

case "$measure" in
mlock)
    lck=$(awk '/^VmLck:/ { print $2 }' "/proc/$pid/status")
    [ "${lck:-0}" -gt 0 ] || fail "VmLck is '$lck' kB"
    echo "ok: VmLck $lck kB"
    ;;
io-flusher)
    n=0
    for t in "/proc/$pid/task"/*; do
        t=${t##*/}
        f=$(task_flags "$pid" "$t") || continue    # the thread just ended
        (( (f & 0x180000) == 0x180000 )) ||
            fail "thread $t ($(cat "/proc/$pid/task/$t/comm")) lacks PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE (flags $f)"
        n=$((n + 1))
    done
    [ $n -ge 2 ] || fail "only $n threads seen"
    echo "ok: PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE in all $n threads"
    ;;
oom-score-adj)
    adj=$(cat "/proc/$pid/oom_score_adj")
    [ "$adj" = -1000 ] || fail "oom_score_adj is $adj"
    echo "ok: oom_score_adj -1000"
    ;;
esac

kill -TERM "$pid"
wait_exit 20
[ $status = 0 ] || fail "exit status $status"
