#!/bin/bash
# ghostswap security test: no backing through a symbolic link.
#
# A local user who can create a name the administrator will pass to
# backing= (a shared directory, a predictable name) must not be able to
# point it at a file or device of their choice.  Refused, at start-up and
# by "backing add", with one line naming the path and the link:
#  - a symbolic link as the last component (to an existing file: the file
#    is left unchanged);
#  - a dangling symbolic link with a size (its target is not created);
#  - a symbolic link as a directory component, to an existing file and to
#    a file that would be created (not created);
# while the same files named without the link are accepted.

. "$(dirname "$0")/lib.sh"

mkdir "$tmp/real"
mkfile "$tmp/real/b0" 16M
sum=$(md5sum <"$tmp/real/b0")
ln -s real/b0 "$tmp/link"
ln -s real "$tmp/dirlink"
ln -s real/new-by-link "$tmp/dangling"

refused "last component a symlink" "$tmp/link.*symbolic link" \
        backing="$tmp/link"
unchanged "$tmp/real/b0" "$sum"
refused "dangling symlink with a size" "$tmp/dangling.*symbolic link" \
        backing="$tmp/dangling" backing-size=16M
[ ! -e "$tmp/real/new-by-link" ] || fail "the target of a dangling link was created"
refused "a directory component a symlink" "$tmp/dirlink/b0.*$tmp/dirlink is a symbolic link" \
        backing="$tmp/dirlink/b0"
unchanged "$tmp/real/b0" "$sum"
refused "a new file under a symlinked directory" "$tmp/dirlink is a symbolic link" \
        backing="$tmp/dirlink/new" backing-size=16M
[ ! -e "$tmp/real/new" ] || fail "a file was created through a symlinked directory"

# The same through the control socket.
start_server
ctl_refused "backing add through a symlink" "backing add: backing: $tmp/link.*symbolic link" \
            backing add "$tmp/link"
ctl_refused "backing add through a symlinked directory" "$tmp/dirlink is a symbolic link" \
            backing add "$tmp/dirlink/new" 16M
[ ! -e "$tmp/real/new" ] || fail "backing add created a file through a symlinked directory"
unchanged "$tmp/real/b0" "$sum"

# Positive controls: the real names are accepted; and a migration to a
# dangling link is refused.
ctl_ok backing add "$tmp/real/b0"
ctl_refused "migrate to a dangling symlink" "migrate: backing: $tmp/dangling.*symbolic link" \
            migrate "$tmp/real/b0" "$tmp/dangling" 16M
[ ! -e "$tmp/real/new-by-link" ] || fail "migrate created the target of a dangling link"
ctl_ok backing remove "$tmp/real/b0"
ctl_ok backing add "$tmp/real/new" 16M
[ -f "$tmp/real/new" ] || fail "backing add did not create $tmp/real/new"
say "ok"
