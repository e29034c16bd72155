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
pid= pid1=
cleanup () {
    for p in $pid $pid1; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The device "ctl": its socket where ghostswapctl looks for devices
# (GHOSTSWAP_RUNDIR, the stand-in for /run/ghostswap).
mkdir "$tmp/run"
export GHOSTSWAP_RUNDIR=$tmp/run
sock=$tmp/run/ctl.sock
uri="nbd+unix:///?socket=$tmp/nbd.sock"

"$NBDKIT" -U "$tmp/nbd.sock" -f --exit-with-parent "$PLUGIN" \
          size=64M control="$sock" fault-injection=true 2>"$tmp/nbdkit.err" &
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
# What serves it: the plugin, no client yet; the metrics say the same.
json_check 'd["info"]["frontend"] == "nbd" and d["info"]["transport"] == "none" and "transport_reason" not in d["info"]'
version=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["info"]["version"])' "$tmp/out")
run 0 --socket "$sock" stats
expect_out '^frontend +nbd$'
expect_out '^transport +none$'
run 0 --socket "$sock" metrics
expect_out "^ghostswap_info\\{name=\"ctl\",version=\"$version\",frontend=\"nbd\",transport=\"none\"\\} 1\$"

# reset-peak: checked locally, then the peak is the memory used now
# (nothing runs on the device: the same figure in a later stats answer).
nosock_early=$tmp/nothing-here.sock
run 2 --socket "$nosock_early" reset-peak now
expect_err "reset-peak: wrong number of arguments"
run 0 --socket "$sock" reset-peak
expect_out '^memory peak reset to [0-9.]+ [KMG]?i?B$'
run 0 --socket "$sock" --json reset-peak
json_check 'd["ok"] is True and d["memory_peak_bytes"] == d["memory_bytes"]'
run 0 --socket "$sock" --json stats
json_check 'd["stats"]["memory_peak_bytes"] == d["stats"]["memory_bytes"]'

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
run 1 --socket "$sock" ram-limit 1K
expect_err "ram-limit: must be at least 256K"
run 1 --socket "$sock" --json ram-limit 1K
json_check 'd["ok"] is False and "ram-limit" in d["error"]'
run 1 --socket "$sock" backing remove "$tmp/none"
expect_err 'backing remove:'

# Cannot connect: exit 3.
run 3 --socket "$tmp/none.sock" stats
expect_err "cannot connect to $tmp/none.sock"
GHOSTSWAP_SOCKET=$tmp/none.sock run 3 stats

# Usage errors: exit 2, checked before any connection (the socket named
# does not exist: a connection attempt would exit 3).
nosock=$tmp/none.sock
run 2 --socket "$nosock" bogus
expect_err "unknown command 'bogus'"
run 2 --socket "$nosock" frob
run 2 --socket "$nosock" backing
expect_err 'backing: missing subcommand \(one of: list, add, remove, drain\)'
run 2 --socket "$nosock" backing frob
expect_err "backing: unknown subcommand 'frob'"
run 2 --socket "$nosock" backing add
expect_err 'backing add: wrong number of arguments \(usage: backing add PATH \[SIZE\]\)'
run 2 --socket "$nosock" backing add "$tmp/x" lots
expect_err "backing: 'lots' is not a size"
run 2 --socket "$nosock" ram-limit lots
expect_err "ram-limit: 'lots' is not a size"
run 2 --socket "$nosock" writeback many
run 2 --socket "$nosock" migrate a
run 2 --socket "$nosock" migrate a b c d
run 2 --socket "$nosock" stats extra
run 2 --socket "$nosock" drain
run 2 --socket "$nosock" fault x bogus
expect_err "'bogus' is not a fault kind"
run 2 --socket "$nosock" --watch backing list
expect_err '--watch: only for'
run 2 --socket "$nosock" --no-wait stats
run 2 --socket "$nosock" -o NAME stats
run 2 -o NAME,BOGUS
expect_err "unknown column 'BOGUS'"
run 2 --socket "$nosock" -n ctl stats
expect_err 'give one of them'
run 2 --frobnicate stats
expect_err "unknown option '--frobnicate'"
run 2 stats --socket
expect_err "needs an argument"
run 2 --socket "$nosock" backing add "$tmp/a b"
expect_err 'spaces'
run 2 --socket "$nosock" stats ""
run 2 --socket "$nosock" backing add "$(printf 'x%.0s' $(seq 1 5000))"
expect_err 'too long'
# Without a server at all (no socket in the directory): still usage.
GHOSTSWAP_RUNDIR=$tmp/empty run 2 frob
GHOSTSWAP_RUNDIR=$tmp/empty run 3 stats
expect_err "no control socket in $tmp/empty"
run 0 --help
expect_out '^Usage: '
expect_out 'backing add PATH \[SIZE\]'
grep -qw fault "$tmp/out" && fail "--help lists the test-only fault command"
run 0 --version
expect_out '^ghostswapctl '

# help: answered locally, without the test-only fault command.
GHOSTSWAP_RUNDIR=$tmp/empty run 0 help
expect_out '^  migrate A B \[SIZE\] '
grep -qw fault "$tmp/out" && fail "help lists the test-only fault command"
run 0 help --json
json_check '"backing add PATH [SIZE]" in d["commands"] and not any("fault" in c for c in d["commands"])'

