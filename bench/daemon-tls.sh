#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cost of selective TLS on nbdkitd's shared port: nbdcopy reads a
# 512 MiB memory export over TLS (PSK) through the shared port (the
# daemon's relay thread owns the session, router-relay.c) and through
# the same export's own TLS listener (the worker's own GnuTLS session).
# Also the daemon's CPU time per GiB relayed.  Private bus; prints a
# Markdown section for bench/RESULTS.md.  Not part of `meson test`.
# Usage: bench/daemon-tls.sh [BUILDDIR] (default build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export srcdir=$top/tests abs_top_srcdir=$top
export abs_top_builddir=$(cd "${1:-$top/build}" && pwd)
export NBDKIT=$abs_top_builddir/server/nbdkit
REPEAT=${REPEAT:-3}
source "$srcdir/functions.sh"
source "$srcdir/daemon-functions.sh"
daemon_setup
psktool -u alice -p "$D/keys.psk" >/dev/null 2>&1
port=$(free_tcp_port)
own=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port --tls-psk="$D/keys.psk"
add_export m memory '@as []' '[("size", "512M")]' \
    "{'listeners': <['shared', 'tcp:127.0.0.1:$own']>, 'tls': <'require'>,
      'tls-psk': <'$D/keys.psk'>}" >/dev/null
wait_state m running
q="tls-psk-file=$D/keys.psk"
shared="nbds://alice@127.0.0.1:$port/m?$q"
dedicated="nbds://alice@127.0.0.1:$own/m?$q"
# Fill it with data that does not compress, so every byte is read.
head -c 512M /dev/urandom | nbdcopy - "$dedicated"

cpu () { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
rate ()
{
  local t0 t1
  t0=$(date +%s.%N)
  nbdcopy --no-extents --request-size=262144 "$1" null:
  t1=$(date +%s.%N)
  echo "512 / ($t1 - $t0)" | bc -l | cut -d. -f1
}
med () { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
c0=$(cpu)
s=$(for i in $(seq "$REPEAT"); do rate "$shared"; done | med)
c1=$(cpu)
d=$(for i in $(seq "$REPEAT"); do rate "$dedicated"; done | med)
c2=$(cpu)
tick=$(getconf CLK_TCK)
# Daemon CPU seconds per GiB moved (REPEAT x 0.5 GiB each way).
per_gib () { echo "scale=2; ($1) / $tick / ($REPEAT * 0.5)" | bc -l; }
stop_daemon
cat <<MD
### Selective TLS on the shared port: relay cost ($(date -u +%Y-%m-%d\ %H:%M) UTC)

nbdcopy --no-extents --request-size=262144 of a 512 MiB memory export
(random data) to null: over TLS with PSK, median of $REPEAT runs;
$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end
(a shared machine: other builds and tests ran meanwhile).

| path | MiB/s | nbdkitd CPU s per GiB |
|---|---|---|
| shared port: daemon STARTTLS + relay thread + socketpair to the worker | $s | $(per_gib "$c1 - $c0") |
| the export's own TLS listener (worker's GnuTLS) | $d | $(per_gib "$c2 - $c1") |
MD
