#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# SIGTERM drains nbdkitd: a client with requests in flight (while an
# nbdcopy runs too) gets every answer before its connection closes, the
# workers stop cleanly and the daemon exits with status 0.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires which nbdcopy
requires_plugin memory
requires_filter delay
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port
add_export d memory "['delay']" '[("size", "64M"), ("delay-read", "2")]' \
    '@a{sv} {}' >/dev/null || fail "AddExport d"
wait_state d running
pid=$(eprop d MainPID)
uri="nbd://127.0.0.1:$port/d"

nbdcopy --no-extents --connections=1 --requests=4 "$uri" null: > "$D/copy.log" 2>&1 &
copy=$!
cleanup_fn kill_pid "$copy"
/usr/bin/python3 - "$uri" "$D" <<'PY' > "$D/client.log" 2>&1 &
import nbd, sys
uri, d = sys.argv[1:3]
h = nbd.NBD()
h.connect_uri(uri)
bufs = [nbd.Buffer(4096) for i in range(8)]
cookies = [h.aio_pread(b, i * 4096) for i, b in enumerate(bufs)]
open(d + "/inflight", "w").close()
while h.aio_in_flight() > 0:
    h.poll(-1)
print("in flight completed:", sum(1 for c in cookies if h.aio_command_completed(c)))
try:
    h.pread(512, 0)
    print("still connected")
except nbd.Error as e:
    print("closed afterwards:", e)
PY
client=$!
cleanup_fn kill_pid "$client"
for (( i=0; i<200; i++ )); do [ -e "$D/inflight" ] && break; sleep 0.05; done
for (( i=0; i<100; i++ )); do [ "$(eprop d ActiveConnections)" = 2 ] && break; sleep 0.05; done
wait_requests_read "$pid"   # then they sleep in the filter

kill -TERM "$DAEMON_PID"
rc=0
wait "$DAEMON_PID" || rc=$?
[ $rc = 0 ] || fail "nbdkitd exited with status $rc"
wait "$client" || fail "client: $(cat "$D/client.log")"
cat "$D/client.log"
grep -qx 'in flight completed: 8' "$D/client.log" || fail "in-flight reads lost"
grep -q '^closed afterwards' "$D/client.log" || fail "client still connected"
grep -q "export 'd': worker $pid exited with status 0" "$D/daemon.log" ||
  fail "the worker did not stop cleanly"
kill -0 "$pid" 2>/dev/null && fail "worker $pid outlived the daemon"
for (( i=0; i<100; i++ )); do kill -0 "$copy" 2>/dev/null || break; sleep 0.1; done
kill -0 "$copy" 2>/dev/null && fail "nbdcopy still runs"
echo "nbdcopy: $(tail -1 "$D/copy.log")"
echo PASS
