#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd: AddExport -> served on the shared port (three exports read at
# once, NBD_OPT_LIST with descriptions, NBD_OPT_INFO) and on a private
# unix: listener -> RemoveExport; ExportAdded/ExportRemoved, ExportCount.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which nbdinfo
requires which nbdsh
requires which qemu-img
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port

monitor_start "$D/monitor.json" \
    "type='signal',path='/org/nbdkit/Daemon1',interface='org.nbdkit.Daemon1.Manager'"

for i in 1 2 3; do
  add_export "disk$i" memory '@as []' "[(\"size\", \"${i}M\")]" \
      "{'description': <'disk number $i'>}" >/dev/null ||
    fail "AddExport disk$i"
done
add_export private pattern '@as []' '[("size", "4M")]' \
    "{'listeners': <['unix:$D/private.sock']>}" >/dev/null ||
  fail "AddExport private"
for n in disk1 disk2 disk3 private; do wait_state $n running; done

[ "$(mcall ListExports | awk '{print $2}')" = 4 ] || fail "ListExports count"
"${BUSCTL[@]}" get-property org.nbdkit.Daemon1 /org/nbdkit/Daemon1 \
    org.nbdkit.Daemon1.Manager ExportCount | grep -qx 'u 4' || fail ExportCount

# NBD_OPT_LIST through the shared port: the shared exports only.
list=$(nbdinfo --list "nbd://127.0.0.1:$port")
echo "$list"
for i in 1 2 3; do
  echo "$list" | grep -q "export=\"disk$i\"" || fail "disk$i not listed"
  echo "$list" | grep -q "description: disk number $i" || fail "no description $i"
done
echo "$list" | grep -q private && fail "a non-shared export is listed"

# Three exports read at once through the shared port.
pids=()
for i in 1 2 3; do
  nbdsh -u "nbd://127.0.0.1:$port/disk$i" -c "
h.pwrite(b'x%d' % $i * 512, 0)
assert h.get_size() == $i * 1024 * 1024
assert h.pread(1024, 0) == b'x%d' % $i * 512
" > "$D/client$i.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a client failed: $(cat "$D"/client*.log)"; done

qemu-img info --output=json "nbd://127.0.0.1:$port/disk2" |
  grep -q '"virtual-size": 2097152' || fail "qemu-img size of disk2"
[ "$(nbdinfo --size "nbd+unix:///?socket=$D/private.sock")" = 4194304 ] ||
  fail "private listener"
out=$(nbdinfo "nbd://127.0.0.1:$port/nosuch" 2>&1) && fail "unknown export accepted"
echo "$out" | grep -qi 'unknown\|No such' || fail "unknown export: $out"

uris=$(eprop private URIs)
echo "$uris" | grep -q "nbd+unix:///private?socket=$D/private.sock" || fail "URIs: $uris"
[ "$(eprop disk1 MainPID)" -gt 0 ] || fail "MainPID"

# Remove: the worker goes, the definition file goes, clients see nothing.
pid=$(eprop disk1 MainPID)
mcall RemoveExport ss disk1 safe || fail "RemoveExport"
expect_error org.nbdkit.Daemon1.Error.NoSuchExport \
    gcall /org/nbdkit/Daemon1 org.nbdkit.Daemon1.Manager.GetExport disk1
for (( i=0; i<100; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "worker $pid of a removed export still runs"
ls "$D/state" | grep -q disk1 && fail "definition file left behind"
nbdinfo --list "nbd://127.0.0.1:$port" | grep -q disk1 && fail "removed export listed"

monitor_sync "$D/monitor.json" || fail "busctl monitor stopped"
for s in ExportAdded ExportRemoved; do
  grep "\"member\":\"$s\"" "$D/monitor.json" | grep -q '"disk1"' ||
    fail "no $s signal for disk1: $(cat "$D/monitor.json")"
done
echo PASS
