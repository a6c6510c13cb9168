# SPDX-License-Identifier: BSD-3-Clause
# A small supervisor for tests of nbdkit's worker mode (nbdkit-worker(7)),
# python3 standard library only: start nbdkit with a SOCK_SEQPACKET
# control socket (and listening sockets) by socket activation, read its
# events, send commands, and act as a router that accepts clients, may
# speak the start of the handshake itself and hands them over.

import base64
import fcntl
import json
import os
import socket
import struct
import subprocess
import threading
import time

NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3e889045565a9
OPT_EXPORT_NAME = 1
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_SET_META_CONTEXT = 10
REP_ACK = 1
REP_META_CONTEXT = 4

TIMEOUT = 30


class Worker:
    """An nbdkit worker.  LISTENERS: (socket, name) pairs passed after
    the control socket.  SNDBUF, if given, is the send buffer of the
    worker's end of the control socket (small: the kernel holds few
    messages for a supervisor that does not read)."""

    def __init__(self, nbdkit, args, listeners=(), stderr_path=None,
                 sndbuf=None):
        self.sup, wrk = socket.socketpair(socket.AF_UNIX,
                                          socket.SOCK_SEQPACKET)
        if sndbuf:
            wrk.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        fds = [wrk.fileno()] + [s.fileno() for s, _ in listeners]
        names = ["control"] + [n for _, n in listeners]

        def place_fds():
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i)
                os.close(fd)

        env = dict(os.environ, LISTEN_FDS=str(len(fds)),
                   LISTEN_FDNAMES=":".join(names))
        self.stderr = open(stderr_path or os.devnull, "w")
        self.proc = subprocess.Popen(
            ["sh", "-c", 'export LISTEN_PID=$$; exec "$0" "$@"',
             nbdkit, "-f"] + list(args),
            preexec_fn=place_fds, close_fds=False, env=env,
            stderr=self.stderr)
        wrk.close()
        self.messages = []          # everything received, in order
        self.taken = set()          # indexes consumed by wait_for
        self.cond = threading.Condition()
        self.closed = False
        self.next_id = 1
        self.reading = threading.Event()    # cleared: stop reading
        self.reading.set()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            self.reading.wait()
            try:
                data = self.sup.recv(1 << 17)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.messages.append(json.loads(data))
                self.cond.notify_all()

    def pause_reading(self):
        """Stop reading the control socket (after at most one more
        message, if the reader is waiting for one)."""
        self.reading.clear()

    def resume_reading(self):
        self.reading.set()

    def wait_for(self, pred, what, timeout=TIMEOUT):
        """The first message not yet taken for which PRED is true."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, m in enumerate(self.messages):
                    if i not in self.taken and pred(m):
                        self.taken.add(i)
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError("no %s within %ds; got %r" %
                                         (what, timeout, self.messages))
                self.cond.wait(left)

    def event(self, type, timeout=TIMEOUT, **match):
        return self.wait_for(
            lambda m: m.get("type") == type and
            all(m.get(k) == v for k, v in match.items()),
            "%s event %r" % (type, match), timeout)

    def send_raw(self, data, fds=()):
        if fds:
            socket.send_fds(self.sup, [data], list(fds))
        else:
            self.sup.send(data)

    def command(self, type, fds=(), **fields):
        with self.cond:
            cid = self.next_id
            self.next_id += 1
        msg = dict(v=1, type=type, id=cid, **fields)
        self.send_raw(json.dumps(msg).encode(), fds)
        return self.wait_for(
            lambda m: m.get("type") == "reply" and m.get("id") == cid,
            "reply to %s" % type)

    def ok(self, type, fds=(), **fields):
        r = self.command(type, fds, **fields)
        assert r["ok"] is True, r
        return r

    def wait_exit(self, timeout=TIMEOUT):
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sup.close()


def unix_listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    return s


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise AssertionError("client closed during the handshake")
        buf += chunk
    return buf


def send_option_reply(sock, option, reply, data=b""):
    sock.sendall(struct.pack(">QIII", REPLY_MAGIC, option, reply, len(data))
                 + data)


class Router:
    """Accepts clients on PATH and hands each to WORKER.  STAGE
    "greeting" hands over at once; "options" sends the greeting, reads
    the client flags, answers STRUCTURED_REPLY and SET_META_CONTEXT
    itself (like nbdkitd's router) and hands over at the first other
    option with its raw bytes.  Each hand-over's state is appended to
    self.handed."""

    def __init__(self, worker, path, stage):
        self.worker, self.stage = worker, stage
        self.listener = unix_listener(path)
        self.handed = []
        self.errors = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                self._hand_over(client)
            except Exception as e:          # reported by check()
                self.errors.append(repr(e))
            client.close()

    def _hand_over(self, client):
        if self.stage == "greeting":
            r = self.worker.ok("hand-over", fds=[client.fileno()],
                               stage="greeting")
            self.handed.append({"stage": "greeting",
                                "connection": r["connection"]})
            return
        client.sendall(struct.pack(">QQH", NBDMAGIC, IHAVEOPT, 3))
        flags, = struct.unpack(">I", recv_exact(client, 4))
        state = {"stage": "options", "client_flags": flags,
                 "structured_replies": False}
        while True:
            hdr = recv_exact(client, 16)
            magic, option, length = struct.unpack(">QII", hdr)
            data = recv_exact(client, length)
            if option == OPT_STRUCTURED_REPLY:
                send_option_reply(client, option, REP_ACK)
                state["structured_replies"] = True
            elif option == OPT_SET_META_CONTEXT:
                nlen, = struct.unpack(">I", data[:4])
                name = data[4:4 + nlen].decode()
                pos = 4 + nlen + 4
                queries = []
                while pos < len(data):
                    qlen, = struct.unpack(">I", data[pos:pos + 4])
                    queries.append(data[pos + 4:pos + 4 + qlen].decode())
                    pos += 4 + qlen
                if "base:allocation" in queries:
                    send_option_reply(client, option, REP_META_CONTEXT,
                                      struct.pack(">I", 1) +
                                      b"base:allocation")
                    state["meta_contexts"] = ["base:allocation"]
                else:
                    state["meta_contexts"] = []
                state["meta_context_export"] = name
                send_option_reply(client, option, REP_ACK)
            else:
                state["option"] = base64.b64encode(hdr + data).decode()
                state["option_number"] = option
                fields = {k: v for k, v in state.items()
                          if k not in ("option_number",)}
                r = self.worker.ok("hand-over", fds=[client.fileno()],
                                   **fields)
                state["connection"] = r["connection"]
                self.handed.append(state)
                return

    def check(self):
        assert not self.errors, self.errors

    def close(self):
        self.listener.close()
