#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd activation and lifetime: READY=1 by sd_notify once the boot
# exports have started; bus activation on the first call; idle exit
# (the name is released) and re-activation; socket activation of the
# shared port by systemd-socket-activate; the units pass
# systemd-analyze verify.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which nbdinfo
daemon_setup

# 1. Type=notify: READY=1 comes after the boot export runs.
add_boot_export_offline ()
{
  cat > "$D/state/b.json" <<J
{"v":1,"name":"b","plugin":"memory","filters":[],"params":[["size","1M"]],
 "readonly":false,"listeners":[],"tls":{"mode":"off","verify-peer":false},
 "threads":0,"start":"boot","idle-timeout":0}
J
  chmod 600 "$D/state/b.json"
}
add_boot_export_offline
/usr/bin/python3 - "$D/notify.sock" "$NBDKITD" "$D" > "$D/notify.log" 2>&1 <<'PY' &
import os, socket, subprocess, sys
path, nbdkitd, d = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(path); s.settimeout(30)
p = subprocess.Popen([nbdkitd, "--state-dir=" + d + "/state", "--runtime-dir=" + d + "/run",
                      "--listen=none"], env=dict(os.environ, NOTIFY_SOCKET=path),
                     stderr=open(d + "/daemon.log", "a"))
msg = s.recv(4096).decode()
print(msg, flush=True)
out = subprocess.run(["busctl", "--system", "get-property", "org.nbdkit.Daemon1",
                      "/org/nbdkit/Daemon1/export/b", "org.nbdkit.Daemon1.Export", "State"],
                     capture_output=True, text=True).stdout
print("state at READY:", out.strip(), flush=True)
p.terminate(); p.wait()
PY
notify=$!
wait $notify || fail "notify helper: $(cat "$D/notify.log")"
cat "$D/notify.log"
grep -q '^READY=1' "$D/notify.log" || fail "no READY=1"
grep -q 'STATUS=1 exports, 1 running' "$D/notify.log" || fail "STATUS"
grep -q 'state at READY: s "running"' "$D/notify.log" || fail "READY=1 before the boot export ran"

# 2. Bus activation, idle exit, re-activation.
cat > "$D/services/org.nbdkit.Daemon1.service" <<S
[D-BUS Service]
Name=org.nbdkit.Daemon1
Exec=/usr/bin/env NBDKITD_NBDKIT=$NBDKIT $NBDKITD -v --idle-timeout=1 --state-dir=$D/state --runtime-dir=$D/run --listen=none
User=root
S
"${BUSCTL[@]}" call org.freedesktop.DBus / org.freedesktop.DBus ReloadConfig
rm "$D/state/b.json"
mcall ListExports | grep -qx 'a(ssso) 0' || fail "bus activation"
pid1=$("${BUSCTL[@]}" status org.nbdkit.Daemon1 | sed -n 's/^PID=//p')
[ -n "$pid1" ] || fail "no PID for the activated daemon"
cleanup_fn kill_pid "$pid1"
add_export m memory '@as []' '[("size", "1M")]' "{'start': <'manual'>}" >/dev/null ||
  fail "AddExport on the activated daemon"
for (( i=0; i<100; i++ )); do kill -0 "$pid1" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid1" 2>/dev/null && fail "the activated daemon did not exit when idle"
# The next call starts it again, with the export restored.
mcall GetExport s m >/dev/null || fail "re-activation"
pid2=$("${BUSCTL[@]}" status org.nbdkit.Daemon1 | sed -n 's/^PID=//p')
cleanup_fn kill_pid "$pid2"
[ "$pid2" != "$pid1" ] || fail "not a new process"
# A running worker keeps it alive.
ecall m Start
wait_state m running
sleep 2
kill -0 "$pid2" || fail "exited while a worker runs"
ecall m Stop
for (( i=0; i<100; i++ )); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid2" 2>/dev/null && fail "did not exit after the worker stopped"
rm "$D/services/org.nbdkit.Daemon1.service"
"${BUSCTL[@]}" call org.freedesktop.DBus / org.freedesktop.DBus ReloadConfig

# 3. Socket activation of the shared port.
if which systemd-socket-activate >/dev/null 2>&1; then
  port=$(free_tcp_port)
  rm -f "$D/state/m.json"
  add_boot_export_offline
  systemd-socket-activate -l 127.0.0.1:$port --fdname=nbd \
      -E DBUS_SYSTEM_BUS_ADDRESS -E NBDKITD_NBDKIT \
      "$NBDKITD" --idle-timeout=1 --state-dir="$D/state" --runtime-dir="$D/run" \
      >> "$D/daemon.log" 2>&1 &
  sa=$!
  cleanup_fn kill_pid $sa
  for (( i=0; i<100; i++ )); do
    ss -ltn | grep -q "127.0.0.1:$port " && break; sleep 0.05
  done
  nbdinfo --list "nbd://127.0.0.1:$port" | grep -q 'export="b"' ||
    fail "socket activation: export not listed"
  [ "$(nbdinfo --size "nbd://127.0.0.1:$port/b")" = 1048576 ] ||
    fail "socket activation: export not served"
else
  echo "systemd-socket-activate not found: socket activation not tested"
fi

# 4. The units.
if which systemd-analyze >/dev/null 2>&1; then
  mkdir "$D/units"
  for u in nbdkitd.service nbdkitd.socket; do
    sed "s|@SBINDIR@/nbdkitd|$NBDKITD|" "$abs_top_srcdir/systemd/$u" > "$D/units/$u"
  done
  (cd "$D/units" && systemd-analyze verify --man=no nbdkitd.socket nbdkitd.service) ||
    fail "systemd-analyze verify"
fi
echo PASS
