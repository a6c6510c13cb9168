#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# A small HTTP and HTTPS server on loopback for the curl plugin tests.
# It serves one disk image (held in memory) under several paths, each
# behaving differently:
#   /disk              Range reads, HEAD, PUT with Content-Range (writes)
#   /redirect/disk     302 to /disk
#   /auth/disk         needs HTTP Basic authentication (--user/--password)
#   /cookie/disk       needs the Cookie --cookie
#   /setcookie/disk    302 to /cookie/disk, setting that cookie
#   /norange/disk      ignores Range: always 200 with the whole file
#   /noadvertise/disk  no Accept-Ranges in HEAD, but Range works
#   /nohead/disk       HEAD is 405, Range works
#   /nolength/disk     no Content-Length, Content-Range total is "*"
#   /drop/disk         every GET sends its headers and half the data,
#                      then closes the connection
#   /flaky/disk        the first GET of each offset is dropped like /drop
#   /readonly/disk     PUT is 403
# Anything else is 404.  With --unix PATH the same is served over HTTP on
# that Unix socket too.  The chosen ports ("HTTP HTTPS", HTTPS 0 without
# --cert) are written to --port-file once both listeners are ready.
# Every request is logged as one JSON line to --log.

import argparse
import base64
import http.server
import json
import os
import re
import socketserver
import ssl
import sys
import threading

MODES = ("plain", "redirect", "auth", "cookie", "setcookie", "norange",
         "noadvertise", "nohead", "nolength", "drop", "flaky", "readonly")
lock = threading.Lock()
flaky_seen = set()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_request_json(self):
        entry = {"method": self.command, "path": self.path,
                 "client": ("%s:%d" % self.client_address[:2]
                            if isinstance(self.client_address, tuple)
                            else "unix"),
                 "tls": isinstance(self.connection, ssl.SSLSocket),
                 "headers": {k.lower(): v for k, v in self.headers.items()}}
        with lock:
            with open(opts.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def reply(self, code, headers=(), body=b""):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def check_access(self, mode):
        """None if the request may go on, else the reply was sent."""
        if mode == "redirect":
            return self.reply(302, [("Location", "/disk")]) or False
        if mode == "setcookie":
            return self.reply(302, [("Location", "/cookie/disk"),
                                    ("Set-Cookie", opts.cookie + "; Path=/")]
                              ) or False
        if mode == "auth":
            want = base64.b64encode(("%s:%s" % (opts.user, opts.password))
                                    .encode()).decode()
            if self.headers.get("Authorization") != "Basic " + want:
                return self.reply(401, [("WWW-Authenticate",
                                         'Basic realm="disk"')]) or False
        if mode == "cookie":
            cookies = [c.strip() for c in
                       self.headers.get("Cookie", "").split(";")]
            if opts.cookie not in cookies:
                return self.reply(403) or False
        return None

    def route(self):
        m = re.fullmatch(r"/(?:([a-z]+)/)?disk", self.path)
        if m is None:
            self.reply(404, body=b"not found\n")
            return None
        mode = m.group(1) or "plain"
        if mode not in MODES:
            self.reply(404, body=b"not found\n")
            return None
        if self.check_access(mode) is False:
            return None
        return mode

    def do_HEAD(self):
        self.log_request_json()
        mode = self.route()
        if mode is None:
            return
        if mode == "nohead":
            return self.reply(405)
        self.send_response(200)
        if mode not in ("norange", "noadvertise"):
            self.send_header("Accept-Ranges", "bytes")
        if mode != "nolength":
            self.send_header("Content-Length", str(len(disk)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()

    def parse_range(self):
        """(start, end) inclusive, or None for the whole file."""
        value = self.headers.get("Range")
        if value is None:
            return None
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", value.strip())
        if m is None or (m.group(1) == "" and m.group(2) == ""):
            return "bad"
        size = len(disk)
        if m.group(1) == "":
            n = int(m.group(2))
            return (max(0, size - n), size - 1)
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
        if start >= size or end < start:
            return "bad"
        return (start, min(end, size - 1))

    def do_GET(self):
        self.log_request_json()
        mode = self.route()
        if mode is None:
            return
        rng = None if mode == "norange" else self.parse_range()
        if rng == "bad":
            return self.reply(416, [("Content-Range", "bytes */%d" % len(disk))])
        if rng is None:
            return self.reply(200, body=bytes(disk))
        start, end = rng
        with lock:
            body = bytes(disk[start:end + 1])
            drop = mode == "drop" or (mode == "flaky" and
                                      start not in flaky_seen)
            if mode == "flaky":
                flaky_seen.add(start)
        total = "*" if mode == "nolength" else str(len(disk))
        self.send_response(206)
        self.send_header("Content-Range", "bytes %d-%d/%s" % (start, end, total))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if drop:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def do_PUT(self):
        self.log_request_json()
        mode = self.route()
        if mode is None:
            return
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if mode == "readonly":
            return self.reply(403)
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)",
                         self.headers.get("Content-Range", "").strip())
        if m is None:
            return self.reply(400, body=b"Content-Range needed\n")
        start, end = int(m.group(1)), int(m.group(2))
        if end - start + 1 != len(body) or end >= len(disk):
            return self.reply(400, body=b"bad Content-Range\n")
        with lock:
            disk[start:end + 1] = body
        self.reply(204)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def main():
    global opts, disk
    p = argparse.ArgumentParser()
    p.add_argument("--file", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--unix", help="also listen on this Unix socket (HTTP)")
    p.add_argument("--user", default="alice")
    p.add_argument("--password", default="secret")
    p.add_argument("--cookie", default="session=abc123")
    p.add_argument("--lifetime", type=float, default=120)
    opts = p.parse_args()
    with open(opts.file, "rb") as f:
        disk = bytearray(f.read())

    servers = [Server(("127.0.0.1", 0), Handler)]
    if opts.cert:
        tls = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts.cert, opts.key)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        servers.append(tls)
    if opts.unix:
        servers.append(UnixServer(opts.unix, Handler))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    ports = [s.server_address[1] for s in servers
             if isinstance(s.server_address, tuple)] + [0]
    tmp = opts.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (ports[0], ports[1]))
    os.rename(tmp, opts.port_file)
    print("listening on", ports[0], ports[1], flush=True)
    # A safety net: never outlive a test that forgot to kill us.
    threading.Event().wait(opts.lifetime)
    sys.exit(0)


if __name__ == "__main__":
    main()
