#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The zero plugin: an export of size zero, read-only, that clients can
# connect to; any data request is refused; parameters are rejected.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin zero
make_tmpdir

"$NBDKIT" -U - zero --run 'nbdinfo --json "$uri"' >"$tmpdir/info" ||
  fail "nbdinfo failed"
grep -q '"export-size": 0,' "$tmpdir/info" || fail "size is not 0: $(cat "$tmpdir/info")"
grep -q '"is_read_only": true' "$tmpdir/info" || fail "not read-only"
grep -q '"can_multi_conn": true' "$tmpdir/info" || fail "no multi-conn"

"$NBDKIT" -U - zero --run 'nbdsh -u "$uri" -c "
assert h.get_size() == 0
for op in (lambda: h.pread(1, 0), lambda: h.pwrite(b\"x\", 0)):
    try:
        op()
    except nbd.Error:
        pass
    else:
        raise AssertionError(\"request on the empty disk succeeded\")
"' || fail "nbdsh checks failed"

# An empty disk copies to an empty file.
"$NBDKIT" -U - zero --run 'nbdcopy "$uri" "$tmpdir/out"' || fail "nbdcopy failed"
[ ! -s "$tmpdir/out" ] || fail "copy of the zero disk is not empty"

if "$NBDKIT" zero size=1 --run true 2>"$tmpdir/err"; then
  fail "a parameter was accepted"
fi
grep -q "does not need command line configuration" "$tmpdir/err" ||
  fail "unexpected error: $(cat "$tmpdir/err")"
