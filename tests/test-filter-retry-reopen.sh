#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The retry filter against a plugin that fails a set number of times:
# the error filter fails requests while a file exists, and a log filter
# script between the two counts the attempts and removes the file at
# attempt N.  The client sees success when N - 1 failures fit in
# retries=, and the error once they do not; the plugin is reopened
# after every failure (one more Connect in the log each time); the
# delays double with retry-exponential (the default) and stay put
# without; retry-readonly reopens read-only so the retried write fails
# with EPERM.  If the nbd plugin is built, a real upstream server is
# restarted under a connected client, which does not notice.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin memory
requires_filter retry
requires_filter log
requires_filter error
make_tmpdir
export tmpdir

# Counts ENTER entries of action $COUNT_ACT; at the $SUCCEED_AT-th one
# the failure switch is removed, so that attempt succeeds.
logscript='
[ "$type" = ENTER ] && [ "$act" = "$COUNT_ACT" ] || exit 0
n=$(( $(cat "$tmpdir/count" 2>/dev/null || echo 0) + 1 ))
echo $n >"$tmpdir/count"
[ $n -lt "$SUCCEED_AT" ] || rm -f "$tmpdir/fail"'

# run OP ACT SUCCEED_AT PYTHON [PARAMS...]: a fresh server whose OP
# (logged as ACT) fails until attempt SUCCEED_AT, running PYTHON in
# nbdsh.
run ()
{
  local op=$1 act=$2 succeed_at=$3 py=$4; shift 4
  rm -f "$tmpdir/count" "$tmpdir/log"
  touch "$tmpdir/fail"
  COUNT_ACT=$act SUCCEED_AT=$succeed_at py=$py \
  "$NBDKIT" -U - -v --filter=retry --filter=log --filter=error memory 1M \
    error-$op-rate=1 error-$op-file="$tmpdir/fail" \
    logfile="$tmpdir/log" logscript="$logscript" "$@" \
    --run 'nbdsh -u "$uri" -c "$py"' 2>"$tmpdir/stderr"
}

connects ()
{
  grep -c ' Connect ' "$tmpdir/log"
}

attempts ()
{
  cat "$tmpdir/count"
}

# A read failing twice, with 3 retries: succeeds on the third attempt,
# after two reopens, waiting 0.1 then 0.2 seconds.
py='assert h.pread(512, 0) == bytes(512)'
run pread Read 3 "$py" retries=3 retry-delay=0.1 ||
  fail "the read failed although it succeeded within the retries:
$(grep -i error "$tmpdir/stderr")"
[ "$(attempts)" = 3 ] || fail "expected 3 attempts, saw $(attempts)"
[ "$(connects)" = 3 ] ||
  fail "expected the plugin opened 3 times (2 reopens), saw $(connects)"
grep -q 'retry 1 of 3 in 0.1 seconds' "$tmpdir/stderr" &&
  grep -q 'retry 2 of 3 in 0.2 seconds' "$tmpdir/stderr" ||
  fail "the delays did not double: $(grep 'retry [0-9]' "$tmpdir/stderr")"

# The same read failing 5 times with 2 retries: the client gets EIO
# after 3 attempts.
py='
try:
    h.pread(512, 0)
    raise AssertionError("the read succeeded")
except nbd.Error as e:
    assert e.errno == "EIO", e'
run pread Read 6 "$py" retries=2 retry-delay=0.05 ||
  fail "the client did not see the error after the retries ran out"
[ "$(attempts)" = 3 ] || fail "expected 3 attempts, saw $(attempts)"
grep -q 'giving up after 2 retries' "$tmpdir/stderr" ||
  fail "no message about giving up"

# retry-exponential=false: the same delay every time.
run pread Read 4 'h.pread(512, 0)' retries=5 retry-delay=0.05 \
  retry-exponential=false || fail "the read failed"
[ "$(grep -c 'retry [0-9] of 5 in 0.05 seconds' "$tmpdir/stderr")" = 3 ] ||
  fail "the delay changed without exponential back-off:
$(grep 'retry [0-9]' "$tmpdir/stderr")"

