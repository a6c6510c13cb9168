#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Block status on the memory plugin: a fresh disk is one hole, written
# ranges become data, and trimming or zeroing them makes holes again.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin memory
make_tmpdir
export tmpdir

# nbdinfo --map on a new disk: one zero hole covering everything.
map=$("$NBDKIT" -U - memory 1G --run 'nbdinfo --map "$uri"') ||
  fail "nbdinfo --map failed"
read -r off len type desc <<<"$map"
[ "$off" = 0 ] && [ "$len" = 1073741824 ] && [ "$type" = 3 ] &&
  [ "$(wc -l <<<"$map")" = 1 ] ||
  fail "unexpected map of a new disk: $map"

cat >"$tmpdir/t.py" <<'PY'
size = h.get_size()
HOLE = nbd.STATE_HOLE | nbd.STATE_ZERO

def extents(count, off, flags=0):
    """The base:allocation extents as a list of (offset, length, flags)."""
    result = []
    def cb(metacontext, offset, entries, err):
        if metacontext != nbd.CONTEXT_BASE_ALLOCATION:
            return 0
        pos = offset
        for i in range(0, len(entries), 2):
            result.append((pos, entries[i], entries[i+1]))
            pos += entries[i]
        return 0
    h.block_status(count, off, cb, flags)
    return result

def allocated(count, off):
    """Map [off, off+count) to a list of (start, end, is_data), merged."""
    runs = []
    pos = off
    while pos < off + count:
        for (o, l, f) in extents(off + count - pos, pos):
            assert o == pos
            data = not (f & nbd.STATE_HOLE)
            if f & nbd.STATE_HOLE:
                assert f & nbd.STATE_ZERO
            end = min(o + l, off + count)
            if runs and runs[-1][2] == data and runs[-1][1] == o:
                runs[-1] = (runs[-1][0], end, data)
            else:
                runs.append((o, end, data))
            pos = end
            if pos >= off + count:
                break
    return runs

M = 1 << 20
assert allocated(size, 0) == [(0, size, False)]

# Write 1 MiB at 16 MiB: exactly that range is data (the allocator's
# pages are smaller than 1 MiB and the write is aligned to them).
h.pwrite(b"\x01" * M, 16 * M)
assert allocated(size, 0) == [(0, 16*M, False), (16*M, 17*M, True),
                              (17*M, size, False)], allocated(size, 0)

# A small write somewhere else makes a data extent around it.
h.pwrite(b"x", 40 * M + 5)
runs = allocated(size, 0)
assert len(runs) == 5, runs
assert runs[3][0] <= 40 * M + 5 < runs[3][1] and runs[3][2], runs
assert runs[3][1] - runs[3][0] <= 64 * 1024, runs

# REQ_ONE returns a single extent starting at the offset.
e = extents(size - 16 * M, 16 * M, nbd.CMD_FLAG_REQ_ONE)
assert len(e) >= 1 and e[0][0] == 16 * M and not (e[0][2] & nbd.STATE_HOLE)

# Trim and zero free the data again.
h.trim(M, 16 * M)
h.zero(1, 40 * M + 5)
assert allocated(size, 0) == [(0, size, False)], allocated(size, 0)
assert h.pread(M, 16 * M) == bytes(M)
PY
"$NBDKIT" -U - memory 1G --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "block status checks failed"
