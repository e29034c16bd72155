#!/bin/bash
# ghostswap security test: one backing file, one user.
#
# Two servers writing one file would overwrite each other's pages (and
# read the other's swapped memory as their own).  A file that another
# server uses is refused with one line naming it ("in use"); the same
# file under another name in the same server is refused as already
# attached; once the first server is gone the file is accepted.

. "$(dirname "$0")/lib.sh"

mkfile "$tmp/b0" 16M
start_server backing="$tmp/b0"
refused "a file another server uses" "$tmp/b0 is in use" backing="$tmp/b0"
ctl_refused "the same file under another name" \
            "backing add: backing: $tmp/./b0 is already attached \\(as $tmp/b0\\)" \
            backing add "$tmp/./b0"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
starts "the file once the first server is gone" backing="$tmp/b0"
say "ok"
