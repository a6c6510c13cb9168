# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the TLS tests (tests/test-tls-*.sh), sourced after
# functions.sh.  All key material is made fresh in the test's tmpdir.
#
# requires_tls               skip unless nbdkit has TLS and certtool/psktool
#                            exist
# make_tls_material DIR      a CA and, signed by it, a server certificate
#                            (DIR/server) and a client certificate
#                            (DIR/client); a second CA with its own client
#                            certificate (DIR/other-client); a PSK file
#                            DIR/keys.psk with users alice and bob and
#                            DIR/wrong.psk with a different key for alice
# free_port                  print a TCP port that was free a moment ago
# python_nbd SCRIPT ARGS...  run a python script with tests/ on sys.path

requires_tls ()
{
  requires certtool --version
  requires psktool --version
  local config
  config=$("$NBDKIT" --dump-config) || fail "nbdkit --dump-config failed"
  grep -qx 'tls=yes' <<<"$config" || skip "this nbdkit was built without TLS"
}

# _tls_key FILE: a new private key (ECDSA: quick to generate).
_tls_key ()
{
  certtool --generate-privkey --key-type=ecdsa --outfile "$1" 2>/dev/null ||
    fail "certtool could not make a private key"
  chmod 0600 "$1"
}

# _tls_ca DIR CN: a self-signed CA (DIR/ca-cert.pem, DIR/ca-key.pem).
_tls_ca ()
{
  mkdir -p "$1"
  _tls_key "$1/ca-key.pem"
  cat >"$1/ca.info" <<EOF
cn = $2
ca
cert_signing_key
crl_signing_key
expiration_days = 30
EOF
  certtool --generate-self-signed --load-privkey "$1/ca-key.pem" \
    --template "$1/ca.info" --outfile "$1/ca-cert.pem" 2>/dev/null ||
    fail "certtool could not make the CA $2"
}

# _tls_signed CADIR OUTDIR NAME TEMPLATE-LINES...: NAME-key.pem and
# NAME-cert.pem signed by the CA in CADIR, plus a copy of its CA cert.
_tls_signed ()
{
  local ca=$1 out=$2 name=$3
  shift 3
  mkdir -p "$out"
  _tls_key "$out/$name-key.pem"
  printf '%s\n' "$@" "expiration_days = 30" >"$out/$name.info"
  certtool --generate-certificate \
    --load-ca-certificate "$ca/ca-cert.pem" --load-ca-privkey "$ca/ca-key.pem" \
    --load-privkey "$out/$name-key.pem" --template "$out/$name.info" \
    --outfile "$out/$name-cert.pem" 2>/dev/null ||
    fail "certtool could not make the $name certificate"
  cp "$ca/ca-cert.pem" "$out/"
}

make_tls_material ()
{
  local d=$1
  _tls_ca "$d/ca" "nbdkit test CA"
  _tls_signed "$d/ca" "$d/server" server \
    "organization = nbdkit test" "cn = localhost" "dns_name = localhost" \
    "ip_address = 127.0.0.1" "tls_www_server" "encryption_key" "signing_key"
  _tls_signed "$d/ca" "$d/client" client \
    "organization = nbdkit test" "cn = client1" "tls_www_client" \
    "encryption_key" "signing_key"
  # A client whose certificate comes from a CA the server does not trust
  # (it trusts the real server's CA so that only the server's check fails).
  _tls_ca "$d/other-ca" "some other CA"
  _tls_signed "$d/other-ca" "$d/other-client" client \
    "organization = elsewhere" "cn = intruder" "tls_www_client" \
    "encryption_key" "signing_key"
  cp "$d/ca/ca-cert.pem" "$d/other-client/ca-cert.pem"

  psktool -u alice -p "$d/keys.psk" >/dev/null 2>&1 &&
    psktool -u bob -p "$d/keys.psk" >/dev/null 2>&1 ||
    fail "psktool could not make the PSK file"
  grep -q '^alice:[0-9a-f]\{2,\}$' "$d/keys.psk" ||
    fail "unexpected psktool output: $(sed 's/:.*/:.../' "$d/keys.psk")"
  psktool -u alice -p "$d/wrong.psk" >/dev/null 2>&1 ||
    fail "psktool could not make the second PSK file"
}

free_port ()
{
  /usr/bin/python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

python_nbd ()
{
  PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$srcdir" /usr/bin/python3 "$@"
}
