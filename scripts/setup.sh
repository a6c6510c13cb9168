#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Install what the project needs on Debian 12 (idempotently), then
# configure and build it in ./build.  Sourced by run-main.sh and
# run-tests.sh; usable on its own.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(
  # Build.
  meson ninja-build gcc clang pkg-config perl
  libgnutls28-dev libsystemd-dev libjson-c-dev libnbd-dev
  liblzma-dev zlib1g-dev libglib2.0-dev libclang-rt-14-dev libselinux1-dev
  libcurl4-gnutls-dev libssh-dev libext2fs-dev python3-dev libzstd-dev
  # Real peers used by the tests and benchmarks.
  libnbd-bin python3-libnbd nbdkit nbdkit-plugin-dev nbdkit-plugin-python
  qemu-utils
  nbd-server gnutls-bin dbus polkitd systemd socat
  fdisk gdisk xz-utils gzip tar valgrind
  openssh-server openssh-client mtools dosfstools xorriso genisoimage
  e2fsprogs cryptsetup-bin gddrescue
  # Manual pages.
  man-db
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null |
      grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

cd "$top"
if [ ! -f build/build.ninja ]; then
  meson setup build --werror
fi
ninja -C build
