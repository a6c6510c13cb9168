#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitctl --user against nbdkitd --user on a private session bus: add an
# export (magic key), list it as JSON, serve a client on the daemon's
# shared Unix socket, remove it; the system bus is never used.

source "${srcdir:-$(dirname "$0")}/functions.sh"
CTL=$abs_top_builddir/ctl/nbdkitctl
NBDKITD=$abs_top_builddir/daemon/nbdkitd
[ -x "$CTL" ] && [ -x "$NBDKITD" ] || skip "nbdkitd/nbdkitctl were not built"
requires dbus-daemon --version
requires nbdsh --version
make_tmpdir
chmod 755 "$tmpdir"

start_session_bus "$tmpdir"
export DBUS_SESSION_BUS_ADDRESS=$SESSION_BUS
# Any use of the system bus would fail loudly.
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmpdir/no-such-system-bus

NBDKITD_NBDKIT=$NBDKIT "$NBDKITD" --user --nbdkit="$NBDKIT" \
  --state-dir="$tmpdir/state" --runtime-dir="$tmpdir/run" \
  --listen="unix:$tmpdir/shared.sock" > "$tmpdir/daemon.log" 2>&1 &
cleanup_fn kill_pid $!
for (( i=0; i<200; i++ )); do
  busctl --user status org.nbdkit.Daemon1 >/dev/null 2>&1 && break
  sleep 0.05
done
busctl --user status org.nbdkit.Daemon1 >/dev/null 2>&1 ||
  { cat "$tmpdir/daemon.log"; fail "nbdkitd --user did not take its name"; }

"$CTL" --user add-export disk1 --description="user disk" memory 8M ||
  fail "add-export on the session bus failed"
"$CTL" --user --json list > "$tmpdir/list.json" || fail "list --json failed"
/usr/bin/python3 - "$tmpdir/list.json" <<'PY' || fail "wrong list: $(cat "$tmpdir/list.json")"
import json, sys
data = json.load(open(sys.argv[1]))
rows = data if isinstance(data, list) else data.get("exports", data)
names = [r["name"] for r in rows]
assert names == ["disk1"], names
PY
# The system bus is unreachable: without --user nbdkitctl says so (exit 6).
rc=0
"$CTL" list > /dev/null 2>"$tmpdir/err" || rc=$?
[ "$rc" = 6 ] || fail "nbdkitctl without --user exited $rc, expected 6"

for (( i=0; i<100; i++ )); do
  [ "$("$CTL" --user --json show-export disk1 | /usr/bin/python3 -c \
      'import json,sys; print(json.load(sys.stdin)["State"])' 2>/dev/null)" = running ] && break
  sleep 0.1
done
nbdsh -u "nbd+unix:///disk1?socket=$tmpdir/shared.sock" -c '
assert h.get_size() == 8 * 1024 * 1024
h.pwrite(b"user" * 1024, 0)
assert h.pread(4096, 0) == b"user" * 1024
' || fail "a client could not use the export on the shared socket"
"$CTL" --user remove-export --force disk1 || fail "remove-export failed"
"$CTL" --user --json list | grep -q disk1 && fail "disk1 is still listed"
:
