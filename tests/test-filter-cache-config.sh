#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad cache filter settings stop nbdkit at start-up with exit status 1
# and a message naming the parameter: an unknown mode, block sizes that
# are not powers of 2 from 4K to 64M, a maximum size that is not a size
# or is smaller than a block, thresholds outside 1..100 or with low not
# below high, a cache-on-read that is neither a boolean nor an absolute
# path, a TMPDIR where the cache cannot be made.  Valid settings work.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin memory
requires_filter cache
make_tmpdir
export TMPDIR=$tmpdir

bad ()
{
  local key=$1; shift
  "$NBDKIT" -U - --filter=cache memory 1M "$@" --run true 2>"$tmpdir/err"
  local r=$?
  [ $r = 1 ] || fail "$*: exit status $r, expected 1"
  grep -q -- "$key" "$tmpdir/err" ||
    fail "$*: the message does not name '$key': $(cat "$tmpdir/err")"
}
bad cache cache=writearound
bad cache cache=
bad cache-min-block-size cache-min-block-size=1000
bad cache-min-block-size cache-min-block-size=2K
bad cache-min-block-size cache-min-block-size=128M
bad cache-min-block-size cache-min-block-size=lots
bad cache-max-size cache-max-size=big
bad cache-max-size cache-max-size=4K
bad cache-high-threshold cache-high-threshold=0
bad cache-high-threshold cache-high-threshold=101
bad cache-high-threshold cache-high-threshold=-5
bad cache-low-threshold cache-low-threshold=x
bad cache-low-threshold cache-low-threshold=95
bad cache-low-threshold cache-high-threshold=50 cache-low-threshold=60
bad cache-on-read cache-on-read=perhaps
bad cache-on-read cache-on-read=relative/path
TMPDIR=$tmpdir/nonexistent bad TMPDIR

requires nbdsh --version
good ()
{
  "$NBDKIT" -U - --filter=cache memory 1M "$@" \
    --run 'nbdsh -u "$uri" -c "h.pwrite(b\"abc\", 7); h.flush(); assert h.pread(3, 7) == b\"abc\""' \
    2>"$tmpdir/err" ||
    fail "$*: a valid setting was refused: $(cat "$tmpdir/err")"
}
good cache=writeback
good cache=writethrough cache-min-block-size=4096
good cache=unsafe cache-min-block-size=1M cache-on-read=true
good cache-max-size=1M cache-high-threshold=100 cache-low-threshold=1
good cache-max-size=64K cache-on-read="$tmpdir/switch"

echo "$0: ok"
