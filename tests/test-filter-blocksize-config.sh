#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# blocksize filter parameters: invalid values stop the server with exit
# status 1 and a message naming the parameter; valid ones change what
# is advertised (preferred block size, size rounded down to minblock)
# and, with no parameters at all, the filter passes data through
# unchanged.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires nbdcopy --version
requires_plugin memory
requires_plugin file
requires_filter blocksize
make_tmpdir
export tmpdir

for args in minblock=3 minblock=128k minblock=0 minblock=x \
            maxdata=0 maxdata=65M maxdata=y maxlen=0 maxlen=5G maxlen=z \
            "minblock=512 maxdata=1000" "minblock=4k maxlen=6000"; do
  key=${args##* }
  key=${key%%=*}
  # shellcheck disable=SC2086
  "$NBDKIT" -U - --filter=blocksize memory 1M $args --run true \
      2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "'$args': exit status $r, expected 1"
  grep -q "$key" "$tmpdir/err" ||
    fail "'$args': the message does not name $key: $(cat "$tmpdir/err")"
done

info ()
{
  "$NBDKIT" -U - --filter=blocksize "$@" --run 'nbdinfo "$uri"' ||
    fail "$*: nbdinfo failed"
}
info memory 1M minblock=64k >"$tmpdir/info"
grep -q "block_size_minimum: 1$" "$tmpdir/info" &&
  grep -q "block_size_preferred: 65536$" "$tmpdir/info" ||
  fail "minblock=64k: wrong block sizes advertised: $(cat "$tmpdir/info")"
# The largest valid values are accepted.
info memory 1M minblock=64k maxdata=64M maxlen=4194240k >/dev/null

# Sizes: rounded down to minblock.
head -c 1000 /dev/urandom >"$tmpdir/small"
[ "$("$NBDKIT" -U - --filter=blocksize file "$tmpdir/small" minblock=512 \
       --run 'nbdinfo --size "$uri"')" = 512 ] ||
  fail "a 1000-byte file with minblock=512 should be served as 512 bytes"
[ "$("$NBDKIT" -U - --filter=blocksize file "$tmpdir/small" \
       --run 'nbdinfo --size "$uri"')" = 1000 ] ||
  fail "without minblock the size should not change"

# No parameters: a plain pass-through.
head -c 3M /dev/urandom >"$tmpdir/data"
"$NBDKIT" -U - --filter=blocksize file "$tmpdir/data" \
    --run 'nbdcopy "$uri" "$tmpdir/out"' || fail "nbdcopy failed"
cmp "$tmpdir/data" "$tmpdir/out" || fail "pass-through changed the data"
