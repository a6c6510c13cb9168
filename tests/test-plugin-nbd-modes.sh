#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkit nbd -> nbdkit in every connection mode: socket=, uri=
# (nbd+unix:// and nbd:// over TCP, with and without the uri= key),
# hostname= + port= on TCP loopback, socket-fd= with an inherited Unix
# socket and an inherited TCP socket, command= running nbdkit with
# socket activation, and nbdkit -s (which has no after_fork) with
# shared=true and with command=.  Every mode writes its own 64 KiB slot through the
# proxy, and the slot is then read directly from the upstream server, so
# each mode must really reach the same upstream.  A 4 MiB random image
# survives a round trip with nbdcopy.  vhost-cid= is not testable here.

source "$srcdir/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
requires nbdsh --version
requires nbdcopy --version
requires /usr/bin/python3 --version
requires_plugin nbd
requires_plugin memory

export srcdir
make_tmpdir
export tmpdir
sock=$tmpdir/upstream.sock
direct="nbd+unix:///?socket=$sock"
start_nbdkit -P "$tmpdir/upstream.pid" -U "$sock" memory 8M

# What each captive proxy runs: the size, then the mode's slot round trip.
cat >"$tmpdir/through-proxy.sh" <<'EOF'
source "$srcdir/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
[ "$(nbdinfo --size "$uri")" = 8388608 ] || fail "wrong size through $uri"
write_slot "$uri" "$name" "$slot"
EOF

# One captive proxy per mode.
slot=0
via ()
{
  local name=$1
  shift
  slot=$(( slot + 1 ))
  export name slot
  "$NBDKIT" -U - nbd "$@" --run 'bash "$tmpdir/through-proxy.sh"' ||
    fail "mode $name ($*) failed"
  check_slot "$direct" "$name" "$slot"
  echo "mode $name: ok"
}

via socket socket="$sock"
via uri-unix uri="$direct"
via magic-uri "$direct"
( cd "$tmpdir" && via relative-socket socket=upstream.sock ) ||
  fail "a relative socket= path failed"
slot=$(( slot + 1 ))

# TCP: a second nbdkit (itself an nbd proxy) listens on loopback.
port=$(free_port)
start_nbdkit -P "$tmpdir/tcp.pid" -i 127.0.0.1 -p "$port" nbd socket="$sock"
via hostname hostname=127.0.0.1 port="$port"
via hostname-name hostname=localhost port="$port"
via uri-tcp "nbd://127.0.0.1:$port/"

# A port that is neither a number nor a known service is looked up as a
# service name and fails.
if "$NBDKIT" -U - nbd hostname=127.0.0.1 port=no-such-service-xyz \
     --run 'nbdinfo --size "$uri"' >"$tmpdir/svc.out" 2>&1; then
  fail "port=no-such-service-xyz was accepted"
fi
grep -qi 'servname\|service' "$tmpdir/svc.out" ||
  fail "no service lookup error: $(cat "$tmpdir/svc.out")"

# socket-fd=: a Unix socket connected by python, inherited across exec.
slot=$(( slot + 1 ))
export sock slot
/usr/bin/python3 - "$NBDKIT" <<'PY' || fail "socket-fd= with a Unix socket failed"
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["sock"])
os.set_inheritable(s.fileno(), True)
os.environ["name"] = "socket-fd-unix"
os.execv(sys.argv[1], [sys.argv[1], "-U", "-", "nbd",
                       "socket-fd=%d" % s.fileno(),
                       "--run", 'bash "$tmpdir/through-proxy.sh"'])
PY
check_slot "$direct" socket-fd-unix "$slot"
echo "mode socket-fd (Unix): ok"

# socket-fd=: a TCP socket opened by bash itself.
exec {tcpfd}<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to port $port"
via socket-fd-tcp socket-fd="$tcpfd"
exec {tcpfd}>&-

# command=: nbdkit as the upstream through socket activation, proxying
# in turn to the memory server so that the slot lands there.
via command command="$NBDKIT" arg=nbd arg=socket="$sock"
# The command is looked up in $PATH.
PATH="$(dirname "$NBDKIT"):$PATH" \
  via command-path command=nbdkit arg=--exit-with-parent arg=nbd \
    arg=socket="$sock"

# nbdkit -s (one client on stdin/stdout) with shared=true and command=:
# the shared connection is made when that client opens.
export sock
nbdsh -c '
import os
n = os.environ["NBDKIT"]
h.connect_command([n, "-s", "nbd", "socket=" + os.environ["sock"],
                   "shared=true"])
assert h.get_size() == 8 << 20
other = nbd.NBD()
other.connect_command([n, "-s", "nbd", "command=" + n, "arg=memory",
                       "arg=1M"])
assert other.get_size() == 1 << 20
' || fail "nbdkit -s with shared=true or command= failed"
echo "mode -s with shared=true and command=: ok"

echo "mode vhost-cid: SKIP (no AF_VSOCK loopback transport on this machine)"

# Data integrity: a random image through the proxy, checked directly
# (this overwrites the slots).
head -c 8388608 /dev/urandom >"$tmpdir/in"
"$NBDKIT" -U - nbd socket="$sock" --run '
  nbdcopy --connections=4 "'"$tmpdir"'/in" "$uri" &&
  nbdcopy --connections=4 "$uri" "'"$tmpdir"'/out"
' || fail "nbdcopy through the proxy failed"
cmp "$tmpdir/in" "$tmpdir/out" || fail "data read through the proxy differs"
nbdcopy "$direct" "$tmpdir/direct" || fail "reading the upstream failed"
cmp "$tmpdir/in" "$tmpdir/direct" ||
  fail "the upstream does not hold the data written through the proxy"
[ "$(sha256sum <"$tmpdir/in")" = "$(sha256sum <"$tmpdir/out")" ] ||
  fail "checksums differ"

echo "$0: ok"
