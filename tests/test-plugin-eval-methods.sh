#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The eval plugin: methods as fragments on the command line, can_*
# inferred from the operation given (pwrite= makes the disk writable),
# missing= standing in for every method not given (with $1 the method),
# unload= at exit, config= seeing the other keys in order, a method
# given twice refused, errors from fragments naming the method.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires jq --version
requires_plugin eval
make_tmpdir
export tmpdir

# A RAM disk in $tmpdir with the operations but none of the can_*.
"$NBDKIT" -U - eval \
  get_ready='truncate -s 1M "$tmpdir/disk"' \
  get_size='stat -c %s "$tmpdir/disk"' \
  pread='dd if="$tmpdir/disk" skip=$4 count=$3 iflag=skip_bytes,count_bytes status=none' \
  pwrite='dd of="$tmpdir/disk" seek=$4 conv=notrunc oflag=seek_bytes status=none' \
  flush='sync' \
  trim='exit 0' \
  --run 'nbdsh -u "$uri" -c "
import os
assert not h.is_read_only() and h.can_flush() and h.can_trim() and h.can_fua()
assert not h.can_cache() and not h.can_multi_conn()
buf = os.urandom(100000)
h.pwrite(buf, 12345, nbd.CMD_FLAG_FUA)
h.flush()
assert h.pread(100000, 12345) == buf
assert h.pread(12345, 0) == bytes(12345)
"' || fail "eval RAM disk failed"

# Read-only without pwrite=; can_write= overrides.
ro=$("$NBDKIT" -U - eval get_size='echo 64M' pread='head -c $3 /dev/zero' \
       --run 'nbdinfo --json "$uri"' | jq -r '.exports[0].is_read_only')
[ "$ro" = true ] || fail "no pwrite=, but read-only is $ro"
ro=$("$NBDKIT" -U - eval get_size='echo 64M' pread='head -c $3 /dev/zero' \
       pwrite='cat >/dev/null' can_write='exit 3' \
       --run 'nbdinfo --json "$uri"' | jq -r '.exports[0].is_read_only')
[ "$ro" = true ] || fail "can_write='exit 3', but read-only is $ro"

# missing= answers everything else; $1 is the method, $0 its file.
"$NBDKIT" -U - eval get_size='echo 1M' \
  missing='echo "$1 $(basename "$0")" >>"'"$tmpdir"'/missing.log"
           case "$1" in
             pread) head -c $3 /dev/zero ;;
             can_write) exit 3 ;;
             *) exit 2 ;;
           esac' \
  unload='echo unloaded >"'"$tmpdir"'/unload.log"' \
  --run 'nbdsh -u "$uri" -c "assert h.pread(512, 0) == bytes(512)"' ||
  fail "missing= did not answer pread"
for m in config_complete thread_model get_ready open can_write pread close; do
  grep -qx "$m missing" "$tmpdir/missing.log" ||
    fail "missing= not called for $m: $(cat "$tmpdir/missing.log")"
done
grep -q "^get_size" "$tmpdir/missing.log" && fail "missing= ran for get_size"
grep -q "^unload" "$tmpdir/missing.log" && fail "missing= ran for unload"
[ "$(cat "$tmpdir/unload.log")" = unloaded ] || fail "unload= did not run"

# config= gets the other keys, in order; $tmpdir exists already.
"$NBDKIT" -U - eval config='echo "$2=$3" >>"$tmpdir/cfg"; cp "$tmpdir/cfg" "'"$tmpdir"'/cfg"' \
  get_size='echo 1M' pread='head -c $3 /dev/zero' a=1 b=2 --run true ||
  fail "config= failed"
[ "$(cat "$tmpdir/cfg")" = "a=1
b=2" ] || fail "config= saw: $(cat "$tmpdir/cfg")"

# Errors.
if "$NBDKIT" -U - eval get_size='echo 1M' get_size='echo 2M' --run true \
     2>"$tmpdir/err"; then
  fail "a method given twice was accepted"
fi
grep -q "get_size defined more than once" "$tmpdir/err" || fail "twice: $(cat "$tmpdir/err")"
if "$NBDKIT" -U - eval get_size='echo 1M' unknown=1 --run true 2>"$tmpdir/err"; then
  fail "a key without config= was accepted"
fi
grep -q "config: .*'unknown'" "$tmpdir/err" || fail "unknown key: $(cat "$tmpdir/err")"
"$NBDKIT" -U - eval get_size='echo 1M' \
  pread='echo "ENOSPC full up" >&2; exit 1' \
  --run 'nbdsh -u "$uri" -c "
import errno
try:
    h.pread(512, 0)
    assert False
except nbd.Error as e:
    assert e.args[1] == errno.ENOSPC, e
"' 2>"$tmpdir/err" || fail "pread error: $(cat "$tmpdir/err")"
grep -q "pread: full up" "$tmpdir/err" || fail "pread message: $(cat "$tmpdir/err")"
"$NBDKIT" -U - eval get_size='no_such_command_xyz' pread='exit 0' \
  --run 'nbdinfo "$uri"' >/dev/null 2>"$tmpdir/err" &&
  fail "a failing get_size= was accepted"
grep -q "get_size: .*1: no_such_command_xyz: not found" "$tmpdir/err" ||
  fail "shell error: $(cat "$tmpdir/err")"

# Nothing left in /tmp by the fragments' directory.
"$NBDKIT" -U - eval get_size='echo 1M' pread='exit 0' \
  get_ready='echo "$tmpdir" >"'"$tmpdir"'/where"' --run true
[ ! -e "$(cat "$tmpdir/where")" ] || fail "eval's \$tmpdir was left behind"
echo "$0: ok"
