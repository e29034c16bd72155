#!/bin/bash
# ghostswap security test: a backing file must be root's or the server's.
#
# An existing file owned by another user (nobody) is refused, at start-up
# and by "backing add", with one line naming the path and the owner: its
# owner could read every page swapped to it.  The same file owned by the
# server's user is accepted.  Needs root (chown).

. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root to give a file to another user"
nobody=$(id -u nobody 2>/dev/null) || skip "no user 'nobody'"

mkfile "$tmp/b0" 16M
chown nobody "$tmp/b0"
sum=$(md5sum <"$tmp/b0")
refused "a file owned by nobody" "$tmp/b0 is owned by uid $nobody" \
        backing="$tmp/b0"
unchanged "$tmp/b0" "$sum"

start_server
ctl_refused "backing add of a file owned by nobody" \
            "backing add: backing: $tmp/b0 is owned by uid $nobody" \
            backing add "$tmp/b0"

# Positive control: the same file given back to us.
chown "$(id -u)" "$tmp/b0"
ctl_ok backing add "$tmp/b0"
say "ok"
