#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Socket activation through systemd-socket-activate(1): nbdkit started
# with LISTEN_FDS/LISTEN_PID (and LISTEN_FDNAMES) serves on the inherited
# sockets — one TCP socket; a TCP and a Unix socket at once; two named
# Unix sockets — a real client gets through each, all sockets reach the
# same server, the server stays in the foreground (it is the process
# systemd-socket-activate exec'd, and its pidfile says so), it serves
# more than one connection, and it exits 0 on SIGTERM.
# Also the per-connection style of systemd/nbdkit@.service (Accept=yes,
# the connection on stdin/stdout, nbdkit --single): each client gets a
# server of its own.

source "$srcdir/functions.sh"
requires systemd-socket-activate --version
requires nbdinfo --version
requires nbdsh --version
requires /usr/bin/python3 --version
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

# wait_for_lines FILE PATTERN COUNT: until PATTERN matches COUNT lines.
wait_for_lines ()
{
  local i
  for (( i=0; i<300; i++ )); do
    [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
    sleep 0.1
  done
  cat "$1" >&2
  fail "timed out waiting for $3 line(s) matching '$2' in $1"
}

wait_for_file ()
{
  local i
  for (( i=0; i<300; i++ )); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  fail "timed out waiting for $1"
}

# The process systemd-socket-activate became must be nbdkit itself
# (exec'd, not forked away) and its pidfile must name it.
check_foreground ()
{
  local sa=$1 pidfile=$2 comm
  wait_for_file "$pidfile"
  [ "$(cat "$pidfile")" = "$sa" ] ||
    fail "pidfile has $(cat "$pidfile"), expected the activated process $sa"
  comm=$(cat "/proc/$sa/comm" 2>/dev/null) ||
    fail "activated process $sa is gone (did nbdkit fork into the background?)"
  [ "$comm" = nbdkit ] || fail "activated process $sa is '$comm', not nbdkit"
}

# stop_server PID: SIGTERM, exit status 0 within 10 seconds.
stop_server ()
{
  local pid=$1 i status=0
  kill -TERM "$pid"
  for (( i=0; i<100; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "nbdkit $pid still running 10s after SIGTERM"
  wait "$pid" || status=$?
  [ "$status" -eq 0 ] || fail "nbdkit exited with $status after SIGTERM"
}

# --- one TCP socket ----------------------------------------------------
port=$(free_port)
systemd-socket-activate -l "127.0.0.1:$port" \
  "$NBDKIT" -P "$tmpdir/tcp.pid" memory 1M 2>"$tmpdir/tcp.log" &
sa=$!
cleanup_fn kill_pid "$sa"
wait_for_lines "$tmpdir/tcp.log" "Listening on 127.0.0.1:$port" 1
# systemd-socket-activate execs the server at the first connection.
size=$(nbdinfo --size "nbd://127.0.0.1:$port") ||
  fail "nbdinfo could not connect through the activated TCP socket"
[ "$size" = 1048576 ] || fail "TCP: size $size, expected 1048576"
check_foreground "$sa" "$tmpdir/tcp.pid"
# The server keeps serving: a second and third client, data persists.
nbdsh -u "nbd://127.0.0.1:$port" -c 'h.pwrite(b"socket-activated", 4096)' ||
  fail "TCP: write through the activated socket failed"
nbdsh -u "nbd://127.0.0.1:$port" \
  -c 'assert h.pread(16, 4096) == b"socket-activated"' ||
  fail "TCP: data written on one connection not read back on the next"
grep -q 'cannot be used\|error' "$tmpdir/tcp.log" &&
  fail "TCP: unexpected error from nbdkit: $(cat "$tmpdir/tcp.log")"
stop_server "$sa"
echo "ok: one TCP socket"

# --- a Unix and a TCP socket ------------------------------------------
port=$(free_port)
sock="$tmpdir/nbd.sock"
systemd-socket-activate -l "$sock" -l "127.0.0.1:$port" \
  "$NBDKIT" -P "$tmpdir/two.pid" memory 2M 2>"$tmpdir/two.log" &
sa=$!
cleanup_fn kill_pid "$sa"
wait_for_lines "$tmpdir/two.log" "Listening on" 2
nbdsh -u "nbd+unix:///?socket=$sock" -c 'h.pwrite(b"via-unix", 0)' ||
  fail "two sockets: client through the Unix socket failed"
check_foreground "$sa" "$tmpdir/two.pid"
# Same server behind both sockets: the TCP client sees the Unix write.
nbdsh -u "nbd://127.0.0.1:$port" -c 'assert h.get_size() == 2*1024*1024' \
  -c 'assert h.pread(8, 0) == b"via-unix"' \
  -c 'h.pwrite(b"via-tcp", 8192)' ||
  fail "two sockets: client through the TCP socket failed or saw other data"
nbdsh -u "nbd+unix:///?socket=$sock" -c 'assert h.pread(7, 8192) == b"via-tcp"' ||
  fail "two sockets: Unix client did not see the TCP client's write"
stop_server "$sa"
echo "ok: Unix + TCP sockets"

# --- named sockets (LISTEN_FDNAMES) -----------------------------------
sock1="$tmpdir/data.sock"
sock2="$tmpdir/admin.sock"
systemd-socket-activate -l "$sock1" -l "$sock2" --fdname=data:admin \
  "$NBDKIT" -P "$tmpdir/named.pid" memory 1M 2>"$tmpdir/named.log" &
sa=$!
cleanup_fn kill_pid "$sa"
wait_for_lines "$tmpdir/named.log" "Listening on" 2
for s in "$sock2" "$sock1"; do
  size=$(nbdinfo --size "nbd+unix:///?socket=$s") ||
    fail "named sockets: no service through $s"
  [ "$size" = 1048576 ] || fail "named sockets: $s: size $size"
done
check_foreground "$sa" "$tmpdir/named.pid"
stop_server "$sa"
echo "ok: named sockets"

# --- per connection: --accept --inetd with nbdkit -s ------------------
sock="$tmpdir/accept.sock"
systemd-socket-activate --accept --inetd -l "$sock" \
  "$NBDKIT" --single memory 1M 2>"$tmpdir/accept.log" &
sa=$!
cleanup_fn kill_pid "$sa"
wait_for_lines "$tmpdir/accept.log" "Listening on" 1
nbdsh -u "nbd+unix:///?socket=$sock" -c 'h.pwrite(b"mine", 0)' \
  -c 'assert h.pread(4, 0) == b"mine"' ||
  fail "per connection: first client failed"
# A new connection is a new nbdkit with a new, empty memory disk.
nbdsh -u "nbd+unix:///?socket=$sock" -c 'assert h.pread(4, 0) == bytes(4)' ||
  fail "per connection: second client failed or shared the first one's server"
grep -q 'error' "$tmpdir/accept.log" &&
  fail "per connection: error from nbdkit: $(cat "$tmpdir/accept.log")"
kill_pid "$sa"
echo "ok: per-connection servers (Accept=yes style)"

echo "$0: ok"
