#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The info plugin's exportname and base64exportname modes: the disk is
# exactly the export name the client asked for (decoded from base64 in
# the second mode), read-only; a name that is not base64 is refused.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin info
make_tmpdir
export tmpdir

# The plain export name, as text including spaces and UTF-8, and empty.
"$NBDKIT" -U - info --run 'nbdsh -c "
import errno
def disk(name):
    h = nbd.NBD()
    h.set_export_name(name)
    h.connect_unix(\"$unixsocket\")
    assert h.is_read_only()
    try:
        h.pwrite(b\"x\", 0)
    except nbd.Error as e:
        assert e.errnum == errno.EPERM, e.errnum
    else:
        raise AssertionError(\"write succeeded\")
    data = h.pread(h.get_size(), 0) if h.get_size() else b\"\"
    h.shutdown()
    return data
assert disk(\"hello\") == b\"hello\"
assert disk(\"a b/c?d\") == b\"a b/c?d\"
assert disk(\"caf\u00e9\") == \"caf\u00e9\".encode()
assert disk(\"x\" * 4096) == b\"x\" * 4096
h = nbd.NBD()
h.connect_unix(\"$unixsocket\")
assert h.get_size() == 0
"' || fail "exportname checks failed"

# mode= may be given or left out.
"$NBDKIT" -U - info mode=exportname --run 'nbdsh -c "
h.set_export_name(\"abc\")
h.connect_unix(\"$unixsocket\")
assert h.pread(3, 0) == b\"abc\"
"' || fail "mode=exportname failed"

# base64: any bytes.
"$NBDKIT" -U - info base64exportname --run 'nbdsh -c "
import base64
def disk(raw):
    h = nbd.NBD()
    h.set_export_name(base64.b64encode(raw).decode())
    h.connect_unix(\"$unixsocket\")
    data = h.pread(h.get_size(), 0)
    h.shutdown()
    return data
for raw in (b\"hello\", bytes(range(256)), b\"\\0\\1\\2\", b\"\\xff\" * 3000):
    assert disk(raw) == raw, raw
h = nbd.NBD()
h.set_export_name(\"!!not base64!!\")
try:
    h.connect_unix(\"$unixsocket\")
except nbd.Error:
    pass
else:
    raise AssertionError(\"an export name that is not base64 was accepted\")
"' || fail "base64exportname checks failed"

"$NBDKIT" info --dump-plugin | grep -qx 'info_base64=yes' ||
  fail "--dump-plugin does not print info_base64=yes"
