#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Plugins see the client's TLS identity: nbdkit_is_tls, the PSK username
# (nbdkit_peer_tls_username) and, under --tls-verify-peer, the client
# certificate's subject and issuer (nbdkit_peer_tls_dn/_issuer_dn).
source "$srcdir/functions.sh"
source "$srcdir/tls-functions.sh"
requires_tls
requires cc --version
requires nbdsh --version
make_tmpdir
make_tls_material "$tmpdir"

cc -shared -fPIC -Wall -Werror -Wno-unused-parameter \
  -I"$abs_top_srcdir/include" -I"$abs_top_builddir" \
  "$srcdir/plugins/peer.c" -o "$tmpdir/nbdkit-peer-plugin.so" ||
  fail "could not build the peer test plugin"
plugin=$tmpdir/nbdkit-peer-plugin.so

read_disk ()
{
  nbdsh -c "
h.set_uri_allow_local_file(True)
h.connect_uri('$1')
import sys
sys.stdout.write(h.pread(4096, 0).rstrip(b'\0').decode())
"
}

# PSK: the username, no certificate.
"$NBDKIT" -U - --tls=require --tls-psk="$tmpdir/keys.psk" "$plugin" --run "
  $(declare -f read_disk)
  read_disk \"nbds+unix://bob@/?socket=\$unixsocket&tls-psk-file=$tmpdir/keys.psk\"
" >"$tmpdir/psk.out" || fail "PSK connection failed"
grep -qx 'tls=1' "$tmpdir/psk.out" && grep -qx 'user=bob' "$tmpdir/psk.out" &&
  grep -qx 'dn=' "$tmpdir/psk.out" ||
  fail "PSK identity wrong: $(cat "$tmpdir/psk.out")"

# Certificates with --tls-verify-peer: the subject and issuer DNs.
"$NBDKIT" -U - --tls=require --tls-verify-peer \
  --tls-certificates="$tmpdir/server" "$plugin" --run "
  $(declare -f read_disk)
  read_disk \"nbds+unix:///?socket=\$unixsocket&tls-certificates=$tmpdir/client\"
" >"$tmpdir/x509.out" || fail "certificate connection failed"
grep -qx 'tls=1' "$tmpdir/x509.out" && grep -qx 'user=' "$tmpdir/x509.out" &&
  grep -q '^dn=.*CN=client1' "$tmpdir/x509.out" &&
  grep -q '^issuer=.*CN=nbdkit test CA' "$tmpdir/x509.out" ||
  fail "certificate identity wrong: $(cat "$tmpdir/x509.out")"

# Plaintext under --tls=on: no identity at all.
"$NBDKIT" -U - --tls=on --tls-psk="$tmpdir/keys.psk" "$plugin" --run '
  nbdsh -u "nbd+unix:///?socket=$unixsocket" -c "
import sys
sys.stdout.write(h.pread(4096, 0).rstrip(b\"\\0\").decode())"
' >"$tmpdir/plain.out" || fail "plaintext connection failed"
grep -qx 'tls=0' "$tmpdir/plain.out" && grep -qx 'user=' "$tmpdir/plain.out" ||
  fail "plaintext identity wrong: $(cat "$tmpdir/plain.out")"

echo "$0: ok"
