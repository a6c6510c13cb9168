#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A tiny systemd-like service manager for testing nbdkitd --fd-store.

  fdstore_supervisor.py run SOCKET [--socket-unit=PORT] -- COMMAND [ARGS...]
      Start COMMAND as the service with NOTIFY_SOCKET set, implementing
      READY=1, FDSTORE=1 with SCM_RIGHTS and FDNAME=, FDSTOREREMOVE=1.
      The service is restarted with the stored descriptors passed by
      socket activation (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID = the
      service's own pid).  Like systemd it is the subreaper of what the
      service leaves behind (the workers).  Commands come on the Unix
      stream socket SOCKET.  With --socket-unit, like a socket unit the
      supervisor also listens on 127.0.0.1:PORT and passes that socket
      first, named "nbd", at every start (it is not in the store).

  fdstore_supervisor.py ctl SOCKET COMMAND
      wait-ready   answer once the service has sent READY=1
      restart      SIGTERM the service, wait for it to exit, start it
                   again with the store; answer after its READY=1 with
                   "ok pid=P fds=N previous=STATUS t_term=T t_exit=T
                   t_ready=T" (STATUS: the exit status of the one before)
                   (CLOCK_MONOTONIC seconds)
      term         SIGTERM the service and wait for it, keeping the store:
                   "ok daemon=STATUS fds=N" (the service is down)
      kill         the same with SIGKILL (a crash)
      start        start it again (after term or kill), answer after READY=1
      stop         SIGTERM the service, wait for it, close the store (as
                   systemctl stop), wait for the remaining processes and
                   answer "ok daemon=STATUS workers=PID:STATUS,..."
      status       "ok pid=P fds=N names=..."
    Prints the answer; exits 0 if it starts with "ok".
"""

import ctypes
import os
import selectors
import signal
import socket
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36
MAX_FDS = 253


class Supervisor:
    def __init__(self, ctl_path, argv, unit_port=None):
        self.argv = argv
        self.unit = None
        if unit_port is not None:
            self.unit = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.unit.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.unit.bind(("127.0.0.1", unit_port))
            self.unit.listen(128)
        self.store = []              # (name, fd) in the order stored
        self.pid = None
        self.phase = "starting"      # starting, running, restart, stop, drain
        self.waiters = []            # (connection, command)
        self.exits = {}              # pid -> status of other processes
        self.times = {}
        self.daemon_status = None
        self.drain_deadline = None
        self.terminated = False
        self.dir = tempfile.mkdtemp(prefix="fdstore-sup.")
        self.notify_path = os.path.join(self.dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.setblocking(False)
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl.bind(ctl_path)
        self.ctl.listen(16)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.notify, selectors.EVENT_READ, "notify")
        self.sel.register(self.ctl, selectors.EVENT_READ, "ctl")

    # --- the service -------------------------------------------------
    def start(self):
        passed = ([("nbd", self.unit.fileno())] if self.unit else []) + \
            self.store
        fds = [fd for _, fd in passed]
        names = ":".join(name for name, _ in passed)
        pid = os.fork()
        if pid == 0:
            try:
                high = [os.dup(fd) for fd in fds]
                base = 3 + len(fds) + 64
                high = [os.dup2(h, base + i, inheritable=False)
                        for i, h in enumerate(high)]
                for i, h in enumerate(high):
                    os.dup2(h, 3 + i, inheritable=True)
                os.closerange(3 + len(fds), 65536)
                env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
                for k in ("LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID"):
                    env.pop(k, None)
                if fds:
                    env.update(LISTEN_FDS=str(len(fds)),
                               LISTEN_FDNAMES=names,
                               LISTEN_PID=str(os.getpid()))
                os.execvpe(self.argv[0], self.argv, env)
            except BaseException as e:
                print("fdstore_supervisor: exec:", e, file=sys.stderr)
            os._exit(127)
        self.pid = pid
        self.phase = "starting"

    def on_notify(self):
        while True:
            try:
                data, anc, _, _ = self.notify.recvmsg(
                    4096, socket.CMSG_SPACE(MAX_FDS * 4),
                    socket.MSG_CMSG_CLOEXEC)
            except BlockingIOError:
                return
            fds = []
            for level, typ, payload in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    n = len(payload) // 4
                    fds += [int.from_bytes(payload[4 * i:4 * i + 4],
                                           sys.byteorder) for i in range(n)]
            self.handle_message(data.decode(errors="replace"), fds)

    def handle_message(self, text, fds):
        fields = {}
        for line in text.split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        name = fields.get("FDNAME", "stored")
        if fields.get("FDSTORE") == "1":
            self.store += [(name, fd) for fd in fds]
            fds = []
        for fd in fds:
            os.close(fd)
        if fields.get("FDSTOREREMOVE") == "1":
            for n, fd in [x for x in self.store if x[0] == name]:
                os.close(fd)
            self.store = [x for x in self.store if x[0] != name]
        if fields.get("READY") == "1" and self.phase == "starting":
            self.phase = "running"
            self.times["ready"] = time.monotonic()
            self.answer(["wait-ready", "restart", "start"], self.ready_text())

    def ready_text(self):
        t = " ".join("t_%s=%.6f" % kv for kv in sorted(self.times.items()))
        prev = "" if self.daemon_status is None else \
            " previous=%d" % self.daemon_status
        return "ok pid=%d fds=%d%s %s" % (self.pid, len(self.store), prev, t)

    # --- processes ----------------------------------------------------
    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False        # nothing left
            if pid == 0:
                return True
            status = os.waitstatus_to_exitcode(status)
            if pid == self.pid:
                self.service_exited(status)
            else:
                self.exits[pid] = status

    def service_exited(self, status):
        self.on_notify()            # what it said last (FDSTOREREMOVE)
        self.pid = None
        self.daemon_status = status
        self.times["exit"] = time.monotonic()
        if self.phase == "restart":
            self.start()
        elif self.phase in ("term", "kill"):
            self.phase = "down"
            self.answer(["term", "kill"], "ok daemon=%d fds=%d" % (status,
                                                           len(self.store)))
        elif self.phase == "stop":
            for _, fd in self.store:
                os.close(fd)
            self.store = []
            self.phase = "drain"
            self.drain_deadline = time.monotonic() + 60
        else:
            self.answer(None, "error: the service exited with status %d"
                        % status)
            self.phase = "dead"

    def check_drained(self, children_left):
        if self.phase != "drain":
            return False
        if children_left and time.monotonic() < self.drain_deadline:
            return False
        workers = ",".join("%d:%d" % kv for kv in sorted(self.exits.items()))
        self.answer(["stop"], "ok daemon=%s workers=%s%s" % (
            self.daemon_status, workers,
            " (some still run)" if children_left else ""))
        return True

    # --- commands ----------------------------------------------------
    def answer(self, commands, text):
        keep = []
        for conn, cmd in self.waiters:
            if commands is None or cmd in commands:
                try:
                    conn.sendall((text + "\n").encode())
                except OSError:
                    pass
                conn.close()
            else:
                keep.append((conn, cmd))
        self.waiters = keep

    def on_ctl(self):
        conn, _ = self.ctl.accept()
        conn.settimeout(10)
        cmd = conn.recv(256).decode().strip()
        if cmd == "status":
            names = ",".join(n for n, _ in self.store)
            conn.sendall(("ok pid=%s fds=%d names=%s\n" % (
                self.pid, len(self.store), names)).encode())
            conn.close()
        elif cmd == "wait-ready" and self.phase == "running":
            conn.sendall((self.ready_text() + "\n").encode())
            conn.close()
        elif cmd == "start" and self.phase == "down":
            self.waiters.append((conn, cmd))
            self.times = {"start": time.monotonic()}
            self.start()
        elif cmd in ("wait-ready", "restart", "stop", "term", "kill") \
                and self.pid:
            self.waiters.append((conn, cmd))
            if cmd != "wait-ready" and self.phase == "running":
                self.phase = cmd
                self.times = {"term": time.monotonic()}
                os.kill(self.pid, signal.SIGKILL if cmd == "kill"
                        else signal.SIGTERM)
        else:
            conn.sendall(("error: cannot %s now (%s)\n" % (
                cmd, self.phase)).encode())
            conn.close()

    def on_sigterm(self, *args):
        self.terminated = True

    def give_up(self):
        """SIGTERM to the supervisor (test clean-up): end the service and
        close the store, so the workers stop as after systemctl stop."""
        if self.pid:
            os.kill(self.pid, signal.SIGTERM)
        for _, fd in self.store:
            os.close(fd)
        self.store = []
        return 1

    def run(self):
        signal.signal(signal.SIGTERM, self.on_sigterm)
        self.start()
        while not self.terminated:
            for key, _ in self.sel.select(timeout=0.05):
                if key.data == "notify":
                    self.on_notify()
                else:
                    self.on_ctl()
            left = self.reap()
            if self.check_drained(left) or self.phase == "dead":
                return 0 if self.phase == "drain" else 1
        return self.give_up()


def ctl(path, command):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(90)
    s.connect(path)
    s.sendall(command.encode() + b"\n")
    out = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        out += b
    text = out.decode().strip()
    print(text)
    return 0 if text.startswith("ok") else 1


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "ctl":
        return ctl(sys.argv[2], sys.argv[3])
    args = sys.argv[3:]
    unit_port = None
    if args and args[0].startswith("--socket-unit="):
        unit_port = int(args.pop(0).split("=", 1)[1])
    if len(sys.argv) >= 5 and sys.argv[1] == "run" and args[0] == "--":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        return Supervisor(sys.argv[2], args[1:], unit_port).run()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
