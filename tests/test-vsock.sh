#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# --vsock: the server binds AF_VSOCK (VMADDR_CID_ANY) on the -p port
# (a 32-bit port number, beyond TCP's range) or 10809 by default, the
# captive $uri is nbd+vsock://CID:PORT with $port set and $unixsocket
# empty, and the server really holds that vsock port (binding it again
# fails with EADDRINUSE); a port beyond 32 bits and --vsock with -U are
# refused.  A client connects only over the local loopback transport
# (CID 1) when the kernel has one; without it the data path is SKIPped
# (exit 77) after the rest has passed.  Never connect to CID 2 or the
# machine's own CID from here: that traffic would leave the machine.

source "$srcdir/functions.sh"
requires /usr/bin/python3 --version
requires_plugin memory

make_tmpdir

# Can this kernel bind AF_VSOCK at all?
if ! /usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
' 2>"$tmpdir/probe.err"; then
  skip "AF_VSOCK cannot be bound here: $(tail -n1 "$tmpdir/probe.err")"
fi

# A port above 65535 that nothing else uses.
port=$(( 100000 + RANDOM * 4 + $$ % 4 ))

timeout 60 "$NBDKIT" --vsock -p "$port" memory 1M --run '
  printf "uri=%s\nport=%s\nunixsocket=%s\n" "$uri" "$port" "$unixsocket"
  # The port must be taken: binding it again fails with EADDRINUSE.
  /usr/bin/python3 -c "
import errno, socket, sys
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
try:
    s.bind((socket.VMADDR_CID_ANY, int(sys.argv[1])))
    print(\"bind=free\")
except OSError as e:
    print(\"bind=\" + errno.errorcode.get(e.errno, str(e.errno)))
" "$port"
' >"$tmpdir/out" 2>"$tmpdir/err" || {
  status=$?
  if grep -q 'no vsock support\|Address family not supported' "$tmpdir/err"; then
    skip "nbdkit cannot create AF_VSOCK sockets here: $(cat "$tmpdir/err")"
  fi
  fail "--vsock -p $port: nbdkit exited with $status: $(cat "$tmpdir/err")"
}
uri=$(sed -n 's/^uri=//p' "$tmpdir/out")
[[ $uri =~ ^nbd\+vsock://[0-9]+:$port(/)?$ ]] ||
  fail "--vsock: \$uri is '$uri', expected nbd+vsock://CID:$port"
[ "$(sed -n 's/^port=//p' "$tmpdir/out")" = "$port" ] ||
  fail "--vsock: \$port is '$(sed -n 's/^port=//p' "$tmpdir/out")', expected $port"
[ -z "$(sed -n 's/^unixsocket=//p' "$tmpdir/out")" ] ||
  fail "--vsock: \$unixsocket is set"
[ "$(sed -n 's/^bind=//p' "$tmpdir/out")" = EADDRINUSE ] ||
  fail "--vsock: vsock port $port is not held by the server (bind again: $(sed -n 's/^bind=//p' "$tmpdir/out"))"
echo "ok: --vsock -p $port: $uri"

# The default port (someone else may hold it: then say so and go on).
status=0
timeout 60 "$NBDKIT" --vsock memory 1M --run 'printf "%s\n" "$uri"' \
  >"$tmpdir/out" 2>"$tmpdir/err" || status=$?
if [ "$status" -ne 0 ] && grep -qi 'in use' "$tmpdir/err"; then
  echo "vsock port 10809 is in use here: default port not checked"
else
  [ "$status" -eq 0 ] || fail "--vsock without -p failed: $(cat "$tmpdir/err")"
  grep -Eq '^nbd\+vsock://[0-9]+:10809/?$' "$tmpdir/out" ||
    fail "--vsock without -p: \$uri is '$(cat "$tmpdir/out")', expected port 10809"
  echo "ok: --vsock default port: $(cat "$tmpdir/out")"
fi

# A port that is not a 32-bit number.
status=0
timeout 60 "$NBDKIT" --vsock -p 4294967296 memory 1M --run 'exit 0' \
  2>"$tmpdir/err" || status=$?
[ "$status" -eq 1 ] || fail "--vsock -p 4294967296: exit status $status, expected 1"
echo "ok: --vsock -p 4294967296 refused: $(head -n1 "$tmpdir/err")"

status=0
"$NBDKIT" --vsock -U "$tmpdir/sock" memory 1M --run 'exit 0' \
  2>"$tmpdir/err" || status=$?
[ "$status" -eq 1 ] || fail "--vsock -U: exit status $status, expected 1"
[ ! -e "$tmpdir/sock" ] || fail "--vsock -U: created the Unix socket anyway"
echo "ok: --vsock with -U refused"

# The data path needs the vsock loopback transport (CID 1, local only):
# without it, binding CID 1 fails with EADDRNOTAVAIL.
if ! /usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.bind((1, socket.VMADDR_PORT_ANY))
' 2>/dev/null; then
  skip "data path not tested: no vsock loopback transport (CID 1) here," \
       "and connecting to CID 2 or this machine's own CID would leave the machine"
fi
requires nbdinfo --version
out=$(timeout 60 "$NBDKIT" --vsock -p "$port" memory 1M --run '
  case $uri in nbd+vsock://1:*) nbdinfo --size "$uri" ;; *) exit 99 ;; esac') ||
  fail "--vsock: a client over the loopback transport failed"
[ "$out" = 1048576 ] || fail "--vsock: client saw size '$out'"
echo "ok: --vsock data path over the loopback transport"

echo "$0: ok"
