#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The exitwhen filter with file events.  exit-when-file-created: an idle
# server exits once the file appears (found by the polling thread).  The
# exit is graceful: a connected client keeps working, new clients are
# refused with a logged reason, and the server exits when the client
# leaves.  exit-when-file-deleted: the same when the file goes away.  A
# file that exists at start-up makes the server exit at once.  All waits
# are bounded.
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
  for (( i=0; i<300; i++ )); do
    [ -s "$tmpdir/pid" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
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

# 1. Idle server, file created: exits within a poll interval or two.
start_server --filter=exitwhen memory 1M \
    exit-when-file-created="$tmpdir/stop" exit-when-poll=1
[ -s "$tmpdir/pid" ] || fail "nbdkit did not start"
nbdinfo --size "$uri" >/dev/null || fail "the server does not serve"
kill -0 "$pid" || fail "the server exited before the event"
touch "$tmpdir/stop"
wait_exit "idle server after exit-when-file-created"
rm -f "$tmpdir/stop"

# 2. Graceful: a client is connected when the event happens.
start_server --filter=exitwhen memory 1M \
    exit-when-file-created="$tmpdir/stop" exit-when-poll=1
[ -s "$tmpdir/pid" ] || fail "nbdkit did not start"
nbdsh -u "$uri" -c "
import os, time
d = os.environ['tmpdir']
h.pwrite(b'a' * 512, 0)
open(d + '/held', 'w').close()
while not os.path.exists(d + '/release'):
    time.sleep(0.05)
# Still served after the event.
assert h.pread(512, 0) == b'a' * 512
h.pwrite(b'b' * 512, 512)
" &
holder=$!
for (( i=0; i<200; i++ )); do [ -e "$tmpdir/held" ] && break; sleep 0.1; done
[ -e "$tmpdir/held" ] || fail "the holding client did not connect"
touch "$tmpdir/stop"
# New clients are refused once the event has been seen (at the latest
# by the next poll), while the server stays up for the holder.
refused=
for (( i=0; i<100; i++ )); do
  if ! nbdinfo --size "$uri" >/dev/null 2>&1; then refused=1; break; fi
  sleep 0.1
done
[ "$refused" ] || fail "new clients were still served after the event"
kill -0 "$pid" || fail "the server exited while a client was connected"
grep -q "the server is exiting: new clients are refused" "$tmpdir/log" ||
  fail "the refusal was not logged"
touch "$tmpdir/release"
wait "$holder" || fail "the connected client failed after the event"
wait_exit "after the last client left"
rm -f "$tmpdir/stop" "$tmpdir/held" "$tmpdir/release"

# 3. exit-when-file-deleted.
touch "$tmpdir/alive"
start_server --filter=exitwhen memory 1M \
    exit-when-file-deleted="$tmpdir/alive" exit-when-poll=1
[ -s "$tmpdir/pid" ] || fail "nbdkit did not start"
nbdinfo --size "$uri" >/dev/null || fail "the server does not serve"
rm "$tmpdir/alive"
wait_exit "after exit-when-file-deleted"

# 4. The file already exists at start-up: the server exits at once,
# even with the default (60 second) poll interval.
touch "$tmpdir/stop"
start_server --filter=exitwhen memory 1M exit-when-file-created="$tmpdir/stop"
wait_exit "with the event already true at start-up"

# 5. Bad settings.
for args in "exit-when-poll=0" "exit-when-poll=abc" \
            "exit-when-process-exits=xyz" "exit-when-pipe-closed=999"; do
  key=${args%%=*}
  "$NBDKIT" -U - --filter=exitwhen memory 1M "$args" --run true \
      2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "$args: exit status $r, expected 1"
  grep -q "$key" "$tmpdir/err" ||
    fail "$args: the message does not name '$key': $(cat "$tmpdir/err")"
done
