#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Worker mode (nbdkit-worker(7) "FLOW CONTROL"): a supervisor that stops
# reading the control socket never stalls the worker.  Clients connect
# and disconnect meanwhile and are served; when reading resumes the
# events arrive complete and in order.  With a small queue the oldest
# stats events are dropped first (logged once) and every lost
# connection event is logged.

source "$srcdir/functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires_plugin memory

make_tmpdir
export tmpdir

/usr/bin/python3 - <<'PY'
import json, os, sys, threading, time
sys.path.insert(0, os.environ["srcdir"])
import nbd
from worker_supervisor import Worker, unix_listener

nbdkit = os.environ["NBDKIT"]
tmpdir = os.environ["tmpdir"]
SNDBUF = 4096                   # the kernel holds only a few messages

def serve_clients(path, n, pause_every=None):
    """N clients in turn, each reading the first sector; each must be
    served within 10 s even though the supervisor reads nothing."""
    def client():
        h = nbd.NBD()
        h.connect_unix(path)
        assert h.pread(512, 0) == b"\0" * 512
        h.shutdown()
    for i in range(n):
        t = threading.Thread(target=client, daemon=True)
        t.start()
        t.join(10)
        assert not t.is_alive(), "client %d stalled" % i
        if pause_every and i % pause_every == pause_every - 1:
            time.sleep(1.2)     # let a stats event be queued

def connection_events(w):
    return [m for m in w.messages
            if m["type"] in ("connection-opened", "connection-closed")]

def check_order(events):
    """Ids appear in increasing order; opened comes before closed."""
    state = {}
    last_opened = 0
    for m in events:
        cid = m["connection"]
        if m["type"] == "connection-opened":
            assert cid not in state, ("opened twice", m)
            assert cid > last_opened, ("out of order", events)
            last_opened = cid
            state[cid] = "open"
        else:
            assert state.get(cid) != "closed", ("closed twice", m)
            state[cid] = "closed"
    return state

# 1. The default queue: nothing is lost, nothing stalls.
path = os.path.join(tmpdir, "a.sock")
err = os.path.join(tmpdir, "a.err")
w = Worker(nbdkit, ["memory", "1M"], [(unix_listener(path), "nbd")], err,
           sndbuf=SNDBUF)
try:
    w.event("ready")
    w.pause_reading()
    time.sleep(0.2)
    N = 60
    start = time.monotonic()
    serve_clients(path, N)
    print("%d clients served in %.1fs while the supervisor did not read"
          % (N, time.monotonic() - start))
    assert w.proc.poll() is None
    held = len(connection_events(w))
    assert held < 2 * N, "the supervisor read everything while paused?"
    w.resume_reading()
    w.wait_for(lambda m: m["type"] == "connection-closed" and
               len([e for e in connection_events(w)
                    if e["type"] == "connection-closed"]) == N,
               "all %d connection-closed events" % N)
    events = connection_events(w)
    assert len(events) == 2 * N, events
    state = check_order(events)
    assert list(state.values()) == ["closed"] * N, state
    assert w.ok("stats")["connections_total"] == N
    w.ok("stop")
    assert w.wait_exit() == 0
    log = open(err).read()
    assert "control:" not in log, log
finally:
    w.kill()

# 2. A queue of 16 events: stats go first, lost connection events are
# logged, the rest arrive in order.
path = os.path.join(tmpdir, "b.sock")
err = os.path.join(tmpdir, "b.err")
w = Worker(nbdkit, ["-D", "nbdkit.control_queue=16", "memory", "1M"],
           [(unix_listener(path), "nbd")], err, sndbuf=SNDBUF)
try:
    w.event("ready")
    w.pause_reading()
    time.sleep(0.2)
    N = 40
    serve_clients(path, 6, pause_every=2)   # some stats events queued
    serve_clients(path, N - 6)
    assert w.proc.poll() is None
    w.resume_reading()
    r = w.ok("stats")
    assert r["connections_total"] == N, r
    log = open(err).read().splitlines()
    stats_lines = [i for i, l in enumerate(log)
                   if "dropping the oldest stats events" in l]
    lost = [json.loads(l.split("lost ", 1)[1]) for l in log
            if "the control queue is full: lost " in l]
    assert len(stats_lines) == 1, log
    assert lost, "a full queue of 16 lost no connection event?"
    first_lost = min(i for i, l in enumerate(log) if "lost " in l)
    assert stats_lines[0] < first_lost, "stats were not dropped first"
    events = connection_events(w)
    check_order(events)
    assert len(events) + len(lost) == 2 * N, (len(events), len(lost))
    print("queue of 16: %d connection events delivered, %d lost and logged"
          % (len(events), len(lost)))
    w.ok("stop")
    assert w.wait_exit() == 0
finally:
    w.kill()
print("ok")
PY
