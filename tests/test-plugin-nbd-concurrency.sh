#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Requests are forwarded concurrently: a client with 16 reads in flight
# through the proxy has them in flight upstream too, on one upstream
# connection (read from the upstream's log filter, which records when
# each request starts and returns; the upstream delays reads by 300 ms
# so that they overlap).  With shared=true, three clients use a single
# upstream connection; without it, each client gets its own.  Many
# concurrent writers and readers keep their data intact.

source "$srcdir/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
requires nbdsh --version
requires nbdcopy --version
requires /usr/bin/python3 --version
requires_plugin nbd
requires_plugin memory
requires_filter log
requires_filter delay

make_tmpdir
export tmpdir
sock=$tmpdir/upstream.sock
log=$tmpdir/upstream.log
start_nbdkit -P "$tmpdir/upstream.pid" -U "$sock" --filter=log --filter=delay \
  memory 16M logfile="$log" rdelay=300ms

# max_overlap KIND: most KIND requests in flight at once in the log.
max_overlap ()
{
  /usr/bin/python3 - "$log" "$1" <<'PY'
import re, sys
depth = best = 0
for line in open(sys.argv[1]):
    if re.search(r"connection=\d+ %s id=\d+ " % sys.argv[2], line):
        depth += 1
        best = max(best, depth)
    elif re.search(r"connection=\d+ \.\.\.%s id=\d+ " % sys.argv[2], line):
        depth -= 1
print(best)
PY
}

connections () { grep -c ' Connect export=' "$log"; }

# --- 16 reads in flight from one client. --------------------------------
start_nbdkit -P "$tmpdir/proxy.pid" -U "$tmpdir/proxy.sock" \
  nbd socket="$sock"
nbdsh -u "nbd+unix:///?socket=$tmpdir/proxy.sock" -c '
bufs = [nbd.Buffer(4096) for i in range(16)]
cookies = [h.aio_pread(b, i * 65536) for i, b in enumerate(bufs)]
while h.aio_in_flight() > 0:
    h.poll(-1)
for c in cookies:
    assert h.aio_command_completed(c)
' || fail "16 parallel reads through the proxy failed"
overlap=$(max_overlap Read)
echo "reads in flight upstream at once: $overlap"
[ "$overlap" -ge 8 ] ||
  fail "only $overlap reads were in flight upstream at once (expected >= 8)"
[ "$(connections)" = 1 ] ||
  fail "expected 1 upstream connection, got $(connections)"

# --- Per-client connections: three clients, three connections. ----------
: >"$log"
nbdsh -c '
import os
uri = "nbd+unix:///?socket=%s/proxy.sock" % os.environ["tmpdir"]
hs = [nbd.NBD() for i in range(3)]
for x in hs:
    x.connect_uri(uri)
for i, x in enumerate(hs):
    x.pwrite(bytes([i + 1]) * 4096, i * 4096)
for i, x in enumerate(hs):
    assert hs[(i + 1) % 3].pread(4096, i * 4096) == bytes([i + 1]) * 4096
' || fail "three clients through the proxy failed"
[ "$(connections)" = 3 ] ||
  fail "expected 3 upstream connections, got $(connections)"

# --- shared=true: three clients, one connection, reads overlapping. -----
start_nbdkit -P "$tmpdir/shared.pid" -U "$tmpdir/shared.sock" \
  nbd socket="$sock" shared=true
: >"$log"
nbdsh -c '
import os
uri = "nbd+unix:///?socket=%s/shared.sock" % os.environ["tmpdir"]
hs = [nbd.NBD() for i in range(3)]
for x in hs:
    x.connect_uri(uri)
bufs = []
for i, x in enumerate(hs):
    for j in range(4):
        b = nbd.Buffer(4096)
        bufs.append(b)
        x.aio_pread(b, (i * 4 + j) * 65536)
for x in hs:
    while x.aio_in_flight() > 0:
        x.poll(-1)
' || fail "three clients through a shared proxy failed"
[ "$(connections)" = 0 ] ||
  fail "shared=true opened $(connections) new upstream connection(s)"
overlap=$(max_overlap Read)
echo "reads in flight upstream at once (shared): $overlap"
[ "$overlap" -ge 6 ] ||
  fail "only $overlap reads from three clients overlapped upstream"
grep -q 'connection=2 Read' "$log" &&
  fail "reads from several clients used several upstream connections"

# --- Integrity under concurrency. ---------------------------------------
head -c 16777216 /dev/urandom >"$tmpdir/in"
nbdcopy --connections=4 --requests=32 "$tmpdir/in" \
  "nbd+unix:///?socket=$tmpdir/shared.sock" ||
  fail "nbdcopy into the shared proxy failed"
nbdcopy --connections=4 --requests=32 \
  "nbd+unix:///?socket=$tmpdir/proxy.sock" "$tmpdir/out" ||
  fail "nbdcopy out of the proxy failed"
cmp "$tmpdir/in" "$tmpdir/out" || fail "data differs after concurrent copies"

echo "$0: ok"
