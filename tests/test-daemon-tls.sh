#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd exports with TLS on their own listeners: X.509 (nbdinfo with
# nbds+unix://) and PSK (nbdsh with tls-psk-file, TLS identity shown by
# ListConnections); plaintext is refused; TLS on the shared listener is
# InvalidParameter and stores nothing.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/tls-functions.sh"
source "$srcdir/daemon-functions.sh"
requires_tls
requires which nbdinfo
requires /usr/bin/python3 -c 'import nbd'
requires_plugin memory
daemon_setup
make_tls_material "$D/tls"
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port

# TLS on the shared listener is refused (no own listener, or shared too).
for listeners in "" "'listeners': <['shared', 'unix:$D/both.sock']>, "; do
  expect_error org.nbdkit.Daemon1.Error.InvalidParameter \
      add_export t memory '@as []' '[("size", "1M")]' \
      "{$listeners'tls': <'require'>, 'tls-certificates': <'$D/tls/server'>}" |
    grep -q 'shared' || fail "the error does not say why"
done
[ -z "$(ls "$D/state")" ] || fail "a refused export was stored"

# X.509 on its own unix listener.
add_export x509 memory '@as []' '[("size", "1M")]' \
    "{'listeners': <['unix:$D/x.sock']>, 'tls': <'require'>,
      'tls-certificates': <'$D/tls/server'>}" >/dev/null || fail "AddExport x509"
wait_state x509 running
[ "$(eprop x509 TLS)" = require ] || fail "TLS property"
eprop x509 URIs | grep -q "nbds+unix:///x509?socket=$D/x.sock" || fail "URIs: $(eprop x509 URIs)"
[ "$(nbdinfo --size "nbds+unix:///x509?socket=$D/x.sock&tls-certificates=$D/tls/client")" = 1048576 ] ||
  fail "X.509 client not served"
nbdinfo --size "nbd+unix:///x509?socket=$D/x.sock" >/dev/null 2>&1 &&
  fail "plaintext accepted by a tls=require export"

# PSK on its own TCP listener; ListConnections shows the PSK identity.
pport=$(free_tcp_port)
add_export psk memory '@as []' '[("size", "2M")]' \
    "{'listeners': <['tcp:127.0.0.1:$pport']>, 'tls': <'require'>,
      'tls-psk': <'$D/tls/keys.psk'>}" >/dev/null || fail "AddExport psk"
wait_state psk running
/usr/bin/python3 - "nbds://alice@127.0.0.1:$pport/psk?tls-psk-file=$D/tls/keys.psk" "$D" \
    <<'PY' > "$D/psk.log" 2>&1 &
import nbd, os, sys, time
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri(sys.argv[1])
assert h.get_tls_negotiated(), "TLS not negotiated"
h.pwrite(b"secret data", 0)
assert h.pread(11, 0) == b"secret data"
open(sys.argv[2] + "/psk-connected", "w").close()
while not os.path.exists(sys.argv[2] + "/psk-done"):
    time.sleep(0.05)
print("PSK client ok")
PY
client=$!
cleanup_fn kill_pid "$client"
for (( i=0; i<200; i++ )); do [ -e "$D/psk-connected" ] && break; sleep 0.05; done
[ -e "$D/psk-connected" ] || fail "PSK client: $(cat "$D/psk.log")"
ecall psk ListConnections > "$D/conns"
grep -q '"alice"' "$D/conns" || fail "TLS identity not listed: $(cat "$D/conns")"
touch "$D/psk-done"
wait "$client" || fail "PSK client: $(cat "$D/psk.log")"
nbdinfo --size "nbd://127.0.0.1:$pport/psk" >/dev/null 2>&1 &&
  fail "plaintext accepted by the PSK export"
grep -q 'tls' "$D/state/psk.json" || fail "TLS settings not stored"
echo PASS
