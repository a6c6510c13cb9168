#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Large data plugin disks described by a few characters: repeats of zero
# bytes, repeated groups with gaps, a move to the largest offset.  The
# sizes and the bytes at chosen offsets are exact, and the untouched
# ranges are reported as holes.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires_plugin data
make_tmpdir
export tmpdir

# 1 TiB of zeroes and a final 1.
"$NBDKIT" -U - data '0*1099511627776 1' --run 'nbdsh --base-allocation -u "$uri" -c "
T = 1 << 40
assert h.get_size() == T + 1, h.get_size()
assert h.pread(1, T) == b\"\\x01\"
assert h.pread(4096, T // 2) == bytes(4096)
found = []
h.block_status(1 << 30, T // 2,
               lambda ctx, off, ents, err: found.append(ents[1]) or 0)
assert found[0] == nbd.STATE_HOLE | nbd.STATE_ZERO, found
"' || fail "1 TiB disk checks failed"

# 1024 repeats of a 1 MiB + 1 byte group with data at both ends.
"$NBDKIT" -U - data '( 1 2 @1048576 3 )*1024' --run 'nbdsh -u "$uri" -c "
G = 1048577
assert h.get_size() == 1024 * G, h.get_size()
for i in (0, 1, 511, 1022):
    assert h.pread(2, i * G) == b\"\\x01\\x02\", i
    assert h.pread(3, i * G + G - 2) == b\"\\x00\\x03\\x01\", i
assert h.pread(2, 1024 * G - 2) == b\"\\x00\\x03\"
assert h.pread(1000, 1024 * G // 2 + 5000) == bytes(1000)
"' || fail "repeated group checks failed"

# A repeated string, compared whole.
"$NBDKIT" -U - data '"ab"*1000000' --run 'nbdcopy "$uri" "$tmpdir/actual"' ||
  fail "repeated string failed"
python3 -c 'import sys; sys.stdout.buffer.write(b"ab" * 1000000)' \
  >"$tmpdir/expected"
cmp "$tmpdir/actual" "$tmpdir/expected" || fail "repeated string is wrong"

# The largest disk NBD allows.
"$NBDKIT" -U - data '@9223372036854775806 0x42' --run 'nbdsh -u "$uri" -c "
assert h.get_size() == (1 << 63) - 1, h.get_size()
assert h.pread(2, (1 << 63) - 3) == b\"\\x00\\x42\"
"' || fail "largest disk checks failed"
