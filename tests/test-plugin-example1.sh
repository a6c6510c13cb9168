#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The example1 plugin: a read-only 100 MiB disk with a valid MBR holding
# one Linux partition, the same on every read, and no parameters.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin example1
make_tmpdir
export tmpdir

cat >"$tmpdir/t.py" <<'PY'
import errno, struct
size = h.get_size()
assert size == 100 * 1024 * 1024, size
assert h.is_read_only()

mbr = h.pread(512, 0)
assert mbr[510:512] == b"\x55\xaa", "no MBR boot signature"
# Exactly one partition, Linux, inside the disk.
entries = [mbr[446 + 16 * i:446 + 16 * (i + 1)] for i in range(4)]
used = [e for e in entries if e[4] != 0]
assert len(used) == 1, entries
start, sectors = struct.unpack("<II", used[0][8:16])
assert used[0][4] == 0x83, "partition type %#x" % used[0][4]
assert 0 < start and (start + sectors) * 512 <= size, (start, sectors)
assert entries[0] == used[0]

# Reads are repeatable and the disk cannot be written.
assert h.pread(512, 0) == mbr
assert len(h.pread(1 << 20, size - (1 << 20))) == 1 << 20
try:
    h.pwrite(b"x" * 512, 0)
except nbd.Error as e:
    assert e.errnum == errno.EPERM, e.errnum
else:
    raise AssertionError("write to example1 succeeded")
PY
"$NBDKIT" -U - example1 --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "nbdsh checks failed"

# If file(1) is present it recognises the partition table.
if command -v file >/dev/null; then
  "$NBDKIT" -U - example1 --run 'nbdcopy "$uri" "$tmpdir/disk"' ||
    fail "nbdcopy failed"
  file "$tmpdir/disk" | grep -q "MBR boot sector" ||
    fail "file(1) does not see an MBR: $(file "$tmpdir/disk")"
fi
