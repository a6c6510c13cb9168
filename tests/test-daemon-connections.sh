#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd connections: ListConnections (a(tsssttt)) through busctl while
# libnbd clients are connected (peer, export name, connection time, byte
# counters that grow); Disconnect(id, false) during an nbdcopy (the copy
# fails, other clients keep being served), Disconnect(id, true), an
# unknown id; the counter properties move and their PropertiesChanged
# comes at most once a second.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires which nbdcopy
requires which nbdinfo
requires_plugin memory
requires_filter delay
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port
uri="nbd://127.0.0.1:$port/disk"

# 64 MiB; reads take 20 ms each so that an nbdcopy lasts for seconds.
add_export disk memory "['delay']" '[("size", "64M"), ("delay-read", "20ms")]' \
    '@a{sv} {}' >/dev/null || fail "AddExport disk"
wait_state disk running
path=$(export_path disk)

monitor_start "$D/monitor.json" \
    "type='signal',path='$path',member='PropertiesChanged'"
monitor=$MONITOR_PID

# client NAME: a libnbd client driven by lines written to $D/NAME.in
# ("read N", "write N", "quit"); it appends "ok CMD" or "error CMD: ..."
# to $D/NAME.out.
client ()
{
  local name=$1
  mkfifo "$D/$name.in"
  /usr/bin/python3 - "$uri" "$D/$name.in" "$D/$name.out" <<'PY' &
import nbd, sys
uri, cmds, out = sys.argv[1:4]
h = nbd.NBD()
h.connect_uri(uri)
def say(s):
    with open(out, "a") as f:
        f.write(s + "\n")
say("ok connect")
with open(cmds) as f:
    for line in f:
        cmd = line.split()
        try:
            if cmd[0] == "read":
                h.pread(int(cmd[1]), 0)
            elif cmd[0] == "write":
                h.pwrite(b"w" * int(cmd[1]), 0)
            elif cmd[0] == "quit":
                break
            say("ok " + line.strip())
        except nbd.Error as e:
            say("error " + line.strip() + ": " + str(e))
            sys.exit(0)
PY
  cleanup_fn kill_pid $!
  exec {fd}<>"$D/$name.in"
  eval "${name}_fd=$fd"
}
# send NAME CMD: send a command and wait (bounded) for its answer line.
send ()
{
  local name=$1 cmd=$2 fdvar="${1}_fd" n i
  n=$(cat "$D/$name.out" 2>/dev/null | wc -l)
  echo "$cmd" >&"${!fdvar}"
  for (( i=0; i<200; i++ )); do
    [ "$(cat "$D/$name.out" 2>/dev/null | wc -l)" -gt "$n" ] && break
    sleep 0.05
  done
  tail -1 "$D/$name.out"
}
wait_connected ()
{
  local i
  for (( i=0; i<200; i++ )); do
    grep -q '^ok connect' "$D/$1.out" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "client $1 did not connect"
}
# connections: ListConnections as JSON ([[id, peer, name, tls, since, r, w], ...]).
connections ()
{
  "${BUSCTL[@]}" call org.nbdkit.Daemon1 "$path" org.nbdkit.Daemon1.Export \
      ListConnections --json=short
}
counter () { eprop disk "$1"; }
# wait_counter PROP OP VALUE: until the property compares as asked (5 s).
wait_counter ()
{
  local prop=$1 op=$2 want=$3 i v
  for (( i=0; i<100; i++ )); do
    v=$(counter "$prop")
    [ "$v" "$op" "$want" ] && return 0
    sleep 0.05
  done
  fail "$prop is $v, expected $op $want"
}

t0=$(date +%s%6N)
client a; wait_connected a
client b; wait_connected b
t1=$(date +%s%6N)
wait_counter ActiveConnections -eq 2
wait_counter TotalConnections -ge 2

# The reply's signature and contents.
"${BUSCTL[@]}" call org.nbdkit.Daemon1 "$path" org.nbdkit.Daemon1.Export \
    ListConnections | grep -q '^a(tsssttt) 2 ' || fail "ListConnections signature"
connections > "$D/c1.json"
/usr/bin/python3 - "$D/c1.json" "$t0" "$t1" <<'PY' || fail "ListConnections: $(cat "$D/c1.json")"
import json, sys
d = json.load(open(sys.argv[1]))
t0, t1 = int(sys.argv[2]), int(sys.argv[3])
assert d["type"] == "a(tsssttt)", d["type"]
conns = d["data"][0]
assert len(conns) == 2, conns
assert conns[0][0] != conns[1][0]
for cid, peer, name, tls, since, rd, wr in conns:
    assert peer.startswith("127.0.0.1:"), peer
    assert name == "disk", name
    assert tls == "", tls
    assert isinstance(since, int) and t0 - 1000000 <= since <= t1 + 1000000, (since, t0, t1)
print("ListConnections ok:", conns)
PY

