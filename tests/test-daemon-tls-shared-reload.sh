#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Renewing the shared listener's X.509 credentials: after the files are
# replaced (a new CA and server certificate) and Reload is called, new
# clients are served with the new ones and a client of the old CA is
# refused, while a client connected before keeps reading and writing
# through its relay.  Credentials that cannot be read leave the old ones
# in place.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/tls-functions.sh"
source "$srcdir/daemon-functions.sh"
requires_tls
requires /usr/bin/python3 -c 'import nbd'
requires_plugin memory
daemon_setup
make_tls_material "$D/old"
make_tls_material "$D/new"
cp -r "$D/old/server" "$D/srv"
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port --tls-certificates="$D/srv"
add_export disk memory '@as []' '[("size", "1M")]' "{'tls': <'require'>}" \
    >/dev/null || fail "AddExport disk"
wait_state disk running

python_nbd - "$port" "$D" <<'PY' || fail "client checks"
import nbd, shutil, subprocess, sys
port, D = sys.argv[1:]

def connect(ca):
    h = nbd.NBD()
    h.set_uri_allow_local_file(True)
    h.connect_uri("nbds://127.0.0.1:%s/disk?tls-certificates=%s/%s/client"
                  % (port, D, ca))
    return h

def reload():
    subprocess.run(["busctl", "--system", "call", "org.nbdkit.Daemon1",
                    "/org/nbdkit/Daemon1", "org.nbdkit.Daemon1.Manager",
                    "Reload"], check=True)

old = connect("old")
old.pwrite(b"before", 0)
for f in ("ca-cert.pem", "server-cert.pem", "server-key.pem"):
    shutil.copy("%s/new/server/%s" % (D, f), "%s/srv/%s" % (D, f))
reload()
try:
    connect("old")
    raise AssertionError("a client of the old CA was served after Reload")
except nbd.Error as e:
    print("old CA refused:", e)
h = connect("new")
assert h.pread(6, 0) == b"before"
h.shutdown()
# The connection made before the reload goes on.
old.pwrite(b"after!", 6)
assert old.pread(12, 0) == b"beforeafter!"

# Unreadable credentials: the current ones stay.
shutil.move("%s/srv/server-key.pem" % D, "%s/srv/key.moved" % D)
reload()
connect("new").shutdown()
old.shutdown()
print("reload checks ok")
PY
grep -q 'TLS credentials reloaded' "$D/daemon.log" || fail "no reload logged"
grep -q 'keeping the old ones' "$D/daemon.log" || fail "no warning logged"
grep -q "reloading TLS credentials" "$D/daemon.log" &&
  fail "reload-tls was sent to a worker without TLS of its own"
echo PASS
