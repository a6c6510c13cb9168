#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Block status on the file plugin follows the holes of a sparse file:
# written ranges are data, the rest are holes that read as zero.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires nbdsh --version
requires_plugin file
make_tmpdir
export tmpdir

M=$(( 1 << 20 ))
truncate -s $(( 16 * M )) "$tmpdir/disk"
# Skip if this file system cannot report holes.
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    os.lseek(fd, 0, os.SEEK_DATA)
except OSError as e:
    sys.exit(0 if e.errno == 6 else 1)   # ENXIO: all hole, as expected
sys.exit(1)
' "$tmpdir/disk" || skip "file system in $tmpdir does not report holes"

dd if=/dev/urandom of="$tmpdir/disk" bs=1M seek=2 count=1 conv=notrunc status=none
dd if=/dev/urandom of="$tmpdir/disk" bs=1M seek=8 count=3 conv=notrunc status=none

map=$("$NBDKIT" -U - -r file "$tmpdir/disk" --run 'nbdinfo --map "$uri"' |
      awk '{print $1, $2, $3}')
expected="0 $(( 2 * M )) 3
$(( 2 * M )) $M 0
$(( 3 * M )) $(( 5 * M )) 3
$(( 8 * M )) $(( 3 * M )) 0
$(( 11 * M )) $(( 5 * M )) 3"
[ "$map" = "$expected" ] || fail "map is
$map
expected
$expected"

# Punching a hole through NBD shows up in the map; REQ_ONE answers with
# the extent at the offset.
cat >"$tmpdir/t.py" <<'PY'
M = 1 << 20
h.trim(M, 9 * M)
got = []
def cb(metacontext, offset, entries, err):
    if metacontext == nbd.CONTEXT_BASE_ALLOCATION:
        got.append((offset, list(entries)))
    return 0
h.block_status(4 * M, 8 * M, cb)
(offset, entries), = got
assert offset == 8 * M
assert entries[:6] == [M, 0, M, 3, M, 0], entries
got.clear()
h.block_status(4 * M, 8 * M, cb, nbd.CMD_FLAG_REQ_ONE)
(offset, entries), = got
assert entries[:2] == [M, 0], entries
PY
"$NBDKIT" -U - file "$tmpdir/disk" \
  --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "block status checks failed"
