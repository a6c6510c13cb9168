#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Replies of every size over TLS, where the server gathers a reply's
# records and writes them together (server/tls-io.c): single reads from
# 1 byte to 32 MiB (larger than the gather buffer), simple and
# structured replies, 64 reads of 256 KiB in flight at once mixed with
# small ones and with writes, all compared with the data written; then
# the same with up to 8 request threads per connection.
# nbdcopy round trips the whole disk.

source "$srcdir/functions.sh"
source "$srcdir/tls-functions.sh"
requires nbdsh --version
requires nbdcopy --version
requires_plugin memory
requires_tls

make_tmpdir
make_tls_material "$tmpdir"
export psk=$tmpdir/keys.psk sock=$tmpdir/tls.sock

start_nbdkit -P "$tmpdir/tls.pid" -U "$sock" \
  --tls=require --tls-psk="$psk" memory 48M

uri="nbds+unix://alice@/?socket=$sock&tls-psk-file=$psk"
head -c $((48 << 20)) /dev/urandom >"$tmpdir/in"
nbdcopy "$tmpdir/in" "$uri" || fail "nbdcopy to the server failed"
export data=$tmpdir/in

check_reads ()
{
  local structured=$1
  structured=$structured nbdsh -c '
import os
data = open(os.environ["data"], "rb").read()
h.set_uri_allow_local_file(True)
h.set_request_structured_replies(os.environ["structured"] == "1")
h.connect_uri("nbds+unix://alice@/?socket=%s&tls-psk-file=%s"
              % (os.environ["sock"], os.environ["psk"]))
assert h.get_tls_negotiated()

# Single reads of many sizes, at odd offsets.
for size in [1, 511, 4096, 16383, 16384, 16385, 65536, 262144, 262145,
             270336, 1 << 20, (4 << 20) + 7, 32 << 20]:
    off = (size * 7 + 3) % (len(data) - size)
    assert h.pread(size, off) == data[off:off + size], size

# 64 large and 64 small reads in flight together, with writes between.
bufs = []
for i in range(64):
    off = i * 262144 + 17
    b = nbd.Buffer(262144)
    bufs.append((h.aio_pread(b, off), b, off, 262144))
    off2 = (i * 4099) % (len(data) - 4096)
    b2 = nbd.Buffer(4096)
    bufs.append((h.aio_pread(b2, off2), b2, off2, 4096))
    if i % 8 == 0:
        wb = nbd.Buffer.from_bytearray(bytearray(data[off:off + 65536]))
        bufs.append((h.aio_pwrite(wb, off), None, 0, 0))
while h.aio_in_flight() > 0:
    h.poll(-1)
for cookie, b, off, size in bufs:
    assert h.aio_command_completed(cookie)
    if b is not None:
        assert b.to_bytearray() == data[off:off + size], (off, size)
h.shutdown()
' || fail "reads over TLS differ (structured replies: $structured)"
}

check_reads 1
check_reads 0

# The whole disk back, in nbdcopy's parallel requests on 4 connections.
nbdcopy "$uri" "$tmpdir/out" || fail "nbdcopy from the server failed"
cmp "$tmpdir/in" "$tmpdir/out" || fail "the disk read back over TLS differs"
kill_pid "$(cat "$tmpdir/tls.pid")"

# Up to 8 request threads per connection: a reply is written by
# whichever thread served its request.
export sock=$tmpdir/tls2.sock
uri="nbds+unix://alice@/?socket=$sock&tls-psk-file=$psk"
start_nbdkit -P "$tmpdir/tls2.pid" -U "$sock" --threads=8 \
  --tls=require --tls-psk="$psk" memory 48M
nbdcopy "$tmpdir/in" "$uri" || fail "nbdcopy to the threaded server failed"
check_reads 1
nbdcopy "$uri" "$tmpdir/out2" || fail "nbdcopy from the threaded server failed"
cmp "$tmpdir/in" "$tmpdir/out2" || fail "the disk read back differs (threads)"
echo "large TLS replies: ok"
