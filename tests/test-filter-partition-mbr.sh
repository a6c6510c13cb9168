#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The partition filter on an MBR disk built with sfdisk: two primary
# partitions, an extended one and two logical partitions in it.  Each
# partition served through the filter has the size sfdisk reports and
# the same bytes as dd of that part of the image; writes land inside the
# partition; a missing partition, one past the end of the disk and a
# disk without a table are refused with clear messages.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires sfdisk --version
requires nbdinfo --version
requires nbdcopy --version
requires nbdsh --version
requires_plugin file
requires_filter partition
make_tmpdir
export tmpdir

img=$tmpdir/disk.img
head -c 64M /dev/urandom >"$img"
sfdisk -q "$img" <<'TABLE' || fail "sfdisk could not partition the image"
label: dos
start=2048, size=8192, type=83
start=10240, size=8191, type=c
start=18432, size=90000, type=5
start=20480, size=10000, type=83
start=32768, size=20001, type=83
TABLE

# "N START SIZE" for every partition, as sfdisk sees them.
sfdisk --json "$img" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
assert t["sectorsize"] == 512
for p in t["partitions"]:
    n = p["node"][len(sys.argv[1]):]
    print(n, p["start"], p["size"])
' "$img" >"$tmpdir/parts" || fail "sfdisk --json failed"
[ "$(cut -d' ' -f1 "$tmpdir/parts" | tr '\n' ' ')" = "1 2 3 5 6 " ] ||
  fail "unexpected partitions: $(cat "$tmpdir/parts")"

serve ()
{
  local n=$1; shift
  "$NBDKIT" -U - --filter=partition file "$img" partition="$n" "$@"
}

# Size and data of each data partition (not the extended container).
while read -r n start sectors; do
  [ "$n" = 3 ] && continue
  size=$(serve "$n" --run 'nbdinfo --size "$uri"') ||
    fail "partition $n: nbdinfo failed"
  [ "$size" = $(( sectors * 512 )) ] ||
    fail "partition $n: size $size, expected $(( sectors * 512 ))"
  serve "$n" --run 'nbdcopy "$uri" "$tmpdir/p"' ||
    fail "partition $n: nbdcopy failed"
  want=$(dd if="$img" bs=512 skip="$start" count="$sectors" status=none |
           md5sum)
  [ "$(md5sum <"$tmpdir/p")" = "$want" ] ||
    fail "partition $n: data differs from dd of sectors $start+$sectors"
done <"$tmpdir/parts"

# A write to the start and the end of logical partition 6 lands at
# those sectors of the image, and the neighbouring bytes are unchanged.
read -r _ start6 sectors6 < <(grep '^6 ' "$tmpdir/parts")
cp "$img" "$tmpdir/before"
serve 6 --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"S\" * 512, 0)
h.pwrite(b\"E\" * 512, h.get_size() - 512)
"' || fail "writing to partition 6 failed"
python3 - "$tmpdir/before" "$img" "$start6" "$sectors6" <<'PY' ||
import sys
before = bytearray(open(sys.argv[1], "rb").read())
after = open(sys.argv[2], "rb").read()
start, sectors = int(sys.argv[3]) * 512, int(sys.argv[4]) * 512
before[start:start+512] = b"S" * 512
before[start+sectors-512:start+sectors] = b"E" * 512
assert after == bytes(before)
PY
  fail "the writes to partition 6 did not land where expected"

# Missing partitions: an unused primary entry and a logical partition
# that does not exist.  The export is refused, the log says why.
refused ()
{
  local n=$1 pattern=$2
  serve "$n" --run 'nbdinfo --size "$uri"' >"$tmpdir/out" 2>"$tmpdir/err" &&
    fail "partition $n was served: $(cat "$tmpdir/out")"
  grep -q "$pattern" "$tmpdir/err" ||
    fail "partition $n: expected '$pattern' in: $(cat "$tmpdir/err")"
}
refused 4 "partition=4: partition not found"
refused 7 "partition=7: partition not found"

# A partition that runs past the end of the disk (the image was cut
# short after partitioning).
truncate -s 8M "$img"
refused 2 "partition=2: .*extends beyond the end of the disk"
# Partition 1 still fits and is still served.
[ "$(serve 1 --run 'nbdinfo --size "$uri"')" = $(( 8192 * 512 )) ] ||
  fail "partition 1 of the cut image should still be served"

# No partition table at all.
truncate -s 1M "$tmpdir/blank"
img=$tmpdir/blank
refused 1 "no MBR or GPT partition table"

# Configuration errors stop the server.
for args in "partition=0" "partition=x" ""; do
  # shellcheck disable=SC2086
  "$NBDKIT" -U - --filter=partition file "$img" $args --run true \
      2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "'$args': exit status $r, expected 1"
  grep -q "partition" "$tmpdir/err" ||
    fail "'$args': the message does not name the parameter"
done
