# SPDX-License-Identifier: BSD-3-Clause
# A deliberately permissive NBD client built on the python3 standard
# library only.  Tests use it to put exact bytes on the wire (including
# bytes a real client would refuse to send) and to check the exact bytes
# the server answers with.  Constants follow nbd-protocol.md "Values".

import os
import socket
import struct

# Handshake magics ("Oldstyle negotiation", "Newstyle negotiation").
NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454F5054
CLISERV_MAGIC = 0x00420281861253
OPT_REPLY_MAGIC = 0x3e889045565a9

# Transmission magics ("Request message", "Simple reply message",
# "Structured reply chunk message").
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668e33ef

# Handshake and client flags.
FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1
FLAG_C_FIXED_NEWSTYLE = 1 << 0
FLAG_C_NO_ZEROES = 1 << 1

# Transmission flags.
FLAG_HAS_FLAGS = 1 << 0
FLAG_READ_ONLY = 1 << 1
FLAG_SEND_FLUSH = 1 << 2
FLAG_SEND_FUA = 1 << 3
FLAG_ROTATIONAL = 1 << 4
FLAG_SEND_TRIM = 1 << 5
FLAG_SEND_WRITE_ZEROES = 1 << 6
FLAG_SEND_DF = 1 << 7
FLAG_CAN_MULTI_CONN = 1 << 8
FLAG_SEND_RESIZE = 1 << 9
FLAG_SEND_CACHE = 1 << 10
FLAG_SEND_FAST_ZERO = 1 << 11

# Options.
OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_PEEK_EXPORT = 4
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10

# Option reply types.
REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR_UNSUP = 2**31 + 1
REP_ERR_POLICY = 2**31 + 2
REP_ERR_INVALID = 2**31 + 3
REP_ERR_PLATFORM = 2**31 + 4
REP_ERR_TLS_REQD = 2**31 + 5
REP_ERR_UNKNOWN = 2**31 + 6
REP_ERR_SHUTDOWN = 2**31 + 7
REP_ERR_BLOCK_SIZE_REQD = 2**31 + 8
REP_ERR_TOO_BIG = 2**31 + 9

# NBD_INFO types.
INFO_EXPORT = 0
INFO_NAME = 1
INFO_DESCRIPTION = 2
INFO_BLOCK_SIZE = 3

# Commands and command flags.
CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7

CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1
CMD_FLAG_DF = 1 << 2
CMD_FLAG_REQ_ONE = 1 << 3
CMD_FLAG_FAST_ZERO = 1 << 4

# Structured reply flags and chunk types.
REPLY_FLAG_DONE = 1 << 0
REPLY_TYPE_NONE = 0
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_OFFSET_HOLE = 2
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR = 2**15 + 1
REPLY_TYPE_ERROR_OFFSET = 2**15 + 2

# Error values ("Error values").
EPERM = 1
EIO = 5
ENOMEM = 12
EINVAL = 22
ENOSPC = 28
EOVERFLOW = 75
ENOTSUP = 95
ESHUTDOWN = 108

# Every blocking socket operation is bounded so a misbehaving server
# makes a test fail instead of hang.
DEFAULT_TIMEOUT = 20


class ProtocolError(Exception):
    """The server sent something the protocol does not allow."""


class Closed(Exception):
    """The server closed the connection."""


def name_of(table_prefix, value):
    """Symbolic name of a constant, for readable failure messages."""
    for k, v in globals().items():
        if k.startswith(table_prefix) and v == value and isinstance(v, int):
            return k
    return str(value)


