#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
# Helper of test-filter-pairs.sh: serve a RAM disk through every ordered
# pair of the filters given on the command line and, for each, write,
# flush and read back data, and read untouched areas as zeroes.
# Each server runs in -s mode on a socketpair owned by libnbd.
import concurrent.futures
import os
import shutil
import sys
import tempfile
import nbd

nbdkit = os.environ["NBDKIT"]
filters = sys.argv[1:]
# Filters that need a parameter to run at all get a harmless one.
params = {"stats": ["statsfile=/dev/null"],
          "extentlist": ["extentlist=/dev/null"]}
# The pause filter's control socket must be unique to each server.
sockdir = tempfile.mkdtemp(prefix="filter-pairs.")

size = 16 * 1024 * 1024
data = bytes(range(256)) * 256          # 64 KiB, position-dependent


def check_pair(a, b):
    """Write, flush, read back through --filter=a --filter=b; returns
    None or the failure."""
    argv = [nbdkit, "-s", "--exit-with-parent",
            "--filter=" + a, "--filter=" + b, "memory", str(size)]
    argv += params.get(a, []) + params.get(b, [])
    if "pause" in (a, b):
        argv.append("pause-control=%s/%s-%s.sock" % (sockdir, a, b))
    h = nbd.NBD()
    try:
        h.connect_command(argv)
        assert h.get_size() == size, "size %d" % h.get_size()
        h.pwrite(data, 1024 * 1024 + 512)
        if h.can_flush():
            h.flush()
        got = h.pread(len(data), 1024 * 1024 + 512)
        assert got == data, "data read back differs"
        assert h.pread(4096, 0) == bytes(4096), "zeroes read back differ"
        h.shutdown()
        return None
    except Exception as e:              # noqa: BLE001 - reported below
        return "--filter=%s --filter=%s: %s" % (a, b, e)
    finally:
        del h


pairs = [(a, b) for a in filters for b in filters if a != b]
# Under the sanitizers each server is several times slower: there every
# two filters are stacked once, in an order that alternates.
if os.environ.get("FILTER_PAIRS_HALF"):
    pairs = [(a, b) if (i + j) % 2 else (b, a)
             for i, a in enumerate(filters) for j, b in enumerate(filters)
             if i < j]
count = len(pairs)
# Server start-up dominates (slow under sanitizers): several at once.
with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    failures = [f for f in pool.map(lambda p: check_pair(*p), pairs) if f]

shutil.rmtree(sockdir, ignore_errors=True)
for f in failures:
    print("FAIL:", f, file=sys.stderr)
print("%d ordered pairs of %d filters, %d failed"
      % (count, len(filters), len(failures)))
sys.exit(1 if failures else 0)
