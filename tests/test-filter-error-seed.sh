#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The error and delay filters stacked as in their man pages:
#   nbdkit --filter=error --filter=delay memory 100M \
#          error-rate=10% rdelay=1 wdelay=1
# with the delays shortened to 20ms.  Some reads and writes fail with
# EIO and some succeed; the requests that got through were delayed; a
# write that failed changed nothing, one that succeeded reads back.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin memory
requires_filter error
requires_filter delay
make_tmpdir
export tmpdir

cat >"$tmpdir/t.py" <<'PY'
import time
N = 100
DELAY = 0.020

def attempt(fn, *args):
    """Run fn; return True on success, False on an injected EIO."""
    try:
        fn(*args)
        return True
    except nbd.Error as e:
        assert e.errno == "EIO", "unexpected error %s" % e
        return False

assert h.get_size() == 100 * 1024 * 1024

# Reads.  The error filter is outermost, so failed requests never reach
# the delay filter: only the successful ones must have slept.
start = time.monotonic()
ok = sum(attempt(h.pread, 512, i * 4096) for i in range(N))
elapsed = time.monotonic() - start
print("reads: %d of %d succeeded in %.2fs" % (ok, N, elapsed))
assert 0 < ok < N, "expected some reads to fail and some to succeed"
assert elapsed >= ok * DELAY, "reads were not delayed"

# Writes: remember which ones went through.
start = time.monotonic()
written = {}
for i in range(N):
    buf = bytes([i + 1]) * 512
    written[i] = attempt(h.pwrite, buf, i * 4096)
elapsed = time.monotonic() - start
ok = sum(written.values())
print("writes: %d of %d succeeded in %.2fs" % (ok, N, elapsed))
assert 0 < ok < N, "expected some writes to fail and some to succeed"
assert elapsed >= ok * DELAY, "writes were not delayed"

# Read everything back, retrying reads that hit an injected error.
def read_retry(count, off):
    for _ in range(50):
        try:
            return h.pread(count, off)
        except nbd.Error as e:
            assert e.errno == "EIO", e
    raise AssertionError("50 reads in a row failed")

for i in range(N):
    got = read_retry(512, i * 4096)
    want = bytes([i + 1]) * 512 if written[i] else bytes(512)
    assert got == want, "block %d: wrong data (write ok=%s)" % (i, written[i])
PY
"$NBDKIT" -U - --filter=error --filter=delay memory 100M \
    error-rate=10% rdelay=20ms wdelay=20ms \
    --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' 2>"$tmpdir/log" ||
  fail "the stacked error/delay checks failed: $(tail -5 "$tmpdir/log")"

# Every injected error was logged.
grep -q "injecting EIO error into pread" "$tmpdir/log" ||
  fail "no injected read error was logged"
grep -q "injecting EIO error into pwrite" "$tmpdir/log" ||
  fail "no injected write error was logged"
