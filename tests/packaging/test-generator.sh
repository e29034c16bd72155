#!/bin/bash
# ghostswap-generator: units from /etc/ghostswap/ghostswap.conf and its
# drop-ins, in a scratch root (GHOSTSWAP_GENERATOR_ROOT).  Checks what it
# writes for good sections (fuse and nbd frontends, drop-in overrides,
# priority and discard, the wants links of swap.target), what it says
# about bad ones (each message naming the file, line, section and key;
# exit status 1; the good sections still generated, the bad ones not), and
# that `systemd-analyze verify` finds nothing to say about the units
# (against the system's own units, with stubs for the programs they run),
# which includes ordering cycles with swap.target.  No privileges.
#
# Environment: GENERATOR (the built ghostswap-generator), SOURCE_ROOT.
set -uo pipefail

prog=$(basename "$0")
skip () { echo "$prog: skipped: $*"; exit 77; }
failures=0
fail () { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
[[ -n ${GENERATOR:-} && -x $GENERATOR ]] || skip "GENERATOR is not set (run through meson test)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-generator-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# generate NAME - run the generator on $tmp/NAME/root into $tmp/NAME/out;
# exit status in $rc, messages in $tmp/NAME/err.
generate () {
    local t=$tmp/$1
    rm -rf "$t/out"
    mkdir -p "$t/out"
    rc=0
    GHOSTSWAP_GENERATOR_ROOT=$t/root "$GENERATOR" "$t/out" "$t/out.early" "$t/out.late" \
        >"$t/stdout" 2>"$t/err" || rc=$?
    out=$t/out
    err=$t/err
}
conf () {                       # conf NAME FILE: stdin to its config file
    mkdir -p "$(dirname "$tmp/$1/root/etc/ghostswap/$2")"
    cat >"$tmp/$1/root/etc/ghostswap/$2"
}
has () {                        # has FILE REGEX
    grep -qE -- "$2" "$1" || { fail "${1##*/} lacks /$2/"; sed 's/^/    /' "$1" >&2 2>/dev/null; }
}
hasnt () {
    ! grep -qE -- "$2" "$1" || fail "${1##*/} has /$2/"
}

# --- No configuration: nothing, quietly. ---
mkdir -p "$tmp/none/root"
generate none
((rc == 0)) || fail "no configuration: exit status $rc"
[[ -z $(ls -A "$out") && ! -s $err ]] || fail "no configuration: $(ls "$out") $(cat "$err")"

# --- Good sections. ---
conf good ghostswap.conf <<'EOF2'
# Two devices.
[swap0]
size = 16G
ram-limit = 64M
backing = /var/lib/ghostswap/swap0.b0
backing-size = 1G

; the nbd one
[net]
frontend=nbd
size=8G
priority=50
discard=once
EOF2
conf good ghostswap.conf.d/50-bigger.conf <<'EOF2'
[swap0]
size = 32G
backing = /var/lib/ghostswap/swap0.b1
backing = /srv/swap/swap0.b2
[fast]
size = 1G
ram-limit = 32M
discard = no
priority = 200
fuse-uring = yes
EOF2
conf good ghostswap.conf.d/README <<'EOF2'
not a .conf file: ignored
EOF2
generate good
((rc == 0)) || fail "good configuration: exit status $rc"
[[ ! -s $err ]] || { fail "good configuration: messages:"; cat "$err" >&2; }
for u in ghostswap@swap0.service ghostswap-swapon@swap0.service \
         ghostswap@fast.service ghostswap-swapon@fast.service \
         ghostswap@net.service ghostswap-connect@net.service dev-nbd0.swap; do
    [[ -f $out/$u ]] || fail "no $u"
done
for u in ghostswap-swapon@swap0.service ghostswap-swapon@fast.service dev-nbd0.swap; do
    [[ $(readlink "$out/swap.target.wants/$u") == "../$u" ]] || fail "swap.target does not want $u"
done
[[ -z $(ls -A "$tmp/good/out.early" "$tmp/good/out.late" 2>/dev/null) ]] || fail "wrote to the early or late directory"
s=$out/ghostswap@swap0.service
has "$s" '^ExecStart=/[^ ]*/ghostswapd --foreground --control /run/ghostswap/swap0\.sock /run/ghostswap/swap0 ram-limit=64M backing-size=1G size=32G backing=/var/lib/ghostswap/swap0\.b1 backing=/srv/swap/swap0\.b2$'
hasnt "$s" 'size=16G|swap0\.b0'
has "$s" '^DefaultDependencies=no$'
has "$s" '^Before=ghostswap-swapon@swap0\.service swap\.target shutdown\.target$'
has "$s" '^RequiresMountsFor=/srv/swap/swap0\.b2$'
has "$s" '^Type=notify$'
has "$s" '^SendSIGKILL=no$'
has "$s" '^SourcePath=/etc/ghostswap/ghostswap\.conf$'
s=$out/ghostswap-swapon@swap0.service
has "$s" '^BindsTo=ghostswap@swap0\.service$'
has "$s" '^Before=swap\.target umount\.target$'
has "$s" '^Environment=LOOP_DIRECT_IO=on SWAPON_OPTS=--discard SWAP_PRIORITY=100$'
has "$s" '^ExecStart=/[^ ]*/ghostswap-unit-helper loop-start swap0$'
has "$out/ghostswap-swapon@fast.service" '^Environment=LOOP_DIRECT_IO=on SWAPON_OPTS= SWAP_PRIORITY=200$'
has "$out/ghostswap@fast.service" '^SourcePath=/etc/ghostswap/ghostswap\.conf\.d/50-bigger\.conf$'
# fuse-uring=yes: enable_uring on before the daemon (a failure only
# logged: the daemon then serves over /dev/fuse); not a key of the daemon.
has "$out/ghostswap@fast.service" '^ExecStartPre=-/[^ ]*/ghostswap-unit-helper fuse-uring$'
hasnt "$out/ghostswap@fast.service" '^ExecStart=.*fuse-uring'
hasnt "$out/ghostswap@swap0.service" '^ExecStartPre='
# ... and before ExecStart= in the file, after the module is loaded.
awk '/^ExecStartPre=/ { pre = NR } /^ExecStart=/ { start = NR } END { exit !(pre && pre < start) }' \
    "$out/ghostswap@fast.service" || fail "ghostswap@fast.service: ExecStartPre= not before ExecStart="
has "$out/ghostswap@fast.service" '^After=modprobe@fuse\.service$'
s=$out/ghostswap@net.service
has "$s" '^ExecStart=/[^ ]*nbdkit --foreground --swap --pidfile=/run/ghostswap/net/nbdkit\.pid --unix=/run/ghostswap/net/nbd\.sock ghostswap control=/run/ghostswap/net\.sock size=8G$'
hasnt "$s" 'frontend|priority|discard'
has "$out/ghostswap-connect@net.service" '^Environment=NBD_DEVICE=/dev/nbd0$'
has "$out/ghostswap-connect@net.service" 'nbd-connect net$'
has "$out/dev-nbd0.swap" '^What=/dev/nbd0$'
has "$out/dev-nbd0.swap" '^Priority=50$'
has "$out/dev-nbd0.swap" '^Options=discard=once$'
has "$out/dev-nbd0.swap" '^BindsTo=ghostswap-connect@net\.service$'
echo "$prog: ok: good sections: $(cd "$out" && ls | tr '\n' ' ')"

# --- Bad sections: each named, skipped; the others still generated. ---
conf bad ghostswap.conf <<'EOF2'
[ok1]
size = 1G

[unknown]
size = 1G
frob = 1

[badsize]
size = 12X

[ctl]
control = /tmp/x.sock
name = other

[fe]
frontend = ublk

[prio]
priority = 40000

[wb]
writeback-low = 90
writeback-high = 80

[space]
backing = /var/lib/a b

[a b]
size = 1G

[nbd1]
frontend = nbd
[nbd2]
frontend = nbd
nbd-device = /dev/nbd0
[nbd3]
nbd-device = /dev/nbd7

[uring1]
fuse-uring = maybe
[uring2]
frontend = nbd
fuse-uring = yes

[syntax]
this line has no equals sign
EOF2
conf bad ghostswap.conf.d/10-more.conf <<'EOF2'
size = 1G
[twice]
size = 1G
size = 2G
ram-limit = 100000G
backing-size = 1G
EOF2
generate bad
((rc == 1)) || fail "bad configuration: exit status $rc, expected 1"
has "$err" '^ghostswap-generator: /etc/ghostswap/ghostswap\.conf:6: \[unknown\] frob: unknown key \(see ghostswap\.conf\(5\)\)$'
has "$err" "^ghostswap-generator: /etc/ghostswap/ghostswap\.conf:9: \[badsize\] size: '12X' is not a size"
has "$err" '/etc/ghostswap/ghostswap\.conf:12: \[ctl\] control: not allowed here'
has "$err" '/etc/ghostswap/ghostswap\.conf:13: \[ctl\] name: not allowed here'
has "$err" "\[fe\] frontend: 'ublk' is not fuse or nbd"
has "$err" "\[prio\] priority: '40000' is not a swap priority"
has "$err" '\[wb\] writeback-low: 90% must be below writeback-high \(80%\)'
has "$err" '\[a b\]: not a device name'
has "$err" "ghostswap\.conf:26: \[space\] backing: '/var/lib/a b': white space, quotes and backslashes are not allowed"
has "$err" '\[nbd2\] nbd-device: /dev/nbd0 is \[nbd1\].s already: skipped'
has "$err" '\[nbd3\] nbd-device: only with frontend=nbd'
has "$err" "\[uring1\] fuse-uring: 'maybe' is not yes or no"
has "$err" '\[uring2\] fuse-uring: only with frontend=fuse'
has "$err" "ghostswap\.conf:46: 'this line has no equals sign': not KEY = VALUE"
has "$err" '\[syntax\]: skipped'
has "$err" 'ghostswap\.conf\.d/10-more\.conf:1: size: outside any \[NAME\] section'
has "$err" 'warning: /etc/ghostswap/ghostswap\.conf\.d/10-more\.conf:4: \[twice\] size: given more than once \(also on line 3\): the last value counts'
has "$err" 'warning: \[twice\] ram-limit: 100000G is more than this machine.s memory'
[[ -f $out/ghostswap@ok1.service && -f $out/ghostswap@twice.service && -f $out/ghostswap@nbd1.service ]] ||
    fail "the good sections of a bad configuration were not generated: $(ls "$out")"
has "$out/ghostswap@twice.service" ' size=2G '
for n in unknown badsize ctl fe prio wb space nbd2 nbd3 uring1 uring2 syntax; do
    [[ ! -e $out/ghostswap@$n.service ]] || fail "units written for the bad section [$n]"
done
[[ $(ls "$out" | grep -c '^ghostswap@') == 3 ]] || fail "units: $(ls "$out")"
echo "$prog: ok: bad sections reported:"
sed 's/^/    /' "$err"

# --- systemd-analyze verify of what was generated. ---
command -v systemd-analyze >/dev/null || skip "no systemd-analyze (package systemd): the units were not verified"
sysunits=
for d in /lib/systemd/system /usr/lib/systemd/system; do
    [[ -e $d/sysinit.target ]] && { sysunits=$d; break; }
done
[[ -n $sysunits ]] || skip "no systemd unit directory with sysinit.target"
root=$tmp/verify
mkdir -p "$root/lib/systemd" "$root/etc/systemd"
cp -a "$sysunits" "$root/lib/systemd/system"
cp -a "$tmp/good/out" "$root/etc/systemd/system"
# Stubs for every program the units run, at the paths they name.
grep -h '^Exec[A-Za-z]*=' "$root"/etc/systemd/system/*.service |
    sed 's/^[^=]*=[-@+!:]*//; s/ .*//' | sort -u |
    while read -r exe; do
        mkdir -p "$root${exe%/*}"
        printf '#!/bin/sh\nexit 0\n' >"$root$exe"
        chmod +x "$root$exe"
    done
units=$(cd "$root/etc/systemd/system" && ls -- *.service *.swap)
echo "$prog: systemd-analyze verify" $units
vout=$(cd "$root/etc/systemd/system" && systemd-analyze verify --root="$root" --man=no $units swap.target 2>&1)
vrc=$?
if ((vrc != 0)) || [[ -n $vout ]]; then
    fail "systemd-analyze verify (exit $vrc):"
    echo "$vout" >&2
else
    echo "$prog: ok: systemd-analyze verify: no message"
fi

if ((failures > 0)); then
    echo "$prog: $failures check(s) failed" >&2
    exit 1
fi
echo "$prog: all checks passed"
