#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The memory plugin stores only data: writing zeroes over unwritten space
# allocates nothing (the server's memory does not grow and block status
# still shows a hole), while real data does use memory.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires test -r /proc/self/status
requires_plugin memory
make_tmpdir
export tmpdir

cat >"$tmpdir/t.py" <<'PY'
import os
pid = int(open(os.environ["tmpdir"] + "/pid").read())
def rss():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")

def is_all_hole(count, off):
    holes = []
    def cb(metacontext, offset, entries, err):
        if metacontext == nbd.CONTEXT_BASE_ALLOCATION:
            holes.append(all(entries[i] & nbd.STATE_HOLE
                             for i in range(1, len(entries), 2)) and
                         offset + sum(entries[0::2]) >= off + count)
        return 0
    h.block_status(count, off, cb)
    return holes == [True]

# Under AddressSanitizer freed request buffers stay in quarantine, so
# the server's memory says nothing about the allocator; block status
# still does.
sanitized = "libasan" in open("/proc/%d/maps" % pid).read()
if sanitized:
    print("server runs under AddressSanitizer: not measuring its memory")

M = 1 << 20
before = rss()

# 512 MiB of zeroes, written as data.  Requests are kept small so that
# the server's own request buffers do not blur the measurement.
CHUNK = 512 * 1024
zeroes = bytes(CHUNK)
for off in range(0, 512 * M, CHUNK):
    h.pwrite(zeroes, off)
grown = rss() - before
assert sanitized or grown < 48 * M, \
    "memory grew by %d bytes writing zeroes" % grown
assert is_all_hole(512 * M, 0), "writing zeroes allocated pages"

# 64 MiB of data does use memory (so the measurement above means something).
data = b"\xa5" * CHUNK
for off in range(512 * M, 576 * M, CHUNK):
    h.pwrite(data, off)
grown = rss() - before
assert sanitized or grown >= 56 * M, \
    "memory grew by only %d bytes writing data" % grown
assert not is_all_hole(64 * M, 512 * M)

# Zeroes written over data keep the data pages but read back as zero;
# trimming them makes a hole again.
h.pwrite(zeroes, 512 * M)
assert h.pread(CHUNK, 512 * M) == zeroes
h.trim(64 * M, 512 * M)
assert is_all_hole(h.get_size(), 0)
PY
"$NBDKIT" -U - -P "$tmpdir/pid" memory 1G \
  --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "sparse allocation checks failed"
