#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The floppy plugin refuses what FAT32 cannot hold, and bad parameters,
# with exit status 1 before serving and an error naming the culprit:
# a file over 4 GiB - 1, a directory with more than 65536 entries,
# names that are not UTF-8 or use characters VFAT forbids, size= too
# small (for the files, or for FAT32's 65525 clusters), too large or
# unparsable, bad labels, a missing or repeated dir=.  A file of exactly
# 4 GiB - 1, a directory of exactly 65536 entries and the smallest
# size= are accepted.  Reading a file removed while serving fails.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires truncate --version
requires_plugin floppy
make_tmpdir

# expect_error MESSAGE ARGS...: nbdkit exits 1 before serving, saying MESSAGE.
expect_error ()
{
  local msg=$1 status=0
  shift
  "$NBDKIT" -U - floppy "$@" --run 'echo served' \
    >"$tmpdir/out" 2>"$tmpdir/err" || status=$?
  [ $status -eq 1 ] ||
    fail "floppy $*: exit status $status, expected 1: $(cat "$tmpdir/err")"
  ! grep -q served "$tmpdir/out" || fail "floppy $*: served despite the error"
  grep -qF -- "$msg" "$tmpdir/err" ||
    fail "floppy $*: error does not say '$msg': $(cat "$tmpdir/err")"
}

mkdir "$tmpdir/ok"
echo data >"$tmpdir/ok/file"

expect_error "you must supply the dir=" label=X
expect_error "dir=$tmpdir/missing: No such file" "$tmpdir/missing"
expect_error "dir=$tmpdir/ok/file: not a directory" "$tmpdir/ok/file"
expect_error "dir= may only be given once" "$tmpdir/ok" dir="$tmpdir/ok"
expect_error "label=TWELVE_CHARS: the label must be 1 to 11" \
  "$tmpdir/ok" label=TWELVE_CHARS
expect_error "label=: the label must be" "$tmpdir/ok" label=
expect_error "label=A.B: character '.' is not allowed" "$tmpdir/ok" label=A.B
expect_error "label=caf$(printf '\xc3\xa9'): character" "$tmpdir/ok" \
  label="caf$(printf '\xc3\xa9')"
expect_error "size=1M is too small: at least 35138048 bytes are needed" \
  "$tmpdir/ok" size=1M
expect_error "size=35138047 is too small" "$tmpdir/ok" size=35138047
"$NBDKIT" -U - floppy "$tmpdir/ok" size=35138048 --run true ||
  fail "the smallest possible size= was refused"
expect_error "size=lots: not a valid disk size" "$tmpdir/ok" size=lots
expect_error "size=3T: larger than an MBR partition allows" "$tmpdir/ok" size=3T
expect_error "unknown parameter 'prog'" "$tmpdir/ok" prog=x

# Files: one byte over the FAT32 limit (sparse, nothing is written).
mkdir "$tmpdir/big"
truncate -s 4294967296 "$tmpdir/big/too big" 2>/dev/null ||
  skip "cannot create a sparse 4 GiB file in $tmpdir"
expect_error "$tmpdir/big/too big: file is too large for FAT32 (4294967296 bytes" \
  "$tmpdir/big"
truncate -s 4294967295 "$tmpdir/big/too big"
"$NBDKIT" -U - floppy "$tmpdir/big" --run '
  size=$(nbdinfo --size "$uri") && [ "$size" -gt 4294967295 ]' ||
  fail "a file of exactly 4294967295 bytes was refused"

# Names FAT cannot store.
mkdir "$tmpdir/badname"
: >"$tmpdir/badname/bad$(printf '\xff')name"
expect_error "this name cannot be stored in FAT: not UTF-8" "$tmpdir/badname"
rm "$tmpdir/badname/"*
: >"$tmpdir/badname/what?.txt"
expect_error "/badname/what?.txt: this name cannot be stored" "$tmpdir/badname"

# 3121 names of 250 characters need 21 entries each, and the root has
# the label: 65542 > 65536.
# Thousands of files are much quicker to make on tmpfs.
many=$(mktemp -d /dev/shm/nbdkit-floppy.XXXXXX 2>/dev/null) ||
  many=$tmpdir/many
cleanup_fn rm -rf "$many"
long=$(printf 'x%.0s' $(seq 1 244))
( cd "$many" && seq -f "$long%05g" 1 3121 | xargs touch ) ||
  fail "could not create the files"
expect_error "$many: too many files for one FAT directory (3121 names need 65542 entries, the limit is 65536)" \
  "$many"
# One fewer, and a 170 character name (14 + 1 entries): exactly 65536.
rm "$many/${long}03121"
touch "$many/$(printf 'y%.0s' $(seq 1 170))"
"$NBDKIT" -U - floppy "$many" --run 'nbdinfo --size "$uri" >/dev/null' ||
  fail "a directory of exactly 65536 entries was refused"

# A file removed while serving: reading it fails (nothing silently zero).
mkdir "$tmpdir/gone"
head -c 10000 /dev/urandom >"$tmpdir/gone/file"
export tmpdir
"$NBDKIT" -U - floppy "$tmpdir/gone" --run '
  rm "$tmpdir/gone/file" && ! nbdcopy "$uri" "$tmpdir/gone.img"' \
  2>"$tmpdir/err" || fail "reading a removed file did not fail"
grep -qF "open: $tmpdir/gone/file: No such file" "$tmpdir/err" ||
  fail "no error naming the removed file: $(cat "$tmpdir/err")"
