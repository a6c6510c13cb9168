#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Selective TLS on nbdkitd's shared port: three tenants on one port,
# alice and bob with PSK, carol with an X.509 client certificate, each
# seeing and using only its own exports (tls-allow); a plaintext client
# sees only the off/on exports and gets NBD_REP_ERR_TLS_REQD for a
# require export; a tls-verify-peer export is refused to PSK clients and
# to a certificate from another CA; a wrong PSK key is refused.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/tls-functions.sh"
source "$srcdir/daemon-functions.sh"
requires_tls
requires which nbdcopy
requires /usr/bin/python3 -c 'import nbd'
requires_plugin memory
daemon_setup
make_tls_material "$D/tls"
carol=$(certtool -i --infile "$D/tls/client/client-cert.pem" |
          sed -n 's/^[[:space:]]*Subject: //p')
[ -n "$carol" ] || fail "no subject DN in the client certificate"
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port \
    --tls-certificates="$D/tls/server" --tls-psk="$D/tls/keys.psk"

add () # NAME TLS EXTRA-OPTIONS
{
  add_export "$1" memory '@as []' '[("size", "1M")]' \
      "{'tls': <'$2'>$3}" >/dev/null || fail "AddExport $1"
}
# AddExport waits for each worker: add them side by side.
pids=()
add pub off "" & pids+=($!)
add both on "" & pids+=($!)
add alice-disk require ", 'tls-allow': <['alice']>" & pids+=($!)
add bob-disk require ", 'tls-allow': <['bob']>" & pids+=($!)
add carol-disk require ", 'tls-allow': <['$carol']>, 'tls-verify-peer': <true>" &
pids+=($!)
# verified starts on demand: its first client waits for the worker.
add verified require ", 'tls-verify-peer': <true>, 'start': <'on-demand'>" &
pids+=($!)
for p in "${pids[@]}"; do wait "$p" || fail "AddExport"; done
for e in pub both alice-disk bob-disk carol-disk; do
  wait_state "$e" running
done
wait_state verified inactive
[ "$(eprop alice-disk TLSAllow)" = '1 "alice' ] ||
  fail "TLSAllow property: $(eprop alice-disk TLSAllow)"
/usr/bin/python3 - "$D"/state/*alice* <<'PY' || fail "tls-allow not stored"
import json, sys
assert json.load(open(sys.argv[1]))["tls"]["allow"] == ["alice"]
PY

# bob's data, with nbdcopy over PSK.
head -c 1048576 /dev/urandom > "$D/bob.img"
bob="nbds://bob@127.0.0.1:$port/bob-disk?tls-psk-file=$D/tls/keys.psk"
nbdcopy "$D/bob.img" "$bob" || fail "nbdcopy to bob-disk"
nbdcopy "$bob" "$D/bob.out" || fail "nbdcopy from bob-disk"
cmp "$D/bob.img" "$D/bob.out" || fail "bob-disk: data differ"

# Everything else in one python run.
python_nbd - "$port" "$D" "$carol" <<'PY' || fail "client checks"
import nbd, subprocess, sys
port, D, carol = sys.argv[1:]
host = "127.0.0.1:%s" % port
psk = "tls-psk-file=%s/tls/keys.psk" % D

def handle(tls=None, opt=False):
    h = nbd.NBD()
    h.set_uri_allow_local_file(True)
    h.set_opt_mode(opt)
    if tls is not None:
        h.set_tls(tls)
    return h

def listing(uri, tls=None):
    h = handle(tls, True)
    h.connect_uri(uri)
    names = []
    h.opt_list(lambda n, d: names.append(n))
    tls_on = h.get_tls_negotiated()
    h.opt_abort()
    return sorted(names), tls_on

def served(uri, tls=None):
    h = handle(tls)
    h.connect_uri(uri)
    return h

def refused(uri, want, tls=None):
    try:
        served(uri, tls)
    except nbd.Error as e:
        assert want in str(e).lower(), (uri, str(e))
        print("refused as expected:", uri.split("?")[0], "-", e)
        return
    raise AssertionError("served: " + uri)

# A plaintext client: the off and on exports only.
names, tls_on = listing("nbd://%s/" % host)
assert names == ["both", "pub"] and not tls_on, names
refused("nbd://%s/alice-disk" % host, "tls")
refused("nbd://%s/verified" % host, "tls")
h = served("nbd://%s/pub" % host)
assert not h.get_tls_negotiated()
h.pwrite(b"public", 0)
h.shutdown()
h = served("nbd://%s/both" % host)
assert h.get_size() == 1048576
h.shutdown()

# alice: her export, not bob's or carol's; nothing without a certificate.
alice = "nbds://alice@%s/%%s?%s" % (host, psk)
names, tls_on = listing(alice % "")
assert names == ["alice-disk", "both", "pub"] and tls_on, names
h = served(alice % "alice-disk")
assert h.get_tls_negotiated()
h.pwrite(b"alice's data", 4096)
conns = subprocess.run(["busctl", "--system", "call", "org.nbdkit.Daemon1",
                        "/org/nbdkit/Daemon1/export/alice_2ddisk",
                        "org.nbdkit.Daemon1.Export", "ListConnections"],
                       capture_output=True, text=True).stdout
assert '"alice"' in conns, conns
h.shutdown()
h = served(alice % "alice-disk")
assert h.pread(12, 4096) == b"alice's data"
assert h.pread(6, 0) == bytes(6)
h.shutdown()
assert served(alice % "pub").pread(6, 0) == b"public"
refused(alice % "bob-disk", "no export")
refused(alice % "carol-disk", "no export")
refused(alice % "verified", "polic")

# bob does not see alice.
names, _ = listing("nbds://bob@%s/?%s" % (host, psk))
assert names == ["bob-disk", "both", "pub"], names
refused("nbds://bob@%s/alice-disk?%s" % (host, psk), "no export")

# carol, with a certificate from the daemon's CA.
carol_uri = "nbds://%s/%%s?tls-certificates=%s/tls/client" % (host, D)
names, _ = listing(carol_uri % "")
assert names == ["both", "carol-disk", "pub", "verified"], names
h = served(carol_uri % "carol-disk")
h.pwrite(b"carol", 0)
assert h.pread(5, 0) == b"carol"
h.shutdown()
served(carol_uri % "verified").shutdown()
refused(carol_uri % "alice-disk", "no export")

# A certificate from another CA is not verified: no identity.
other = "nbds://%s/%%s?tls-certificates=%s/tls/other-client" % (host, D)
names, _ = listing(other % "")
assert names == ["both", "pub"], names
refused(other % "verified", "polic")
refused(other % "carol-disk", "no export")

# A wrong PSK key.
refused("nbds://alice@%s/alice-disk?tls-psk-file=%s/tls/wrong.psk"
        % (host, D), "")
print("client checks ok")
PY

# The workers of the shared-only TLS exports have no TLS of their own.
grep -- '--tls' "$D/daemon.log" | grep -q 'alice-disk' &&
  fail "a worker was given TLS options"
echo PASS
