#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cache filter's modes over the file plugin, checked against the
# bytes of the file underneath:
#  - writethrough: every write is in the file as soon as it is
#    acknowledged, before any flush;
#  - writeback: writes are not in the file until the client flushes
#    (or sends FUA, or disconnects), then they all are;
#  - unsafe: flush does not write anything back.
# The writes include unaligned ones by qemu-io at odd offsets; in every
# mode the disk read through the cache must equal the expected image.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires qemu-io --version
requires_plugin file
requires_filter cache
make_tmpdir
export tmpdir
export TMPDIR=$tmpdir

size=$(( 4 << 20 ))
head -c $size /dev/urandom >"$tmpdir/orig"

# Unaligned writes: offset:length:byte.
writes=(
  1001:5000:0x41 65533:7:0x42 131072:65536:0x43 196607:131075:0x44
  4194000:304:0x45
)
: >"$tmpdir/qemu-io.cmds"
for w in "${writes[@]}"; do
  IFS=: read -r off len byte <<<"$w"
  echo "write -P $byte $off $len" >>"$tmpdir/qemu-io.cmds"
done
cp "$tmpdir/orig" "$tmpdir/expected"
python3 - "$tmpdir/expected" "${writes[@]}" <<'PY' || fail "python failed"
import sys
with open(sys.argv[1], "r+b") as f:
    for w in sys.argv[2:]:
        off, n, byte = w.split(":")
        f.seek(int(off)); f.write(bytes([int(byte, 0)]) * int(n))
PY
sum_orig=$(sha256sum <"$tmpdir/orig")
sum_expected=$(sha256sum <"$tmpdir/expected")

# Run qemu-io's writes and print the checksum of the file at once,
# while still connected (nothing flushed yet), then the export's data.
write_and_look ()
{
  "$NBDKIT" -U - --filter=cache file "$tmpdir/disk" "$@" --run '
    qemu-io -f raw "$uri" <"$tmpdir/qemu-io.cmds" >"$tmpdir/qemu-io.out" &&
    sha256sum <"$tmpdir/disk" >"$tmpdir/sum-unflushed" &&
    nbdcopy "$uri" "$tmpdir/through-cache"
  ' 2>"$tmpdir/log" || fail "$*: writing failed: $(tail "$tmpdir/log")"
  cmp "$tmpdir/through-cache" "$tmpdir/expected" ||
    fail "$*: the disk read through the cache is wrong"
}

# writethrough: the file has the data before any flush.
cp "$tmpdir/orig" "$tmpdir/disk"
write_and_look cache=writethrough
[ "$(cat "$tmpdir/sum-unflushed")" = "$sum_expected" ] ||
  fail "writethrough: the file lacked the writes before a flush"

# writeback: within one connection, the file is unchanged after the
# writes and has them all after the flush; FUA writes go through at
# once.  The default mode is writeback.
for args in "cache=writeback" ""; do
  cp "$tmpdir/orig" "$tmpdir/disk"
  "$NBDKIT" -U - --filter=cache file "$tmpdir/disk" $args --run '
    nbdsh -u "$uri" -c "
import hashlib, os
def file_sum():
    with open(os.environ[\"tmpdir\"] + \"/disk\", \"rb\") as f:
        return hashlib.sha256(f.read()).hexdigest()
orig = file_sum()
h.pwrite(b\"W\" * 3000, 70001)
h.pwrite(b\"V\" * 65536, 262144)
assert h.pread(3000, 70001) == b\"W\" * 3000
assert file_sum() == orig, \"writeback wrote before the flush\"
h.pwrite(b\"F\" * 100, 1000000, nbd.CMD_FLAG_FUA)
with open(os.environ[\"tmpdir\"] + \"/disk\", \"rb\") as f:
    f.seek(1000000)
    assert f.read(100) == b\"F\" * 100, \"a FUA write did not reach the file\"
    f.seek(70001)
    assert f.read(3000) != b\"W\" * 3000
h.flush()
with open(os.environ[\"tmpdir\"] + \"/disk\", \"rb\") as f:
    f.seek(70001)
    assert f.read(3000) == b\"W\" * 3000, \"flush did not write back\"
    f.seek(262144)
    assert f.read(65536) == b\"V\" * 65536, \"flush did not write back\"
"' || fail "writeback ($args): wrong file contents around a flush"
done

# writeback: the same writes as qemu-io's, without a flush, are not in
# the file while the client is connected, and are written back when it
# disconnects.
cp "$tmpdir/orig" "$tmpdir/disk"
"$NBDKIT" -U - --filter=cache file "$tmpdir/disk" cache=writeback --run '
  nbdsh -u "$uri" -c "
import hashlib, os
path = os.environ[\"tmpdir\"] + \"/disk\"
orig = hashlib.sha256(open(path, \"rb\").read()).hexdigest()
for c in open(os.environ[\"tmpdir\"] + \"/qemu-io.cmds\"):
    _, _, byte, off, n = c.split()
    h.pwrite(bytes([int(byte, 0)]) * int(n), int(off))
assert hashlib.sha256(open(path, \"rb\").read()).hexdigest() == orig, \\
    \"writeback wrote before a flush\"
"' || fail "writeback: writing without a flush failed"
[ "$(sha256sum <"$tmpdir/disk")" = "$sum_expected" ] ||
  fail "writeback: the writes were not written back at disconnect"

# writeback with qemu-io, which flushes when it closes.
cp "$tmpdir/orig" "$tmpdir/disk"
write_and_look cache=writeback
[ "$(sha256sum <"$tmpdir/disk")" = "$sum_expected" ] ||
  fail "writeback: the file is wrong after qemu-io flushed"

# unsafe: a flush writes nothing back, not even at disconnect; the
# data read through the cache is right all the same.
cp "$tmpdir/orig" "$tmpdir/disk"
write_and_look cache=unsafe
[ "$(sha256sum <"$tmpdir/disk")" = "$sum_orig" ] ||
  fail "unsafe: writes reached the file"

echo "$0: ok"
