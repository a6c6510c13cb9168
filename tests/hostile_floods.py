#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Helper of test-hostile-floods.sh: floods against one running server,
# checking after each that its memory stays bounded, it leaks no file
# descriptors and another client is still served.
#
# usage: hostile_floods.py SOCKET PID SECONDS
# Prints one line of figures per flood (recorded in bench/RESULTS.md).
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raw_nbd as r  # noqa: E402

sock_path, pid, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
M = 1024 * 1024


def rss():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def nfds():
    return len(os.listdir("/proc/%d/fd" % pid))


def connect():
    return r.Connection.unix(sock_path)


def wait_settled(fds0, what, limit=30):
    """Connections are torn down asynchronously: wait (bounded) for the
    fd count to return to where it was."""
    deadline = time.monotonic() + limit
    while nfds() > fds0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if nfds() > fds0:
        raise AssertionError("%s: %d fds before, %d after\n%s"
                             % (what, fds0, nfds(), server_state()))


def server_state():
    """The server's descriptors and what its threads wait in, so that a
    failure says which connection stayed open and where it is stuck."""
    lines = []
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            lines.append("fd %s -> %s"
                         % (fd, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
        except OSError:
            pass
    for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open("/proc/%d/task/%s/wchan" % (pid, tid)) as f:
                wchan = f.read()
            lines.append("thread %s: %s %s" % (tid, state, wchan))
        except OSError:
            pass
    return "\n".join(lines)


def probe(what):
    """Another client is served correctly; returns its MiB/s (figure
    only, never asserted)."""
    c = connect().negotiate()
    t0 = time.monotonic()
    for i in range(16):
        data = c.read(i * 4 * M, 4 * M)
        if len(data) != 4 * M:
            raise AssertionError("%s: short read" % what)
    dt = time.monotonic() - t0
    c.disconnect()
    return 64 / dt


def check(what, fds0, rss0, allowance):
    wait_settled(fds0, what)
    grown = rss() - rss0
    if grown > allowance:
        raise AssertionError("%s: RSS grew by %d bytes (allowed %d)"
                             % (what, grown, allowance))
    return grown


base_speed = probe("baseline")
fds0, rss0 = nfds(), rss()
print("baseline: %d fds, RSS %d KiB, probe %.0f MiB/s"
      % (fds0, rss0 // 1024, base_speed))

# 1. Thousands of 32 MiB READs pipelined without reading a reply.  The
# server may only hold a bounded amount (its request threads' buffers).
c = connect().negotiate()
c.sock.settimeout(5)
sent = 0
try:
    for i in range(4000):
        c.send_request(r.CMD_READ, (i % 16) * 32 * M, 32 * M)
        sent += 1
except (socket.timeout, OSError):
    pass                          # the server stopped reading: fine
peak = rss() - rss0
speed = probe("during the read flood")
c.close()
# 16 request threads with a 32 MiB buffer each, plus slack.
bound = 16 * 33 * M + 64 * M
if peak > bound:
    raise AssertionError("read flood: RSS grew by %d (bound %d)" % (peak, bound))
grown = check("read flood", fds0, rss0, bound)
print("read flood: %d requests sent, peak growth %d MiB, after %d MiB, "
      "probe during %.0f MiB/s" % (sent, peak // M, grown // M, speed))

# 2. 64 MiB writes cut off mid-payload, many times.
for i in range(30):
    c = connect().negotiate()
    c.send_request(r.CMD_WRITE, 0, 64 * M)
    try:
        c.send(bytes(8 * M))
    except OSError:
        pass
    c.close()
grown = check("cut-off writes", fds0, rss0, 64 * M)
print("cut-off writes: 30 x 64 MiB headers, 8 MiB sent each; "
      "RSS growth after %d MiB; probe %.0f MiB/s"
      % (grown // M, probe("after cut-off writes")))

# 3. Connect/disconnect at a high rate: half complete the handshake,
# half hang up after the greeting, from 4 threads.
stop = time.monotonic() + seconds
counts = [0] * 4
errors = []


def churn(k):
    try:
        while time.monotonic() < stop:
            c = connect()
            if counts[k] % 2:
                c.negotiate()
                c.disconnect()
            else:
                c.recv_exact(8)
                c.close()
            counts[k] += 1
    except Exception as e:          # noqa: BLE001 - reported below
        errors.append(repr(e))


threads = [threading.Thread(target=churn, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
mid_speed = probe("during the churn")
for t in threads:
    t.join(seconds + 60)
if errors:
    raise AssertionError("churn: %s" % errors[:3])
grown = check("churn", fds0, rss0, 32 * M)
print("churn: %d connections in %.0f s (%.0f/s), RSS growth after %d KiB, "
      "probe during %.0f MiB/s"
      % (sum(counts), seconds, sum(counts) / seconds, grown // 1024, mid_speed))
