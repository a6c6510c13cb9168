#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd: definitions survive a clean restart and kill -9 of the daemon
# at random points while exports are added and removed (no definition
# lost, none half-written, the daemon starts); an unreadable file is moved
# aside and shown as a failed export.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which gdbus
daemon_setup
start_daemon

add_export p1 memory '@as []' '[("size", "1M")]' \
    "{'description': <'first'>, 'start': <'manual'>}" >/dev/null || fail add p1
add_export p2 pattern "['offset']" '[("size", "2M"), ("offset", "512")]' \
    "{'start': <'manual'>, 'readonly': <true>}" >/dev/null || fail add p2
add_export t1 memory '@as []' '[("size", "1M")]' "{'persist': <false>}" \
    >/dev/null || fail add t1
stat -c %a "$D/state/p1.json" | grep -qx 600 || fail "mode of p1.json"
grep -q t1 "$D"/state/* && fail "a transient export was written"

stop_daemon
start_daemon
[ "$(eprop p1 Description)" = first ] || fail "p1 description after restart"
eprop p2 Filters | grep -q '1 "offset' || fail "p2 filters after restart"
[ "$(eprop p2 ReadOnly)" = true ] || fail "p2 readonly after restart"
"${BUSCTL[@]}" get-property org.nbdkit.Daemon1 "$(export_path p2)" \
    org.nbdkit.Daemon1.Export Parameters | grep -qx 'a(ss) 2 "size" "2M" "offset" "512"' ||
  fail "p2 parameters after restart"
mcall GetExport s t1 >/dev/null 2>&1 && fail "transient export survived"

# kill -9 at random points while adding and removing.
for round in 1 2 3 4 5; do
  ( for i in $(seq 1 20); do
      add_export "loop$round-$i" memory '@as []' '[("size", "1M")]' \
          "{'start': <'manual'>}" >/dev/null 2>&1
      [ $((i % 3)) = 0 ] && mcall RemoveExport ss "loop$round-$((i-1))" >/dev/null 2>&1
    done ) &
  loop=$!
  sleep 0.$((RANDOM % 5 + 1))
  kill -9 "$DAEMON_PID"
  wait "$loop" 2>/dev/null || :
  wait "$DAEMON_PID" 2>/dev/null || :
  start_daemon
  # Every file is a complete definition: the daemon shows no failed one.
  mcall ListExports | grep -q '"failed"' && fail "round $round: a definition was damaged"
  ls "$D/state" | grep -q '\.broken$' && fail "round $round: broken file"
  ls -a "$D/state" | grep -v '^\.\.\?$' | grep -q '^\.' && fail "temporary file left"
  n_files=$(ls "$D/state" | grep -c '\.json$')
  n_exports=$(mcall ListExports | awk '{print $2}')
  [ "$n_files" = "$n_exports" ] || fail "round $round: $n_files files, $n_exports exports"
  [ "$(eprop p1 Description)" = first ] || fail "round $round: p1 lost"
done

# A damaged file is moved aside and shown as failed; the others load.
stop_daemon
echo '{"v":1,"name":"broken","plug' > "$D/state/broken.json"
start_daemon
[ -f "$D/state/broken.json.broken" ] || fail "broken file not moved aside"
[ "$(eprop broken State)" = failed ] || fail "broken export not failed"
eprop broken LastError | grep -q 'broken.json' || fail "LastError does not name the file"
[ "$(eprop p1 State)" = inactive ] || fail "p1 after a broken file"
# Still failed after another restart; removing it removes the file.
stop_daemon
start_daemon
[ "$(eprop broken State)" = failed ] || fail "broken export not failed after restart"
mcall RemoveExport ss broken safe || fail "remove the broken export"
[ -e "$D/state/broken.json.broken" ] && fail "broken file not removed"
echo PASS
