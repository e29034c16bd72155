# Shared by the ghostswapd tests (sourced, not run): skips with a printed
# reason, a temporary directory with a mount point, a daemon started on
# it, and a cleanup trap that runs on every exit, failures included, and
# leaves no swap area, loop device, mount or process behind.
#
# Environment: GHOSTSWAPD (the built daemon), NOTIFY_WAIT (tests/fuse's
# notify-wait helper), GS_TRANSPORT (optional: uring or dev, the FUSE
# transport every daemon started here uses; see use_transport).

prog=$(basename "$0")
log=
fail () {
    echo "$prog: test failed: $*" >&2
    if [ -n "$log" ] && [ -s "$log" ]; then
        echo "--- ghostswapd's log:" >&2
        cat "$log" >&2
    fi
    exit 1
}
skip () { echo "$prog: skipped: $*"; exit 77; }

# require_fuse - root, /dev/fuse, the daemon.
require_fuse () {
    [ "$(id -u)" = 0 ] ||
        skip "not root (mounting, loop devices and swapon need root)"
    [ -c /dev/fuse ] || skip "no /dev/fuse"
    grep -qw fuse /proc/filesystems || skip "the kernel has no FUSE"
    [ -n "${GHOSTSWAPD:-}" ] || skip "GHOSTSWAPD is not set (run through meson test)"
    [ -x "$GHOSTSWAPD" ] || skip "$GHOSTSWAPD not found"
}

# require_loop_swap - loop devices and the swap tools.
require_loop_swap () {
    local p
    for p in losetup mkswap swapon swapoff; do
        command -v $p >/dev/null || skip "no $p"
    done
    [ -e /dev/loop-control ] || skip "no loop device support (/dev/loop-control)"
    losetup -f >/dev/null 2>&1 || skip "no free loop device"
}

# has_cap N - is capability number N in this shell's effective set?  (The
# daemon, run from here as root, has the same.)
has_cap () {
    local eff
    eff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
    [ -n "$eff" ] && (( (16#$eff >> $1) & 1 ))
}
CAP_IPC_LOCK=14
CAP_SYS_RESOURCE=24

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswapd-test-XXXXXX")
tmp=$(realpath "$tmp")
mnt=$tmp/mnt
mkdir "$mnt"
log=$tmp/daemon.log
pid=
loop=
swapped=
uring_param=/sys/module/fuse/parameters/enable_uring
declare -A saved_params         # kernel parameter file -> value found

# set_param FILE VALUE - write VALUE to a kernel parameter file; the
# cleanup trap puts back the value found first.
set_param () {
    [ -n "${saved_params[$1]+set}" ] || saved_params[$1]=$(cat "$1") ||
        fail "cannot read $1"
    echo "$2" >"$1" || fail "cannot write $2 to $1"
}

# set_uring_param Y|N - set the fuse module's enable_uring parameter.
set_uring_param () {
    [ -w "$uring_param" ] ||
        skip "no writable $uring_param (kernel without FUSE over io_uring?)"
    set_param "$uring_param" "$1"
}

# use_transport - from GS_TRANSPORT: for uring, turn enable_uring on;
# start_daemon then passes --transport=GS_TRANSPORT.
use_transport () {
    case ${GS_TRANSPORT:-} in
        '') ;;
        uring) set_uring_param Y ;;
        dev) ;;
        *) fail "GS_TRANSPORT='$GS_TRANSPORT' is not uring or dev" ;;
    esac
}

# expect_transport - the daemon serves over GS_TRANSPORT, if set (the
# stats file says which).
expect_transport () {
    local t
    [ -n "${GS_TRANSPORT:-}" ] || return 0
    t=$(awk '$1 == "fuse_transport" { print $2 }' "$mnt/stats")
    [ "$t" = "$GS_TRANSPORT" ] ||
        fail "served over '$t', not over $GS_TRANSPORT"
    echo "ok: the daemon serves over $GS_TRANSPORT"
}

# is_mounted - is our ghostswap mount there?
is_mounted () {
    grep -q " $mnt fuse.ghostswap " /proc/mounts
}

cleanup () {
    local rc=$? i
    set +e
    trap '' INT TERM HUP
    if [ -n "$swapped" ]; then
        swapoff "$loop" || echo "$prog: cleanup: swapoff $loop failed" >&2
    fi
    if [ -n "$loop" ]; then
        losetup -d "$loop" || echo "$prog: cleanup: losetup -d $loop failed" >&2
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -QUIT "$pid"           # forced stop: nothing swaps there now
        for i in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    # /proc/mounts, not mountpoint(1): a dead FUSE mount fails stat.
    if is_mounted; then
        fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt"
    fi
    rm -rf --one-file-system "$tmp"
    for i in "${!saved_params[@]}"; do
        echo "${saved_params[$i]}" >"$i" ||
            echo "$prog: cleanup: cannot restore $i to ${saved_params[$i]}" >&2
    done
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# start_daemon ARGS... - start ghostswapd in the foreground with -v and a
# control socket in $tmp, MOUNTPOINT and keys from ARGS; wait until it is
# mounted.  Sets $pid.
start_daemon () {
    local i
    "$GHOSTSWAPD" -v --control "$tmp/ctl.sock" \
        ${GS_TRANSPORT:+--transport="$GS_TRANSPORT"} "$@" >"$log" 2>&1 </dev/null &
    pid=$!
    for i in $(seq 200); do
        is_mounted && return 0
        kill -0 "$pid" 2>/dev/null || fail "ghostswapd exited at start"
        sleep 0.05
    done
    fail "ghostswapd did not mount $mnt within 10 s"
}

# wait_exit SECONDS - wait for the daemon to exit; sets $status and
# clears $pid.  Fails if it is still running after SECONDS.
wait_exit () {
    local i
    for i in $(seq $(( $1 * 10 ))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            status=0
            wait "$pid" || status=$?
            pid=
            return 0
        fi
        sleep 0.1
    done
    fail "ghostswapd still runs $1 s after the signal"
}

# task_flags PID TID - field 9 (flags) of /proc/PID/task/TID/stat.
task_flags () {
    local s
    s=$(cat "/proc/$1/task/$2/stat") || return 1
    s=${s##*) }                 # after the command name, which may hold spaces
    set -- $s
    echo "$7"
}
