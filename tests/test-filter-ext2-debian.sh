#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ext2 filter side by side with Debian's nbdkit 1.32 on the same
# ext4 image: what Debian's writes into a file we read, what ours
# writes Debian's reads, e2fsck stays clean, and the size and flags
# (ext2file=exportname, export dir/f) are the same.  Plain pread and
# pwrite calls only: Debian's 1.32 filter passes the plugin's block
# status through unchanged (so nbdcopy reads zeroes where the image
# file has holes), and loses data when writing into a hole of a sparse
# file; ours is checked on both in test-filter-ext2-data.sh.
source "${srcdir:-$(dirname "$0")}/functions.sh"
normal_build_only "a comparison with Debian's nbdkit"

debian=/usr/bin/nbdkit
[ -x "$debian" ] || skip "no Debian nbdkit at $debian"
"$debian" --filter=ext2 null --dump-plugin >/dev/null 2>&1 ||
  skip "Debian's nbdkit has no ext2 filter"
requires mke2fs -V
requires e2fsck -V
requires /usr/bin/python3 -c 'import nbd'
requires_plugin file
requires_filter ext2
make_tmpdir
cd "$tmpdir"

mkdir -p src/dir
head -c 400000 /dev/urandom >src/dir/f
truncate -s 8M fs.img
mke2fs -q -t ext4 -d src fs.img || fail "mke2fs failed"
head -c 400000 /dev/urandom >a
head -c 150000 /dev/urandom >b

# client.py SOCKET WRITE-FILE OUT: write that file at 0, flush, read the whole
# export into OUT, print the size and flags.
cat >client.py <<'PY'
import sys
import nbd
h = nbd.NBD()
h.set_export_name("dir/f")
h.connect_unix(sys.argv[1])
data = open(sys.argv[2], "rb").read()
if data:
    h.pwrite(data, 0)
    h.flush()
open(sys.argv[3], "wb").write(h.pread(h.get_size(), 0))
print("size", h.get_size(), "ro", h.is_read_only(), "flush", h.can_flush(),
      "fua", h.can_fua(), "trim", h.can_trim(), "zero", h.can_zero(),
      "fast_zero", h.can_fast_zero(), "multi_conn", h.can_multi_conn(),
      "cache", h.can_cache())
h.shutdown()
PY

ext2 ()
{
  "$1" -U - --filter=ext2 file fs.img ext2file=exportname \
    --run "python3 client.py \$unixsocket $2 $3" >"$3.flags" ||
    fail "$1: the client failed"
}
ext2 "$debian" a debian1.bin
ext2 "$NBDKIT" b ours.bin
ext2 "$debian" /dev/null debian2.bin

cmp debian1.bin a || fail "Debian's filter does not read back its write"
cmp -n 150000 ours.bin b || fail "we do not read back our own write"
cmp -i 150000 ours.bin a || fail "we do not read what Debian's filter wrote"
cmp ours.bin debian2.bin || fail "Debian's filter does not read our write"
diff -u debian1.bin.flags ours.bin.flags ||
  fail "size or flags differ from Debian's"
e2fsck -fn fs.img >fsck 2>&1 || fail "e2fsck: $(cat fsck)"
