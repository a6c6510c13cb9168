#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The extentlist filter: the map nbdinfo --map prints for an unsorted
# list (numeric and word types, gaps, comments, an extent past the end
# of the disk), a small block status request in the middle of an
# extent (nbdsh), an empty list, and every bad list
# refused before serving with the file and line named.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdinfo --version
requires nbdsh --version
requires_plugin memory
requires_filter extentlist

make_tmpdir

cat > "$tmpdir/list" <<'EOF2'
# offset length type
1M  1M
0   64K  3
3M  1M   hole
4M  64K  zero
5M	1M	hole,zero
20M 1M
EOF2

"$NBDKIT" -U - -r --filter=extentlist memory 8M extentlist="$tmpdir/list" \
  --run 'nbdinfo --map "$uri"' > "$tmpdir/map" || fail "nbdinfo --map failed"
cat > "$tmpdir/expected" <<'EOF2'
         0     1048576    3  hole,zero
   1048576     1048576    0  data
   2097152     1048576    3  hole,zero
   3145728     1048576    1  hole
   4194304       65536    2  zero
   4259840     4128768    3  hole,zero
EOF2
diff -u "$tmpdir/expected" "$tmpdir/map" || fail "wrong map"

# A request inside an extent, and one crossing into a gap.
"$NBDKIT" -U - -r --filter=extentlist memory 8M extentlist="$tmpdir/list" \
  --run 'nbdsh --base-allocation -u "$uri" -c "
got = []
h.block_status(4096, 1048576 + 8192, lambda ctx, off, ents, err: got.extend(ents))
assert got[:2] == [4096, 0], got
got = []
h.block_status(2 * 65536, 2 * 1048576 - 65536, lambda ctx, off, ents, err: got.extend(ents))
assert got == [65536, 0, 65536, 3], got
"' || fail "block status inside an extent"

# An empty list: the whole disk is a hole.
: > "$tmpdir/empty"
"$NBDKIT" -U - -r --filter=extentlist memory 1M extentlist="$tmpdir/empty" \
  --run 'nbdinfo --map "$uri"' > "$tmpdir/map" || fail "empty list"
grep -q '^ *0 *1048576 *3 *hole,zero$' "$tmpdir/map" ||
  fail "empty list: $(cat "$tmpdir/map")"

# bad CONTENT WHAT: refused with exit status 1 and WHAT in the message.
bad ()
{
  local rc=0
  printf "$1" > "$tmpdir/bad"
  "$NBDKIT" -U - -r --filter=extentlist memory 8M extentlist="$tmpdir/bad" \
    --run true 2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "list [$1]: exit status $rc, expected 1"
  grep -q -- "$2" "$tmpdir/err" ||
    fail "list [$1]: no '$2' in the error: $(cat "$tmpdir/err")"
}
bad '0 1M\n512K 1M\n'   'overlap'
bad '0 1M foo\n'        "bad:1: type 'foo'"
bad '0 1M 1 extra\n'    'bad:1: expected'
bad '\n0\n'             'bad:2: expected'
bad 'x 1M\n'            'bad:1: cannot parse'
bad '0 -1\n'            'bad:1: cannot parse'
rc=0
"$NBDKIT" -r --filter=extentlist memory 8M --run true 2> "$tmpdir/err" || rc=$?
[ $rc -eq 1 ] && grep -q "extentlist=" "$tmpdir/err" ||
  fail "missing extentlist= not refused"
rc=0
"$NBDKIT" -r --filter=extentlist memory 8M extentlist="$tmpdir/none" \
  --run true 2> "$tmpdir/err" || rc=$?
[ $rc -eq 1 ] && grep -q "none" "$tmpdir/err" ||
  fail "missing file not refused"

echo "$0: ok"
