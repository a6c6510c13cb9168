#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Socket activation from tests/c/listen-launcher, which sets LISTEN_PID
# to the server's own pid after fork (as systemd does):
# - a Unix and a TCP socket on fds 3 and 4, named with LISTEN_FDNAMES:
#   the pidfile (-P) is written, names the launcher's direct child (the
#   server did not fork), clients get through both sockets to the same
#   server, the inherited fds are now close-on-exec, and SIGTERM passed
#   through the launcher stops it with status 0;
# - LISTEN_PID naming another process: a warning, socket activation is
#   ignored and the server binds its own -U socket instead.

source "$srcdir/functions.sh"
requires nbdinfo --version
requires nbdsh --version
requires_plugin memory

launcher="$abs_top_builddir/tests/c/listen-launcher"
[ -x "$launcher" ] || skip "$launcher was not built"

make_tmpdir

wait_for_file ()
{
  local file=$1 pid=$2 i
  for (( i=0; i<300; i++ )); do
    [ -s "$file" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "process $pid exited before $file appeared"
    sleep 0.1
  done
  fail "timed out waiting for $file"
}

# --- Unix + TCP, named, with a pidfile --------------------------------
sock="$tmpdir/nbd.sock"
pidfile="$tmpdir/nbdkit.pid"
"$launcher" -w "$tmpdir/addrs" -n data:more "unix:$sock" tcp:0 -- \
  "$NBDKIT" -P "$pidfile" memory 1M 2>"$tmpdir/log" &
launcher_pid=$!
cleanup_fn kill_pid "$launcher_pid"
wait_for_file "$pidfile" "$launcher_pid"
server=$(cat "$pidfile")
cleanup_fn kill_pid "$server"
port=$(sed -n 's/^tcp://p' "$tmpdir/addrs")
[ -n "$port" ] || fail "launcher did not report its TCP port"

# Foreground: the pidfile names the launcher's child itself.
ppid=$(awk '$1 == "PPid:" {print $2}' "/proc/$server/status")
[ "$ppid" = "$launcher_pid" ] ||
  fail "pidfile pid $server has parent $ppid, not the launcher $launcher_pid"
[ "$(cat "/proc/$server/comm")" = nbdkit ] || fail "pid $server is not nbdkit"

# The pidfile is only written once serving: connect at once, no retry.
nbdsh -u "nbd+unix:///?socket=$sock" -c 'h.pwrite(b"first", 0)' ||
  fail "client through the Unix socket (fd 3) failed"
nbdsh -u "nbd://127.0.0.1:$port" -c 'assert h.pread(5, 0) == b"first"' ||
  fail "client through the TCP socket (fd 4) failed or saw other data"

# Inherited fds must not leak into anything the server starts.
for fd in 3 4; do
  [ -S "/proc/$server/fd/$fd" ] || fail "fd $fd of the server is not a socket"
  flags=$(awk '$1 == "flags:" {print $2}' "/proc/$server/fdinfo/$fd")
  (( (8#$flags & 8#2000000) != 0 )) ||
    fail "inherited fd $fd is not close-on-exec (flags $flags)"
done

grep -q 'warning\|error' "$tmpdir/log" &&
  fail "unexpected message from nbdkit: $(cat "$tmpdir/log")"

# SIGTERM to the launcher is passed on; the server exits 0.
kill -TERM "$launcher_pid"
for (( i=0; i<100; i++ )); do
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$server" 2>/dev/null && fail "server still running 10s after SIGTERM"
status=0
wait "$launcher_pid" || status=$?
[ "$status" -eq 0 ] || fail "server exited with status $status after SIGTERM"
echo "ok: launcher with Unix + TCP sockets and a pidfile"

# --- LISTEN_PID for another process -----------------------------------
rm -f "$pidfile"
own="$tmpdir/own.sock"
"$launcher" -P parent "unix:$tmpdir/ignored.sock" -- \
  "$NBDKIT" -f -P "$pidfile" -U "$own" memory 1M 2>"$tmpdir/log2" &
launcher_pid=$!
cleanup_fn kill_pid "$launcher_pid"
wait_for_file "$pidfile" "$launcher_pid"
server=$(cat "$pidfile")
cleanup_fn kill_pid "$server"
grep -q 'warning.*LISTEN_PID' "$tmpdir/log2" ||
  fail "no warning about a LISTEN_PID for another process: $(cat "$tmpdir/log2")"
size=$(nbdinfo --size "nbd+unix:///?socket=$own") ||
  fail "server did not bind its own -U socket when LISTEN_PID was not its pid"
[ "$size" = 1048576 ] || fail "size $size, expected 1048576"
# The inherited socket was not taken over: nobody answers on it.
if timeout 3 nbdinfo --size "nbd+unix:///?socket=$tmpdir/ignored.sock" \
     >/dev/null 2>&1; then
  fail "server served the socket-activation fd although LISTEN_PID was not its"
fi
kill_pid "$launcher_pid"
echo "ok: LISTEN_PID for another process ignored with a warning"

echo "$0: ok"
