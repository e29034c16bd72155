#!/bin/bash
# build-deb.sh - build the ghostswap Debian package from this checkout.
#
#     packaging/build-deb.sh [--nocheck] [--source] [--keep] [OUTDIR]
#
# The package's debian/ directory lives in packaging/debian (the source of
# truth), but dpkg-buildpackage wants it at the top of the source tree.
# So this copies the source files (git's tracked and untracked-but-not-
# ignored files; without git, everything but build*/ and .git) to a
# temporary directory, puts packaging/debian there as debian/, runs
#
#     dpkg-buildpackage -b -us -uc
#
# in it, and copies the .deb, .buildinfo and .changes files to OUTDIR
# (default: build-deb, which git ignores).  The checkout itself is never
# written to, except OUTDIR.
#
# The source format is 3.0 (quilt), as the version has a Debian revision
# (0.1.0-1); the upstream tarball ghostswap_VERSION.orig.tar.gz is made
# from the same copy of the sources (before debian/ is added), so that a
# source package can be built too.
#
#   --nocheck  DEB_BUILD_OPTIONS=nocheck: do not build or run the unit tests
#   --source   build the source package as well (dpkg-buildpackage -us -uc)
#   --keep     keep the temporary build tree (its path is printed)
#
# Needs: dpkg-dev, debhelper, fakeroot (if not root) and the package's
# Build-Depends (scripts/install-deps.sh installs them; dpkg-buildpackage
# names any that are missing).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
prog=build-deb

nocheck=false
source=false
keep=false
outdir=
while (($# > 0)); do
  case $1 in
    --nocheck) nocheck=true ;;
    --source) source=true ;;
    --keep) keep=true ;;
    -h|--help) sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    -*) echo "$prog: unknown option $1" >&2; exit 2 ;;
    *) [[ -z $outdir ]] || { echo "$prog: one OUTDIR only" >&2; exit 2; }
       outdir=$1 ;;
  esac
  shift
done
outdir=${outdir:-build-deb}

for tool in dpkg-buildpackage dpkg-parsechangelog dh; do
  if ! command -v $tool >/dev/null; then
    echo "$prog: $tool not found: apt-get install dpkg-dev debhelper fakeroot" >&2
    exit 1
  fi
done

# The package version must be the project's.
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n1)
deb_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
if [[ ${deb_version%-*} != "$meson_version" ]]; then
  echo "$prog: packaging/debian/changelog is at $deb_version but meson.build at $meson_version:" \
       "add a changelog entry" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-deb.XXXXXX")
cleanup () {
  if $keep; then
    echo "$prog: build tree kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
src=$work/ghostswap-$meson_version
mkdir "$src"

# Copy the sources.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$root" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      # Listed but deleted in the work tree; a top-level debian/ is ours
      # to provide.
      [[ -e $f && $f != debian/* ]] && printf '%s\0' "$f"
    done |
    tar -c --null -T - -f - | tar -x -C "$src" -f -
else
  tar -c --exclude='./build*' --exclude=./.git --exclude=./debian -f - . |
    tar -x -C "$src" -f -
fi
tar -C "$work" -czf "$work/ghostswap_${meson_version}.orig.tar.gz" "${src##*/}"
cp -a packaging/debian "$src/debian"

echo "$prog: building ghostswap $deb_version in $src"
jobs=$(nproc 2>/dev/null || echo 2)
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$jobs"
$nocheck && DEB_BUILD_OPTIONS+=" nocheck" && export DEB_BUILD_PROFILES="${DEB_BUILD_PROFILES:+$DEB_BUILD_PROFILES }nocheck"
if $source; then
  (cd "$src" && dpkg-buildpackage -us -uc)
else
  (cd "$src" && dpkg-buildpackage -b -us -uc)
fi

mkdir -p "$outdir"
shopt -s nullglob
files=("$work"/*.deb "$work"/*.buildinfo "$work"/*.changes)
$source && files+=("$work"/*.dsc "$work"/*.orig.tar.* "$work"/*.debian.tar.*)
((${#files[@]} > 0)) || { echo "$prog: no package was built" >&2; exit 1; }
cp "${files[@]}" "$outdir"/
for f in "${files[@]}"; do
  echo "$prog: $outdir/${f##*/}"
done
