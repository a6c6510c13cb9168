#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Worker mode (nbdkit-worker(7) "stop", "LIFETIME"): stop while nbdcopy
# is mid-copy (graceful: reply, stopping, connection-closed "stop",
# exit 0; not graceful: the same at once); a graceful stop whose
# timeout expires forces a stuck request and still exits 0; SIGTERM
# sends stopping "signal"; the supervisor going away (its end of the
# control socket closed) stops the worker.

source "$srcdir/functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires nbdcopy --version
requires_plugin pattern
requires_plugin memory
requires_filter rate
requires_filter delay

make_tmpdir
export tmpdir

/usr/bin/python3 - <<'PY'
import os, signal, subprocess, sys, time
sys.path.insert(0, os.environ["srcdir"])
from worker_supervisor import Worker, unix_listener

nbdkit = os.environ["NBDKIT"]
tmpdir = os.environ["tmpdir"]
n = 0

def start(args):
    global n
    n += 1
    sock = os.path.join(tmpdir, "nbd%d.sock" % n)
    w = Worker(nbdkit, args, [(unix_listener(sock), "nbd")],
               os.path.join(tmpdir, "worker%d.err" % n))
    w.event("ready")
    return w, "nbd+unix:///?socket=" + sock

def start_copy(w, uri):
    copy = subprocess.Popen(["nbdcopy", "-C", "1", uri, "null:"],
                            stderr=subprocess.DEVNULL)
    o = w.event("connection-opened")
    deadline = time.monotonic() + 30
    while w.ok("stats")["bytes_read"] == 0:
        assert time.monotonic() < deadline, "no data within 30s"
        time.sleep(0.1)
    return copy, o["connection"]

slow = ["--filter=rate", "pattern", "64M", "rate=32M"]

# Graceful and immediate stop with a client mid-copy.
for graceful in (True, False):
    w, uri = start(slow)
    try:
        copy, conn = start_copy(w, uri)
        r = w.ok("stop", graceful=graceful, timeout=30)
        s = w.event("stopping")
        assert s["reason"] == "stop", s
        assert w.messages.index(r) < w.messages.index(s), w.messages
        c = w.event("connection-closed", connection=conn)
        assert c["reason"] == "stop", c
        assert w.wait_exit(30) == 0
        assert copy.wait(30) != 0, "nbdcopy did not notice the stop"
    finally:
        w.kill()

# A request that outlives the stop timeout is forced.
w, uri = start(["--filter=delay", "memory", "1M", "rdelay=60"])
try:
    reader = subprocess.Popen(
        ["/usr/bin/python3", "-c",
         "import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); "
         "h.pread(512, 0)", uri], stderr=subprocess.DEVNULL)
    w.event("connection-opened")
    t = time.monotonic()
    w.ok("stop", graceful=True, timeout=1)
    assert w.wait_exit(30) == 0
    assert time.monotonic() - t < 20, "the timeout did not force the stop"
    assert reader.wait(30) != 0
finally:
    w.kill()

# SIGTERM.
w, uri = start(["memory", "1M"])
try:
    w.proc.send_signal(signal.SIGTERM)
    assert w.event("stopping")["reason"] == "signal"
    assert w.wait_exit(30) == 0
finally:
    w.kill()

# The supervisor goes away: closing its end stops the worker.
w, uri = start(slow)
try:
    copy, conn = start_copy(w, uri)
    w.sup.shutdown(2)
    w.sup.close()
    assert w.wait_exit(60) == 0
    assert copy.wait(30) != 0
finally:
    w.kill()
print("ok")
PY
