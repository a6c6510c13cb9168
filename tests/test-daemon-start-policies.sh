#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd start policies: boot starts with the daemon; on-demand starts at
# the first client (own listener and shared port) and stops after
# idle-timeout; manual waits for Start.  kill -9 of one worker: it is
# restarted and a client of another export keeps its connection.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which nbdinfo
requires which nbdsh
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port

add_export b memory '@as []' '[("size", "1M")]' '@a{sv} {}' >/dev/null || fail add b
add_export od pattern '@as []' '[("size", "1M")]' \
    "{'start': <'on-demand'>, 'idle-timeout': <uint32 1>, 'listeners': <['unix:$D/od.sock']>}" \
    >/dev/null || fail add od
add_export ods memory '@as []' '[("size", "2M")]' \
    "{'start': <'on-demand'>, 'idle-timeout': <uint32 1>}" >/dev/null || fail add ods
add_export m memory '@as []' '[("size", "3M")]' "{'start': <'manual'>}" \
    >/dev/null || fail add m
wait_state b running
[ "$(eprop od State)" = inactive ] || fail "on-demand started early"
[ "$(eprop m State)" = inactive ] || fail "manual started"

# On-demand, own listener: the first client starts the worker.
[ "$(nbdinfo --size "nbd+unix:///?socket=$D/od.sock")" = 1048576 ] ||
  fail "on-demand export not served"
[ "$(eprop od MainPID)" -gt 0 ] || fail "no worker for on-demand"
wait_state od inactive 10 || fail "on-demand worker did not stop when idle"
# On-demand through the shared port.
[ "$(nbdinfo --size "nbd://127.0.0.1:$port/ods")" = 2097152 ] ||
  fail "on-demand export on the shared port not served"
wait_state ods inactive 10 || fail "shared on-demand worker did not stop"
# And again after stopping.
[ "$(nbdinfo --size "nbd://127.0.0.1:$port/ods")" = 2097152 ] ||
  fail "on-demand export not served the second time"

# Manual: Start and Stop.
ecall m Start || fail "Start m"
wait_state m running
[ "$(nbdinfo --size "nbd://127.0.0.1:$port/m")" = 3145728 ] || fail "manual not served"
ecall m Stop || fail "Stop m"
wait_state m inactive

# kill -9 a worker while a client of another export stays connected.
ecall m Start
wait_state m running
mkfifo "$D/go"
nbdsh -u "nbd://127.0.0.1:$port/m" -c "
h.pwrite(b'a' * 4096, 0)
open('$D/connected', 'w').close()
open('$D/go').read()
assert h.pread(4096, 0) == b'a' * 4096
print('client kept its connection')
" > "$D/client.log" 2>&1 &
client=$!
for (( i=0; i<100; i++ )); do [ -e "$D/connected" ] && break; sleep 0.05; done
[ -e "$D/connected" ] || fail "client did not connect"
old=$(eprop b MainPID)
kill -9 "$old"
for (( i=0; i<100; i++ )); do
  new=$(eprop b MainPID)
  [ "$new" != 0 ] && [ "$new" != "$old" ] && break
  sleep 0.05
done
[ "$new" != "$old" ] && [ "$new" != 0 ] || fail "worker not restarted"
wait_state b running
[ "$(nbdinfo --size "nbd://127.0.0.1:$port/b")" = 1048576 ] || fail "b not served after restart"
echo > "$D/go"
wait "$client" || fail "client of m lost its connection: $(cat "$D/client.log")"
grep -q 'kept its connection' "$D/client.log" || fail "client output"

# Restart keeps the listener: a client right after works.
ecall od Restart
wait_state od running
[ "$(nbdinfo --size "nbd+unix:///?socket=$D/od.sock")" = 1048576 ] || fail "after Restart"
echo PASS
