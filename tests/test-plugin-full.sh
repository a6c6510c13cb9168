#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The full plugin: reads return zeroes; writes, write-zeroes (fast or
# not) and trims fail with ENOSPC; block status shows one hole; size= is
# required.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin full
make_tmpdir
export tmpdir

cat >"$tmpdir/t.py" <<'PY'
import errno
M = 1 << 20
assert h.get_size() == 4 * M
assert not h.is_read_only()
assert h.pread(4 * M, 0) == bytes(4 * M)

def expect_enospc(what, fn):
    try:
        fn()
    except nbd.Error as e:
        assert e.errnum == errno.ENOSPC, "%s: errno %s" % (what, e.errnum)
    else:
        raise AssertionError("%s succeeded on a full disk" % what)

expect_enospc("pwrite", lambda: h.pwrite(b"x" * 512, 0))
expect_enospc("pwrite at the end", lambda: h.pwrite(b"x", 4 * M - 1))
expect_enospc("zero", lambda: h.zero(M, 0))
expect_enospc("trim", lambda: h.trim(M, M))
if h.can_fast_zero():
    try:
        h.zero(M, 0, nbd.CMD_FLAG_FAST_ZERO)
    except nbd.Error as e:
        assert e.errnum in (errno.ENOSPC, errno.ENOTSUP), e.errnum
    else:
        raise AssertionError("fast zero succeeded on a full disk")

# The connection still works after the errors.
assert h.pread(512, 0) == bytes(512)
PY
"$NBDKIT" -U - full 4M --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "nbdsh checks failed"

map=$("$NBDKIT" -U - full 1G --run 'nbdinfo --map "$uri"')
[ "$(awk '{print $1, $2, $3}' <<<"$map")" = "0 1073741824 3" ] ||
  fail "unexpected map: $map"

status=0
"$NBDKIT" -U - full --run 'exit 0' 2>"$tmpdir/err" || status=$?
[ $status -eq 1 ] || fail "missing size: exit status $status, expected 1"
grep -q "size" "$tmpdir/err" || fail "missing size: message does not say so"
