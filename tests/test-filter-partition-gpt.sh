#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The partition filter on a GPT disk built with sgdisk (partitions 1, 2,
# 3 and 5; entry 4 unused).  Each partition served through the filter
# has the size sfdisk reports and the same bytes as dd of that part of
# the image; unused, missing and truncated partitions and a corrupt
# header are refused with clear messages.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires sgdisk --version
requires sfdisk --version
requires nbdinfo --version
requires nbdcopy --version
requires qemu-img --version
requires_plugin file
requires_filter partition
make_tmpdir
export tmpdir

img=$tmpdir/disk.img
head -c 64M /dev/urandom >"$img"
sgdisk -o -n 1:2048:+4M -n 2:0:+8M -n 3:0:+1001K -n 5:0:+1M "$img" \
    >/dev/null || fail "sgdisk could not partition the image"

sfdisk --json "$img" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
assert t["label"] == "gpt" and t["sectorsize"] == 512
for p in t["partitions"]:
    n = p["node"][len(sys.argv[1]):]
    print(n, p["start"], p["size"])
' "$img" >"$tmpdir/parts" || fail "sfdisk --json failed"
[ "$(cut -d' ' -f1 "$tmpdir/parts" | tr '\n' ' ')" = "1 2 3 5 " ] ||
  fail "unexpected partitions: $(cat "$tmpdir/parts")"

serve ()
{
  local n=$1; shift
  "$NBDKIT" -U - --filter=partition file "$img" partition="$n" "$@"
}

while read -r n start sectors; do
  size=$(serve "$n" --run 'nbdinfo --size "$uri"') ||
    fail "partition $n: nbdinfo failed"
  [ "$size" = $(( sectors * 512 )) ] ||
    fail "partition $n: size $size, expected $(( sectors * 512 ))"
  # One partition through qemu-img, the rest through nbdcopy.
  if [ "$n" = 3 ]; then
    serve "$n" --run 'qemu-img convert -f raw -O raw "$uri" "$tmpdir/p"'
  else
    serve "$n" --run 'nbdcopy "$uri" "$tmpdir/p"'
  fi || fail "partition $n: copying failed"
  want=$(dd if="$img" bs=512 skip="$start" count="$sectors" status=none |
           md5sum)
  [ "$(md5sum <"$tmpdir/p")" = "$want" ] ||
    fail "partition $n: data differs from dd of sectors $start+$sectors"
done <"$tmpdir/parts"

refused ()
{
  local n=$1 pattern=$2
  serve "$n" --run 'nbdinfo --size "$uri"' >"$tmpdir/out" 2>"$tmpdir/err" &&
    fail "partition $n was served: $(cat "$tmpdir/out")"
  grep -q "$pattern" "$tmpdir/err" ||
    fail "partition $n: expected '$pattern' in: $(cat "$tmpdir/err")"
}
refused 4 "partition=4: partition not found (the GPT entry is unused)"
refused 200 "partition=200: partition not found (the GPT has room for 128"

# Cut the image short: partition 2 now runs past the end, partition 1
# still fits.
cp "$img" "$tmpdir/full.img"
truncate -s 8M "$img"
refused 2 "partition=2: .*extends beyond the end of the disk"
[ "$(serve 1 --run 'nbdinfo --size "$uri"')" = $(( 8192 * 512 )) ] ||
  fail "partition 1 of the cut image should still be served"

# A corrupt primary header is noticed.
cp "$tmpdir/full.img" "$img"
printf '\xff' | dd of="$img" bs=1 seek=$(( 512 + 24 )) conv=notrunc \
                   status=none
refused 1 "GPT header checksum is wrong"
