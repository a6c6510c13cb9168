#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Members larger than 8 GiB, whose size does not fit the 11 octal
# digits of a tar header: GNU tar stores it in base-256, pax in a size=
# record.  The archives are made sparse (header written by Python's
# tarfile, data left as a hole) so the test needs no disk space.  The
# filter must serve the whole member, read its last bytes, and find the
# member after it.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin file
requires_filter tar
make_tmpdir
export tmpdir

size=$(( 9 * 1024 * 1024 * 1024 + 12345 ))
export size
for fmt in GNU PAX; do
  tarball=$tmpdir/big-$fmt.tar
  python3 - "$tarball" "$fmt" "$size" <<'PY' || fail "$fmt: making the archive"
import sys, tarfile
path, fmt, size = sys.argv[1], getattr(tarfile, sys.argv[2] + "_FORMAT"), int(sys.argv[3])
big = tarfile.TarInfo("big.img")
big.size = size
small = tarfile.TarInfo("small.txt")
small.size = 6
with open(path, "wb") as f:
    f.write(big.tobuf(format=fmt))
    start = f.tell()
    # The last 6 bytes of the big member, then the small member.
    f.seek(start + size - 6)
    f.write(b"ending")
    f.seek(start + (size + 511) // 512 * 512)
    f.write(small.tobuf(format=fmt))
    f.write(b"small\n".ljust(512, b"\0"))
    f.write(bytes(1024))
PY
  "$NBDKIT" -U - -r --filter=tar file "$tarball" tar-entry=big.img \
      --run 'nbdsh -u "$uri" -c "
size = $size
assert h.get_size() == size, h.get_size()
assert h.pread(6, size - 6) == b\"ending\"
assert h.pread(4096, 8 * 1024 * 1024 * 1024) == bytes(4096)
"' || fail "$fmt: the 9 GiB member was not served correctly"
  [ "$("$NBDKIT" -U - -r --filter=tar file "$tarball" tar-entry=small.txt \
         --run 'nbdsh -u "$uri" -c "print(h.pread(6, 0).decode(), end=\"\")"')" \
    = small ] || fail "$fmt: the member after the 9 GiB one was not found"
done
