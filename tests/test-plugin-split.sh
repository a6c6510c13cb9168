#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The split plugin: files served end to end as one disk (empty files
# take no space); reads and writes across file boundaries land in the
# right files; block status follows each file's holes; trim, flush;
# a read-only file makes the disk read-only; bad files stop nbdkit.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires nbdinfo --version
requires_plugin split
make_tmpdir
export tmpdir
cd "$tmpdir"

head -c 5000 /dev/urandom >f1       # ends mid-block
: >f2                               # empty
truncate -s 65536 f3                # a hole
printf 'data' | dd of=f3 bs=1 seek=40000 conv=notrunc status=none
head -c 3000 /dev/urandom >f4
cat f1 f2 f3 f4 >whole
size=$(stat -c %s whole); export size

# Relative names are resolved before nbdkit changes directory.
"$NBDKIT" -U - split f1 file=f2 f3 f4 \
  --run 'nbdcopy "$uri" copy && nbdinfo --map "$uri" >map' ||
  fail "nbdcopy failed"
cmp whole copy || fail "the disk is not the files end to end"
# f3's leading hole is reported (f1 is 5000 bytes: 5000..45000 holds
# f3's first 40000 bytes, all zero, at least one 4k-block of it a hole).
awk '$4 ~ /hole/ && $1 >= 5000 && $1 + $2 <= 45000' map | grep -q . ||
  fail "no hole reported inside f3: $(cat map)"
awk '$4 ~ /hole/ && $1 < 5000' map | grep -q . &&
  fail "a hole reported inside f1: $(cat map)"

"$NBDKIT" -U - split f1 f2 f3 f4 --run 'nbdsh -u "$uri" -c "
import os
size = int(os.environ[\"size\"])
assert h.get_size() == size
assert h.can_trim() and h.can_flush() and not h.is_read_only()
whole = open(\"whole\", \"rb\").read()
assert h.pread(200, 4900) == whole[4900:5100]
# A write across f1 | f3 and another across f3 | f4.
w1 = os.urandom(1000)
h.pwrite(w1, 4500)
w2 = os.urandom(600)
h.pwrite(w2, 5000 + 65536 - 100, nbd.CMD_FLAG_FUA)
h.flush()
f1 = open(\"f1\", \"rb\").read()
f3 = open(\"f3\", \"rb\").read()
f4 = open(\"f4\", \"rb\").read()
assert f1[4500:] == w1[:500], \"f1 tail\"
assert f3[:500] == w1[500:], \"f3 head\"
assert f3[-100:] == w2[:100], \"f3 tail\"
assert f4[:500] == w2[100:], \"f4 head\"
assert len(f1) == 5000 and len(f3) == 65536 and len(f4) == 3000
assert h.pread(1000, 4500) == w1
# Zeroing across a boundary, then trim (reads back zeroes or old data).
h.zero(2000, 4000)
assert h.pread(2000, 4000) == bytes(2000)
h.trim(65536, 5000)
assert h.pread(3000, size - 3000) == f4
assert os.path.getsize(\"f3\") == 65536
"' || fail "nbdsh checks failed"

# A read-only file: the disk is read-only.
chmod 444 f4
if [ "$(id -u)" != 0 ]; then
  "$NBDKIT" -U - split f1 f4 --run 'nbdsh -u "$uri" -c "assert h.is_read_only()"' ||
    fail "disk with a read-only file is writable"
fi

expect_error ()
{
  local want=$1; shift
  if "$NBDKIT" split "$@" --run true 2>err; then
    fail "nbdkit split $* was accepted"
  fi
  grep -q -- "$want" err ||
    fail "nbdkit split $*: expected '$want', got: $(cat err)"
}
expect_error "file=<FILENAME>"
expect_error "missing" f1 missing
expect_error "Is a directory" f1 "$tmpdir"
expect_error "not a regular file" f1 /dev/null
expect_error "unknown parameter 'size'" f1 size=1
