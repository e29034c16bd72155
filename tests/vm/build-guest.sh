#!/bin/bash
# build-guest.sh - the guest of the vm tests: Debian's own kernel and an
# initramfs with busybox, nbd-client (with the libraries ldd names), the
# kernel modules the tests load, and a static build of the swap workload.
#
#   tests/vm/build-guest.sh OUTDIR WORKLOAD_SOURCE
#
# Writes OUTDIR/vmlinuz and OUTDIR/initramfs.gz and prints nothing else
# on success.  Cached: the kernel package is downloaded and unpacked once
# (OUTDIR/kernel); the initramfs is rebuilt only when this script, init.sh
# or the workload source is newer than it.  Nothing is installed on the
# host: the package is fetched with `apt-get download` (the one that
# linux-image-amd64 depends on) and unpacked with `dpkg-deb -x`.  Set
# GHOSTSWAP_VM_KERNEL_DEB to a linux-image-*.deb to use that instead.
#
# Exits 77 with the reason on standard output when something the guest
# needs is not available (no qemu, no busybox-static, no nbd-client, the
# kernel package cannot be fetched), 1 on any other error.  Several tests
# may run it at once: it takes a lock in OUTDIR.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build-guest.sh OUTDIR WORKLOAD_SOURCE}
workload_src=${2:?usage: build-guest.sh OUTDIR WORKLOAD_SOURCE}

skip () { echo "build-guest: skipped: $*"; exit 77; }
die () { echo "build-guest: error: $*" >&2; exit 1; }

command -v qemu-system-x86_64 >/dev/null ||
    skip "no qemu-system-x86_64 (Debian package qemu-system-x86)"
busybox=
for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox=$b; break; fi
done
[ -n "$busybox" ] || skip "no static busybox (Debian package busybox-static)"
nbd_client=$(command -v nbd-client || true)
[ -n "$nbd_client" ] || nbd_client=$( [ -x /usr/sbin/nbd-client ] && echo /usr/sbin/nbd-client || true)
[ -n "$nbd_client" ] || skip "no nbd-client (Debian package nbd-client)"
command -v gcc >/dev/null || skip "no gcc"
[ -e "$(gcc -print-file-name=libc.a)" ] || skip "no static libc (libc6-dev)"

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

# ---- 1. The kernel: download and unpack once. ----
kdir=$out/kernel
if [ ! -e "$kdir/.done" ]; then
    rm -rf "$kdir"
    mkdir -p "$kdir/deb"
    deb=${GHOSTSWAP_VM_KERNEL_DEB:-}
    if [ -z "$deb" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
              awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
        [ -n "$pkg" ] ||
            skip "apt-cache depends linux-image-amd64 names no kernel package (no apt lists? run apt-get update)"
        if ! (cd "$kdir/deb" && apt-get download "$pkg") >"$kdir/download.log" 2>&1; then
            skip "apt-get download $pkg failed: $(grep -m1 -E '^(E|W):' "$kdir/download.log" || tail -n 1 "$kdir/download.log")"
        fi
        deb=$(ls "$kdir"/deb/*.deb)
    fi
    [ -f "$deb" ] || skip "kernel package $deb not found"
    dpkg-deb -x "$deb" "$kdir/root" || die "dpkg-deb -x $deb failed"
    rm -rf "$kdir/deb"
    touch "$kdir/.done"
fi
vmlinuz=$(ls "$kdir"/root/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$vmlinuz" ] || die "no vmlinuz in the kernel package"
kver=${vmlinuz##*/vmlinuz-}
mods=$kdir/root/lib/modules/$kver
cp -u "$vmlinuz" "$out/vmlinuz"

# ---- 2. The initramfs, when its inputs changed. ----
img=$out/initramfs.gz
if [ -e "$img" ] && [ "$img" -nt "$0" ] && [ "$img" -nt "$here/init.sh" ] &&
   [ "$img" -nt "$workload_src" ] && [ "$img" -nt "$here/guest-monitor.c" ] &&
   [ "$img" -nt "$kdir/.done" ]; then
    exit 0
fi

root=$out/initramfs.d
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,lib/modules}
cp "$busybox" "$root/bin/busybox"
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init"

# nbd-client and the libraries it links (with their dynamic loader).
cp "$nbd_client" "$root/sbin/nbd-client"
ldd "$nbd_client" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' |
while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# Debian's lib64 link for the loader path written in the binary.
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || {
    mkdir -p "$root/lib64"
    cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
}

# The modules, each after the ones its depends= names.
declare -A seen=()
order=()
find_mod () {
    local f
    f=$(find "$mods/kernel" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" | head -n 1)
    [ -n "$f" ] || die "module $1 not in the kernel package"
    echo "$f"
}
mod_depends () {
    local f=$1
    case $f in
        *.xz) xz -dc "$f" ;;
        *.zst) zstd -dc "$f" ;;
        *.gz) gzip -dc "$f" ;;
        *) cat "$f" ;;
    esac | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}
add_mod () {
    local m=${1//-/_} f d
    [ -z "${seen[$m]:-}" ] || return 0
    seen[$m]=1
    f=$(find_mod "$m")
    for d in $(mod_depends "$f"); do add_mod "$d"; done
    case $f in
        *.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
        *.zst) zstd -dc "$f" >"$root/lib/modules/$m.ko" ;;
        *.gz) gzip -dc "$f" >"$root/lib/modules/$m.ko" ;;
        *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
    order+=("$m")
}
# virtio_pci: the bus; virtio_blk: the NBD disk; virtio_net: the network
# to the guestfwd; nbd: the kernel client; zram: the benchmark's anchor.
for m in virtio_pci virtio_blk virtio_net nbd zram; do add_mod "$m"; done
printf '%s\n' "${order[@]}" >"$root/lib/modules/order"

# The workload, static (the guest has no libc of its own).
gcc -O2 -D_GNU_SOURCE -static -o "$root/bin/swap-workload" "$workload_src" ||
    die "cannot build $workload_src statically"
# The guest's view of a stall, locked in memory (guest-monitor.c).
gcc -O2 -Wall -static -o "$root/bin/guest-monitor" "$here/guest-monitor.c" ||
    die "cannot build guest-monitor.c statically"

(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$img.tmp"
mv "$img.tmp" "$img"
rm -rf "$root"
