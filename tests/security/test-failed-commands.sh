#!/bin/bash
# ghostswap security test: a failed command leaves nothing behind.
#  - "backing add NEW 100" (smaller than a slot) fails and NEW does not
#    exist afterwards;
#  - "migrate A B 16M" with A not attached fails and does not create B;
#  - a start (nbdkit, and ghostswapd if built) that fails at its second
#    backing removes the first backing file it created;
#  - control=DIR/no/such/dir/c.sock is an error (one line naming it) and
#    creates no directory;
# while the same commands done right do create what they should.

. "$(dirname "$0")/lib.sh"

refused "control socket in a missing directory" \
        "$tmp/no/such/dir/c.sock.*does not exist" \
        control="$tmp/no/such/dir/c.sock"
[ ! -e "$tmp/no" ] || fail "control= created $tmp/no"

mkfile "$tmp/b1" 16M 644
refused "second backing refused" "$tmp/b1 has mode 0644" \
        backing="$tmp/new0" backing="$tmp/b1" backing-size=16M
[ ! -e "$tmp/new0" ] || fail "a failed start left the backing file it created ($tmp/new0)"
if [ -n "${GHOSTSWAPD:-}" ] && [ -x "$GHOSTSWAPD" ]; then
    mkdir "$tmp/mnt"
    status=0
    timeout 60 "$GHOSTSWAPD" --control none "$tmp/mnt" size=64M \
            backing="$tmp/new0" backing="$tmp/b1" backing-size=16M \
            >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
    [ "$status" -eq 1 ] || { cat "$tmp/err" >&2; fail "ghostswapd with a refused backing: exit status $status, expected 1"; }
    grep -q "error.*$tmp/b1 has mode 0644" "$tmp/err" || { cat "$tmp/err" >&2; fail "ghostswapd: no error naming $tmp/b1"; }
    [ ! -e "$tmp/new0" ] || fail "a failed ghostswapd start left the backing file it created ($tmp/new0)"
    say "ghostswapd start refused at its second backing: nothing left"
else
    say "GHOSTSWAPD not set: the ghostswapd start case is not run"
fi
rm "$tmp/b1"

start_server
ctl_refused "backing add smaller than a slot" "backing add: backing: $tmp/new" \
            backing add "$tmp/new" 100
[ ! -e "$tmp/new" ] || fail "a failed backing add left $tmp/new behind"

ctl_refused "migrate from a backing not attached" "migrate: $tmp/a is not attached" \
            migrate "$tmp/a" "$tmp/b" 16M
[ ! -e "$tmp/b" ] || fail "a failed migrate created its target $tmp/b"

# Positive controls: done right, they create what they should.
ctl_ok backing add "$tmp/a" 16M
[ -f "$tmp/a" ] || fail "backing add did not create $tmp/a"
ctl_ok migrate "$tmp/a" "$tmp/b" 16M
[ -f "$tmp/b" ] || fail "migrate did not create $tmp/b"
say "ok"
