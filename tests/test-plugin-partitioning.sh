#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The partitioning plugin: MBR (primary and logical partitions) and GPT
# tables as sfdisk and sgdisk read them, every file read back byte for
# byte through the partition filter, writes reaching the files while
# the table and padding refuse changes, bad parameters refused, and
# MBR images identical to Debian's nbdkit 1.32 where it is installed.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires sfdisk --version
requires sgdisk --version
requires_plugin partitioning
requires_filter partition
requires_plugin file
make_tmpdir
export tmpdir
cd "$tmpdir"

# Sizes deliberately not multiples of 512.
for i in 1 2 3 4 5; do
  head -c $(( i * 70000 + 100 )) /dev/urandom >p$i.img
done

# check_partition IMAGE N FILE: partition N of IMAGE, found by sfdisk,
# holds FILE followed by zeroes to the end of its last sector.
check_partition ()
{
  local image=$1 n=$2 file=$3 line start sectors size
  [ -s "$image.dump" ] || sfdisk -d "$image" >"$image.dump"
  line=$(grep "^$image$n :" "$image.dump") ||
    fail "$image has no partition $n"
  start=$(echo "$line" | sed 's/.*start= *\([0-9]*\).*/\1/')
  sectors=$(echo "$line" | sed 's/.*size= *\([0-9]*\).*/\1/')
  size=$(stat -c %s "$file")
  [ "$sectors" = $(( (size + 511) / 512 )) ] ||
    fail "$image partition $n has $sectors sectors for $size bytes"
  dd if="$image" of=part.out bs=512 skip="$start" count="$sectors" status=none
  cmp -n "$size" part.out "$file" || fail "$image partition $n differs"
  [ -z "$(tail -c +$(( size + 1 )) part.out | tr -d '\0')" ] ||
    fail "$image partition $n: padding is not zero"
}

# The same through our partition filter on the image.
check_partition_filter ()
{
  local image=$1 n=$2 file=$3 size
  size=$(stat -c %s "$file")
  "$NBDKIT" -U - --filter=partition file "$image" partition=$n \
      --run 'nbdcopy --synchronous "$uri" filter.out' ||
    fail "partition filter: reading $image partition $n failed"
  cmp -n "$size" filter.out "$file" ||
    fail "partition filter: $image partition $n differs"
}

# MBR, 5 files: 3 primary, extended 4, logical 5 and 6 with mbr-id.
"$NBDKIT" -U - partitioning p1.img p2.img p3.img mbr-id=0x82 p4.img p5.img \
    partition-type=mbr --run 'nbdcopy --synchronous "$uri" mbr.img' ||
  fail "copying the MBR disk failed"
for i in 1 2 3; do check_partition mbr.img $i p$i.img; done
check_partition mbr.img 5 p4.img
check_partition mbr.img 6 p5.img
check_partition_filter mbr.img 6 p5.img
sfdisk -d mbr.img | sed -n 's/^mbr.img//p' >mbr.dump
cat >mbr.expected <<'X'
1 : start=        2048, size=         137, type=83, bootable
2 : start=        4096, size=         274, type=83
3 : start=        6144, size=         411, type=83
4 : start=        6555, size=        4369, type=f
5 : start=        8192, size=         548, type=82
6 : start=       10240, size=         684, type=82
X
diff -u mbr.expected mbr.dump || fail "MBR table differs"
[ "$(stat -c %s mbr.img)" = $(( 10924 * 512 )) ] || fail "MBR disk size"

# Side by side with Debian's nbdkit: the MBR image must be identical.
debian=/usr/bin/nbdkit
if [ -x $debian ] && $debian partitioning --dump-plugin >/dev/null 2>&1; then
  $debian -U - partitioning p1.img p2.img p3.img mbr-id=0x82 p4.img \
      p5.img partition-type=mbr --run 'nbdcopy --synchronous "$uri" debian.img' ||
    fail "Debian's nbdkit failed"
  cmp debian.img mbr.img || fail "MBR image differs from Debian's"
