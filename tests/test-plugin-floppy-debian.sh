#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Side by side with Debian's nbdkit 1.32 floppy plugin on the same
# directory: the same export flags, the same partition (start and
# type), the same long names in every directory (as fsck.fat -l lists
# them), the same disk size with size=, and both refuse a missing
# directory with exit status 1.  Debian's images have too few clusters
# for mtools, so mtools is only used on ours (test-plugin-floppy.sh).
source "${srcdir:-$(dirname "$0")}/functions.sh"
normal_build_only "a comparison with Debian's nbdkit"

debian=/usr/bin/nbdkit
[ -x "$debian" ] || skip "no Debian nbdkit at $debian"
"$debian" floppy --dump-plugin >/dev/null 2>&1 ||
  skip "Debian's nbdkit has no floppy plugin"
requires nbdcopy --version
requires nbdinfo --version
requires fsck.fat --help
requires sfdisk --version
requires_plugin floppy
make_tmpdir
export tmpdir

src=$tmpdir/src
mkdir -p "$src/sub"
echo alpha >"$src/alpha.txt"
echo long >"$src/A long name with spaces.txt"
echo readme >"$src/README"
head -c 70000 /dev/urandom >"$src/random.bin"
echo inner >"$src/sub/inner.txt"
echo another >"$src/sub/Another long one.dat"

# serve NAME NBDKIT ARGS...: copy the image to $tmpdir/NAME.img and keep
# nbdinfo's view of the export in $tmpdir/NAME.info.
serve ()
{
  local name=$1 server=$2
  shift 2
  "$server" -U - floppy "$@" --run '
    nbdinfo --json "$uri" | grep -E "\"(is_|can_|export-size\")" &&
    nbdcopy "$uri" "$tmpdir/'"$name"'.img"' >"$tmpdir/$name.info" ||
    fail "$name: serving the floppy failed"
}

# long_names NAME: the paths fsck.fat -l lists, without short names.
long_names ()
{
  dd if="$tmpdir/$1.img" of="$tmpdir/$1.part" bs=1M skip=1 status=none
  fsck.fat -n -l "$tmpdir/$1.part" 2>/dev/null |
    sed -n 's/^Checking file \(\/[^(]*[^ (]\)\( (.*)\)\?$/\1/p' |
    grep -v '^/NBDKITFL\.OPY$' | sort
}

serve debian "$debian" "$src"
serve ours "$NBDKIT" "$src"
diff <(grep -v export-size "$tmpdir/debian.info") \
     <(grep -v export-size "$tmpdir/ours.info") ||
  fail "export flags differ from Debian's"

for n in debian ours; do
  sfdisk -d "$tmpdir/$n.img" | grep -o 'start= *[0-9]*,.*type=[0-9a-f]*' |
    sed 's/size= *[0-9]*, //' >"$tmpdir/$n.parts"
done
diff "$tmpdir/debian.parts" "$tmpdir/ours.parts" ||
  fail "partition table differs from Debian's"
grep -q 'start= *2048, type=c' "$tmpdir/ours.parts" ||
  fail "unexpected partition: $(cat "$tmpdir/ours.parts")"

long_names debian >"$tmpdir/debian.names"
long_names ours >"$tmpdir/ours.names"
[ "$(wc -l <"$tmpdir/ours.names")" -eq 7 ] ||
  fail "expected 7 names: $(cat "$tmpdir/ours.names")"
diff "$tmpdir/debian.names" "$tmpdir/ours.names" ||
  fail "the file systems hold different names"

serve debian-sized "$debian" "$src" size=100M
serve ours-sized "$NBDKIT" "$src" size=100M
grep -q '"export-size": 104857600,' "$tmpdir/ours-sized.info" ||
  fail "size=100M: $(grep export-size "$tmpdir/ours-sized.info")"
diff "$tmpdir/debian-sized.info" "$tmpdir/ours-sized.info" ||
  fail "with size=100M the export differs from Debian's"

for server in "$debian" "$NBDKIT"; do
  status=0
  "$server" -U - floppy "$tmpdir/missing" --run 'echo served' \
    >"$tmpdir/out" 2>/dev/null || status=$?
  [ $status -eq 1 ] && ! grep -q served "$tmpdir/out" ||
    fail "$server: a missing directory gave status $status"
done
