#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad retry filter settings stop nbdkit at start-up with exit status 1
# and a message naming the parameter: retries that are not a count,
# delays that are not a number of seconds from 0 to one day, booleans
# that are not booleans.  Valid settings (fractional delays, 0 retries)
# start and serve.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin memory
requires_filter retry
make_tmpdir

bad ()
{
  local key=$1; shift
  "$NBDKIT" -U - --filter=retry memory 1M "$@" --run true 2>"$tmpdir/err"
  local r=$?
  [ $r = 1 ] || fail "$*: exit status $r, expected 1"
  grep -q -- "$key" "$tmpdir/err" ||
    fail "$*: the message does not name '$key': $(cat "$tmpdir/err")"
}
bad retries retries=-1
bad retries retries=many
bad retries retries=
bad retry-delay retry-delay=soon
bad retry-delay retry-delay=-2
bad retry-delay retry-delay=nan
bad retry-delay retry-delay=1e9
bad retry-delay retry-delay=2s
bad retry-exponential retry-exponential=twice
bad retry-readonly retry-readonly=2

requires nbdsh --version
good ()
{
  "$NBDKIT" -U - --filter=retry memory 1M "$@" \
    --run 'nbdsh -u "$uri" -c "h.pwrite(b\"ok\", 0); assert h.pread(2, 0) == b\"ok\""' \
    2>"$tmpdir/err" ||
    fail "$*: a valid setting was refused: $(cat "$tmpdir/err")"
}
good retries=0
good retries=10 retry-delay=0.25 retry-exponential=no
good retry-delay=0 retry-readonly=yes
good retry-delay=86400 retry-exponential=true retry-readonly=false

echo "$0: ok"
