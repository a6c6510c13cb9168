#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Worker mode (nbdkit-worker(7) "Messages"): garbage, oversized, wrongly
# versioned, unknown and malformed messages on the control socket each
# get one error reply and are logged; descriptors sent with them are
# closed; the worker keeps working throughout.

source "$srcdir/functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires_plugin memory

make_tmpdir
export tmpdir

/usr/bin/python3 - <<'PY'
import base64, json, os, socket, struct, sys, time
sys.path.insert(0, os.environ["srcdir"])
from worker_supervisor import Worker, unix_listener

nbdkit = os.environ["NBDKIT"]
tmpdir = os.environ["tmpdir"]
err = os.path.join(tmpdir, "worker.err")
w = Worker(nbdkit, ["memory", "1M"], (), err)

def reply_to(raw, fds=(), expect=None):
    before = len(w.messages)
    w.send_raw(raw, fds)
    r = w.wait_for(lambda m: m.get("type") == "reply" and
                   w.messages.index(m) >= before, "reply")
    assert r["ok"] is False, r
    if expect:
        assert expect in r["error"], (r, expect)
    return r

def fds():
    d = "/proc/%d/fd" % w.proc.pid
    out = {}
    for n in os.listdir(d):
        try:
            out[n] = os.readlink(os.path.join(d, n))
        except OSError:
            pass                # closed while listed
    return out

def check_no_fd_leak(before):
    """The worker holds no more descriptors than BEFORE.  One opened
    for a moment (a file under /proc or /sys read by a thread) is waited
    out, for up to 10 s."""
    for i in range(100):
        now = fds()
        if len(now) <= len(before):
            return
        time.sleep(0.1)
    raise AssertionError("descriptors leaked: before %r, after %r"
                         % (before, now))

try:
    w.event("ready")
    fds_before = fds()
    reply_to(b"this is not json", expect="not valid JSON")
    reply_to(b"\x00\x01\x02", expect="NUL")
    reply_to(b"[1, 2, 3]", expect="not a JSON object")
    reply_to(b'{"v":1,"type":"stats"' + b" " * 70000 + b"}",
             expect="larger than")
    reply_to(json.dumps({"v": 2, "type": "stats", "id": 5}).encode(),
             expect="version")
    reply_to(json.dumps({"type": "stats"}).encode(), expect="version")
    reply_to(json.dumps({"v": 1}).encode(), expect="type")
    r = reply_to(json.dumps({"v": 1, "type": "frob", "id": 9}).encode(),
                 expect="unknown command 'frob'")
    assert r["id"] == 9, r
    reply_to(json.dumps({"v": 1, "type": "stats", "id": "x"}).encode(),
             expect="'id'")
    reply_to(json.dumps({"v": 1, "type": "disconnect"}).encode(),
             expect="'connection'")
    reply_to(json.dumps({"v": 1, "type": "disconnect", "connection": 1,
                         "force": "yes"}).encode(), expect="'force'")
    reply_to(json.dumps({"v": 1, "type": "stop", "timeout": -1}).encode(),
             expect="'timeout'")
    reply_to(json.dumps({"v": 1, "type": "reload-tls"}).encode(),
             expect="TLS is not enabled")

    # hand-over: without a descriptor, with a pipe, with bad state.
    reply_to(json.dumps({"v": 1, "type": "hand-over",
                         "stage": "greeting"}).encode(),
             expect="exactly one descriptor")
    rp, wp = os.pipe()
    reply_to(json.dumps({"v": 1, "type": "hand-over",
                         "stage": "greeting"}).encode(), [rp],
             expect="not a stream socket")
    bad = [({"stage": "nowhere"}, "unknown stage"),
           ({"stage": "options"}, "client_flags"),
           ({"stage": "options", "client_flags": 128}, "not offered"),
           ({"stage": "options", "client_flags": 3}, "'option'"),
           ({"stage": "options", "client_flags": 3, "option": "!!!"},
            "base64"),
           ({"stage": "options", "client_flags": 3,
             "option": base64.b64encode(b"x" * 16).decode()}, "IHAVEOPT"),
           ({"stage": "options", "client_flags": 3,
             "option": base64.b64encode(
                 struct.pack(">QII", 0x49484156454F5054, 7, 100)).decode()},
            "exactly one option"),
           ({"stage": "options", "client_flags": 3, "structured_replies":
             False, "meta_contexts": ["base:allocation"],
             "option": base64.b64encode(
                 struct.pack(">QII", 0x49484156454F5054, 7, 0)).decode()},
            "structured replies"),
           ({"stage": "options", "client_flags": 3, "structured_replies":
             True, "meta_contexts": ["qemu:dirty-bitmap:x"],
             "option": base64.b64encode(
                 struct.pack(">QII", 0x49484156454F5054, 7, 0)).decode()},
            "not one this worker has")]
    for fields, expect in bad:
        a, b = socket.socketpair()
        msg = dict(v=1, type="hand-over", **fields)
        reply_to(json.dumps(msg).encode(), [a.fileno()], expect=expect)
        a.close()
        # The worker closed its copy: the peer sees end of file.
        b.settimeout(10)
        assert b.recv(1) == b"", "the worker kept a refused descriptor"
        b.close()

    # A descriptor sent with a command that takes none is closed too.
    r = w.command("stats", fds=[wp])
    assert r["ok"] is True, r
    os.close(wp)
    os.set_blocking(rp, True)
    assert os.read(rp, 1) == b"", "the worker kept a stray descriptor"
    os.close(rp)
    check_no_fd_leak(fds_before)

    # Still alive and serving commands; everything was logged.
    assert w.proc.poll() is None
    w.ok("stats")
    assert w.ok("list-connections")["connections"] == []
    log = open(err).read()
    assert "control: unknown command 'frob'" in log, log
    assert "not valid JSON" in log, log
finally:
    w.kill()
print("ok")
PY
