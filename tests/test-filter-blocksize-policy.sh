#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The blocksize-policy filter: the constraints clients are told (nbdinfo
# and nbdsh get_block_size, one nbdsh running nbdkit -s per setting),
# requests breaking them failing with EINVAL (client checks off),
# blocksize-error-policy=error vs allow for requests that reach the
# filter (the blocksize filter above it lets 8K reads through),
# blocksize-write-disconnect, and bad values refused naming the key.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires nbdinfo --version
requires_plugin memory
requires_filter blocksize-policy
requires_filter blocksize

make_tmpdir

# What nbdinfo prints for the documented example.
"$NBDKIT" -U - --filter=blocksize-policy memory 1G blocksize-preferred=32K \
  --run 'nbdinfo "$uri"' > "$tmpdir/info" || fail "nbdinfo failed"
grep -q 'block_size_minimum: 1$' "$tmpdir/info" &&
  grep -q 'block_size_preferred: 32768$' "$tmpdir/info" ||
  fail "blocksize-preferred=32K: $(grep block_size "$tmpdir/info")"

nbdsh -c '
import errno, os

def connect(*args):
    h = nbd.NBD()
    h.set_strict_mode(0)
    h.connect_command([os.environ["NBDKIT"], "-s", "--exit-with-parent",
                       "--filter=blocksize-policy", "memory", "1M"] +
                      list(args))
    return h

def sizes(h):
    return tuple(h.get_block_size(s) for s in
                 (nbd.SIZE_MINIMUM, nbd.SIZE_PREFERRED, nbd.SIZE_MAXIMUM))

# The server caps "no maximum" at its own 64M request limit.
for args, want in (
        ((), (1, 4096, 64 << 20)),
        (("blocksize-minimum=512",), (512, 4096, 64 << 20)),
        (("blocksize-minimum=64K",), (65536, 65536, 64 << 20)),
        (("blocksize-preferred=512",), (1, 512, 64 << 20)),
        (("blocksize-maximum=1024",), (1, 1024, 1024)),
        (("blocksize-minimum=4K", "blocksize-preferred=16K",
          "blocksize-maximum=1M"), (4096, 16384, 1 << 20))):
    h = connect(*args)
    assert sizes(h) == want, (args, sizes(h), want)
    h.shutdown()

def fails(f, what):
    try:
        f()
    except nbd.Error as e:
        assert e.errnum == errno.EINVAL, (what, e)
    else:
        raise AssertionError(what + " succeeded")

for policy in ("allow", "error"):
    h = connect("blocksize-minimum=512", "blocksize-maximum=4096",
                "blocksize-error-policy=" + policy)
    h.pwrite(b"x" * 4096, 4096)
    assert h.pread(512, 4096 + 512) == b"x" * 512
    fails(lambda: h.pread(1, 1), "unaligned read")
    fails(lambda: h.pwrite(b"y" * 512, 100), "unaligned write")
    fails(lambda: h.pread(8192, 0), "oversized read")
    fails(lambda: h.zero(100, 0), "unaligned zero")
    h.zero(8192, 0)                     # zero is not bound by the maximum
    assert h.pread(4096, 4096) == bytes(4096)
    h.shutdown()

# Requests the server lets through (the blocksize filter above splits to
# 8K) are failed by the filter only with blocksize-error-policy=error.
for policy, ok in (("allow", True), ("error", False)):
    h = nbd.NBD()
    h.connect_command([os.environ["NBDKIT"], "-s", "--exit-with-parent",
                       "--filter=blocksize", "--filter=blocksize-policy",
                       "memory", "1M", "maxdata=8192",
                       "blocksize-maximum=4096",
                       "blocksize-error-policy=" + policy])
    if ok:
        h.pread(8192, 0)
    else:
        fails(lambda: h.pread(8192, 0), "8K read with policy=error")
    h.shutdown()

# A write over blocksize-write-disconnect drops the connection.
h = connect("blocksize-write-disconnect=4096")
h.pwrite(b"z" * 4096, 0)
try:
    h.pwrite(b"z" * 8192, 0)
except nbd.Error:
    pass
else:
    raise AssertionError("oversized write succeeded")
assert h.aio_is_closed() or h.aio_is_dead(), "still connected"
' || fail "block size checks failed"

for arg in blocksize-minimum=3 blocksize-minimum=128K \
           blocksize-preferred=256 blocksize-maximum=5G \
           blocksize-error-policy=strict blocksize-write-disconnect=0 \
           "blocksize-minimum=4K blocksize-preferred=1K" \
           "blocksize-preferred=64K blocksize-maximum=4K" \
           "blocksize-minimum=64 blocksize-maximum=1000"; do
  rc=0
  # shellcheck disable=SC2086
  "$NBDKIT" --filter=blocksize-policy memory 1M $arg --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "$arg: exit status $rc, expected 1"
  key=${arg##* }
  grep -q -- "${key%%=*}" "$tmpdir/err" ||
    fail "$arg: the error does not name ${key%%=*}: $(cat "$tmpdir/err")"
done

echo "$0: ok"
