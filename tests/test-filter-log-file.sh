#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The log filter's logfile=: every line is timestamped; server events,
# export listings, connections and each kind of request are logged with
# exactly the fields of upstream's format (plus duration= on results);
# failures carry the errno name; logappend= appends; bad parameters are
# refused naming the parameter.

source "$srcdir/functions.sh"
requires nbdsh --version
requires nbdinfo --version
requires_plugin memory
requires_plugin file
requires_filter log
requires_filter protect

make_tmpdir
export tmpdir
log=$tmpdir/log
TS='[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}'

# Check the shape of every line, then strip timestamps and durations so
# that the rest can be compared literally.
normalize ()
{
  if grep -Evq "^$TS " "$log"; then
    cat "$log"
    fail "a log line has no timestamp"
  fi
  if grep -E "^$TS (connection=[0-9]+ )?\.\.\." "$log" |
      grep -Evq " duration=[0-9]+\.[0-9]{6}$"; then
    cat "$log"
    fail "a result line has no duration"
  fi
  sed -E "s/^$TS //; s/ duration=[0-9]+\.[0-9]{6}$//" "$log" > "$log.norm"
}

# expect LINE...: each LINE appears, in this order.
expect ()
{
  local line n prev=0
  for line in "$@"; do
    n=$(grep -Fxn -- "$line" "$log.norm" | head -1 | cut -d: -f1)
    if [ -z "$n" ]; then
      cat "$log.norm"
      fail "log line missing: $line"
    fi
    if [ "$n" -le "$prev" ]; then
      cat "$log.norm"
      fail "log line out of order: $line"
    fi
    prev=$n
  done
}

# Every kind of request, on the filter outermost.  The protect filter
# below makes one write fail.  Reads are of non-zero data smaller than
# 64 KiB so the server does not look for holes with extra extents calls.
cat > "$tmpdir/ops.py" <<'EOF'
import errno
h.pwrite(b"a" * 512, 0, nbd.CMD_FLAG_FUA)
assert h.pread(512, 0) == b"a" * 512
h.trim(4096, 8192)
h.zero(4096, 16384, nbd.CMD_FLAG_NO_HOLE)
h.zero(4096, 16384, nbd.CMD_FLAG_FAST_ZERO)
h.flush()
h.pwrite(b"b" * 512, 0x20000)
h.block_status(65536, 0x20000, lambda *a: 0)
h.block_status(65536, 0x40000, lambda *a: 0, nbd.CMD_FLAG_REQ_ONE)
h.cache(512, 0)
try:
    h.pwrite(b"c" * 512, 0x10000)
    raise AssertionError("write to the protected range succeeded")
except nbd.Error as e:
    assert e.errnum == errno.EPERM, e
EOF
"$NBDKIT" -U - --filter=log --filter=protect memory 1M \
  protect=0x10000-0x1ffff logfile="$log" \
  --run 'nbdsh --base-allocation -u "$uri" -c - < "$tmpdir/ops.py"' ||
  fail "client operations failed"
