#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The log filter's logscript=: the script runs once per log entry with
# $act, $type (ENTER/LEAVE/PRINT), $connection, $id, $return, $error,
# $duration and the entry's other fields as shell variables, in order;
# lists arrive as one string; logfile= and logscript= work together.

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter log
requires_filter protect

make_tmpdir
export tmpdir
out=$tmpdir/out

# Print the variables every entry may have; unset ones as "-".
script='echo "$act $type conn=${connection--} id=${id--} ret=${return--}'\
' err=${error--} off=${offset--} count=${count--} fua=${fua--}'\
' ext=${extents--} dur=${duration:+yes}" >> "$tmpdir/out"'

cat > "$tmpdir/ops.py" <<'EOF'
import errno
h.pwrite(b"a" * 512, 0x1000, nbd.CMD_FLAG_FUA)
h.block_status(65536, 0, lambda *a: 0)
try:
    h.pwrite(b"c" * 512, 0x10000)
    raise AssertionError("write to the protected range succeeded")
except nbd.Error as e:
    assert e.errnum == errno.EPERM, e
EOF
"$NBDKIT" -U - --filter=log --filter=protect memory 1M \
  protect=0x10000-0x1ffff logscript="$script" logfile="$tmpdir/log" \
  --run 'nbdsh --base-allocation -u "$uri" -c - < "$tmpdir/ops.py"' ||
  fail "client operations failed"

cat > "$tmpdir/expected" <<'EOF'
Ready PRINT conn=- id=- ret=- err=- off=- count=- fua=- ext=- dur=
Fork PRINT conn=- id=- ret=- err=- off=- count=- fua=- ext=- dur=
Preconnect ENTER conn=- id=1 ret=- err=- off=- count=- fua=- ext=- dur=
Preconnect LEAVE conn=- id=1 ret=0 err=- off=- count=- fua=- ext=- dur=yes
Connect PRINT conn=1 id=- ret=- err=- off=- count=- fua=2 ext=1 dur=
Write ENTER conn=1 id=1 ret=- err=- off=0x1000 count=0x200 fua=1 ext=- dur=
Write LEAVE conn=1 id=1 ret=0 err=- off=- count=- fua=- ext=- dur=yes
Extents ENTER conn=1 id=2 ret=- err=- off=0x0 count=0x10000 fua=- ext=- dur=
Extents LEAVE conn=1 id=2 ret=0 err=- off=- count=- fua=- ext=0x0 0x8000 "" 0x8000 0x8000 "hole,zero" dur=yes
Write ENTER conn=1 id=3 ret=- err=- off=0x10000 count=0x200 fua=0 ext=- dur=
Write LEAVE conn=1 id=3 ret=-1 err=EPERM off=- count=- fua=- ext=- dur=yes
Disconnect PRINT conn=1 id=- ret=- err=- off=- count=- fua=- ext=- dur=
EOF
if ! diff -u "$tmpdir/expected" "$out"; then
  fail "the log script saw the wrong variables or order"
fi

# The log file was written as well, one line per script run.
[ "$(wc -l < "$tmpdir/log")" -eq "$(wc -l < "$out")" ] ||
  fail "logfile= and logscript= logged different numbers of entries"

# An export name that needs quoting reaches the script intact.
rm -f "$out"
"$NBDKIT" -U - --filter=log memory 1M \
  logscript='[ "$act" = Connect ] && printf "%s\n" "$export" >> "$tmpdir/out"' \
  --run 'nbdsh -u "nbd+unix:///it%27s%20a%20%22name%22?socket=$unixsocket" -c "pass"' ||
  fail "connecting with a quoted export name failed"
[ "$(cat "$out")" = "it's a \"name\"" ] ||
  fail "the export name reached the script as: $(cat "$out")"

echo "$0: ok"
