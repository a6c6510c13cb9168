#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd Export.Update: an Update that changes nothing neither restarts
# the worker nor emits PropertiesChanged; a bad parameter, an unknown
# filter or a listener address in use is a named error and the old
# definition stays (in memory, on disk, and serving); a description
# change emits only Description and keeps the worker; a parameter or
# filter change restarts it with the new definition, which persists.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which nbdinfo
requires which gdbus
requires_plugin memory
requires_plugin pattern
requires_filter offset
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port
sock=$D/u.sock

add_export u pattern '@as []' '[("size", "1M")]' \
    "{'description': <'first'>, 'listeners': <['shared', 'unix:$sock']>}" \
    >/dev/null || fail "AddExport u"
wait_state u running
path=$(export_path u)
pid=$(eprop u MainPID)
cp "$D/state/u.json" "$D/u.json.orig"

monitor_start "$D/monitor.json" \
    "type='signal',path='$path',member='PropertiesChanged'"
update () { gcall "$path" org.nbdkit.Daemon1.Export.Update "$1"; }
# changed_since N: the properties named by PropertiesChanged after line N
# (not the counters: the checks here connect clients).  It runs in $(...),
# where fail would only end the subshell: if the monitor cannot be
# synced it prints a word no check accepts, so an "emitted nothing"
# check cannot pass on an empty answer.
changed_since ()
{
  if ! monitor_sync "$D/monitor.json"; then
    echo "(busctl-monitor-not-synced)"
    return
  fi
  tail -n +"$(( $1 + 1 ))" "$D/monitor.json" | /usr/bin/python3 -c '
import json, sys
names = set()
for line in sys.stdin:
    if line.startswith("{") and "PropertiesChanged" in line:
        iface, changed, inval = json.loads(line)["payload"]["data"]
        names.update(changed); names.update(inval)
names -= {"ActiveConnections", "TotalConnections", "Requests", "BytesRead",
          "BytesWritten", "Errors"}
print(" ".join(sorted(names)))'
}
lines () { wc -l < "$D/monitor.json"; }
serves () { [ "$(nbdinfo --size "nbd+unix:///u?socket=$sock")" = "$1" ] &&
            [ "$(nbdinfo --size "nbd://127.0.0.1:$port/u")" = "$1" ]; }
unchanged ()
{
  [ "$(eprop u MainPID)" = "$pid" ] || fail "$1: the worker was restarted"
  cmp -s "$D/state/u.json" "$D/u.json.orig" || fail "$1: the stored definition changed"
  "${BUSCTL[@]}" get-property org.nbdkit.Daemon1 "$path" \
      org.nbdkit.Daemon1.Export Parameters | grep -qx 'a(ss) 1 "size" "1M"' ||
    fail "$1: Parameters changed"
  [ "$(eprop u Description)" = first ] || fail "$1: Description changed"
  serves 1048576 || fail "$1: not served as before"
}

# No change: the same values given again.
n=$(lines)
update "{'description': <'first'>, 'readonly': <false>, 'params': <[('size', '1M')]>, 'listeners': <['shared', 'unix:$sock']>}" ||
  fail "no-change Update"
unchanged "no-change Update"
[ -z "$(changed_since "$n")" ] || fail "no-change Update emitted: $(changed_since "$n")"

# Refused: nothing changes.
n=$(lines)
expect_error org.nbdkit.Daemon1.Error.InvalidParameter \
    update "{'params': <[('size', '2M'), ('nosuch', 'x')]>}"
unchanged "bad parameter"
expect_error org.nbdkit.Daemon1.Error.NoSuchFilter \
    update "{'filters': <['nosuchfilter']>, 'description': <'second'>}"
unchanged "unknown filter"
python3 -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' > "$D/busy.port" &
busy=$!
cleanup_fn kill_pid "$busy"
for (( i=0; i<100; i++ )); do [ -s "$D/busy.port" ] && break; sleep 0.05; done
bport=$(cat "$D/busy.port")
expect_error org.nbdkit.Daemon1.Error.AddressInUse \
    update "{'listeners': <['tcp:127.0.0.1:$bport']>, 'params': <[('size', '2M')]>}"
unchanged "listener in use"
[ -z "$(changed_since "$n")" ] || fail "a refused Update emitted: $(changed_since "$n")"

# Description only: no restart, only Description changes.
n=$(lines)
update "{'description': <'second'>}" || fail "Update description"
[ "$(eprop u Description)" = second ] || fail "description not updated"
[ "$(eprop u MainPID)" = "$pid" ] || fail "a description change restarted the worker"
[ "$(changed_since "$n")" = Description ] ||
  fail "description change emitted: $(changed_since "$n")"
nbdinfo --list "nbd://127.0.0.1:$port" > "$D/list"
grep -q 'description: second' "$D/list" || fail "NBD_OPT_LIST: $(cat "$D/list")"

# Parameters and filters: the worker restarts with them.
n=$(lines)
update "{'filters': <['offset']>, 'params': <[('size', '2M'), ('offset', '4096')]>}" ||
  fail "Update params and filters"
for (( i=0; i<200; i++ )); do
  new=$(eprop u MainPID)
  [ "$new" != "$pid" ] && [ "$new" != 0 ] && [ "$(eprop u State)" = running ] && break
  sleep 0.05
done
[ "$new" != "$pid" ] || fail "the worker was not restarted"
serves $((2*1024*1024 - 4096)) || fail "not served with the new definition"
/usr/bin/nbdsh -u "nbd+unix:///u?socket=$sock" -c '
import struct
# pattern: each 8-byte word holds its offset; the filter shifts by 4096.
assert struct.unpack(">Q", h.pread(8, 0))[0] == 4096' || fail "data with the offset filter"
changed=$(changed_since "$n")
for p in Filters Parameters; do
  echo "$changed" | grep -qw $p || fail "no PropertiesChanged for $p: $changed"
done
echo "$changed" | grep -qw Description && fail "Description emitted: $changed"
grep -q '"offset"' "$D/state/u.json" || fail "the stored definition: $(cat "$D/state/u.json")"

# Persisted.
stop_daemon
start_daemon --listen=tcp:127.0.0.1:$port
wait_state u running
[ "$(eprop u Description)" = second ] || fail "description after restart"
serves $((2*1024*1024 - 4096)) || fail "the updated definition after restart"
echo PASS
