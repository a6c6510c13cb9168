#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ext2 filter's other cases: ext2file=/PATH serves that file
# whatever the export name; ext2file=exportname lists no exports; an
# image without a filesystem and a journal that needs recovery (for
# writing) are refused with clear messages; bad parameters stop the
# server with status 1.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires mke2fs -V
requires debugfs -V
requires nbdinfo --version
requires nbdcopy --version
requires_plugin file
requires_filter ext2
make_tmpdir

mkdir "$tmpdir/src" "$tmpdir/src/dir"
head -c 300000 /dev/urandom >"$tmpdir/src/f"
echo hello >"$tmpdir/src/dir/small"
img=$tmpdir/fs.img
truncate -s 8M "$img"
mke2fs -q -t ext4 -d "$tmpdir/src" "$img" || fail "mke2fs failed"

# ext2file=/PATH serves that file whatever the export name.
[ "$("$NBDKIT" -r -U - --filter=ext2 file "$img" ext2file=/dir/small \
        --run 'nbdcopy "nbd+unix:///other?socket=$unixsocket" -')" = hello ] ||
  fail "ext2file=/dir/small: wrong data"

# ext2file=exportname lists no exports (as Debian's 1.32).
"$NBDKIT" -U - --filter=ext2 file "$img" ext2file=exportname \
    --run 'nbdinfo --json --list "$uri"' >"$tmpdir/list" ||
  fail "nbdinfo --list failed"
python3 -c '
import json, sys
assert json.load(open(sys.argv[1]))["exports"] == []
' "$tmpdir/list" || fail "exports listed: $(cat "$tmpdir/list")"

# Not a filesystem.
truncate -s 1M "$tmpdir/blank"
"$NBDKIT" -U - --filter=ext2 file "$tmpdir/blank" ext2file=/f \
    --run 'nbdinfo --size "$uri"' >/dev/null 2>"$tmpdir/err" &&
  fail "a blank image was served"
grep -q "opening the ext2/3/4 filesystem" "$tmpdir/err" ||
  fail "blank image: unexpected message: $(cat "$tmpdir/err")"

# A journal that needs recovery: refused for writing, served with -r.
debugfs -w -R "feature needs_recovery" "$img" >/dev/null 2>&1 ||
  fail "debugfs could not set needs_recovery"
"$NBDKIT" -U - --filter=ext2 file "$img" ext2file=/f \
    --run 'nbdinfo --size "$uri"' >/dev/null 2>"$tmpdir/err" &&
  fail "a filesystem whose journal needs recovery was opened for writing"
grep -q "journal needs recovery" "$tmpdir/err" ||
  fail "needs_recovery: unexpected message: $(cat "$tmpdir/err")"
[ "$("$NBDKIT" -r -U - --filter=ext2 file "$img" ext2file=/f \
       --run 'nbdinfo --size "$uri"')" = 300000 ] ||
  fail "needs_recovery: -r should still serve the file"

# Configuration errors stop the server with status 1.
for args in "ext2file=f" "" "ext2file=/f ext2file=/g"; do
  # shellcheck disable=SC2086
  "$NBDKIT" -U - --filter=ext2 file "$img" $args --run true 2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "'$args': exit status $r, expected 1"
  grep -q "ext2file" "$tmpdir/err" ||
    fail "'$args': the message does not name the parameter"
done
