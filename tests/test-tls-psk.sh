#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TLS with pre-shared keys (--tls-psk): nbdsh, nbdinfo and nbdcopy over
# nbds+unix:// and nbds:// with tls-psk-file, and nbdsh over nbdkit -s;
# the PSK user is logged and never a key; a wrong key, an unknown user
# and a plaintext client are refused with a logged reason while a
# connection that is already open keeps working; $tls and $uri in --run.

source "$srcdir/functions.sh"
source "$srcdir/tls-functions.sh"
requires nbdsh --version
requires nbdinfo --version
requires nbdcopy --version
requires_plugin memory
requires_tls

make_tmpdir
make_tls_material "$tmpdir"
psk=$tmpdir/keys.psk
sock=$tmpdir/psk.sock
log=$tmpdir/psk.log
export psk sock

start_nbdkit -P "$tmpdir/psk.pid" -U "$sock" -v --log=stderr \
  --tls=require --tls-psk="$psk" memory 1M 2>"$log"

# nbdsh as alice: TLS really negotiated, data round trip.
nbdsh -c '
import os
h.set_uri_allow_local_file(True)
h.connect_uri("nbds+unix://alice@/?socket=%s&tls-psk-file=%s"
              % (os.environ["sock"], os.environ["psk"]))
assert h.get_tls_negotiated()
assert h.get_size() == 1048576, h.get_size()
h.pwrite(b"secret" * 100, 4096)
assert h.pread(600, 4096) == b"secret" * 100
h.shutdown()
' || fail "nbdsh over TLS-PSK failed"
grep -q 'TLS: handshake complete: (TLS1\.3).*PSK user alice' "$log" ||
  fail "the server did not log a TLS 1.3 session for PSK user alice"

# nbdinfo as bob reports TLS.
nbdinfo --json "nbds+unix://bob@/?socket=$sock&tls-psk-file=$psk" \
  >"$tmpdir/info.json" || fail "nbdinfo as bob failed"
grep -q '"TLS": true' "$tmpdir/info.json" ||
  fail "nbdinfo does not report TLS: $(cat "$tmpdir/info.json")"
grep -q 'PSK user bob' "$log" || fail "PSK user bob was not logged"

# nbdcopy both ways: 1 MiB of random data survives the round trip.
head -c 1048576 /dev/urandom >"$tmpdir/in"
uri="nbds+unix://alice@/?socket=$sock&tls-psk-file=$psk"
nbdcopy "$tmpdir/in" "$uri" || fail "nbdcopy to the server failed"
nbdcopy "$uri" "$tmpdir/out" || fail "nbdcopy from the server failed"
cmp "$tmpdir/in" "$tmpdir/out" || fail "data differs after the round trip"

# Refusals.  Keep a good connection open across them: refused clients must
# not disturb it.  Each refusal must leave its reason in the log.
psktool -u carol -p "$tmpdir/carol.psk" >/dev/null 2>&1 ||
  fail "psktool could not make carol.psk"
export wrong=$tmpdir/wrong.psk carol=$tmpdir/carol.psk
nbdsh -c '
import os, subprocess
h.set_uri_allow_local_file(True)
h.connect_uri("nbds+unix://alice@/?socket=%s&tls-psk-file=%s"
              % (os.environ["sock"], os.environ["psk"]))
h.pwrite(b"A" * 4096, 0)

def refused(uri):
    r = subprocess.run(["nbdinfo", "--size", uri], capture_output=True)
    assert r.returncode != 0, "accepted: %s" % uri
    assert r.stdout == b"", r.stdout

sock = os.environ["sock"]
# alice, but with a different key.
refused("nbds+unix://alice@/?socket=%s&tls-psk-file=%s" % (sock, os.environ["wrong"]))
# carol is not in the server file.
refused("nbds+unix://carol@/?socket=%s&tls-psk-file=%s" % (sock, os.environ["carol"]))
# No TLS at all.
refused("nbd+unix:///?socket=%s" % sock)

assert h.pread(4096, 0) == b"A" * 4096
h.pwrite(b"B" * 4096, 0)
assert h.pread(4096, 0) == b"B" * 4096
h.shutdown()
' || fail "refusals or the surviving connection misbehaved"
grep -q 'TLS handshake failed: .*(is the client using the right key?)' "$log" ||
  fail "no logged reason for the wrong key"
grep -q 'TLS handshake failed: PSK user "carol" is not in' "$log" ||
  fail "no logged reason for the unknown user"
grep -q 'TLS is required' "$log" ||
  fail "no logged reason for the plaintext client"
if grep -q -i "$(cut -d: -f2 "$psk" | head -1)" "$log"; then
  fail "a key appears in the log"
fi

# The server still serves new clients after all that.
[ "$(nbdinfo --size "$uri")" = 1048576 ] ||
  fail "the server stopped serving after refusing clients"

# TCP, nbds:// with a PSK user.
port=$(free_port)
start_nbdkit -P "$tmpdir/tcp.pid" -i 127.0.0.1 -p "$port" \
  --tls=require --tls-psk="$psk" memory 2M
[ "$(nbdinfo --size "nbds://bob@127.0.0.1:$port/?tls-psk-file=$psk")" = 2097152 ] ||
  fail "nbds:// over TCP with PSK failed"

# -s: the client starts nbdkit on a socketpair (separate stdin and
# stdout descriptors in the server).
nbdsh -c '
import os
h.set_tls(nbd.TLS_REQUIRE)
h.set_tls_psk_file(os.environ["psk"])
h.set_tls_username("bob")
h.connect_command([os.environ["NBDKIT"], "-s", "--exit-with-parent",
                   "--tls=require", "--tls-psk=" + os.environ["psk"],
                   "memory", "1M"])
assert h.get_tls_negotiated()
h.pwrite(b"stdio" * 100, 0)
assert h.pread(500, 0) == b"stdio" * 100
h.shutdown()
' || fail "TLS over nbdkit -s failed"

# Captive mode: $tls and an nbds+unix $uri.
"$NBDKIT" -U - --tls=require --tls-psk="$psk" memory 1M --run '
  [ "$tls" = 2 ] || { echo "tls=$tls"; exit 1; }
  case "$uri" in nbds+unix://*) ;; *) echo "uri=$uri"; exit 1 ;; esac
  u=$(echo "$uri" | sed "s|^nbds+unix://|nbds+unix://alice@|")
  nbdinfo --size "$u&tls-psk-file=$psk"
' >"$tmpdir/captive.out" || fail "captive TLS run failed: $(cat "$tmpdir/captive.out")"
[ "$(cat "$tmpdir/captive.out")" = 1048576 ] ||
  fail "captive run printed: $(cat "$tmpdir/captive.out")"

echo "$0: ok"
