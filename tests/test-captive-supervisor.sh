#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkit-captive(1) "Process structure": with --run the nbdkit process
# started is a supervisor with two children, the server (whose pid is in
# the -P pidfile) and the command.
# - The server killed by SIGKILL: the command runs to its end, then
#   nbdkit says so and exits with 137.
# - The server stopped by SIGTERM: the command runs to its end and its
#   status is nbdkit's.
# - SIGTERM to nbdkit itself: the server stops, the command runs to its
#   end, its status is nbdkit's.
# - -u/-g with -U - and --run: the command runs before privileges are
#   dropped and reaches the root-only socket.
# - -i ::1: $uri names [::1], which a client can reach.

source "$srcdir/functions.sh"
requires timeout --version
requires nbdinfo --version
requires_plugin memory
make_tmpdir
cd "$tmpdir"

# The command waits (bounded) for the file "go", then exits 3.
cmd='for i in $(seq 300); do [ -e go ] && exit 3; sleep 0.1; done; exit 99'

# start_captive: starts nbdkit in the background; sets $pid and $server.
start_captive ()
{
  rm -f go server.pid err
  "$NBDKIT" -P server.pid -U - memory 1M --run "$cmd" 2>err &
  pid=$!
  cleanup_fn kill_pid "$pid"
  for (( i = 0; i < 300; i++ )); do
    [ -s server.pid ] && break
    kill -0 "$pid" 2>/dev/null || fail "nbdkit exited early: $(cat err)"
    sleep 0.1
  done
  server=$(cat server.pid)
  [ -n "$server" ] && [ "$server" != "$pid" ] ||
    fail "the pidfile names '$server', not a server child of $pid"
}

# finish: lets the command exit, waits for nbdkit, sets $status.
finish ()
{
  touch go
  status=0
  wait "$pid" || status=$?
}

# wait_gone PID: bounded wait for PID to exit.
wait_gone ()
{
  for (( i = 0; i < 300; i++ )); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  fail "process $1 is still running"
}

start_captive
kill -KILL "$server"
wait_gone "$server"
kill -0 "$pid" 2>/dev/null || fail "nbdkit exited before its command"
finish
[ "$status" -eq 137 ] || fail "server killed by SIGKILL: exit status $status"
grep -q "server was killed by signal 9" err ||
  fail "server killed by SIGKILL: no message: $(cat err)"
echo "ok: server killed -> the command finishes, exit 137"

start_captive
kill -TERM "$server"
wait_gone "$server"
finish
[ "$status" -eq 3 ] || fail "server stopped by SIGTERM: exit status $status"
echo "ok: server stopped -> the command's status"

start_captive
kill -TERM "$pid"
wait_gone "$server"
kill -0 "$pid" 2>/dev/null || fail "SIGTERM: nbdkit exited before its command"
finish
[ "$status" -eq 3 ] || fail "SIGTERM to nbdkit: exit status $status"
[ ! -s err ] || fail "SIGTERM to nbdkit printed: $(cat err)"
echo "ok: SIGTERM to nbdkit -> server stops, the command's status"

if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
  group=$(id -gn nobody)
  out=$(timeout 60 "$NBDKIT" -u nobody -g "$group" -U - memory 1M \
          --run 'id -u; nbdinfo --size "$uri"') ||
    fail "-u nobody -U - --run: failed: $out"
  [ "$out" = "0
1048576" ] || fail "-u nobody -U - --run: got: $out"
  echo "ok: -u with -U - and --run"
else
  echo "not root or no user nobody: -u with --run not checked"
fi

if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' \
    2>/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET6)
s.bind(("::1",0)); print(s.getsockname()[1])')
  out=$(timeout 60 "$NBDKIT" -i ::1 -p "$port" memory 1M \
          --run 'echo "$uri"; nbdinfo --size "$uri"') ||
    fail "-i ::1: the client could not connect: $out"
  [ "$out" = "nbd://[::1]:$port
1048576" ] || fail "-i ::1: got: $out"
  echo "ok: -i ::1 -> $(head -n1 <<<"$out")"
else
  echo "no IPv6 loopback here: -i ::1 not checked"
fi
echo "$0: ok"