# Reads and writes make the byte counters grow, per connection and in total.
req0=$(counter Requests); rd0=$(counter BytesRead); wr0=$(counter BytesWritten)
[ "$(send a "write 1048576")" = "ok write 1048576" ] || fail "client a write"
[ "$(send a "read 1048576")" = "ok read 1048576" ] || fail "client a read"
[ "$(send b "read 65536")" = "ok read 65536" ] || fail "client b read"
connections > "$D/c2.json"
/usr/bin/python3 - "$D/c1.json" "$D/c2.json" <<'PY' || fail "per-connection counters: $(cat "$D/c2.json")"
import json, sys
before = {c[0]: c for c in json.load(open(sys.argv[1]))["data"][0]}
after = {c[0]: c for c in json.load(open(sys.argv[2]))["data"][0]}
assert before.keys() == after.keys()
grew = sorted((after[i][5] - before[i][5], after[i][6] - before[i][6]) for i in after)
assert grew == [(65536, 0), (1048576, 1048576)], grew
PY
wait_counter BytesRead -ge $((rd0 + 1048576 + 65536))
wait_counter BytesWritten -ge $((wr0 + 1048576))
wait_counter Requests -ge $((req0 + 3))
[ "$(counter ActiveConnections)" = 2 ] || fail "ActiveConnections"

# Disconnect(id, false) while nbdcopy runs: the copy fails, the others are
# still served.
ids_before=$(connections | /usr/bin/python3 -c 'import json,sys; print(" ".join(str(c[0]) for c in json.load(sys.stdin)["data"][0]))')
nbdcopy --no-extents --connections=1 --requests=4 --request-size=65536 "$uri" null: \
    > "$D/copy.log" 2>&1 &
copy=$!
cleanup_fn kill_pid "$copy"
for (( i=0; i<100; i++ )); do
  copy_id=$(connections | /usr/bin/python3 -c "
import json, sys
old = set('$ids_before'.split())
print(' '.join(str(c[0]) for c in json.load(sys.stdin)['data'][0] if str(c[0]) not in old))")
  [ -n "$copy_id" ] && break
  sleep 0.05
done
[ -n "$copy_id" ] || fail "nbdcopy's connection not listed"
sleep 2    # the copy is busy: counters are moving for a while
kill -0 "$copy" 2>/dev/null || fail "nbdcopy finished too early: $(cat "$D/copy.log")"
ecall disk Disconnect tb "$copy_id" false || fail "Disconnect($copy_id, false)"
for (( i=0; i<100; i++ )); do kill -0 "$copy" 2>/dev/null || break; sleep 0.05; done
kill -0 "$copy" 2>/dev/null && fail "nbdcopy still runs after Disconnect"
wait "$copy" && fail "nbdcopy succeeded although it was disconnected"
echo "nbdcopy failed as expected: $(tail -1 "$D/copy.log")"
[ "$(send a "read 4096")" = "ok read 4096" ] || fail "client a after the disconnect"
[ "$(send b "read 4096")" = "ok read 4096" ] || fail "client b after the disconnect"
[ "$(nbdinfo --size "$uri")" = 67108864 ] || fail "new clients after the disconnect"

# Disconnect(id, true): client b's next request fails.
id_b=$(connections | /usr/bin/python3 -c "
import json, sys
c = sorted(json.load(sys.stdin)['data'][0])
print(c[-1][0])")
ecall disk Disconnect tb "$id_b" true || fail "Disconnect($id_b, true)"
wait_counter ActiveConnections -eq 1
case $(send b "read 4096") in
  "error read 4096"*) echo "client b was disconnected" ;;
  *) fail "client b still served after a forced disconnect" ;;
esac
[ "$(send a "read 4096")" = "ok read 4096" ] || fail "client a after the forced disconnect"

# An unknown id is a named error naming it.
expect_error org.nbdkit.Daemon1.Error.InvalidParameter \
    gcall "$path" org.nbdkit.Daemon1.Export.Disconnect 987654321 false |
  grep -q 987654321 || fail "the error does not name the id"

send a quit >/dev/null
wait_counter ActiveConnections -eq 0
# The last counters change is emitted within a second: wait for it.
last_active ()
{
  /usr/bin/python3 - "$D/monitor.json" <<'PY'
import json, sys
v = None
for line in open(sys.argv[1]):
    if '"PropertiesChanged"' in line:
        changed = json.loads(line)["payload"]["data"][1]
        if "ActiveConnections" in changed:
            v = changed["ActiveConnections"]["data"]
print(v)
PY
}
for (( i=0; i<100; i++ )); do
  [ "$(last_active)" = 0 ] && break
  sleep 0.05
done
[ "$(last_active)" = 0 ] || fail "no PropertiesChanged with ActiveConnections 0"
kill_pid "$monitor"; wait "$monitor" 2>/dev/null || :

# PropertiesChanged of the counters: several, at most one per second.
/usr/bin/python3 - "$D/monitor.json" <<'PY' || fail "PropertiesChanged rate"
import json, sys
times = []
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("member") != "PropertiesChanged":
        continue
    iface, changed, invalidated = m["payload"]["data"]
    if "Requests" in changed or "Requests" in invalidated:
        times.append(m["timestamp-realtime"])
gaps = [(b - a) / 1e6 for a, b in zip(times, times[1:])]
print("counter signals:", len(times), "gaps (s):", ["%.2f" % g for g in gaps])
assert len(times) >= 3, times
# The monitor's clock stamps reception: allow for scheduling jitter.
assert min(gaps) >= 0.8, gaps
PY
echo PASS
