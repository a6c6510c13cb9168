#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Several clients at once on one server, many requests in flight on one
# connection, and multi-conn nbdcopy: every client succeeds and the data
# is right.  Repeated with -t 1 (one request at a time per connection).

source "$srcdir/functions.sh"
# tests/raw_nbd.py is imported from the source tree: keep it clean.
export PYTHONDONTWRITEBYTECODE=1
requires nbdsh --version
requires nbdcopy --version
requires sha256sum --version
requires_plugin memory

make_tmpdir

# The client side, run by --run with the URI as $1: four nbdsh clients
# each write their own 1M region with their own pattern (with many
# requests in flight through libnbd's aio calls), then every client
# checks all four regions; then a multi-conn nbdcopy round trip.
cat >"$tmpdir/clients.sh" <<'EOF'
set -u
uri=$1 tmpdir=$2
pids=()
for i in 0 1 2 3; do
  nbdsh -u "$uri" -c "
i = $i
M = 1024 * 1024
block = bytes([0x30 + i]) * 4096
# Queue 256 writes at once, then wait for all of them.
for k in range(256):
    h.aio_pwrite(block, i * M + k * 4096)
while h.aio_in_flight() > 0:
    h.poll(-1)
h.flush()
assert h.pread(M, i * M) == bytes([0x30 + i]) * M
" >"$tmpdir/client$i.log" 2>&1 &
  pids+=($!)
done
status=0
for i in 0 1 2 3; do
  if ! wait "${pids[$i]}"; then
    echo "client $i failed:"; cat "$tmpdir/client$i.log"; status=1
  fi
done
[ $status -eq 0 ] || exit 1

pids=()
for i in 0 1 2 3; do
  nbdsh -u "$uri" -c "
M = 1024 * 1024
bufs = [nbd.Buffer(65536) for _ in range(64)]
# 64 reads in flight across all four regions.
cookies = [h.aio_pread(bufs[k], k * 65536) for k in range(64)]
while h.aio_in_flight() > 0:
    h.poll(-1)
for k in range(64):
    want = bytes([0x30 + (k * 65536) // M]) * 65536
    assert bufs[k].to_bytearray() == want, k
" >"$tmpdir/reader$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2 3; do
  if ! wait "${pids[$i]}"; then
    echo "reader $i failed:"; cat "$tmpdir/reader$i.log"; status=1
  fi
done
[ $status -eq 0 ] || exit 1

# Multi-conn copy in and out, two copies at the same time.
nbdcopy --connections=4 "$tmpdir/src.img" "$uri" || exit 1
nbdcopy --connections=4 "$uri" "$tmpdir/out1.img" &
p1=$!
nbdcopy --connections=4 "$uri" "$tmpdir/out2.img" &
p2=$!
wait $p1 || { echo "nbdcopy 1 failed"; exit 1; }
wait $p2 || { echo "nbdcopy 2 failed"; exit 1; }
exit 0
EOF

head -c $((16 * 1024 * 1024)) /dev/urandom >"$tmpdir/src.img"
want=$(sha256sum <"$tmpdir/src.img" | cut -d' ' -f1)

for threads in default 1; do
  opts=()
  [ "$threads" != default ] && opts=(-t "$threads")
  rm -f "$tmpdir"/out*.img
  "$NBDKIT" "${opts[@]}" -U - memory 16M \
    --run 'bash "'"$tmpdir/clients.sh"'" "$uri" "'"$tmpdir"'"' ||
    fail "concurrent clients failed (threads: $threads)"
  for f in out1 out2; do
    got=$(sha256sum <"$tmpdir/$f.img" | cut -d' ' -f1)
    [ "$got" = "$want" ] ||
      fail "multi-conn nbdcopy $f returned wrong data (threads: $threads)"
  done
  echo "ok: threads $threads"
done

# Pipelined requests on one raw connection: every reply carries the
# cookie of its request, each request is answered exactly once, and the
# data matches (replies may arrive in any order).
"$NBDKIT" -U - memory 16M --run '
  RAW_NBD_SOCKET="$unixsocket" /usr/bin/python3 -c "
import sys, struct, os
sys.path.insert(0, \"$srcdir\")
import raw_nbd as r
c = r.Connection.from_env()
c.negotiate(structured=False)
blocks = {}
for k in range(64):
    blocks[k] = os.urandom(8192)
    c.send_request(r.CMD_WRITE, k * 8192, 8192, data=blocks[k], cookie=1000 + k)
seen = set()
for _ in range(64):
    magic, err, cookie = struct.unpack(\">IIQ\", c.recv_exact(16))
    assert magic == r.SIMPLE_REPLY_MAGIC and err == 0, (magic, err)
    assert 1000 <= cookie < 1064 and cookie not in seen, cookie
    seen.add(cookie)
for k in range(64):
    c.send_request(r.CMD_READ, k * 8192, 8192, cookie=2000 + k)
seen = set()
for _ in range(64):
    magic, err, cookie = struct.unpack(\">IIQ\", c.recv_exact(16))
    assert magic == r.SIMPLE_REPLY_MAGIC and err == 0, (magic, err)
    assert 2000 <= cookie < 2064 and cookie not in seen, cookie
    seen.add(cookie)
    assert c.recv_exact(8192) == blocks[cookie - 2000], cookie
c.disconnect()
"
' || fail "pipelined raw requests failed"

echo "$0: ok"
