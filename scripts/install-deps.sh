#!/bin/bash
# Install everything ghostswap needs to build, test and benchmark on
# Debian 12 (bookworm), from Debian's own archive.  Run as root.
#
# Idempotent: when every package is already installed it does nothing
# (pass --force to run apt-get anyway); packages already installed are
# never upgraded (--no-upgrade).
set -euo pipefail

packages=(
  # build
  build-essential gcc pkg-config meson ninja-build
  libzstd-dev nbdkit-plugin-dev libnbd-dev
  libssl-dev                      # libcrypto: AES-256-XTS at rest
  liburing-dev libfuse3-dev       # io_uring backing and ghostswapd
  libisal-dev                     # crc32c of backing pages (ISA-L)
  libjson-c-dev libmicrohttpd-dev # the service: control JSON, metrics over HTTP
  perl                            # pod2man, for the man pages
  # sanitizer builds of .ci/run: gcc's ThreadSanitizer runtime (build-tsan);
  # clang with its runtimes (libFuzzer, ASan, UBSan: only recommended by
  # clang, so named here) for the fuzz harnesses (build-fuzz)
  libtsan2 clang libclang-rt-dev
  # run and test (libnbd-bin: nbdinfo, nbdcopy, nbdfuse; systemd:
  # systemd-analyze for the unit tests; man-db, shellcheck: doc and script
  # checks; debhelper, dpkg-dev, fakeroot: the Debian package test)
  nbdkit libnbd-bin python3 python3-libnbd zstd fuse3
  util-linux procps systemd man-db shellcheck
  e2fsprogs                       # mkfs.ext4: tests/security
  debhelper dpkg-dev fakeroot
  prometheus                      # promtool, for the metrics tests
  # benchmarks
  fio
  # tests/vm: qemu guests with Debian's kernel (fetched by apt-get
  # download, never installed), a busybox initramfs with nbd-client
  qemu-system-x86 busybox-static nbd-client socat
)

force=false
[[ ${1-} == --force ]] && force=true

missing=()
for p in "${packages[@]}"; do
  if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
    missing+=("$p")
  fi
done

if ! $force && ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo $0)" >&2
  exit 1
fi

echo "install-deps: installing: ${missing[*]:-${packages[*]}}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends --no-upgrade "${packages[@]}"
