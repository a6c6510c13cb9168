#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd --fd-store under a systemd-like supervisor that keeps a
# file-descriptor store (fdstore_supervisor.py): the daemon is restarted
# while nbdcopy reads a 64 MiB file export on the shared port (the issue
# says 1 GiB: 64 MiB keeps the test short).  The rate filter lets the
# first part of the copy through at once and slows the rest; the pause
# filter holds the copy's requests during the restart, so that it spans
# the restart whatever the machine's load.  The copy completes with
# identical data, the same worker processes keep serving, new clients
# reach both the shared port and an export's own Unix listener, the
# properties are right, and stopping through the supervisor (closing the
# store, as systemctl stop) ends the workers gracefully.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which nbdcopy
requires which nbdinfo
requires which cmp
requires_plugin file
requires_plugin memory
requires_filter rate
daemon_setup

port=$(free_tcp_port)
sock=$D/sup.sock
sup_ctl () { /usr/bin/python3 "$srcdir/fdstore_supervisor.py" ctl "$sock" "$@"; }
/usr/bin/python3 "$srcdir/fdstore_supervisor.py" run "$sock" -- \
    ${DAEMON_WRAPPER:-} "$NBDKITD" -v --fd-store --state-dir="$D/state" \
    --runtime-dir="$D/run" --listen=tcp:127.0.0.1:$port \
    >>"$D/daemon.log" 2>&1 &
sup=$!
cleanup_fn kill_pid "$sup"
for (( i=0; i<100; i++ )); do [ -S "$sock" ] && break; sleep 0.05; done
sup_ctl wait-ready || fail "the daemon did not become ready"

head -c 64M /dev/urandom > "$D/disk.img"
add_export f file "['rate', 'pause']" \
    "[('file', '$D/disk.img'), ('rate', '128M'),
      ('pause-control', '$D/pause.sock')]" '@a{sv} {}' >/dev/null ||
  fail "AddExport f"
add_export u memory '@as []' "[('size', '1M')]" \
    "{'listeners': <['unix:$D/u.sock']>}" >/dev/null || fail "AddExport u"
wait_state f running
wait_state u running
path_f=$(export_path f)
path_u=$(export_path u)
# props PATH PROPERTY...: the values, one per line
props ()
{
  local path=$1; shift
  "${BUSCTL[@]}" get-property org.nbdkit.Daemon1 "$path" \
      org.nbdkit.Daemon1.Export "$@" | cut -d' ' -f2- | tr -d '"'
}
pause ()
{
  /usr/bin/python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode()); print(s.recv(1).decode())' "$D/pause.sock" "$1"
}
pid_f=$(props "$path_f" MainPID)
pid_u=$(props "$path_u" MainPID)
old_daemon=$(sup_ctl status | sed 's/.*pid=\([0-9]*\).*/\1/')

nbdcopy --connections=1 "nbd://127.0.0.1:$port/f" "$D/copy.img" \
    > "$D/copy.log" 2>&1 &
copy=$!
cleanup_fn kill_pid "$copy"
for (( i=0; i<200; i++ )); do
  [ "$(props "$path_f" ActiveConnections)" = 1 ] && break; sleep 0.05
done
[ "$(pause p)" = P ] || fail "pause"
kill -0 "$copy" 2>/dev/null || fail "nbdcopy: $(cat "$D/copy.log")"

answer=$(sup_ctl restart) || fail "restart: $answer"
echo "restart: $answer"
new_daemon=$(echo "$answer" | sed 's/.*pid=\([0-9]*\).*/\1/')
case $answer in *previous=0*) ;; *) fail "the first daemon's exit: $answer" ;; esac
[ "$new_daemon" != "$old_daemon" ] || fail "the daemon was not restarted"
grep -q "export 'f': worker $pid_f adopted" "$D/daemon.log" ||
  fail "worker $pid_f not adopted"

# The same workers, with their state and counters (the reply to "stats"
# comes just after READY=1).
[ "$(props "$path_u" MainPID State | xargs)" = "$pid_u running" ] ||
  fail "u: $(props "$path_u" MainPID State | xargs)"
want="$pid_f running 1 1"
for (( i=0; i<40; i++ )); do
  got=$(props "$path_f" MainPID State ActiveConnections TotalConnections | xargs)
  [ "$got" = "$want" ] && break; sleep 0.05
done
[ "$got" = "$want" ] || fail "f: $got, expected $want"
[ "$(props "$path_f" BytesRead)" -gt 0 ] || fail "f: no BytesRead"
mcall ListExports | grep -q '"f".*"u"\|"u".*"f"' ||
  fail "ListExports: $(mcall ListExports)"

# New clients on the kept listeners.
[ "$(nbdinfo --size "nbd://127.0.0.1:$port/f")" = 67108864 ] ||
  fail "new client on the shared port"
[ "$(nbdinfo --size "nbd+unix:///?socket=$D/u.sock")" = 1048576 ] ||
  fail "new client on u's own listener"

[ "$(pause r)" = R ] || fail "resume"
wait "$copy" || fail "nbdcopy: $(cat "$D/copy.log")"
cmp "$D/disk.img" "$D/copy.img" || fail "the copy differs"
[ "$(props "$path_f" MainPID)" = "$pid_f" ] || fail "f: a new worker"

# Stop: the store closes, the workers stop gracefully (status 0).
answer=$(sup_ctl stop) || fail "stop: $answer"
echo "stop: $answer"
case $answer in
  *daemon=0*) ;; *) fail "the daemon did not exit with 0: $answer" ;;
esac
for p in "$pid_f" "$pid_u"; do
  case ",${answer##*workers=}," in
    *",$p:0,"*) ;; *) fail "worker $p did not stop cleanly: $answer" ;;
  esac
done
wait "$sup" || fail "the supervisor failed"
echo PASS
