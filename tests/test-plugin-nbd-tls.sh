#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The two conversions from the man page, and the TLS parameters:
#
# 1. A plaintext oldstyle server on a Unix socket, served by nbdkit to
#    TCP clients as newstyle with TLS required (PSK), nbdkit started with
#    --exit-with-parent next to the old server and leaving with it.
# 2. A newstyle server requiring TLS (X.509) with export "foo", served by
#    nbdkit -o as plaintext oldstyle to a client on a Unix socket in
#    --run.
#
# Also: tls-verify=false accepts a server whose CA we do not have (and
# the default refuses it), tls-psk + tls-username, an nbds+unix:// URI
# with tls-psk-file, and tls=off against a server that requires TLS.

source "$srcdir/functions.sh"
source "$srcdir/tls-functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
requires nbdsh --version
requires nbdinfo --version
requires_plugin nbd
requires_plugin memory
requires_tls
requires_filter exportname

make_tmpdir
make_tls_material "$tmpdir"
export tmpdir
psk=$tmpdir/keys.psk
export psk

# --- 1. Plaintext oldstyle Unix server -> TLS newstyle TCP clients. ----
oldsock=$tmpdir/old.sock
port=$(free_port)
export oldsock port
(
  "$NBDKIT" --exit-with-parent -P "$tmpdir/proxy1.pid" --tls=require \
    --tls-psk="$psk" -i 127.0.0.1 -p "$port" nbd socket="$oldsock" &
  exec "$NBDKIT" -f -o -P "$tmpdir/old.pid" -U "$oldsock" memory 8M
) &
wait_for_path "$tmpdir/old.pid"
wait_for_path "$tmpdir/proxy1.pid"
old_pid=$(cat "$tmpdir/old.pid")
proxy1_pid=$(cat "$tmpdir/proxy1.pid")
cleanup_fn kill_pid "$proxy1_pid"
cleanup_fn kill_pid "$old_pid"
# The proxy's pidfile is written once it listens; the old server's too.
wait_for_path "$oldsock"

nbdsh -c '
import os
h.connect_unix(os.environ["oldsock"])
assert h.get_protocol() == "oldstyle", h.get_protocol()
h.pwrite(b"old server data!" * 256, 0)
' || fail "the old server is not an oldstyle server"

nbdsh -c '
import os
h.set_uri_allow_local_file(True)
h.connect_uri("nbds://alice@127.0.0.1:%s/?tls-psk-file=%s"
              % (os.environ["port"], os.environ["psk"]))
assert h.get_tls_negotiated()
assert h.get_protocol() == "newstyle-fixed", h.get_protocol()
assert h.get_size() == 8 << 20
assert h.pread(4096, 0) == b"old server data!" * 256
h.pwrite(b"via TLS" * 100, 65536)
h.flush()
' || fail "a TLS client could not use the old server through nbdkit"
nbdsh -c '
import os
h.connect_unix(os.environ["oldsock"])
assert h.pread(700, 65536) == b"via TLS" * 100
' || fail "the write through the TLS proxy did not reach the old server"
if nbdinfo --size "nbd://127.0.0.1:$port/" >/dev/null 2>&1; then
  fail "the proxy served a plaintext client despite --tls=require"
fi

# --exit-with-parent: the proxy leaves when the old server does.
kill "$old_pid"
for (( i=0; i<100; i++ )); do
  kill -0 "$proxy1_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$proxy1_pid" 2>/dev/null &&
  fail "the proxy did not exit with the old server"
echo "conversion 1 (oldstyle plaintext -> newstyle TLS): ok"

# --- 2. TLS newstyle TCP server -> plaintext oldstyle Unix client. -----
port2=$(free_port)
export port2
start_nbdkit -P "$tmpdir/new.pid" -v --log=stderr -i 127.0.0.1 -p "$port2" \
  --tls=require --tls-certificates="$tmpdir/server" \
  --filter=exportname memory 4M exportname=foo exportname-strict=true \
  2>"$tmpdir/new.log" || fail "the TLS server did not start: $(cat "$tmpdir/new.log")"

"$NBDKIT" -U - -o --tls=off nbd hostname=localhost port="$port2" export=foo \
  tls=require tls-certificates="$tmpdir/client" --run '
  nbdsh -c "
