#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The info plugin's clock modes: a 12-byte read-only disk holding
# big-endian seconds and microseconds; time matches the local clock,
# uptime and conntime are small, valid and grow between reads.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin info
make_tmpdir
export tmpdir

cat >"$tmpdir/t.py" <<'PY'
import os, struct, time
mode = os.environ["MODE"]
assert h.get_size() == 12, h.get_size()
assert h.is_read_only()

def clock():
    sec, usec = struct.unpack(">QI", h.pread(12, 0))
    assert usec < 1000000, usec
    return sec + usec / 1e6

first = clock()
time.sleep(0.2)
second = clock()
assert 0.15 < second - first < 30, (first, second)
if mode == "time":
    assert abs(first - time.time()) < 30, (first, time.time())
else:
    assert 0 <= first < 60, first
# Reading only the seconds gives the seconds of a whole read.
part = struct.unpack(">Q", h.pread(8, 0))[0]
assert 0 <= clock() - part < 2, part
PY

for MODE in time uptime conntime; do
  export MODE
  "$NBDKIT" -U - info "$MODE" --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
    fail "mode $MODE: checks failed"
  "$NBDKIT" -U - info mode="$MODE" --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
    fail "mode=$MODE: checks failed"
done

# conntime starts again for each connection; uptime does not.
"$NBDKIT" -U - info uptime --run 'sleep 2; nbdsh -u "$uri" -c "
import struct
sec, usec = struct.unpack(\">QI\", h.pread(12, 0))
assert sec >= 1, sec
"' || fail "uptime does not count from the start of nbdkit"
"$NBDKIT" -U - info conntime --run 'sleep 2; nbdsh -u "$uri" -c "
import struct
sec, usec = struct.unpack(\">QI\", h.pread(12, 0))
assert sec < 2, sec
"' || fail "conntime does not count from the start of the connection"

# A bad mode is refused.
status=0
"$NBDKIT" -U - info mode=foo --run 'exit 0' 2>"$tmpdir/err" || status=$?
[ "$status" -eq 1 ] || fail "mode=foo: exit status $status, expected 1"
grep -q "foo" "$tmpdir/err" || fail "mode=foo: the message does not name it"
