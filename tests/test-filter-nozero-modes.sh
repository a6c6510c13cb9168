#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The nozero filter: for every zeromode= × fastzeromode= pair, what the
# client is offered (nbdsh can_zero/can_fast_zero), how a fast zero
# request ends, and what reaches the plugin (a log filter below): no
# zero at all, writes of zeroes, zero without may-trim, or unchanged.
# The zeroed range always reads back as zeroes; bad modes are refused.

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter nozero
requires_filter log

make_tmpdir
export tmpdir

cat > "$tmpdir/ops.py" <<'EOF'
import errno
r = ["zero=%d fast=%d" % (h.can_zero(), h.can_fast_zero())]
h.pwrite(b"\xff" * 8192, 0)
if h.can_zero():
    h.zero(4096, 0)
    assert h.pread(8192, 0) == bytes(4096) + b"\xff" * 4096
    if h.can_fast_zero():
        try:
            h.zero(4096, 4096, nbd.CMD_FLAG_FAST_ZERO)
            r.append("fast-ok")
            assert h.pread(8192, 0) == bytes(8192)
        except nbd.Error as e:
            assert e.errnum == errno.ENOTSUP, e
            r.append("fast-ENOTSUP")
            assert h.pread(4096, 4096) == b"\xff" * 4096
print(" ".join(r))
EOF

# run ZEROMODE FASTZEROMODE: the client's view, then plugin requests.
run ()
{
  rm -f "$tmpdir/log"
  "$NBDKIT" -U - --filter=nozero --filter=log memory 1M \
    zeromode=$1 fastzeromode=$2 logfile="$tmpdir/log" \
    --run 'nbdsh -u "$uri" -c - < "$tmpdir/ops.py"' ||
    fail "zeromode=$1 fastzeromode=$2: client failed"
  # Zero requests and writes other than the client's first one.
  awk '$NF == "..." && ($4 == "Zero" || ($4 == "Write" && $5 != "id=1")) {
         line = $4
         for (i = 5; i < NF; i++)
           if ($i ~ /^(count|trim|fast)=/) line = line " " $i
         print line
       }' "$tmpdir/log"
}

check ()
{
  local got
  got=$(run "$1" "$2" | tr '\n' '|')
  [ "$got" = "$3" ] ||
    fail "zeromode=$1 fastzeromode=$2: got [$got], expected [$3]"
}

for fast in default none slow ignore; do
  check none $fast "zero=0 fast=0|"
done
check emulate default "zero=1 fast=1 fast-ENOTSUP|Write count=0x1000|"
check emulate none    "zero=1 fast=0|Write count=0x1000|"
check emulate slow    "zero=1 fast=1 fast-ENOTSUP|Write count=0x1000|"
check emulate ignore  "zero=1 fast=1 fast-ok|Write count=0x1000|Write count=0x1000|"
check notrim default  "zero=1 fast=1 fast-ok|Zero count=0x1000 trim=0 fast=0|Zero count=0x1000 trim=0 fast=1|"
check notrim none     "zero=1 fast=0|Zero count=0x1000 trim=0 fast=0|"
check notrim slow     "zero=1 fast=1 fast-ENOTSUP|Zero count=0x1000 trim=0 fast=0|"
check notrim ignore   "zero=1 fast=1 fast-ok|Zero count=0x1000 trim=0 fast=0|Zero count=0x1000 trim=0 fast=0|"
check plugin default  "zero=1 fast=1 fast-ok|Zero count=0x1000 trim=1 fast=0|Zero count=0x1000 trim=1 fast=1|"
check plugin none     "zero=1 fast=0|Zero count=0x1000 trim=1 fast=0|"
check plugin slow     "zero=1 fast=1 fast-ENOTSUP|Zero count=0x1000 trim=1 fast=0|"
check plugin ignore   "zero=1 fast=1 fast-ok|Zero count=0x1000 trim=1 fast=0|Zero count=0x1000 trim=1 fast=0|"

# The default is zeromode=none.
"$NBDKIT" -U - --filter=nozero memory 1M \
  --run 'nbdsh -u "$uri" -c "assert not h.can_zero()"' ||
  fail "zero support is advertised by default"

# Emulation of a large zero (several internal writes) is correct.
"$NBDKIT" -U - --filter=nozero memory 8M zeromode=emulate \
  --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"\\x01\" * 8388608, 0)
h.zero(3 * 1048576 + 4096, 4096)
d = h.pread(8388608, 0)
assert d[:4096] == b\"\\x01\" * 4096
assert d[4096:4096 + 3 * 1048576 + 4096] == bytes(3 * 1048576 + 4096)
assert d[2 * 4096 + 3 * 1048576:] == b\"\\x01\" * (8388608 - 2 * 4096 - 3 * 1048576)
"' || fail "emulated zeroing of 3 MiB is wrong"

# Bad modes: exit status 1 and a message naming the parameter.
for p in zeromode fastzeromode; do
  rc=0
  "$NBDKIT" -U - --filter=nozero memory 1M $p=fast --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "$p=fast: exit status $rc, expected 1"
  grep -q "$p" "$tmpdir/err" || fail "$p=fast: no message naming $p"
done

echo "$0: ok"
