#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd: invalid input to AddExport, RemoveExport and Update returns the
# named error with a message naming what was wrong, and changes nothing
# (no export, no definition file, no process).
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which gdbus
daemon_setup
start_daemon
M=/org/nbdkit/Daemon1
A=org.nbdkit.Daemon1.Manager.AddExport
E=org.nbdkit.Daemon1.Error

add_export keep memory '@as []' '[("size", "1M")]' '@a{sv} {}' >/dev/null ||
  fail "AddExport keep"
wait_state keep running
before_state=$(ls -l "$D/state")
before_list=$(mcall ListExports)

long=$(printf 'x%.0s' $(seq 4097))
expect_error $E.InvalidParameter gcall $M $A "$long" memory '@as []' '[("size","1M")]' '@a{sv} {}'
expect_error $E.NoSuchPlugin gcall $M $A bad1 nosuchplugin '@as []' '@a(ss) []' '@a{sv} {}'
expect_error $E.NoSuchPlugin gcall $M $A bad1 '../memory' '@as []' '@a(ss) []' '@a{sv} {}'
expect_error $E.NoSuchFilter gcall $M $A bad2 memory "['nosuchfilter']" '[("size","1M")]' '@a{sv} {}'
out=$(expect_error $E.InvalidParameter gcall $M $A bad3 memory '@as []' '[("sise","1M")]' '@a{sv} {}')
echo "$out" | grep -q "sise" || fail "message does not name the parameter: $out"
expect_error $E.InvalidParameter gcall $M $A bad3 memory '@as []' '[("-r","1")]' '@a{sv} {}'
out=$(expect_error $E.PluginFailed gcall $M $A bad4 file '@as []' "[(\"file\",\"$D/missing\")]" '@a{sv} {}')
echo "$out" | grep -q "$D/missing" || fail "message does not name the file: $out"
expect_error $E.InvalidParameter gcall $M $A bad5 memory '@as []' '[("size","1M")]' "{'frobnicate': <true>}"
expect_error $E.InvalidParameter gcall $M $A bad5 memory '@as []' '[("size","1M")]' "{'readonly': <'yes'>}"
expect_error $E.InvalidParameter gcall $M $A bad5 memory '@as []' '[("size","1M")]' "{'start': <'sometimes'>}"
expect_error $E.InvalidParameter gcall $M $A bad5 memory '@as []' '[("size","1M")]' "{'listeners': <['tcp:nowhere']>}"
expect_error $E.InvalidParameter gcall $M $A bad5 memory '@as []' '[("size","1M")]' "{'tls': <'on'>}"
expect_error $E.ExportExists gcall $M $A keep memory '@as []' '[("size","1M")]' '@a{sv} {}'

# A port in use.
python3 -c 'import socket,time,sys
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True)
time.sleep(60)' > "$D/port" &
holder=$!
cleanup_fn kill_pid $holder
for (( i=0; i<100; i++ )); do [ -s "$D/port" ] && break; sleep 0.05; done
busy=$(cat "$D/port")
out=$(expect_error $E.AddressInUse gcall $M $A bad6 memory '@as []' '[("size","1M")]' "{'listeners': <['tcp:127.0.0.1:$busy']>}")
echo "$out" | grep -q "$busy" || fail "message does not name the address: $out"

expect_error $E.NoSuchExport gcall $M org.nbdkit.Daemon1.Manager.RemoveExport nosuch safe
expect_error $E.InvalidParameter gcall $M org.nbdkit.Daemon1.Manager.RemoveExport keep gently
P=$(export_path keep)
expect_error $E.InvalidParameter gcall "$P" org.nbdkit.Daemon1.Export.Update "{'params': <[('sise', '2M')]>}"
expect_error $E.NoSuchFilter gcall "$P" org.nbdkit.Daemon1.Export.Update "{'filters': <['nosuch']>}"

# Nothing changed.
[ "$(ls -l "$D/state")" = "$before_state" ] || fail "state dir changed"
[ "$(mcall ListExports)" = "$before_list" ] || fail "exports changed"
eprop keep Parameters | grep -qx "1 \"size\" \"1M" || fail "keep changed: $(eprop keep Parameters)"
[ "$(eprop keep State)" = running ] || fail "keep not running"
echo PASS
