#!/bin/bash
# The systemd units of packaging/systemd, checked offline with
# `systemd-analyze verify` against a scratch root: the system's own units
# (for the targets they name), ours as an administrator would install them,
# and stubs for the programs they run (so that only our units are judged,
# not whether ghostswap is installed).  Any message fails the test: verify
# exits 0 on unknown keys and ordering cycles, which it only prints.  Also
# the shell scripts: bash -n, and shellcheck where installed.  Needs no
# privileges and no running systemd; skips (77) without systemd-analyze.
#
# Environment: SOURCE_ROOT (the source tree; default: two levels up).
set -uo pipefail

prog=$(basename "$0")
src=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
units=$src/packaging/systemd
skip () { echo "$prog: skipped: $*"; exit 77; }
failures=0
fail () { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

scripts=("$units/ghostswap-unit-helper" "$units/system-sleep/ghostswap"
         "$src/packaging/build-deb.sh")
for s in "${scripts[@]}"; do
    [[ -x $s ]] || fail "$s is not executable"
    bash -n "$s" || fail "$s: syntax error"
done
if command -v shellcheck >/dev/null; then
    shellcheck "${scripts[@]}" || fail "shellcheck"
else
    echo "$prog: no shellcheck: scripts checked with bash -n only"
fi

command -v systemd-analyze >/dev/null || skip "no systemd-analyze (package systemd)"
sysunits=
for d in /lib/systemd/system /usr/lib/systemd/system; do
    [[ -e $d/sysinit.target ]] && { sysunits=$d; break; }
done
[[ -n $sysunits ]] || skip "no systemd unit directory with sysinit.target"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-units-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root/lib/systemd" "$root/etc/systemd/system"
cp -a "$sysunits" "$root/lib/systemd/system"
cp "$units"/*@.service "$root/etc/systemd/system/"
for exe in /usr/sbin/ghostswapd /usr/bin/nbdkit \
           /usr/libexec/ghostswap/ghostswap-unit-helper; do
    mkdir -p "$root${exe%/*}"
    printf '#!/bin/sh\nexit 0\n' > "$root$exe"
    chmod +x "$root$exe"
done

instances=()
for u in "$units"/*@.service; do
    u=${u##*/}
    instances+=("${u%@.service}@test.service")
done
echo "$prog: systemd-analyze verify ${instances[*]}"
out=$(systemd-analyze verify --root="$root" --man=no "${instances[@]}" 2>&1)
rc=$?
if ((rc != 0)) || [[ -n $out ]]; then
    fail "systemd-analyze verify (exit $rc):"
    echo "$out" >&2
else
    echo "ok: systemd-analyze verify: no message"
fi

if ((failures > 0)); then
    echo "$prog: $failures check(s) failed" >&2
    exit 1
fi
echo "$prog: all checks passed"