# Options anywhere: after the command, between its words.
run 0 stats --json --socket "$sock"
json_check 'd["stats"]["ram_limit"] == 32 << 20'
run 0 stats -s "$sock" -j
json_check 'd["ok"] is True'
run 0 backing --socket "$sock" list --json
json_check 'd["backings"] == []'
run 0 -s "$sock" stats --bytes
expect_out '^size +67108864$'
# -- ends the options.
run 2 -s "$nosock" -- --json
expect_err "unknown command '--json'"

# stats --watch: rates over each interval; --count stops.
run 0 -s "$sock" stats --watch 0.2 --count 2
[ "$(wc -l <"$tmp/out")" -eq 3 ] || { cat "$tmp/out"; fail "stats --watch --count 2: not a header and 2 lines"; }
expect_out '^TIME +STORED +RAM +RATIO +READS/s +WRITES/s +READ/s +WRITE/s +WB/s +ERRORS$'
expect_out '^[0-9]{2}:[0-9]{2}:[0-9]{2} '
run 0 -s "$sock" --json --watch=0.1 stats -c 3
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "stats --watch --json: not 3 lines"
head -n 1 "$tmp/out" >"$tmp/out1" && mv "$tmp/out1" "$tmp/out"
json_check 'd["ok"] is True and "stats" in d'
run 2 -s "$sock" stats --watch 0
expect_err 'not a number of seconds'
run 2 -s "$sock" stats --count 2
expect_err '--count: only with'

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
expect_out '^PATH +SIZE +USED +USE% +STATE +READS +WRITES +ERRORS$'
expect_out "^$tmp/b1 +64M +0B +0\.0% +ok +0 +0 +0/0$"
run 0 --socket "$sock" backing list --bytes --noheadings
expect_out "^$tmp/b1 +67108864 +0 +0\.0% +ok "
grep -q PATH "$tmp/out" && fail "--noheadings printed the header"
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
run 2 --socket "$sock" migrate --no-wait "$tmp/b3"
run 0 --socket "$sock" migrate --no-wait "$tmp/b3" "$tmp/b4" 64M
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

# A failed drain: drain status says so on one clean line, and fails.
run 0 --socket "$sock" writeback 100000
last=$("$CTL" -s "$sock" --json backing list | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["backings"][0]["path"])')
run 0 --socket "$sock" fault "$last" read
run 1 --socket "$sock" backing drain "$last"
expect_err "^ghostswapctl: drain of $last failed: "
run 1 --socket "$sock" drain status
expect_out "^drain: last one: drain of $last failed: [^:]+"
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "drain status: not one line"
[ -s "$tmp/err" ] && { cat "$tmp/err"; fail "drain status wrote to stderr"; }
run 1 --socket "$sock" --json drain status
json_check 'd["ok"] is True and d["drain"]["result"] != 0'
run 0 --socket "$sock" fault "$last" off
verify "a failed drain"

# --- Devices by name, and the list of devices. ---
run 0 -n ctl stats
expect_out '^size +64\.0 MiB$'
run 3 -n nosuch stats
expect_err "cannot connect to $tmp/run/nosuch.sock"
run 2 -n ../x stats
# One device: found without a name.
run 0 stats
expect_out '^size '

"$NBDKIT" -U "$tmp/nbd1.sock" -f --exit-with-parent "$PLUGIN" \
          size=1G ram-limit=16M control="$tmp/run/dev1.sock" 2>"$tmp/nbdkit1.err" &
pid1=$!
for _ in $(seq 1 300); do [ -S "$tmp/run/dev1.sock" ] && break; sleep 0.1; done
[ -S "$tmp/run/dev1.sock" ] || fail "no second device"
# A stale socket (nobody listens): reported and skipped.
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$tmp/run/stale.sock"

# Two devices: a command needs a name.
run 2 stats
expect_err 'several devices; choose one with --name NAME: ctl dev1 stale'
run 0
expect_out '^NAME +FRONTEND +SWAP-DEVICE +SIZE +STORED +COMPRESSED +RAM +RATIO +BACKINGS$'
expect_out '^ctl +nbd +- +64M +8M +'
expect_out '^dev1 +nbd +- +1G +0B +0B +'
expect_err 'stale: no server on'
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "list: not a header and two devices"
run 0 list --bytes --noheadings -o NAME,SIZE,RAM-LIMIT,BACKINGS
expect_out '^ctl +67108864 +33554432 +1$'
expect_out '^dev1 +1073741824 +16777216 +0$'
run 0 -o +PID,socket
expect_out "^dev1 .* $pid1 +$tmp/run/dev1.sock$"
run 0 --json
json_check '[x["name"] for x in d["devices"]] == ["ctl", "dev1"] and d["devices"][1]["size"] == 1 << 30 and d["devices"][0]["stored"] == 8 << 20 and d["devices"][0]["frontend"] == "nbd" and d["devices"][0]["backings"] == 1'
run 0 -n dev1 -o NAME,SIZE --noheadings
[ "$(cat "$tmp/out")" = "dev1 1G" ] || { cat "$tmp/out"; fail "list -n dev1"; }
GHOSTSWAP_RUNDIR=$tmp/empty run 0
[ -s "$tmp/out" ] && fail "list without devices printed something"
kill "$pid1"; wait "$pid1" 2>/dev/null || true
pid1=
rm -f "$tmp/run/stale.sock"

# When nbdkit stops, the socket goes away.
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=
for _ in $(seq 1 50); do [ -e "$sock" ] || break; sleep 0.1; done
[ ! -e "$sock" ] || fail "the control socket remains after nbdkit exited"
run 3 --socket "$sock" stats

echo "$prog: ok"
