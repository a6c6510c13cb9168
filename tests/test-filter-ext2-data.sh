#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ext2 filter on ext2 and ext4 images made by mke2fs -d: files read
# through the filter are byte for byte the files put in the image;
# writes (unaligned, at the end, zeroes, into a hole of a sparse file)
# are seen by debugfs and leave e2fsck clean; -r serves read-only and
# leaves the image untouched; ext2file=exportname picks the file by
# export name and refuses missing files, directories and "".
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires mke2fs -V
requires debugfs -V
requires e2fsck -V
requires /usr/bin/python3 -c 'import nbd'
requires nbdcopy --version
requires_plugin file
requires_filter ext2
make_tmpdir
export tmpdir

mkdir "$tmpdir/src" "$tmpdir/src/dir"
head -c 300000 /dev/urandom >"$tmpdir/src/f"
echo hello >"$tmpdir/src/dir/small"
truncate -s 1M "$tmpdir/src/sparse"

# One client per file in turn (the filter serves one at a time).
cat >"$tmpdir/readonly.py" <<'PY'
import os
import nbd
sock, tmpdir = os.environ["unixsocket"], os.environ["tmpdir"]
def connect(export):
    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_unix(sock)
    return h
h = connect("/f")
assert h.is_read_only()
assert h.pread(300000, 0) == open(tmpdir + "/src/f", "rb").read()
h.shutdown()
h = connect("dir/small")
assert h.get_size() == 6 and h.pread(6, 0) == b"hello\n"
h.shutdown()
for bad in ["nonexist", "dir", ""]:
    try:
        connect(bad)
        raise AssertionError("export %r was served" % bad)
    except nbd.Error:
        pass
PY

cat >"$tmpdir/write.py" <<'PY'
import os
import nbd
sock = os.environ["unixsocket"]
def connect(export):
    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_unix(sock)
    return h
h = connect("/f")
assert h.get_size() == 300000 and not h.is_read_only()
assert not h.can_trim() and not h.can_multi_conn() and h.can_flush()
h.pwrite(b"X" * 5000, 1001)
h.flush()
h.pwrite(b"Y" * 3, 299997)
h.zero(100, 200000)
assert h.pread(5000, 1001) == b"X" * 5000
h.shutdown()
h = connect("/sparse")
assert h.get_size() == 1048576
h.pwrite(b"Z" * 70000, 300000)
h.shutdown()
PY

python3 - "$tmpdir/src/f" "$tmpdir/want-f" "$tmpdir/want-sparse" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[1001:6001] = b"X" * 5000
d[299997:] = b"YYY"
d[200000:200100] = bytes(100)
open(sys.argv[2], "wb").write(d)
open(sys.argv[3], "wb").write(bytes(300000) + b"Z" * 70000 +
                              bytes(1048576 - 370000))
PY

for type in ext2 ext4; do
  img=$tmpdir/$type.img
  truncate -s 8M "$img"
  mke2fs -q -t "$type" -d "$tmpdir/src" "$img" ||
    fail "$type: mke2fs failed"
  cp "$img" "$tmpdir/orig.img"

  "$NBDKIT" -r -U - --filter=ext2 file "$img" ext2file=exportname \
      --run 'python3 "$tmpdir/readonly.py"' 2>"$tmpdir/err" ||
    fail "$type: read-only checks failed: $(cat "$tmpdir/err")"
  cmp "$img" "$tmpdir/orig.img" || fail "$type: -r changed the image"
  for pattern in "/nonexist: File not found" "/dir: not a regular file" \
                 "default export (\"\") is not permitted"; do
    grep -q "$pattern" "$tmpdir/err" ||
      fail "$type: expected '$pattern' in: $(cat "$tmpdir/err")"
  done

  "$NBDKIT" -U - --filter=ext2 file "$img" ext2file=exportname \
      --run 'python3 "$tmpdir/write.py"' || fail "$type: writes failed"
  debugfs -R "cat /f" "$img" 2>/dev/null >"$tmpdir/got" ||
    fail "$type: debugfs failed"
  cmp "$tmpdir/got" "$tmpdir/want-f" ||
    fail "$type: debugfs does not see the data written to /f"
  debugfs -R "cat /sparse" "$img" 2>/dev/null >"$tmpdir/got"
  cmp "$tmpdir/got" "$tmpdir/want-sparse" ||
    fail "$type: debugfs does not see the write into the hole of /sparse"
  e2fsck -fn "$img" >"$tmpdir/fsck" 2>&1 ||
    fail "$type: e2fsck after writes: $(cat "$tmpdir/fsck")"
done
