#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Helper of test-hostile-handshake.sh.
#
# usage: hostile_handshake.py timeout SOCKET PID
#   A trickling client and a silent client are dropped after the
#   handshake timeout (the server runs with --handshake-timeout=2) while
#   another client is served.
# usage: hostile_handshake.py crowd SOCKET PID N
#   N silent clients (more than --max-connections) do not stop a new
#   client from being served; threads and fds stay bounded.  Prints the
#   memory per held connection.
# usage: hostile_handshake.py limit SOCKET PID MAX
#   MAX clients in the transmission phase: one more is refused, and
#   once one leaves a new one is served.
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raw_nbd as r  # noqa: E402

mode, path, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def status(field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def nfds():
    return len(os.listdir("/proc/%d/fd" % pid))


def served():
    c = r.Connection.unix(path).negotiate()
    assert c.read(0, 4096) == bytes(4096), "wrong data"
    c.disconnect()


def closed_within(s, seconds):
    """Whether the server closes S within SECONDS (reading and dropping
    anything it sends)."""
    s.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def raw():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


if mode == "timeout":
    silent = raw()
    trickle = raw()
    trickle.settimeout(5)
    greeting = b""
    while len(greeting) < 18:
        greeting += trickle.recv(18 - len(greeting))
    t0 = time.monotonic()
    # Client flags, then an option header, one byte every 0.3 s.
    payload = b"\0\0\0\3" + b"IHAVEOPT" + b"\0\0\0\7" + b"\0\0\1\0"
    dropped = False
    for byte in payload:
        try:
            trickle.send(bytes([byte]))
        except OSError:
            dropped = True
            break
        served()                  # others are served meanwhile
        if closed_within(trickle, 0.3):
            dropped = True
            break
    if not dropped:
        dropped = closed_within(trickle, 10)
    took = time.monotonic() - t0
    assert dropped, "the trickling client was never dropped"
    assert took < 10, "the trickling client was held %.1f s" % took
    assert closed_within(silent, 10), "the silent client was never dropped"
    served()
    print("trickling client dropped after %.1f s" % took)

elif mode == "crowd":
    n = int(sys.argv[4])
    rss0, threads0, fds0 = status("VmRSS"), status("Threads"), nfds()
    held = [raw() for _ in range(n)]
    # Let the server take them all in (bounded).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and status("Threads") < threads0 + min(n, 1000):
        time.sleep(0.1)
    rss1, threads1, fds1 = status("VmRSS"), status("Threads"), nfds()
    # While evicted clients are still closing the server may refuse for
    # a moment; a new client gets in within a bounded time.
    t0 = time.monotonic()
    while True:
        try:
            served()
            break
        except (r.Closed, OSError):
            if time.monotonic() - t0 > 10:
                raise AssertionError("a new client was never served")
            time.sleep(0.05)
    print("a new client was served after %.2f s" % (time.monotonic() - t0))
    live = threads1 - threads0
    print("%d silent clients: server threads %d -> %d, fds %d -> %d, "
          "RSS %d -> %d KiB (%.1f KiB per held connection)"
          % (n, threads0, threads1, fds0, fds1, rss0, rss1,
             (rss1 - rss0) / max(live, 1)))
    # --max-connections (1024 by default), plus at most 64 evicted
    # connections still closing down, plus the server's own threads.
    bound = 1024 + 64 + 8
    # Threads of connections already closed may still be exiting (slow
    # under sanitizers): give them a bounded moment.
    deadline = time.monotonic() + 10
    while status("Threads") > threads0 + bound and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status("Threads") <= threads0 + bound, \
        "threads unbounded: %d" % status("Threads")
    assert fds1 <= fds0 + 3 * bound, "fds unbounded"
    for s in held:
        s.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and nfds() > fds0:
        time.sleep(0.1)
    assert nfds() <= fds0, "fds leaked: %d -> %d" % (fds0, nfds())
    served()

elif mode == "limit":
    limit = int(sys.argv[4])
    held = [r.Connection.unix(path).negotiate() for _ in range(limit)]
    # A reply proves each is in the transmission phase.
    for c in held:
        assert c.read(0, 512) == bytes(512), "held client broken"
    extra = r.Connection.unix(path)
    try:
        extra.negotiate()
        refused = False
    except (r.Closed, OSError):
        refused = True
    assert refused, "a connection beyond --max-connections was served"
    for c in held:
        assert c.read(0, 512) == bytes(512), "held client broken"
    held.pop().disconnect()
    deadline = time.monotonic() + 10
    while True:
        try:
            served()
            break
        except (r.Closed, OSError):
            if time.monotonic() > deadline:
                raise AssertionError("no room after a client left")
            time.sleep(0.1)
    for c in held:
        c.disconnect()
    print("connection %d refused; served again once one left" % (limit + 1))
