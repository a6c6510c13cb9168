#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Worker mode (nbdkit-worker(7)): the ready event describes the export
# exactly as nbdinfo --json sees it through a listener of the same
# worker; the stats command answers; a worker that cannot start sends
# error with the text it printed on stderr and exits non-zero.

source "$srcdir/functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires nbdinfo --version
requires_plugin memory
requires_plugin pattern
requires_filter blocksize
requires_filter exportname

make_tmpdir
export tmpdir

/usr/bin/python3 - <<'PY'
import json, os, subprocess, sys
sys.path.insert(0, os.environ["srcdir"])
from worker_supervisor import Worker, unix_listener

nbdkit = os.environ["NBDKIT"]
tmpdir = os.environ["tmpdir"]

def check_ready(name, args):
    sock = os.path.join(tmpdir, name + ".sock")
    w = Worker(nbdkit, args, [(unix_listener(sock), "nbd")],
               os.path.join(tmpdir, name + ".err"))
    try:
        ready = w.event("ready")
        assert w.messages[0] is ready, "ready must be the first message"
        assert ready["v"] == 1 and ready["pid"] == w.proc.pid, ready
        assert ready["tls"] == "off" and ready["structured_replies"], ready
        info = json.loads(subprocess.check_output(
            ["nbdinfo", "--json", "nbd+unix:///?socket=" + sock]))
        e, n = ready["export"], info["exports"][0]
        assert e["name"] == n["export-name"], (e, n)
        assert e["size"] == n["export-size"], (e, n)
        assert e["read_only"] == n["is_read_only"], (e, n)
        assert e["is_rotational"] == n["is_rotational"], (e, n)
        for k in ("can_flush", "can_fua", "can_trim", "can_zero",
                  "can_fast_zero", "can_cache", "can_multi_conn"):
            assert e[k] == n[k], (k, e, n)
        assert ready["structured_replies"] == n["can_df"], (ready, n)
        assert e["can_extents"] == ("base:allocation" in n["contexts"]), (e, n)
        assert e.get("description") == n.get("description"), (e, n)
        if "block_size_minimum" in n:
            assert e["block_size"]["minimum"] == n["block_size_minimum"]
            assert e["block_size"]["preferred"] == n["block_size_preferred"]
            assert e["block_size"]["maximum"] == n["block_size_maximum"]
        # The stats command; the nbdinfo connection was counted.
        r = w.ok("stats")
        assert r["connections_total"] == 1, r
        assert r["connections_active"] == 0, r
        return ready
    finally:
        w.kill()

r = check_ready("memory", ["memory", "1G"])
assert r["plugin"] == "memory" and r["filters"] == [], r
r = check_ready("pattern", ["-r", "--filter=blocksize", "--filter=exportname",
                            "pattern", "10M", "minblock=512",
                            "exportdesc=fixed:a test export"])
assert r["filters"] == ["blocksize", "exportname"], r
assert r["export"]["read_only"] is True, r
assert r["export"]["description"] == "a test export", r

# A worker that cannot start: error first, same text as stderr, exit != 0.
err = os.path.join(tmpdir, "bad.err")
w = Worker(nbdkit, ["memory", "size=notanumber"], (), err)
try:
    e = w.event("error")
    assert w.messages[0] is e, w.messages
    status = w.wait_exit()
    assert status != 0, status
    text = open(err).read().rstrip("\n")
    assert e["message"] == text, (e, text)
    assert "notanumber" in e["message"], e
finally:
    w.kill()

# A listener that is not a listening socket is reported the same way.
import socket
a, b = socket.socketpair()
w = Worker(nbdkit, ["memory", "1M"], [(a, "nbd")], err)
try:
    e = w.event("error")
    assert "is not a listening socket" in e["message"], e
    assert w.wait_exit() != 0
finally:
    w.kill()
print("ok")
PY
