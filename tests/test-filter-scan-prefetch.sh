#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The scan filter, watching the cache requests below it (log filter;
# the delay filter slows them where timing matters): one in-order pass
# over the disk by default; scan-ahead jumping past a read and
# scan-ahead=false not; nothing for a non-default export, without cache
# support or without a parallel thread model (warnings); bad values.
# (test-filter-scan-clock.sh covers the clock, forever and shutdown.)

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter scan
requires_filter log
requires_filter delay
requires_filter nocache
requires_filter noparallel

make_tmpdir
export tmpdir

nbdsh -c '
import os, signal, time
tmpdir = os.environ["tmpdir"]
NBDKIT = os.environ["NBDKIT"]
M = 1 << 20

def caches(log):
    # Offsets (in MiB) of the cache requests, in order.
    out = []
    for line in open(log):
        f = line.split()
        if len(f) > 5 and f[3] == "Cache":
            out.append(int(f[5].split("=")[1], 16) // M)
    return out

def wait_for(cond, what, limit=20):
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)

def spawn(log, *args, export=""):
    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_command([NBDKIT, "-s", "--exit-with-parent", "--filter=scan"] +
                      list(args[:-1]) + ["--filter=log", "logfile=" + log] +
                      [args[-1]])
    return h

# One pass, in order, then nothing more.
log = tmpdir + "/log-default"
h = spawn(log, "memory", "scan-size=1M", "8M")
wait_for(lambda: len(caches(log)) >= 8, "a full pass")
h.shutdown()
assert caches(log) == list(range(8)), caches(log)

# scan-ahead: a read at 12M makes the scan jump there.
log = tmpdir + "/log-ahead"
h = spawn(log, "--filter=delay", "memory", "scan-size=1M",
          "delay-cache=50ms", "16M")
wait_for(lambda: len(caches(log)) >= 1, "the first prefetch")
h.pread(4096, 12 * M)
wait_for(lambda: 15 in caches(log), "the end of the disk")
got = caches(log)
h.shutdown()
assert got[-4:] == [12, 13, 14, 15] and len(got) < 10, got

# scan-ahead=false: the same read changes nothing.
log = tmpdir + "/log-noahead"
h = spawn(log, "--filter=delay", "memory", "scan-size=1M",
          "delay-cache=20ms", "scan-ahead=false", "8M")
wait_for(lambda: len(caches(log)) >= 1, "the first prefetch")
h.pread(4096, 6 * M)
wait_for(lambda: 7 in caches(log), "the end of the disk")
h.shutdown()
assert caches(log) == list(range(8)), caches(log)

# A non-default export is not scanned.
log = tmpdir + "/log-export"
h = spawn(log, "memory", "scan-size=1M", "8M", export="other")
h.pread(512, 0)
time.sleep(0.3)
h.shutdown()
assert caches(log) == [], caches(log)

' || fail "scan checks failed"

# warns ARGS...: a warning and no prefetching.
warns ()
{
  rm -f "$tmpdir/log"
  "$NBDKIT" -U - --filter=scan "$@" --filter=log memory 1M \
    logfile="$tmpdir/log" \
    --run 'nbdcopy "$uri" - >/dev/null' 2> "$tmpdir/err" ||
    fail "$*: nbdkit failed"
  grep -q "scan: warning" "$tmpdir/err" || fail "$*: no warning"
  ! grep -q " Cache " "$tmpdir/log" || fail "$*: prefetching happened"
}
warns --filter=nocache
warns --filter=noparallel

for arg in scan-size=1000 scan-size=2G scan-size=x scan-ahead=maybe \
           scan-forever=; do
  rc=0
  "$NBDKIT" --filter=scan memory 1M $arg --run true 2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "$arg: exit status $rc, expected 1"
  grep -q "${arg%%=*}" "$tmpdir/err" ||
    fail "$arg: the error does not name ${arg%%=*}: $(cat "$tmpdir/err")"
done

echo "$0: ok"
