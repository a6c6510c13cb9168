#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Filter order: the first --filter on the command line is the outermost
# layer, each layer takes its own keys wherever they appear, and calls
# nest: an outer layer's callback starts before and ends after the
# inner layers'.  Shown with the log filter outside and inside other
# filters that change requests (nozero, protect, checkwrite, stats, and
# offset when it is built), and with -v traces.

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter log
requires_filter nozero
requires_filter protect
requires_filter checkwrite
requires_filter stats

make_tmpdir
export tmpdir
log=$tmpdir/log

# The request lines of the log (not results), without timestamps.
requests ()
{
  awk '$NF == "..." && $3 ~ /^connection=/ {
         $1 = $2 = $3 = ""; $NF = ""; sub(/^ +/, ""); sub(/ +$/, "")
         print
       }' "$log"
}

# log outside nozero sees the client's zero; inside, nozero's write.
# The keys are given in the opposite order to the filters on purpose.
zero='nbdsh -u "$uri" -c "h.zero(4096, 8192)"'
"$NBDKIT" -U - --filter=log --filter=nozero memory 1M \
  zeromode=emulate logfile="$log" --run "$zero" || fail "log, nozero"
[ "$(requests)" = "Zero id=1 offset=0x2000 count=0x1000 trim=1 fua=0 fast=0" ] ||
  fail "log outside nozero saw: $(requests)"
"$NBDKIT" -U - --filter=nozero --filter=log memory 1M \
  logfile="$log" zeromode=emulate --run "$zero" || fail "nozero, log"
[ "$(requests)" = "Write id=1 offset=0x2000 count=0x1000 fua=0" ] ||
  fail "log inside nozero saw: $(requests)"

# log outside protect sees the refused write; inside, only protect's
# read of the old data, and no write at all.
write='nbdsh -u "$uri" -c "
try:
    h.pwrite(b\"x\" * 512, 0)
except nbd.Error:
    pass
else:
    raise AssertionError(\"protected write succeeded\")
"'
"$NBDKIT" -U - --filter=log --filter=protect memory 1M protect=0-511 \
  logfile="$log" --run "$write" 2>/dev/null || fail "log, protect"
[ "$(requests)" = "Write id=1 offset=0x0 count=0x200 fua=0" ] ||
  fail "log outside protect saw: $(requests)"
grep -q '\.\.\.Write id=1 return=-1 error=EPERM' "$log" ||
  fail "log outside protect did not see EPERM"
"$NBDKIT" -U - --filter=protect --filter=log memory 1M protect=0-511 \
  logfile="$log" --run "$write" 2>/dev/null || fail "protect, log"
[ "$(requests)" = "Read id=1 offset=0x0 count=0x200" ] ||
  fail "log inside protect saw: $(requests)"

# checkwrite opens the layers below it read-only: a log inside sees a
# read-only export and reads; outside, a writable one and writes.
same='nbdsh -u "$uri" -c "h.pwrite(bytes(512), 0)"'
"$NBDKIT" -U - --filter=log --filter=checkwrite memory 1M \
  logfile="$log" --run "$same" || fail "log, checkwrite"
grep -q ' Connect .* write=1 ' "$log" && [ "$(requests)" = \
  "Write id=1 offset=0x0 count=0x200 fua=0" ] ||
  fail "log outside checkwrite saw: $(requests)"
"$NBDKIT" -U - --filter=checkwrite --filter=log memory 1M \
  logfile="$log" --run "$same" || fail "checkwrite, log"
grep -q ' Connect .* write=0 ' "$log" && [ "$(requests)" = \
  "Read id=1 offset=0x0 count=0x200" ] ||
  fail "log inside checkwrite saw: $(requests)"

# The same with stats: outside nozero it counts a zero, inside a write.
for order in "stats nozero" "nozero stats"; do
  set -- $order
  "$NBDKIT" -U - --filter=$1 --filter=$2 memory 1M zeromode=emulate \
    statsfile="$tmpdir/stats" --run "$zero" || fail "$order"
  if [ $1 = stats ]; then want=zero; else want=write; fi
  grep -q "^$want: 1 ops" "$tmpdir/stats" ||
    { cat "$tmpdir/stats"; fail "stats in order '$order' did not count a $want"; }
done

# Nesting, seen in the -v trace: the server traces each layer's call as
# it is made, and the outer log's script runs at ENTER and LEAVE.  The
# inner layers' calls must come between the two.
"$NBDKIT" -v -U - --filter=log --filter=nozero memory 1M zeromode=emulate \
  logscript='[ "$act" = Zero ] && echo "LOGSCRIPT-$type" >&2' \
  --run "$zero" 2> "$tmpdir/trace" || fail "traced run failed"
grep -E 'LOGSCRIPT-(ENTER|LEAVE)|debug: (log|nozero|memory): (zero|pwrite) count=' \
  "$tmpdir/trace" | sed -E 's/.*LOGSCRIPT-([A-Z]+)/LOGSCRIPT \1/; s/.*debug: ([a-z]+): ([a-z]+) .*/\1 \2/' \
  > "$tmpdir/order"
cat > "$tmpdir/expected" <<'EOF'
log zero
LOGSCRIPT ENTER
nozero zero
memory pwrite
LOGSCRIPT LEAVE
EOF
diff -u "$tmpdir/expected" "$tmpdir/order" ||
  fail "calls did not nest outermost first"

# With the offset filter (built by another part of the tree), the log
# outside sees client offsets and inside sees shifted ones.
if "$NBDKIT" --filter=offset null --dump-plugin > /dev/null 2>&1; then
  read='nbdsh -u "$uri" -c "h.pwrite(b\"o\" * 512, 512)"'
  "$NBDKIT" -U - --filter=log --filter=offset memory 1M offset=4096 \
    logfile="$log" --run "$read" || fail "log, offset"
  [ "$(requests)" = "Write id=1 offset=0x200 count=0x200 fua=0" ] ||
    fail "log outside offset saw: $(requests)"
  "$NBDKIT" -U - --filter=offset --filter=log memory 1M offset=4096 \
    logfile="$log" --run "$read" || fail "offset, log"
  [ "$(requests)" = "Write id=1 offset=0x1200 count=0x200 fua=0" ] ||
    fail "log inside offset saw: $(requests)"
else
  echo "$0: the offset filter is not built; skipping that part"
fi

echo "$0: ok"
