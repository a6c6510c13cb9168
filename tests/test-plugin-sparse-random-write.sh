#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Writing to the sparse-random plugin checks instead of storing: a copy of
# the disk onto itself (nbdcopy, qemu-img convert) succeeds, writes of the
# bytes already there succeed, and writes, zeroing or trimming that would
# change the disk fail with EIO.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires_plugin sparse-random
make_tmpdir
export tmpdir

"$NBDKIT" -U - sparse-random size=1G seed=5 \
  --run 'nbdcopy "$uri" "$uri"' || fail "nbdcopy onto itself failed"
"$NBDKIT" -U - sparse-random size=256M seed=6 random-content=true \
  --run 'nbdcopy "$uri" "$uri"' ||
  fail "nbdcopy onto itself with random-content failed"

if qemu-img --version >/dev/null 2>&1; then
  "$NBDKIT" -U - sparse-random size=128M seed=7 \
    --run 'qemu-img convert -n -f raw -O raw "$uri" "$uri"' ||
    fail "qemu-img convert onto itself failed"
else
  echo "$0: qemu-img not found, skipping that part"
fi

"$NBDKIT" -U - sparse-random size=64M seed=8 runlength=65536 \
  --run 'nbdsh --base-allocation -u "$uri" -c "
import errno
B = 4096
size = h.get_size()
assert not h.is_read_only()
assert h.can_zero() and h.can_trim() and h.can_flush()

# Find the first data extent and the first hole.
kinds = {}
offset = 0
while len(kinds) < 2:
    def cb(ctx, off, ents, err):
        global offset
        for i in range(0, len(ents), 2):
            kind = \"hole\" if ents[i + 1] & nbd.STATE_HOLE else \"data\"
            kinds.setdefault(kind, offset)
            offset += ents[i]
        return 0
    h.block_status(size - offset, offset, cb)
data, hole = kinds[\"data\"], kinds[\"hole\"]

def expect_eio(what, fn):
    try:
        fn()
    except nbd.Error as e:
        assert e.errnum == errno.EIO, (what, e.errnum)
    else:
        raise AssertionError(what + \" succeeded\")

block = h.pread(B, data)
assert block != bytes(B)
h.pwrite(block, data)
# A write that does not start on a block boundary (upstream nbdkit 1.32
# wrongly fails this one).
h.pwrite(block[100:200], data + 100)
h.pwrite(bytes(B), hole)
h.zero(B, hole)
h.trim(B, hole)
h.flush()
expect_eio(\"changed write\", lambda: h.pwrite(b\"x\" * 10, data))
expect_eio(\"zeroes over data\", lambda: h.pwrite(bytes(B), data))
expect_eio(\"data into a hole\", lambda: h.pwrite(b\"\\x01\", hole + 7))
expect_eio(\"zero over data\", lambda: h.zero(B, data))
expect_eio(\"trim over data\", lambda: h.trim(B, data))
# The disk is unchanged.
assert h.pread(B, data) == block
assert h.pread(B, hole) == bytes(B)
"' || fail "write checks failed"
