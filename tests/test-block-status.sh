#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# NBD_CMD_BLOCK_STATUS with base:allocation on a memory export with a
# few writes: never-written ranges are holes that read as zero, written
# ranges are data; REQ_ONE gives one extent; replies obey the shape rules
# of nbd-protocol.md "NBD_REPLY_TYPE_BLOCK_STATUS".

source "$srcdir/functions.sh"
# tests/raw_nbd.py is imported from the source tree: keep it clean.
export PYTHONDONTWRITEBYTECODE=1
requires nbdsh --version
requires_plugin memory

# nbdsh part.  The memory plugin may track allocation in pages of up to
# 64K, so writes are 64K-aligned and checks stay well inside them.
"$NBDKIT" -U - memory 1M --run '
  nbdsh --base-allocation -u "$uri" -c "
import errno
K = 1024
SIZE = 1024 * K
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)

h.pwrite(b\"\\x11\" * (64 * K), 256 * K)
h.pwrite(b\"\\x22\" * (128 * K), 640 * K)

def extents(count, offset, flags=0):
    got = []
    def cb(ctx, off, ents, err):
        assert ctx == nbd.CONTEXT_BASE_ALLOCATION, ctx
        assert off == offset, (off, offset)
        got.append(list(zip(ents[0::2], ents[1::2])))
        return 0
    h.block_status(count, offset, cb, flags)
    assert len(got) == 1, got
    return got[0]

# Build a map of the whole export, following up short replies.
status = []                     # (start, end, flags)
off = 0
while off < SIZE:
    ents = extents(SIZE - off, off)
    assert ents, \"empty block status reply\"
    for length, fl in ents[:-1]:
        assert length > 0
    assert sum(l for l, f in ents[:-1]) < SIZE - off, \"extents after the end\"
    for length, fl in ents:
        assert length > 0, \"zero-length extent\"
        status.append((off, off + length, fl))
        off += length
# The last extent may run past the request, but not past the export.
assert status[-1][1] >= SIZE

def flags_at(pos):
    for s, e, fl in status:
        if s <= pos < e:
            return fl
    raise AssertionError(\"offset %d not covered\" % pos)

HOLE, ZERO = nbd.STATE_HOLE, nbd.STATE_ZERO
# Never written: holes (and zero).
for pos in (0, 64 * K, 128 * K, 512 * K, 900 * K, SIZE - 1):
    assert flags_at(pos) & HOLE, (\"not a hole at %d\" % pos, status)
    assert flags_at(pos) & ZERO, (\"hole not zero at %d\" % pos, status)
# Written: data, not zero.
for pos in (256 * K, 300 * K, 320 * K - 1, 640 * K, 700 * K, 768 * K - 1):
    assert flags_at(pos) == 0, (\"not data at %d\" % pos, status)
# Every hole really reads as zero.
for s, e, fl in status:
    if fl & ZERO:
        e = min(e, SIZE)
        assert h.pread(e - s, s) == bytes(e - s), \"zero extent has data\"

# REQ_ONE: exactly one extent, no longer than the request.
one = extents(SIZE - 256 * K, 256 * K, nbd.CMD_FLAG_REQ_ONE)
assert len(one) == 1, one
assert 0 < one[0][0] <= 64 * K and one[0][1] == 0, one
one = extents(4096, 0, nbd.CMD_FLAG_REQ_ONE)
assert len(one) == 1 and one[0][0] <= 4096 and one[0][1] & HOLE, one
one = extents(SIZE, 0, nbd.CMD_FLAG_REQ_ONE)
assert len(one) == 1 and one[0][0] <= 256 * K and one[0][1] & HOLE, one

# Unaligned small queries inside data and inside a hole.
ents = extents(1000, 256 * K + 100)
assert ents[0][1] == 0 and ents[0][0] > 0, ents
ents = extents(1000, 100)
assert ents[0][1] & HOLE, ents

# A query past the end is an error (EINVAL), not a crash.
h.set_strict_mode(0)
try:
    h.block_status(4096, SIZE - 512, lambda *a: 0)
    assert False, \"block status past the end succeeded\"
except nbd.Error as e:
    assert e.errnum == errno.EINVAL, e
assert h.pread(512, 256 * K) == b\"\\x11\" * 512
"
' || fail "nbdsh block status checks failed"

# Raw part: context ids, chunk shape, unknown namespaces.
"$NBDKIT" -U - memory 1M --run '
  RAW_NBD_SOCKET="$unixsocket" /usr/bin/python3 -c "
import sys, struct
sys.path.insert(0, \"$srcdir\")
import raw_nbd as r
K = 1024
c = r.Connection.from_env()
c.handshake_newstyle()
c.opt_structured_reply()
# Unknown namespaces are ignored; base:allocation is selected once.
ctx = c.opt_set_meta_context([b\"x-nosuch:thing\", b\"base:allocation\"])
assert list(ctx) == [b\"base:allocation\"], ctx
cid = ctx[b\"base:allocation\"]
c.opt_go()
c.write(128 * K, b\"\\x33\" * (64 * K))
rep = c.request(r.CMD_BLOCK_STATUS, 0, 1024 * K)
assert not rep.simple and rep.error == 0, rep
bs = [ch for ch in rep.chunks if ch[1] == r.REPLY_TYPE_BLOCK_STATUS]
assert len(bs) == 1, rep
flags, typ, payload = bs[0]
assert (len(payload) - 4) % 8 == 0 and len(payload) >= 12, len(payload)
got_cid, = struct.unpack(\">I\", payload[:4])
assert got_cid == cid, (got_cid, cid)
descs = [struct.unpack(\">II\", payload[i:i + 8]) for i in range(4, len(payload), 8)]
assert all(l > 0 for l, f in descs), descs
assert sum(l for l, f in descs[:-1]) < 1024 * K, descs
# REQ_ONE on the wire: exactly one descriptor within the request.
for off, n in ((0, 1024 * K), (128 * K, 4096), (130 * K, 1024 * K - 130 * K)):
    rep = c.request(r.CMD_BLOCK_STATUS, off, n, r.CMD_FLAG_REQ_ONE)
    assert rep.error == 0, rep
    (_, _, payload), = [ch for ch in rep.chunks if ch[1] == r.REPLY_TYPE_BLOCK_STATUS]
    assert len(payload) == 12, (off, n, payload)
    l, f = struct.unpack(\">II\", payload[4:])
    assert 0 < l <= n, (off, n, l)
c.disconnect()

# Selecting only unknown contexts: NBD_REP_ACK with no context, and
# then block status is refused with EINVAL.
c = r.Connection.from_env()
c.handshake_newstyle()
c.opt_structured_reply()
assert c.opt_set_meta_context([b\"x-nosuch:thing\"]) == {}
c.opt_go()
rep = c.request(r.CMD_BLOCK_STATUS, 0, 4096)
assert rep.error == r.EINVAL, rep
assert c.read(128 * K, 4) == b\"\\x33\" * 4
c.disconnect()
"
' || fail "raw block status checks failed"

echo "$0: ok"
