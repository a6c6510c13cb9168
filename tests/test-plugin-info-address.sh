#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The info plugin's address mode: over a Unix socket the disk is "unix";
# over TCP it is the client's own address and port, exactly as the
# client's socket sees them, for IPv4 and (where available) IPv6.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires python3 --version
requires_plugin info
make_tmpdir
export tmpdir

"$NBDKIT" -U - info mode=address --run 'nbdsh -u "$uri" -c "
assert h.pread(h.get_size(), 0) == b\"unix\", h.pread(h.get_size(), 0)
"' || fail "address over a Unix socket is not \"unix\""

# A free TCP port on ADDRESS (family FAMILY).
free_port ()
{
  python3 -c '
import socket, sys
s = socket.socket(getattr(socket, sys.argv[1]))
s.bind((sys.argv[2], 0))
print(s.getsockname()[1])' "$1" "$2"
}

# The client connects with its own socket, so it knows which address
# and port the server must report.
cat >"$tmpdir/t.py" <<'PY'
import os, socket
family = getattr(socket, os.environ["FAMILY"])
server = os.environ["ADDRESS"]
port = int(os.environ["PORT"])
s = socket.socket(family, socket.SOCK_STREAM)
s.connect((server, port))
host, cport = s.getsockname()[:2]
expected = ("%s:%d" if family == socket.AF_INET else "[%s]:%d") % (host, cport)
h.connect_socket(s.detach())
got = h.pread(h.get_size(), 0).decode()
assert got == expected, (got, expected)
print("address mode:", got)
PY

for pair in "AF_INET 127.0.0.1" "AF_INET6 ::1"; do
  read -r FAMILY ADDRESS <<<"$pair"
  PORT=$(free_port "$FAMILY" "$ADDRESS" 2>/dev/null) || {
    echo "$0: $ADDRESS is not available, skipping it"
    continue
  }
  export FAMILY ADDRESS PORT
  "$NBDKIT" -i "$ADDRESS" -p "$PORT" info address \
    --run 'nbdsh -c - <"$tmpdir/t.py"' ||
    fail "address over TCP ($ADDRESS) is wrong"
done
