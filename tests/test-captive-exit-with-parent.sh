#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# --exit-with-parent: a parent shell starts nbdkit with it (and without
# -f); nbdkit stays its direct child (the option implies -f), serves,
# and once the parent is killed with SIGKILL — no chance to clean up —
# nbdkit is gone within a second.  Also while a client is connected.

source "$srcdir/functions.sh"
requires nbdinfo --version
requires /usr/bin/python3 --version
requires_plugin memory

make_tmpdir

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive ()
{
  local state
  state=$(awk '$1 == "State:" {print $2}' "/proc/$1/status" 2>/dev/null) ||
    return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# run_case NAME WITH_CLIENT
run_case ()
{
  local name=$1 with_client=$2 pidfile="$tmpdir/$1.pid" sock="$tmpdir/$1.sock"
  local parent server ppid i client

  # The parent: a shell that starts nbdkit and then just waits.
  bash -c '"$1" --exit-with-parent -P "$2" -U "$3" memory 1M & wait' \
    _ "$NBDKIT" "$pidfile" "$sock" &
  parent=$!
  cleanup_fn kill_pid "$parent"
  for (( i=0; i<300; i++ )); do
    [ -s "$pidfile" ] && break
    kill -0 "$parent" 2>/dev/null || fail "$name: parent exited before nbdkit was ready"
    sleep 0.1
  done
  [ -s "$pidfile" ] || fail "$name: nbdkit did not write its pidfile"
  server=$(cat "$pidfile")
  cleanup_fn kill_pid "$server"

  ppid=$(awk '$1 == "PPid:" {print $2}' "/proc/$server/status")
  [ "$ppid" = "$parent" ] ||
    fail "$name: nbdkit's parent is $ppid, not $parent (did it fork?)"
  [ "$(nbdinfo --size "nbd+unix:///?socket=$sock")" = 1048576 ] ||
    fail "$name: nbdkit is not serving"

  if [ "$with_client" = yes ]; then
    /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.recv(18)
time.sleep(60)
' "$sock" </dev/null >/dev/null 2>&1 &
    client=$!
    cleanup_fn kill_pid "$client"
    sleep 0.5
  fi

  kill -9 "$parent"
  wait "$parent" 2>/dev/null
  for (( i=0; i<20; i++ )); do
    alive "$server" || break
    sleep 0.05
  done
  if alive "$server"; then
    fail "$name: nbdkit $server still running 1s after its parent was killed"
  fi
  echo "ok: $name: nbdkit exited with its parent"
}

run_case idle no
run_case busy yes

echo "$0: ok"
