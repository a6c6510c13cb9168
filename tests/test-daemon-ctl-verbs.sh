#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every nbdkitctl verb against a real nbdkitd on a private bus: --json
# equals what busctl reports for the same objects, tables for a few cases,
# the magic key, connections listed and disconnected with a real client.

source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
source "$srcdir/test-daemon-ctl-lib.bash"

ctl_setup
requires /usr/bin/nbdsh --version
requires_plugin memory
requires_plugin file
daemon_setup
start_daemon

# status on an empty daemon.
ctl status > "$D/out"
version=$("${BUSCTL[@]}" get-property org.nbdkit.Daemon1 /org/nbdkit/Daemon1 \
            org.nbdkit.Daemon1.Manager Version | sed 's/^s "//; s/"$//')
grep -qx "  Version: $version" "$D/out" || fail "status: $(cat "$D/out")"
grep -qx "  Exports: 0" "$D/out" || fail "status: $(cat "$D/out")"
ctl --json status > "$D/out"
json_check "$D/out" "d['version'] == '$version' and d['exports'] == 0"

# list-plugins / list-filters: the same as ListPlugins / ListFilters.
for what in plugins filters; do
  ctl --json list-$what > "$D/ctl.json"
  method=List${what^}
  mcall "$method" --json=short > "$D/bus.json"
  json_equal_busctl "$D/ctl.json" "$D/bus.json" \
    '[{"name": n, "version": v, "description": s} for n, v, s in b[0]]'
done
ctl list-plugins > "$D/out"
head -1 "$D/out" | grep -qE '^PLUGIN +VERSION +DESCRIPTION$' ||
  fail "list-plugins header: $(head -1 "$D/out")"
grep -qE '^memory +[0-9.]+ +[A-Za-z]' "$D/out" || fail "list-plugins: no memory"

# add-export: the magic key (memory 1M is size=1M), options, --json path.
sock=$D/disk1.sock
ctl --json add-export disk1 --description="first disk" \
  --listen="unix:$sock" memory 1M > "$D/out"
path=$(export_path disk1)
json_check "$D/out" "d == {'name': 'disk1', 'path': '$path'}"
wait_state disk1 running

# list-exports: JSON equals ListExports; the table is aligned.
ctl --json list-exports > "$D/ctl.json"
mcall ListExports --json=short > "$D/bus.json"
json_equal_busctl "$D/ctl.json" "$D/bus.json" \
  '[{"name": n, "plugin": p, "state": s, "path": o} for n, p, s, o in b[0]]'
ctl list > "$D/out"
grep -qE '^NAME +PLUGIN +STATE$' "$D/out" || fail "list: $(cat "$D/out")"
grep -qE '^disk1 +memory +running$' "$D/out" || fail "list: $(cat "$D/out")"
grep -qx '1 export listed.' "$D/out" || fail "list footer: $(cat "$D/out")"
ctl -q list > "$D/out"
[ "$(cat "$D/out")" = "disk1  memory  running" ] ||
  fail "list -q: $(cat "$D/out")"

# show-export: JSON equals GetAll with the variants unwrapped.
check_show_export ()
{
  ctl --json show-export "$1" > "$D/ctl.json"
  "${BUSCTL[@]}" --json=short call org.nbdkit.Daemon1 "$(export_path "$1")" \
    org.freedesktop.DBus.Properties GetAll s org.nbdkit.Daemon1.Export \
    > "$D/bus.json"
  json_equal_busctl "$D/ctl.json" "$D/bus.json" \
    '{k: v["data"] for k, v in b[0].items()}'
}
check_show_export disk1
json_check "$D/ctl.json" \
  "d['Parameters'] == [['size', '1M']] and d['Description'] == 'first disk'"
ctl show-export disk1 > "$D/out"
grep -qE '^ +State: running$' "$D/out" || fail "show-export: $(cat "$D/out")"
grep -qE '^ +Parameters: size=1M$' "$D/out" || fail "show-export params"
ctl status disk1 | cmp - "$D/out" || fail "status NAME differs from show-export"

