#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The null plugin: default size 0, size= with suffixes, reads return
# zeroes, writes/zero/trim/flush succeed and change nothing, the whole
# disk is a hole, and a bad size is refused.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin null
make_tmpdir
export tmpdir

size=$("$NBDKIT" -U - null --run 'nbdinfo --size "$uri"') ||
  fail "nbdkit null failed"
[ "$size" = 0 ] || fail "default size is $size, expected 0"
size=$("$NBDKIT" -U - null size=3M --run 'nbdinfo --size "$uri"')
[ "$size" = 3145728 ] || fail "size=3M gave $size"
size=$("$NBDKIT" -U - null 9223372036854775807 --run 'nbdinfo --size "$uri"')
[ "$size" = 9223372036854775807 ] || fail "largest size gave $size"

map=$("$NBDKIT" -U - null 1G --run 'nbdinfo --map "$uri"')
[ "$(awk '{print $1, $2, $3}' <<<"$map")" = "0 1073741824 3" ] ||
  fail "unexpected map: $map"

cat >"$tmpdir/t.py" <<'PY'
import os
M = 1 << 20
assert h.get_size() == 8 * M
assert not h.is_read_only()
assert h.can_flush() and h.can_fua() and h.can_trim() and h.can_zero()
assert h.can_fast_zero() and h.can_multi_conn() and h.can_cache()
h.pwrite(os.urandom(M), 12345)
h.pwrite(os.urandom(4096), 0, nbd.CMD_FLAG_FUA)
assert h.pread(2 * M, 0) == bytes(2 * M)
h.zero(M, 0)
h.zero(M, M, nbd.CMD_FLAG_FAST_ZERO)
h.trim(M, 2 * M)
h.flush()
h.cache(M, 0)
assert h.pread(8 * M, 0) == bytes(8 * M)
PY
"$NBDKIT" -U - null 8M --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "nbdsh checks failed"

status=0
"$NBDKIT" -U - null size=bogus --run 'exit 0' 2>"$tmpdir/err" || status=$?
[ $status -eq 1 ] || fail "bad size: exit status $status, expected 1"
grep -q bogus "$tmpdir/err" || fail "bad size: message does not name it"
status=0
"$NBDKIT" -U - null 1M unknown=1 --run 'exit 0' 2>"$tmpdir/err" || status=$?
[ $status -eq 1 ] || fail "unknown key: exit status $status, expected 1"
grep -q unknown "$tmpdir/err" || fail "unknown key: message does not name it"
