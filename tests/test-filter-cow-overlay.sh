#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cow filter over the file plugin: aligned and unaligned writes
# (qemu-io at odd offsets), zeroes and trims read back through the
# overlay exactly as applied to a copy of the file, a second client sees
# the first one's changes, wholly zeroed blocks are reported as zero in
# block status, and the file itself is never changed (sha256sum).
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires qemu-io --version
requires_plugin file
requires_filter cow
make_tmpdir
export tmpdir
export TMPDIR=$tmpdir

size=$(( 4 << 20 ))
head -c $size /dev/urandom >"$tmpdir/disk"
sum_before=$(sha256sum <"$tmpdir/disk")

# The changes, made by qemu-io (writes, write-zeroes) and nbdsh (trim,
# zero and writes with exact offsets), each also applied to the
# expected image by apply.py.
cat >"$tmpdir/apply.py" <<'PY'
import sys
path, ops = sys.argv[1], sys.argv[2:]
with open(path, "r+b") as f:
    for op in ops:
        kind, off, length, byte = op.split(":")
        f.seek(int(off))
        f.write(bytes([int(byte, 0)]) * int(length))
PY
# kind:offset:length:byte
changes=(
  w:1001:5000:0x41          # inside the first block, odd offset
  w:65533:7:0x42            # across the first block boundary
  w:131072:65536:0x43       # exactly one block
  w:196607:131075:0x44      # odd start, spanning three blocks
  z:400003:70001:0          # zeroes over a block boundary
  z:524288:131072:0         # two whole blocks of zeroes
  t:917504:65536:0          # trim of a whole block
  t:1048579:100000:0        # unaligned trim: parts of blocks too
  w:4194000:304:0x45        # the last bytes of the disk
)
nbdsh_code=""
: >"$tmpdir/qemu-io.cmds"
for c in "${changes[@]}"; do
  IFS=: read -r kind off len byte <<<"$c"
  case $kind in
    w) echo "write -P $byte $off $len" >>"$tmpdir/qemu-io.cmds" ;;
    z) echo "write -z $off $len" >>"$tmpdir/qemu-io.cmds" ;;
    t) nbdsh_code+="h.trim($len, $off)"$'\n' ;;
  esac
done
export nbdsh_code

cp "$tmpdir/disk" "$tmpdir/expected"
python3 "$tmpdir/apply.py" "$tmpdir/expected" "${changes[@]}" ||
  fail "building the expected image failed"

cat >"$tmpdir/check.py" <<'PY'
import os
exec(os.environ["nbdsh_code"])
# Whole blocks zeroed are zero in block status, even though the file
# underneath has data there.
seen = []
def cb(meta, off, entries, err):
    if meta == nbd.CONTEXT_BASE_ALLOCATION:
        seen.extend(entries)
h.block_status(131072, 524288, cb)
assert len(seen) >= 2 and seen[1] & nbd.STATE_ZERO, \
    "zeroed blocks not reported as zero: %r" % seen
assert sum(seen[0::2]) >= 131072, seen
PY

"$NBDKIT" -U - --filter=cow file "$tmpdir/disk" --run '
  qemu-io -f raw "$uri" <"$tmpdir/qemu-io.cmds" >"$tmpdir/qemu-io.out" &&
  nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/check.py" &&
  nbdcopy "$uri" "$tmpdir/through-overlay"
' 2>"$tmpdir/log" ||
  fail "writing through the overlay failed:
$(cat "$tmpdir/qemu-io.out" "$tmpdir/log" 2>/dev/null | tail -20)"

cmp "$tmpdir/through-overlay" "$tmpdir/expected" ||
  fail "the disk read through the overlay differs from the expected image"
[ "$(sha256sum <"$tmpdir/disk")" = "$sum_before" ] ||
  fail "the file under the cow filter was changed"

# The overlay is shared: a second connection sees what the first one
# wrote, and the plugin still has the old data.
"$NBDKIT" -U - --filter=cow file "$tmpdir/disk" --run '
  nbdsh -u "$uri" -c "h.pwrite(b\"shared\" * 100, 777)" &&
  nbdsh -u "$uri" -c "assert h.pread(600, 777) == b\"shared\" * 100"
' || fail "a second client did not see the first client's write"
[ "$(sha256sum <"$tmpdir/disk")" = "$sum_before" ] ||
  fail "the file under the cow filter was changed"

# The overlay file lives in TMPDIR and is unlinked at once.
leftover=$(find "$tmpdir" -name 'nbdkit-cow-*')
[ -z "$leftover" ] || fail "overlay files were left behind: $leftover"

echo "$0: ok"
