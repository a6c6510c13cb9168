#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# An endless <(SCRIPT) cut by a slice stops once the slice is read, even
# when nbdkit was started with SIGPIPE ignored (as by some service
# managers), because the script gets the default SIGPIPE action.
# (Upstream nbdkit 1.32 hangs here.)
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires timeout --version
requires_plugin data
make_tmpdir
export tmpdir

status=0
( trap '' PIPE
  timeout 60 "$NBDKIT" -U - data '<(while :; do printf ab; done)[:10]' \
    --run 'nbdcopy "$uri" "$tmpdir/actual"' 2>"$tmpdir/err" ) || status=$?
[ "$status" -ne 124 ] || fail "nbdkit hung on an endless script"
[ "$status" -eq 0 ] || { tail -5 "$tmpdir/err" >&2; fail "exit status $status"; }
printf 'ababababab' >"$tmpdir/expected"
cmp "$tmpdir/actual" "$tmpdir/expected" || fail "wrong contents"
