#!/bin/bash
# ghostswap control test: ghostswapctl against the real nbdkit plugin.
#
# Starts nbdkit with the plugin and control=SOCKET in a temporary
# directory, then checks ghostswapctl's commands, output forms (tables,
# --json, metrics) and exit codes: 0 ok, 1 the server answered an error,
# 2 usage error, 3 cannot connect.  With nbdcopy, data is written, moved
# to backing files, drained and migrated, and read back unchanged; with
# script(1), the progress bar is drawn on a pseudo-terminal.
#
# Environment: GHOSTSWAP_PLUGIN (the built plugin), GHOSTSWAPCTL (the built
# client), NBDKIT (default nbdkit).

set -e
set -o pipefail

prog=$(basename "$0")
fail () { echo "$prog: test failed: $*" >&2; exit 1; }
skip () { echo "$prog: skipped: $*"; exit 77; }

PLUGIN=${GHOSTSWAP_PLUGIN:-}
CTL=${GHOSTSWAPCTL:-}
NBDKIT=${NBDKIT:-nbdkit}
[ -n "$PLUGIN" ] || skip "GHOSTSWAP_PLUGIN is not set (run through meson test)"
[ -r "$PLUGIN" ] || skip "plugin $PLUGIN not found"
[ -n "$CTL" ] || skip "GHOSTSWAPCTL is not set (run through meson test)"
[ -x "$CTL" ] || skip "ghostswapctl $CTL not found"
command -v "$NBDKIT" >/dev/null || skip "$NBDKIT not found"
PY=
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import json' 2>/dev/null; then
        PY=$p; break
    fi
done
[ -n "$PY" ] || skip "python3 not found (needed to check JSON)"

# Backing files must not be on tmpfs: use /var/tmp unless TMPDIR is set.
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/ghostswap-ctl-XXXXXX")
pid=
cleanup () {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

sock=$tmp/ctl.sock
uri="nbd+unix:///?socket=$tmp/nbd.sock"

"$NBDKIT" -U "$tmp/nbd.sock" -f --exit-with-parent "$PLUGIN" \
          size=64M control="$sock" 2>"$tmp/nbdkit.err" &
pid=$!
for _ in $(seq 1 300); do
    [ -S "$sock" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$tmp/nbdkit.err" >&2
        if grep -qi "control" "$tmp/nbdkit.err" && grep -qi "unknown\|invalid" "$tmp/nbdkit.err"; then
            skip "the plugin has no control= key yet"
        fi
        fail "nbdkit exited early"
    fi
    sleep 0.1
done
[ -S "$sock" ] || { cat "$tmp/nbdkit.err" >&2; fail "no control socket $sock after 30 s (does the plugin start it?)"; }

# run EXPECTED_STATUS ARGS...: ghostswapctl ARGS, output in $tmp/out, $tmp/err.
run () {
    local want=$1; shift
    local status=0
    timeout 60 "$CTL" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
    if [ "$status" -ne "$want" ]; then
        echo "--- stdout:"; cat "$tmp/out"; echo "--- stderr:"; cat "$tmp/err"; echo "---"
        fail "ghostswapctl $*: exit status $status, expected $want"
    fi
}
expect_out () { grep -qE -- "$1" "$tmp/out" || { cat "$tmp/out"; fail "stdout lacks /$1/"; }; }
expect_err () { grep -qE -- "$1" "$tmp/err" || { cat "$tmp/err"; fail "stderr lacks /$1/"; }; }
# json_check PYTHON-EXPR: $tmp/out is valid JSON and EXPR (over d) holds.
json_check () {
    "$PY" -m json.tool "$tmp/out" >/dev/null || { cat "$tmp/out"; fail "not valid JSON"; }
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ('"$1"') else 1)' "$tmp/out" \
        || { cat "$tmp/out"; fail "JSON check failed: $1"; }
}

# The socket is private.
mode=$(stat -c %a "$sock")
[ "$mode" = 600 ] || fail "socket mode $mode, expected 600"

# stats, as a table and as JSON.
run 0 --socket "$sock" stats
expect_out '^size +64\.0 MiB$'
expect_out '^ram_limit +'
expect_out '^compression_ratio +[0-9.]+x$'
expect_out '^no backing attached$'
expect_out '^drain: none has run$'
run 0 --socket "$sock" --json stats
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "--json stats: not one line"
json_check 'd["ok"] is True and d["stats"]["size"] == 64 << 20 and d["backings"] == [] and "running" in d["drain"]'

# The socket from the environment.
GHOSTSWAP_SOCKET=$sock run 0 stats
expect_out '^size '

# metrics: the exposition format, raw.
run 0 --socket "$sock" metrics
expect_out '^# TYPE ghostswap_'
expect_out '^ghostswap_slots\{name="ctl",state="ram"\} [0-9]+$'
expect_out '^ghostswap_pool_bytes\{name="ctl"\} [0-9]+$'
"$PY" - "$tmp/out" <<'EOF' || fail "metrics: not in the exposition format"
import re, sys
typed = set()
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_]+="([^"\\\n]|\\[\\"n])*",?)*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$')
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        continue
    if line.startswith("# TYPE "):
        name, kind = line[7:].split(" ")
        assert kind in ("gauge", "counter", "histogram"), line
        typed.add(name)
        continue
    m = sample.match(line)
    assert m, "bad line: " + line
    assert (m.group(1) in typed
            or re.sub(r"_(bucket|sum|count)$", "", m.group(1)) in typed), \
        "untyped: " + line
