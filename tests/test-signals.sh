#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Signals and listeners: a foreground server (-f) on TCP loopback exits
# with status 0 within a few seconds of SIGTERM, SIGINT or SIGQUIT; the
# default forking server (pidfile holds the daemon's pid) stops on
# SIGTERM; SIGPIPE from a client vanishing mid-reply does not kill it;
# -U PATH and -s (stdin/stdout) serve too.

source "$srcdir/functions.sh"
# tests/raw_nbd.py is imported from the source tree: keep it clean.
export PYTHONDONTWRITEBYTECODE=1
requires nbdsh --version
requires nbdinfo --version
requires /usr/bin/python3 --version
requires env --default-signal=INT true
requires_plugin memory

make_tmpdir

free_port ()
{
  /usr/bin/python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

wait_for_pidfile ()
{
  local pidfile=$1 pid=${2:-} i
  for (( i=0; i<300; i++ )); do
    [ -s "$pidfile" ] && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      fail "nbdkit exited before writing $pidfile"
    fi
    sleep 0.1
  done
  fail "nbdkit did not write $pidfile within 30 seconds"
}

# wait_gone PID SECONDS: true once PID no longer exists.
wait_gone ()
{
  local pid=$1 i
  for (( i=0; i<$2*10; i++ )); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# A client that asks for 32M, then hangs up without reading the reply,
# so the server's write fails with EPIPE (SIGPIPE if not ignored).
abandon_reads ()
{
  RAW_NBD_PORT=${1#tcp:} RAW_NBD_SOCKET=${2:-} /usr/bin/python3 -c '
import sys, socket, struct
sys.path.insert(0, sys.argv[1])
import raw_nbd as r
# A plain close makes the server write into a closed socket (EPIPE and
# SIGPIPE); SO_LINGER 0 makes it a reset (ECONNRESET).
for structured, reset in ((False, False), (True, False), (False, True),
                          (True, True)):
    c = r.Connection.from_env()
    c.negotiate(structured=structured)
    for k in range(4):
        c.send_request(r.CMD_READ, 0, 1024 * 1024)
    if reset:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
    c.close()
' "$srcdir"
}

# --- foreground server on TCP loopback: each stop signal -> exit 0 ----
for sig in TERM INT QUIT; do
  port=$(free_port)
  pidfile="$tmpdir/fg-$sig.pid"
  # Background jobs of a non-interactive shell start with SIGINT and
  # SIGQUIT ignored; give nbdkit the default dispositions a user's
  # terminal would.
  env --default-signal=INT,QUIT \
    "$NBDKIT" -f -P "$pidfile" -i 127.0.0.1 -p "$port" memory 1M &
  pid=$!
  cleanup_fn kill_pid "$pid"
  wait_for_pidfile "$pidfile" "$pid"
  [ "$(cat "$pidfile")" = "$pid" ] ||
    fail "-f: pidfile has $(cat "$pidfile"), expected the process $pid"
  [ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 1048576 ] ||
    fail "TCP server on port $port does not serve"
  # SIGPIPE must not kill the server.
  abandon_reads "tcp:$port"
  kill -0 "$pid" 2>/dev/null || fail "server died after a client vanished mid-read"
  nbdsh -u "nbd://127.0.0.1:$port" -c 'assert h.pread(512, 0) == bytes(512)' ||
    fail "server does not serve after a client vanished mid-read"

  kill -s "$sig" "$pid"
  wait_gone "$pid" 10 || fail "SIG$sig: nbdkit -f still running after 10 seconds"
  status=0
  wait "$pid" || status=$?
  [ "$status" -eq 0 ] || fail "SIG$sig: nbdkit -f exited with status $status, expected 0"
  echo "ok: SIG$sig -> exit 0"
done

# --- default (forking) mode: the pidfile holds the daemon ------------
port=$(free_port)
pidfile="$tmpdir/daemon.pid"
"$NBDKIT" -P "$pidfile" -i 127.0.0.1 -p "$port" memory 1M ||
  fail "forking nbdkit: parent exited with status $?"
wait_for_pidfile "$pidfile"
daemon=$(cat "$pidfile")
cleanup_fn kill_pid "$daemon"
kill -0 "$daemon" 2>/dev/null || fail "daemon $daemon from the pidfile is not running"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 1048576 ] ||
  fail "daemon does not serve on port $port"
abandon_reads "tcp:$port"
kill -0 "$daemon" 2>/dev/null || fail "daemon died after a client vanished mid-read"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 1048576 ] ||
  fail "daemon does not serve after a client vanished mid-read"
kill -TERM "$daemon"
wait_gone "$daemon" 10 || fail "daemon still running 10 seconds after SIGTERM"
echo "ok: forking daemon"

# --- -U PATH ------------------------------------------------------------
sock="$tmpdir/sock"
pidfile="$tmpdir/unix.pid"
env --default-signal=INT,QUIT "$NBDKIT" -f -P "$pidfile" -U "$sock" memory 1M &
pid=$!
cleanup_fn kill_pid "$pid"
wait_for_pidfile "$pidfile" "$pid"
[ -S "$sock" ] || fail "-U $sock: no socket"
nbdsh -u "nbd+unix:///?socket=$sock" -c '
h.pwrite(b"unix" * 128, 0)
assert h.pread(512, 0) == b"unix" * 128
' || fail "-U socket does not serve"
abandon_reads "" "$sock"
kill -0 "$pid" 2>/dev/null || fail "-U server died after a client vanished mid-read"
kill -INT "$pid"
wait_gone "$pid" 10 || fail "-U server still running 10 seconds after SIGINT"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || fail "-U server exited with status $status after SIGINT"
echo "ok: -U"

# --- SIGTERM while clients stay connected -------------------------------
# An idle client in transmission and one stalled in the handshake must
# not keep the server alive: it stops within a few seconds, status 0.
# (Debian's nbdkit 1.32.5 instead waits until the clients go away, so it
# fails this part.)
sock="$tmpdir/busy.sock"
pidfile="$tmpdir/busy.pid"
env --default-signal=INT,QUIT "$NBDKIT" -f -P "$pidfile" -U "$sock" memory 1M &
pid=$!
cleanup_fn kill_pid "$pid"
wait_for_pidfile "$pidfile" "$pid"
RAW_NBD_SOCKET="$sock" /usr/bin/python3 -c '
import sys, time
sys.path.insert(0, sys.argv[1])
import raw_nbd as r
idle = r.Connection.from_env()
idle.negotiate()
stalled = r.Connection.from_env()
stalled.read_greeting()
print("connected", flush=True)
time.sleep(60)
' "$srcdir" >"$tmpdir/clients.out" 2>/dev/null &
clients=$!
cleanup_fn kill_pid "$clients"
for (( i=0; i<100; i++ )); do
  grep -q connected "$tmpdir/clients.out" && break
  sleep 0.1
done
grep -q connected "$tmpdir/clients.out" || fail "test clients did not connect"
kill -TERM "$pid"
wait_gone "$pid" 10 ||
  fail "SIGTERM: server still running 10 seconds later with clients connected"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || fail "SIGTERM with clients connected: exit status $status"
kill_pid "$clients"
echo "ok: SIGTERM with connected clients"

# --- -s: one connection on stdin/stdout ---------------------------------
nbdsh -c '
import os
h.connect_command([os.environ["NBDKIT"], "-s", "memory", "1M"])
assert h.get_size() == 1048576
h.pwrite(b"stdin" * 100, 1000)
assert h.pread(500, 1000) == b"stdin" * 100
' || fail "-s with nbdsh connect_command failed"
nbdsh -c '
import os
h.connect_command([os.environ["NBDKIT"], "--single", "-o", "memory", "1M"])
assert h.get_protocol() == "oldstyle"
assert h.pread(512, 0) == bytes(512)
' || fail "--single -o with nbdsh connect_command failed"

# -s exits by itself (status 0) once the client hangs up.
/usr/bin/python3 - "$srcdir" <<'EOF' || fail "-s server did not exit cleanly after the client hung up"
import os, socket, subprocess, sys
sys.path.insert(0, sys.argv[1])
import raw_nbd as r
mine, theirs = socket.socketpair()
p = subprocess.Popen([os.environ["NBDKIT"], "-s", "memory", "1M"],
                     stdin=theirs, stdout=theirs)
theirs.close()
c = r.Connection(mine)
c.negotiate()
assert c.read(0, 512) == bytes(512)
c.disconnect()
status = p.wait(timeout=10)
assert status == 0, "exit status %d" % status
# And when the client vanishes without NBD_CMD_DISC.
mine, theirs = socket.socketpair()
p = subprocess.Popen([os.environ["NBDKIT"], "-s", "memory", "1M"],
                     stdin=theirs, stdout=theirs)
theirs.close()
c = r.Connection(mine)
c.negotiate()
c.close()
status = p.wait(timeout=10)
assert status == 0, "exit status %d after abrupt close" % status
EOF
echo "ok: -s"

echo "$0: ok"
