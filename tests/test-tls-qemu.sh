#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# qemu's NBD client over TLS: qemu-img and qemu-io with
# --object tls-creds-x509 (checked by --tls-verify-peer, over Unix and
# TCP) and --object tls-creds-psk, plus a qemu client holding the wrong
# key being refused.

source "$srcdir/functions.sh"
source "$srcdir/tls-functions.sh"
requires qemu-img --version
requires qemu-io --version
requires_plugin memory
requires_tls

make_tmpdir
make_tls_material "$tmpdir"

# qemu's PSK credentials read DIR/keys.psk.
mkdir "$tmpdir/qemu-psk" "$tmpdir/qemu-wrong"
cp "$tmpdir/keys.psk" "$tmpdir/qemu-psk/keys.psk"
cp "$tmpdir/wrong.psk" "$tmpdir/qemu-wrong/keys.psk"

x509=$tmpdir/x509.sock
psk=$tmpdir/psk.sock
port=$(free_port)
start_nbdkit -P "$tmpdir/x509.pid" -U "$x509" -v --log=stderr \
  --tls=require --tls-certificates="$tmpdir/server" --tls-verify-peer \
  memory 4M 2>"$tmpdir/x509.log"
start_nbdkit -P "$tmpdir/tcp.pid" -i 127.0.0.1 -p "$port" \
  --tls=require --tls-certificates="$tmpdir/server" --tls-verify-peer \
  memory 4M
start_nbdkit -P "$tmpdir/psk.pid" -U "$psk" -v --log=stderr \
  --tls=require --tls-psk="$tmpdir/keys.psk" memory 4M 2>"$tmpdir/psk.log"

x509_obj="tls-creds-x509,id=tls0,endpoint=client,dir=$tmpdir/client"
psk_obj="tls-creds-psk,id=tls0,endpoint=client,dir=$tmpdir/qemu-psk,username=alice"
wrong_obj="tls-creds-psk,id=tls0,endpoint=client,dir=$tmpdir/qemu-wrong,username=alice"
x509_opts="driver=nbd,server.type=unix,server.path=$x509,tls-creds=tls0,tls-hostname=localhost"
tcp_opts="driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$port,tls-creds=tls0"
psk_opts="driver=nbd,server.type=unix,server.path=$psk,tls-creds=tls0"

# check_size OBJECT IMAGE-OPTS: qemu-img info sees the 4M disk.
check_size ()
{
  qemu-img info --output=json --object "$1" --image-opts "$2" \
    >"$tmpdir/info.json" || fail "qemu-img info ($2) failed"
  grep -q '"virtual-size": 4194304' "$tmpdir/info.json" ||
    fail "qemu-img info ($2): $(cat "$tmpdir/info.json")"
}

# check_io OBJECT IMAGE-OPTS BYTE: write a pattern and read it back.
check_io ()
{
  qemu-io --object "$1" --image-opts "$2" \
    -c "write -P $3 65536 131072" -c "read -P $3 65536 131072" \
    >"$tmpdir/io.out" 2>&1 || fail "qemu-io ($2) failed: $(cat "$tmpdir/io.out")"
  if grep -qi 'fail\|error\|mismatch' "$tmpdir/io.out"; then
    fail "qemu-io ($2) reported: $(cat "$tmpdir/io.out")"
  fi
}

check_size "$x509_obj" "$x509_opts"
check_io "$x509_obj" "$x509_opts" 0x5a
check_size "$x509_obj" "$tcp_opts"
check_io "$x509_obj" "$tcp_opts" 0x3c
grep -q 'TLS: handshake complete: .*client CN=client1,O=nbdkit test (verified)$' \
  "$tmpdir/x509.log" || fail "qemu's client certificate was not verified"

check_size "$psk_obj" "$psk_opts"
check_io "$psk_obj" "$psk_opts" 0xa5
grep -q 'TLS: handshake complete: .*PSK user alice$' "$tmpdir/psk.log" ||
  fail "qemu's PSK user was not logged"

# The wrong key is refused, and the server carries on.
if qemu-img info --object "$wrong_obj" --image-opts "$psk_opts" \
     >/dev/null 2>&1; then
  fail "qemu-img with the wrong key was accepted"
fi
grep -q 'TLS handshake failed: .*right key' "$tmpdir/psk.log" ||
  fail "the wrong key was not logged"
check_size "$psk_obj" "$psk_opts"

echo "$0: ok"
