#!/bin/bash
# The Debian package's prerm (packaging/debian/ghostswap.prerm) refuses
# removal while a ghostswap device is active swap, and only then: run
# with fake /proc and /sys trees that the system-sleep hook reads (as in
# test-sleep-hook.sh).  `remove` fails (exit 1, the device named) while
# /dev/loop7 over a ghostswapd mount is swap; upgrades go on;
# GHOSTSWAP_FORCE_REMOVE=1 removes with a warning; with only disk swap,
# removal goes on.  No privileges, no real swap.
#
# Environment: SOURCE_ROOT (the source tree; default: two levels up).
# shellcheck disable=SC2015  # pass never fails: A && pass || fail is fine
set -uo pipefail

prog=$(basename "$0")
src=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
prerm=$src/packaging/debian/ghostswap.prerm
hook=$src/packaging/systemd/system-sleep/ghostswap
failures=0
fail () { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass () { echo "ok: $*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-prerm-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
proc=$tmp/proc sys=$tmp/sys
mkdir -p "$proc/self" "$sys/block/loop7/loop" "$sys/block/sda"
cat > "$proc/self/mountinfo" <<'EOF2'
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755
50 30 0:45 / /run/ghostswap/swap0 rw,nosuid,nodev,relatime shared:30 - fuse.ghostswap ghostswap rw,user_id=0,group_id=0,default_permissions
EOF2
echo /run/ghostswap/swap0/swap > "$sys/block/loop7/loop/backing_file"
header="Filename				Type		Size		Used		Priority"
disk="/dev/sda2                               partition	8388604		0		-2"
ghost="/dev/loop7                              partition	16777212	1024		100"
export GHOSTSWAP_PROC=$proc GHOSTSWAP_SYS=$sys GHOSTSWAP_SLEEP_HOOK=$hook
export GHOSTSWAP_SLEEP_CONF=$tmp/sleep.conf
: > "$GHOSTSWAP_SLEEP_CONF"
unset GHOSTSWAP_FORCE_REMOVE

# prerm ARGS... - run it with sh, as dpkg does; $out, $rc.  The
# #DEBHELPER# line is a comment until dh_installdeb fills it in.
prerm () {
    out=$(sh "$prerm" "$@" 2>&1)
    rc=$?
}

printf '%s\n' "$header" "$disk" "$ghost" > "$proc/swaps"
prerm remove
[[ $rc == 1 && $out == *"refusing to be removed"* && $out == *"/dev/loop7"* ]] &&
    pass "remove while /dev/loop7 is ghostswap swap: refused" ||
    fail "remove while in use: exit $rc: $out"
prerm deconfigure
[[ $rc == 1 ]] && pass "deconfigure while in use: refused" || fail "deconfigure: exit $rc: $out"
prerm upgrade 0.1.1-1
[[ $rc == 0 && -z $out ]] && pass "upgrade while in use: goes on" || fail "upgrade: exit $rc: $out"
GHOSTSWAP_FORCE_REMOVE=1 prerm remove
[[ $rc == 0 && $out == *"removing although in use"* ]] &&
    pass "GHOSTSWAP_FORCE_REMOVE=1: removed, with a warning" || fail "forced remove: exit $rc: $out"

printf '%s\n' "$header" "$disk" > "$proc/swaps"
prerm remove
[[ $rc == 0 && -z $out ]] && pass "remove with only disk swap: goes on" || fail "remove, not in use: exit $rc: $out"

sh -n "$prerm" || fail "$prerm: syntax error"
if command -v shellcheck >/dev/null; then
    shellcheck -s sh "$prerm" || fail "shellcheck $prerm"
fi
if ((failures > 0)); then
    echo "$prog: $failures check(s) failed" >&2
    exit 1
fi
echo "$prog: all checks passed"
