#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bursts of clients connecting at the same moment, and clients connecting
# one after another as fast as they can: the thread that accepts a
# client passes the accepting role to a thread made ready in advance
# and serves the client itself (server/acceptor.c, connection-threads.c),
# so this is where the role or a connection could be lost or doubled.
# Every client must get its own data back within the time limit, and
# afterwards the server must be back to its few idle threads (main,
# acceptor, standby, the handshake and request watchdogs); then with
# -t 1 and over TCP, and -s (one client).

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin memory

make_tmpdir
export sock=$tmpdir/burst.sock

burst ()
{
  local uri=$1
  uri=$uri timeout 120 nbdsh -c '
import os, threading
uri = os.environ["uri"]
errors = []

def client(i):
    try:
        c = nbd.NBD()
        c.connect_uri(uri)
        data = b"%08d" % i * 512
        c.pwrite(data, i * 4096)
        assert c.pread(4096, i * 4096) == data
        c.shutdown()
    except Exception as e:
        errors.append("client %d: %s" % (i, e))

# Five bursts of 48 clients at once.
for burst in range(5):
    threads = [threading.Thread(target=client, args=(burst * 48 + i,))
               for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
# 200 clients in a row.
for i in range(200):
    client(i)
assert not errors, errors
' || fail "a client was not served ($uri)"
}

# settled PID: the connection threads have ended (bounded wait).
settled ()
{
  local pid=$1 i n
  for (( i=0; i<200; i++ )); do
    n=$(ls "/proc/$pid/task" | wc -l)
    [ "$n" -le 5 ] && return 0
    sleep 0.05
  done
  fail "$n threads remain in nbdkit after every client left"
}

start_nbdkit -P "$tmpdir/a.pid" -U "$sock" memory 4M
burst "nbd+unix:///?socket=$sock"
settled "$(cat "$tmpdir/a.pid")"
kill_pid "$(cat "$tmpdir/a.pid")"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_nbdkit -P "$tmpdir/b.pid" -i 127.0.0.1 -p "$port" -t 1 memory 4M
burst "nbd://127.0.0.1:$port/"
settled "$(cat "$tmpdir/b.pid")"
kill_pid "$(cat "$tmpdir/b.pid")"

# -s: one client, and the server exits after it.
timeout 60 nbdsh -c 'h.connect_command(["'"$NBDKIT"'", "-s", "memory", "1M"])
h.pwrite(b"x" * 512, 0)
assert h.pread(512, 0) == b"x" * 512' || fail "-s client failed"
echo "connection bursts: ok"
