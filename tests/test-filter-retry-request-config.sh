#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad retry-request filter settings stop nbdkit at start-up with exit
# status 1 and a message naming the parameter: retries that are not a
# count, delays that are not a number of seconds from 0 to one day, an
# open setting that is not a boolean.  Valid settings start and serve.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin memory
requires_filter retry-request
make_tmpdir

bad ()
{
  local key=$1; shift
  "$NBDKIT" -U - --filter=retry-request memory 1M "$@" --run true \
    2>"$tmpdir/err"
  local r=$?
  [ $r = 1 ] || fail "$*: exit status $r, expected 1"
  grep -q -- "$key" "$tmpdir/err" ||
    fail "$*: the message does not name '$key': $(cat "$tmpdir/err")"
}
bad retry-request-retries retry-request-retries=-3
bad retry-request-retries retry-request-retries=lots
bad retry-request-delay retry-request-delay=later
bad retry-request-delay retry-request-delay=-0.5
bad retry-request-delay retry-request-delay=inf
bad retry-request-open retry-request-open=sometimes

requires nbdsh --version
good ()
{
  "$NBDKIT" -U - --filter=retry-request memory 1M "$@" \
    --run 'nbdsh -u "$uri" -c "h.pwrite(b\"ok\", 0); assert h.pread(2, 0) == b\"ok\""' \
    2>"$tmpdir/err" ||
    fail "$*: a valid setting was refused: $(cat "$tmpdir/err")"
}
good retry-request-retries=0
good retry-request-retries=7 retry-request-delay=0.5
good retry-request-open=false retry-request-delay=0

echo "$0: ok"
