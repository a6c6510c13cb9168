#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The error filter's switches: error-file turns injection on and off
# while a client stays connected (also with a relative file name); the
# per-operation parameters hit only their operation, with their own
# error; a later per-operation setting overrides the general one.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin memory
requires_filter error
make_tmpdir
export tmpdir

# error-file: every request fails while the file exists, none otherwise.
cat >"$tmpdir/onoff.py" <<'PY'
import os
flag = os.path.join(os.environ["tmpdir"], "inject")
def fails(fn, *args):
    try:
        fn(*args)
        return None
    except nbd.Error as e:
        return e.errno

assert not os.path.exists(flag)
assert fails(h.pread, 512, 0) is None
assert fails(h.pwrite, b"1" * 512, 0) is None
open(flag, "w").close()
for _ in range(5):
    assert fails(h.pread, 512, 0) == "EIO"
    assert fails(h.pwrite, b"2" * 512, 0) == "EIO"
    assert fails(h.flush) == "EIO"
os.unlink(flag)
assert fails(h.pread, 512, 0) is None
assert h.pread(512, 0) == b"1" * 512, "a failed write changed the data"
open(flag, "w").close()
assert fails(h.zero, 512, 0) == "EIO"
os.unlink(flag)
assert fails(h.zero, 512, 0) is None
PY
rm -f "$tmpdir/inject"
"$NBDKIT" -U - --filter=error memory 1M \
    error-rate=100% error-file="$tmpdir/inject" \
    --run 'nbdsh -u "$uri" -c - <"$tmpdir/onoff.py"' 2>>"$tmpdir/log" ||
  fail "error-file did not switch injection on and off"

# The same with a name relative to nbdkit's starting directory.
rm -f "$tmpdir/inject"
( cd "$tmpdir" &&
  "$NBDKIT" -U - --filter=error memory 1M error-rate=1 error-file=inject \
      --run 'cd / && nbdsh -u "$uri" -c - <"$tmpdir/onoff.py"' \
      2>>"$tmpdir/log" ) ||
  fail "a relative error-file did not work"

# error-pread-file only affects reads.
rm -f "$tmpdir/inject"
"$NBDKIT" -U - --filter=error memory 1M \
    error-pread-rate=1 error-pread-file="$tmpdir/inject" \
    --run 'nbdsh -u "$uri" -c "
import os
flag = os.path.join(os.environ[\"tmpdir\"], \"inject\")
h.pread(512, 0)
open(flag, \"w\").close()
h.pwrite(b\"x\" * 512, 0)
try:
    h.pread(512, 0)
    raise AssertionError(\"the read succeeded\")
except nbd.Error as e:
    assert e.errno == \"EIO\", e
"' 2>>"$tmpdir/log" || fail "error-pread-file misbehaved"

# Per-operation settings: each operation fails with its own error and
# the others are untouched.
cat >"$tmpdir/perop.py" <<'PY'
def fails(fn, *args):
    try:
        fn(*args)
        return None
    except nbd.Error as e:
        return e.errno

ops = {
    "pread": lambda: h.pread(512, 0),
    "pwrite": lambda: h.pwrite(b"x" * 512, 0),
    "trim": lambda: h.trim(512, 0),
    "zero": lambda: h.zero(512, 0),
    "extents": lambda: h.block_status(512, 0, lambda *a: 0),
    "cache": lambda: h.cache(512, 0),
    "flush": lambda: h.flush(),
}
import os
expect = dict(x.split("=") for x in os.environ["expect"].split())
for op, fn in ops.items():
    got = fails(fn)
    want = expect.get(op)
    assert got == want, "%s: got %s, expected %s" % (op, got, want)
PY
check ()
{
  local expect=$1; shift
  expect="$expect" "$NBDKIT" -U - --filter=error memory 1M "$@" \
      --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/perop.py"' \
      2>>"$tmpdir/log" ||
    fail "$*: wrong operations failed (expected: $expect):
$(tail -5 "$tmpdir/log")"
}
check "pwrite=ENOSPC zero=ENOSPC" \
  error=ENOSPC error-pwrite-rate=100% error-zero-rate=100%
check "pread=EPERM" error-pread=EPERM error-pread-rate=1
check "trim=EINVAL" error-trim=EINVAL error-trim-rate=1
check "extents=ENOMEM" error-extents=ENOMEM error-extents-rate=1
check "cache=EIO" error-cache-rate=1
check "flush=ENOSPC" error-flush=ENOSPC error-flush-rate=1
# The general setting for everything, then reads switched back off.
check "pwrite=EIO trim=EIO zero=EIO extents=EIO cache=EIO flush=EIO" \
  error-rate=1 error-pread-rate=0
# Per-operation error names override the general one in any order.
check "pread=EPERM pwrite=EINVAL" \
  error-pread-rate=1 error-pwrite-rate=1 error=EPERM error-pwrite=EINVAL
# Rate 0 (the default) injects nothing.
check "" error=ENOSPC
