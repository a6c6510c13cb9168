#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The gzip filter serves exactly what `gzip -d` outputs: for a mixed
# random/text/zero file, a file of two concatenated members, and a
# compressed tar archive under the tar filter.  The export is
# read-only, the temporary file is an unlinked file in $TMPDIR, a second
# client does not decompress again, and decompressing 256 MiB keeps the
# server's peak memory small.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires gzip --version
requires tar --version
requires nbdcopy --version
requires nbdinfo --version
requires nbdsh --version
requires_plugin file
requires_filter gzip
make_tmpdir
export tmpdir

{ head -c 3M /dev/urandom; yes "gzip filter" | head -c 5M;
  head -c 4M /dev/zero; printf 'tail'; } >"$tmpdir/data"
gzip --keep "$tmpdir/data" || fail "gzip failed"

copy_and_compare ()
{
  local gz=$1; shift
  "$NBDKIT" -U - --filter=gzip file "$gz" "$@" \
      --run 'nbdcopy "$uri" "$tmpdir/out"' || fail "$gz: nbdcopy failed"
  gzip -dc "$gz" | cmp - "$tmpdir/out" ||
    fail "$gz: the data differs from gzip -d output"
}
copy_and_compare "$tmpdir/data.gz"

# Two members, as cat a.gz b.gz makes.
head -c 100000 /dev/urandom | gzip >"$tmpdir/b.gz"
cat "$tmpdir/data.gz" "$tmpdir/b.gz" >"$tmpdir/two.gz"
copy_and_compare "$tmpdir/two.gz"
[ "$(stat -c %s "$tmpdir/out")" = $(( 12 * 1048576 + 4 + 100000 )) ] ||
  fail "the second member was not served"

# A member of a compressed tar archive.
mkdir "$tmpdir/t"
head -c 1M /dev/urandom >"$tmpdir/t/disk.img"
echo hello >"$tmpdir/t/readme"
tar -C "$tmpdir/t" -czf "$tmpdir/data.tar.gz" readme disk.img
"$NBDKIT" -U - --filter=tar --filter=gzip file "$tmpdir/data.tar.gz" \
    tar-entry=disk.img --run 'nbdcopy "$uri" "$tmpdir/out"' ||
  fail "tar over gzip failed"
cmp "$tmpdir/t/disk.img" "$tmpdir/out" || fail "tar over gzip: wrong data"

# Random reads, read-only, and the temporary file in $TMPDIR, deleted.
mkdir "$tmpdir/tmp"
pidfile=$tmpdir/nbdkit.pid
sock=$tmpdir/sock
TMPDIR=$tmpdir/tmp start_nbdkit -P "$pidfile" -U "$sock" --filter=gzip \
  file "$tmpdir/data.gz"
pid=$(cat "$pidfile")
nbdsh -u "nbd+unix:///?socket=$sock" -c "
import random
want = open(\"$tmpdir/data\", \"rb\").read()
assert h.get_size() == len(want)
assert h.is_read_only()
r = random.Random(3)
for i in range(200):
    off = r.randint(0, len(want) - 1)
    n = min(r.randint(1, 300000), len(want) - off)
    assert h.pread(n, off) == want[off:off+n], (off, n)
h.cache(1048576, 0)
try:
    h.pwrite(b'x', 0)
    raise SystemExit('a write succeeded')
except nbd.Error:
    pass
" || fail "random reads through the gzip filter failed"
[ -z "$(ls -A "$tmpdir/tmp")" ] ||
  fail "the temporary file was left in \$TMPDIR: $(ls -A "$tmpdir/tmp")"
ls -l "/proc/$pid/fd" | grep -q "$tmpdir/tmp/nbdkit-gzip-.* (deleted)" ||
  fail "no deleted temporary file in \$TMPDIR is open: $(ls -l /proc/$pid/fd)"
# A second client is served from the same temporary file.
nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null ||
  fail "a second connection failed"
[ "$(ls -l "/proc/$pid/fd" | grep -c 'nbdkit-gzip-')" = 1 ] ||
  fail "the second connection made another temporary file"
kill_pid "$pid"

# 256 MiB of output: the server's peak resident memory stays small,
# as the data goes to the temporary file piece by piece.
yes "gzip memory test" | head -c 256M | gzip -1 >"$tmpdir/big.gz"
start_nbdkit -P "$tmpdir/big.pid" -U "$tmpdir/big.sock" --filter=gzip \
  file "$tmpdir/big.gz"
pid=$(cat "$tmpdir/big.pid")
[ "$(nbdinfo --size "nbd+unix:///?socket=$tmpdir/big.sock")" = 268435456 ] ||
  fail "wrong size for the 256 MiB file"
hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
[ "$hwm" -lt 32768 ] ||
  fail "peak memory was $hwm KiB while decompressing 256 MiB"
echo "$0: peak resident memory $hwm KiB"
