#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Writing through the tar filter changes the member in place (the
# example of issue 7: nbdkit -U - file data.tar --filter=tar
# tar-entry=disk.img --run 'qemu-img convert -n disk.img $nbd').  For
# archives in GNU, POSIX pax, ustar and v7 format, with long names and
# neighbouring members: the member reads back as written (tar -xO |
# cmp), the other members and the rest of the archive are unchanged,
# and tar still lists and extracts the archive.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires tar --version
requires qemu-img --version
requires nbdcopy --version
requires nbdsh --version
requires_plugin file
requires_filter tar
make_tmpdir
export tmpdir

src=$tmpdir/src
mkdir "$src"
long=dir-$(printf 'a%.0s' {1..50})/sub-$(printf 'b%.0s' {1..60})
mkdir -p "$src/$long"
head -c 3M /dev/urandom >"$src/disk.img"
head -c 100000 /dev/urandom >"$src/before.bin"
echo "after" >"$src/after.txt"
head -c 70000 /dev/urandom >"$src/$long/deep.img"
# What the client writes: same size as the member, different bytes.
head -c 3M /dev/urandom >"$tmpdir/new.img"
head -c 70000 /dev/urandom >"$tmpdir/new-deep.img"

# Every byte of ARCHIVE outside member NAME must equal BEFORE's.
outside_unchanged ()
{
  python3 - "$1" "$2" "$3" <<'PY'
import sys, tarfile
archive, before, name = sys.argv[1:]
with tarfile.open(archive) as t:
    m = t.getmember(name)
    start, end = m.offset_data, m.offset_data + m.size
a, b = open(archive, "rb").read(), open(before, "rb").read()
assert len(a) == len(b), "the archive changed size"
assert a[:start] == b[:start], "bytes before the member changed"
assert a[end:] == b[end:], "bytes after the member changed"
PY
}

for fmt in gnu posix ustar v7; do
  tarball=$tmpdir/data-$fmt.tar
  members="before.bin disk.img after.txt"
  # v7 cannot store names over 100 bytes.
  [ "$fmt" = v7 ] || members="$members $long/deep.img"
  # shellcheck disable=SC2086
  tar -C "$src" --format="$fmt" -cf "$tarball" $members ||
    fail "$fmt: tar -c failed"
  cp "$tarball" "$tmpdir/before.tar"

  # The seed example.
  cp "$tmpdir/new.img" "$tmpdir/disk.img"
  (cd "$tmpdir" &&
     "$NBDKIT" -U - file "$tarball" --filter=tar tar-entry=disk.img \
       --run 'qemu-img convert -n disk.img $nbd') ||
    fail "$fmt: qemu-img convert through the tar filter failed"
  tar -xOf "$tarball" disk.img | cmp - "$tmpdir/new.img" ||
    fail "$fmt: disk.img in the archive is not what was written"
  outside_unchanged "$tarball" "$tmpdir/before.tar" disk.img ||
    fail "$fmt: writing disk.img changed other parts of the archive"
  tar -xOf "$tarball" before.bin | cmp - "$src/before.bin" ||
    fail "$fmt: before.bin changed"
  [ "$(tar -xOf "$tarball" after.txt)" = after ] ||
    fail "$fmt: after.txt changed"

  # Reading the member back through the filter.
  "$NBDKIT" -U - -r file "$tarball" --filter=tar tar-entry=disk.img \
      --run 'nbdcopy "$uri" "$tmpdir/out"' || fail "$fmt: nbdcopy failed"
  cmp "$tmpdir/new.img" "$tmpdir/out" || fail "$fmt: read back differs"

  # A member with a long name: unaligned writes, a zero and a trim at
  # its edges, checked against a model of the member.
  if [ "$fmt" != v7 ]; then
    cp "$tarball" "$tmpdir/before.tar"
    "$NBDKIT" -U - file "$tarball" --filter=tar tar-entry="$long/deep.img" \
        --run 'nbdsh -u "$uri" -c "
want = bytearray(open(\"$tmpdir/new-deep.img\", \"rb\").read())
assert h.get_size() == len(want) == 70000
h.pwrite(bytes(want), 0)
h.pwrite(b\"edge\", 69996)
want[69996:70000] = b\"edge\"
h.pwrite(b\"odd\" * 333, 12345)
want[12345:12345 + 999] = b\"odd\" * 333
h.zero(5000, 60000)
want[60000:65000] = bytes(5000)
h.flush()
assert h.pread(70000, 0) == want
open(\"$tmpdir/want-deep\", \"wb\").write(want)
"' || fail "$fmt: writing $long/deep.img failed"
    tar -xOf "$tarball" "$long/deep.img" | cmp - "$tmpdir/want-deep" ||
      fail "$fmt: $long/deep.img in the archive is not what was written"
    outside_unchanged "$tarball" "$tmpdir/before.tar" "$long/deep.img" ||
      fail "$fmt: writing the long-named member changed other bytes"
  fi
  tar -tf "$tarball" >/dev/null || fail "$fmt: tar can no longer list it"
done