# Writes, flushes, zeroes and trims are retried too, and the data lands.
run pwrite Write 3 '
h.pwrite(b"x" * 4096, 8192)
assert h.pread(4096, 8192) == b"x" * 4096' retries=5 retry-delay=0.01 ||
  fail "a write failing twice was not retried"
[ "$(connects)" = 3 ] || fail "expected 2 reopens for the write"
run flush Flush 2 'h.flush()' retry-delay=0.01 || fail "flush not retried"
run zero Zero 2 '
h.pwrite(b"y" * 4096, 0)
h.zero(4096, 0)
assert h.pread(4096, 0) == bytes(4096)' retry-delay=0.01 ||
  fail "zero not retried"

# retry-readonly: after the write fails once, the plugin is reopened
# read-only and the retried write fails with EPERM (EROFS) at once;
# reads keep working.
run pwrite Write 2 '
try:
    h.pwrite(b"z" * 512, 0)
    raise AssertionError("the write succeeded after a read-only reopen")
except nbd.Error as e:
    assert e.errno == "EPERM", e
assert h.pread(512, 0) == bytes(512)' retries=5 retry-delay=0.01 \
  retry-readonly=true || fail "retry-readonly misbehaved"
[ "$(attempts)" = 1 ] ||
  fail "the write reached the plugin again after the read-only reopen"
grep ' Connect ' "$tmpdir/log" | tail -1 | grep -q ' write=0 ' ||
  fail "the plugin was not reopened read-only: $(grep ' Connect ' "$tmpdir/log")"

# Requests in flight together when the plugin fails are all retried.
run pread Read 12 '
cmds = [h.aio_pread(nbd.Buffer(4096), i * 4096) for i in range(8)]
while h.aio_in_flight() > 0:
    h.poll(-1)
for c in cmds:
    assert h.aio_command_completed(c)' retries=10 retry-delay=0.01 \
  retry-exponential=false || fail "parallel requests were not all retried"

# A real restart: an upstream nbdkit serving a file is stopped and a new
# one started on the same socket while our client is connected.
if "$NBDKIT" nbd --dump-plugin >/dev/null 2>&1 &&
   "$NBDKIT" file --dump-plugin >/dev/null 2>&1; then
  head -c 1M /dev/urandom >"$tmpdir/disk"
  up=$tmpdir/upstream.sock
  start_nbdkit -P "$tmpdir/up1.pid" -U "$up" file "$tmpdir/disk"
  start_nbdkit -P "$tmpdir/retry.pid" -U "$tmpdir/retry.sock" \
    --filter=retry nbd socket="$up" retry-delay=0.1
  cat >"$tmpdir/restart.py" <<'PY'
import os, subprocess, time
tmpdir = os.environ["tmpdir"]
data = open(tmpdir + "/disk", "rb").read()
assert h.pread(65536, 0) == data[:65536]
# Stop the upstream server, wait (at most 10 s) until it has gone, and
# start another on the same socket.
pid = int(open(tmpdir + "/up1.pid").read())
os.kill(pid, 15)
deadline = time.monotonic() + 10
while True:
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
    except FileNotFoundError:
        break
    assert time.monotonic() < deadline, "the upstream server did not stop"
    time.sleep(0.05)
if os.path.exists(tmpdir + "/upstream.sock"):
    os.unlink(tmpdir + "/upstream.sock")
subprocess.run([os.environ["NBDKIT"], "-P", tmpdir + "/up2.pid",
                "-U", tmpdir + "/upstream.sock", "file", tmpdir + "/disk"],
               check=True)
assert h.pread(65536, 65536) == data[65536:131072]
h.pwrite(b"after restart", 0)
assert h.pread(13, 0) == b"after restart"
PY
  kill_pidfile () { [ ! -s "$1" ] || kill_pid "$(cat "$1")"; }
  cleanup_fn kill_pidfile "$tmpdir/up2.pid"
  nbdsh -u "nbd+unix:///?socket=$tmpdir/retry.sock" -c - <"$tmpdir/restart.py" ||
    fail "the client noticed the upstream server restarting"
  [ "$(head -c 13 "$tmpdir/disk")" = "after restart" ] ||
    fail "the write after the restart did not reach the upstream file"
else
  echo "$0: the nbd plugin is not built: skipping the upstream restart"
fi

echo "$0: ok"
