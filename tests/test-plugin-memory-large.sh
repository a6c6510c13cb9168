#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The largest memory disk, 2^63-1 bytes: data written at the very start,
# in the middle and up to the last byte reads back, and block status
# describes those far-apart ranges.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin memory
make_tmpdir
export tmpdir

cat >"$tmpdir/t.py" <<'PY'
import os
size = h.get_size()
assert size == (1 << 63) - 1, size

writes = {}
for off in (0, 1 << 32, (1 << 62) + 12345, (1 << 63) - (8 << 20) - 7,
            size - (1 << 20), size - 1):
    buf = os.urandom(min(65536, size - off))
    h.pwrite(buf, off)
    writes[off] = buf
for off, buf in writes.items():
    assert h.pread(len(buf), off) == buf, "mismatch at %d" % off

# Block status near the end: data at the last page, holes before it.
seen = []
def cb(metacontext, offset, entries, err):
    if metacontext == nbd.CONTEXT_BASE_ALLOCATION:
        seen.append((offset, list(entries)))
    return 0
h.block_status(1 << 30, size - (1 << 30), cb)
(offset, entries), = seen
assert offset == size - (1 << 30)
assert entries[-1] == 0, entries                  # last extent is data
assert entries[1] & nbd.STATE_HOLE, entries       # first is a hole
assert sum(entries[0::2]) == 1 << 30, entries

# A 4 GiB - 1 status request in the middle of nowhere is one hole (the
# server may shorten it a little, to a block boundary).
seen.clear()
h.block_status((1 << 32) - 1, 1 << 61, cb)
(offset, entries), = seen
assert len(entries) == 2, entries
assert entries[1] == nbd.STATE_HOLE | nbd.STATE_ZERO, entries
assert entries[0] >= (1 << 32) - 4096, entries

# Zero the last bytes and the first bytes again.
h.zero(1, size - 1)
assert h.pread(1, size - 1) == b"\0"
h.trim(65536, 0)
assert h.pread(65536, 0) == bytes(65536)
PY
"$NBDKIT" -U - memory 9223372036854775807 \
  --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "large disk checks failed"
