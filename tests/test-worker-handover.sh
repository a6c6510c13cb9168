#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Worker mode (nbdkit-worker(7) "hand-over"): a test router accepts
# clients and hands them to the worker before the greeting, or after
# answering STRUCTURED_REPLY and SET_META_CONTEXT itself with the next
# option (GO, INFO) passed as raw bytes.  nbdsh, nbdcopy and qemu-img
# get the right data; INFO then GO works on a handed-over socket; each
# connection's opened/closed events carry the hand-over's id, the
# client's pid as peer, and its byte and request counters.

source "$srcdir/functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires nbdcopy --version
requires qemu-img --version
requires_plugin file

make_tmpdir
export tmpdir
dd if=/dev/urandom of="$tmpdir/ref" bs=1M count=8 status=none
cp "$tmpdir/ref" "$tmpdir/disk"

/usr/bin/python3 - <<'PY'
import os, subprocess, sys
sys.path.insert(0, os.environ["srcdir"])
from worker_supervisor import Worker, Router

nbdkit = os.environ["NBDKIT"]
tmpdir = os.environ["tmpdir"]
ref = open(os.path.join(tmpdir, "ref"), "rb").read()
size = len(ref)

w = Worker(nbdkit, ["file", os.path.join(tmpdir, "disk")], (),
           os.path.join(tmpdir, "worker.err"))
routers = []
try:
    w.event("ready")

    def check_events(router, before, pid, bytes_read=None,
                     bytes_written=None):
        router.check()
        handed = router.handed[before:]
        assert handed, "the client was never handed over"
        uid, gid = os.getuid(), os.getgid()
        total = {"bytes_read": 0, "bytes_written": 0, "requests": 0}
        for h in handed:
            o = w.event("connection-opened", connection=h["connection"])
            assert o["peer"] == "unix:pid=%d,uid=%d,gid=%d" % (pid, uid, gid), o
            assert o["export"] == "" and o["tls"] is False, o
            c = w.event("connection-closed", connection=h["connection"])
            assert c["reason"] == "client", c
            for k in total:
                total[k] += c[k]
        # nbdcopy and qemu-img may open more than one connection.
        if bytes_read is not None:
            assert total["bytes_read"] == bytes_read, (total, bytes_read)
        if bytes_written is not None:
            assert total["bytes_written"] == bytes_written, total
        assert total["requests"] > 0, total
        return handed

    def run(cmd):
        p = subprocess.Popen(cmd)
        assert p.wait(60) == 0, cmd
        return p.pid

    nbdsh_script = """
import nbd, sys
h = nbd.NBD()
h.add_meta_context("base:allocation")
h.connect_uri(sys.argv[1])
ref = open(sys.argv[2], "rb").read()
assert h.get_size() == len(ref)
assert h.can_meta_context("base:allocation")
buf = b"".join(h.pread(1 << 20, off) for off in range(0, len(ref), 1 << 20))
assert buf == ref, "data differs"
h.pwrite(ref[:4096], 0)
seen = []
h.block_status(len(ref), 0, lambda ctx, off, ents, err: seen.append(ctx))
assert seen == ["base:allocation"], seen
h.shutdown()
"""

    for stage in ("greeting", "options"):
        sock = os.path.join(tmpdir, stage + ".sock")
        r = Router(w, sock, stage)
        routers.append(r)
        uri = "nbd+unix:///?socket=" + sock

        # nbdsh: read everything, write a block, block status.
        n = len(r.handed)
        pid = run(["/usr/bin/python3", "-c", nbdsh_script, uri,
                   os.path.join(tmpdir, "ref")])
        h = check_events(r, n, pid, bytes_read=size, bytes_written=4096)
        if stage == "options":
            assert h[0]["option_number"] == 7, h      # NBD_OPT_GO
            assert h[0]["structured_replies"] is True, h
            assert h[0]["meta_contexts"] == ["base:allocation"], h

        # nbdcopy.
        n = len(r.handed)
        out = os.path.join(tmpdir, "copy-" + stage)
        pid = run(["nbdcopy", uri, out])
        assert open(out, "rb").read() == ref, "nbdcopy data differs"
        check_events(r, n, pid, bytes_read=size, bytes_written=0)
        os.unlink(out)

        # qemu-img.
        n = len(r.handed)
        pid = run(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri, out])
        assert open(out, "rb").read() == ref, "qemu-img data differs"
        check_events(r, n, pid)
        os.unlink(out)

        # INFO, then GO read by the worker itself.
        n = len(r.handed)
        pid = run(["/usr/bin/python3", "-c", """
import nbd, sys
h = nbd.NBD()
h.set_opt_mode(True)
h.connect_uri(sys.argv[1])
h.opt_info()
assert h.get_size() == int(sys.argv[2])
h.opt_go()
assert h.pread(512, 0) == open(sys.argv[3], "rb").read(512)
h.shutdown()
""", uri, str(size), os.path.join(tmpdir, "ref")])
        h = check_events(r, n, pid, bytes_read=512)
        if stage == "options":
            assert h[0]["option_number"] == 6, h      # NBD_OPT_INFO

    # The worker's totals add up.
    st = w.ok("stats")
    assert st["connections_active"] == 0, st
    assert st["requests"]["write"] == 2, st
    assert st["bytes_written"] == 2 * 4096, st
    assert st["errors"] == 0, st
finally:
    for r in routers:
        r.close()
    w.kill()
print("ok")
PY
