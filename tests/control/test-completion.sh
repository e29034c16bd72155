#!/bin/bash
# The bash completion of ghostswapctl (packaging/bash-completion): what it
# offers after each kind of word, computed by bash itself from the file
# as installed (sourced, then called as `complete -F` would).  Device
# names come from a scratch GHOSTSWAP_RUNDIR holding two real Unix
# sockets and a plain file that is not one.  No server needed.
#
# Environment: SOURCE_ROOT (the source tree; default: two levels up).
set -uo pipefail

prog=$(basename "$0")
src=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
comp=$src/packaging/bash-completion/ghostswapctl
failures=0
fail () { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
command -v python3 >/dev/null || { echo "$prog: skipped: no python3 (to make sockets)"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-completion-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/run" "$tmp/files"
python3 -c 'import socket,sys
for p in sys.argv[1:]:
    socket.socket(socket.AF_UNIX).bind(p)' "$tmp/run/swap0.sock" "$tmp/run/vm1.sock"
: > "$tmp/run/notasocket.sock"
: > "$tmp/files/b0.img"
export GHOSTSWAP_RUNDIR=$tmp/run

# shellcheck source=packaging/bash-completion/ghostswapctl
. "$comp"
[[ $(complete -p ghostswapctl) == "complete -F _ghostswapctl ghostswapctl" ]] ||
    fail "not registered: $(complete -p ghostswapctl 2>&1)"

# offers EXPECTED WORDS... - complete the last of WORDS (the line typed so
# far); COMPREPLY, sorted and joined by spaces, must be EXPECTED.
offers () {
    local want=$1
    shift
    COMP_WORDS=(ghostswapctl "$@")
    COMP_CWORD=$#
    COMPREPLY=()
    _ghostswapctl 2>/dev/null
    local got
    got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
    got=${got% }
    [[ $got == "$want" ]] || fail "ghostswapctl $*<TAB>: got '$got', expected '$want'"
}

offers "backing drain help list metrics migrate ram-limit reset-peak stats writeback" ""
offers "reset-peak" res
offers "" reset-peak ""
offers "stats" st
offers "add drain list remove" backing ""
offers "cancel status wait" drain ""
offers "" drain status ""
offers "--json" stats --js
offers "--name --no-wait --noheadings" --n
offers "swap0 vm1" -n ""
offers "vm1" stats --name v
offers "NAME,SIZE NAME,SOCKET NAME,STORED NAME,SWAP-DEVICE" -o NAME,s
offers "RAM RAM-LIMIT RATIO" --output ra
offers "$tmp/files/b0.img" backing add "$tmp/files/b"
offers "$tmp/files/b0.img" -s "$tmp/run/x.sock" migrate "$tmp/files/b"
offers "" migrate a b ""
offers "" backing list ""
# After --, words starting with '-' are arguments, not options.
offers "" -- --js
# fault is for tests: not offered.
offers "" fau

if ((failures > 0)); then
    echo "$prog: $failures check(s) failed" >&2
    exit 1
fi
echo "$prog: all checks passed"
