#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The data plugin's disk is writable and shared: writes, zeroing and
# trimming change exactly the bytes asked for and are seen by a second
# connection; block status reports never-written ranges as holes; with
# -r writes fail with EPERM.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin data
make_tmpdir
export tmpdir

cat >"$tmpdir/t.py" <<'PY'
import errno
K, M = 1024, 1024 * 1024
size = h.get_size()
assert size == 2 * M, size
assert not h.is_read_only()
for can in (h.can_flush, h.can_fua, h.can_trim, h.can_zero,
            h.can_multi_conn):
    assert can(), can

# What the data parameter wrote.
assert h.pread(8, 0) == b"start\0\0\0"
assert h.pread(2, size - 2) == b"\0\xff"

# Block status: the middle was never written, so it is a hole.
def extent_at(offset):
    found = []
    def cb(ctx, off, ents, err):
        found.append((ents[0], ents[1]))
        return 0
    h.block_status(64 * K, offset, cb, nbd.CMD_FLAG_REQ_ONE)
    return found[0]
length, flags = extent_at(512 * K)
assert flags == nbd.STATE_HOLE | nbd.STATE_ZERO, flags
length, flags = extent_at(0)
assert flags & nbd.STATE_HOLE == 0, flags

# Writes, seen by this connection and by a second one.
h.pwrite(b"hello", M)
h.pwrite(b"FUA", M + 100, nbd.CMD_FLAG_FUA)
h.flush()
assert h.pread(5, M) == b"hello"
assert h.pread(3, M + 100) == b"FUA"
length, flags = extent_at(M)
assert flags & nbd.STATE_HOLE == 0, flags

h2 = nbd.NBD()
h2.connect_uri(uri)
assert h2.pread(5, M) == b"hello"

# Zeroing and trimming make ranges read as zero, leaving the rest.
h.pwrite(b"\x11" * 300, 2 * K)
h.zero(100, 2 * K + 50)
assert h.pread(300, 2 * K) == b"\x11" * 50 + bytes(100) + b"\x11" * 150
h.trim(64 * K, M)
assert h.pread(200, M) == bytes(200)
assert h2.pread(200, M) == bytes(200)
h.zero(size, 0)
assert h.pread(4096, 0) == bytes(4096)
assert h.pread(2, size - 2) == bytes(2)
h2.shutdown()
PY
"$NBDKIT" -U - data '"start" @2097151 0xff' \
  --run 'nbdsh --base-allocation -u "$uri" -c "uri = \"$uri\"" \
                -c - <"$tmpdir/t.py"' ||
  fail "read/write checks failed"

# Read-only: writes are refused, the data is still there.
"$NBDKIT" -U - -r data '"start" @2097151 0xff' --run 'nbdsh -u "$uri" -c "
import errno
assert h.is_read_only()
try:
    h.pwrite(b\"x\", 0)
except nbd.Error as e:
    assert e.errnum == errno.EPERM, e.errnum
else:
    raise AssertionError(\"write to a read-only disk succeeded\")
assert h.pread(5, 0) == b\"start\"
"' || fail "read-only checks failed"
