#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The pattern plugin: every 8-byte big-endian word holds its offset, for
# aligned and unaligned reads, a size that is not a multiple of 8 and the
# largest size; the disk is read-only, and empty without size=.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires nbdinfo --version
requires_plugin pattern
make_tmpdir
export tmpdir

cat >"$tmpdir/t.py" <<'PY'
import errno, random, struct
size = h.get_size()

def expected(off, count):
    first = off & ~7
    words = b"".join(struct.pack(">Q", o)
                     for o in range(first, off + count + 8, 8))
    return words[off - first:off - first + count]

assert h.is_read_only()
assert h.can_multi_conn()
assert h.pread(16, 0) == bytes(7) + b"\0" + bytes(7) + b"\x08"

rng = random.Random(42)
for _ in range(200):
    off = rng.randrange(0, size)
    count = rng.randrange(1, min(size - off, 70000) + 1)
    assert h.pread(count, off) == expected(off, count), (off, count)
# The tail, cut short when the size is not a multiple of 8.
assert h.pread(11, size - 11) == expected(size - 11, 11)

try:
    h.pwrite(b"x", 0)
except nbd.Error as e:
    assert e.errnum == errno.EPERM, e.errnum
else:
    raise AssertionError("write to the read-only pattern disk succeeded")
PY
"$NBDKIT" -U - pattern 1000003 --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "checks on a 1000003 byte disk failed"
"$NBDKIT" -U - pattern 9223372036854775807 \
  --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "checks on the largest disk failed"

# A whole-disk copy matches the pattern generated independently.
"$NBDKIT" -U - pattern size=1M --run 'nbdcopy "$uri" "$tmpdir/disk"' ||
  fail "nbdcopy failed"
python3 -c '
import struct, sys
sys.stdout.buffer.write(b"".join(struct.pack(">Q", o) for o in range(0, 1 << 20, 8)))
' >"$tmpdir/expected"
cmp "$tmpdir/disk" "$tmpdir/expected" || fail "disk content is not the pattern"

# Without size= the disk is empty; a bad size is refused.
size=$("$NBDKIT" -U - pattern --run 'nbdinfo --size "$uri"') ||
  fail "nbdkit pattern without a size failed"
[ "$size" = 0 ] || fail "default size is $size, expected 0"
status=0
"$NBDKIT" -U - pattern 12X --run 'exit 0' 2>"$tmpdir/err" || status=$?
[ $status -eq 1 ] || fail "bad size: exit status $status, expected 1"
grep -q "12X\|suffix" "$tmpdir/err" || fail "bad size: message does not name it"
