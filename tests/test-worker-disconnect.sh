#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Worker mode (nbdkit-worker(7) "disconnect", "list-connections"): while
# nbdcopy is copying from a slow export, list-connections shows it with
# its peer and live counters; disconnect (graceful, then forced) ends
# it: nbdcopy fails with an error instead of hanging, connection-closed
# says "disconnect", and the worker keeps serving.

source "$srcdir/functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires nbdcopy --version
requires_plugin pattern
requires_filter rate

make_tmpdir
export tmpdir

/usr/bin/python3 - <<'PY'
import os, subprocess, sys, time
sys.path.insert(0, os.environ["srcdir"])
from worker_supervisor import Worker, unix_listener

nbdkit = os.environ["NBDKIT"]
tmpdir = os.environ["tmpdir"]
sock = os.path.join(tmpdir, "nbd.sock")
# 64 MiB at 4 MB/s: a copy that takes long enough to interrupt.
w = Worker(nbdkit, ["--filter=rate", "pattern", "64M", "rate=32M"],
           [(unix_listener(sock), "nbd")], os.path.join(tmpdir, "worker.err"))
copies = []
try:
    w.event("ready")
    for force in (False, True):
        copy = subprocess.Popen(["nbdcopy", "-C", "1",
                                 "nbd+unix:///?socket=" + sock, "null:"],
                                stderr=subprocess.DEVNULL)
        copies.append(copy)
        o = w.event("connection-opened")
        peer = "unix:pid=%d,uid=%d,gid=%d" % (copy.pid, os.getuid(),
                                              os.getgid())
        assert o["peer"] == peer, (o, peer)
        # Wait (bounded) until data is flowing.
        deadline = time.monotonic() + 30
        while True:
            conns = w.ok("list-connections")["connections"]
            mine = [c for c in conns if c["connection"] == o["connection"]]
            assert len(mine) == 1, conns
            if mine[0]["bytes_read"] > 0:
                break
            assert time.monotonic() < deadline, "no data within 30s"
            time.sleep(0.1)
        c = mine[0]
        assert c["peer"] == peer and c["export"] == "" and not c["tls"], c
        assert abs(c["since"] / 1e6 - time.time()) < 60, c
        assert c["requests"] > 0, c

        w.ok("disconnect", connection=o["connection"], force=force)
        status = copy.wait(30)
        assert status != 0, "nbdcopy did not notice the disconnection"
        closed = w.event("connection-closed", connection=o["connection"])
        assert closed["reason"] == "disconnect", closed
        assert closed["bytes_read"] > 0, closed
        assert w.proc.poll() is None, "the worker died"

    # An unknown connection is an error; the worker still serves.
    r = w.command("disconnect", connection=999999, force=False)
    assert r["ok"] is False and "999999" in r["error"], r
    st = w.ok("stats")
    assert st["connections_total"] == 2 and st["connections_active"] == 0, st
    assert st["bytes_read"] > 0 and st["requests"]["read"] > 0, st
    out = subprocess.check_output(
        ["/usr/bin/python3", "-c",
         "import nbd,sys; h=nbd.NBD(); h.connect_uri(sys.argv[1]); "
         "print(h.get_size())", "nbd+unix:///?socket=" + sock])
    assert int(out) == 64 << 20, out
finally:
    for c in copies:
        if c.poll() is None:
            c.kill()
    w.kill()
print("ok")
PY
