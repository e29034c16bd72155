#!/bin/bash
# ghostswap security test: a size given for an existing backing must be its
# size.
#
# backing-size= (or "backing add PATH SIZE") for a file that exists with
# another size is refused with one line naming the path and both sizes
# (it used to be ignored silently); the file keeps its size.  The file's
# own size, or none, is accepted.

. "$(dirname "$0")/lib.sh"

mkfile "$tmp/b0" 16M
refused "backing-size larger than the file" \
        "$tmp/b0 exists with 16777216 bytes, not the 33554432 bytes given" \
        backing="$tmp/b0" backing-size=32M
refused "backing-size smaller than the file" \
        "$tmp/b0 exists with 16777216 bytes, not the 8388608 bytes given" \
        backing="$tmp/b0" backing-size=8M
[ "$(stat -c %s "$tmp/b0")" -eq $((16 << 20)) ] || fail "the file's size changed"
starts "backing-size equal to the file's size" backing="$tmp/b0" backing-size=16M
starts "no backing-size" backing="$tmp/b0"

start_server
ctl_refused "backing add with another size" \
            "backing add: backing: $tmp/b0 exists with 16777216 bytes, not the 4194304 bytes given" \
            backing add "$tmp/b0" 4M
ctl_ok backing add "$tmp/b0" 16M
say "ok"
