#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The swab filter over a file for swab-bits=8/16/32/64 (one nbdsh runs
# nbdkit -s per setting): reads come back with the bytes of each word
# reversed, writes land in the file reversed (checked in the file
# itself), the size is rounded down to the word, the word size is the
# advertised minimum block size, unaligned requests fail with EINVAL
# (client checks off), zero and block status pass through; bad
# swab-bits values are refused naming the parameter.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires_plugin file
requires_filter swab

make_tmpdir
export tmpdir

nbdsh -c '
import errno, os

disk = os.environ["tmpdir"] + "/disk"
orig = bytes(range(256)) * 4 + b"xyz"           # 1027 bytes

def swapped(data, n):
    return b"".join(data[i:i + n][::-1] for i in range(0, len(data), n))

for bits in (None, 8, 16, 32, 64):
    n = (bits or 16) // 8
    with open(disk, "wb") as f:
        f.write(orig)
    argv = [os.environ["NBDKIT"], "-s", "--exit-with-parent",
            "--filter=swab", "file", disk]
    if bits:
        argv.append("swab-bits=%d" % bits)
    h = nbd.NBD()
    h.set_strict_mode(0)
    h.connect_command(argv)
    size = len(orig) // n * n
    assert h.get_size() == size, (bits, h.get_size())
    assert h.get_block_size(nbd.SIZE_MINIMUM) == n, (bits, "minimum")
    assert h.pread(size, 0) == swapped(orig[:size], n), (bits, "read")
    assert h.pread(16, 64) == swapped(orig[64:80], n), (bits, "read at 64")

    # A write is stored swapped, and reads back as written.
    h.pwrite(b"ABCDEFGHIJKLMNOP", 128)
    assert h.pread(16, 128) == b"ABCDEFGHIJKLMNOP"
    h.flush()
    with open(disk, "rb") as f:
        raw = f.read()
    assert raw[128:144] == swapped(b"ABCDEFGHIJKLMNOP", n), (bits, "file")
    assert raw[len(orig) - 3:] == b"xyz", "the cut-off tail was touched"

    h.zero(16, 256)
    assert h.pread(16, 256) == bytes(16)

    if n > 1:
        for count, offset in ((n, 1), (1, 0), (n + 1, 0)):
            for op in ("pread", "pwrite", "zero"):
                try:
                    if op == "pread":
                        h.pread(count, offset)
                    elif op == "pwrite":
                        h.pwrite(b"!" * count, offset)
                    else:
                        h.zero(count, offset)
                except nbd.Error as e:
                    assert e.errnum == errno.EINVAL, (bits, op, e)
                else:
                    raise AssertionError("%s %d@%d accepted" % (op, count, offset))
    h.shutdown()
    del h
' || fail "swab data checks failed"

for v in 0 12 128 abc ""; do
  rc=0
  "$NBDKIT" --filter=swab memory 1M swab-bits=$v --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "swab-bits=$v: exit status $rc, expected 1"
  grep -q "swab-bits" "$tmpdir/err" ||
    fail "swab-bits=$v: the error does not name the parameter"
done

echo "$0: ok"
