#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The pause filter: 'p' is answered 'P' only after the request in flight
# (slowed by the delay filter) has finished; while paused a new request
# does not reach the plugin (a log filter below shows what does) and
# completes after 'r' ('R'); newlines are ignored, other bytes answered
# 'X'; shutting nbdkit down while a request waits ends promptly and
# removes the socket; bad pause-control= values are refused.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter pause
requires_filter delay
requires_filter log

make_tmpdir
export tmpdir

start_nbdkit -P "$tmpdir/pid" -U "$tmpdir/sock" \
  --filter=pause --filter=log --filter=delay memory 1M \
  pause-control="$tmpdir/ctl" logfile="$tmpdir/log" delay-read=0.3
[ -S "$tmpdir/ctl" ] || fail "no control socket"
export pid=$(cat "$tmpdir/pid")

nbdsh -c '
import os, signal, socket, time
tmpdir = os.environ["tmpdir"]

def log_has(text):
    with open(tmpdir + "/log") as f:
        return text in f.read()

def wait_for(cond, what, limit=20):
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)

def command(s, byte):
    s.sendall(byte)
    return s.recv(1)

h.connect_uri("nbd+unix:///?socket=" + tmpdir + "/sock")
ctl = socket.socket(socket.AF_UNIX)
ctl.connect(tmpdir + "/ctl")
ctl.settimeout(20)

# Pause with a read in flight: "P" only once it has finished.
c1 = h.aio_pread(nbd.Buffer(512), 0)
wait_for(lambda: (h.poll(0), log_has("Read id=1 "))[1], "the first read")
assert command(ctl, b"p\n") == b"P"
assert log_has("...Read id=1 return=0"), "P before the read in flight finished"

# Paused: a new read does not get through.
c2 = h.aio_pread(nbd.Buffer(512), 4096)
deadline = time.monotonic() + 0.3
while time.monotonic() < deadline:
    h.poll(50)
assert not log_has("Read id=2 "), "a request got through while paused"
assert not h.aio_command_completed(c2)

# Resume: it completes.
assert command(ctl, b"r") == b"R"
wait_for(lambda: (h.poll(50), h.aio_command_completed(c2))[1], "the read after resume")
assert h.aio_command_completed(c1)

# Unknown commands; several commands in one message.
assert command(ctl, b"?") == b"X"
ctl.sendall(b"pr")
got = b""
while len(got) < 2:
    got += ctl.recv(2 - len(got))
assert got == b"PR", got
ctl.close()

# A second control client; pause, then stop nbdkit with a read waiting.
ctl = socket.socket(socket.AF_UNIX)
ctl.connect(tmpdir + "/ctl")
ctl.settimeout(20)
assert command(ctl, b"p") == b"P"
c3 = h.aio_pread(nbd.Buffer(512), 8192)
h.poll(50)
start = time.monotonic()
os.kill(int(os.environ["pid"]), signal.SIGTERM)
wait_for(lambda: not os.path.exists("/proc/" + os.environ["pid"]), "nbdkit to exit", 10)
print("exit took %.2f s" % (time.monotonic() - start))
assert time.monotonic() - start < 4, "nbdkit took too long to exit"
assert not os.path.exists(tmpdir + "/ctl"), "the control socket was left behind"
' || fail "pause checks failed"

# Errors before serving.
touch "$tmpdir/file"
for arg in "" "pause-control=$tmpdir/file" \
           "pause-control=$tmpdir/no/such/dir/ctl" \
           "pause-control=/$(printf 'x%.0s' {1..120})"; do
  rc=0
  "$NBDKIT" -U - --filter=pause memory 1M $arg --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "[$arg]: exit status $rc, expected 1"
  grep -q "pause-control" "$tmpdir/err" ||
    fail "[$arg]: the error does not name pause-control: $(cat "$tmpdir/err")"
done
[ -f "$tmpdir/file" ] || fail "an existing file was removed"

echo "$0: ok"
