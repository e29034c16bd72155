#!/bin/bash
# Build the Debian package (packaging/build-deb.sh: dpkg-buildpackage -b
# -us -uc on a copy of the source tree), install it for real with dpkg -i,
# and check what it installed:
#   - nbdkit finds the plugin by name: `nbdkit ghostswap --dump-plugin`
#     says name=ghostswap, from nbdkit's plugin directory, and the plugin
#     serves a device (nbdinfo, where installed);
#   - ghostswapd and ghostswapctl run (--help, --version);
#   - the man pages (man -w, where man is installed, and the files);
#   - the systemd units (and systemd-analyze verify of the installed ones,
#     where available), the unit helper, the sleep hook, the docs;
#   - ghostswap-generator on the example ghostswap.conf, whose units run
#     installed programs.
# Then it purges the package, also when a check fails (trap), and checks
# that nbdkit no longer finds the plugin.
#
# Runs as root; skips (77) with the reason if not root, if dpkg-buildpackage
# or debhelper is missing, in a sanitizer build (the package is built from
# the sources, not from this build: once is enough), or if ghostswap is
# already installed on this machine (as a package, or by hand where the
# package would put it): the test must not replace or remove it.
#
# Environment: SOURCE_ROOT (the source tree), GS_SANITIZE (meson's
# b_sanitize), KEEP_DEB (a directory to copy the built packages to).
# shellcheck disable=SC2015  # pass/fail never fail: A && pass || fail is fine
set -uo pipefail

