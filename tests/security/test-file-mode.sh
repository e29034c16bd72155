#!/bin/bash
# ghostswap security test: nobody else may read a backing file.
#
# An existing file with any group or other permission bit (0640, 0604,
# 0620, 0660, 0644), or with a second hard link (another name, perhaps in
# a place others can read, or a file that matters), is refused at start-up
# and by "backing add" with one line naming the path and the mode; the
# same file with mode 0600 and one name is accepted.  (A file ghostswap
# creates is 0600: tests/backing/test-bad-backing.)

. "$(dirname "$0")/lib.sh"

mkfile "$tmp/b0" 16M
for mode in 640 604 620 660 644; do
    chmod "$mode" "$tmp/b0"
    refused "mode 0$mode" "$tmp/b0 has mode 0$mode" backing="$tmp/b0"
done
chmod 600 "$tmp/b0"
ln "$tmp/b0" "$tmp/b0-other-name"
refused "a second hard link" "$tmp/b0 has 2 hard links" backing="$tmp/b0"
rm "$tmp/b0-other-name"
starts "mode 0600, one name" backing="$tmp/b0"

start_server
chmod 644 "$tmp/b0"
ctl_refused "backing add of a mode 0644 file" "backing add: backing: $tmp/b0 has mode 0644" \
            backing add "$tmp/b0"
chmod 600 "$tmp/b0"
ctl_ok backing add "$tmp/b0"
say "ok"
