#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The sparse-random plugin's disk: block status splits it into 4096-byte
# aligned data and holes, holes read as zeroes, each data block is one
# non-zero byte repeated (or random bytes with random-content=true), and
# percent= sets roughly how much is data, exactly for 0 and 100.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires_plugin sparse-random
make_tmpdir
export tmpdir

# Walk the whole disk by block status and check every byte.  PERCENT is
# the expected share of data, with TOLERANCE; RANDOM_CONTENT says which
# kind of data blocks to expect.
cat >"$tmpdir/t.py" <<'PY'
import os
B = 4096
size = h.get_size()
percent = float(os.environ["PERCENT"])
tolerance = float(os.environ["TOLERANCE"])
random_content = os.environ["RANDOM_CONTENT"] == "true"

extents = []
offset = 0
while offset < size:
    def cb(ctx, off, ents, err):
        for i in range(0, len(ents), 2):
            extents.append((ents[i], ents[i + 1]))
        return 0
    start = len(extents)
    h.block_status(min(size - offset, 1 << 30), offset, cb)
    offset += sum(length for length, _ in extents[start:])

data = 0
offset = 0
for length, flags in extents:
    end = offset + length
    assert offset % B == 0 and (end % B == 0 or end == size), (offset, end)
    buf = h.pread(length, offset)
    if flags & nbd.STATE_HOLE:
        assert flags & nbd.STATE_ZERO, flags
        assert buf == bytes(length), offset
    else:
        data += length
        for b in range(0, length, B):
            block = buf[b:b + B]
            if random_content:
                assert len(set(block)) > min(len(block), 4096) // 32, \
                    (offset + b, len(set(block)))
            else:
                assert block[0] != 0 and block == block[:1] * len(block), \
                    offset + b
    offset = end
assert offset == size, (offset, size)
share = 100.0 * data / size
assert abs(share - percent) <= tolerance, (share, percent)
print("%d extents, %.1f%% data" % (len(extents), share))
PY

# run PERCENT TOLERANCE RANDOM_CONTENT PARAMS...
run ()
{
  PERCENT=$1 TOLERANCE=$2 RANDOM_CONTENT=$3
  export PERCENT TOLERANCE RANDOM_CONTENT
  shift 3
  "$NBDKIT" -U - sparse-random "$@" \
    --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' ||
    fail "sparse-random $*: checks failed"
}

run 10 5 false size=64M seed=7 runlength=65536
run 50 10 false size=64M seed=8 percent=50 runlength=131072
run 25 10 true size=16M seed=9 percent=25 runlength=65536 random-content=true
run 0 0 false size=16M seed=1 percent=0
run 100 0 false size=16M seed=1 percent=100
run 100 0 false size=1000 seed=1 percent=100

# percent=0 is a disk of zeroes, whatever the seed.
"$NBDKIT" -U - sparse-random size=4M seed=3 percent=0 \
  --run 'nbdcopy "$uri" "$tmpdir/actual"' || fail "nbdcopy failed"
head -c 4194304 /dev/zero >"$tmpdir/expected"
cmp "$tmpdir/actual" "$tmpdir/expected" || fail "percent=0 disk is not zero"
