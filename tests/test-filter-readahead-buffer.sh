#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The readahead filter in buffer mode: over the nbd plugin talking to
# nbd-server, which cannot prefetch, sequential 4k reads are widened
# into reads of up to 4 MiB (the log filter below counts them) and the
# data is what the file holds.  Writes, zeroes and trims, on the same
# connection or on another one, are never hidden by the buffer.  At the
# end the file underneath equals a model of all the writes.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"

requires nbd-server -V
requires nbdsh --version
requires nbdcopy --version
requires sha256sum --version
requires_plugin nbd
requires_filter readahead
requires_filter log
make_tmpdir
export tmpdir

disk=$tmpdir/disk.img
head -c 8M /dev/urandom >"$disk"
cp "$disk" "$tmpdir/model"
cat >"$tmpdir/nbd-server.conf" <<CONF
[generic]
  allowlist = true
  unixsock = $tmpdir/upstream.sock
[disk]
  exportname = $disk
  flush = true
CONF
nbd-server -C "$tmpdir/nbd-server.conf" -p "$tmpdir/nbd-server.pid" \
  >"$tmpdir/nbd-server.log" 2>&1 ||
  fail "nbd-server did not start: $(cat "$tmpdir/nbd-server.log")"
wait_for_path "$tmpdir/nbd-server.pid"
cleanup_fn kill_pid "$(cat "$tmpdir/nbd-server.pid")"
wait_for_path "$tmpdir/upstream.sock"

sock=$tmpdir/sock
export uri="nbd+unix:///?socket=$sock"
start_nbdkit -P "$tmpdir/pid" -U "$sock" --filter=readahead --filter=log \
  nbd socket="$tmpdir/upstream.sock" export=disk logfile="$tmpdir/log"

plugin_reads ()
{
  grep -c ' Read id=.*count=' "$tmpdir/log"
}

# 512 sequential reads of 4k.
nbdsh -u "$uri" -c "
model = open(\"$tmpdir/model\", \"rb\").read()
for off in range(0, 2 << 20, 4096):
    assert h.pread(4096, off) == model[off:off+4096], off
" || fail "sequential reads returned wrong data"
n=$(plugin_reads)
[ "$n" -le 16 ] || fail "512 sequential reads became $n reads of the plugin"

# Writes from this connection and from another one are seen at once.
nbdsh -u "$uri" -c "
import os
model = bytearray(open(\"$tmpdir/model\", \"rb\").read())
def expect(off, n):
    got = h.pread(n, off)
    assert got == model[off:off+n], (\"stale data at\", off, n)

# Fill the buffer: sequential reads from 4 MiB.
base = 4 << 20
for off in range(base, base + 65536, 4096):
    expect(off, 4096)

# This connection writes inside the buffered range.
h.pwrite(b\"same\" * 100, base + 70000)
model[base + 70000:base + 70400] = b\"same\" * 100
expect(base + 69632, 4096)

# Another connection writes, zeroes and trims inside it.
h2 = nbd.NBD()
h2.connect_uri(os.environ[\"uri\"])
for off in range(base + 73728, base + 200000, 4096):
    expect(off, 4096)
h2.pwrite(b\"other\" * 200, base + 150000)
model[base + 150000:base + 151000] = b\"other\" * 200
h2.flush()
expect(base + 147456, 8192)
if h2.can_zero():
    h2.zero(5000, base + 160000)
    model[base + 160000:base + 165000] = bytes(5000)
    h2.flush()
    expect(base + 159744, 8192)
h2.shutdown()
open(\"$tmpdir/model\", \"wb\").write(model)
" || fail "a write was hidden by the read-ahead buffer"

# Everything, read through the filter, then the file underneath.
nbdcopy "$uri" "$tmpdir/copy" || fail "nbdcopy failed"
cmp "$tmpdir/model" "$tmpdir/copy" || fail "nbdcopy read wrong data"
[ "$(sha256sum <"$disk")" = "$(sha256sum <"$tmpdir/model")" ] ||
  fail "the file underneath differs from the model"
