#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The offset filter serves exactly the bytes [offset, offset+range) of
# the file below: the size, a checksum of the whole window against dd of
# the file, writes landing at the shifted place (and nowhere else), and
# block status shifted back.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires nbdinfo --version
requires qemu-img --version
requires_plugin file
requires_plugin memory
requires_filter offset
make_tmpdir
export tmpdir

# A 6 MiB file of random bytes; the window is 2 MiB starting at 1 MiB+3.
head -c $(( 6 << 20 )) /dev/urandom >"$tmpdir/disk"
offset=$(( (1 << 20) + 3 ))
range=$(( 2 << 20 ))

# Size.
size=$("$NBDKIT" -U - --filter=offset file "$tmpdir/disk" \
         offset=$offset range=$range --run 'nbdinfo --size "$uri"') ||
  fail "nbdinfo failed"
[ "$size" = $range ] || fail "size is $size, expected $range"

# Without range= the window runs to the end of the file.
size=$("$NBDKIT" -U - --filter=offset file "$tmpdir/disk" offset=$offset \
         --run 'nbdinfo --size "$uri"') || fail "nbdinfo failed"
[ "$size" = $(( (6 << 20) - offset )) ] ||
  fail "size without range= is $size"

# Every byte of the window, by nbdcopy and by qemu-img, against dd.
dd if="$tmpdir/disk" of="$tmpdir/expected" iflag=skip_bytes,count_bytes \
   skip=$offset count=$range status=none
"$NBDKIT" -U - --filter=offset file "$tmpdir/disk" \
    offset=$offset range=$range \
    --run 'nbdcopy "$uri" "$tmpdir/copy" &&
           qemu-img convert -f raw -O raw "$uri" "$tmpdir/qemu"' ||
  fail "copying the window failed"
[ "$(md5sum <"$tmpdir/copy")" = "$(md5sum <"$tmpdir/expected")" ] ||
  fail "nbdcopy of the window differs from dd of the file"
[ "$(md5sum <"$tmpdir/qemu")" = "$(md5sum <"$tmpdir/expected")" ] ||
  fail "qemu-img copy of the window differs from dd of the file"

# Writes through the filter land at offset+N in the file, and the bytes
# just outside the window are untouched.
cp "$tmpdir/disk" "$tmpdir/before"
"$NBDKIT" -U - --filter=offset file "$tmpdir/disk" \
    offset=$offset range=$range --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"A\" * 4096, 0)
h.pwrite(b\"B\" * 1000, h.get_size() - 1000)
h.zero(512, 8192)
h.flush()
"' || fail "writing through the filter failed"
python3 - "$tmpdir/before" "$tmpdir/disk" $offset $range <<'PY' ||
import sys
before = open(sys.argv[1], "rb").read()
after = open(sys.argv[2], "rb").read()
off, rng = int(sys.argv[3]), int(sys.argv[4])
expect = bytearray(before)
expect[off:off+4096] = b"A" * 4096
expect[off+rng-1000:off+rng] = b"B" * 1000
expect[off+8192:off+8192+512] = bytes(512)
assert after == bytes(expect), "the file does not hold what was written"
PY
  fail "writes did not land at the shifted offsets"

# Block status is shifted back: in a sparse 10M file with data only at
# [3M, 3M+64K), offset=2M range=4M shows data only at [1M, 1M+64K).
truncate -s 10M "$tmpdir/sparse"
dd if=/dev/urandom of="$tmpdir/sparse" bs=64K seek=48 count=1 \
   conv=notrunc status=none
map=$("$NBDKIT" -U - file "$tmpdir/sparse" --run 'nbdinfo --map "$uri"')
grep -q "hole" <<<"$map" ||
  skip "the file system of $tmpdir does not report holes"
map=$("$NBDKIT" -U - --filter=offset file "$tmpdir/sparse" \
        offset=2M range=4M --run 'nbdinfo --map --json "$uri"') ||
  fail "nbdinfo --map through the filter failed"
python3 - "$map" <<'PY' || fail "block status through the filter is wrong: $map"
import json, sys
extents = json.loads(sys.argv[1])
M = 1 << 20
pos = 0
for e in extents:
    assert e["offset"] == pos, extents
    pos += e["length"]
assert pos == 4 * M, "extents cover %d bytes" % pos
def is_data(p):
    for e in extents:
        if e["offset"] <= p < e["offset"] + e["length"]:
            return not (e["type"] & 1)
assert is_data(M) and is_data(M + 65535), extents
assert not is_data(0) and not is_data(M - 1), extents
assert not is_data(M + 65536) and not is_data(4 * M - 1), extents
PY
