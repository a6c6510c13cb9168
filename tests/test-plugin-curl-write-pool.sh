#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The curl plugin's writes (PUT with Content-Range) against
# tests/curl_server.py: written data reads back, a server refusing PUT
# gives EIO, file:// URLs are read-only.  The pool: with connections=2,
# three clients reading in parallel reach the server over at most two
# connections, and all get the right data.
source "${srcdir:-$(dirname "$0")}/functions.sh"
requires_plugin curl
requires nbdsh --version
make_tmpdir
source "$srcdir/curl-functions.sh"
start_curl_server
cp "$tmpdir/disk.img" "$tmpdir/orig.img"

# The pool: 3 clients, 16 reads each in flight, 2 server connections.
"$NBDKIT" -U - curl "$url/disk" connections=2 --run 'nbdsh -c "
import json
disk = open(\"'"$tmpdir"'/disk.img\", \"rb\").read()
hs = [nbd.NBD() for i in range(3)]
for c in hs:
    c.connect_uri(\"$uri\")
bufs = []
for i in range(16):
    for c in hs:
        b = nbd.Buffer(65536)
        off = (i * 65536 + hs.index(c) * 4096) % (1048576 - 65536)
        bufs.append((c, b, off, c.aio_pread(b, off)))
for c, b, off, cookie in bufs:
    while not c.aio_command_completed(cookie):
        c.poll(1)
    assert b.to_bytearray() == disk[off:off + 65536], off
clients = {json.loads(l)[\"client\"] for l in open(\"'"$server_log"'\")}
assert 1 <= len(clients) <= 2, clients
"' || fail "connections=2 pool checks failed"

"$NBDKIT" -U - curl "$url/disk" --run 'nbdsh -u "$uri" -c "
assert not h.is_read_only()
assert not h.can_flush()
h.pwrite(b\"A\" * 4096, 8192)
h.pwrite(b\"Z\", 1048575)
h.pwrite(bytes(range(256)) * 3, 1000)
assert h.pread(4096, 8192) == b\"A\" * 4096
assert h.pread(1, 1048575) == b\"Z\"
assert h.pread(768, 1000) == bytes(range(256)) * 3
"' || fail "writes did not read back"
grep '"PUT"' "$server_log" | grep -q '"content-range": "bytes 8192-12287/1048576"' ||
  fail "PUT without the expected Content-Range: $(grep PUT "$server_log")"

"$NBDKIT" -U - curl "$url/readonly/disk" \
  --run 'nbdsh -u "$uri" -c "
import errno
try:
    h.pwrite(b\"x\" * 512, 0)
    raise AssertionError(\"a refused PUT succeeded\")
except nbd.Error as e:
    assert e.errnum == errno.EIO, e
"' 2>"$tmpdir/err" || fail "refused PUT: $(cat "$tmpdir/err")"
grep -q "HTTP status 403 to PUT" "$tmpdir/err" ||
  fail "refused PUT: $(cat "$tmpdir/err")"

# file:// URLs are served read-only even without -r.
"$NBDKIT" -U - curl file://"$tmpdir/orig.img" --run 'nbdsh -u "$uri" -c "
assert h.is_read_only()
assert h.pread(4, 8192) == open(\"'"$tmpdir"'/orig.img\", \"rb\").read()[8192:8196]
"' || fail "file:// URL is not read-only"
echo "$0: OK"
