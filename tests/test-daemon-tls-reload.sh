#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd certificate and PSK renewal (issue 14): the PSK file of a
# tls=require export is replaced; after SIGHUP (then again after the
# ReloadTLS method) a new client must use the new key and the old key is
# refused, while a client connected before the renewal keeps reading
# and writing on its TLS connection; the worker is not restarted.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which psktool
requires /usr/bin/python3 -c 'import nbd'
requires_plugin memory
daemon_setup
start_daemon
mkdir "$D/tls"
psktool -u alice -p "$D/tls/keys.psk" >/dev/null || fail "psktool"
cp "$D/tls/keys.psk" "$D/tls/old.psk"
sock=$D/r.sock
add_export r memory '@as []' '[("size", "2M")]' \
    "{'listeners': <['unix:$sock']>, 'tls': <'require'>,
      'tls-psk': <'$D/tls/keys.psk'>}" >/dev/null || fail "AddExport r"
wait_state r running
pid=$(eprop r MainPID)
uri () { echo "nbds+unix://alice@/r?socket=$sock&tls-psk-file=$1"; }

# The long-lived client: connected with the old key, it waits for "go"
# files and checks its connection still works after each renewal.
/usr/bin/python3 - "$(uri "$D/tls/old.psk")" "$D" <<'PY' >"$D/old.log" 2>&1 &
import nbd, os, sys, time
h = nbd.NBD()
h.set_uri_allow_local_file(True)
h.connect_uri(sys.argv[1])
assert h.get_tls_negotiated()
h.pwrite(b"before" * 100, 0)
open(sys.argv[2] + "/connected", "w").close()
for step in ("go1", "go2"):
    for _ in range(1200):
        if os.path.exists(sys.argv[2] + "/" + step):
            break
        time.sleep(0.05)
    else:
        sys.exit("no " + step)
    assert h.pread(600, 0) == b"before" * 100
    h.pwrite(step.encode() * 100, 4096)
    assert h.pread(300, 4096) == step.encode() * 100
    print(step, "ok")
PY
client=$!
cleanup_fn kill_pid "$client"
for (( i = 0; i < 200; i++ )); do [ -e "$D/connected" ] && break; sleep 0.05; done
[ -e "$D/connected" ] || fail "the first client did not connect: $(cat "$D/old.log")"

# connects KEYFILE: a new client with that key can read the export.
connects ()
{
  nbdinfo --size "$(uri "$1")" >/dev/null 2>&1
}
connects "$D/tls/old.psk" || fail "the old key does not work before renewal"

# renew N HOW: a new key in place, then HOW (a command) makes nbdkitd
# reload; bounded wait until new clients need the new key.
renew ()
{
  local n=$1 i
  shift
  psktool -u alice -p "$D/tls/new$n.psk" >/dev/null || fail "psktool"
  cp "$D/tls/new$n.psk" "$D/tls/keys.psk"
  "$@" || fail "reload with '$*' failed"
  for (( i = 0; i < 200; i++ )); do
    connects "$D/tls/new$n.psk" && break
    sleep 0.05
  done
  connects "$D/tls/new$n.psk" || fail "renewal $n: the new key is refused"
  if [ "$n" = 1 ]; then
    connects "$D/tls/old.psk" && fail "renewal 1: the old key still works"
  else
    connects "$D/tls/new1.psk" && fail "renewal 2: the previous key still works"
  fi
  touch "$D/go$n"
}
renew 1 kill -HUP "$DAEMON_PID"
echo "ok: SIGHUP: new clients need the new key"
renew 2 mcall ReloadTLS
echo "ok: ReloadTLS: new clients need the newer key"

wait "$client" || fail "the client connected before the renewals failed: $(cat "$D/old.log")"
grep -q "go2 ok" "$D/old.log" || fail "old client: $(cat "$D/old.log")"
[ "$(eprop r MainPID)" = "$pid" ] || fail "the worker was restarted"
echo "ok: the client connected before both renewals kept working"
echo "$0: ok"
