#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd RemoveExport modes: "safe" is Busy while a client is connected
# (the export and the client carry on); "hard" disconnects the clients
# gracefully (requests in flight complete, then the connection closes) and
# answers once the export is gone; "safe" without clients stops the worker
# cleanly; an export without a worker goes at once.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires which gdbus
requires_plugin memory
requires_filter delay
daemon_setup
start_daemon

sock=$D/r.sock
# Every read takes a second: requests stay in flight long enough.
add_export r memory "['delay']" '[("size", "1M"), ("delay-read", "1")]' \
    "{'listeners': <['unix:$sock']>}" >/dev/null || fail "AddExport r"
wait_state r running
pid=$(eprop r MainPID)

# A client with 8 reads in flight when it says "inflight"; it then
# reports how they ended and whether the connection still works.
/usr/bin/python3 - "nbd+unix:///r?socket=$sock" "$D" <<'PY' > "$D/client.log" 2>&1 &
import nbd, os, sys, time
uri, d = sys.argv[1:3]
h = nbd.NBD()
h.connect_uri(uri)
open(d + "/connected", "w").close()
while not os.path.exists(d + "/go"):
    time.sleep(0.05)
bufs = [nbd.Buffer(4096) for i in range(8)]
cookies = [h.aio_pread(b, i * 4096) for i, b in enumerate(bufs)]
open(d + "/inflight", "w").close()
while h.aio_in_flight() > 0:
    h.poll(-1)
ok = sum(1 for c in cookies if h.aio_command_completed(c))
print("in flight completed:", ok)
try:
    h.pread(512, 0)
    print("still connected")
except nbd.Error as e:
    print("closed afterwards:", e)
PY
client=$!
cleanup_fn kill_pid "$client"
for (( i=0; i<200; i++ )); do [ -e "$D/connected" ] && break; sleep 0.05; done
[ -e "$D/connected" ] || fail "client did not connect: $(cat "$D/client.log")"
for (( i=0; i<100; i++ )); do [ "$(eprop r ActiveConnections)" = 1 ] && break; sleep 0.05; done

# safe: Busy, nothing changes.
expect_error org.nbdkit.Daemon1.Error.Busy \
    gcall /org/nbdkit/Daemon1 org.nbdkit.Daemon1.Manager.RemoveExport r safe |
  grep -q "'r'" || fail "the Busy error does not name the export"
[ "$(eprop r State)" = running ] || fail "safe removal changed the state"
[ "$(eprop r MainPID)" = "$pid" ] || fail "safe removal touched the worker"
[ -f "$D/state/r.json" ] || fail "safe removal deleted the definition"

# hard while 8 reads are in flight: they complete, the connection then
# closes, and the call returns once the export has gone.
touch "$D/go"
for (( i=0; i<200; i++ )); do [ -e "$D/inflight" ] && break; sleep 0.05; done
wait_requests_read "$pid"   # then they sleep in the filter
mcall RemoveExport ss r hard || fail "RemoveExport hard"
mcall GetExport s r >/dev/null 2>&1 && fail "r still exists when RemoveExport returned"
[ -e "$D/state/r.json" ] && fail "r's definition still stored"
kill -0 "$pid" 2>/dev/null && fail "r's worker still runs when RemoveExport returned"
wait "$client" || fail "client: $(cat "$D/client.log")"
cat "$D/client.log"
grep -qx 'in flight completed: 8' "$D/client.log" || fail "in-flight reads lost"
grep -q '^closed afterwards' "$D/client.log" || fail "client still connected"
grep -q "export 'r': worker $pid exited with status 0" "$D/daemon.log" ||
  fail "the worker did not stop cleanly"

# safe without clients: the worker stops cleanly, then the export goes.
add_export s memory '@as []' '[("size", "1M")]' '@a{sv} {}' >/dev/null ||
  fail "AddExport s"
wait_state s running
spid=$(eprop s MainPID)
mcall RemoveExport ss s safe || fail "RemoveExport safe"
mcall GetExport s s >/dev/null 2>&1 && fail "s still exists"
grep -q "export 's': worker $spid exited with status 0" "$D/daemon.log" ||
  fail "s's worker did not stop cleanly"

# No worker (manual, never started): removed at once, in either mode.
add_export m memory '@as []' '[("size", "1M")]' "{'start': <'manual'>}" \
    >/dev/null || fail "AddExport m"
mcall RemoveExport ss m hard || fail "RemoveExport m hard"
mcall GetExport s m >/dev/null 2>&1 && fail "m still exists"
expect_error org.nbdkit.Daemon1.Error.NoSuchExport \
    gcall /org/nbdkit/Daemon1 org.nbdkit.Daemon1.Manager.RemoveExport m safe
expect_error org.nbdkit.Daemon1.Error.InvalidParameter \
    gcall /org/nbdkit/Daemon1 org.nbdkit.Daemon1.Manager.RemoveExport m soft
[ -z "$(ls "$D/state")" ] || fail "definitions left: $(ls "$D/state")"
echo PASS
