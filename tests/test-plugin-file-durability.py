#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Helper of test-plugin-file-durability.sh: write to a running server,
# SIGKILL it the moment the last acknowledgement arrives, and check that
# every write acknowledged with FUA, or followed by an acknowledged
# FLUSH, is in the file.
#
# usage: test-plugin-file-durability.py SOCKET PID FILE SEED
import os
import random
import signal
import sys
import nbd

sock, pid, path, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = random.Random(seed)

h = nbd.NBD()
h.connect_unix(sock)
size = h.get_size()
assert h.can_fua() and h.can_flush(), "file export must offer FUA and flush"

durable = {}                    # offset -> data that must survive
pending = {}                    # written but not yet flushed
block = 4096
nblocks = size // block
for i in range(200):
    off = rng.randrange(nblocks) * block
    data = rng.randbytes(block * rng.choice((1, 2, 16)))
    if off + len(data) > size:
        continue
    # Later writes replace earlier ones over the same range.
    for d in (durable, pending):
        for o in [o for o in d
                  if o < off + len(data) and off < o + len(d[o])]:
            del d[o]
    if rng.random() < 0.3:
        h.pwrite(data, off, nbd.CMD_FLAG_FUA)
        durable[off] = data
    else:
        h.pwrite(data, off)
        pending[off] = data
    if rng.random() < 0.1:
        h.flush()
        durable.update(pending)
        pending.clear()

# The last write is FUA: kill as soon as it is acknowledged.
off = 0
data = rng.randbytes(block)
for d in (durable, pending):
    for o in [o for o in d if o < off + len(data) and off < o + len(d[o])]:
        del d[o]
h.pwrite(data, off, nbd.CMD_FLAG_FUA)
os.kill(pid, signal.SIGKILL)
durable[off] = data

with open(path, "rb") as f:
    disk = f.read()
bad = [o for o, d in durable.items() if disk[o:o + len(d)] != d]
if bad:
    print("acknowledged durable writes lost at offsets:", sorted(bad)[:10],
          file=sys.stderr)
    sys.exit(1)
print("%d durable writes survived SIGKILL" % len(durable))
