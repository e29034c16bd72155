#!/bin/bash
# ghostswap control test: the layers stay apart.  The engine's archive
# (libghostswap.a) calls no socket, JSON, HTTP or process-hardening
# function; the service library (service/) includes none of the engine's
# internal headers (lib/*.h); the front ends start through the service's
# one start-up path instead of calling its parts themselves.
#
# Environment: LIBGHOSTSWAP (the built archive), SOURCE_ROOT.

set -e
set -o pipefail
prog=$(basename "$0")
fail () { echo "$prog: test failed: $*" >&2; exit 1; }
skip () { echo "$prog: skipped: $*"; exit 77; }

lib=${LIBGHOSTSWAP:?run through meson test}
src=${SOURCE_ROOT:?run through meson test}
command -v nm >/dev/null || skip "no nm (binutils)"

# 1. The engine: no sockets, no JSON, no HTTP, no process-wide measures.
bad=$(nm -u "$lib" | awk '{ print $NF }' | sort -u |
      grep -E '^(socket|bind|listen|accept4?|connect|json_.*|MHD_.*|mlockall|prctl|eventfd)$' || true)
[ -z "$bad" ] || fail "libghostswap.a calls ${bad//$'\n'/ }"

# 2. The service: the engine's public headers only.
for h in "$src"/lib/*.h; do
    h=${h##*/}
    if grep -n "#include \"$h\"" "$src"/service/*.c "$src"/service/*.h; then
        fail "the service includes the engine's internal header $h"
    fi
done

# 3. The front ends: one start-up path (gs_service_*), not its parts.
for f in "$src/plugin/ghostswap.c" "$src/server/ghostswapd/ghostswapd.c"; do
    if grep -nE '\b(gs_harden_process|gs_control_start|gs_backing_add|gs_device_create)\b' "$f"; then
        fail "${f#"$src"/} starts the device by itself instead of through gs_service_*"
    fi
    grep -q 'gs_service_start' "$f" || fail "${f#"$src"/} does not call gs_service_start"
done
echo "$prog: ok"
