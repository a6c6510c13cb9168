#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The delay filter really delays: each kind of request, opening the
# export and closing the connection take at least the configured time
# (lower bounds only: a loaded machine may be slower, never faster).
# delay-fast-zero=false refuses fast zeroes with ENOTSUP.  Bad values
# stop the server with a message naming the parameter.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin memory
requires_filter delay
requires_filter exitlast
make_tmpdir
export tmpdir

# Requests: the time of each call is at least its delay.
cat >"$tmpdir/requests.py" <<'PY'
import time
def took(fn, *args):
    start = time.monotonic()
    fn(*args)
    return time.monotonic() - start

def at_least(what, seconds, want):
    print("%s took %.3fs (at least %.3fs)" % (what, seconds, want))
    assert seconds >= want, "%s was not delayed" % what

at_least("3 reads", sum(took(h.pread, 512, 0) for _ in range(3)), 0.9)
at_least("write", took(h.pwrite, b"x" * 512, 0), 0.2)
at_least("zero", took(h.zero, 512, 0), 0.15)
at_least("trim", took(h.trim, 512, 0), 0.25)
at_least("block status", took(h.block_status, 512, 0, lambda *a: 0), 0.1)
at_least("cache", took(h.cache, 512, 0), 0.12)
# A fast zero is delayed like any zero by default.
assert h.can_fast_zero()
at_least("fast zero", took(h.zero, 512, 0, nbd.CMD_FLAG_FAST_ZERO), 0.15)
PY
"$NBDKIT" -U - --filter=delay memory 1M \
    rdelay=300ms wdelay=200ms delay-zero=0.15 delay-trim=250ms \
    delay-extents=100ms delay-cache=120ms \
    --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/requests.py"' ||
  fail "requests were not delayed"

# delay-read= is the same as rdelay=.
"$NBDKIT" -U - --filter=delay memory 1M delay-read=1 --run 'nbdsh -u "$uri" -c "
import time
start = time.monotonic()
h.pread(1, 0)
assert time.monotonic() - start >= 1.0, \"delay-read=1 did not delay\"
"' || fail "delay-read did not delay reads"

# Opening: the handshake takes at least delay-open.
"$NBDKIT" -U - --filter=delay memory 1M delay-open=500ms \
    --run 'nbdsh -n -c "
import os, time
h = nbd.NBD()
start = time.monotonic()
h.connect_uri(os.environ[\"uri\"])
took = time.monotonic() - start
print(\"connecting took %.3fs\" % took)
assert took >= 0.5, \"delay-open did not delay\"
h.shutdown()
"' || fail "delay-open did not delay the handshake"

# Closing: with exitlast on top, the server exits when the last
# connection has been closed, which delay-close=1 holds up by a second
# after the client's disconnect.
pidfile=$tmpdir/nbdkit.pid
"$NBDKIT" -f -P "$pidfile" -U "$tmpdir/sock" \
    --filter=exitlast --filter=delay memory 1M delay-close=1 &
cleanup_fn kill_pid $!
for (( i=0; i<300; i++ )); do [ -s "$pidfile" ] && break; sleep 0.1; done
[ -s "$pidfile" ] || fail "nbdkit did not start"
nbdsh -u "nbd+unix:///?socket=$tmpdir/sock" -c "
import os, time
pid = int(open(os.environ[\"tmpdir\"] + \"/nbdkit.pid\").read())
h.pread(512, 0)
start = time.monotonic()
h.shutdown()
for _ in range(300):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(0.01)
else:
    raise AssertionError(\"the server did not exit\")
took = time.monotonic() - start
print(\"the server exited %.3fs after the disconnect\" % took)
assert took >= 1.0, \"delay-close did not delay the close\"
" || fail "delay-close did not delay closing"

# delay-fast-zero=false: fast zero requests fail at once with ENOTSUP,
# ordinary zeroes are still delayed.
"$NBDKIT" -U - --filter=delay memory 1M delay-zero=1 delay-fast-zero=false \
    --run 'nbdsh -u "$uri" -c "
import time
assert h.can_fast_zero()
try:
    h.zero(512, 0, nbd.CMD_FLAG_FAST_ZERO)
    raise AssertionError(\"the fast zero succeeded\")
except nbd.Error as e:
    assert e.errno == \"ENOTSUP\", e
start = time.monotonic()
h.zero(512, 0)
assert time.monotonic() - start >= 1.0
"' || fail "delay-fast-zero=false misbehaved"

# Bad values.
for args in "rdelay=abc" "wdelay=-1" "delay-open=5xs" "delay-close=" \
            "delay-cache=10ms5" "delay-fast-zero=perhaps"; do
  key=${args%%=*}
  "$NBDKIT" -U - --filter=delay memory 1M "$args" --run true 2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "$args: exit status $r, expected 1"
  grep -q "$key" "$tmpdir/err" ||
    fail "$args: the message does not name '$key': $(cat "$tmpdir/err")"
done
