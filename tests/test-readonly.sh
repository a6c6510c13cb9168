#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# -r / --readonly: the export is advertised read-only and every write,
# trim and zero request fails with EPERM without changing the data; the
# connection carries on.

source "$srcdir/functions.sh"
# tests/raw_nbd.py is imported from the source tree: keep it clean.
export PYTHONDONTWRITEBYTECODE=1
requires nbdsh --version
requires nbdinfo --version
requires_plugin memory

make_tmpdir

for opt in -r --readonly; do
  "$NBDKIT" "$opt" -U - memory 1M --run 'nbdinfo --json "$uri"' \
    >"$tmpdir/info.json" || fail "nbdinfo against $opt failed"
  /usr/bin/python3 - "$tmpdir/info.json" <<'EOF' || fail "nbdinfo: $opt export not read-only"
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
assert e["is_read_only"] is True, e
EOF
done

# A writable export says so (the flag is not always set).
"$NBDKIT" -U - memory 1M --run 'nbdsh -u "$uri" -c "assert not h.is_read_only()"' ||
  fail "memory without -r is read-only"

# nbdsh with libnbd's client-side checks off, so the requests reach the
# server.
"$NBDKIT" -r -U - memory 1M --run '
  nbdsh -u "$uri" -c "
import errno
assert h.is_read_only()
h.set_strict_mode(0)
def refused(fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        assert e.errnum == errno.EPERM, (fn, e)
        return
    raise AssertionError(\"%s succeeded on a read-only export\" % fn)
refused(h.pwrite, b\"x\" * 512, 0)
refused(h.pwrite, b\"x\" * 512, 0, nbd.CMD_FLAG_FUA)
refused(h.trim, 512, 0)
refused(h.zero, 512, 0)
refused(h.zero, 512, 0, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(4096, 0) == bytes(4096)
"
' || fail "nbdsh: writes to a read-only export were not refused with EPERM"

# Raw: exact error values, payload of the refused write consumed.
"$NBDKIT" -r -U - memory 1M --run '
  RAW_NBD_SOCKET="$unixsocket" /usr/bin/python3 -c "
import sys
sys.path.insert(0, \"$srcdir\")
import raw_nbd as r
for structured in (True, False):
    c = r.Connection.from_env()
    c.negotiate(structured=structured)
    assert c.eflags & r.FLAG_READ_ONLY, hex(c.eflags)
    for cmd, flags, data in ((r.CMD_WRITE, 0, b\"\\xff\" * 65536),
                             (r.CMD_WRITE, r.CMD_FLAG_FUA, b\"\\xff\" * 512),
                             (r.CMD_TRIM, 0, b\"\"),
                             (r.CMD_WRITE_ZEROES, 0, b\"\"),
                             (r.CMD_WRITE_ZEROES, r.CMD_FLAG_NO_HOLE, b\"\")):
        rep = c.request(cmd, 0, len(data) or 4096, flags, data)
        assert rep.error == r.EPERM, (cmd, flags, rep)
        # The connection is still in step: the data is untouched.
        assert c.read(0, 65536) == bytes(65536)
    c.disconnect()
"
' || fail "raw: read-only errors are wrong"

echo "$0: ok"