class Reply:
    """One complete reply to a transmission request.

    simple: True for a simple reply.  error: the error value (simple) or
    the first error chunk's error (structured), 0 on success.  data:
    payload of a simple read reply.  chunks: list of (flags, type,
    payload) for a structured reply.
    """

    def __init__(self, cookie, simple, error=0, data=b"", chunks=None):
        self.cookie = cookie
        self.simple = simple
        self.error = error
        self.data = data
        self.chunks = chunks or []

    def __repr__(self):
        kind = "simple" if self.simple else "structured"
        return "<Reply %s cookie=%d error=%s chunks=%s>" % (
            kind, self.cookie, name_of("E", self.error) if self.error else 0,
            [(f, name_of("REPLY_TYPE_", t), len(p)) for f, t, p in self.chunks])

    def content(self, offset, length):
        """Reassemble a structured read from its content chunks."""
        buf = bytearray(length)
        covered = 0
        for _flags, typ, payload in self.chunks:
            if typ == REPLY_TYPE_OFFSET_DATA:
                off, = struct.unpack(">Q", payload[:8])
                data = payload[8:]
                buf[off - offset:off - offset + len(data)] = data
                covered += len(data)
            elif typ == REPLY_TYPE_OFFSET_HOLE:
                off, size = struct.unpack(">QI", payload)
                buf[off - offset:off - offset + size] = bytes(size)
                covered += size
        if covered != length:
            raise ProtocolError("content chunks cover %d of %d bytes"
                                % (covered, length))
        return bytes(buf)


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(DEFAULT_TIMEOUT)
        self.size = None
        self.eflags = None
        self.gflags = None
        self.structured = False
        self.meta_contexts = {}
        self.cookie = 0

    # --- connecting -----------------------------------------------------

    @classmethod
    def unix(cls, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(DEFAULT_TIMEOUT)
        s.connect(path)
        return cls(s)

    @classmethod
    def tcp(cls, host, port):
        s = socket.create_connection((host, int(port)), DEFAULT_TIMEOUT)
        return cls(s)

    @classmethod
    def from_env(cls):
        """Connect to the server named by --run's $unixsocket or $port,
        or by RAW_NBD_SOCKET / RAW_NBD_PORT."""
        path = os.environ.get("RAW_NBD_SOCKET") or os.environ.get("unixsocket")
        if path:
            return cls.unix(path)
        port = os.environ.get("RAW_NBD_PORT") or os.environ.get("port")
        if port:
            return cls.tcp("127.0.0.1", port)
        raise RuntimeError("no server: set RAW_NBD_SOCKET or RAW_NBD_PORT")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # --- raw I/O --------------------------------------------------------

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        parts = []
        while n > 0:
            try:
                b = self.sock.recv(min(n, 1 << 20))
            except ConnectionResetError:
                raise Closed("connection reset by server")
            if not b:
                raise Closed("server closed the connection")
            parts.append(b)
            n -= len(b)
        return b"".join(parts)

    def expect_closed(self, timeout=10):
        """Assert the server closes the connection (EOF or reset) within
        timeout seconds, discarding anything it sends first.  Returns the
        discarded bytes."""
        self.sock.settimeout(timeout)
        junk = b""
        try:
            while True:
                b = self.sock.recv(65536)
                if not b:
                    return junk
                junk += b
                if len(junk) > 1 << 20:
                    raise ProtocolError("server kept sending instead of closing")
        except ConnectionResetError:
            return junk
        except socket.timeout:
            raise ProtocolError("server did not close the connection within %ds"
                                % timeout)
        finally:
            self.sock.settimeout(DEFAULT_TIMEOUT)

    # --- handshake ------------------------------------------------------

    def read_greeting(self):
        """Read NBDMAGIC plus the second magic; returns 'newstyle' or
        'oldstyle' and, for oldstyle, fills size and flags."""
        magic, second = struct.unpack(">QQ", self.recv_exact(16))
        if magic != NBDMAGIC:
            raise ProtocolError("bad initial magic %#x" % magic)
        if second == IHAVEOPT:
            self.gflags, = struct.unpack(">H", self.recv_exact(2))
            return "newstyle"
        if second == CLISERV_MAGIC:
            self.size, flags = struct.unpack(">QI", self.recv_exact(12))
            self.eflags = flags & 0xffff
            self.gflags = flags >> 16
            zeroes = self.recv_exact(124)
            if zeroes != bytes(124):
                raise ProtocolError("oldstyle reserved bytes are not zero")
            return "oldstyle"
        raise ProtocolError("bad second magic %#x" % second)

    def handshake_oldstyle(self):
        style = self.read_greeting()
        if style != "oldstyle":
            raise ProtocolError("expected oldstyle, got %s" % style)

    def handshake_newstyle(self, client_flags=None):
        """Greeting plus client flags.  By default the client echoes
        FIXED_NEWSTYLE and NO_ZEROES if the server offered them."""
        style = self.read_greeting()
        if style != "newstyle":
            raise ProtocolError("expected newstyle, got %s" % style)
        if self.gflags & FLAG_FIXED_NEWSTYLE == 0:
            raise ProtocolError("server did not set NBD_FLAG_FIXED_NEWSTYLE")
        if self.gflags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
            raise ProtocolError("server set unknown handshake flags %#x"
                                % self.gflags)
        if client_flags is None:
            client_flags = self.gflags & (FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)
        self.cflags = client_flags
        self.send(struct.pack(">I", client_flags))

    # --- options --------------------------------------------------------

    def send_option(self, opt, data=b"", length=None):
        if length is None:
            length = len(data)
        self.send(struct.pack(">QII", IHAVEOPT, opt, length) + data)

    def recv_option_reply(self, expect_opt=None, max_len=1 << 20):
        magic, opt, rtype, length = struct.unpack(">QIII", self.recv_exact(20))
        if magic != OPT_REPLY_MAGIC:
            raise ProtocolError("bad option reply magic %#x" % magic)
        if expect_opt is not None and opt != expect_opt:
            raise ProtocolError("option reply for option %d, expected %d"
                                % (opt, expect_opt))
        if length > max_len:
            raise ProtocolError("option reply length %d is too big" % length)
        return opt, rtype, self.recv_exact(length)

    def option(self, opt, data=b""):
        """Send an option and collect replies up to the final one.
        Returns (list of non-final replies, final (type, data))."""
        self.send_option(opt, data)
        replies = []
        while True:
            _, rtype, payload = self.recv_option_reply(opt)
            if rtype in (REP_SERVER, REP_INFO, REP_META_CONTEXT):
                replies.append((rtype, payload))
                continue
            return replies, (rtype, payload)

    def expect_option_reply(self, opt, data, expected_type):
        """Send one option, assert the final reply type, return replies."""
        replies, (rtype, payload) = self.option(opt, data)
        if rtype != expected_type:
            raise ProtocolError(
                "option %s: expected reply %s, got %s (%r)"
                % (name_of("OPT_", opt), name_of("REP_", expected_type),
                   name_of("REP_", rtype), payload[:200]))
        return replies, payload

    @staticmethod
    def info_data(name=b"", infos=()):
        return (struct.pack(">I", len(name)) + name +
                struct.pack(">H", len(infos)) +
                b"".join(struct.pack(">H", i) for i in infos))

    @staticmethod
    def meta_data(name=b"", queries=()):
        return (struct.pack(">I", len(name)) + name +
                struct.pack(">I", len(queries)) +
                b"".join(struct.pack(">I", len(q)) + q for q in queries))

    @staticmethod
    def parse_infos(replies):
        """Decode NBD_REP_INFO payloads into a dict keyed by info type."""
        infos = {}
        for rtype, payload in replies:
            if rtype != REP_INFO:
                raise ProtocolError("unexpected reply %s in INFO/GO"
                                    % name_of("REP_", rtype))
            if len(payload) < 2:
                raise ProtocolError("NBD_REP_INFO shorter than 2 bytes")
            itype, = struct.unpack(">H", payload[:2])
            body = payload[2:]
            if itype == INFO_EXPORT:
                if len(payload) != 12:
                    raise ProtocolError("NBD_INFO_EXPORT length %d != 12"
                                        % len(payload))
                infos[itype] = struct.unpack(">QH", body)
            elif itype == INFO_BLOCK_SIZE:
                if len(payload) != 14:
                    raise ProtocolError("NBD_INFO_BLOCK_SIZE length %d != 14"
                                        % len(payload))
                infos[itype] = struct.unpack(">III", body)
            else:
                infos[itype] = body
        return infos

    def opt_structured_reply(self):
        self.expect_option_reply(OPT_STRUCTURED_REPLY, b"", REP_ACK)
        self.structured = True

    def opt_set_meta_context(self, queries=(b"base:allocation",), name=b""):
        replies, _ = self.expect_option_reply(
            OPT_SET_META_CONTEXT, self.meta_data(name, queries), REP_ACK)
        self.meta_contexts = {}
        for rtype, payload in replies:
            if rtype != REP_META_CONTEXT:
                raise ProtocolError("unexpected %s" % name_of("REP_", rtype))
            cid, = struct.unpack(">I", payload[:4])
            self.meta_contexts[payload[4:]] = cid
        return self.meta_contexts

    def opt_info(self, name=b"", infos=(), opt=OPT_INFO):
        replies, _ = self.expect_option_reply(
            opt, self.info_data(name, infos), REP_ACK)
        got = self.parse_infos(replies)
        if INFO_EXPORT not in got:
            raise ProtocolError("no NBD_INFO_EXPORT before NBD_REP_ACK")
        self.size, self.eflags = got[INFO_EXPORT]
        return got

    def opt_go(self, name=b"", infos=()):
        return self.opt_info(name, infos, opt=OPT_GO)

    def opt_export_name(self, name=b""):
        self.send_option(OPT_EXPORT_NAME, name)
        self.size, self.eflags = struct.unpack(">QH", self.recv_exact(10))
        if not self.cflags & FLAG_C_NO_ZEROES:
            if self.recv_exact(124) != bytes(124):
                raise ProtocolError("EXPORT_NAME padding is not zero")

    def negotiate(self, structured=True, meta=False, name=b""):
        """A normal fixed newstyle handshake ending in NBD_OPT_GO."""
        self.handshake_newstyle()
        if structured:
            self.opt_structured_reply()
            if meta:
                self.opt_set_meta_context(name=name)
        self.opt_go(name)
        return self

    # --- transmission ---------------------------------------------------

    def send_request(self, cmd, offset=0, length=0, flags=0, data=b"",
                     cookie=None, magic=REQUEST_MAGIC):
        if cookie is None:
            self.cookie += 1
            cookie = self.cookie
        self.send(struct.pack(">IHHQQI", magic, flags, cmd, cookie, offset,
                              length) + data)
        return cookie

    def recv_reply(self, cookie, read_length=None):
        """Read one whole reply.  read_length: for a simple reply to a
        read, the payload length expected on success."""
        magic, = struct.unpack(">I", self.recv_exact(4))
        if magic == SIMPLE_REPLY_MAGIC:
            error, got_cookie = struct.unpack(">IQ", self.recv_exact(12))
            if got_cookie != cookie:
                raise ProtocolError("reply cookie %d, expected %d"
                                    % (got_cookie, cookie))
            data = b""
            if error == 0 and read_length:
                data = self.recv_exact(read_length)
            return Reply(cookie, True, error, data)
        if magic != STRUCTURED_REPLY_MAGIC:
            raise ProtocolError("bad reply magic %#x" % magic)
        if not self.structured:
            raise ProtocolError("structured reply without negotiation")
        chunks = []
        error = 0
        while True:
            if chunks:
                magic, = struct.unpack(">I", self.recv_exact(4))
                if magic != STRUCTURED_REPLY_MAGIC:
                    raise ProtocolError("bad chunk magic %#x" % magic)
            flags, typ, got_cookie, length = struct.unpack(
                ">HHQI", self.recv_exact(16))
            if got_cookie != cookie:
                raise ProtocolError("chunk cookie %d, expected %d"
                                    % (got_cookie, cookie))
            payload = self.recv_exact(length)
            chunks.append((flags, typ, payload))
            if typ & 0x8000:
                if length < 6:
                    raise ProtocolError("error chunk shorter than 6 bytes")
                err, = struct.unpack(">I", payload[:4])
                if err == 0:
                    raise ProtocolError("error chunk with error 0")
                if not error:
                    error = err
            elif typ == REPLY_TYPE_NONE and length != 0:
                raise ProtocolError("NBD_REPLY_TYPE_NONE with payload")
            elif typ == REPLY_TYPE_NONE and not flags & REPLY_FLAG_DONE:
                raise ProtocolError("NBD_REPLY_TYPE_NONE without DONE")
            if flags & REPLY_FLAG_DONE:
                return Reply(cookie, False, error, chunks=chunks)

    def request(self, cmd, offset=0, length=0, flags=0, data=b""):
        cookie = self.send_request(cmd, offset, length, flags, data)
        rl = length if cmd == CMD_READ else None
        return self.recv_reply(cookie, rl)

    def read(self, offset, length, flags=0):
        """Read and return the bytes, raising on an error reply."""
        r = self.request(CMD_READ, offset, length, flags)
        if r.error:
            raise ProtocolError("read failed: %s" % name_of("E", r.error))
        if r.simple:
            return r.data
        return r.content(offset, length)

    def write(self, offset, data, flags=0):
        r = self.request(CMD_WRITE, offset, len(data), flags, data)
        if r.error:
            raise ProtocolError("write failed: %s" % name_of("E", r.error))

    def disconnect(self):
        self.send_request(CMD_DISC)
        self.expect_closed()
        self.close()

    def block_status(self, offset, length, flags=0):
        """Returns {context id: [(length, flags), ...]}."""
        r = self.request(CMD_BLOCK_STATUS, offset, length, flags)
        if r.error:
            raise ProtocolError("block status failed: %s"
                                % name_of("E", r.error))
        out = {}
        for _f, typ, payload in r.chunks:
            if typ == REPLY_TYPE_BLOCK_STATUS:
                cid, = struct.unpack(">I", payload[:4])
                descs = payload[4:]
                out[cid] = [struct.unpack(">II", descs[i:i + 8])
                            for i in range(0, len(descs), 8)]
        return out


def check_server_healthy(connect, write_ok=True):
    """Open a fresh connection, negotiate, do a read (and a write/read
    back if write_ok), disconnect cleanly.  Raises on any failure."""
    c = connect()
    try:
        c.negotiate(structured=True)
        if not c.eflags & FLAG_HAS_FLAGS:
            raise ProtocolError("NBD_FLAG_HAS_FLAGS not set")
        n = min(c.size, 4096)
        if write_ok and not c.eflags & FLAG_READ_ONLY and n > 0:
            pattern = os.urandom(n)
            c.write(0, pattern)
            if c.read(0, n) != pattern:
                raise ProtocolError("read back differs from write")
        elif n > 0:
            c.read(0, n)
        c.disconnect()
    finally:
        c.close()


if __name__ == "__main__":
    # `raw_nbd.py check`: health check against $unixsocket / $port.
    import sys
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        check_server_healthy(Connection.from_env)
        print("server is healthy")
    else:
        print("usage: raw_nbd.py check", file=sys.stderr)
        sys.exit(2)
