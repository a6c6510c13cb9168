#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad cow filter settings stop nbdkit at start-up with exit status 1 and
# a message naming the parameter: a block size that is not a power of
# 2, below 4K, above 64M or not a size; booleans that are not booleans;
# a TMPDIR where the overlay cannot be made.  Valid settings start.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin pattern
requires_filter cow
make_tmpdir
export TMPDIR=$tmpdir

bad ()
{
  local key=$1; shift
  "$NBDKIT" -U - --filter=cow pattern 1M "$@" --run true 2>"$tmpdir/err"
  local r=$?
  [ $r = 1 ] || fail "$*: exit status $r, expected 1"
  grep -q -- "$key" "$tmpdir/err" ||
    fail "$*: the message does not name '$key': $(cat "$tmpdir/err")"
}
bad cow-block-size cow-block-size=1000
bad cow-block-size cow-block-size=2048
bad cow-block-size cow-block-size=128M
bad cow-block-size cow-block-size=12K
bad cow-block-size cow-block-size=abc
bad cow-block-size cow-block-size=
bad cow-on-cache cow-on-cache=maybe
bad cow-on-read cow-on-read=sometimes
bad cow-on-read cow-on-read=relative/path
TMPDIR=$tmpdir/nonexistent bad TMPDIR

good ()
{
  "$NBDKIT" -U - --filter=cow pattern 1M "$@" \
    --run 'nbdsh -u "$uri" -c "h.pwrite(b\"x\" * 3, 5); assert h.pread(4, 4) == b\"\\0xxx\""' \
    2>"$tmpdir/err" ||
    fail "$*: a valid setting was refused: $(cat "$tmpdir/err")"
}
requires nbdsh --version
good cow-block-size=4096
good cow-block-size=4K cow-on-read=yes cow-on-cache=true
good cow-block-size=64M
good cow-on-read="$tmpdir/switch" cow-on-cache=off

echo "$0: ok"
