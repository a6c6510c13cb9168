#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ddrescue filter: with a mapfile written by hand (every status
# character, decimal and hex numbers, areas out of order, a gap) reads
# wholly inside rescued areas return the image's data and any read
# touching another area fails with EIO (nbdsh); the export is read-only;
# with a mapfile made by real GNU ddrescue rescuing part of a file,
# qemu-io reads the rescued part and fails on the rest, nbdcopy of the
# whole disk fails; bad mapfiles are refused before serving.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires_plugin file
requires_filter ddrescue

make_tmpdir
export tmpdir

head -c 65536 /dev/urandom > "$tmpdir/src"
cp "$tmpdir/src" "$tmpdir/img"

cat > "$tmpdir/hand.map" <<'EOF2'
# Mapfile written by hand.
# current_pos  current_status  current_pass
0x00000000     +               1
#      pos        size  status
0x00002000  0x00001000  *
0x00000000  0x00001000  +
4096        512         -
0x00001200  0x00000E00  ?
0x00003000  0x00001000  /
0x00004000  0x00004000  +
0x0000C000  0x00004000  +
EOF2

"$NBDKIT" -U - --filter=ddrescue file "$tmpdir/img" \
  ddrescue-mapfile="$tmpdir/hand.map" \
  --run 'nbdsh -u "$uri" -c "
import errno, os
src = open(os.environ[\"tmpdir\"] + \"/src\", \"rb\").read()
assert h.is_read_only()
assert not h.can_cache()
good = ((4096, 0), (512, 0), (16384, 16384), (4096, 20480), (16384, 49152))
bad = ((512, 4096), (512, 4608), (4096, 8192), (4096, 12288),
       (4608, 0), (512, 16384 - 512), (512, 32768), (16384, 40960),
       (65536, 0))
for c, o in good:
    assert h.pread(c, o) == src[o:o + c], (c, o)
for c, o in bad:
    try:
        h.pread(c, o)
    except nbd.Error as e:
        assert e.errnum == errno.EIO, (c, o, e)
    else:
        raise AssertionError(\"read %d at %d succeeded\" % (c, o))
"' || fail "mapfile written by hand"

# Without the status line (written by hand), the first line is data.
printf '0 0x1000 +\n0x1000 0x1000 -\n' > "$tmpdir/nostatus.map"
"$NBDKIT" -U - --filter=ddrescue file "$tmpdir/img" \
  ddrescue-mapfile="$tmpdir/nostatus.map" \
  --run 'nbdsh -u "$uri" -c "
import os
src = open(os.environ[\"tmpdir\"] + \"/src\", \"rb\").read()
assert h.pread(4096, 0) == src[:4096]
try:
    h.pread(512, 4096)
    raise AssertionError(\"bad area read\")
except nbd.Error:
    pass
"' || fail "mapfile without a status line"

# A mapfile from real ddrescue: only 16K-32K of the source rescued.
if command -v ddrescue >/dev/null; then
  rm -f "$tmpdir/img" "$tmpdir/real.map"
  ddrescue -q -i 16KiB -s 16KiB "$tmpdir/src" "$tmpdir/img" \
    "$tmpdir/real.map" || fail "ddrescue failed"
  truncate -s 64K "$tmpdir/img"
  grep -q '^0x00004000  0x00004000  +' "$tmpdir/real.map" ||
    fail "unexpected ddrescue mapfile: $(cat "$tmpdir/real.map")"
  if command -v qemu-io >/dev/null; then
    "$NBDKIT" -U - --filter=ddrescue file "$tmpdir/img" \
      ddrescue-mapfile="$tmpdir/real.map" \
      --run 'qemu-io -r -f raw "$uri" -c "read 16k 16k" -c "read 0 4k"' \
      > "$tmpdir/qemu-io.out" 2>&1
    grep -q 'read 16384/16384 bytes at offset 16384' "$tmpdir/qemu-io.out" &&
      grep -q 'read failed: Input/output error' "$tmpdir/qemu-io.out" ||
      fail "qemu-io: $(cat "$tmpdir/qemu-io.out")"
  fi
  rc=0
  "$NBDKIT" -U - --filter=ddrescue file "$tmpdir/img" \
    ddrescue-mapfile="$tmpdir/real.map" \
    --run 'nbdcopy "$uri" "$tmpdir/copy"' 2>/dev/null || rc=$?
  [ $rc -ne 0 ] || fail "nbdcopy of a partly rescued disk succeeded"
  "$NBDKIT" -U - --filter=ddrescue file "$tmpdir/img" \
    ddrescue-mapfile="$tmpdir/real.map" \
    --run 'nbdsh -u "$uri" -c "
import os
src = open(os.environ[\"tmpdir\"] + \"/src\", \"rb\").read()
assert h.pread(16384, 16384) == src[16384:32768]
"' || fail "rescued data differs from the source"
fi

# bad CONTENT WHAT: refused with exit status 1 and WHAT in the message.
bad ()
{
  local rc=0
  printf "$1" > "$tmpdir/bad.map"
  "$NBDKIT" -U - --filter=ddrescue file "$tmpdir/img" \
    ddrescue-mapfile="$tmpdir/bad.map" --run true 2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "mapfile [$1]: exit status $rc, expected 1"
  grep -q -- "$2" "$tmpdir/err" ||
    fail "mapfile [$1]: no '$2' in the error: $(cat "$tmpdir/err")"
}
bad 'garbage\n'                             'bad.map:1: not a GNU ddrescue'
bad '0 + 1\n0x0 0x1000 X\n'                 'bad.map:2: not a GNU ddrescue'
bad '0 + 1\n0x0 0x1000\n'                   'bad.map:2: not a GNU ddrescue'
bad '0 + 1\n0x0 0x1000 + x\n'               'bad.map:2: not a GNU ddrescue'
bad '0 + 1\n0x0 0x2000 +\n0x1000 0x1000 -\n' 'overlap'
bad '# only comments\n'                     'empty'
rc=0
"$NBDKIT" --filter=ddrescue file "$tmpdir/img" --run true \
  2> "$tmpdir/err" || rc=$?
[ $rc -eq 1 ] && grep -q "ddrescue-mapfile=" "$tmpdir/err" ||
  fail "a missing ddrescue-mapfile= is not refused"

echo "$0: ok"