EOF

# ram-limit, then stats shows it.
run 0 --socket "$sock" ram-limit 32M
expect_out '32\.0 MiB'
run 0 --socket "$sock" stats
expect_out '^ram_limit +32\.0 MiB$'
run 0 --socket "$sock" --json stats
json_check 'd["stats"]["ram_limit"] == 32 << 20'

# The server's errors: exit 1, the message on stderr.
run 1 --socket "$sock" bogus
expect_err "unknown command 'bogus' \(try: stats, metrics, backing, migrate, drain, ram-limit, writeback\)"
run 1 --socket "$sock" backing add
expect_err 'backing add: wrong number of arguments \(usage: backing add PATH \[SIZE\]\)'
run 1 --socket "$sock" ram-limit lots
expect_err "ram-limit: 'lots' is not a size"
run 1 --socket "$sock" --json bogus
json_check 'd["ok"] is False and "bogus" in d["error"]'

# Cannot connect: exit 3.
run 3 --socket "$tmp/none.sock" stats
expect_err "cannot connect to $tmp/none.sock"
GHOSTSWAP_SOCKET=$tmp/none.sock run 3 stats

# Usage errors: exit 2.
run 2 --socket "$sock"
expect_err 'no command'
run 2 --frobnicate stats
run 2 --socket "$sock" backing add "$tmp/a b"
expect_err 'spaces'
run 2 --socket "$sock" stats ""
run 2 --socket "$sock" "$(printf 'x%.0s' $(seq 1 5000))"
run 0 --help
expect_out '^Usage: '
run 0 --version
expect_out '^ghostswapctl '

# --- Backings, drain and migrate, with data that must survive them. ---
if ! command -v nbdcopy >/dev/null; then
    echo "$prog: note: nbdcopy not found: backing commands not tested"
    exit 0
fi
# 8 MiB: random (incompressible) and text (compressible) halves.
head -c 4M /dev/urandom >"$tmp/data"
"$PY" -c 'import sys; sys.stdout.write(("ghostswap control test line %d\n" * 4) % (1, 2, 3, 4) * 40000)' | head -c 4M >>"$tmp/data"
nbdcopy "$tmp/data" "$uri"
verify () {
    nbdcopy "$uri" "$tmp/readback"
    cmp -n 8388608 "$tmp/data" "$tmp/readback" || fail "data changed after $1"
    rm -f "$tmp/readback"
}

