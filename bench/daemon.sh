#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd figures: AddExport -> first byte read (boot and on-demand),
# 1000 on-demand exports (daemon RSS, start-up, ListExports and GetAll
# latency), and sequential read through the shared port against a
# dedicated listener.  Private bus; prints a Markdown section for
# bench/RESULTS.md.  Usage: bench/daemon.sh [BUILDDIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export srcdir=$top/tests abs_top_srcdir=$top
export abs_top_builddir=$(cd "${1:-$top/build}" && pwd)
export NBDKIT=$abs_top_builddir/server/nbdkit
source "$srcdir/functions.sh"
source "$srcdir/daemon-functions.sh"
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port
PY=/usr/bin/python3

first_byte ()   # NAME START: ms from AddExport to the first byte read
{
  $PY - "$1" "$2" "$port" <<'P'
import sys, time, nbd
from gi.repository import Gio, GLib
name, start, port = sys.argv[1], sys.argv[2], sys.argv[3]
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
t0 = time.monotonic()
bus.call_sync("org.nbdkit.Daemon1", "/org/nbdkit/Daemon1", "org.nbdkit.Daemon1.Manager",
    "AddExport", GLib.Variant("(ssasa(ss)a{sv})", (name, "memory", [], [("size", "1G")],
    {"start": GLib.Variant("s", start)})), None, 0, -1, None)
while True:
    try:
        h = nbd.NBD(); h.connect_uri("nbd://127.0.0.1:%s/%s" % (port, name)); break
    except nbd.Error:
        time.sleep(0.001)
h.pread(1, 0)
print("%.1f" % ((time.monotonic() - t0) * 1000))
P
}
med () { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
boot=$(for i in 1 2 3 4 5; do first_byte b$i boot; done | med)
od=$(for i in 1 2 3 4 5; do first_byte o$i on-demand; done | med)

# Sequential read: shared port (handed over) vs a dedicated listener.
add_export tp pattern '@as []' '[("size", "2G")]' \
    "{'listeners': <['shared', 'tcp:127.0.0.1:$((port+1))']>}" >/dev/null
wait_state tp running
rate () { local t0 t1; t0=$(date +%s.%N); nbdcopy --request-size=262144 "$1" null:; t1=$(date +%s.%N)
          echo "2048 / ($t1 - $t0)" | bc -l | cut -d. -f1; }
shared=$(for i in 1 2 3; do rate "nbd://127.0.0.1:$port/tp"; done | med)
dedicated=$(for i in 1 2 3; do rate "nbd://127.0.0.1:$((port+1))/tp"; done | med)
stop_daemon

# 1000 on-demand exports defined.
rm -f "$D"/state/*.json
for i in $(seq 1000); do
  printf '{"v":1,"name":"od%d","plugin":"memory","filters":[],"params":[["size","1G"]],"readonly":false,"listeners":[],"tls":{"mode":"off","verify-peer":false},"threads":0,"start":"on-demand","idle-timeout":0}\n' $i > "$D/state/od$i.json"
done
t0=$(date +%s.%N)
start_daemon --listen=tcp:127.0.0.1:$port
t1=$(date +%s.%N)
startup=$(echo "($t1 - $t0) * 1000" | bc -l | cut -d. -f1)
rss=$(awk '/VmRSS/ {print $2}' /proc/$DAEMON_PID/status)
lat=$($PY - <<'P'
import time
from gi.repository import Gio
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
def t(f, n=20):
    s = []
    for _ in range(n):
        t0 = time.monotonic(); f(); s.append((time.monotonic() - t0) * 1000)
    return sorted(s)[n // 2]
le = t(lambda: bus.call_sync("org.nbdkit.Daemon1", "/org/nbdkit/Daemon1",
       "org.nbdkit.Daemon1.Manager", "ListExports", None, None, 0, -1, None))
ga = t(lambda: bus.call_sync("org.nbdkit.Daemon1", "/org/nbdkit/Daemon1/export/od500",
       "org.freedesktop.DBus.Properties", "GetAll",
       __import__("gi.repository.GLib", fromlist=["GLib"]).Variant("(s)", ("org.nbdkit.Daemon1.Export",)),
       None, 0, -1, None))
print("%.2f %.2f" % (le, ga))
P
)
cat <<MD
### nbdkitd ($(date +%Y-%m-%d))

Private system-type bus, memory plugin, nbdinfo-style client in Python
(libnbd); medians of 5 (latency) or 3 (throughput) runs; $(nproc) CPUs,
load average $(cut -d' ' -f1-3 /proc/loadavg) at the end.

| figure | value | target |
|---|---|---|
| AddExport -> first byte read, boot policy | $boot ms | < 50 ms |
| AddExport -> first byte read, on-demand (started by the first GO) | $od ms | < 50 ms |
| 1000 on-demand exports: daemon start-up to bus name owned | $startup ms | < 1000 ms |
| 1000 on-demand exports: daemon RSS | $((rss / 1024)) MiB ($rss KiB) | < 20 MiB |
| 1000 exports: ListExports latency | $(echo $lat | cut -d' ' -f1) ms | |
| 1000 exports: GetAll on one export | $(echo $lat | cut -d' ' -f2) ms | |
| sequential read, shared port (socket handed over), MiB/s | $shared | equal within noise |
| sequential read, dedicated listener, MiB/s | $dedicated | |

nbdcopy --request-size=262144 of a 2 GiB pattern export to null:.
MD
