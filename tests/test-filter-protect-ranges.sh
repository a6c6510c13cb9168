#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The protect filter: writes and zeroes that would change a protected
# byte fail with EPERM and change nothing; ones that leave protected
# bytes as they are succeed; unprotected bytes stay writable; ~ protects
# the complement; START or END may be left out; trims skip protected
# bytes.  Checked with nbdsh and with checksums of the plugin's file.
# Bad ranges are refused naming the parameter.

source "$srcdir/functions.sh"
requires nbdsh --version
requires sha256sum --version
requires_plugin file
requires_plugin memory
requires_filter protect

make_tmpdir
export tmpdir
disk=$tmpdir/disk
head -c 256K /dev/urandom > "$disk"
truncate -s 4M "$disk"

cat > "$tmpdir/ops.py" <<'EOF'
import errno
def refused(fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        assert e.errnum == errno.EPERM, (fn, args, e)
        return
    raise AssertionError("%s%r was not refused" % (fn.__name__, args[1:]))

# protect=0-0x1ff: the first sector.
sector0 = h.pread(512, 0)
refused(h.pwrite, b"x" * 512, 0)
refused(h.pwrite, b"x", 511)                     # last protected byte
refused(h.pwrite, b"x" * 1024, 256)              # straddles the edge
refused(h.zero, 512, 0)
h.pwrite(sector0, 0)                             # identical: allowed
h.pwrite(sector0[100:] + b"y" * 512, 100)         # same inside, new outside
assert h.pread(512, 512) == b"y" * 512
assert h.pread(512, 0) == sector0

# protect=0x300000-: from 3 MiB to the end.  It reads as zero, so
# zeroing it changes nothing and is allowed.
refused(h.pwrite, b"z", 0x3fffff)
h.zero(65536, 0x300000)
h.pwrite(bytes(4096), 0x300000)

# Trim never fails: the protected part is skipped.
h.trim(8192, 0)
assert h.pread(512, 0) == sector0
EOF
sum_before=$(head -c 512 "$disk" | sha256sum)
"$NBDKIT" -U - --filter=protect file "$disk" \
  protect=0-0x1ff protect=0x300000- \
  --run 'nbdsh -u "$uri" -c - < "$tmpdir/ops.py"' ||
  fail "protect=0-0x1ff protect=0x300000-"
[ "$(head -c 512 "$disk" | sha256sum)" = "$sum_before" ] ||
  fail "the protected sector changed on disk"

# protect=~START-END: only 64K-128K (inclusive) is writable; data
# elsewhere is untouched (compared byte for byte).
cat > "$tmpdir/complement.py" <<'EOF'
import errno
for off in (0, 65535, 131072, 4 * 1048576 - 512):
    try:
        h.pwrite(b"q" * 512 if off != 65535 else b"q", off)
        raise AssertionError("write at %d allowed" % off)
    except nbd.Error as e:
        assert e.errnum == errno.EPERM, e
h.pwrite(b"q" * 65536, 65536)
assert h.pread(65536, 65536) == b"q" * 65536
EOF
cp "$disk" "$tmpdir/expected"
printf 'q%.0s' $(seq 65536) |
  dd of="$tmpdir/expected" bs=65536 seek=1 conv=notrunc status=none
"$NBDKIT" -U - --filter=protect file "$disk" protect=~0x10000-0x1ffff \
  --run 'nbdsh -u "$uri" -c - < "$tmpdir/complement.py"' ||
  fail "protect=~0x10000-0x1ffff"
cmp "$disk" "$tmpdir/expected" ||
  fail "protect=~: the disk does not hold exactly the allowed write"

# Several ranges in any order, decimal and octal, overlapping.
"$NBDKIT" -U - --filter=protect memory 1M \
  protect=4096-8191 protect=0-100 protect=010-4200 \
  --run 'nbdsh -u "$uri" -c "
import errno
for off in (0, 100, 4200, 8191):
    try:
        h.pwrite(b\"1\", off); raise AssertionError(off)
    except nbd.Error as e:
        assert e.errnum == errno.EPERM
h.pwrite(b\"1\", 8192)
"' || fail "merged ranges"

# Bad ranges: exit status 1 and a message naming the parameter.
for r in 10 5-3 x-10 10-y 1-2-3; do
  rc=0
  "$NBDKIT" -U - --filter=protect memory 1M protect=$r --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "protect=$r: exit status $rc, expected 1"
  grep -q "protect=$r" "$tmpdir/err" ||
    { cat "$tmpdir/err"; fail "protect=$r: no message naming it"; }
done

echo "$0: ok"
