#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd Export.Update without dropping clients (issue 14): while two
# nbdcopy clients (one on the export's own Unix listener, one through the
# shared port) copy a slow file export, an Update that changes its
# filters starts a new worker with the new definition; the copies
# finish without an error and with identical data; new clients reach the
# new worker at once; the old worker exits after its last client, and
# the counters keep the old worker's work.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which nbdcopy
requires which gdbus
requires_plugin file
requires_filter rate
requires_filter offset
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port
sock=$D/live.sock

# 32 MiB of non-repeating data, served at 64 Mbit/s (8 MiB/s) per
# connection: each copy takes about 4 s.
/usr/bin/python3 -c '
import hashlib, sys
with open(sys.argv[1], "wb") as f:
    for i in range(32 * 1024 // 32):
        f.write(hashlib.sha256(str(i).encode()).digest() * 1024)' "$D/disk.img"
add_export live file '@as ["rate"]' \
    "[(\"file\", \"$D/disk.img\"), (\"rate\", \"64M\")]" \
    "{'listeners': <['shared', 'unix:$sock']>}" >/dev/null ||
  fail "AddExport live"
wait_state live running
path=$(export_path live)
old=$(eprop live MainPID)

nbdcopy -C 1 "nbd+unix:///live?socket=$sock" "$D/copy1.img" 2>"$D/copy1.err" &
c1=$!
cleanup_fn kill_pid "$c1"
nbdcopy -C 1 "nbd://127.0.0.1:$port/live" "$D/copy2.img" 2>"$D/copy2.err" &
c2=$!
cleanup_fn kill_pid "$c2"
for (( i = 0; i < 200; i++ )); do
  [ "$(eprop live ActiveConnections)" = 2 ] && break
  sleep 0.05
done
[ "$(eprop live ActiveConnections)" = 2 ] || fail "the two copies did not connect"

# The new definition: a different filter stack, same data.
gcall "$path" org.nbdkit.Daemon1.Export.Update \
    "{'filters': <['offset', 'rate']>, 'params': <[('file', '$D/disk.img'), ('rate', '64M'), ('offset', '0')]>}" \
    >/dev/null || fail "Update failed"
wait_state live running
new=$(eprop live MainPID)
[ "$new" != "$old" ] && [ "$new" != 0 ] || fail "no new worker ($old -> $new)"
kill -0 "$old" 2>/dev/null || fail "the old worker $old exited with clients on it"

# New clients go to the new worker while the copies go on.
size=$(nbdinfo --size "nbd+unix:///live?socket=$sock") || fail "new client (unix)"
[ "$size" = 33554432 ] || fail "new client sees size $size"
nbdinfo --size "nbd://127.0.0.1:$port/live" >/dev/null || fail "new client (shared)"
kill -0 "$c1" 2>/dev/null || kill -0 "$c2" 2>/dev/null ||
  echo "warning: both copies finished before the new clients connected"

wait "$c1" || fail "copy 1 (unix) failed: $(cat "$D/copy1.err")"
wait "$c2" || fail "copy 2 (shared) failed: $(cat "$D/copy2.err")"
cmp "$D/disk.img" "$D/copy1.img" || fail "copy 1 differs"
cmp "$D/disk.img" "$D/copy2.img" || fail "copy 2 differs"
echo "ok: both copies finished with identical data across the Update"

for (( i = 0; i < 200; i++ )); do
  kill -0 "$old" 2>/dev/null || break
  sleep 0.05
done
kill -0 "$old" 2>/dev/null && fail "the old worker $old did not exit after its clients"
total=$(eprop live TotalConnections)
[ "$total" -ge 4 ] || fail "TotalConnections is $total, expected >= 4"
bytes=$(eprop live BytesRead)
[ "$bytes" -ge $((2 * 33554432)) ] || fail "BytesRead is $bytes"
grep -q "replacing worker $old" "$D/daemon.log" || fail "no replacement logged"
echo "ok: old worker $old exited after its clients; counters kept ($total, $bytes)"

# Removing an export (hard) with a retired worker still serving stops both.
nbdcopy -C 1 "nbd+unix:///live?socket=$sock" null: 2>/dev/null &
c3=$!
cleanup_fn kill_pid "$c3"
for (( i = 0; i < 200; i++ )); do
  [ "$(eprop live ActiveConnections)" = 1 ] && break
  sleep 0.05
done
mid=$(eprop live MainPID)
gcall "$path" org.nbdkit.Daemon1.Export.Update \
    "{'params': <[('file', '$D/disk.img'), ('rate', '32M'), ('offset', '0')]>}" \
    >/dev/null || fail "second Update failed"
wait_state live running
mcall RemoveExport ss live hard >/dev/null || fail "RemoveExport"
for (( i = 0; i < 600; i++ )); do
  kill -0 "$mid" 2>/dev/null || break
  sleep 0.05
done
kill -0 "$mid" 2>/dev/null && fail "the retired worker $mid outlived RemoveExport"
wait "$c3" 2>/dev/null || :
echo "ok: RemoveExport stops the retired worker too"
echo "$0: ok"