import os
h.connect_unix(os.environ[\"unixsocket\"])
assert h.get_protocol() == \"oldstyle\", h.get_protocol()
assert not h.get_tls_negotiated()
assert h.get_size() == 4 << 20
h.pwrite(b\"old client\" * 400, 0)
h.flush()
assert h.pread(4000, 0) == b\"old client\" * 400
"
' || fail "an oldstyle plaintext client could not use the TLS server"
grep -q 'TLS: handshake complete' "$tmpdir/new.log" ||
  fail "the upstream server did not log a TLS session"
nbdsh -c '
import os
h.set_uri_allow_local_file(True)
h.connect_uri("nbds://localhost:%s/foo?tls-certificates=%s/client"
              % (os.environ["port2"], os.environ["tmpdir"]))
assert h.pread(4000, 0) == b"old client" * 400
' || fail "the old client's write did not reach the TLS server"
echo "conversion 2 (newstyle TLS -> oldstyle plaintext): ok"

# Another export name is refused by the upstream server.
if "$NBDKIT" -U - nbd hostname=localhost port="$port2" export=bar \
     tls=require tls-certificates="$tmpdir/client" \
     --run 'nbdinfo --size "$uri"' >/dev/null 2>&1; then
  fail "export=bar was served"
fi

# --- tls=off against a server that requires TLS. ------------------------
if "$NBDKIT" -U - nbd hostname=localhost port="$port2" export=foo tls=off \
     --run 'nbdinfo --size "$uri"' >"$tmpdir/off.out" 2>&1; then
  fail "tls=off connected to a server requiring TLS"
fi
grep -q 'cannot connect to the NBD server' "$tmpdir/off.out" ||
  fail "no error logged for tls=off: $(cat "$tmpdir/off.out")"

# --- tls-verify: a client directory whose CA is not the server's. -------
mkdir "$tmpdir/wrongca"
cp "$tmpdir/client/client-cert.pem" "$tmpdir/client/client-key.pem" \
  "$tmpdir/wrongca/"
cp "$tmpdir/other-ca/ca-cert.pem" "$tmpdir/wrongca/"
if "$NBDKIT" -U - nbd hostname=localhost port="$port2" export=foo \
     tls=require tls-certificates="$tmpdir/wrongca" \
     --run 'nbdinfo --size "$uri"' >/dev/null 2>&1; then
  fail "a server certificate from an unknown CA was accepted"
fi
[ "$("$NBDKIT" -U - nbd hostname=localhost port="$port2" export=foo \
      tls=require tls-certificates="$tmpdir/wrongca" tls-verify=false \
      --run 'nbdinfo --size "$uri"')" = 4194304 ] ||
  fail "tls-verify=false did not accept the server"

# --- PSK with tls-username, and an nbds+unix:// URI. --------------------
psksock=$tmpdir/psk.sock
start_nbdkit -P "$tmpdir/psk.pid" -v --log=stderr -U "$psksock" \
  --tls=require --tls-psk="$psk" memory 2M 2>"$tmpdir/psk.log"
[ "$("$NBDKIT" -U - nbd socket="$psksock" tls=require tls-psk="$psk" \
      tls-username=bob --run 'nbdinfo --size "$uri"')" = 2097152 ] ||
  fail "tls-psk with tls-username=bob failed"
grep -q 'PSK user bob' "$tmpdir/psk.log" ||
  fail "the upstream server did not see PSK user bob"
# tls-psk alone turns TLS on (tls=on is implied).
[ "$("$NBDKIT" -U - nbd socket="$psksock" tls-psk="$psk" tls-username=alice \
      --run 'nbdinfo --size "$uri"')" = 2097152 ] ||
  fail "tls-psk without tls= did not use TLS"
[ "$("$NBDKIT" -U - nbd \
      "nbds+unix://alice@/?socket=$psksock&tls-psk-file=$psk" \
      --run 'nbdinfo --size "$uri"')" = 2097152 ] ||
  fail "an nbds+unix:// URI with tls-psk-file failed"
[ "$(grep -c 'PSK user alice' "$tmpdir/psk.log")" -ge 2 ] ||
  fail "the upstream server did not see PSK user alice twice"
if "$NBDKIT" -U - nbd socket="$psksock" tls-psk="$tmpdir/wrong.psk" \
     tls-username=alice --run 'nbdinfo --size "$uri"' >/dev/null 2>&1; then
  fail "a wrong PSK was accepted"
fi

echo "$0: ok"
