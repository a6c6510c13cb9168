#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd Export.Update of the listeners only (issue 14): the running
# worker is given the new set of listening sockets ("listeners",
# nbdkit-worker(7)) and is not restarted; a client connected through a
# removed listener keeps working; new clients reach the added listeners
# and no longer the removed one; adding and removing 'shared' works too.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which gdbus
requires /usr/bin/python3 -c 'import nbd'
requires_plugin memory
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port
a=$D/a.sock b=$D/b.sock c=$D/c.sock

add_export l memory '@as []' '[("size", "1M")]' \
    "{'listeners': <['unix:$a']>}" >/dev/null || fail "AddExport l"
wait_state l running
path=$(export_path l)
pid=$(eprop l MainPID)
size () { nbdinfo --size "$1" 2>/dev/null; }
[ "$(size "nbd+unix:///l?socket=$a")" = 1048576 ] || fail "not served on a"

# A client on listener a that stays connected across the changes.
/usr/bin/python3 - "nbd+unix:///l?socket=$a" "$D" <<'PY' >"$D/old.log" 2>&1 &
import nbd, os, sys, time
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pwrite(b"kept" * 256, 0)
open(sys.argv[2] + "/connected", "w").close()
for _ in range(1200):
    if os.path.exists(sys.argv[2] + "/go"):
        break
    time.sleep(0.05)
else:
    sys.exit("never told to go on")
assert h.pread(1024, 0) == b"kept" * 256
h.pwrite(b"late" * 256, 4096)
print("old client ok")
PY
client=$!
cleanup_fn kill_pid "$client"
for (( i = 0; i < 200; i++ )); do [ -e "$D/connected" ] && break; sleep 0.05; done
[ -e "$D/connected" ] || fail "the client did not connect: $(cat "$D/old.log")"

update () { gcall "$path" org.nbdkit.Daemon1.Export.Update "$1" >/dev/null; }

update "{'listeners': <['unix:$b', 'unix:$c']>}" || fail "Update to b, c"
[ "$(eprop l MainPID)" = "$pid" ] || fail "the worker was replaced"
[ "$(size "nbd+unix:///l?socket=$b")" = 1048576 ] || fail "not served on b"
[ "$(size "nbd+unix:///l?socket=$c")" = 1048576 ] || fail "not served on c"
[ -e "$a" ] && size "nbd+unix:///l?socket=$a" && fail "still served on a"
echo "ok: a -> b, c without a new worker"

update "{'listeners': <['unix:$c', 'shared']>}" || fail "Update to c, shared"
[ "$(eprop l MainPID)" = "$pid" ] || fail "the worker was replaced (shared)"
[ "$(size "nbd://127.0.0.1:$port/l")" = 1048576 ] || fail "not served on the shared port"
[ "$(size "nbd+unix:///l?socket=$c")" = 1048576 ] || fail "not served on c any more"
[ -e "$b" ] && size "nbd+unix:///l?socket=$b" && fail "still served on b"
echo "ok: b, c -> c, shared"

touch "$D/go"
wait "$client" || fail "the client of the removed listener failed: $(cat "$D/old.log")"
grep -q "old client ok" "$D/old.log" || fail "old client: $(cat "$D/old.log")"
/usr/bin/nbdsh -u "nbd+unix:///l?socket=$c" \
    -c 'assert h.pread(1024, 4096) == b"late" * 256' ||
  fail "the old client's last write is not on the same disk"
[ "$(eprop l MainPID)" = "$pid" ] || fail "the worker changed"
echo "ok: the client of a removed listener kept working on the same worker"
echo "$0: ok"
