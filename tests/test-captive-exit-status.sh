#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkit --run exits with the command's exit status: 0, 1, 3 and 255
# pass through unchanged; a command killed by a signal gives 128+N and a
# message on stderr naming the signal; a successful command prints no
# error.  The server stops as soon as the command exits, even while a
# client is still connected.

source "$srcdir/functions.sh"
requires timeout --version
requires /usr/bin/python3 --version
requires_plugin memory

make_tmpdir

# run_captive CMD: sets $status and leaves stderr in $tmpdir/err.
run_captive ()
{
  status=0
  timeout 60 "$NBDKIT" -U - memory 1M --run "$1" 2>"$tmpdir/err" || status=$?
  [ "$status" -ne 124 ] || fail "--run '$1': nbdkit did not exit within 60s"
}

for code in 0 1 3 255; do
  run_captive "exit $code"
  [ "$status" -eq "$code" ] ||
    fail "--run 'exit $code': nbdkit exited with $status"
  if [ "$code" -eq 0 ] && [ -s "$tmpdir/err" ]; then
    fail "--run 'exit 0' printed: $(cat "$tmpdir/err")"
  fi
  echo "ok: exit $code"
done

# The status is the command's own, not the last client's or the server's.
run_captive 'nbdinfo --size "$uri" >/dev/null && exit 42'
[ "$status" -eq 42 ] || fail "command using the server then exit 42: got $status"
echo "ok: exit 42 after using the server"

for sig in KILL TERM INT; do
  num=$(kill -l "$sig")
  run_captive "kill -$sig \$\$"
  [ "$status" -eq $((128 + num)) ] ||
    fail "command killed by SIG$sig: nbdkit exited with $status, expected $((128 + num))"
  grep -q "killed by signal $num" "$tmpdir/err" ||
    fail "command killed by SIG$sig: no message naming signal $num: $(cat "$tmpdir/err")"
  echo "ok: killed by SIG$sig -> $status"
done

# A client still connected does not keep a captive server alive: the
# command leaves a client holding a connection open in the background.
start=$SECONDS
run_captive '
  /usr/bin/python3 -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.recv(18)
time.sleep(60)
" "$unixsocket" </dev/null >/dev/null 2>&1 &
  echo $! >"'"$tmpdir"'/client.pid"
  sleep 1
  exit 5'
client=$(cat "$tmpdir/client.pid")
cleanup_fn kill_pid "$client"
[ "$status" -eq 5 ] || fail "with a client connected: exit status $status, expected 5"
(( SECONDS - start < 30 )) ||
  fail "captive nbdkit took $((SECONDS - start))s to exit with a client connected"
kill_pid "$client"
echo "ok: exits with the command while a client is connected"

echo "$0: ok"
