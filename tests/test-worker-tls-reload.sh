#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Worker mode (nbdkit-worker(7) "reload-tls"): after the certificate in
# --tls-certificates is replaced and reload-tls is sent, the next TLS
# handshake presents the new certificate, while a TLS connection made
# before keeps working; a broken certificate is refused by name and the
# previous credentials stay in use.

source "$srcdir/functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires certtool --version
requires_plugin memory
if [[ "$("$NBDKIT" --dump-config)" != *$'\ntls=yes'* ]]; then
  skip "this nbdkit was built without TLS"
fi

make_tmpdir
export tmpdir
pki=$tmpdir/pki
mkdir -p "$pki/server" "$pki/client"

cat > "$pki/ca.info" <<EOT
cn = worker test CA
ca
cert_signing_key
expiration_days = 30
EOT
certtool --generate-privkey --key-type=ecdsa > "$pki/ca-key.pem" 2>/dev/null
certtool --generate-self-signed --load-privkey "$pki/ca-key.pem" \
  --template "$pki/ca.info" --outfile "$pki/ca-cert.pem" 2>/dev/null
for n in 1 2; do
  cat > "$pki/server$n.info" <<EOT
organization = worker test server $n
cn = localhost
dns_name = localhost
tls_www_server
signing_key
expiration_days = 30
EOT
  certtool --generate-privkey --key-type=ecdsa > "$pki/server$n-key.pem" \
    2>/dev/null
  certtool --generate-certificate --load-ca-certificate "$pki/ca-cert.pem" \
    --load-ca-privkey "$pki/ca-key.pem" --load-privkey "$pki/server$n-key.pem" \
    --template "$pki/server$n.info" --outfile "$pki/server$n-cert.pem" \
    2>/dev/null
done
cp "$pki/ca-cert.pem" "$pki/server/"
cp "$pki/ca-cert.pem" "$pki/client/"
cp "$pki/server1-cert.pem" "$pki/server/server-cert.pem"
cp "$pki/server1-key.pem" "$pki/server/server-key.pem"
[ -s "$pki/server2-cert.pem" ] || fail "certtool did not make certificates"

/usr/bin/python3 - <<'PY'
import os, shutil, socket, ssl, struct, subprocess, sys
sys.path.insert(0, os.environ["srcdir"])
from worker_supervisor import Worker, unix_listener, recv_exact

nbdkit = os.environ["NBDKIT"]
tmpdir = os.environ["tmpdir"]
pki = os.path.join(tmpdir, "pki")
sock = os.path.join(tmpdir, "nbd.sock")
uri = ("nbds+unix:///?socket=%s&tls-certificates=%s/client"
       "&tls-hostname=localhost" % (sock, pki))

def der(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())

def presented_certificate():
    """STARTTLS by hand and return the certificate the server shows."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock)
    recv_exact(s, 18)
    s.sendall(struct.pack(">I", 3))
    s.sendall(struct.pack(">QII", 0x49484156454F5054, 5, 0))   # STARTTLS
    magic, opt, rep, length = struct.unpack(">QIII", recv_exact(s, 20))
    assert rep == 1, rep
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(os.path.join(pki, "ca-cert.pem"))
    t = ctx.wrap_socket(s)
    cert = t.getpeercert(binary_form=True)
    t.sendall(struct.pack(">QII", 0x49484156454F5054, 2, 0))   # ABORT
    t.close()
    return cert

w = Worker(nbdkit, ["--tls=require", "--tls-certificates=%s/server" % pki,
                    "memory", "1M"],
           [(unix_listener(sock), "nbd")], os.path.join(tmpdir, "worker.err"))
old = None
try:
    r = w.event("ready")
    assert r["tls"] == "require", r
    assert presented_certificate() == der(pki + "/server1-cert.pem")

    # A TLS client that stays connected across the reload.
    old = subprocess.Popen(["/usr/bin/python3", "-c", """
import nbd, sys
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri(sys.argv[1])
assert h.get_tls_negotiated()
h.pwrite(b"before", 0)
print("connected", flush=True)
sys.stdin.readline()
assert h.pread(6, 0) == b"before"
h.pwrite(b"after!", 0)
assert h.pread(6, 0) == b"after!"
h.shutdown()
print("done", flush=True)
""", uri], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert old.stdout.readline() == "connected\n"
    o = w.event("connection-opened")
    assert o["tls"] is True, o

    # New certificate, reload: the next handshake shows it.
    for f in ("cert", "key"):
        shutil.copy(os.path.join(pki, "server2-%s.pem" % f),
                    os.path.join(pki, "server", "server-%s.pem" % f))
    w.ok("reload-tls")
    assert presented_certificate() == der(pki + "/server2-cert.pem")

    # The old connection still works.
    old.stdin.write("go\n")
    old.stdin.flush()
    assert old.stdout.readline() == "done\n"
    assert old.wait(30) == 0

    # A broken certificate: an error naming the file, old ones stay.
    with open(os.path.join(pki, "server", "server-cert.pem"), "w") as f:
        f.write("not a certificate\n")
    r = w.command("reload-tls")
    assert r["ok"] is False and "server-cert.pem" in r["error"], r
    assert presented_certificate() == der(pki + "/server2-cert.pem")
    out = subprocess.check_output(
        ["/usr/bin/python3", "-c",
         "import nbd,sys; h=nbd.NBD(); h.set_uri_allow_local_file(True); "
         "h.connect_uri(sys.argv[1]); print(h.pread(6, 0).decode())", uri])
    assert out == b"after!\n", out
finally:
    if old and old.poll() is None:
        old.kill()
    w.kill()
print("ok")
PY
