#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The random plugin: the data is repeatable for one seed (across runs
# and reads), differs between seeds and looks random; a write of the
# same data succeeds, anything else (write, trim, zero) fails with EIO,
# so nbdcopy of the disk onto itself works; bad parameters stop nbdkit.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires_plugin random
make_tmpdir
export tmpdir

copy ()
{
  "$NBDKIT" -U - random "$@" --run 'nbdcopy "$uri" "$tmpdir/out"' ||
    fail "nbdcopy of random $* failed"
}
copy size=1M seed=1; mv "$tmpdir/out" "$tmpdir/a"
copy 1M seed=2;  mv "$tmpdir/out" "$tmpdir/c"
copy 1M;         mv "$tmpdir/out" "$tmpdir/d"
[ "$(stat -c %s "$tmpdir/a")" = 1048576 ] || fail "wrong size"
cmp -s "$tmpdir/a" "$tmpdir/c" && fail "seeds 1 and 2 gave the same data"
cmp -s "$tmpdir/a" "$tmpdir/d" && fail "no seed gave seed 1's data"
# Random data does not compress.
if command -v gzip >/dev/null; then
  n=$(gzip -c "$tmpdir/a" | wc -c)
  [ "$n" -gt 1040000 ] || fail "the data compresses to $n bytes"
fi

"$NBDKIT" -U - random 1M seed=1 --run 'nbdsh -u "$uri" -c "
import errno
data = open(\"$tmpdir/a\", \"rb\").read()
# The same seed in another run gives the same data.
assert h.pread(1048576, 0) == data
# Unaligned reads agree with the whole.
for off, n in ((0, 1), (3, 13), (4095, 4099), (1048576 - 7, 7)):
    assert h.pread(n, off) == data[off:off + n], (off, n)
assert h.can_multi_conn()
h.pwrite(data[5:70000], 5)
def refused(op):
    try:
        op()
    except nbd.Error as e:
        assert e.errnum == errno.EIO, e.errnum
    else:
        raise AssertionError(\"accepted\")
refused(lambda: h.pwrite(bytes([data[100] ^ 1]), 100))
refused(lambda: h.pwrite(data[:65536] + b\"x\", 0))
refused(lambda: h.zero(4096, 0))
refused(lambda: h.trim(4096, 0))
# Refused writes changed nothing.
assert h.pread(4096, 0) == data[:4096]
"' || fail "nbdsh checks failed"

"$NBDKIT" -U - random 1M --run 'nbdcopy "$uri" "$uri"' ||
  fail "nbdcopy of the disk onto itself failed"

expect_error ()
{
  local want=$1; shift
  if "$NBDKIT" random "$@" --run true 2>"$tmpdir/err"; then
    fail "nbdkit random $* was accepted"
  fi
  grep -q -- "$want" "$tmpdir/err" ||
    fail "nbdkit random $*: expected '$want', got: $(cat "$tmpdir/err")"
}
expect_error "size=<SIZE>" seed=1
expect_error "seed" 1M seed=foo
expect_error "seed" 1M seed=-1
expect_error "seed" 1M seed=4294967296
expect_error "unknown parameter 'foo'" 1M foo=1
