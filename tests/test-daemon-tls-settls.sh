#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd Manager.SetTLS (issue 14): the shared listener's TLS
# credentials set over D-Bus.  Without them a TLS export on the shared
# listener is refused; after SetTLS it is added and served with PSK; the
# TLSCertificates/TLSPSK properties show the setting; a bad path keeps
# the old credentials; credentials still needed by an export cannot be
# dropped; and the setting survives a restart of the daemon.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which psktool
requires which gdbus
requires_plugin memory
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port
mkdir "$D/tls"
psktool -u alice -p "$D/tls/keys.psk" >/dev/null || fail "psktool"
opts="{'tls': <'require'>}"
mprop () {
  "${BUSCTL[@]}" get-property org.nbdkit.Daemon1 /org/nbdkit/Daemon1 \
      org.nbdkit.Daemon1.Manager "$1" | cut -d' ' -f2- | tr -d '"'
}
settls () { gcall /org/nbdkit/Daemon1 org.nbdkit.Daemon1.Manager.SetTLS "'$1'" "'$2'" >/dev/null; }
psk_uri="nbds://alice@127.0.0.1:$port/t?tls-psk-file=$D/tls/keys.psk"

expect_error org.nbdkit.Daemon1.Error.InvalidParameter \
    add_export t memory '@as []' '[("size", "1M")]' "$opts"
settls "" relative.psk 2>"$D/err" && fail "a relative path was accepted"
grep -q "absolute path" "$D/err" || fail "relative path: $(cat "$D/err")"

settls "" "$D/tls/keys.psk" || fail "SetTLS"
[ "$(mprop TLSPSK)" = "$D/tls/keys.psk" ] || fail "TLSPSK is '$(mprop TLSPSK)'"
[ "$(mprop TLSCertificates)" = "" ] || fail "TLSCertificates is set"
add_export t memory '@as []' '[("size", "1M")]' "$opts" >/dev/null ||
  fail "AddExport with TLS after SetTLS"
wait_state t running
[ "$(nbdinfo --size "$psk_uri")" = 1048576 ] || fail "PSK client not served"
nbdinfo --size "nbd://127.0.0.1:$port/t" >/dev/null 2>&1 &&
  fail "plaintext client served a tls=require export"
echo "ok: SetTLS enables TLS on the shared listener"

settls "" "$D/tls/missing.psk" 2>"$D/err" && fail "a missing PSK file was accepted"
grep -q "old ones stay" "$D/err" || fail "missing file: $(cat "$D/err")"
[ "$(mprop TLSPSK)" = "$D/tls/keys.psk" ] || fail "a failed SetTLS changed TLSPSK"
[ "$(nbdinfo --size "$psk_uri")" = 1048576 ] || fail "served no more after a failed SetTLS"
expect_error org.nbdkit.Daemon1.Error.Busy settls "" ""
echo "ok: bad SetTLS calls keep the credentials"

stop_daemon
start_daemon --listen=tcp:127.0.0.1:$port
wait_state t running
[ "$(mprop TLSPSK)" = "$D/tls/keys.psk" ] || fail "the setting was not kept"
[ "$(nbdinfo --size "$psk_uri")" = 1048576 ] || fail "not served after a restart"
echo "ok: the setting survives a restart"
echo "$0: ok"
