# shellcheck shell=bash
# Memory cgroup helpers for the swap tests and bench/bench-swap.sh
# (sourced, not run).  Only the workload goes into the cgroup: the swap
# servers stay outside it, so the kernel reclaims the workload's pages
# to swap while the servers never run short.
#
#   cg_detect                 sets CG_VERSION (1 or 2) and CG_ROOT, or
#                             returns 1 with the reason in CG_WHY
#   cg_create NAME LIMIT      creates CG_ROOT/NAME with a memory limit of
#                             LIMIT bytes, swap unlimited; prints its path
#   cg_exec CG CMD [ARGS...]  moves the calling (sub)shell into the
#                             cgroup CG and execs CMD there: call it in a
#                             subshell, "cg_exec CG CMD &" (then $! is
#                             CMD's PID) or "(cg_exec CG CMD)"; in the
#                             main shell it refuses
#   cg_usage CG               memory charged to CG now, in bytes
#   cg_remove CG              kills what is left in CG, removes it
#
# cgroup v1 (the memory controller mounted on /sys/fs/cgroup/memory):
# memory.limit_in_bytes; memory.memsw.limit_in_bytes is left unlimited.
# cgroup v2 (unified /sys/fs/cgroup): memory.max, memory.swap.max=max,
# and the memory controller enabled in the root's subtree_control.

cg_detect () {
    CG_WHY=
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        CG_VERSION=2
        CG_ROOT=/sys/fs/cgroup
        if ! grep -qw memory "$CG_ROOT/cgroup.controllers"; then
            CG_WHY="cgroup v2 without the memory controller"
            return 1
        fi
        if ! grep -qw memory "$CG_ROOT/cgroup.subtree_control" &&
           ! echo +memory >"$CG_ROOT/cgroup.subtree_control" 2>/dev/null; then
            CG_WHY="cannot enable the memory controller in $CG_ROOT/cgroup.subtree_control"
            return 1
        fi
        return 0
    fi
    if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
        CG_VERSION=1
        CG_ROOT=/sys/fs/cgroup/memory
        return 0
    fi
    CG_WHY="no memory cgroup (neither v2 /sys/fs/cgroup/cgroup.controllers nor v1 /sys/fs/cgroup/memory)"
    return 1
}

cg_create () {
    local name=$1 limit=$2 cg
    [ -n "${CG_ROOT:-}" ] || cg_detect || return 1
    cg=$CG_ROOT/$name
    mkdir "$cg" || return 1
    if [ "$CG_VERSION" = 2 ]; then
        echo "$limit" >"$cg/memory.max" &&
            echo max >"$cg/memory.swap.max" || { rmdir "$cg"; return 1; }
    else
        echo "$limit" >"$cg/memory.limit_in_bytes" || { rmdir "$cg"; return 1; }
    fi
    echo "$cg"
}

cg_exec () {
    local cg=$1
    shift
    if [ "$BASHPID" = "$$" ]; then
        echo "cg_exec: call it in a subshell (cg_exec CG CMD &)" >&2
        return 1
    fi
    echo "$BASHPID" >"$cg/cgroup.procs" || exit 1
    exec "$@"
}

cg_usage () {
    if [ -f "$1/memory.current" ]; then
        cat "$1/memory.current"
    else
        cat "$1/memory.usage_in_bytes"
    fi
}

cg_remove () {
    local cg=$1 i p
    [ -n "$cg" ] && [ -d "$cg" ] || return 0
    for i in $(seq 50); do
        p=$(cat "$cg/cgroup.procs" 2>/dev/null)
        [ -z "$p" ] && break
        kill -KILL $p 2>/dev/null
        sleep 0.1
    done
    # rmdir can fail for a moment after the last process is gone.
    for i in $(seq 50); do
        rmdir "$cg" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "cg_remove: cannot remove $cg" >&2
    return 1
}