prog=$(basename "$0")
src=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
skip () { echo "$prog: skipped: $*"; exit 77; }
failures=0
fail () { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass () { echo "ok: $*"; }

[[ $(id -u) == 0 ]] || skip "not root (dpkg -i needs root)"
[[ ${GS_SANITIZE:-none} == none ]] ||
    skip "sanitizer build (b_sanitize=$GS_SANITIZE): the package is built from the sources, checked in the plain build"
command -v dpkg-buildpackage >/dev/null || skip "no dpkg-buildpackage (apt-get install dpkg-dev)"
command -v dh >/dev/null || skip "no debhelper (apt-get install debhelper)"
command -v nbdkit >/dev/null || skip "no nbdkit (the package depends on it)"
if [[ $(dpkg-query -W -f='${db:Status-Status}' ghostswap 2>/dev/null) =~ ^(installed|half-installed|unpacked|half-configured|triggers-awaited|triggers-pending)$ ]]; then
    skip "the ghostswap package is installed on this machine: not replacing it"
fi
plugindir=$(nbdkit --dump-config | sed -n 's/^plugindir=//p')
for f in "$plugindir/nbdkit-ghostswap-plugin.so" /usr/sbin/ghostswapd /usr/bin/ghostswapctl; do
    [[ -e $f ]] && skip "$f exists (installed by hand?): the package would replace it, and removing the package remove it"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ghostswap-deb-test.XXXXXX")
installed=false
cleanup () {
    set +e
    if $installed; then
        echo "$prog: dpkg --purge ghostswap"
        # Forced: the test must not leave the package behind, even if
        # another test's ghostswap device is swap meanwhile.
        GHOSTSWAP_FORCE_REMOVE=1 dpkg --purge ghostswap >/dev/null ||
            echo "$prog: cleanup: dpkg --purge ghostswap failed" >&2
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# 1. Build.
echo "$prog: building the package"
if ! "$src/packaging/build-deb.sh" "$tmp/out" > "$tmp/build.log" 2>&1; then
    tail -n 60 "$tmp/build.log" >&2
    fail "packaging/build-deb.sh failed"
    exit 1
fi
debs=("$tmp"/out/ghostswap_*_*.deb)
deb=${debs[0]}
[[ -e $deb ]] || { fail "no ghostswap_*.deb built"; exit 1; }
pass "built ${deb##*/}"
if [[ -n ${KEEP_DEB:-} ]]; then
    mkdir -p "$KEEP_DEB" && cp "$tmp"/out/*.deb "$KEEP_DEB"/
fi

# 2. Install.
installed=true                  # from here on, purge on exit
if ! dpkg -i "$deb" > "$tmp/dpkg.log" 2>&1; then
    cat "$tmp/dpkg.log" >&2
    fail "dpkg -i ${deb##*/} failed"
    exit 1
fi
[[ $(dpkg-query -W -f='${db:Status-Status}' ghostswap) == installed ]] &&
    pass "dpkg -i ${deb##*/}" || fail "ghostswap is not installed after dpkg -i"

# 3. The plugin, by name.
dump=$(nbdkit ghostswap --dump-plugin 2>&1)
if grep -qx "name=ghostswap" <<< "$dump" &&
   grep -qx "path=$plugindir/nbdkit-ghostswap-plugin.so" <<< "$dump"; then
    pass "nbdkit ghostswap --dump-plugin: name=ghostswap, path=$plugindir/nbdkit-ghostswap-plugin.so"
else
    fail "nbdkit ghostswap --dump-plugin: $dump"
fi
grep -qx "version=$(dpkg-query -W -f='${Version}' ghostswap | sed 's/-[^-]*$//')" <<< "$dump" &&
    pass "plugin version is the package's" || fail "plugin version: $(grep '^version=' <<< "$dump")"
if command -v nbdinfo >/dev/null; then
    # shellcheck disable=SC2016  # $uri is for nbdkit --run
    size=$(nbdkit -U - ghostswap 64M control=none --run 'nbdinfo --size "$uri"' 2>"$tmp/nbdkit.err")
    [[ $size == 67108864 ]] && pass "nbdkit -U - ghostswap 64M serves 64 MiB" ||
        fail "nbdkit ghostswap 64M + nbdinfo --size: '$size' $(cat "$tmp/nbdkit.err")"
else
    echo "$prog: no nbdinfo: serving not checked"
fi

# 4. The programs.
for p in /usr/sbin/ghostswapd /usr/bin/ghostswapctl; do
    n=${p##*/}
    if out=$("$p" --help 2>&1) && [[ $out == *"Usage: $n"* ]]; then
        pass "$n --help"
    else
        fail "$n --help: $out"
    fi
    out=$("$p" --version 2>&1)
    [[ $out == *0.1* || $out == *"$(dpkg-query -W -f='${Version}' ghostswap | sed 's/-[^-]*$//')"* ]] &&
        pass "$n --version: $(head -n1 <<< "$out")" || fail "$n --version: $out"
done

# 5. Man pages.
for m in man1/nbdkit-ghostswap-plugin.1 man1/ghostswapctl.1 man8/ghostswapd.8 \
         man5/ghostswap.conf.5 man8/ghostswap-generator.8; do
    [[ -e /usr/share/man/$m.gz ]] && pass "/usr/share/man/$m.gz" ||
        fail "no /usr/share/man/$m.gz"
done
if command -v man >/dev/null; then
    for m in nbdkit-ghostswap-plugin ghostswapctl ghostswapd; do
        w=$(man -w "$m" 2>&1) && pass "man -w $m: $w" || fail "man -w $m: $w"
    done
fi

# 6. systemd units, helper, sleep hook, docs.
unitdir=/lib/systemd/system
for u in ghostswapd@ ghostswap-loop@ ghostswap-nbd@ ghostswap-nbd-swap@; do
    [[ -f $unitdir/$u.service ]] && pass "$unitdir/$u.service" ||
        fail "no $unitdir/$u.service"
done
[[ -f /usr/share/bash-completion/completions/ghostswapctl ]] && pass "bash completion of ghostswapctl" ||
    fail "no /usr/share/bash-completion/completions/ghostswapctl"
for x in /usr/libexec/ghostswap/ghostswap-unit-helper /lib/systemd/system-sleep/ghostswap; do
    [[ -x $x ]] && pass "$x" || fail "no executable $x"
done
/lib/systemd/system-sleep/ghostswap check > "$tmp/hook.out" 2>&1
rc=$?
[[ $rc == 0 || $rc == 1 ]] && pass "sleep hook check (exit $rc: $(head -n1 "$tmp/hook.out"))" ||
    fail "sleep hook check exited $rc: $(cat "$tmp/hook.out")"
# dh_compress gzips documents over 4 KiB: either form is the document.
for d in README.md README.systemd.md examples/swap0.conf examples/sleep.conf \
         examples/ghostswap.conf copyright; do
    f=/usr/share/doc/ghostswap/$d
    [[ -e $f || -e $f.gz ]] && pass "$f" || fail "no $f (nor $f.gz)"
done
[[ -d /var/lib/ghostswap && -d /etc/ghostswap ]] && pass "/etc/ghostswap and /var/lib/ghostswap" ||
    fail "no /etc/ghostswap or /var/lib/ghostswap"
if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify --man=no ghostswapd@pkgtest.service \
          ghostswap-loop@pkgtest.service ghostswap-nbd@pkgtest.service \
          ghostswap-nbd-swap@pkgtest.service 2>&1)
    rc=$?
    [[ $rc == 0 && -z $out ]] && pass "systemd-analyze verify of the installed units" ||
        fail "systemd-analyze verify (exit $rc): $out"
fi

# The generator, on the example configuration: the units it writes run
# programs that the package installed.
gen=/lib/systemd/system-generators/ghostswap-generator
if [[ -x $gen ]]; then
    pass "$gen"
    mkdir -p "$tmp/genroot/etc/ghostswap" "$tmp/gen"
    ex=/usr/share/doc/ghostswap/examples/ghostswap.conf
    { [[ -e $ex ]] && cat "$ex" || zcat "$ex.gz"; } > "$tmp/genroot/etc/ghostswap/ghostswap.conf"
    if GHOSTSWAP_GENERATOR_ROOT=$tmp/genroot "$gen" "$tmp/gen" "$tmp/gen" "$tmp/gen" 2>"$tmp/gen.err" &&
       [[ ! -s $tmp/gen.err && -f $tmp/gen/ghostswap@swap0.service &&
          -L $tmp/gen/swap.target.wants/ghostswap-swapon@swap0.service ]]; then
        pass "ghostswap-generator on the example: $(cd "$tmp/gen" && ls | tr '\n' ' ')"
    else
        fail "ghostswap-generator on the example: $(cat "$tmp/gen.err"; ls "$tmp/gen")"
    fi
    for exe in $(sed -n 's/^Exec[A-Za-z]*=[-@+!:]*\([^ ]*\).*/\1/p' "$tmp"/gen/*.service | sort -u); do
        [[ -x $exe ]] && pass "generated units run $exe: installed" ||
            fail "generated units run $exe, which is not installed"
    done
else
    fail "no executable $gen"
fi

# 7. Remove it, and nothing is left.  While a ghostswap device is active
# swap on this host (another test's, say), the prerm must refuse; then
# GHOSTSWAP_FORCE_REMOVE=1 removes it.
if /lib/systemd/system-sleep/ghostswap check > "$tmp/inuse" 2>&1; then
    if dpkg --purge ghostswap > "$tmp/purge.log" 2>&1; then
        installed=false
        pass "dpkg --purge ghostswap"
    else
        fail "dpkg --purge ghostswap: $(cat "$tmp/purge.log")"
    fi
else
    if dpkg --purge ghostswap > "$tmp/purge.log" 2>&1; then
        installed=false
        /lib/systemd/system-sleep/ghostswap check >/dev/null 2>&1 ||
            fail "dpkg --purge ghostswap went on while a ghostswap device is swap: $(cat "$tmp/inuse")"
    elif grep -q "refusing to be removed" "$tmp/purge.log"; then
        pass "dpkg --purge refused while ghostswap swap is active: $(head -n1 "$tmp/inuse")"
    else
        fail "dpkg --purge ghostswap: $(cat "$tmp/purge.log")"
    fi
    if $installed; then
        if GHOSTSWAP_FORCE_REMOVE=1 dpkg --purge ghostswap > "$tmp/purge.log" 2>&1; then
            installed=false
            pass "GHOSTSWAP_FORCE_REMOVE=1 dpkg --purge ghostswap"
        else
            fail "GHOSTSWAP_FORCE_REMOVE=1 dpkg --purge ghostswap: $(cat "$tmp/purge.log")"
        fi
    fi
fi
if nbdkit ghostswap --dump-plugin >/dev/null 2>&1; then
    fail "nbdkit still finds the plugin after the package was purged"
else
    pass "nbdkit no longer finds ghostswap"
fi
for f in "$plugindir/nbdkit-ghostswap-plugin.so" /usr/sbin/ghostswapd \
         /lib/systemd/system-sleep/ghostswap "$unitdir/ghostswapd@.service" \
         /lib/systemd/system-generators/ghostswap-generator; do
    [[ -e $f ]] && fail "$f is left after purge"
done

if ((failures > 0)); then
    echo "$prog: $failures check(s) failed" >&2
    exit 1
fi
echo "$prog: all checks passed"
