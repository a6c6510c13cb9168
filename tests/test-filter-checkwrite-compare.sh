#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The checkwrite filter: the export is writable even over a read-only
# plugin; writes, zeroes and trims that match the plugin's data succeed,
# ones that differ fail with EIO; copying an export onto itself with
# nbdcopy and qemu-img succeeds, copying other data onto it fails; and
# the plugin's data is never changed (checksums).

source "$srcdir/functions.sh"
requires nbdsh --version
requires nbdcopy --version
requires sha256sum --version
requires_plugin pattern
requires_plugin file
requires_filter checkwrite

make_tmpdir
export tmpdir

# Over the read-only pattern plugin.
cat > "$tmpdir/pattern.py" <<'EOF'
import errno
assert not h.is_read_only()
assert h.can_zero() and h.can_trim() and h.can_flush() and h.can_fua()
def eio(fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        assert e.errnum == errno.EIO, (fn, e)
        return
    raise AssertionError("%s succeeded" % fn)
data = h.pread(65536, 8192)
h.pwrite(data, 8192)                       # the same data: fine
h.pwrite(data[100:200], 8192 + 100, nbd.CMD_FLAG_FUA)
h.flush()
eio(h.pwrite, b"x" * 512, 8192)            # different data
changed = bytearray(data)
changed[40000] ^= 1
eio(h.pwrite, bytes(changed), 8192)        # one bit different
eio(h.zero, 4096, 8192)                    # the pattern is not zero
eio(h.trim, 4096, 8192)
h.zero(8, 0)                               # offset 0 holds 0
assert h.pread(65536, 8192) == data
EOF
"$NBDKIT" -U - --filter=checkwrite pattern 1M \
  --run 'nbdsh -u "$uri" -c - < "$tmpdir/pattern.py"' ||
  fail "checkwrite over the pattern plugin"

# -r still wins.
"$NBDKIT" -r -U - --filter=checkwrite pattern 1M \
  --run 'nbdsh -u "$uri" -c "assert h.is_read_only()"' ||
  fail "checkwrite made a -r export writable"

# Over a file with some data and some zeroes: copy tools.
disk=$tmpdir/disk
head -c 1M /dev/urandom > "$disk"
truncate -s 4M "$disk"
sum=$(sha256sum < "$disk")

"$NBDKIT" -U - --filter=checkwrite file "$disk" \
  --run 'nbdcopy "$uri" "$uri"' ||
  fail "nbdcopy of the export onto itself failed"

if qemu-img --version > /dev/null 2>&1; then
  "$NBDKIT" -U - --filter=checkwrite file "$disk" \
    --run 'qemu-img convert -n -f raw -O raw "$uri" "$uri"' ||
    fail "qemu-img convert of the export onto itself failed"
else
  echo "$0: qemu-img not found, skipping its copy"
fi

# Copying anything else onto it must fail.
other=$tmpdir/other
cp "$disk" "$other"
printf 'X' | dd of="$other" bs=1 seek=3000000 conv=notrunc status=none
if "$NBDKIT" -U - --filter=checkwrite file "$disk" \
     --run 'nbdcopy "$tmpdir/other" "$uri"' 2> "$tmpdir/err"; then
  fail "nbdcopy of different data succeeded"
fi
grep -q "does not match" "$tmpdir/err" ||
  { cat "$tmpdir/err"; fail "no mismatch reported"; }

[ "$(sha256sum < "$disk")" = "$sum" ] ||
  fail "the plugin's data changed"

echo "$0: ok"
