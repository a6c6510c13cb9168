#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The xz filter on a partitioned disk image compressed in 1 MiB blocks,
# alone and under the partition filter (the example of issue 7:
# nbdkit --filter=partition --filter=xz file disk.img.xz partition=1).
# The whole disk equals `xz -d` output; each partition equals dd of
# the original image; the export is read-only and the .xz file is
# left untouched.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires xz --version
requires sfdisk --version
requires nbdcopy --version
requires nbdinfo --version
requires nbdsh --version
requires_plugin file
requires_filter xz
requires_filter partition
make_tmpdir
export tmpdir

# 12 MiB: random data (incompressible) and text (compressible).
img=$tmpdir/disk.img
{ head -c 2M /dev/urandom; yes "nbdkit xz filter test line" | head -c 10M; } \
  >"$img"
sfdisk -q "$img" <<'TABLE' || fail "sfdisk could not partition the image"
label: dos
start=2048, size=20000, type=83
start=22528, size=2048, type=83
TABLE
xz --keep -0 --block-size=1MiB "$img" || fail "xz failed"
blocks=$(xz --robot --list "$img.xz" | awk '$1 == "totals" { print $3 }')
[ "$blocks" -ge 12 ] || fail "expected at least 12 blocks, xz made $blocks"
sum_before=$(sha256sum <"$img.xz")

# The whole disk.
"$NBDKIT" -U - --filter=xz file "$img.xz" \
    --run 'nbdcopy "$uri" "$tmpdir/whole"' || fail "nbdcopy of the disk failed"
xz -dc "$img.xz" | cmp - "$tmpdir/whole" ||
  fail "the disk served by the xz filter differs from xz -d output"

# Each partition, through partition and xz.
for p in "1 2048 20000" "2 22528 2048"; do
  read -r n start sectors <<<"$p"
  out=$("$NBDKIT" -U - --filter=partition --filter=xz file "$img.xz" \
          partition="$n" \
          --run 'nbdinfo --size "$uri" && nbdcopy "$uri" "$tmpdir/part"') ||
    fail "partition $n: serving it failed"
  [ "$out" = $(( sectors * 512 )) ] ||
    fail "partition $n: size $out, expected $(( sectors * 512 ))"
  dd if="$img" bs=512 skip="$start" count="$sectors" status=none |
    cmp - "$tmpdir/part" ||
    fail "partition $n: data differs from the original image"
done

# Read-only, whatever the client asks.
"$NBDKIT" -U - --filter=xz file "$img.xz" --run 'nbdsh -u "$uri" -c "
assert h.is_read_only()
try:
    h.pwrite(b\"x\" * 512, 0)
    raise SystemExit(\"a write succeeded\")
except nbd.Error:
    pass
"' || fail "the export should refuse writes"
[ "$(sha256sum <"$img.xz")" = "$sum_before" ] ||
  fail "the .xz file was modified"
