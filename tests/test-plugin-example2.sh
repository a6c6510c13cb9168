#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The example2 plugin: serves file= read-only, byte for byte; writes are
# refused; a missing, unreadable or unsuitable file stops nbdkit with
# exit status 1 and a message naming it.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires_plugin example2
make_tmpdir
export tmpdir

# An odd size, to check the end of the file.
head -c 300001 /dev/urandom >"$tmpdir/disk"

"$NBDKIT" -U - example2 file="$tmpdir/disk" \
  --run 'nbdcopy "$uri" "$tmpdir/copy"' || fail "nbdcopy failed"
cmp "$tmpdir/disk" "$tmpdir/copy" || fail "copy differs from the file"

"$NBDKIT" -U - -D example2.extra=1 -v example2 file="$tmpdir/disk" \
  --run 'nbdsh -u "$uri" -c "
import errno
assert h.get_size() == 300001
assert h.is_read_only()
data = open(\"$tmpdir/disk\", \"rb\").read()
assert h.pread(100, 300001 - 100) == data[-100:]
assert h.pread(7, 12345) == data[12345:12352]
try:
    h.pwrite(b\"x\", 0)
except nbd.Error as e:
    assert e.errnum == errno.EPERM, e.errnum
else:
    raise AssertionError(\"write succeeded\")
"' 2>"$tmpdir/log" || fail "nbdsh checks failed"
grep -q "debug: read count=7 offset=12345" "$tmpdir/log" ||
  fail "-D example2.extra=1 did not log the read"

# Errors before serving.
expect_error ()
{
  local want=$1; shift
  if "$NBDKIT" example2 "$@" --run true 2>"$tmpdir/err"; then
    fail "nbdkit example2 $* was accepted"
  fi
  grep -q -- "$want" "$tmpdir/err" ||
    fail "nbdkit example2 $*: expected '$want', got: $(cat "$tmpdir/err")"
}
expect_error "file=<FILENAME>"
expect_error "$tmpdir/missing" file="$tmpdir/missing"
expect_error "not a regular file" file="$tmpdir"
expect_error "unknown parameter 'size'" file="$tmpdir/disk" size=1
