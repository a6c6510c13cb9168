#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The fua filter: for each fuamode=, what the client is offered (nbdsh
# can_fua/can_flush) and what reaches the plugin (a log filter below
# it): FUA kept, dropped, added, or turned into a flush; flush passed or
# swallowed.  Data written always reads back.  Modes that need plugin
# support refuse a plugin without it; bad modes are refused.

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_plugin full
requires_filter fua
requires_filter log

make_tmpdir
export tmpdir

# Writes, a trim and a zero with and without FUA, then a flush.  Prints
# what the client was offered.
cat > "$tmpdir/ops.py" <<'EOF'
print("can_fua=%d can_flush=%d" % (h.can_fua(), h.can_flush()))
fua = nbd.CMD_FLAG_FUA if h.can_fua() else 0
h.pwrite(b"a" * 512, 0, fua)
h.pwrite(b"b" * 512, 512)
h.trim(4096, 65536, fua)
h.zero(4096, 131072, fua)
h.flush()
assert h.pread(1024, 0) == b"a" * 512 + b"b" * 512
EOF

# run MODE: the offer, then the plugin-side requests, one per line.
run ()
{
  rm -f "$tmpdir/log"
  "$NBDKIT" -U - --filter=fua --filter=log memory 1M fuamode=$1 \
    logfile="$tmpdir/log" \
    --run 'nbdsh -u "$uri" -c - < "$tmpdir/ops.py"' ||
    fail "fuamode=$1: client failed"
  # Request lines (not results): the action and its fua= field.
  awk '$NF == "..." && $3 ~ /^connection=/ && $4 != "Read" {
         line = $4
         for (i = 5; i < NF; i++) if ($i ~ /^fua=/) line = line " " $i
         print line
       }' "$tmpdir/log"
}

# check MODE EXPECTED
check ()
{
  local got
  got=$(run "$1")
  [ "$got" = "$2" ] || fail "fuamode=$1: got
$got
expected
$2"
}

check none "can_fua=0 can_flush=1
Write fua=0
Write fua=0
Trim fua=0
Zero fua=0
Flush"
check emulate "can_fua=1 can_flush=1
Write fua=0
Flush
Write fua=0
Trim fua=0
Flush
Zero fua=0
Flush
Flush"
for mode in native advertise pass; do
  check $mode "can_fua=1 can_flush=1
Write fua=1
Write fua=0
Trim fua=1
Zero fua=1
Flush"
done
check force "can_fua=1 can_flush=1
Write fua=1
Write fua=1
Trim fua=1
Zero fua=1"
check discard "can_fua=1 can_flush=1
Write fua=0
Write fua=0
Trim fua=0
Zero fua=0"

# Over a plugin with neither flush nor FUA (full): emulate, native and
# force refuse the connection; discard and advertise offer both anyway;
# none offers neither.
for mode in emulate native force; do
  if "$NBDKIT" -U - --filter=fua full 1M fuamode=$mode \
       --run 'nbdsh -u "$uri" -c pass' 2> "$tmpdir/err"; then
    fail "fuamode=$mode accepted a plugin without flush or FUA"
  fi
  grep -q "fuamode=$mode needs" "$tmpdir/err" ||
    { cat "$tmpdir/err"; fail "fuamode=$mode: no explanation"; }
done
for m in "discard 1 1" "advertise 1 0" "none 0 0"; do
  set -- $m
  "$NBDKIT" -U - --filter=fua full 1M fuamode=$1 \
    --run "nbdsh -u \"\$uri\" -c 'assert (h.can_fua(), h.can_flush()) == ($2, $3)'" ||
    fail "fuamode=$1 over the full plugin offered the wrong flags"
done

# Bad mode: exit status 1 and a message naming the parameter.
rc=0
"$NBDKIT" -U - --filter=fua memory 1M fuamode=sometimes --run true \
  2> "$tmpdir/err" || rc=$?
[ $rc -eq 1 ] || fail "fuamode=sometimes: exit status $rc, expected 1"
grep -q fuamode "$tmpdir/err" || fail "fuamode=sometimes: no message"

echo "$0: ok"
