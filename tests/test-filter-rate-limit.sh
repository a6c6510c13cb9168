#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The rate filter measurably slows reads (rate=) and writes
# (connection-rate=), takes its limit from rate-file= and notices when
# the file changes, and refuses bad parameters naming them.  Only lower
# bounds on elapsed time are asserted: a slow machine must not fail.

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin pattern
requires_plugin memory
requires_filter rate

make_tmpdir
export tmpdir

# 8M bits/s is 1 MiB/s.  With burstiness=0.5 the first 0.5 MiB passes
# at once, so moving 2 MiB takes at least 1.5 s; assert 1.4 s.
cat > "$tmpdir/read.py" <<'EOF'
import time
t = time.monotonic()
for off in range(0, 2 * 1024 * 1024, 256 * 1024):
    h.pread(256 * 1024, off)
elapsed = time.monotonic() - t
assert elapsed >= 1.4, "2 MiB read in %.3f s" % elapsed
print("read 2 MiB in %.2f s" % elapsed)
EOF
cat > "$tmpdir/write.py" <<'EOF'
import time
t = time.monotonic()
for off in range(0, 2 * 1024 * 1024, 256 * 1024):
    h.pwrite(b"\x55" * (256 * 1024), off)
elapsed = time.monotonic() - t
assert elapsed >= 1.4, "2 MiB written in %.3f s" % elapsed
assert h.pread(4096, 1024 * 1024) == b"\x55" * 4096
print("wrote 2 MiB in %.2f s" % elapsed)
EOF

"$NBDKIT" -U - --filter=rate pattern 4M rate=8M burstiness=0.5 \
  --run 'nbdsh -u "$uri" -c - < "$tmpdir/read.py"' ||
  fail "rate= did not limit reads"

"$NBDKIT" -U - --filter=rate memory 4M connection-rate=8M burstiness=0.5 \
  --run 'nbdsh -u "$uri" -c - < "$tmpdir/write.py"' ||
  fail "connection-rate= did not limit writes"

# The file's rate wins over the command line's.
echo 8M > "$tmpdir/rate"
"$NBDKIT" -U - --filter=rate pattern 4M rate=1000M \
  rate-file="$tmpdir/rate" burstiness=0.5 \
  --run 'nbdsh -u "$uri" -c - < "$tmpdir/read.py"' ||
  fail "rate-file= was not used"

# A file changed while the server runs takes effect (within a second).
cat > "$tmpdir/change.py" <<'EOF'
import os, time
tmpdir = os.environ["tmpdir"]
h.pread(1024 * 1024, 0)          # fast: the limit is 1000M
with open(tmpdir + "/crate.new", "w") as f:
    f.write("8M\n")
os.rename(tmpdir + "/crate.new", tmpdir + "/crate")
time.sleep(1.5)
exec(open(tmpdir + "/read.py").read())
EOF
echo 1000M > "$tmpdir/crate"
"$NBDKIT" -U - --filter=rate pattern 4M \
  connection-rate-file="$tmpdir/crate" burstiness=0.5 \
  --run 'nbdsh -u "$uri" -c - < "$tmpdir/change.py"' ||
  fail "a changed connection-rate-file= was not noticed"

# Without a limit the filter does nothing (and data is intact).
"$NBDKIT" -U - --filter=rate memory 1M \
  --run 'nbdsh -u "$uri" -c "h.pwrite(b\"z\" * 4096, 0); assert h.pread(4096, 0) == b\"z\" * 4096"' ||
  fail "the inactive rate filter changed data"

# Bad parameters: exit status 1 and a message naming the parameter.
bad ()
{
  local param=$1 rc=0; shift
  "$NBDKIT" -U - --filter=rate memory 1M "$@" --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "nbdkit $* exited with status $rc, expected 1"
  grep -q -- "$param" "$tmpdir/err" || {
    cat "$tmpdir/err"
    fail "the error for $* does not name $param"
  }
}
bad rate rate=fast
bad connection-rate connection-rate=-5M
bad burstiness rate=1M burstiness=0
bad burstiness rate=1M burstiness=soon

echo "$0: ok"
