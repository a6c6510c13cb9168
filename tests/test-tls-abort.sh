#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Clients that break off or garble the TLS handshake, or the TLS stream
# after it (nbd-protocol.md "FORCEDTLS mode": a failed handshake ends the
# session).  Each ends only its own connection, with a logged reason:
# a TLS connection opened first keeps working throughout, a client that
# stalls mid-handshake does not hold up others, and the server still
# accepts new TLS clients afterwards.  Run against an X.509 server and a
# PSK server.

source "$srcdir/functions.sh"
source "$srcdir/tls-functions.sh"
requires nbdinfo --version
requires /usr/bin/python3 -c 'import ssl'
requires_plugin memory
requires_tls

make_tmpdir
make_tls_material "$tmpdir"
psk=$tmpdir/keys.psk

start_nbdkit -P "$tmpdir/x509.pid" -U "$tmpdir/x509.sock" -v --log=stderr \
  --tls=require --tls-certificates="$tmpdir/server" memory 1M \
  2>"$tmpdir/x509.log"
start_nbdkit -P "$tmpdir/psk.pid" -U "$tmpdir/psk.sock" -v --log=stderr \
  --tls=require --tls-psk="$psk" memory 1M 2>"$tmpdir/psk.log"

export CA=$tmpdir/ca/ca-cert.pem
python_nbd - "$tmpdir/x509.sock" "$tmpdir/psk.sock" <<'EOF' ||
import os, socket, ssl, struct, sys, time
import raw_nbd as r

x509_sock, psk_sock = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=os.environ["CA"])

def starttls(path):
    """A raw connection that has sent STARTTLS and got its ACK."""
    c = r.Connection.unix(path)
    c.handshake_newstyle()
    c.expect_option_reply(r.OPT_STARTTLS, b"", r.REP_ACK)
    return c

def tls_client(path):
    """A working client over TLS (X.509 server only: python has no PSK).
    c.raw is a duplicate of the socket for writing bytes outside TLS."""
    c = starttls(path)
    c.raw = socket.socket(fileno=os.dup(c.sock.fileno()))
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
    c.opt_structured_reply()
    c.opt_go()
    return c

def client_hello():
    """The bytes a real TLS client opens with."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello[0] == 0x16, hello[:5]   # TLS handshake record
    return hello

def expect_end(c):
    """The server must end the connection (it may send an alert first)."""
    try:
        c.expect_closed()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        pass
    c.close()

hello = client_hello()

# Each case: (name, function of a STARTTLS'd connection).
def close_at_once(c):
    c.close()

def garbage(c):
    c.send(b"GET / HTTP/1.1\r\nHost: nbd\r\n\r\n")
    expect_end(c)

def half_hello(c):
    c.send(hello[:len(hello) // 2])
    c.close()

def hello_then_close(c):
    c.send(hello)
    time.sleep(0.1)
    c.close()

def plaintext_nbd(c):
    # An option as if STARTTLS had not happened.
    c.send_option(r.OPT_GO, c.info_data())
    expect_end(c)

cases = [close_at_once, garbage, half_hello, hello_then_close, plaintext_nbd]

# X.509 server: one connection stays open across every case.
held = tls_client(x509_sock)
held.write(0, b"H" * 4096)
for case in cases:
    case(starttls(x509_sock))
    assert held.read(0, 4096) == b"H" * 4096, case.__name__

# After a completed handshake: half a request then close, and raw bytes
# that are not TLS records.
c = tls_client(x509_sock)
c.sock.sendall(struct.pack(">IHH", r.REQUEST_MAGIC, 0, r.CMD_READ))
c.close()
c.raw.close()
c = tls_client(x509_sock)
c.raw.sendall(b"\x00" * 64)
expect_end(c)
c.raw.close()

# A client stalled mid-handshake does not hold up another.
stalled = starttls(x509_sock)
stalled.send(hello[:10])
other = tls_client(x509_sock)
assert other.read(0, 4096) == b"H" * 4096
other.disconnect()
stalled.close()

assert held.read(0, 4096) == b"H" * 4096
held.disconnect()
held.raw.close()
other.raw.close()

# PSK server: the same handshake-phase cases (python's ssl cannot do PSK,
# so the health check afterwards is done with nbdinfo by the caller).
for case in cases:
    case(starttls(psk_sock))
EOF
  fail "abort cases failed"

for which in x509 psk; do
  kill -0 "$(cat "$tmpdir/$which.pid")" || fail "the $which server died"
done
# Every broken handshake left a reason in the log: 5 cases, plus the
# stalled client for X.509.
n=$(grep -c 'error: TLS handshake failed' "$tmpdir/x509.log")
[ "$n" -ge 6 ] || fail "expected 6 handshake failures in the X.509 log, got $n"
n=$(grep -c 'error: TLS handshake failed' "$tmpdir/psk.log")
[ "$n" -ge 5 ] || fail "expected 5 handshake failures in the PSK log, got $n"
grep -q 'the client closed the connection' "$tmpdir/x509.log" ||
  fail "a client closing mid-handshake was not explained"

# Both servers still serve real clients.
[ "$(nbdinfo --size "nbds+unix:///?socket=$tmpdir/x509.sock&tls-certificates=$tmpdir/client&tls-hostname=localhost")" = 1048576 ] ||
  fail "the X.509 server no longer serves"
[ "$(nbdinfo --size "nbds+unix://alice@/?socket=$tmpdir/psk.sock&tls-psk-file=$psk")" = 1048576 ] ||
  fail "the PSK server no longer serves"

echo "$0: ok"
