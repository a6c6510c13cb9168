#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# How a connection's requests are spread over threads (nbdkit(1)
# --threads): one thread, with requests read and replies sent in batches,
# while requests are quick; more once they wait.  Checks the data of
# pipelined mixes of every size, that a request waiting for a later one
# does not hang the connection, that sleeping requests make the
# connection go parallel, and that requests already read are answered
# when the client disconnects right after sending them.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_plugin sh
requires_filter delay
make_tmpdir

# 1. A RAM disk: 600 pipelined requests of mixed kinds and sizes, from
# 512 bytes to 1 MiB, checked against a model; the connection stays on
# one thread.  The disk is filled first by another connection: a first
# write into a RAM disk allocates its pages, which can rightly make
# those requests count as slow.
start_nbdkit -P "$tmpdir/mem.pid" -U "$tmpdir/mem.sock" -v \
  memory 64M 2>"$tmpdir/mem.log"
nbdsh -u "nbd+unix:///?socket=$tmpdir/mem.sock" -c '
for off in range(0, 64 * 1024 * 1024, 1024 * 1024):
    h.pwrite(bytes(1024 * 1024), off)
' || fail "filling the RAM disk failed"
nbdsh -u "nbd+unix:///?socket=$tmpdir/mem.sock" -c '
import random
random.seed(7)
size = 64 * 1024 * 1024
model = bytearray(size)
reads = []
# The server may reorder requests in flight (nbd-protocol.md), so a
# request that overlaps one still in flight waits for them all.
inflight = []
for i in range(600):
    n = random.choice([512, 4096, 4096, 65536, 262144, 1048576])
    off = random.randrange(0, size - n, 512)
    if any(off < o + m and o < off + n for o, m in inflight):
        while h.aio_in_flight() > 0:
            h.poll(-1)
        inflight = []
    inflight.append((off, n))
    kind = random.random()
    if kind < 0.45:
        data = bytes([random.randrange(256)]) * n
        h.aio_pwrite(data, off)
        model[off:off + n] = data
    elif kind < 0.55:
        h.aio_zero(n, off)
        model[off:off + n] = bytes(n)
    else:
        buf = nbd.Buffer(n)
        reads.append((h.aio_pread(buf, off), buf, bytes(model[off:off + n])))
    while h.aio_in_flight() >= 48:
        h.poll(-1)
while h.aio_in_flight() > 0:
    h.poll(-1)
for cookie, buf, want in reads:
    assert h.aio_command_completed(cookie)
    assert buf.to_bytearray() == want, "read at cookie %d differs" % cookie
assert h.pread(size, 0) == model
print("%d reads checked" % len(reads))
' || fail "pipelined requests on the RAM disk gave wrong data"
# (Under the sanitizers a 1 MiB request can take more than a
# millisecond of CPU, which rightly counts as slow.)
if ! grep -qa __asan_init "$NBDKIT"; then
  grep -q 'connection 2: .*serving them on up to' "$tmpdir/mem.log" &&
    fail "a RAM disk connection went parallel: $(grep 'serving them' "$tmpdir/mem.log")"
fi
kill_pid "$(cat "$tmpdir/mem.pid")"

# 2. A read that waits until a later write has arrived: with one thread
# only, the write would never be read.  The watchdog starts a second
# thread when the read has slept for a millisecond or two.
cat >"$tmpdir/waiter.sh" <<'EOF'
#!/usr/bin/env bash
case "$1" in
  thread_model) echo parallel ;;
  get_size) echo 1048576 ;;
  can_write) exit 0 ;;
  pread)
    for (( i = 0; i < 300; i++ )); do
      [ -e "$tmpdir_flag" ] && break
      sleep 0.1
    done
    [ -e "$tmpdir_flag" ] || { echo "EIO no write came" >&2; exit 1; }
    head -c "$3" /dev/zero ;;
  pwrite) cat >/dev/null; touch "$tmpdir_flag" ;;
  *) exit 2 ;;
esac
EOF
chmod +x "$tmpdir/waiter.sh"
export tmpdir_flag=$tmpdir/written
timeout 60 "$NBDKIT" -U - -v sh "$tmpdir/waiter.sh" \
  --run 'nbdsh -u "$uri" -c "
r = h.aio_pread(nbd.Buffer(512), 0)
w = h.aio_pwrite(b\"x\" * 512, 0)
while h.aio_in_flight() > 0:
    h.poll(-1)
assert h.aio_command_completed(w)
assert h.aio_command_completed(r)
"' 2>"$tmpdir/waiter.log" ||
  fail "a read waiting for a later write hung or failed: $(tail -5 "$tmpdir/waiter.log")"
grep -q 'requests wait long: serving them on up to 16 threads' \
  "$tmpdir/waiter.log" || fail "the switch to more threads was not logged"

# 3. Sleeping requests (the delay filter): eight reads in flight all
# complete, on more than one thread.
"$NBDKIT" -U - -v --filter=delay memory 1M rdelay=200ms \
  --run 'nbdsh -u "$uri" -c "
cs = [h.aio_pread(nbd.Buffer(4096), i * 4096) for i in range(8)]
while h.aio_in_flight() > 0:
    h.poll(-1)
assert all(h.aio_command_completed(c) for c in cs)
"' 2>"$tmpdir/delay.log" || fail "delayed reads failed"
grep -q 'requests wait long' "$tmpdir/delay.log" ||
  fail "sleeping requests did not make the connection go parallel"

# 4. Requests sent together and then a disconnect: every request read
# before the NBD_CMD_DISC is answered, and nothing after it is served.
"$NBDKIT" -U - memory 1M --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"a\" * 4096, 0)
bufs = [nbd.Buffer(4096) for i in range(32)]
cs = [h.aio_pread(b, 0) for b in bufs]
h.shutdown()
assert all(h.aio_command_completed(c) for c in cs)
assert all(b.to_bytearray() == b\"a\" * 4096 for b in bufs)
"' || fail "requests sent before a disconnect were not all answered"

echo "request threads: ok"