else
  echo "$0: Debian's nbdkit partitioning plugin not found, comparison skipped"
fi

# Automatic choice: 2 files make an MBR, 5 a GPT.
"$NBDKIT" -U - partitioning p1.img p2.img --run 'nbdcopy --synchronous "$uri" auto2.img'
sfdisk -d auto2.img | grep -q '^label: dos' || fail "2 files: not MBR"
"$NBDKIT" -U - partitioning p1.img p2.img p3.img p4.img p5.img \
    --run 'nbdcopy --synchronous "$uri" auto5.img'
sfdisk -d auto5.img | grep -q '^label: gpt' || fail "5 files: not GPT"

# GPT with a type GUID and a smaller alignment for the third file.
esp=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
"$NBDKIT" -U - partitioning partition-type=gpt p1.img p2.img \
    alignment=4096 type-guid=$esp p3.img \
    --run 'nbdcopy --synchronous "$uri" gpt.img' ||
  fail "copying the GPT disk failed"
for i in 1 2 3; do check_partition gpt.img $i p$i.img; done
check_partition_filter gpt.img 3 p3.img
sgdisk -v gpt.img | grep -q "No problems found" || fail "sgdisk -v: $(sgdisk -v gpt.img)"
sfdisk -d gpt.img | sed -n 's/^gpt.img\(.\) : \(start=[ 0-9]*, size=[ 0-9]*, type=[-0-9A-F]*\).*name="\([^"]*\)".*/\1 \2 \3/p' >gpt.dump
cat >gpt.expected <<X
1 start=        2048, size=         137, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4 p1.img
2 start=        4096, size=         274, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4 p2.img
3 start=        4376, size=         411, type=$esp p3.img
X
diff -u gpt.expected gpt.dump || fail "GPT table differs"
[ "$(stat -c %s gpt.img)" = $(( (4787 + 33) * 512 )) ] || fail "GPT disk size"

# Writes: into a file, the table (same bytes ok, others EIO), padding.
cp p1.img p1.orig
"$NBDKIT" -U - partitioning p1.img p2.img --run 'nbdsh -u "$uri" -c "
import errno
def refused(buf, off):
    try:
        h.pwrite(buf, off)
    except nbd.Error as e:
        assert e.errno == \"EIO\", e.errno
        return True
    return False
h.pwrite(b\"A\" * 1000, 2048 * 512 + 10)
h.pwrite(h.pread(512, 0), 0)
assert refused(b\"x\" * 512, 0)
h.pwrite(bytes(512), 100 * 512)
assert refused(b\"y\", 100 * 512)
assert refused(b\"B\" * 300, 2048 * 512 + 69900)
h.zero(512, 2048 * 512 - 512)
h.flush()
assert h.can_multi_conn() and h.can_cache() and not h.can_trim()
h.cache(4096, 0)
"' || fail "write checks failed"
{ head -c 10 p1.orig; head -c 1000 /dev/zero | tr '\0' A;
  tail -c +1011 p1.orig; } | cmp - p1.img || fail "write did not reach p1.img"

# Bad parameters: exit 1 naming the parameter, before serving.
bad ()
{
  local want=$1; shift
  if "$NBDKIT" -U - partitioning "$@" --run true 2>err; then
    fail "partitioning $* was accepted"
  fi
  grep -q -- "$want" err || fail "partitioning $*: error was: $(cat err)"
}
: >empty.img
bad "at least one file" partition-type=gpt
bad "empty.img: zero length" p1.img empty.img
bad "missing.img: open" missing.img
bad "alignment=1536" alignment=1536 p1.img
bad "alignment=256" alignment=256 p1.img
bad "alignment=2M" alignment=2M p1.img
bad "mbr-id" mbr-id=0x100 p1.img
bad "type-guid=xyz" type-guid=xyz p1.img
bad "partition-type=foo" partition-type=foo p1.img

