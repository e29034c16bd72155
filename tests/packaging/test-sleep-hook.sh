#!/bin/bash
# The system-sleep hook (packaging/systemd/system-sleep/ghostswap) on fake
# /proc and /sys trees: which swap areas it counts as ghostswap, that it
# refuses hibernation (and only hibernation) while one is active, that it
# kills a parent systemd-sleep when it refuses (and not otherwise), and the
# swapoff policy with fake swapoff/swapon commands.  Needs no privileges
# and touches no real swap.
#
# Environment: SOURCE_ROOT (the source tree; default: two levels up).
# shellcheck disable=SC2015  # pass never fails: A && pass || fail is fine
set -uo pipefail

prog=$(basename "$0")
src=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
hook=$src/packaging/systemd/system-sleep/ghostswap
[[ -x $hook ]] || { echo "$prog: $hook not found or not executable" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-sleep-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failures=0
fail () { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass () { echo "ok: $*"; }

proc=$tmp/proc sys=$tmp/sys
mkdir -p "$proc/self" "$sys/block/loop7/loop" "$sys/block/loop8/loop" \
         "$sys/block/loop9/loop" "$sys/block/sda"
cat > "$proc/self/mountinfo" <<'EOF'
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755
50 30 0:45 / /run/ghostswap/swap0 rw,nosuid,nodev,relatime shared:30 - fuse.ghostswap ghostswap rw,user_id=0,group_id=0,default_permissions
51 22 0:46 / /mnt/nbd\040fuse rw,nosuid,nodev shared:31 - fuse.nbdfuse nbdfuse rw,user_id=0,group_id=0
52 22 0:47 / /mnt/sshfs rw,nosuid,nodev shared:32 - fuse.sshfs host:/ rw,user_id=0,group_id=0
EOF
echo /run/ghostswap/swap0/swap > "$sys/block/loop7/loop/backing_file"
echo "/mnt/nbd fuse/swap" > "$sys/block/loop8/loop/backing_file"
echo "/mnt/sshfs/swapfile (deleted)" > "$sys/block/loop9/loop/backing_file"

header="Filename				Type		Size		Used		Priority"
# swaps LINE... - write the fake /proc/swaps.
swaps () {
    { echo "$header"; printf '%s\n' "$@"; } > "$proc/swaps"
}
disk="/dev/sda2                               partition	8388604		0		-2"
ghost="/dev/loop7                              partition	16777212	1024		10"
nbdf="/dev/loop8                              partition	1048572		0		-3"
other_fuse="/dev/loop9                              partition	1048572		0		-4"
nbd="/dev/nbd0                               partition	1048572		0		-5"
file_on_ghost="/run/ghostswap/swap0/swap               file		1048572		0		-6"

export GHOSTSWAP_PROC=$proc GHOSTSWAP_SYS=$sys
export GHOSTSWAP_SLEEP_CONF=$tmp/sleep.conf GHOSTSWAP_STATE=$tmp/state
unset SYSTEMD_SLEEP_ACTION JOURNAL_STREAM
: > "$GHOSTSWAP_SLEEP_CONF"

# run ARGS... - run the hook; sets $out (stdout+stderr) and $rc.
run () {
    out=$("$hook" "$@" 2>&1)
    rc=$?
}

# expect_check RC PATTERN DESCRIPTION
expect_check () {
    run check
    if [[ $rc != "$1" ]]; then
        fail "$3: check exited $rc, expected $1: $out"
    elif [[ -n $2 && $out != *"$2"* ]]; then
        fail "$3: check said '$out', expected '$2'"
    else
        pass "$3"
    fi
}

# 1. Which swap areas are ghostswap.
swaps "$disk"
expect_check 0 "no ghostswap device" "a disk partition is not ghostswap"
swaps "$disk" "$ghost"
expect_check 1 "/dev/loop7: a loop device over /run/ghostswap/swap0/swap, served by ghostswapd" \
    "a loop device over a fuse.ghostswap mount is"
swaps "$file_on_ghost"
expect_check 1 "served by ghostswapd" "a swap file on a ghostswapd mount is"
swaps "$other_fuse"
expect_check 0 "" "a loop device over another FUSE file system (sshfs) is not"
swaps "$nbdf" "$nbd"
expect_check 0 "" "nbd and nbdfuse without a local nbdkit ghostswap are not (auto)"
mkdir -p "$proc/4242"
printf 'nbdkit\0--swap\0-U\0/run/gs.sock\0ghostswap\0size=16G\0' > "$proc/4242/cmdline"
mkdir -p "$proc/4343"
printf 'bash\0ghostswap\0' > "$proc/4343/cmdline"
expect_check 1 "/dev/nbd0: an NBD device, and a ghostswap server runs here" \
    "nbd is, with a local nbdkit ghostswap running"
[[ $out == *"/dev/loop8: a loop device over /mnt/nbd fuse/swap (nbdfuse)"* ]] &&
    pass "nbdfuse mount point with an escaped space" ||
    fail "nbdfuse with a local nbdkit ghostswap: $out"
printf '/usr/bin/nbdkit\0-U\0/tmp/s\0/usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-ghostswap-plugin.so\0' \
    > "$proc/4242/cmdline"
expect_check 1 "an NBD device" "nbdkit given the plugin's path counts too"
printf 'nbdkit\0memory\0size=1G\0' > "$proc/4242/cmdline"
expect_check 0 "" "nbdkit with another plugin does not"
echo NBD_IS_GHOSTSWAP=yes > "$GHOSTSWAP_SLEEP_CONF"
swaps "$nbd"
expect_check 1 "/dev/nbd0" "NBD_IS_GHOSTSWAP=yes (diskless client)"
printf 'nbdkit\0ghostswap\0' > "$proc/4242/cmdline"
echo NBD_IS_GHOSTSWAP=no > "$GHOSTSWAP_SLEEP_CONF"
expect_check 0 "" "NBD_IS_GHOSTSWAP=no"
: > "$GHOSTSWAP_SLEEP_CONF"
rm -rf "$proc/4242" "$proc/4343"

# 2. Which operations are refused.
swaps "$disk" "$ghost"
run pre suspend
[[ $rc == 0 ]] && pass "pre suspend is allowed" || fail "pre suspend exited $rc: $out"
for op in hibernate hybrid-sleep suspend-then-hibernate; do
    run pre "$op"
    if [[ $rc == 1 && $out == *"refusing to $op: /dev/loop7 is active swap on ghostswap"* ]]; then
        pass "pre $op is refused"
    else
        fail "pre $op exited $rc: $out"
    fi
done
SYSTEMD_SLEEP_ACTION=suspend run pre suspend-then-hibernate
[[ $rc == 0 ]] && pass "the suspend step of suspend-then-hibernate is allowed" ||
    fail "s-t-h, action suspend: exited $rc: $out"
SYSTEMD_SLEEP_ACTION=hibernate run pre suspend-then-hibernate
[[ $rc == 1 ]] && pass "the hibernate step of suspend-then-hibernate is refused" ||
    fail "s-t-h, action hibernate: exited $rc: $out"
run post hibernate
[[ $rc == 0 ]] && pass "post is a no-op without state" || fail "post exited $rc: $out"
swaps "$disk"
run pre hibernate
[[ $rc == 0 ]] && pass "hibernation without ghostswap is allowed" ||
    fail "pre hibernate without ghostswap exited $rc: $out"

# 3. Under a (fake) systemd-sleep: refusing kills it, allowing does not.
# comm of a script is its file name: "systemd-sleep".
mkdir -p "$tmp/bin"
cat > "$tmp/bin/systemd-sleep" <<EOF
#!/bin/bash
# Like systemd-sleep: hooks run in a child named (sd-executor), then the
# state is written.
( printf '(sd-executor)' > /proc/\$BASHPID/comm
  "$hook" pre hibernate; echo \$? > "$tmp/hook.rc" )
echo written > "$tmp/state-written"
EOF
chmod +x "$tmp/bin/systemd-sleep"
sleep_run () {
    rm -f "$tmp/hook.rc" "$tmp/state-written"
    # (In a subshell, so that bash reports no "Killed" here.)
    ( "$tmp/bin/systemd-sleep" > "$tmp/sleep.out" 2>&1 )
    sleep_rc=$?
    for _ in $(seq 50); do [[ -e $tmp/hook.rc ]] && break; sleep 0.1; done
}
swaps "$disk" "$ghost"
sleep_run
if [[ $sleep_rc == 137 && ! -e $tmp/state-written && $(cat "$tmp/hook.rc" 2>/dev/null) == 1 ]] &&
   grep -q "stopping systemd-sleep (PID" "$tmp/sleep.out"; then
    pass "refusing kills systemd-sleep before it writes the state"
else
    fail "under systemd-sleep: rc $sleep_rc, hook rc $(cat "$tmp/hook.rc" 2>/dev/null)," \
         "state written: $([[ -e $tmp/state-written ]] && echo yes || echo no); $(cat "$tmp/sleep.out")"
fi
swaps "$disk"
sleep_run
if [[ $sleep_rc == 0 && -e $tmp/state-written ]]; then
    pass "without ghostswap, systemd-sleep goes on"
else
    fail "without ghostswap: systemd-sleep rc $sleep_rc; $(cat "$tmp/sleep.out")"
fi
run pre hibernate     # not under systemd-sleep: must not kill our shell
[[ $rc == 0 ]] && pass "by hand, nothing is killed" || fail "by hand: $rc $out"

# 4. HIBERNATE_POLICY=swapoff, with fake swapoff/swapon that log.
cat > "$tmp/bin/fake-swapoff" <<EOF
#!/bin/bash
echo "swapoff \$*" >> "$tmp/calls"
[[ " \$* " != *" \${FAIL_SWAPOFF:-none} "* ]]
EOF
cat > "$tmp/bin/fake-swapon" <<EOF
#!/bin/bash
echo "swapon \$*" >> "$tmp/calls"
EOF
chmod +x "$tmp/bin/fake-swapoff" "$tmp/bin/fake-swapon"
export GHOSTSWAP_SWAPOFF=$tmp/bin/fake-swapoff GHOSTSWAP_SWAPON=$tmp/bin/fake-swapon
echo HIBERNATE_POLICY=swapoff > "$GHOSTSWAP_SLEEP_CONF"
ghost2="/dev/loop8                              partition	1048572		0		-3"
swaps "$disk" "$ghost"
rm -f "$tmp/calls"
run pre hibernate
if [[ $rc == 0 && $(cat "$tmp/calls") == "swapoff /dev/loop7" ]] &&
   grep -q "^/dev/loop7	10$" "$GHOSTSWAP_STATE"; then
    pass "swapoff policy: swaps off the ghostswap device, keeps its priority"
else
    fail "swapoff policy: rc $rc, calls $(cat "$tmp/calls" 2>/dev/null): $out"
fi
rm -f "$tmp/calls"
run post hibernate
if [[ $rc == 0 && $(cat "$tmp/calls") == "swapon --discard --priority 10 /dev/loop7" && ! -e $GHOSTSWAP_STATE ]]; then
    pass "swapoff policy: swapped on again after resume"
else
    fail "post after swapoff: rc $rc, calls $(cat "$tmp/calls" 2>/dev/null): $out"
fi
# Two devices (loop8 over nbdfuse counts with NBD_IS_GHOSTSWAP=yes), the
# second swapoff fails: the first is swapped on again, and it refuses.
echo NBD_IS_GHOSTSWAP=yes >> "$GHOSTSWAP_SLEEP_CONF"
swaps "$disk" "$ghost" "$ghost2"
rm -f "$tmp/calls"
FAIL_SWAPOFF=/dev/loop8 run pre hibernate
expected="swapoff /dev/loop7
swapoff /dev/loop8
swapon --discard --priority 10 /dev/loop7"
if [[ $rc == 1 && $(cat "$tmp/calls") == "$expected" && $out == *"swapoff of /dev/loop8 failed"* ]]; then
    pass "swapoff policy: a failed swapoff undoes the others and refuses"
else
    fail "failed swapoff: rc $rc, calls: $(cat "$tmp/calls" 2>/dev/null); $out"
fi

if ((failures > 0)); then
    echo "$prog: $failures check(s) failed" >&2
    exit 1
fi
echo "$prog: all checks passed"
