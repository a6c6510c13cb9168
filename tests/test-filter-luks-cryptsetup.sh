#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The luks filter against volumes made by cryptsetup luksFormat --type
# luks1 (aes-xts-plain64, the default, and aes-cbc-essiv:sha256), with
# qemu-io's LUKS driver as the second implementation of the payload
# format: what qemu-io writes we read, what we write (and zero)
# qemu-io reads, and the header still opens with cryptsetup.  The size
# is the disk minus the payload offset; clients must use 512-byte
# blocks.  (device-mapper is not used: cryptsetup open needs the kernel
# module, which containers usually lack.)
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires cryptsetup --version
requires qemu-io --version
requires command -v nbdsh
requires_plugin file
requires_filter luks
make_tmpdir

printf 'correct horse' >"$tmpdir/pw"

qemu_io ()
{
  qemu-io --object secret,id=sec0,file="$tmpdir/pw" \
    --image-opts driver=luks,key-secret=sec0,file.filename="$img" "$@"
}

for spec in "aes-xts-plain64 512" "aes-cbc-essiv:sha256 256"; do
  set -- $spec
  img=$tmpdir/disk.img
  rm -f "$img"
  truncate -s 3M "$img"
  cryptsetup luksFormat -q --type luks1 --cipher "$1" --key-size "$2" \
      --pbkdf-force-iterations 1000 --key-file "$tmpdir/pw" "$img" ||
    fail "$1: luksFormat failed"
  payload=$(cryptsetup luksDump "$img" |
              awk '/^Payload offset:/ { print $3 * 512 }')
  [ -n "$payload" ] || fail "$1: no payload offset in luksDump"

  qemu_io -c 'write -P 0x5a 4096 8192' -c 'write -P 0x11 0 512' \
      >"$tmpdir/out" || fail "$1: qemu-io write failed: $(cat "$tmpdir/out")"

  export size=$(( 3 * 1024 * 1024 - payload ))
  "$NBDKIT" -U - file "$img" --filter=luks passphrase=+"$tmpdir/pw" \
      --run 'nbdsh -u "$uri" -c "
import os
size = int(os.environ[\"size\"])
assert h.get_size() == size, h.get_size()
assert h.get_block_size(nbd.SIZE_MINIMUM) == 512
assert not h.can_trim()
assert h.pread(512, 0) == b\"\\x11\" * 512
assert h.pread(8192, 4096) == b\"\\x5a\" * 8192
h.pwrite(b\"\\xa5\" * 65536, 65536)
h.zero(4096, 131072 + 512)
h.pwrite(b\"\\xee\" * 512, size - 512)
h.flush()
try:
    h.pread(100, 1)
    raise AssertionError(\"an unaligned read was accepted\")
except nbd.Error:
    pass
"' || fail "$1: reading and writing through the filter failed"

  qemu_io -c 'read -P 0x5a 4096 8192' -c 'read -P 0xa5 65536 65536' \
      -c 'read -P 0 131584 4096' -c "read -P 0xee $(( size - 512 )) 512" \
      >"$tmpdir/out" || fail "$1: qemu-io: $(cat "$tmpdir/out")"
  if grep -q "verification failed" "$tmpdir/out"; then
    fail "$1: qemu-io does not read what we wrote: $(cat "$tmpdir/out")"
  fi
  cryptsetup luksOpen --test-passphrase --key-file "$tmpdir/pw" "$img" ||
    fail "$1: cryptsetup no longer opens the header"
done
