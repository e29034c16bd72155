#!/bin/bash
# build.sh - configure (first time) and build ghostswap.
#
#     scripts/build.sh [BUILDDIR [MESON-OPTION...]]     (default: build)
#
# Runs `meson setup BUILDDIR OPTIONS` when BUILDDIR is not a build tree
# yet (or `meson configure` with the options when it is), then ninja.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
builddir=${1:-build}
(($# > 0)) && shift

if [[ -f $builddir/build.ninja ]]; then
  (($# == 0)) || meson configure "$builddir" "$@"
else
  meson setup "$builddir" "$@"
fi
ninja -C "$builddir"
echo "build.sh: built in $builddir (plugin: $builddir/plugin/nbdkit-ghostswap-plugin.so)"