# uri: one per line, equal to the URIs property, and a client can use it.
ctl uri disk1 > "$D/out"
ctl --json uri disk1 > "$D/ctl.json"
"${BUSCTL[@]}" --json=short get-property org.nbdkit.Daemon1 "$path" \
  org.nbdkit.Daemon1.Export URIs > "$D/bus.json"
json_equal_busctl "$D/ctl.json" "$D/bus.json" 'b'
grep -q "socket=$sock" "$D/out" || fail "uri: $(cat "$D/out")"
uri=$(grep -m1 "^nbd+unix:" "$D/out")
size=$(/usr/bin/nbdsh -u "$uri" -c 'print(h.get_size())')
[ "$size" = 1048576 ] || fail "size through $uri: $size"

# status with one running export and its listener.
ctl status > "$D/out"
grep -qx "  Exports: 1 (1 running)" "$D/out" || fail "status: $(cat "$D/out")"
grep -q "unix:$sock (\"disk1\")" "$D/out" || fail "status: $(cat "$D/out")"

# A client holding a connection: list-connections, then disconnect.
hold_client "$uri"
wait_property disk1 ActiveConnections 1
ctl --json list-connections > "$D/ctl.json"
ecall disk1 ListConnections --json=short > "$D/bus.json"
json_equal_busctl "$D/ctl.json" "$D/bus.json" \
  '[{"export": "disk1", "id": i, "peer": p, "export_name": n,
     "tls_identity": t, "connected_since_usec": s, "bytes_read": r,
     "bytes_written": w} for i, p, n, t, s, r, w in b[0]]'
ctl list-connections disk1 > "$D/out"
grep -qE '^EXPORT +ID +PEER +TLS +SINCE +READ +WRITTEN$' "$D/out" ||
  fail "list-connections: $(cat "$D/out")"
id=$(json_get "$D/ctl.json" "d[0]['id']")
grep -qE "^disk1 +$id " "$D/out" || fail "list-connections: $(cat "$D/out")"
ctl disconnect disk1 "$id" --force
wait_property disk1 ActiveConnections 0
wait_client_gone

# update-export: only what is given changes; the magic key again.
ctl update-export disk1 --description="second" 2M
wait_state disk1 running
check_show_export disk1
json_check "$D/ctl.json" "d['Parameters'] == [['size', '2M']] and
  d['Description'] == 'second' and d['Listeners'] == ['unix:$sock']"
ctl update-export disk1 -r --filter=cow
wait_state disk1 running
check_show_export disk1
json_check "$D/ctl.json" "d['ReadOnly'] is True and d['Filters'] == ['cow']
  and d['Parameters'] == [['size', '2M']]"

# stop / start / restart.
ctl stop disk1
wait_state disk1 inactive
ctl start disk1
wait_state disk1 running
pid1=$(eprop disk1 MainPID)
ctl restart disk1
wait_state disk1 running
pid2=$(eprop disk1 MainPID)
[ "$pid1" != "$pid2" ] && [ "$pid2" != 0 ] || fail "restart: pid $pid1 -> $pid2"

# The file plugin's magic key, a manual export, the default export "".
truncate -s 64K "$D/img"
ctl add-export f1 --start=manual file "$D/img"
check_show_export f1
json_check "$D/ctl.json" "d['Parameters'] == [['file', '$D/img']] and
  d['State'] == 'inactive' and d['StartPolicy'] == 'manual'"
ctl add-export "" --start=manual memory size=1M
ctl -q list > "$D/out"
grep -qE '^"" +memory +inactive$' "$D/out" || fail "default export: $(cat "$D/out")"
ctl --json show-export "" > "$D/ctl.json"
json_check "$D/ctl.json" "d['Name'] == ''"

# remove-export.
ctl remove-export f1
ctl remove-export ""
ctl remove-export disk1
ctl --json list > "$D/ctl.json"
json_check "$D/ctl.json" "d == []"

echo "$0: OK"
