#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Transmission flags as seen by nbdsh for memory, null and -r exports,
# and the raw flag word obeying nbd-protocol.md "Transmission flags"
# (HAS_FLAGS always, FAST_ZERO only with WRITE_ZEROES, DF only with
# structured replies, no undefined bits).

source "$srcdir/functions.sh"
# tests/raw_nbd.py is imported from the source tree: keep it clean.
export PYTHONDONTWRITEBYTECODE=1
requires nbdsh --version
requires_plugin memory

# memory: a writable RAM disk supports everything.
"$NBDKIT" -U - memory 1M --run '
  nbdsh -u "$uri" -c "
assert not h.is_read_only()
assert not h.is_rotational()
assert h.can_flush()
assert h.can_fua()
assert h.can_trim()
assert h.can_zero()
assert h.can_fast_zero()
assert h.can_multi_conn()
assert h.can_cache()
assert h.can_df()
"
' || fail "memory: wrong flags"

# -r: read-only, and nothing that writes is advertised.
"$NBDKIT" -r -U - memory 1M --run '
  nbdsh -u "$uri" -c "
assert h.is_read_only()
assert not h.can_trim()
assert not h.can_zero()
assert not h.can_fast_zero()
assert not h.can_fua()
assert h.can_multi_conn()
assert h.can_df()
"
' || fail "memory -r: wrong flags"

# null: writable, discards everything.
if "$NBDKIT" null --dump-plugin >/dev/null 2>&1; then
  "$NBDKIT" -U - null 1M --run '
    nbdsh -u "$uri" -c "
assert not h.is_read_only()
assert h.get_size() == 1048576
assert h.can_flush() and h.can_fua() and h.can_trim() and h.can_zero()
assert h.can_multi_conn()
assert h.can_df()
"
  ' || fail "null: wrong flags"
  "$NBDKIT" -r -U - null 1M --run '
    nbdsh -u "$uri" -c "
assert h.is_read_only()
assert not h.can_trim() and not h.can_zero() and not h.can_fua()
"
  ' || fail "null -r: wrong flags"
else
  echo "$0: null plugin not available, skipping that part"
fi

# The raw flag word, for several configurations.
check_raw='
import sys, os
sys.path.insert(0, os.environ["srcdir"])
import raw_nbd as r
style, expect_ro, structured = sys.argv[1], sys.argv[2] == "ro", sys.argv[3] == "sr"
c = r.Connection.from_env()
if style == "oldstyle":
    c.handshake_oldstyle()
else:
    c.handshake_newstyle()
    if structured:
        c.opt_structured_reply()
    c.opt_go()
f = c.eflags
assert f & r.FLAG_HAS_FLAGS, hex(f)
assert bool(f & r.FLAG_READ_ONLY) == expect_ro, hex(f)
assert not f & r.FLAG_SEND_RESIZE, hex(f)
assert f & 0xf000 == 0, "undefined flag bits set: %#x" % f
if f & r.FLAG_SEND_FAST_ZERO:
    assert f & r.FLAG_SEND_WRITE_ZEROES, "FAST_ZERO without WRITE_ZEROES"
if not (structured and style == "newstyle"):
    assert not f & r.FLAG_SEND_DF, "DF without structured replies"
else:
    assert f & r.FLAG_SEND_DF, "DF not advertised"
if expect_ro:
    assert not f & (r.FLAG_SEND_TRIM | r.FLAG_SEND_WRITE_ZEROES |
                    r.FLAG_SEND_FAST_ZERO | r.FLAG_SEND_FUA), hex(f)
c.close()
'
export check_raw srcdir
for args in "newstyle rw sr:" "newstyle rw nosr:" "newstyle ro sr:-r" \
            "newstyle rw nosr:--no-sr" "oldstyle rw nosr:-o" \
            "oldstyle ro nosr:-o -r"; do
  checkargs=${args%%:*}
  nbdkitargs=${args#*:}
  # shellcheck disable=SC2086
  "$NBDKIT" $nbdkitargs -U - memory 1M --run '
    RAW_NBD_SOCKET="$unixsocket" /usr/bin/python3 -c "$check_raw" '"$checkargs"'
  ' || fail "raw flags wrong for nbdkit $nbdkitargs ($checkargs)"
done

echo "$0: ok"