normalize
expect \
  'Ready thread_model=3' \
  'Fork' \
  'Preconnect id=1 readonly=0 ...' \
  '...Preconnect id=1 return=0' \
  'connection=1 Connect export="" tls=0 size=0x100000 minsize=0x0 prefsize=0x0 maxsize=0x0 write=1 flush=1 rotational=0 trim=1 zero=2 fua=2 extents=1 cache=2 fast_zero=1' \
  'connection=1 Write id=1 offset=0x0 count=0x200 fua=1 ...' \
  'connection=1 ...Write id=1 return=0' \
  'connection=1 Read id=2 offset=0x0 count=0x200 ...' \
  'connection=1 ...Read id=2 return=0' \
  'connection=1 Trim id=3 offset=0x2000 count=0x1000 fua=0 ...' \
  'connection=1 ...Trim id=3 return=0' \
  'connection=1 Zero id=4 offset=0x4000 count=0x1000 trim=0 fua=0 fast=0 ...' \
  'connection=1 ...Zero id=4 return=0' \
  'connection=1 Zero id=5 offset=0x4000 count=0x1000 trim=1 fua=0 fast=1 ...' \
  'connection=1 ...Zero id=5 return=0' \
  'connection=1 Flush id=6 ...' \
  'connection=1 ...Flush id=6 return=0' \
  'connection=1 Write id=7 offset=0x20000 count=0x200 fua=0 ...' \
  'connection=1 ...Write id=7 return=0' \
  'connection=1 Extents id=8 offset=0x20000 count=0x10000 req_one=0 ...' \
  'connection=1 ...Extents id=8 extents=(0x20000 0x8000 "" 0x28000 0x8000 "hole,zero") return=0' \
  'connection=1 Extents id=9 offset=0x40000 count=0x10000 req_one=1 ...' \
  'connection=1 ...Extents id=9 extents=(0x40000 0x10000 "hole,zero") return=0' \
  'connection=1 Cache id=10 offset=0x0 count=0x200 ...' \
  'connection=1 ...Cache id=10 return=0' \
  'connection=1 Write id=11 offset=0x10000 count=0x200 fua=0 ...' \
  'connection=1 ...Write id=11 return=-1 error=EPERM' \
  'connection=1 Disconnect transactions=11'
[ "$(head -1 "$log.norm")" = "Ready thread_model=3" ] ||
  fail "the log does not start with Ready"
[ "$(wc -l < "$log.norm")" -eq 28 ] || {
  cat "$log.norm"
  fail "unexpected extra log lines"
}

# Export listing with names that need quoting, and a read-only
# connection.
mkdir "$tmpdir/dir"
truncate -s 64K "$tmpdir/dir/a b" "$tmpdir/dir/c"
"$NBDKIT" -r -U - --filter=log file dir="$tmpdir/dir" logfile="$log" \
  --run 'nbdinfo --list "$uri" > /dev/null' ||
  fail "nbdinfo --list failed"
normalize
expect \
  'ListExports id=1 readonly=1 tls=0 ...' \
  '...ListExports id=1 exports=("a b" c) return=0' \
  'connection=1 Disconnect transactions=0' \
  'connection=2 Disconnect transactions=0'
# Read-only: write=0, and so no trim, zero or FUA.
for c in '1 Connect export="a b"' '2 Connect export=c'; do
  grep -Eq "^connection=$c tls=0 size=0x10000 .* write=0 .* trim=0 zero=0 fua=0 " \
    "$log.norm" || { cat "$log.norm"; fail "bad Connect line: $c"; }
done

# The file is replaced by default and appended to with logappend=true.
for append in false true; do
  "$NBDKIT" -U - --filter=log memory 1M logfile="$log" \
    logappend=$append --run true || fail "logappend=$append failed"
done
[ "$(grep -c ' Ready thread_model=' "$log")" -eq 2 ] ||
  fail "logappend=true did not append"
"$NBDKIT" -U - --filter=log memory 1M logfile="$log" --run true ||
  fail "nbdkit failed"
[ "$(grep -c ' Ready thread_model=' "$log")" -eq 1 ] ||
  fail "the log file was not replaced"

# Without logfile= or logscript= the filter is inactive but harmless.
"$NBDKIT" -U - --filter=log memory 1M \
  --run 'nbdsh -u "$uri" -c "h.pwrite(b\"x\" * 512, 0)"' ||
  fail "the inactive log filter broke a write"

# Bad parameters: exit status 1 and a message naming the parameter.
bad ()
{
  local param=$1 rc=0; shift
  "$NBDKIT" -U - --filter=log memory 1M "$@" --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "nbdkit $* exited with status $rc, expected 1"
  grep -q -- "$param" "$tmpdir/err" || {
    cat "$tmpdir/err"
    fail "the error for $* does not name $param"
  }
}
bad logappend logfile="$log" logappend=perhaps
bad logfile logfile="$tmpdir/no/such/dir/log"

echo "$0: ok"
