#!/bin/bash
# bench-crypt: lib/crypt.c's AES-256-XTS per 4 KiB slot against OpenSSL's
# own figure for the same cipher and block size, in the same run.
#
#   bench/bench-crypt.sh [BUILD_DIR] [SECONDS]
#
# Prints both and the ratio (ours / openssl speed): what setting the tweak
# per slot and going through lib/crypt.c cost.  Results:
# docs/benchmarks-backing.md.
set -euo pipefail

build=${1:-build}
secs=${2:-3}
bin=$build/bench/bench-crypt
[ -x "$bin" ] || { echo "bench-crypt: $bin not built (ninja -C $build)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "bench-crypt: openssl not found" >&2; exit 1; }

ours=$("$bin" "$secs")
echo "$ours"
# "AES-256-XTS  NNNNNN.NNk" for 4096-byte blocks: 1000s of bytes/s.
ssl=$(openssl speed -evp aes-256-xts -bytes 4096 -seconds "$secs" 2>/dev/null \
      | awk 'tolower($1) == "aes-256-xts" { sub(/k$/, "", $NF); print $NF * 1000 }')
[ -n "$ssl" ] || { echo "bench-crypt: no figure from openssl speed" >&2; exit 1; }
enc=$(echo "$ours" | awk '/^encrypt/ { print $2 * 1e9 }')
awk -v s="$ssl" -v e="$enc" 'BEGIN {
    printf "openssl speed -evp aes-256-xts -bytes 4096: %.2f GB/s\n", s / 1e9
    printf "encrypt / openssl speed: %.2f\n", e / s }'