run 0 --socket "$sock" backing add "$tmp/b1" 64M
expect_out "^attached $tmp/b1$"
run 1 --socket "$sock" backing add "$tmp/b1"
run 0 --socket "$sock" backing list
expect_out '^PATH +SIZE +SLOTS +USED'
expect_out "^$tmp/b1 +64\.0 MiB +16384 +0 "
run 0 --socket "$sock" --json writeback 100000
json_check 'd["ok"] is True and d["pages"] > 0'
run 0 --socket "$sock" --json backing list
json_check 'd["backings"][0]["used"] > 0'
verify "writeback"
run 1 --socket "$sock" backing remove "$tmp/b1"
expect_err 'backing remove:'

# Not a terminal: waits, then one line.
run 0 --socket "$sock" backing drain "$tmp/b1"
expect_out "^drained $tmp/b1: [0-9]+ slots moved, [0-9]+ skipped, in [0-9.]+ s \([0-9.]+ MB/s\)$"
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "drain: more than one line"
run 0 --socket "$sock" drain status
expect_out "^drain: last one: drained $tmp/b1"
verify "drain"
run 0 --socket "$sock" backing remove "$tmp/b1"
expect_out "^detached $tmp/b1$"

# Migrate b2 to b3 (attached by migrate), as JSON.
run 0 --socket "$sock" backing add "$tmp/b2" 64M
run 0 --socket "$sock" writeback 100000
run 0 --socket "$sock" --json migrate "$tmp/b2" "$tmp/b3" 64M
json_check 'd["ok"] is True and d["drain"]["migrate"] is True and d["drain"]["running"] is False and d["drain"]["result"] == 0'
run 0 --socket "$sock" --json backing list
json_check '[b["path"] for b in d["backings"]] == ["'"$tmp/b3"'"] and d["backings"][0]["used"] > 0'
verify "migrate"

# --no-wait returns at once; drain wait then gives the result.
run 0 --socket "$sock" --no-wait migrate "$tmp/b3" "$tmp/b4" 64M
expect_out "^migrating $tmp/b3 to $tmp/b4 in the background$"
run 0 --socket "$sock" drain wait
expect_out "^migrated $tmp/b3 to $tmp/b4: "
verify "migrate --no-wait"

# On a terminal: a progress bar, then the result.
if command -v script >/dev/null; then
    run 0 --socket "$sock" writeback 100000
    status=0
    SHELL=/bin/sh timeout 60 script -qec "'$CTL' --socket '$sock' migrate '$tmp/b4' '$tmp/b5' 64M" \
          /dev/null >"$tmp/tty" 2>&1 || status=$?
    [ "$status" -eq 0 ] || { cat "$tmp/tty"; fail "migrate on a terminal: exit status $status"; }
    grep -q '\[[#-]*\] *[0-9.]*%  [0-9]*/[0-9]* slots  [0-9.]* MB/s  ETA ' "$tmp/tty" \
        || { cat -v "$tmp/tty"; fail "no progress bar"; }
    grep -q "migrated $tmp/b4 to $tmp/b5: " "$tmp/tty" || { cat -v "$tmp/tty"; fail "no result line"; }
    verify "migrate on a terminal"
else
    echo "$prog: note: script(1) not found: progress bar not tested"
fi

# Errors of the engine come back as exit 1.
run 1 --socket "$sock" backing drain "$tmp/none"
run 1 --socket "$sock" drain cancel
expect_err 'no drain is running'

# When nbdkit stops, the socket goes away.
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=
for _ in $(seq 1 50); do [ -e "$sock" ] || break; sleep 0.1; done
[ ! -e "$sock" ] || fail "the control socket remains after nbdkit exited"
run 3 --socket "$sock" stats

echo "$prog: ok"
