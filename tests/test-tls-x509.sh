#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TLS with X.509 certificates (--tls-certificates): libnbd clients verify
# our server certificate over Unix and TCP; with --tls-verify-peer the
# client certificate's DN is logged (and described in detail with
# -D nbdkit.tls.session=1), and a client without a certificate,
# one whose certificate comes from another CA and one whose certificate
# is revoked (ca-crl.pem) are refused with a logged reason while an open
# connection keeps working.

source "$srcdir/functions.sh"
source "$srcdir/tls-functions.sh"
requires nbdsh --version
requires nbdinfo --version
requires_plugin memory
requires_tls

make_tmpdir
make_tls_material "$tmpdir"
export tmpdir

# --- Server certificate only (clients are not asked for one). ---------
sock=$tmpdir/x509.sock
log=$tmpdir/x509.log
start_nbdkit -P "$tmpdir/x509.pid" -U "$sock" -v --log=stderr \
  --tls=require --tls-certificates="$tmpdir/server" memory 1M 2>"$log"
grep -q "using X.509 certificates from $tmpdir/server\$" "$log" ||
  fail "the certificates directory was not logged"

export sock
nbdsh -c '
import os
t = os.environ["tmpdir"]
h.set_uri_allow_local_file(True)
h.connect_uri("nbds+unix:///?socket=%s&tls-certificates=%s/client"
              "&tls-hostname=localhost" % (os.environ["sock"], t))
assert h.get_tls_negotiated()
h.pwrite(b"x509" * 1024, 8192)
assert h.pread(4096, 8192) == b"x509" * 1024
h.shutdown()
' || fail "nbdsh with certificates failed"
grep -q 'TLS: handshake complete: (TLS1\.3)-.*client (anonymous)$' "$log" ||
  fail "the server did not log an anonymous TLS 1.3 client"

# A client holding only the CA certificate (no certificate of its own).
[ "$(nbdinfo --size "nbds+unix:///?socket=$sock&tls-certificates=$tmpdir/other-client&tls-hostname=localhost")" = 1048576 ] ||
  fail "nbdinfo with only the CA certificate failed"

# TCP with the certificate's IP address.
port=$(free_port)
start_nbdkit -P "$tmpdir/tcp.pid" -i 127.0.0.1 -p "$port" \
  --tls=require --tls-certificates="$tmpdir/server" memory 3M
[ "$(nbdinfo --size "nbds://127.0.0.1:$port/?tls-certificates=$tmpdir/client")" = 3145728 ] ||
  fail "nbds:// over TCP with certificates failed"

# --- --tls-verify-peer -------------------------------------------------
# A certificate from our CA whose key purpose is "TLS server" only.
_tls_signed "$tmpdir/ca" "$tmpdir/server-purpose" client \
  "cn = not-a-client" "tls_www_server" "encryption_key" "signing_key"
vsock=$tmpdir/verify.sock
vlog=$tmpdir/verify.log
start_nbdkit -P "$tmpdir/verify.pid" -U "$vsock" -v --log=stderr \
  -D nbdkit.tls.session=1 \
  --tls=require --tls-certificates="$tmpdir/server" --tls-verify-peer \
  memory 1M 2>"$vlog"
export vsock
nbdsh -c '
import os, subprocess
t = os.environ["tmpdir"]
sock = os.environ["vsock"]
h.set_uri_allow_local_file(True)
h.connect_uri("nbds+unix:///?socket=%s&tls-certificates=%s/client"
              "&tls-hostname=localhost" % (sock, t))
assert h.get_tls_negotiated()
h.pwrite(b"A" * 4096, 0)

def refused(query):
    uri = "nbds+unix:///?socket=%s&tls-hostname=localhost&%s" % (sock, query)
    r = subprocess.run(["nbdinfo", "--size", uri], capture_output=True)
    assert r.returncode != 0, "accepted: %s" % uri
    assert r.stdout == b"", r.stdout

# No client certificate (the client still verifies the server).
os.mkdir(t + "/ca-only")
subprocess.run(["cp", t + "/ca/ca-cert.pem", t + "/ca-only/"], check=True)
refused("tls-certificates=%s/ca-only" % t)
# A certificate signed by another CA (TLS 1.3 clients do not even offer
# it: the server names the CAs it accepts).
refused("tls-certificates=%s/other-client" % t)
# A certificate from our CA that is not meant for TLS clients.
refused("tls-certificates=%s/server-purpose" % t)

assert h.pread(4096, 0) == b"A" * 4096
h.shutdown()
' || fail "verify-peer refusals or the surviving connection misbehaved"
grep -q 'client CN=client1,O=nbdkit test (verified)$' "$vlog" ||
  fail "the verified client DN was not logged"
grep -q "TLS session: version TLS1.3, .*authentication by certificate" "$vlog" &&
  grep -q "TLS session: client certificate: subject \`CN=client1,O=nbdkit test', issuer \`CN=nbdkit test CA'" "$vlog" ||
  fail "-D nbdkit.tls.session=1 did not describe the session"
[ "$(grep -c 'TLS handshake failed: .*--tls-verify-peer requires a client certificate issued by the CA' "$vlog")" = 2 ] ||
  fail "no logged reason for the client without a certificate or from another CA"
grep -q 'TLS handshake failed: client certificate rejected: .*purpose' "$vlog" ||
  fail "no logged reason for the certificate with the wrong purpose"
[ "$(nbdinfo --size "nbds+unix:///?socket=$vsock&tls-certificates=$tmpdir/client&tls-hostname=localhost")" = 1048576 ] ||
  fail "the server stopped serving after refusing clients"

# --- Revocation: ca-crl.pem revoking the client certificate. ------------
cp -r "$tmpdir/server" "$tmpdir/server-crl"
cat >"$tmpdir/crl.info" <<EOF
crl_next_update = 30
crl_number = 1
EOF
certtool --generate-crl --load-ca-privkey "$tmpdir/ca/ca-key.pem" \
  --load-ca-certificate "$tmpdir/ca/ca-cert.pem" \
  --load-certificate "$tmpdir/client/client-cert.pem" \
  --template "$tmpdir/crl.info" --outfile "$tmpdir/server-crl/ca-crl.pem" \
  2>/dev/null || fail "certtool could not make a CRL"
"$NBDKIT" -U - -v --tls=require --tls-certificates="$tmpdir/server-crl" \
  --tls-verify-peer memory 1M --run '
  if nbdinfo --size "nbds+unix:///?socket=$unixsocket&tls-certificates=$tmpdir/client&tls-hostname=localhost"; then
    echo "revoked certificate accepted"; exit 1
  fi
  exit 0' 2>"$tmpdir/crl.log" || fail "revoked client: $(cat "$tmpdir/crl.log")"
grep -q 'loaded the revocation list' "$tmpdir/crl.log" ||
  fail "ca-crl.pem was not loaded"
grep -q 'client certificate rejected: .*revoked' "$tmpdir/crl.log" ||
  fail "no logged reason for the revoked certificate"

echo "$0: ok"
