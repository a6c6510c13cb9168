#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitctl add-export --transient --secret: the export lives while
# nbdkitctl runs; the secret (from a file or standard input) never appears
# in any process's command line or environment, any property or any
# output.  `monitor` (table and JSON) shows exports added and removed and
# a client connecting.

source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
source "$srcdir/test-daemon-ctl-lib.bash"

ctl_setup
requires /usr/bin/nbdsh --version
requires_plugin memory
requires_plugin nbd
daemon_setup
start_daemon

# Two monitors, for people and JSON; wait until they are subscribed.
"$CTL" monitor > "$D/mon.out" 2> "$D/mon.err" &
mon_pid=$!
cleanup_fn kill_pid "$mon_pid"
"$CTL" --json monitor > "$D/monj.out" 2> "$D/monj.err" &
monj_pid=$!
cleanup_fn kill_pid "$monj_pid"
for (( i=0; i<200; i++ )); do
  grep -q Monitoring "$D/mon.err" && grep -q Monitoring "$D/monj.err" && break
  sleep 0.05
done
grep -q Monitoring "$D/mon.err" || fail "monitor did not start: $(cat "$D/mon.err")"

secret1=file-secret-$RANDOM$RANDOM$RANDOM
secret2=stdin-secret-$RANDOM$RANDOM$RANDOM
( umask 077; echo "$secret1" > "$D/pw" )

# The nbd plugin takes export=-FD as given (no plugin here reads
# passwords), so the worker runs with the secret parameter, forwarding to
# a backend nbdkit that serves any export name.
start_nbdkit -P "$D/backend.pid" -U "$D/none.sock" memory 1M
"$CTL" add-export --transient --secret=export="$D/pw" \
  --listen="unix:$D/t1.sock" t1 nbd socket="$D/none.sock" \
  > "$D/t1.out" 2> "$D/t1.err" &
t1_pid=$!
cleanup_fn kill_pid "$t1_pid"
echo "$secret2" | "$CTL" --json add-export --transient --secret=export=- \
  --listen="unix:$D/t2.sock" t2 nbd socket="$D/none.sock" \
  > "$D/t2.out" 2> "$D/t2.err" &
t2_pid=$!
cleanup_fn kill_pid "$t2_pid"
wait_state t1 running
wait_state t2 running
grep -q 'Transient export "t1" is served until nbdkitctl exits' "$D/t1.err" ||
  fail "transient message: $(cat "$D/t1.err")"
json_check "$D/t2.out" "d['name'] == 't2'"

# Properties show <secret>; the export is not persistent.
ctl --json show-export t1 > "$D/show1.json"
json_check "$D/show1.json" "d['Persistent'] is False and
  ['export', '<secret>'] in d['Parameters']"
ctl show-export t2 > "$D/show2.txt"
ctl --json list-exports > "$D/list.json"
ctl status > "$D/status.txt"
[ -z "$(ls "$D/state")" ] || fail "a transient export was stored: $(ls "$D/state")"

# Nowhere: process arguments and environments, outputs, state.
for s in "$secret1" "$secret2"; do
  ps -eo args | grep -F -- "$s" | grep -v grep && fail "secret in ps"
  for p in /proc/[0-9]*; do
    for f in cmdline environ; do
      if grep -qaF -- "$s" "$p/$f" 2>/dev/null; then
        fail "secret in $p/$f: $(tr '\0' ' ' < "$p/$f")"
      fi
    done
  done
  grep -rqF -- "$s" "$D"/*.out "$D"/*.err "$D"/*.json "$D"/*.txt \
    "$D/state" "$D/daemon.log" && fail "secret in an output or log"
done

# A persistent export with a secret is refused (secrets are never stored).
expect_exit 2 'persist' "$CTL" add-export p1 --secret=export="$D/pw" \
  nbd socket="$D/none.sock"

# A client connecting shows in monitor as ActiveConnections.  A boot
# export appears already running (its first worker is its check): a
# restart shows the State changes.
ctl add-export m1 --listen="unix:$D/m1.sock" memory 1M
wait_state m1 running
ctl restart m1
wait_state m1 running
hold_client "nbd+unix:///m1?socket=$D/m1.sock"
wait_property m1 ActiveConnections 1

# Ending nbdkitctl ends the transient export.
kill "$t1_pid"
wait "$t1_pid" || :
for (( i=0; i<200; i++ )); do
  mcall GetExport s t1 >/dev/null 2>&1 || break
  sleep 0.05
done
mcall GetExport s t1 >/dev/null 2>&1 && fail "t1 outlived its nbdkitctl"
ctl -q list > "$D/list.txt"
grep -q '^t1 ' "$D/list.txt" && fail "t1 still listed"

# What the monitors saw (allow for signal delivery).
for (( i=0; i<100; i++ )); do
  grep -q '^removed  "t1"' "$D/mon.out" && break
  sleep 0.05
done
for pat in '^added    "t1"' '^added    "t2"' '^added    "m1"' \
           '^changed  "m1".* State=running' \
           '^changed  "m1".* ActiveConnections=1' '^removed  "t1"'; do
  grep -qE "$pat" "$D/mon.out" || fail "monitor: no '$pat' in: $(cat "$D/mon.out")"
done
/usr/bin/python3 - "$D/monj.out" <<'EOF' || fail "monitor --json: $(cat "$D/monj.out")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert {"event": "added", "export": "m1",
        "path": "/org/nbdkit/Daemon1/export/m1"} in ev
assert any(e["event"] == "changed" and e["export"] == "m1"
           and e["properties"].get("ActiveConnections") == 1 for e in ev)
assert any(e["event"] == "removed" and e["export"] == "t1" for e in ev)
EOF
grep -qF -- "$secret1" "$D/mon.out" "$D/monj.out" && fail "secret in monitor"

# The monitor notices the daemon stopping.
wait_client_gone
stop_daemon
for (( i=0; i<100; i++ )); do
  grep -q '^daemon-stopped' "$D/mon.out" && break
  sleep 0.05
done
grep -q '^daemon-stopped' "$D/mon.out" || fail "monitor: daemon-stopped"

echo "$0: OK"
