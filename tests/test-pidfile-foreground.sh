#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# -P PIDFILE is written only once the server is ready (a client can
# connect the moment it appears), holds the serving process's pid, is
# overwritten if present and not written when startup fails; -f stays in
# the foreground; by default nbdkit forks and the parent exits 0 once
# the daemon is listening, without holding the caller's stdout.

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin memory

make_tmpdir

connect_now ()
{
  # One attempt, no retry: the server must already be accepting.
  nbdsh -u "nbd+unix:///?socket=$1" -c 'assert h.get_size() == 1048576'
}

# --- -f: foreground, pidfile == our child, written when ready ---------
sock="$tmpdir/fg.sock"
pidfile="$tmpdir/fg.pid"
"$NBDKIT" -f -P "$pidfile" -U "$sock" memory 1M &
pid=$!
cleanup_fn kill_pid "$pid"
for (( i=0; i<3000; i++ )); do
  [ -s "$pidfile" ] && break
  kill -0 "$pid" 2>/dev/null || fail "nbdkit -f exited during startup"
  sleep 0.01
done
[ -s "$pidfile" ] || fail "-f: pidfile not written within 30 seconds"
# The instant the pidfile exists the server must accept connections.
connect_now "$sock" || fail "-f: pidfile appeared before the server was ready"
grep -Eq '^[0-9]+$' "$pidfile" || fail "-f: pidfile is not a pid: $(cat "$pidfile")"
[ "$(cat "$pidfile")" = "$pid" ] ||
  fail "-f: pidfile has $(cat "$pidfile") but the server is $pid"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "-f: the foreground process went away"
connect_now "$sock" || fail "-f: server stopped serving"
kill_pid "$pid"
echo "ok: -f"

# --- an existing pidfile is overwritten --------------------------------
sock="$tmpdir/ow.sock"
pidfile="$tmpdir/ow.pid"
printf '999999999\nleftover\n' >"$pidfile"
"$NBDKIT" -f -P "$pidfile" -U "$sock" memory 1M &
pid=$!
cleanup_fn kill_pid "$pid"
for (( i=0; i<300; i++ )); do
  [ "$(head -n1 "$pidfile")" = "$pid" ] && break
  kill -0 "$pid" 2>/dev/null || fail "nbdkit -f exited during startup"
  sleep 0.1
done
[ "$(cat "$pidfile")" = "$pid" ] ||
  fail "existing pidfile not overwritten: $(cat "$pidfile")"
kill_pid "$pid"
echo "ok: pidfile overwritten"

# --- startup failure: no pidfile ---------------------------------------
pidfile="$tmpdir/bad.pid"
status=0
timeout 20 "$NBDKIT" -f -P "$pidfile" -U "$tmpdir/bad.sock" memory size=bad \
  2>/dev/null || status=$?
[ "$status" -eq 1 ] || fail "bad startup exited with $status, expected 1"
[ ! -e "$pidfile" ] || fail "pidfile written although startup failed"
status=0
timeout 20 "$NBDKIT" -P "$pidfile" -U "$tmpdir/bad.sock" memory size=bad \
  2>/dev/null || status=$?
[ "$status" -eq 1 ] || fail "bad startup (forking) exited with $status, expected 1"
[ ! -e "$pidfile" ] || fail "pidfile written although startup failed (forking)"
echo "ok: no pidfile on failure"

# --- default: fork, parent exits 0 once listening ----------------------
sock="$tmpdir/daemon.sock"
pidfile="$tmpdir/daemon.pid"
# Command substitution waits for everyone holding stdout: a daemon that
# kept the caller's stdout would hang here until the timeout.
status=0
out=$(timeout 20 "$NBDKIT" -P "$pidfile" -U "$sock" memory 1M) || status=$?
[ "$status" -ne 124 ] || fail "forking nbdkit kept stdout open (or never returned)"
[ "$status" -eq 0 ] || fail "forking nbdkit: parent exited with status $status"
[ -z "$out" ] || fail "forking nbdkit printed to stdout: $out"
# Listening by the time the parent has exited.
connect_now "$sock" || fail "parent exited before the daemon was listening"
for (( i=0; i<50; i++ )); do
  [ -s "$pidfile" ] && break
  sleep 0.1
done
[ -s "$pidfile" ] || fail "forking nbdkit: no pidfile"
daemon=$(cat "$pidfile")
cleanup_fn kill_pid "$daemon"
kill -0 "$daemon" 2>/dev/null || fail "daemon $daemon is not running"
[ -e "/proc/$daemon/cmdline" ] || fail "no /proc entry for $daemon"
ppid=$(awk '{print $4}' "/proc/$daemon/stat")
[ "$ppid" != "$$" ] || fail "daemon is still a child of the test shell"
# The daemon keeps serving many connections.
for n in 1 2 3; do
  connect_now "$sock" || fail "daemon stopped serving after $n connections"
done
kill -TERM "$daemon"
for (( i=0; i<100; i++ )); do
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$daemon" 2>/dev/null && fail "daemon still running 10 seconds after SIGTERM"
echo "ok: forking"

echo "$0: ok"
