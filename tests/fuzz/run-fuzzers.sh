#!/bin/bash
# run-fuzzers.sh BUILD [SECONDS] [NAME...] - run each libFuzzer harness
# built in BUILD (with -Dfuzz=enabled, see tests/fuzz/meson.build) for
# SECONDS (default 60) from its seed corpus in tests/fuzz/corpus/NAME.
#
# New interesting inputs go to BUILD/fuzz/NAME-corpus (kept for the next
# run), not into the repository.  Logs go to BUILD/fuzz/NAME.log, one line per fuzzer "NAME ok|FAILED"
# to BUILD/fuzz/results; a crashing, leaking, hanging or
# out-of-memory input to BUILD/fuzz/NAME-artifacts/, to be added to
# tests/fuzz/corpus/NAME once the bug is fixed (the replay tests then run
# it in every build).  Exits 1 if any harness failed, 77 if none is built.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:?usage: run-fuzzers.sh BUILD [SECONDS] [NAME...]}
seconds=${2:-60}
shift $(($# < 2 ? $# : 2))
names=("$@")
if ((${#names[@]} == 0)); then
  names=()
  for f in "$here"/corpus/*/; do
    names+=("$(basename "$f")")
  done
fi

out=$build/fuzz
mkdir -p "$out"
: > "$out/results"              # "NAME ok|FAILED" lines, for .ci/run
# Backing files: O_DIRECT must work there, so not tmpfs.
export GHOSTSWAP_FUZZ_TMPDIR
GHOSTSWAP_FUZZ_TMPDIR=$(mktemp -d /var/tmp/ghostswap-fuzz.XXXXXX)
trap 'rm -rf "$GHOSTSWAP_FUZZ_TMPDIR"' EXIT

# Any sanitizer report is a crash; leaks too (libFuzzer checks them).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

failed=0
ran=0
for name in "${names[@]}"; do
  exe=$build/tests/fuzz/fuzz-$name
  if [[ ! -x $exe ]]; then
    echo "run-fuzzers: $exe not built (meson setup -Dfuzz=enabled with clang)" >&2
    continue
  fi
  ran=$((ran + 1))
  rm -rf "${out:?}/$name-artifacts"
  mkdir -p "$out/$name-corpus" "$out/$name-artifacts"
  echo "run-fuzzers: $name for ${seconds}s (log: $out/$name.log)"
  # -timeout: one input running longer than that is a hang.
  # -malloc_limit_mb: a request may legitimately ask the engine for a
  # large, lazily touched allocation (a reverse map for a terabyte
  # backing); RSS is what -rss_limit_mb bounds.
  rc=0
  "$exe" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 \
    -malloc_limit_mb=65536 -max_len=2048 -print_final_stats=1 \
    -artifact_prefix="$out/$name-artifacts/" \
    "$out/$name-corpus" "$here/corpus/$name" > "$out/$name.log" 2>&1 || rc=$?
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' \
    "$out/$name.log" | sed "s/^/run-fuzzers: $name: /" || true
  if ((rc != 0)); then
    failed=1
    echo "run-fuzzers: $name FAILED (exit $rc); the end of its log:" >&2
    tail -n 60 "$out/$name.log" >&2
    ls -l "$out/$name-artifacts" >&2
    echo "$name FAILED" >> "$out/results"
  else
    echo "run-fuzzers: $name ok"
    echo "$name ok" >> "$out/results"
  fi
done

if ((ran == 0)); then
  echo "run-fuzzers: no harness built in $build" >&2
  exit 77
fi
exit "$failed"
