#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The multi-conn filter: the multi-conn flag each mode advertises (nbdsh
# can_multi_conn), and which flushes reach the plugin (a log filter
# below) with three connections open: emulate repeats a flush (or FUA)
# on every connection that needs it, as multi-conn-track-dirty= says;
# multi-conn-exportname= limits that to one export; emulate refuses a
# plugin that cannot flush.  Bad parameters are refused.

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_plugin file
requires_plugin pattern
requires_filter multi-conn
requires_filter log

make_tmpdir
export tmpdir

# Connection 1 writes, 2 reads, 3 is idle.  Then 1 flushes twice and 2
# writes with FUA.  Prints the flag; data must survive.
cat > "$tmpdir/ops.py" <<'EOF'
import os
uri = os.environ["uri"]
hs = [nbd.NBD() for i in range(3)]
for x in hs:
    x.connect_uri(uri)
print("multi_conn=%d" % hs[0].can_multi_conn())
hs[0].pwrite(b"a" * 512, 0)
hs[1].pread(512, 4096)
hs[0].flush()
hs[0].flush()
hs[1].pwrite(b"b" * 512, 512, nbd.CMD_FLAG_FUA)
assert hs[2].pread(1024, 0) == b"a" * 512 + b"b" * 512
EOF

# run ARGS...: the flag, then "C:Flush" or "C:Write/fua=F" per plugin
# request, where C is the connection.
run ()
{
  rm -f "$tmpdir/log"
  "$NBDKIT" -U - --filter=multi-conn --filter=log memory 1M "$@" \
    logfile="$tmpdir/log" \
    --run 'nbdsh -c - < "$tmpdir/ops.py"' ||
    fail "$*: client failed"
  awk '$NF == "..." && ($4 == "Flush" || $4 == "Write") {
         c = substr($3, 12)
         if ($4 == "Write") print c ":Write/" $(NF-1); else print c ":Flush"
       }' "$tmpdir/log"
}

check ()
{
  local expected=$1 got; shift
  got=$(run "$@" | tr '\n' ' ')
  [ "$got" = "$expected" ] || fail "$*: got [$got], expected [$expected]"
}

# The memory plugin has multi-conn itself.
check "multi_conn=1 1:Write/fua=0 1:Flush 2:Write/fua=1 " \
  multi-conn-mode=auto
check "multi_conn=1 1:Write/fua=0 1:Flush 2:Write/fua=1 " \
  multi-conn-mode=plugin
check "multi_conn=1 1:Write/fua=0 1:Flush 1:Flush 2:Write/fua=1 " \
  multi-conn-mode=plugin multi-conn-track-dirty=off
check "multi_conn=1 1:Write/fua=0 1:Flush 1:Flush 2:Write/fua=1 " \
  multi-conn-mode=unsafe
check "multi_conn=0 1:Write/fua=0 1:Flush 1:Flush 2:Write/fua=1 " \
  multi-conn-mode=disable

# Emulation: a flush goes to every connection that wrote or read since
# its last flush; FUA becomes a write and such a flush.
check "multi_conn=1 1:Write/fua=0 1:Flush 2:Flush 2:Write/fua=0 2:Flush " \
  multi-conn-mode=emulate
check "multi_conn=1 1:Write/fua=0 1:Flush 2:Flush 3:Flush 2:Write/fua=0 1:Flush 2:Flush 3:Flush " \
  multi-conn-mode=emulate multi-conn-track-dirty=fast
check "multi_conn=1 1:Write/fua=0 1:Flush 2:Flush 3:Flush 1:Flush 2:Flush 3:Flush 2:Write/fua=0 1:Flush 2:Flush 3:Flush " \
  multi-conn-mode=emulate multi-conn-track-dirty=off

# multi-conn-exportname=true: a flush on one export leaves connections
# to another export alone.
mkdir "$tmpdir/dir"
truncate -s 64K "$tmpdir/dir/x" "$tmpdir/dir/y"
cat > "$tmpdir/names.py" <<'EOF'
import os
base = os.environ["uri"]
x1, x2, y = nbd.NBD(), nbd.NBD(), nbd.NBD()
x1.connect_uri(base.replace(":///", ":///x"))
x2.connect_uri(base.replace(":///", ":///x"))
y.connect_uri(base.replace(":///", ":///y"))
for c in (x1, x2, y):
    c.pwrite(b"w" * 512, 0)
x1.flush()
EOF
for byname in false true; do
  rm -f "$tmpdir/log"
  "$NBDKIT" -U - --filter=multi-conn --filter=log file dir="$tmpdir/dir" \
    multi-conn-mode=emulate multi-conn-exportname=$byname \
    logfile="$tmpdir/log" --run 'nbdsh -c - < "$tmpdir/names.py"' ||
    fail "multi-conn-exportname=$byname: client failed"
  flushes=$(grep -c ' Flush id=.* \.\.\.$' "$tmpdir/log")
  if [ $byname = true ]; then want=2; else want=3; fi
  [ "$flushes" -eq $want ] ||
    fail "multi-conn-exportname=$byname: $flushes flushes, expected $want"
done
[ "$(cat "$tmpdir/dir/x" | head -c 512)" = "$(printf 'w%.0s' {1..512})" ] ||
  fail "data written through the filter is missing"

# auto mode over a plugin without multi-conn or flush support is off;
# emulate cannot work there and refuses the client.
"$NBDKIT" -U - --filter=multi-conn pattern 1M \
  --run 'nbdsh -u "$uri" -c "assert h.can_multi_conn()"' ||
  fail "auto mode hid the pattern plugin's multi-conn"
if "$NBDKIT" -U - --filter=multi-conn pattern 1M multi-conn-mode=emulate \
     --run 'nbdsh -u "$uri" -c pass' 2> "$tmpdir/err"; then
  fail "emulate mode accepted a plugin that cannot flush"
fi
grep -q "multi-conn-mode=emulate needs" "$tmpdir/err" ||
  { cat "$tmpdir/err"; fail "emulate refusal not explained"; }

# Bad parameters: exit status 1 and a message naming the parameter.
for p in multi-conn-mode multi-conn-track-dirty multi-conn-exportname; do
  rc=0
  "$NBDKIT" -U - --filter=multi-conn memory 1M $p=sometimes --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "$p=sometimes: exit status $rc, expected 1"
  grep -q "$p" "$tmpdir/err" || fail "$p=sometimes: no message naming $p"
done

echo "$0: ok"
