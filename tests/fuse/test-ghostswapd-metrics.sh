#!/bin/bash
# ghostswapd's metrics: the FUSE front end times every request it hands
# to the engine (reads, writes, fsync as flush, fallocate as trim or
# zero) into the latency histogram, labels every series with the
# device's name (name=, else the control socket's base name), and serves
# them over HTTP (metrics-listen=).  The counts are checked against the
# requests the engine itself counted and against what was done here.

set -e
set -o pipefail
. "$(dirname "$0")/lib.sh"
require_fuse
command -v python3 >/dev/null || skip "python3 not found"

# Port 0: the kernel chooses, the daemon says which (-v).
find_port () {
    for _ in $(seq 50); do
        port=$(sed -n 's|.*metrics on http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$log")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    fail "no 'metrics on http://127.0.0.1:PORT/metrics' in the log"
}
metrics () {
    python3 -c '
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode(), end="")' "$port"
}
value () {                      # value SERIES: its value in $tmp/m
    awk -v s="$1" 'index($0, s " ") == 1 { print $NF }' "$tmp/m"
}

start_daemon "$mnt" size=64M ram-limit=16M name=fleet0 \
             metrics-listen=127.0.0.1:0
find_port
metrics > "$tmp/m" || fail "no metrics on 127.0.0.1:$port"

# 16 writes with an fsync, 16 reads, a hole punched (trim), a range zeroed.
dd if=/dev/urandom of="$mnt/swap" bs=4k count=16 oflag=direct conv=notrunc,fsync \
   status=none || fail "dd write"
dd if="$mnt/swap" of=/dev/null bs=4k count=16 iflag=direct status=none ||
    fail "dd read"
fallocate --punch-hole --keep-size -o 0 -l 8192 "$mnt/swap" || fail "punch hole"
fallocate --zero-range --keep-size -o 16384 -l 8192 "$mnt/swap" || fail "zero range"
metrics > "$tmp/m" || fail "metrics after the I/O"
kill -0 "$pid" 2>/dev/null || fail "ghostswapd died during the I/O"

# The transport label is the one the stats file says serves.
t=$(awk '$1 == "fuse_transport" { print $2 }' "$mnt/stats")
case $t in uring|dev) ;; *) fail "the stats file names transport '$t'" ;; esac
grep -q '^ghostswap_info{name="fleet0",version="[^"]*",frontend="fuse",transport="'"$t"'"} 1$' "$tmp/m" ||
    fail "no ghostswap_info for fleet0 over $t: $(grep info "$tmp/m")"
for op in write read flush trim zero; do
    n=$(value "ghostswap_requests_total{name=\"fleet0\",op=\"$op\"}")
    t=$(value "ghostswap_request_duration_seconds_count{name=\"fleet0\",op=\"$op\"}")
    inf=$(value "ghostswap_request_duration_seconds_bucket{name=\"fleet0\",op=\"$op\",le=\"+Inf\"}")
    [ -n "$n" ] && [ "$n" -gt 0 ] || fail "$op: the engine counted '$n' requests"
    [ "$t" = "$n" ] && [ "$inf" = "$n" ] ||
        fail "$op: the engine counted $n requests, the histogram $t (+Inf: $inf)"
done
w=$(value 'ghostswap_requests_total{name="fleet0",op="write"}')
[ "$w" = 16 ] || fail "16 writes of 4 KiB with O_DIRECT, $w counted"
if command -v promtool >/dev/null; then
    promtool check metrics < "$tmp/m" > "$tmp/lint" 2>&1 ||
        fail "promtool: $(cat "$tmp/lint")"
fi

# Without name=, the name is the control socket's base name.
kill -TERM "$pid"
wait_exit 10
[ "$status" = 0 ] || fail "ghostswapd exited with status $status after SIGTERM"
start_daemon "$mnt" size=64M metrics-listen=127.0.0.1:0
find_port
metrics > "$tmp/m" || fail "no metrics on 127.0.0.1:$port"
grep -q '^ghostswap_info{name="ctl",' "$tmp/m" ||
    fail "default name: $(grep info "$tmp/m")"
kill -TERM "$pid"
wait_exit 10
[ "$status" = 0 ] || fail "ghostswapd exited with status $status after SIGTERM"
echo "$prog: ok"
