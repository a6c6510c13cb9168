#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The floppy plugin read with real FAT tools: a tree with long and
# non-ASCII names, times, nested directories, a directory spanning many
# clusters, an empty file and a file spanning many clusters is served,
# copied out with nbdcopy, listed with mdir, extracted with mcopy and
# compared byte for byte, and fsck.fat finds nothing to fix; then with
# label= and size= (free space, label in mdir, still clean, free space
# reported as holes that read as zeroes).
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires nbdinfo --version
requires mdir --version
requires mcopy --version
requires fsck.fat --help
requires_plugin floppy
make_tmpdir
export tmpdir

src=$tmpdir/src
mkdir -p "$src/Sub Directory/deeper/deepest" "$src/many"
head -c 1000000 /dev/urandom >"$src/random.bin"
: >"$src/empty file"
echo hello >"$src/README"
touch -d '2001-02-03 04:05:06' "$src/README"
echo old >"$src/old"
touch -d '1975-01-01 12:00:00' "$src/old"
echo upper >"$src/UPPER.TXT"
echo lower >"$src/lower.txt"
echo dots >"$src/.hidden.tar.gz"
printf 'na\xc3\xafve\n' >"$src/na$(printf '\xc3\xaf')ve caf$(printf '\xc3\xa9').txt"
head -c 4097 /dev/urandom >"$src/Sub Directory/deeper/deepest/odd size.dat"
: >"$src/Sub Directory/deeper/empty"
echo mid >"$src/Sub Directory/middle file with a rather long name.txt"
# 200 files with the same first six characters, so short names need
# tails past ~9 and the directory spans many clusters.
( cd "$src/many" && for i in $(seq 1 200); do
    echo "$i" >"similar name $i.txt"; done )
# Not regular files or directories: skipped.
ln -s README "$src/a symlink"
mkfifo "$src/a fifo"

# check_image IMAGE: mtools and fsck.fat see exactly the tree.
check_image ()
{
  local img=$1 out=$tmpdir/out
  rm -rf "$out"
  mkdir "$out"
  mcopy -s -n -i "$img@@1M" '::/*' "$out/" ||
    fail "mcopy could not extract the files"
  rm -f "$src/a symlink" "$src/a fifo"
  diff -r "$src" "$out" || fail "files extracted with mcopy differ"
  ln -s README "$src/a symlink"
  mkfifo "$src/a fifo"
  dd if="$img" of="$tmpdir/part" bs=1M skip=1 status=none
  fsck.fat -n "$tmpdir/part" >"$tmpdir/fsck" 2>&1 ||
    fail "fsck.fat -n found problems: $(cat "$tmpdir/fsck")"
  ! grep -qi warning "$tmpdir/fsck" ||
    fail "fsck.fat warned: $(cat "$tmpdir/fsck")"
}

"$NBDKIT" -U - floppy "$src" --run '
  nbdinfo --is read-only "$uri" && nbdinfo --can multi-conn "$uri" &&
  nbdcopy "$uri" "$tmpdir/disk.img"' || fail "serving the floppy failed"
check_image "$tmpdir/disk.img"

# The partition table: one FAT32 LBA partition at 1 MiB.
sfdisk -d "$tmpdir/disk.img" 2>/dev/null >"$tmpdir/sfdisk" ||
  od -An -tx1 -j446 -N16 "$tmpdir/disk.img" >"$tmpdir/sfdisk"
grep -Eq 'start= *2048, .*type=c|00 .. .. .. 0c .. .. .. 00 08 00 00' \
  "$tmpdir/sfdisk" || fail "unexpected partition table: $(cat "$tmpdir/sfdisk")"

mdir -i "$tmpdir/disk.img@@1M" :: >"$tmpdir/mdir" || fail "mdir failed"
for name in "random.bin" "empty file" "naïve café.txt" ".hidden.tar.gz" \
            "Sub Directory" "lower.txt"; do
  grep -qF " $name" "$tmpdir/mdir" ||
    fail "mdir does not list '$name': $(cat "$tmpdir/mdir")"
done
grep -Eq '^README +6 2001-02-03 +4:05 *$' "$tmpdir/mdir" ||
  fail "README lost its 8.3 name or its time: $(grep README "$tmpdir/mdir")"
grep -Eq '^OLD~1 +4 1980-01-01 +0:00 +old$' "$tmpdir/mdir" ||
  fail "a 1975 time was not clamped to 1980: $(grep old "$tmpdir/mdir")"
grep -q 'is NBDKITFLOPY' "$tmpdir/mdir" || fail "default label missing"
! grep -q 'symlink\|fifo' "$tmpdir/mdir" || fail "non-regular files listed"
mdir -i "$tmpdir/disk.img@@1M" ::/many >"$tmpdir/mdir-many"
[ "$(grep -c 'similar name' "$tmpdir/mdir-many")" -eq 200 ] ||
  fail "::/many does not list 200 files"

# label= and size=: the disk is exactly that size, the rest is free.
size=$(( 40 << 20 ))
"$NBDKIT" -U - floppy dir="$src" label=myDisk size=40M --run '
  [ "$(nbdinfo --size "$uri")" -eq '"$size"' ] &&
  nbdcopy "$uri" "$tmpdir/sized.img" &&
  nbdcopy --no-extents "$uri" "$tmpdir/sized-full.img" &&
  nbdinfo --map "$uri" >"$tmpdir/map"' || fail "serving with size= failed"
# Block status: the free space is reported as a hole, and the holes
# really read as zeroes (a copy ignoring them is the same).
cmp "$tmpdir/sized.img" "$tmpdir/sized-full.img" ||
  fail "the areas reported as holes do not read as zeroes"
holes=$(awk '$3 == 3 { n += $2 } END { print n + 0 }' "$tmpdir/map")
[ "$holes" -gt $(( 36 << 20 )) ] ||
  fail "only $holes bytes reported as holes: $(cat "$tmpdir/map")"
head -1 "$tmpdir/map" | grep -Eq '^ *0 +512 +0 +data' ||
  fail "the MBR is not reported as data: $(head -1 "$tmpdir/map")"
[ "$(stat -c %s "$tmpdir/sized.img")" -eq $size ] || fail "wrong size"
check_image "$tmpdir/sized.img"
mdir -i "$tmpdir/sized.img@@1M" :: >"$tmpdir/mdir"
grep -q 'is MYDISK' "$tmpdir/mdir" || fail "label= not shown by mdir"
free=$(grep "bytes free" "$tmpdir/mdir" | tr -dc 0-9)
[ "$free" -gt $(( 36 << 20 )) ] || fail "size=40M leaves only $free bytes free"
