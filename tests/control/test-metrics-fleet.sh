#!/bin/bash
# ghostswap control test: metrics for a fleet.  Two devices (two nbdkit
# processes, name=alpha and name=beta) serve their metrics over HTTP
# (metrics-listen=127.0.0.1:PORT) and on their control sockets.  The
# shipped textfile writer (packaging/systemd/ghostswap-textfile, run by
# ghostswap-textfile.timer, whose units systemd-analyze verifies) writes
# ghostswap-alpha.prom and ghostswap-beta.prom into one directory: each
# must pass `promtool check metrics`, and the directory merged by family
# as node_exporter's textfile collector merges it must hold no series
# twice and pass promtool merged.  The figures are checked against what
# was done: only alpha was written to, so only alpha counts writes and
# has write latencies.  /metrics answers GET; other paths 404, POST 405.
#
# Environment: GHOSTSWAP_PLUGIN (the built plugin), GHOSTSWAPCTL (the
# built client), SOURCE_ROOT (the source tree), NBDKIT (default nbdkit).

set -e
set -o pipefail

prog=$(basename "$0")
fail () { echo "$prog: test failed: $*" >&2; exit 1; }
skip () { echo "$prog: skipped: $*"; exit 77; }

PLUGIN=${GHOSTSWAP_PLUGIN:-}
NBDKIT=${NBDKIT:-nbdkit}
[ -n "$PLUGIN" ] || skip "GHOSTSWAP_PLUGIN is not set (run through meson test)"
[ -r "$PLUGIN" ] || skip "plugin $PLUGIN not found"
CTL=${GHOSTSWAPCTL:-}
[ -x "$CTL" ] || skip "GHOSTSWAPCTL is not set (run through meson test)"
units=${SOURCE_ROOT:?SOURCE_ROOT is not set (run through meson test)}/packaging/systemd
command -v "$NBDKIT" >/dev/null || skip "$NBDKIT not found"
command -v promtool >/dev/null ||
    skip "promtool not found (Debian package prometheus)"
