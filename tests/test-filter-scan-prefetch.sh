#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The scan filter, watching the cache requests below it (log filter;
# the delay filter slows them to 50 ms each where timing matters):
# one in-order pass over the disk by default; scan-ahead jumping past a
# read and scan-ahead=false not; the clock resuming for the next client
# and scan-clock=false restarting; scan-forever starting a second pass;
# nothing after a client disconnects; nothing for a non-default export,
# without cache support or without a parallel thread model (warnings);
# nbdkit stopped while scanning forever exits cleanly; bad values.

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

# Server 1: the clock kept; server 2: scan-clock=false, scan-forever,
# run in the foreground so that its exit status can be checked.
start_nbdkit -P "$tmpdir/pid1" -U "$tmpdir/sock1" \
  --filter=scan --filter=delay --filter=log memory 16M \
  scan-size=1M delay-cache=50ms logfile="$tmpdir/log1"
"$NBDKIT" -f -P "$tmpdir/pid2" -U "$tmpdir/sock2" \
  --filter=scan --filter=delay --filter=log memory 8M \
  scan-size=1M delay-cache=50ms logfile="$tmpdir/log2" \
  scan-clock=false scan-forever=true 2> "$tmpdir/err2" &
server2=$!
cleanup_fn kill_pid $server2
for (( i = 0; i < 300; i++ )); do
  [ -S "$tmpdir/sock2" ] && break
  sleep 0.1
done
export server2

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

# The clock: the second client resumes where the first stopped, and
# nothing is prefetched in between.
log = tmpdir + "/log1"
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + tmpdir + "/sock1")
wait_for(lambda: len(caches(log)) >= 3, "three prefetches")
h.shutdown()
del h
n = len(caches(log))
time.sleep(0.3)
assert len(caches(log)) == n, "prefetching went on after the disconnect"
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + tmpdir + "/sock1")
wait_for(lambda: len(caches(log)) > n, "the second client scan")
got = caches(log)
h.shutdown()
assert got[n] == got[n - 1] + 1, got

# scan-clock=false restarts at 0; scan-forever starts a second pass.
log = tmpdir + "/log2"
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + tmpdir + "/sock2")
wait_for(lambda: len(caches(log)) >= 2, "two prefetches")
h.shutdown()
del h
n = len(caches(log))
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + tmpdir + "/sock2")
wait_for(lambda: len(caches(log)) > n, "the second client scan")
assert caches(log)[n] == 0, caches(log)
wait_for(lambda: caches(log)[n:].count(0) >= 2, "a second pass")
got = caches(log)[n:]
assert got[:9] == list(range(8)) + [0], got

# Stop nbdkit while the scan is running.
os.kill(int(os.environ["server2"]), signal.SIGTERM)
' || fail "scan checks failed"

rc=0
wait $server2 || rc=$?
[ $rc -eq 0 ] || fail "nbdkit stopped while scanning: exit status $rc: $(cat "$tmpdir/err2")"
! grep -i "sanitizer\|assert" "$tmpdir/err2" || fail "nbdkit crashed at exit"

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
