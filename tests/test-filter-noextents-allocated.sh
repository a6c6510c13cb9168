#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The noextents filter: a sparse disk whose holes nbdinfo --map and
# nbdsh block status see without the filter is reported as one extent
# of allocated data with it; the data itself is unchanged (checksums).

source "$srcdir/functions.sh"
requires nbdinfo --version
requires nbdsh --version
requires nbdcopy --version
requires sha256sum --version
requires_plugin file
requires_filter noextents

make_tmpdir
export tmpdir
disk=$tmpdir/disk
truncate -s 1M "$disk"
head -c 4096 /dev/urandom |
  dd of="$disk" bs=4096 seek=64 conv=notrunc status=none
sum=$(sha256sum < "$disk")

# Sanity: without the filter the file plugin reports its holes.
"$NBDKIT" -U - file "$disk" --run 'nbdinfo --map "$uri"' > "$tmpdir/map" ||
  fail "nbdinfo --map failed"
grep -q 'hole' "$tmpdir/map" ||
  skip "the file system of $tmpdir does not report holes"

"$NBDKIT" -U - --filter=noextents file "$disk" \
  --run 'nbdinfo --map "$uri"' > "$tmpdir/map" ||
  fail "nbdinfo --map with noextents failed"
[ "$(awk '{print $1, $2, $3}' "$tmpdir/map")" = "0 1048576 0" ] ||
  { cat "$tmpdir/map"; fail "noextents: the map is not one data extent"; }

"$NBDKIT" -U - --filter=noextents file "$disk" \
  --run 'nbdsh --base-allocation -u "$uri" -c "
seen = []
def cb(meta, off, entries, err):
    seen.extend(entries)
h.block_status(1048576, 0, cb)
assert seen == [1048576, 0], seen
seen.clear()
h.block_status(65536, 4096, cb, nbd.CMD_FLAG_REQ_ONE)
assert seen == [65536, 0], seen
"' || fail "noextents: nbdsh block status is wrong"

# The data is unchanged, holes and all.
"$NBDKIT" -U - --filter=noextents file "$disk" \
  --run 'nbdcopy "$uri" "$tmpdir/copy"' || fail "nbdcopy failed"
[ "$(sha256sum < "$tmpdir/copy")" = "$sum" ] || fail "copied data differs"

echo "$0: ok"
