#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The file plugin serving a block device (a loop device over a temporary
# file): the size comes from the device, and data written and zeroed
# through NBD lands on the device.  Needs root and a free loop device.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires nbdsh --version
requires losetup --version
requires_plugin file
[ "$(id -u)" = 0 ] || skip "needs root to set up a loop device"
make_tmpdir
export tmpdir

size=$(( 16 << 20 ))
truncate -s $size "$tmpdir/backing"
dev=$(losetup -f --show "$tmpdir/backing" 2>/dev/null) ||
  skip "cannot set up a loop device"
cleanup_fn losetup -d "$dev"
[ -b "$dev" ] || skip "$dev is not a block device"
export dev

head -c $size /dev/urandom >"$tmpdir/in"
"$NBDKIT" -U - file "$dev" \
  --run 'nbdcopy --connections=2 "$tmpdir/in" "$uri" && nbdcopy "$uri" "$tmpdir/out"' ||
  fail "copy through $dev failed"
cmp "$tmpdir/in" "$tmpdir/out" || fail "data read from $dev differs"

cat >"$tmpdir/t.py" <<'PY'
import errno, os
M = 1 << 20
assert h.get_size() == 16 * M, h.get_size()
assert not h.is_read_only()
h.zero(M, 0)
h.zero(M, 2 * M, nbd.CMD_FLAG_NO_HOLE)
h.zero(4096, 5 * M + 512, nbd.CMD_FLAG_FUA)
# Not sector aligned: the device refuses, so nbdkit writes zeroes itself.
h.zero(1000, 7 * M + 3)
if h.can_fast_zero():
    try:
        h.zero(M, 8 * M, nbd.CMD_FLAG_FAST_ZERO)
    except nbd.Error as e:
        assert e.errnum == errno.ENOTSUP, e.errnum
    else:
        assert h.pread(M, 8 * M) == bytes(M)
h.trim(M, 12 * M)
h.flush()
assert h.pread(M, 0) == bytes(M)
assert h.pread(M, 2 * M) == bytes(M)
assert h.pread(4096, 5 * M + 512) == bytes(4096)
assert h.pread(1000, 7 * M + 3) == bytes(1000)
PY
"$NBDKIT" -U - file "$dev" --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "zero checks on $dev failed"

# What the device holds, seen without nbdkit.
python3 - "$dev" "$tmpdir/in" <<'PY' || fail "device content is wrong"
import sys
M = 1 << 20
dev = open(sys.argv[1], "rb").read()
src = open(sys.argv[2], "rb").read()
assert dev[0:M] == bytes(M) and dev[2*M:3*M] == bytes(M)
assert dev[M:2*M] == src[M:2*M]
assert dev[5*M+512:5*M+512+4096] == bytes(4096)
assert dev[3*M:5*M] == src[3*M:5*M]
assert dev[7*M+3:7*M+1003] == bytes(1000)
assert dev[7*M:7*M+3] == src[7*M:7*M+3]
assert dev[7*M+1003:7*M+2000] == src[7*M+1003:7*M+2000]
PY
