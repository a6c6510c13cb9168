#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd --fd-store while no daemon runs (fdstore_supervisor.py "term",
# then "start"): a worker keeps serving clients on its own listener
# alone; a client of the shared port waits in the stored listening
# socket's backlog and is served by the next daemon; a worker killed in
# between is started again; an export whose definition was removed in
# between has its worker stopped gracefully; the counters include what
# happened while no daemon ran.  Then the same after a crash (SIGKILL):
# the map written after every change lets the next daemon adopt a.  The
# shared port comes by socket activation here, as from nbdkitd.socket:
# the supervisor passes it at every start besides the store.  Last, a
# worker retired by an Update while a client uses it is adopted as
# retired: it serves that client on and exits once the client leaves.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which nbdinfo
requires /usr/bin/python3 -c 'import nbd'
requires_plugin memory
daemon_setup

port=$(free_tcp_port)
sock=$D/sup.sock
sup_ctl () { /usr/bin/python3 "$srcdir/fdstore_supervisor.py" ctl "$sock" "$@"; }
/usr/bin/python3 "$srcdir/fdstore_supervisor.py" run "$sock" \
    --socket-unit=$port -- \
    ${DAEMON_WRAPPER:-} "$NBDKITD" -v --fd-store --state-dir="$D/state" \
    --runtime-dir="$D/run" >>"$D/daemon.log" 2>&1 &
sup=$!
cleanup_fn kill_pid "$sup"
for (( i=0; i<100; i++ )); do [ -S "$sock" ] && break; sleep 0.05; done
sup_ctl wait-ready || fail "the daemon did not become ready"

for e in a b c; do
  add_export $e memory '@as []' "[('size', '1M')]" \
      "{'listeners': <['shared', 'unix:$D/$e.sock']>}" >/dev/null ||
    fail "AddExport $e"
done
for e in a b c; do wait_state $e running; done
pid_a=$(eprop a MainPID)
pid_b=$(eprop b MainPID)
pid_c=$(eprop c MainPID)

answer=$(sup_ctl term) || fail "term: $answer"
echo "term: $answer"
# 3 listeners, 3 control sockets, 3 standard errors; not the shared port.
case $answer in *fds=9*) ;; *) fail "the store: $answer" ;; esac
case $answer in *daemon=0*) ;; *) fail "daemon exit: $answer" ;; esac
"${BUSCTL[@]}" status org.nbdkit.Daemon1 >/dev/null 2>&1 &&
  fail "the daemon still owns its name"

# No daemon: a serves on its own listener, a shared-port client waits.
[ "$(nbdinfo --size "nbd+unix:///?socket=$D/a.sock")" = 1048576 ] ||
  fail "a while no daemon runs"
nbdinfo --size "nbd://127.0.0.1:$port/a" > "$D/waiting.out" 2>&1 &
waiting=$!
cleanup_fn kill_pid "$waiting"
kill -9 "$pid_b"
rm "$D/state/c.json"

answer=$(sup_ctl start) || fail "start: $answer"
echo "start: $answer"
wait "$waiting" || fail "the waiting client: $(cat "$D/waiting.out")"
[ "$(cat "$D/waiting.out")" = 1048576 ] || fail "waiting: $(cat "$D/waiting.out")"

[ "$(eprop a MainPID)" = "$pid_a" ] || fail "a: a new worker"
total=$(eprop a TotalConnections)
for (( i=0; i<40 && total < 2; i++ )); do
  sleep 0.05; total=$(eprop a TotalConnections)
done
[ "$total" -ge 2 ] || fail "a: TotalConnections $total"
wait_state b running
[ "$(eprop b MainPID)" != "$pid_b" ] || fail "b: the killed worker"
[ "$(nbdinfo --size "nbd+unix:///?socket=$D/b.sock")" = 1048576 ] ||
  fail "b's new worker"
mcall ListExports | grep -q '"c"' && fail "c is still listed"
for (( i=0; i<100; i++ )); do kill -0 "$pid_c" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid_c" 2>/dev/null && fail "c's worker $pid_c still runs"

# A crash: the workers and the store stay, the next daemon adopts them.
answer=$(sup_ctl kill) || fail "kill: $answer"
echo "kill: $answer"
answer=$(sup_ctl start) || fail "start after kill: $answer"
echo "start: $answer"
[ "$(eprop a MainPID)" = "$pid_a" ] || fail "a: a new worker after the crash"
[ "$(eprop a State)" = running ] || fail "a: $(eprop a State) after the crash"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port/a")" = 1048576 ] ||
  fail "a on the shared port after the crash"

# Retired workers are adopted as such.
/usr/bin/python3 - "$D" <<'PY' > "$D/holder.log" 2>&1 &
import nbd, os, sys, time
d = sys.argv[1]
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=%s/a.sock" % d)
open(d + "/held", "w").close()
for i in range(600):
    if os.path.exists(d + "/release"):
        break
    time.sleep(0.05)
h.pread(512, 0)
h.shutdown()
PY
holder=$!
cleanup_fn kill_pid "$holder"
for (( i=0; i<200; i++ )); do [ -e "$D/held" ] && break; sleep 0.05; done
[ -e "$D/held" ] || fail "the client of a: $(cat "$D/holder.log")"
gcall "$(export_path a)" org.nbdkit.Daemon1.Export.Update \
    "{'params': <[('size', '2M')]>}" >/dev/null || fail "Update a"
wait_state a running
new_a=$(eprop a MainPID)
[ "$new_a" != "$pid_a" ] || fail "a: Update did not replace the worker"
answer=$(sup_ctl restart) || fail "restart: $answer"
echo "restart: $answer"
grep -q "export 'a': retired worker $pid_a adopted" "$D/daemon.log" ||
  fail "the retired worker $pid_a was not adopted"
[ "$(eprop a MainPID)" = "$new_a" ] || fail "a: MainPID after the restart"
[ "$(nbdinfo --size "nbd://127.0.0.1:$port/a")" = 2097152 ] ||
  fail "a's new worker"
touch "$D/release"
wait "$holder" || fail "the client of the retired worker: $(cat "$D/holder.log")"
for (( i=0; i<100; i++ )); do
  grep -q "export 'a': retired worker $pid_a has exited" "$D/daemon.log" && break
  sleep 0.05
done
grep -q "export 'a': retired worker $pid_a has exited" "$D/daemon.log" ||
  fail "the adopted retired worker $pid_a did not exit cleanly"

answer=$(sup_ctl stop) || fail "stop: $answer"
echo "stop: $answer"
case ",${answer##*workers=}," in
  *",$pid_c:0,"*",$pid_a:0,"*|*",$pid_a:0,"*",$pid_c:0,"*) ;;
  *) fail "a or c did not stop cleanly: $answer" ;;
esac
wait "$sup" || fail "the supervisor failed"
echo PASS
