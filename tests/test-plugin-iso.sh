#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The iso plugin: an image made by xorriso and one by genisoimage from
# two merged directories (long names, a nested directory, an empty file)
# read back with isoinfo, every file compared byte for byte; the
# temporary image is never left in $TMPDIR; the export is read-only;
# bad parameters and failing ISO programs give exit status 1.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires nbdinfo --version
requires isoinfo -version
requires_plugin iso
make_tmpdir
export tmpdir

mkdir -p "$tmpdir/a/sub dir/deeper" "$tmpdir/b" "$tmpdir/tmp"
head -c 70000 /dev/urandom >"$tmpdir/a/random.bin"
echo hello >"$tmpdir/a/A rather long file name.txt"
: >"$tmpdir/a/empty"
head -c 5000 /dev/urandom >"$tmpdir/a/sub dir/deeper/nested.dat"
echo from b >"$tmpdir/b/other.txt"
files=("random.bin" "A rather long file name.txt" "empty"
       "sub dir/deeper/nested.dat" "other.txt")
src ()
{
  if [ -f "$tmpdir/a/$1" ]; then echo "$tmpdir/a/$1"; else echo "$tmpdir/b/$1"; fi
}

# check_image PROG: serve both directories with PROG, copy the image out,
# check the export and compare every file.
check_image ()
{
  local prog=$1 iso=$tmpdir/$1.iso f
  TMPDIR=$tmpdir/tmp "$NBDKIT" -U - iso "$tmpdir/a" dir="$tmpdir/b" \
    prog="$prog" params='-J -r' --run '
    [ -z "$(ls -A "$tmpdir/tmp")" ] || { echo "image left in TMPDIR"; exit 1; }
    nbdinfo --is read-only "$uri" && nbdinfo --can multi-conn "$uri" &&
    [ $(( $(nbdinfo --size "$uri") % 2048 )) -eq 0 ] &&
    nbdcopy "$uri" "'"$iso"'"' 2>"$tmpdir/$prog.err" ||
    fail "$prog: serving the ISO failed: $(cat "$tmpdir/$prog.err")"
  for f in "${files[@]}"; do
    isoinfo -R -i "$iso" -x "/$f" >"$tmpdir/extracted" ||
      fail "$prog: isoinfo -x /$f failed"
    cmp "$(src "$f")" "$tmpdir/extracted" ||
      fail "$prog: /$f differs from the original"
  done
  isoinfo -R -l -i "$iso" >"$tmpdir/listing"
  grep -q 'A rather long file name.txt' "$tmpdir/listing" ||
    fail "$prog: the long name is missing from isoinfo -l"
  grep -q 'Directory listing of /sub dir/deeper/' "$tmpdir/listing" ||
    fail "$prog: the nested directory is missing from isoinfo -l"
  [ -z "$(ls -A "$tmpdir/tmp")" ] || fail "$prog: image left in TMPDIR at exit"
}

check_image xorriso
if command -v genisoimage >/dev/null; then
  check_image genisoimage
fi

# expect_error MESSAGE ARGS...: nbdkit exits 1 before serving, saying MESSAGE.
expect_error ()
{
  local msg=$1 status
  shift
  status=0
  "$NBDKIT" -U - iso "$@" --run 'echo served; exit 0' \
    >"$tmpdir/out" 2>"$tmpdir/err" || status=$?
  [ $status -eq 1 ] ||
    fail "iso $*: exit status $status, expected 1: $(cat "$tmpdir/err")"
  ! grep -q served "$tmpdir/out" || fail "iso $*: served despite the error"
  grep -qF -- "$msg" "$tmpdir/err" ||
    fail "iso $*: error does not say '$msg': $(cat "$tmpdir/err")"
}
expect_error "dir=" prog=xorriso
expect_error "dir=$tmpdir/missing: No such file" "$tmpdir/missing"
expect_error "dir=$tmpdir/a/empty: not a directory" "$tmpdir/a/empty"
expect_error "false: command failed with exit code 1" "$tmpdir/a" prog=false
expect_error "no-such-iso-prog: command failed with exit code 127" \
  "$tmpdir/a" prog=no-such-iso-prog
expect_error "Unrecognized option '-bogus'" "$tmpdir/a" params=-bogus
expect_error "wrote no ISO image" "$tmpdir/a" prog=true
expect_error "wrote no ISO image" "$tmpdir/a" params="-o $tmpdir/elsewhere.iso"
expect_error "unknown parameter 'label'" "$tmpdir/a" label=x
TMPDIR=$tmpdir/no-such-dir expect_error \
  "cannot create a temporary file in $tmpdir/no-such-dir" "$tmpdir/a"
