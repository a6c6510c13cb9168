#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# An upstream server that dies mid-session never hangs the client: the
# requests in flight and every later request fail with EIO at once, the
# proxy stays up, and a new client gets a new upstream connection.
# Covered: an idle per-client connection, 8 reads in flight (the
# upstream delays reads by 10 s, so only a prompt failure finishes
# early), a shared=true connection seen by two clients, and a command=
# subprocess killed under the proxy.  Every client runs under timeout.

source "$srcdir/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
requires nbdsh --version
requires nbdinfo --version
requires timeout --version
requires_plugin nbd
requires_plugin memory
requires_filter delay

make_tmpdir
export tmpdir
sock=$tmpdir/upstream.sock
export sock

start_upstream ()
{
  rm -f "$sock"
  start_nbdkit -P "$tmpdir/upstream.pid" -U "$sock" "$@"
  upstream_pid=$(cat "$tmpdir/upstream.pid")
  export upstream_pid
}

# The client: write, kill the upstream server, then every request fails
# with EIO.
cat >"$tmpdir/idle.py" <<'PY'
import os, signal, time
h.pwrite(b"before" * 1000, 0)
assert h.pread(6000, 0) == b"before" * 1000
os.kill(int(os.environ["upstream_pid"]), signal.SIGKILL)
time.sleep(0.5)
for what in ("pread", "pwrite", "flush", "pread"):
    try:
        if what == "pread":
            h.pread(512, 0)
        elif what == "pwrite":
            h.pwrite(b"x" * 512, 0)
        else:
            h.flush()
        raise AssertionError("%s succeeded after the upstream died" % what)
    except nbd.Error as e:
        assert e.errno == "EIO", "%s: %s" % (what, e)
PY

# --- An idle per-client connection. -------------------------------------
start_upstream memory 8M
start_nbdkit -P "$tmpdir/proxy.pid" -U "$tmpdir/proxy.sock" -v --log=stderr \
  nbd socket="$sock" 2>"$tmpdir/proxy.log"
proxy="nbd+unix:///?socket=$tmpdir/proxy.sock"
timeout 30 nbdsh -u "$proxy" -c - <"$tmpdir/idle.py" ||
  fail "idle connection: no prompt EIO after the upstream died"
grep -q 'connection to the NBD server was lost\|invalid state' \
  "$tmpdir/proxy.log" || fail "the lost connection was not logged"
kill -0 "$(cat "$tmpdir/proxy.pid")" || fail "the proxy exited"
# A new upstream, a new client: served again.
start_upstream memory 8M
[ "$(timeout 30 nbdinfo --size "$proxy")" = 8388608 ] ||
  fail "a new client was not served by a new upstream server"
kill_pid "$upstream_pid"

# --- Reads in flight when the upstream dies. ----------------------------
start_upstream --filter=delay memory 8M rdelay=10
cat >"$tmpdir/inflight.py" <<'PY'
import os, signal, time
bufs = [nbd.Buffer(4096) for i in range(8)]
cookies = [h.aio_pread(b, i * 4096) for i, b in enumerate(bufs)]
time.sleep(0.5)                 # the reads are now upstream, delayed
assert h.aio_in_flight() == 8, h.aio_in_flight()
t = time.monotonic()
os.kill(int(os.environ["upstream_pid"]), signal.SIGKILL)
while h.aio_in_flight() > 0:
    h.poll(1000)
    assert time.monotonic() - t < 5, "reads still pending 5 s after the kill"
for c in cookies:
    try:
        h.aio_command_completed(c)
        raise AssertionError("a read succeeded")
    except nbd.Error as e:
        assert e.errno == "EIO", e
PY
timeout 30 nbdsh -u "$proxy" -c - <"$tmpdir/inflight.py" ||
  fail "reads in flight did not fail promptly with EIO"

# --- shared=true: both clients see the failure. -------------------------
start_upstream memory 8M
start_nbdkit -P "$tmpdir/shared.pid" -U "$tmpdir/shared.sock" \
  nbd socket="$sock" shared=true
shared="nbd+unix:///?socket=$tmpdir/shared.sock"
export shared
timeout 30 nbdsh -u "$shared" -c '
import os, subprocess
# A second client, connected before the upstream dies, fails after it.
other = nbd.NBD()
other.connect_uri(os.environ["shared"])
other.pwrite(b"y" * 512, 4096)
exec(open(os.environ["tmpdir"] + "/idle.py").read())
try:
    other.pread(512, 4096)
    raise AssertionError("the second client still reads")
except nbd.Error as e:
    assert e.errno == "EIO", e
' || fail "shared=true: no prompt EIO after the upstream died"
kill -0 "$(cat "$tmpdir/shared.pid")" || fail "the shared proxy exited"

# --- command=: the subprocess is killed. --------------------------------
start_nbdkit -P "$tmpdir/cmd.pid" -U "$tmpdir/cmd.sock" \
  nbd command="$NBDKIT" arg=memory arg=8M
cmd_pid=$(cat "$tmpdir/cmd.pid")
upstream_pid=$(pgrep -P "$cmd_pid" | head -1)
[ -n "$upstream_pid" ] || fail "no command= subprocess under the proxy"
export upstream_pid
timeout 30 nbdsh -u "nbd+unix:///?socket=$tmpdir/cmd.sock" \
  -c - <"$tmpdir/idle.py" ||
  fail "command=: no prompt EIO after the subprocess died"
kill -0 "$cmd_pid" || fail "the command= proxy exited"

echo "$0: ok"
