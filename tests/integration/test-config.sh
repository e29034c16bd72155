#!/bin/bash
# ghostswap integration test: configuration keys through the real nbdkit.
#
# Every configuration mistake must make nbdkit refuse to start (non-zero
# exit) with exactly one error line, naming the key.  Valid configurations
# must start and export the right size.  --dump-plugin and --help work.
#
# Environment: GHOSTSWAP_PLUGIN (the built plugin), NBDKIT (default nbdkit).

set -e
set -o pipefail

prog=$(basename "$0")
fail () { echo "$prog: test failed: $*" >&2; exit 1; }
skip () { echo "$prog: skipped: $*"; exit 77; }

PLUGIN=${GHOSTSWAP_PLUGIN:-}
NBDKIT=${NBDKIT:-nbdkit}
[ -n "$PLUGIN" ] || skip "GHOSTSWAP_PLUGIN is not set (run through meson test)"
[ -r "$PLUGIN" ] || skip "plugin $PLUGIN not found"
command -v "$NBDKIT" >/dev/null || skip "$NBDKIT not found"
command -v nbdinfo >/dev/null || skip "nbdinfo not found"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-config-XXXXXX")
cleanup () { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Run nbdkit with a temporary socket and --run CMD; the plugin's keys follow.
# Output in $tmp/out and $tmp/err; sets $status.
run () {
    local cmd=$1; shift
    status=0
    timeout 60 "$NBDKIT" -U - --run "$cmd" "$PLUGIN" "$@" \
            >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
}

show () {
    echo "--- stdout:"; cat "$tmp/out"
    echo "--- stderr:"; cat "$tmp/err"
    echo "---"
}

# refuse KEY ARGS...: nbdkit must refuse ARGS with one error line naming KEY.
nrefused=0
refuse () {
    local key=$1; shift
    run 'exit 0' "$@"
    if [ "$status" -eq 0 ]; then
        show; fail "nbdkit accepted '$*' (it must refuse it)"
    fi
    if [ "$status" -eq 124 ] || [ "$status" -gt 128 ]; then
        show; fail "'$*': nbdkit timed out or was killed (status $status)"
    fi
    local nerr
    nerr=$(grep -ci 'error' "$tmp/err" || true)
    if [ "$nerr" -ne 1 ]; then
        show; fail "'$*': expected exactly one error line on stderr, got $nerr"
    fi
    if ! grep -i 'error' "$tmp/err" | grep -qF -- "$key"; then
        show; fail "'$*': the error line does not name the key '$key'"
    fi
    echo "$prog: refused as expected: $* -> $(grep -i error "$tmp/err")"
    nrefused=$((nrefused + 1))
}

# accept SIZE ARGS...: nbdkit must start with ARGS and export SIZE bytes.
accept () {
    local want=$1; shift
    run 'nbdinfo --size "$uri"' "$@"
    if [ "$status" -ne 0 ]; then
        show; fail "nbdkit refused valid '$*' (status $status)"
    fi
    local got
    got=$(tr -d '[:space:]' <"$tmp/out")
    if [ -n "$want" ] && [ "$got" != "$want" ]; then
        show; fail "'$*': size $got, expected $want"
    fi
    if grep -qE 'error: ' "$tmp/err"; then
        show; fail "'$*': started but logged an error"
    fi
    echo "$prog: accepted: $* -> size $got"
    accepted_size=$got
}

# --- Mistakes.
refuse foo               foo=1
refuse size              size=abc
refuse size              size=5000
refuse size              size=0
refuse size              size=8E
refuse size              size=9223372036854775808
refuse size              size=18446744073709551616
refuse size              size=-4096
refuse size              size=
refuse ram-limit         ram-limit=0
refuse ram-limit         ram-limit=abc
refuse compression-level compression-level=99
refuse compression-level compression-level=x
refuse compression-level compression-level=
refuse compact-threshold compact-threshold=0
refuse compact-threshold compact-threshold=100
refuse compact-threshold compact-threshold=x
refuse recompress-level  recompress-level=23
refuse recompress-level  recompress-level=-1
refuse recompress-level  recompress-level=x
refuse recompress-cpu    recompress-cpu=0
refuse recompress-cpu    recompress-cpu=101
# A mistake among valid keys is still found and named.
refuse ram-limit         size=1G ram-limit=12Q compression-level=3

# --- Valid configurations.
accept 1073741824        size=1G ram-limit=64M compression-level=3
accept 1073741824        1G                      # size is the magic key
accept 4096              size=4096
accept 38809600          size=38809600 ram-limit=1M
accept 1099511627776     size=1T compact-threshold=1
accept 4611686018427387904 size=4E compact-threshold=99
accept 9223372036854771712 size=9223372036854771712
accept 67108864          size=64MiB compression-level=19
accept 67108864          size=64M compression-level=-5
accept 67108864          size=64M recompress-level=19 recompress-cpu=5
# Defaults: twice physical RAM rounded up to a GiB.
accept ""
if [ "$accepted_size" -le 0 ] || [ $((accepted_size % 1073741824)) -ne 0 ]; then
    fail "default size $accepted_size is not a positive number of GiB"
fi

# --- --dump-plugin and --help.
status=0
"$NBDKIT" "$PLUGIN" --dump-plugin >"$tmp/out" 2>"$tmp/err" || status=$?
if [ "$status" -ne 0 ]; then show; fail "--dump-plugin failed (status $status)"; fi
grep -q '^name=ghostswap$' "$tmp/out" || { show; fail "--dump-plugin does not say name=ghostswap"; }
grep -q '^thread_model=parallel$' "$tmp/out" || { show; fail "--dump-plugin: thread model is not parallel"; }

status=0
"$NBDKIT" "$PLUGIN" --help >"$tmp/out" 2>"$tmp/err" || status=$?
if [ "$status" -ne 0 ]; then show; fail "--help failed (status $status)"; fi
for key in size ram-limit compression-level compact-threshold \
           recompress-level recompress-cpu; do
    grep -q -- "$key=" "$tmp/out" || { show; fail "--help does not list $key="; }
done

echo "$prog: ok: $nrefused mistakes refused, valid configurations accepted"
