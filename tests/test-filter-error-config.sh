#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad error filter settings stop the server at start-up with exit
# status 1 and a message naming the parameter: an unknown error name, a
# rate that is not a probability, a negative rate, a rate above 100%.
# Valid spellings (percentages, fractions, lower case names) are
# accepted.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin memory
requires_filter error
make_tmpdir

bad ()
{
  local key=${1%%=*}
  "$NBDKIT" -U - --filter=error memory 1M "$@" --run true 2>"$tmpdir/err"
  local r=$?
  [ $r = 1 ] || fail "$*: exit status $r, expected 1"
  grep -q "$key" "$tmpdir/err" ||
    fail "$*: the message does not name '$key': $(cat "$tmpdir/err")"
}
bad error=EFOO
bad error=5
bad error-pwrite=ENOENT
bad error-rate=abc
bad error-rate=-0.1
bad error-rate=150%
bad error-rate=1.5
bad error-zero-rate=10%%
bad error-cache-rate=

grep -q "unknown error name 'EFOO'" <(
  "$NBDKIT" -U - --filter=error memory 1M error=EFOO --run true 2>&1) ||
  fail "the unknown error name is not quoted in the message"

good ()
{
  "$NBDKIT" -U - --filter=error memory 1M "$@" --run true ||
    fail "$*: a valid setting was refused"
}
good error=EIO error-rate=0
good error=enospc error-rate=100%
good error=ESHUTDOWN error-rate=1/8
good error-pread=EPERM error-pread-rate=0.25 error-pread-file=/nonexistent
good error-flush=EINVAL error-flush-rate=1e-3
