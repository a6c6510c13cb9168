#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The time nbdkitd takes to restart with 100 running exports, under the
# test supervisor tests/fdstore_supervisor.py (a systemd-like service
# manager with a file-descriptor store): from SIGTERM to the old daemon's
# exit, to the new daemon's READY=1, and to the first byte a client
# receives (a client that connects to the shared port just after the
# SIGTERM and reads 512 bytes of one export).  With --fd-store the new
# daemon adopts the 100 running workers; without it, the old daemon
# stops them and the new one starts 100 new ones (and the client retries
# while the shared port is closed).  Median of REPEAT restarts each.
# Private bus; prints a Markdown section for bench/RESULTS.md.  Not part
# of `meson test`.
# Usage: bench/daemon-restart.sh [BUILDDIR] (default build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export srcdir=$top/tests abs_top_srcdir=$top
export abs_top_builddir=$(cd "${1:-$top/build}" && pwd)
export NBDKIT=$abs_top_builddir/server/nbdkit
REPEAT=${REPEAT:-5}
EXPORTS=${EXPORTS:-100}
source "$srcdir/functions.sh"
source "$srcdir/daemon-functions.sh"
daemon_setup
sup_py=$srcdir/fdstore_supervisor.py

# run_mode MODE-ARGS...: REPEAT restarts; prints "exit ready first" medians
run_mode ()
{
  local port sock sup
  port=$(free_tcp_port)
  sock=$D/sup.$RANDOM.sock
  rm -rf "$D/state" "$D/run"
  mkdir -p "$D/state" "$D/run"
  /usr/bin/python3 "$sup_py" run "$sock" -- "$NBDKITD" "$@" \
      --state-dir="$D/state" --runtime-dir="$D/run" \
      --listen=tcp:127.0.0.1:$port >>"$D/daemon.log" 2>&1 &
  sup=$!
  for (( i=0; i<100; i++ )); do [ -S "$sock" ] && break; sleep 0.05; done
  /usr/bin/python3 "$sup_py" ctl "$sock" wait-ready >/dev/null
  # One export through D-Bus, the others as copies of its definition;
  # a restart then starts them all (start policy boot).
  add_export e0 memory '@as []' '[("size", "1M")]' '@a{sv} {}' >/dev/null
  for (( i=1; i<EXPORTS; i++ )); do
    sed "s/\"e0\"/\"e$i\"/" "$D/state/e0.json" > "$D/state/e$i.json"
  done
  chmod 600 "$D/state/"*.json
  /usr/bin/python3 "$sup_py" ctl "$sock" restart >/dev/null
  /usr/bin/python3 - "$sock" "$port" "$REPEAT" "e$((EXPORTS / 2))" <<'PY' ||
import nbd, socket, statistics, sys, time
sock, port, repeat, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    sys.argv[4]
rows = []
for _ in range(repeat):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(b"restart\n")
    t0 = time.monotonic()
    deadline = t0 + 120
    while True:
        h = nbd.NBD()
        h.set_export_name(name)
        try:
            h.connect_tcp("127.0.0.1", str(port))
            h.pread(512, 0)
            break
        except nbd.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
        finally:
            del h
    first = time.monotonic()
    answer = s.makefile().read().split()
    assert answer[0] == "ok", answer
    t = {k[2:]: float(v) for k, v in (a.split("=") for a in answer
                                        if a.startswith("t_"))}
    rows.append((t["exit"] - t["term"], t["ready"] - t["term"],
                 first - t["term"]))
print(" ".join("%.3f" % statistics.median(r[i] for r in rows)
               for i in range(3)))
PY
    { kill "$sup"; exit 1; }
  /usr/bin/python3 "$sup_py" ctl "$sock" stop >/dev/null
  wait "$sup" || :
}

with=$(run_mode -v --fd-store)
[ -z "${KEEP_LOG:-}" ] || cp "$D/daemon.log" "$KEEP_LOG.1"
without=$(run_mode -v)
[ -z "${KEEP_LOG:-}" ] || cp "$D/daemon.log" "$KEEP_LOG.2"
read -r w_exit w_ready w_first <<< "$with"
read -r o_exit o_ready o_first <<< "$without"
grep -q "worker.*adopted" "$D/daemon.log" || { echo "no worker was adopted" >&2; exit 1; }
cat <<MD
### nbdkitd restart with $EXPORTS running exports ($(date -u +%Y-%m-%d\ %H:%M) UTC)

bench/daemon-restart.sh: $EXPORTS memory exports (boot policy, shared
port), restarted by tests/fdstore_supervisor.py (SIGTERM, wait, start
again with the store it kept); seconds from the SIGTERM, median of $REPEAT
restarts; "first byte": a client connecting to the shared port just
after the SIGTERM has read 512 bytes of one export.  $(nproc) CPUs, load
average $(cut -d' ' -f1-3 /proc/loadavg) at the end (a shared machine:
other builds and tests ran meanwhile).  Build: $(basename "$abs_top_builddir").

| mode | old daemon gone | READY=1 | first byte |
|---|---|---|---|
| --fd-store (workers adopted) | $w_exit | $w_ready | $w_first |
| without --fd-store (workers stopped and started again) | $o_exit | $o_ready | $o_first |
MD
