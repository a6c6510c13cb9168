#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The exitwhen filter with exit-when-process-exits: the server serves
# while the watched process lives and exits (bounded wait) once it has
# been killed; a connected client delays the exit until it leaves.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin memory
requires_filter exitwhen
make_tmpdir
export tmpdir

start_server ()
{
  rm -f "$tmpdir/pid" "$tmpdir/sock"
  "$NBDKIT" -f -P "$tmpdir/pid" -U "$tmpdir/sock" "$@" 2>>"$tmpdir/log" &
  pid=$!
  cleanup_fn kill_pid "$pid"
  for (( i=0; i<300; i++ )); do [ -s "$tmpdir/pid" ] && break; sleep 0.1; done
  [ -s "$tmpdir/pid" ] || fail "nbdkit did not start"
  uri="nbd+unix:///?socket=$tmpdir/sock"
}

wait_exit ()
{
  for (( i=0; i<200; i++ )); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  fail "$1: the server is still running after 20 seconds"
}

# 1. Idle server.
sleep 600 &
watched=$!
cleanup_fn kill_pid "$watched"
start_server --filter=exitwhen memory 1M \
    exit-when-process-exits=$watched exit-when-poll=1
nbdinfo --size "$uri" >/dev/null || fail "the server does not serve"
sleep 1.5
kill -0 "$pid" || fail "the server exited while the process was alive"
kill "$watched"
wait "$watched" 2>/dev/null
wait_exit "after the watched process exited"

# 2. A client is connected when the process exits.
sleep 600 &
watched=$!
cleanup_fn kill_pid "$watched"
start_server --filter=exitwhen memory 1M \
    exit-when-process-exits=$watched exit-when-poll=1
nbdsh -u "$uri" -c "
import os, time
d = os.environ['tmpdir']
open(d + '/held', 'w').close()
while not os.path.exists(d + '/release'):
    time.sleep(0.05)
h.pread(512, 0)
" &
holder=$!
for (( i=0; i<200; i++ )); do [ -e "$tmpdir/held" ] && break; sleep 0.1; done
[ -e "$tmpdir/held" ] || fail "the holding client did not connect"
kill "$watched"
sleep 2
kill -0 "$pid" || fail "the server exited while a client was connected"
touch "$tmpdir/release"
wait "$holder" || fail "the connected client failed"
wait_exit "after the client left"
wait "$watched" 2>/dev/null || :

# 3. A process that has exited but was not reaped by its parent (a
# zombie) counts as gone.  The parent here reports the child's PID and
# sleeps without waiting for it.
rm -f "$tmpdir/release"
python3 -c '
import os, sys, time
child = os.fork()
if child == 0:
    os._exit(0)
print(child, flush=True)
time.sleep(600)
' >"$tmpdir/zombie" &
parent=$!
cleanup_fn kill_pid "$parent"
for (( i=0; i<100; i++ )); do [ -s "$tmpdir/zombie" ] && break; sleep 0.1; done
zombie=$(cat "$tmpdir/zombie")
[ -n "$zombie" ] || fail "could not make a zombie process"
start_server --filter=exitwhen memory 1M \
    exit-when-process-exits="$zombie" exit-when-poll=1
wait_exit "with a zombie as the watched process"
