#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The three TLS modes (nbd-protocol.md "Server-side requirements"):
# --tls=off answers STARTTLS with NBD_REP_ERR_POLICY; --tls=on serves
# plaintext and TLS clients; --tls=require (FORCEDTLS) answers every
# option but STARTTLS and ABORT with NBD_REP_ERR_TLS_REQD, closes on
# EXPORT_NAME, and after the upgrade never sends TLS_REQD and refuses a
# second STARTTLS.  Also: plugins and filters are told which connections
# use TLS, $tls and $uri in --run, TLS 1.3 by default, --tls-priority and
# -D nbdkit.tls.log.

source "$srcdir/functions.sh"
source "$srcdir/tls-functions.sh"
requires nbdsh --version
requires nbdinfo --version
requires /usr/bin/python3 -c 'import ssl'
requires_plugin memory
requires_filter log
requires_tls

make_tmpdir
make_tls_material "$tmpdir"
certs=$tmpdir/server
psk=$tmpdir/keys.psk

start_nbdkit -P "$tmpdir/off.pid" -U "$tmpdir/off.sock" memory 1M
start_nbdkit -P "$tmpdir/on.pid" -U "$tmpdir/on.sock" \
  --tls=on --tls-certificates="$certs" memory 1M
start_nbdkit -P "$tmpdir/req.pid" -U "$tmpdir/req.sock" -v --log=stderr \
  --tls=require --tls-certificates="$certs" memory 1M 2>"$tmpdir/req.log"
start_nbdkit -P "$tmpdir/req12.pid" -U "$tmpdir/req12.sock" \
  --tls=require --tls-certificates="$certs" \
  --tls-priority=NORMAL:-VERS-ALL:+VERS-TLS1.2 memory 1M

# Raw option-phase checks, with python's ssl module as the TLS client.
export OFF=$tmpdir/off.sock ON=$tmpdir/on.sock REQ=$tmpdir/req.sock \
  REQ12=$tmpdir/req12.sock CA=$tmpdir/ca/ca-cert.pem
python_nbd - <<'EOF' || fail "raw TLS mode checks failed"
import os, ssl, struct
import raw_nbd as r

def connect(path):
    c = r.Connection.unix(os.environ[path])
    c.handshake_newstyle()
    return c

def starttls(c):
    """STARTTLS, then a verified TLS handshake; returns the TLS version."""
    c.expect_option_reply(r.OPT_STARTTLS, b"", r.REP_ACK)
    ctx = ssl.create_default_context(cafile=os.environ["CA"])
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
    return c.sock.version()

def serve_check(c):
    """Finish the handshake and do I/O."""
    c.opt_structured_reply()
    c.opt_go()
    assert c.size == 1048576, c.size
    c.write(0, b"tls!" * 128)
    assert c.read(0, 512) == b"tls!" * 128
    c.disconnect()

# --tls=off: STARTTLS is refused by policy and plaintext goes on.
c = connect("OFF")
c.expect_option_reply(r.OPT_STARTTLS, b"", r.REP_ERR_POLICY)
serve_check(c)

# --tls=on: both plaintext and TLS clients are served.
serve_check(connect("ON"))
c = connect("ON")
assert starttls(c) == "TLSv1.3", c.sock.version()
serve_check(c)

# --tls=require before the upgrade: TLS_REQD for everything but
# STARTTLS and ABORT, including unknown options and INFO/GO.
c = connect("REQ")
for opt, data in ((r.OPT_LIST, b""), (r.OPT_INFO, c.info_data()),
                  (r.OPT_GO, c.info_data()), (r.OPT_STRUCTURED_REPLY, b""),
                  (r.OPT_SET_META_CONTEXT, c.meta_data(b"", [b"base:allocation"])),
                  (99, b"junk")):
    c.expect_option_reply(opt, data, r.REP_ERR_TLS_REQD)
c.expect_option_reply(r.OPT_ABORT, b"", r.REP_ACK)
c.expect_closed()
c.close()

# EXPORT_NAME cannot be refused with an error, so the server closes.
c = connect("REQ")
c.send_option(r.OPT_EXPORT_NAME, b"")
assert c.expect_closed() == b"", "server answered EXPORT_NAME without TLS"
c.close()

