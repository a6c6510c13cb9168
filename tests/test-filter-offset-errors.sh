#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad offset filter settings: an unparsable value stops the server at
# start-up (exit 1, message naming the parameter); a window past the
# end of the disk refuses the export, logging which parameter is wrong.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires_plugin memory
requires_filter offset
make_tmpdir

# Configuration errors: exit status 1 and the parameter in the message.
for args in "offset=1Q" "range=abc" "offset=-1" "offset=4E range=5E"; do
  key=${args%%=*}
  # shellcheck disable=SC2086
  "$NBDKIT" -U - --filter=offset memory 10M $args --run true \
      2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "$args: exit status $r, expected 1"
  grep -q "$key" "$tmpdir/err" ||
    fail "$args: the message does not name '$key': $(cat "$tmpdir/err")"
done

# Past the end of the disk: the client cannot open the export.
try_window ()
{
  local want=$1; shift
  "$NBDKIT" -U - --filter=offset memory 10M "$@" \
      --run 'nbdinfo --size "$uri"' >"$tmpdir/out" 2>"$tmpdir/err"
  r=$?
  [ $r != 0 ] || fail "$*: the export opened: $(cat "$tmpdir/out")"
  grep -q "$want.*beyond the end" "$tmpdir/err" ||
    fail "$*: no message about $want: $(cat "$tmpdir/err")"
}
try_window "offset=" offset=11M
try_window "range=" offset=1M range=10M
try_window "range=" range=11M

# The edges that do fit.
[ "$("$NBDKIT" -U - --filter=offset memory 10M offset=10M \
       --run 'nbdinfo --size "$uri"')" = 0 ] ||
  fail "offset=10M of a 10M disk should give an empty disk"
[ "$("$NBDKIT" -U - --filter=offset memory 10M offset=1M range=9M \
       --run 'nbdinfo --size "$uri"')" = $(( 9 << 20 )) ] ||
  fail "offset=1M range=9M of a 10M disk should fit exactly"
