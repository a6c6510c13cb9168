#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Data written to the memory plugin reads back intact: a whole-disk copy
# over several connections, unaligned writes across page boundaries,
# zero and trim making ranges read as zero, and FUA/flush succeeding.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires nbdsh --version
requires_plugin memory
make_tmpdir
export tmpdir

size=$(( 32 << 20 ))
head -c $size /dev/urandom >"$tmpdir/in"
# Leave a zero gap so zero detection in the copy is exercised too.
dd if=/dev/zero of="$tmpdir/in" bs=1M seek=8 count=4 conv=notrunc status=none

# Copy in and out with 4 connections each, then compare.
"$NBDKIT" -U - memory $size --run '
  nbdcopy --connections=4 "$tmpdir/in" "$uri" &&
  nbdcopy --connections=4 "$uri" "$tmpdir/out"
' || fail "copying through the memory plugin failed"
cmp "$tmpdir/in" "$tmpdir/out" || fail "data read back differs from data written"

cat >"$tmpdir/t.py" <<'PY'
import os
size = h.get_size()
assert size == 4 << 20, size
assert h.can_multi_conn() and h.can_fua() and h.can_flush()
assert h.can_trim() and h.can_zero() and h.can_fast_zero() and h.can_cache()
assert not h.is_read_only()

model = bytearray(size)
def write(buf, off, flags=0):
    h.pwrite(buf, off, flags)
    model[off:off+len(buf)] = buf
def zero(count, off, flags=0):
    h.zero(count, off, flags)
    model[off:off+count] = bytes(count)
def trim(count, off):
    h.trim(count, off)
    model[off:off+count] = bytes(count)
def check(off, count):
    got = h.pread(count, off)
    assert got == bytes(model[off:off+count]), "mismatch at %d+%d" % (off, count)

# Unaligned writes straddling 4K, 32K and 64K boundaries.
for off in (0, 1, 4095, 32767, 65535, 100000, 3 << 20):
    write(os.urandom(70001), off)
check(0, size)

# Writes with FUA, then flush.
write(os.urandom(4096), 12345, nbd.CMD_FLAG_FUA)
h.flush()
check(0, size)

# Zero: unaligned, aligned, a page exactly, with and without MAY_TRIM
# and fast zero; trim likewise.
zero(1000, 5)
zero(65536, 65536)
zero(32768, 1 << 20, nbd.CMD_FLAG_NO_HOLE)
zero(200000, 150000, nbd.CMD_FLAG_FAST_ZERO)
zero(4096, 3 << 20, nbd.CMD_FLAG_FUA)
trim(123457, 2 << 20)
trim(1 << 20, 3 << 20)
check(0, size)

# Cache is accepted.
h.cache(1 << 20, 0)

# Zero the whole disk: everything reads back as zero.
zero(size, 0)
assert h.pread(size, 0) == bytes(size)
PY
"$NBDKIT" -U - memory 4M --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "nbdsh checks failed"