# After the upgrade: no TLS_REQD, a second STARTTLS is invalid, and
# negotiation state from before the upgrade is gone.
c = connect("REQ")
assert starttls(c) == "TLSv1.3", c.sock.version()
c.expect_option_reply(r.OPT_STARTTLS, b"", r.REP_ERR_INVALID)
replies, _ = c.expect_option_reply(r.OPT_LIST, b"", r.REP_ACK)
assert replies and replies[0][0] == r.REP_SERVER, replies
serve_check(c)

# EXPORT_NAME after the upgrade enters transmission.
c = connect("REQ")
starttls(c)
c.opt_export_name(b"")
assert c.size == 1048576
assert c.read(0, 512) == b"tls!" * 128  # written by serve_check
c.disconnect()

# --tls-priority restricted to TLS 1.2.
c = connect("REQ12")
assert starttls(c) == "TLSv1.2", c.sock.version()
serve_check(c)
EOF
grep -q 'client asked for an export without TLS' "$tmpdir/req.log" ||
  fail "EXPORT_NAME without TLS was not logged"

# libnbd: a plaintext client of --tls=require is told TLS is required.
if nbdinfo --size "nbd+unix:///?socket=$tmpdir/req.sock" 2>"$tmpdir/plain.err"; then
  fail "plaintext client accepted under --tls=require"
fi
grep -q 'requires TLS' "$tmpdir/plain.err" ||
  fail "the plaintext client's error does not mention TLS: $(cat "$tmpdir/plain.err")"

# libnbd under --tls=on: what was negotiated is what the client asked,
# and the filter chain is told (is_tls, as nbdkit_is_tls() reports it):
# the log filter records tls=0 then tls=1.
start_nbdkit -P "$tmpdir/pskon.pid" -U "$tmpdir/pskon.sock" \
  --tls=on --tls-psk="$psk" --filter=log memory 1M logfile="$tmpdir/conn.log"
export sock=$tmpdir/pskon.sock psk
nbdsh -c '
import os
sock, psk = os.environ["sock"], os.environ["psk"]
h.connect_uri("nbd+unix:///?socket=%s" % sock)
assert not h.get_tls_negotiated()
h.pwrite(b"p" * 512, 0)
h.shutdown()
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri("nbds+unix://alice@/?socket=%s&tls-psk-file=%s" % (sock, psk))
assert h.get_tls_negotiated()
assert h.pread(512, 0) == b"p" * 512
h.shutdown()
' || fail "libnbd plaintext and TLS clients of --tls=on"
grep -o 'Connect export="" tls=[01]' "$tmpdir/conn.log" >"$tmpdir/conns"
printf 'Connect export="" tls=%s\n' 0 1 | cmp -s - "$tmpdir/conns" ||
  fail "plugins were not told which connection uses TLS: $(cat "$tmpdir/conn.log")"

# Captive: $uri uses nbds:// whenever TLS is on, and $tls is 1 or 2 for
# on and require (tests/test-captive-variables.sh covers --tls=off).
check_captive ()
{
  local want_tls=$1 want_scheme=$2
  shift 2
  "$NBDKIT" -U - "$@" memory 1M --run 'echo "${tls:--} $uri"' \
    >"$tmpdir/captive" || fail "captive run with $* failed"
  read -r got_tls got_uri <"$tmpdir/captive"
  [ "$want_tls" = "" ] || [ "$got_tls" = "$want_tls" ] ||
    fail "with $*: \$tls=$got_tls"
  case "$got_uri" in
    "$want_scheme"://*) ;;
    *) fail "with $*: \$uri=$got_uri" ;;
  esac
}
check_captive "" nbd+unix
check_captive "" nbd+unix --tls=off
check_captive 1 nbds+unix --tls=on --tls-psk="$psk"
check_captive 2 nbds+unix --tls=require --tls-psk="$psk"

# -D nbdkit.tls.log=N shows GnuTLS's own messages with -v.
"$NBDKIT" -U - -v -D nbdkit.tls.log=2 --tls=require --tls-psk="$psk" \
  memory 1M --run 'nbdinfo --size "nbds+unix://alice@/?socket=$unixsocket&tls-psk-file=$psk"' \
  >/dev/null 2>"$tmpdir/tlslog" || fail "run with -D nbdkit.tls.log failed"
grep -q 'debug: gnutls 2: ' "$tmpdir/tlslog" ||
  fail "-D nbdkit.tls.log=2 showed no GnuTLS messages"
if grep -q 'was not used' "$tmpdir/tlslog"; then
  fail "-D nbdkit.tls.log was reported as unused"
fi

echo "$0: ok"
