#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Zero and trim on the file plugin: the ranges read as zero through NBD
# and in the file itself, trimming gives the blocks back to the file
# system, and fast zero either succeeds or fails with ENOTSUP.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin file
make_tmpdir
export tmpdir

size=$(( 8 << 20 ))
head -c $size /dev/urandom >"$tmpdir/disk"
sync "$tmpdir/disk" 2>/dev/null || :

cat >"$tmpdir/t.py" <<'PY'
import errno, os
path = os.environ["tmpdir"] + "/disk"
M = 1 << 20
size = h.get_size()
model = bytearray(open(path, "rb").read())
assert len(model) == size

def zeroed(off, n):
    model[off:off+n] = bytes(n)

h.zero(M, 0)                                  # aligned, may trim
zeroed(0, M)
h.zero(100000, 1500000, nbd.CMD_FLAG_NO_HOLE) # unaligned, keep allocated
zeroed(1500000, 100000)
h.zero(4096, 3 * M, nbd.CMD_FLAG_FUA)
zeroed(3 * M, 4096)
if h.can_fast_zero():
    try:
        h.zero(M, 4 * M, nbd.CMD_FLAG_FAST_ZERO)
        zeroed(4 * M, M)
    except nbd.Error as e:
        assert e.errnum == errno.ENOTSUP, e.errnum

blocks_before = os.stat(path).st_blocks
h.trim(2 * M, 6 * M)
h.flush()
# Trim is advisory; where it punched a hole the data reads as zero.
after = h.pread(2 * M, 6 * M)
if after == bytes(2 * M):
    zeroed(6 * M, 2 * M)
    assert os.stat(path).st_blocks < blocks_before, "trim freed no blocks"
else:
    assert after == bytes(model[6 * M:8 * M])

assert h.pread(size, 0) == bytes(model), "NBD view differs after zero/trim"
assert open(path, "rb").read() == bytes(model), "file differs after zero/trim"
PY
"$NBDKIT" -U - file "$tmpdir/disk" --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "zero/trim checks failed"

# The same on tmpfs, which punches holes but has no FALLOC_FL_ZERO_RANGE.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  shmdir=$(mktemp -d /dev/shm/nbdkit-test.XXXXXX)
  cleanup_fn rm -rf "$shmdir"
  head -c $size /dev/urandom >"$shmdir/disk"
  tmpdir=$shmdir "$NBDKIT" -U - file "$shmdir/disk" \
    --run 'nbdsh -u "$uri" -c - <"'"$tmpdir"'/t.py"' ||
    fail "zero/trim checks on tmpfs failed"
fi
