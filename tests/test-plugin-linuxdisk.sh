#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The linuxdisk plugin: a directory tree (files, subdirectory, symlink,
# hard link, empty file) becomes a GPT disk that sgdisk verifies, whose
# partition, fetched through the partition filter, passes e2fsck -fn and
# gives every file back with debugfs; label, type and size= (absolute
# and +extra) as asked; the temporary file does not outlive nbdkit; bad
# parameters are refused.  Sizes are compared with Debian's nbdkit 1.32
# where it is installed.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires nbdinfo --version
requires sgdisk --version
requires mke2fs -V
requires e2fsck -V
requires debugfs -V
requires_plugin linuxdisk
requires_filter partition
make_tmpdir
cd "$tmpdir"

mkdir -p root/sub/deeper tmp
echo hello >root/hello.txt
head -c 300000 /dev/urandom >root/sub/random.bin
head -c 5000 /dev/urandom >root/sub/deeper/small.bin
: >root/empty
ln -s hello.txt root/link
ln root/hello.txt root/sub/hardlink
export TMPDIR=$tmpdir/tmp

# One run: the whole disk, then the filesystem through the filter.
"$NBDKIT" -U - linuxdisk root label=TESTLABEL type=ext4 \
    --run 'nbdcopy --synchronous "$uri" disk.img' || fail "linuxdisk failed"
"$NBDKIT" -U - --filter=partition linuxdisk root label=TESTLABEL type=ext4 \
    partition=1 --run 'nbdcopy --synchronous "$uri" fs.img' ||
  fail "linuxdisk with the partition filter failed"
[ -z "$(ls tmp)" ] || fail "temporary files left in \$TMPDIR: $(ls tmp)"

sgdisk -v disk.img | grep -q "No problems found" ||
  fail "sgdisk -v: $(sgdisk -v disk.img)"
sgdisk -p disk.img | grep -q '^ *1 *2048 ' || fail "partition 1 not at 2048"
disk_size=$(stat -c %s disk.img)
fs_size=$(stat -c %s fs.img)
[ $disk_size = $(( fs_size + 2048 * 512 + 33 * 512 )) ] ||
  fail "disk $disk_size bytes for a $fs_size byte filesystem"
# The partition in the whole disk is a sound filesystem too.
dd if=disk.img of=part1.img bs=512 skip=2048 count=$(( fs_size / 512 )) \
   status=none
e2fsck -fn part1.img >e2fsck.out 2>&1 || fail "e2fsck (disk): $(cat e2fsck.out)"

e2fsck -fn fs.img >e2fsck.out 2>&1 || fail "e2fsck: $(cat e2fsck.out)"
dumpe2fs -h fs.img 2>/dev/null >dumpe2fs.out
grep -q '^Filesystem volume name: *TESTLABEL$' dumpe2fs.out || fail "label"
grep -q '^Filesystem features:.*extent' dumpe2fs.out || fail "not ext4"

# Every file back through debugfs; the links as links.
for f in hello.txt sub/random.bin sub/deeper/small.bin empty sub/hardlink; do
  debugfs -R "cat /$f" fs.img 2>/dev/null | cmp - root/$f ||
    fail "/$f differs"
done
[ "$(debugfs -R 'stat /link' fs.img 2>/dev/null | grep -c 'Fast link dest: "hello.txt"')" = 1 ] ||
  fail "/link is not a symlink to hello.txt"
[ "$(debugfs -R 'stat /hello.txt' fs.img 2>/dev/null | grep -o 'Links: [0-9]*')" = "Links: 2" ] ||
  fail "/hello.txt should have 2 links"

# Sizes: automatic, +extra, absolute; each against Debian's if present.
sizes=""
for s in "" size=+2M size=8M; do
  sizes+=" $("$NBDKIT" -U - linuxdisk root $s --run 'nbdinfo --size "$uri"')"
done
set -- $sizes
[ $2 -ge $(( $1 + 2 * 1024 * 1024 )) ] || fail "size=+2M gave $2 (auto $1)"
[ $3 = $(( 8 * 1024 * 1024 + 2081 * 512 )) ] || fail "size=8M gave $3"
debian=/usr/bin/nbdkit
if [ -x $debian ] && $debian linuxdisk --dump-plugin >/dev/null 2>&1; then
  dsizes=""
  for s in "" size=+2M size=8M; do
    dsizes+=" $($debian -U - linuxdisk root $s --run 'nbdinfo --size "$uri"')"
  done
  [ "$sizes" = "$dsizes" ] || fail "sizes$sizes, Debian's$dsizes"
fi

# Bad parameters: exit 1 before serving, naming the value.
bad ()
{
  local want=$1; shift
  if "$NBDKIT" -U - linuxdisk "$@" --run 'echo served' >out 2>&1; then
    fail "linuxdisk $* was accepted"
  fi
  grep -q served out && fail "linuxdisk $* served before failing"
  grep -q -- "$want" out || fail "linuxdisk $*: error was: $(cat out)"
}
bad "dir=<DIRECTORY>" label=x
bad "dir=missing: No such file" missing
bad "not a directory" root/hello.txt
bad "type=xfs" root type=xfs
bad "label=aaaaaaaaaaaaaaaaa" root label=aaaaaaaaaaaaaaaaa
bad "mke2fs failed" root size=128K
bad "size=junk" root size=junk
[ -z "$(ls tmp)" ] || fail "temporary files left after failures: $(ls tmp)"
