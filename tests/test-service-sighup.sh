#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# SIGHUP is ignored: a foreground server, a forked daemon and a captive
# server all keep running and serving after it, a client connected at
# the time carries on with its data intact, and a captive server still
# exits with its command's status.

source "$srcdir/functions.sh"
requires nbdsh --version
requires nbdinfo --version
requires_plugin memory

make_tmpdir

wait_for_pidfile ()
{
  local i
  for (( i=0; i<300; i++ )); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  fail "no pidfile $1 after 30 seconds"
}

# hup_and_check NAME PID SOCKET: SIGHUP while a client is mid-session,
# then a fresh client.
hup_and_check ()
{
  local name=$1 pid=$2 sock=$3
  HUP_PID=$pid nbdsh -u "nbd+unix:///?socket=$sock" -c '
import os, signal, time
h.pwrite(b"before-hup", 0)
os.kill(int(os.environ["HUP_PID"]), signal.SIGHUP)
time.sleep(0.5)
assert h.pread(10, 0) == b"before-hup"
h.pwrite(b"after-hup!", 16)
' || fail "$name: the connected client failed across SIGHUP"
  kill -0 "$pid" 2>/dev/null || fail "$name: nbdkit died of SIGHUP"
  nbdsh -u "nbd+unix:///?socket=$sock" \
    -c 'assert h.pread(10, 16) == b"after-hup!"' ||
    fail "$name: no service after SIGHUP"
  # And once more with nobody connected.
  kill -HUP "$pid"
  [ "$(nbdinfo --size "nbd+unix:///?socket=$sock")" = 1048576 ] ||
    fail "$name: no service after a second SIGHUP"
  kill -0 "$pid" 2>/dev/null || fail "$name: nbdkit died of SIGHUP"
  echo "ok: $name ignores SIGHUP"
}

# --- foreground ----------------------------------------------------------
"$NBDKIT" -f -P "$tmpdir/fg.pid" -U "$tmpdir/fg.sock" memory 1M &
pid=$!
cleanup_fn kill_pid "$pid"
wait_for_pidfile "$tmpdir/fg.pid"
hup_and_check foreground "$pid" "$tmpdir/fg.sock"
kill_pid "$pid"

# --- forked into the background ----------------------------------------------
"$NBDKIT" -P "$tmpdir/bg.pid" -U "$tmpdir/bg.sock" memory 1M ||
  fail "forking nbdkit failed to start"
wait_for_pidfile "$tmpdir/bg.pid"
pid=$(cat "$tmpdir/bg.pid")
cleanup_fn kill_pid "$pid"
hup_and_check daemon "$pid" "$tmpdir/bg.sock"
kill_pid "$pid"

# --- captive: the command goes on, its status comes back ------------------
status=0
timeout 60 "$NBDKIT" -U - memory 1M --run '
  kill -HUP $PPID
  nbdsh -u "$uri" -c "h.pwrite(b\"x\", 0)" || exit 1
  exit 7' || status=$?
[ "$status" -eq 7 ] ||
  fail "captive: exit status $status after SIGHUP, expected the command's 7"
echo "ok: captive nbdkit ignores SIGHUP"

echo "$0: ok"
