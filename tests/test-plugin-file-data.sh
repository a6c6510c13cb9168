#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The file plugin reads and writes the real file: data copied in lands in
# the file byte for byte, data in the file reads back, and unaligned
# writes, FUA, flush and cache requests work.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires nbdsh --version
requires_plugin file
make_tmpdir
export tmpdir

size=$(( 16 << 20 ))
head -c $size /dev/urandom >"$tmpdir/in"
truncate -s $size "$tmpdir/disk"

# Copy in over several connections: the file must equal the source.
"$NBDKIT" -U - file "$tmpdir/disk" \
  --run 'nbdcopy --connections=4 "$tmpdir/in" "$uri"' ||
  fail "copy into the file failed"
cmp "$tmpdir/in" "$tmpdir/disk" || fail "file content differs from the data written"

# Copy out: the data read equals the file.
head -c $size /dev/urandom >"$tmpdir/disk"
"$NBDKIT" -U - -r file file="$tmpdir/disk" \
  --run 'nbdcopy "$uri" "$tmpdir/out"' ||
  fail "copy out of the file failed"
cmp "$tmpdir/disk" "$tmpdir/out" || fail "data read differs from the file"

cat >"$tmpdir/t.py" <<'PY'
import os, hashlib
path = os.environ["tmpdir"] + "/disk"
size = h.get_size()
assert size == os.path.getsize(path)
assert h.can_flush() and h.can_fua() and h.can_multi_conn()
assert h.can_trim() and h.can_zero() and h.can_cache()
assert not h.is_read_only()

model = bytearray(open(path, "rb").read())
for off, n, flags in ((1, 100001, 0), (4095, 8193, nbd.CMD_FLAG_FUA),
                      (size - 3, 3, 0), (5 << 20, 1 << 20, nbd.CMD_FLAG_FUA)):
    buf = os.urandom(n)
    h.pwrite(buf, off, flags)
    model[off:off+n] = buf
h.flush()
h.cache(1 << 20, 0)
assert h.pread(size, 0) == bytes(model)
assert hashlib.sha256(open(path, "rb").read()).digest() == \
       hashlib.sha256(model).digest(), "file differs from the writes"
PY
"$NBDKIT" -U - file "$tmpdir/disk" --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "nbdsh checks failed"
