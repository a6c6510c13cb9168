#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Random access through the xz filter with a tiny block cache
# (xz-max-depth=1 and 2): seeded random reads, reads crossing block
# boundaries and many reads in flight at once all return the bytes of
# `xz -d`.  Also a file of two concatenated streams with stream padding,
# and prefetch (NBD_CMD_CACHE) requests.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires xz --version
requires nbdsh --version
requires nbdcopy --version
requires_plugin file
requires_filter xz
make_tmpdir
export tmpdir

# 6 MiB of mixed data in 256 KiB blocks: 24 blocks.
python3 - "$tmpdir/data" <<'PY' || fail "could not make the test data"
import random, sys
r = random.Random(7)
with open(sys.argv[1], "wb") as f:
    for i in range(24):
        if i % 3 == 0:
            f.write(r.randbytes(256 * 1024))
        else:
            f.write((b"block %d " % i) * (256 * 1024 // len(b"block %d " % i)))
            f.write(b"\0" * (256 * 1024 % len(b"block %d " % i)))
PY
xz --keep -0 --block-size=256KiB "$tmpdir/data" || fail "xz failed"
xz -dc "$tmpdir/data.xz" >"$tmpdir/expected"
cmp "$tmpdir/data" "$tmpdir/expected" || fail "xz round trip failed"

# Two streams and 8 bytes of stream padding.
cat "$tmpdir/data.xz" "$tmpdir/data.xz" >"$tmpdir/two.xz"
printf '\0\0\0\0\0\0\0\0' >>"$tmpdir/two.xz"
xz -dc "$tmpdir/two.xz" >"$tmpdir/two-expected" ||
  fail "xz -d refused the two-stream file"

check_random ()
{
  local file=$1 expected=$2 depth=$3
  export expected
  "$NBDKIT" -U - --filter=xz file "$file" xz-max-depth="$depth" \
      --run 'nbdsh -u "$uri" -c "
import os, random
want = open(os.environ[\"expected\"], \"rb\").read()
size = h.get_size()
assert size == len(want), (size, len(want))
r = random.Random(1)
block = 256 * 1024
checks = []
# Random offsets and lengths.
for i in range(200):
    count = r.randint(1, 600 * 1024)
    off = r.randint(0, size - 1)
    count = min(count, size - off)
    checks.append((off, count))
# Around every block boundary, and the very end.
for b in range(1, size // block):
    checks.append((b * block - 3, 7))
checks.append((size - 1, 1))
for off, count in checks:
    got = h.pread(count, off)
    assert got == want[off:off+count], (\"sync\", off, count)
# Many requests in flight at once, jumping around.
bufs = []
for i in range(64):
    off = r.randint(0, size - 65536)
    buf = nbd.Buffer(65536)
    h.aio_pread(buf, off)
    bufs.append((off, buf))
while h.aio_in_flight() > 0:
    h.poll(-1)
for off, buf in bufs:
    assert buf.to_bytearray() == want[off:off+65536], (\"aio\", off)
# A prefetch, then reads of what it loaded.
h.cache(2 * block, 5 * block)
assert h.pread(block, 5 * block) == want[5 * block:6 * block]
"' || fail "$file with xz-max-depth=$depth: a read returned wrong data"
}
check_random "$tmpdir/data.xz" "$tmpdir/expected" 1
check_random "$tmpdir/data.xz" "$tmpdir/expected" 2
check_random "$tmpdir/two.xz" "$tmpdir/two-expected" 1

# Sequential copy of the two-stream file.
"$NBDKIT" -U - --filter=xz file "$tmpdir/two.xz" xz-max-depth=1 \
    --run 'nbdcopy "$uri" "$tmpdir/copy"' || fail "nbdcopy failed"
cmp "$tmpdir/two-expected" "$tmpdir/copy" ||
  fail "nbdcopy of the two-stream file differs from xz -d output"
