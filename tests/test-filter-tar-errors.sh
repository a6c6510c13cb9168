#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# What the tar filter refuses, each with a message naming the problem:
# a missing member (with a hint when only "./" or a trailing slash
# differs), a directory, a hard link, a sparse member, a member beyond
# tar-limit, a file that is not tar, a truncated archive; and bad or
# missing parameters stop the server with exit status 1.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires tar --version
requires nbdinfo --version
requires_plugin file
requires_filter tar
make_tmpdir

src=$tmpdir/src
mkdir -p "$src/dir"
head -c 600000 /dev/urandom >"$src/a.img"
ln "$src/a.img" "$src/hard.img"
# A sparse file: a hole then data.
truncate -s 2M "$src/sparse.img"
echo data >>"$src/sparse.img"
tar -C "$src" -cf "$tmpdir/t.tar" ./a.img dir hard.img
tar -C "$src" --sparse -cf "$tmpdir/sparse-gnu.tar" sparse.img
tar -C "$src" --sparse --format=posix -cf "$tmpdir/sparse-pax.tar" sparse.img

refused ()
{
  local tarball=$1 pattern=$2; shift 2
  "$NBDKIT" -U - -r --filter=tar file "$tarball" "$@" \
      --run 'nbdinfo --size "$uri"' >"$tmpdir/out" 2>"$tmpdir/err" &&
    fail "$*: the export was served: $(cat "$tmpdir/out")"
  grep -q -- "$pattern" "$tmpdir/err" ||
    fail "$*: expected '$pattern' in: $(cat "$tmpdir/err")"
}
refused "$tmpdir/t.tar" "tar-entry=nope: no such member" tar-entry=nope
refused "$tmpdir/t.tar" "tar-entry=a.img: no such member.*has './a.img'" \
  tar-entry=a.img
refused "$tmpdir/t.tar" "tar-entry=dir: .*has 'dir/'" tar-entry=dir
refused "$tmpdir/t.tar" "tar-entry=dir/: .*not a regular file" tar-entry=dir/
refused "$tmpdir/t.tar" "hard link to './a.img'" tar-entry=hard.img
refused "$tmpdir/sparse-gnu.tar" "sparse members are not supported" \
  tar-entry=sparse.img
refused "$tmpdir/sparse-pax.tar" "sparse members are not supported" \
  tar-entry=sparse.img
# hard.img's header is the fourth one (./a.img, its data, dir/, then
# hard.img): a limit before it stops the search.
refused "$tmpdir/t.tar" "not found in the first 1024 bytes.*tar-limit" \
  tar-entry=hard.img tar-limit=1k
# The limit only bounds where headers are looked for.
[ "$("$NBDKIT" -U - -r --filter=tar file "$tmpdir/t.tar" \
       tar-entry=./a.img tar-limit=1 --run 'nbdinfo --size "$uri"')" = \
  600000 ] || fail "tar-limit=1 should still find the first member"

# Not tar, and a truncated archive.
head -c 100000 /dev/urandom >"$tmpdir/random"
refused "$tmpdir/random" "not a tar file" tar-entry=a.img
head -c 1000 "$tmpdir/t.tar" >"$tmpdir/short.tar"
refused "$tmpdir/short.tar" "truncated" tar-entry=./a.img
head -c 100000 "$tmpdir/t.tar" >"$tmpdir/short2.tar"
refused "$tmpdir/short2.tar" "truncated" tar-entry=./a.img
# A header whose checksum is wrong.
cp "$tmpdir/t.tar" "$tmpdir/bad.tar"
printf 'X' | dd of="$tmpdir/bad.tar" bs=1 seek=10 conv=notrunc status=none
refused "$tmpdir/bad.tar" "corrupt header at offset 0" tar-entry=./a.img

# Configuration errors.
for args in "" "tar-entry=" "tar-entry=a tar-limit=x" \
            "tar-entry=a tar-limit=-5"; do
  case $args in
    *tar-limit*) key=tar-limit ;;
    *) key=tar-entry ;;
  esac
  # shellcheck disable=SC2086
  "$NBDKIT" -U - --filter=tar file "$tmpdir/t.tar" $args --run true \
      2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "'$args': exit status $r, expected 1"
  grep -q "$key" "$tmpdir/err" ||
    fail "'$args': the message does not name $key: $(cat "$tmpdir/err")"
done