command -v python3 >/dev/null || skip "python3 not found"
command -v nbdcopy >/dev/null || skip "nbdcopy not found (libnbd-bin)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-fleet-XXXXXX")
pids=()
cleanup () {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Port 0: the kernel chooses; the plugin says which (nbdkit -v).
start () {                      # start NAME: sets port
    "$NBDKIT" -v -U "$tmp/$1.nbd" -f --exit-with-parent "$PLUGIN" size=64M \
              name="$1" control="$tmp/$1.sock" \
              metrics-listen=127.0.0.1:0 2>"$tmp/$1.err" &
    pids+=($!)
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's|.*ghostswap: metrics on http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$tmp/$1.err")
        [ -n "$port" ] && return 0
        kill -0 "${pids[-1]}" 2>/dev/null ||
            { cat "$tmp/$1.err" >&2; fail "nbdkit ($1) exited at start"; }
        sleep 0.1
    done
    cat "$tmp/$1.err" >&2
    fail "$1: no 'metrics on http://127.0.0.1:PORT/metrics' in nbdkit -v's log"
}
start alpha
port_a=$port
start beta
port_b=$port

fetch () {                      # fetch PORT PATH [METHOD] -> status, body in $tmp/body
    python3 - "$@" > "$tmp/status" <<'PY'
import sys, urllib.request, urllib.error
port, path = sys.argv[1], sys.argv[2]
method = sys.argv[3] if len(sys.argv) > 3 else "GET"
req = urllib.request.Request("http://127.0.0.1:%s%s" % (port, path), method=method,
                             data=b"x" if method == "POST" else None)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        body, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
except urllib.error.HTTPError as e:
    body, status, ctype = e.read(), e.code, ""
except OSError:
    body, status, ctype = b"", 0, ""
sys.stdout.write("%d %s\n" % (status, ctype))
sys.stderr.buffer.write(body)
PY
}

# Wait for both listeners.
for port in "$port_a" "$port_b"; do
    for _ in $(seq 1 100); do
        fetch "$port" /metrics 2>"$tmp/body" || true
        [ "$(cut -d' ' -f1 "$tmp/status")" = 200 ] && break
        sleep 0.1
    done
    [ "$(cut -d' ' -f1 "$tmp/status")" = 200 ] ||
        { tail -n 20 "$tmp"/*.err >&2; fail "no metrics on 127.0.0.1:$port"; }
done
grep -q "text/plain; version=0.0.4" "$tmp/status" ||
    fail "Content-Type is not the text format's: $(cat "$tmp/status")"

# Write 1 MiB to alpha only (256 pages of 4 KiB).
head -c 1M /dev/urandom > "$tmp/data"
nbdcopy "$tmp/data" "nbd+unix:///?socket=$tmp/alpha.nbd" ||
    fail "nbdcopy to alpha failed"

# The textfile writer, as the timer runs it; a stale file of a device
# that is gone is removed.
textdir=$tmp/node-exporter
mkdir "$textdir"
echo "ghostswap_info{name=\"gone\"} 1" > "$textdir/ghostswap-gone.prom"
echo "other_metric 1" > "$textdir/other.prom"
GHOSTSWAP_RUNDIR=$tmp GHOSTSWAPCTL=$CTL "$units/ghostswap-textfile" "$textdir" ||
    fail "ghostswap-textfile failed"
[ "$(cd "$textdir" && echo *)" = "ghostswap-alpha.prom ghostswap-beta.prom other.prom" ] ||
    fail "textfile directory holds: $(cd "$textdir" && echo .* *)"
rm "$textdir/other.prom"

for f in "$textdir"/*.prom; do
    promtool check metrics < "$f" > "$tmp/lint" 2>&1 ||
        { cat "$tmp/lint" >&2; fail "promtool rejects $(basename "$f")"; }
done

# Merge the directory as node_exporter's textfile collector does (by
# family; one HELP/TYPE each, which must agree) and look for series
# present twice.
python3 - "$textdir" > "$tmp/merged.prom" <<'PY' || fail "merging the textfiles"
import os, re, sys
d = sys.argv[1]
fams, order, seen = {}, [], {}
for fn in sorted(os.listdir(d)):
    help_, type_ = {}, {}
    for line in open(os.path.join(d, fn)):
        line = line.rstrip("\n")
        m = re.match(r"# (HELP|TYPE) (\S+) (.*)", line)
        if m:
            (help_ if m.group(1) == "HELP" else type_)[m.group(2)] = m.group(3)
            name = m.group(2)
            if name not in fams:
                fams[name] = {"help": None, "type": None, "samples": []}
                order.append(name)
            f = fams[name]
            k = m.group(1).lower()
            if f[k] is not None and f[k] != m.group(3):
                sys.exit("%s: %s of %s differs between files" % (fn, k, name))
            f[k] = m.group(3)
            continue
        series = line.rsplit(" ", 1)[0]
        if series in seen:
            sys.exit("series %s in both %s and %s" % (series, seen[series], fn))
        seen[series] = fn
        base = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        fam = base if base in fams else re.sub(r"_(bucket|sum|count)$", "", base)
        fams[fam]["samples"].append(line)
for n in order:
    print("# HELP %s %s\n# TYPE %s %s" % (n, fams[n]["help"], n, fams[n]["type"]))
    print("\n".join(fams[n]["samples"]))
PY
promtool check metrics < "$tmp/merged.prom" > "$tmp/lint" 2>&1 ||
    { cat "$tmp/lint" >&2; fail "promtool rejects the merged textfiles"; }

# What was done shows where it was done.
value () {                      # value FILE SERIES
    awk -v s="$2" 'index($0, s " ") == 1 { print $NF }' "$1"
}
a=$textdir/ghostswap-alpha.prom
b=$textdir/ghostswap-beta.prom
w=$(value "$a" 'ghostswap_written_bytes_total{name="alpha"}')
[ "$w" = 1048576 ] || fail "alpha: written_bytes_total is '$w', want 1048576"
w=$(value "$b" 'ghostswap_written_bytes_total{name="beta"}')
[ "$w" = 0 ] || fail "beta: written_bytes_total is '$w', want 0"
nw=$(value "$a" 'ghostswap_requests_total{name="alpha",op="write"}')
lw=$(value "$a" 'ghostswap_request_duration_seconds_count{name="alpha",op="write"}')
if ! [ "${nw:-0}" -gt 0 ] || [ "$lw" != "$nw" ]; then
    fail "alpha: $nw writes counted, $lw timed"
fi
inf=$(value "$a" 'ghostswap_request_duration_seconds_bucket{name="alpha",op="write",le="+Inf"}')
[ "$inf" = "$nw" ] || fail "alpha: +Inf bucket $inf, want $nw"
grep -q '^ghostswap_info{name="alpha",version="[0-9.]*",frontend="nbd",transport="unix"} 1$' "$a" ||
    fail "alpha: no ghostswap_info with transport unix: $(grep info "$a")"
grep -q '^ghostswap_info{name="beta",version="[0-9.]*",frontend="nbd",transport="none"} 1$' "$b" ||
    fail "beta (no client yet): no ghostswap_info with transport none: $(grep info "$b")"
peak=$(value "$a" 'ghostswap_memory_peak_bytes{name="alpha"}')
[ "${peak:-0}" -gt 0 ] || fail "alpha: memory peak '$peak'"

# HTTP serves what the control socket does (but for the moments between).
fetch "$port_b" /metrics 2>"$tmp/http.prom"
diff <(grep -v -e _peak_bytes -e duration_seconds_sum "$tmp/http.prom") \
     <(grep -v -e _peak_bytes -e duration_seconds_sum "$b") > "$tmp/diff" ||
    fail "beta: HTTP and textfile differ: $(cat "$tmp/diff")"

# Only /metrics, only GET (and HEAD).
fetch "$port_a" /other 2>/dev/null
[ "$(cut -d' ' -f1 "$tmp/status")" = 404 ] || fail "/other: $(cat "$tmp/status")"
fetch "$port_a" /metrics POST 2>/dev/null
[ "$(cut -d' ' -f1 "$tmp/status")" = 405 ] || fail "POST: $(cat "$tmp/status")"

# A taken port is a clear start-up error naming the key.
if "$NBDKIT" -U "$tmp/c.nbd" --exit-with-parent "$PLUGIN" size=64M \
       control=none metrics-listen="127.0.0.1:$port_a" 2>"$tmp/c.err"; then
    fail "a second listener on port $port_a started"
fi
grep -q "metrics-listen 127.0.0.1:$port_a: Address already in use" "$tmp/c.err" ||
    fail "no clear error for a taken port: $(cat "$tmp/c.err")"

# The timer and its service as systemd reads them (stub programs, so that
# only the units are judged).
if command -v systemd-analyze >/dev/null && [ -e /lib/systemd/system/timers.target ]; then
    root=$tmp/root
    mkdir -p "$root/lib/systemd" "$root/etc/systemd/system" \
             "$root/usr/libexec/ghostswap" "$root/var/lib/prometheus/node-exporter"
    cp -a /lib/systemd/system "$root/lib/systemd/system"
    cp "$units"/ghostswap-textfile.{service,timer} "$root/etc/systemd/system/"
    printf '#!/bin/sh\nexit 0\n' > "$root/usr/libexec/ghostswap/ghostswap-textfile"
    chmod +x "$root/usr/libexec/ghostswap/ghostswap-textfile"
    out=$(systemd-analyze verify --root="$root" --man=no \
              ghostswap-textfile.timer ghostswap-textfile.service 2>&1) ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify: $out"
else
    echo "$prog: no systemd-analyze: the timer units are not verified"
fi

echo "$prog: ok"
