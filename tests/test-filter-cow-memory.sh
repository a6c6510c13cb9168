#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cow filter stays within the memory its man page states on a 1 GiB
# export: nbdcopy writes 1 GiB of new data through the overlay (over the
# read-only pattern plugin, which keeps nothing in memory) and reads it
# back, and the peak RSS of the server (VmHWM) may grow by no more than
# the documented figure (2 bits per block, about 5 KiB of locks, one
# block per request thread) plus a fixed allowance for the server's own
# request buffers and thread stacks.  The data read back is checked.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires nbdsh --version
requires_plugin pattern
requires_filter cow
requires_filter offset
[ -r /proc/self/status ] || skip "/proc/PID/status is needed"
make_tmpdir
export TMPDIR=$tmpdir

size=$(( 1 << 30 ))
blksize=65536
threads=16
# The server's request buffers: up to `threads` requests of nbdcopy's
# default 256K in flight on each of its 4 connections, thread stacks,
# malloc arenas.  Holding the data written would need 1 GiB.
allowance=$(( 48 << 20 ))
filter_bytes=$(( size / blksize / 4 + 5 * 1024 + 4 * threads * blksize ))

start_nbdkit -P "$tmpdir/pid" -U "$tmpdir/sock" -t $threads \
  --filter=cow pattern $size cow-block-size=$blksize
pid=$(cat "$tmpdir/pid")
uri="nbd+unix:///?socket=$tmpdir/sock"

kib ()
{
  awk -v f="$1:" '$1 == f { print $2 }' /proc/$pid/status
}
before=$(( $(kib VmRSS) * 1024 ))
sanitized=
grep -q libasan "/proc/$pid/maps" && sanitized=yes

# New data: the pattern of the second GiB of a 2 GiB disk.
nbdcopy -- [ "$NBDKIT" --filter=offset pattern $(( 2 * size )) offset=$size ] \
  "$uri" || fail "copying 1 GiB into the overlay failed"
nbdcopy "$uri" null: || fail "reading 1 GiB back failed"
nbdsh -u "$uri" -c "
import struct
for off in (0, 12345 * 8, $size // 2, $size - 8):
    want = struct.pack('>Q', off + $size)
    got = h.pread(8, off)
    assert got == want, 'at %d: %r, expected %r' % (off, got, want)
" || fail "the data read back through the overlay is wrong"

peak=$(( $(kib VmHWM) * 1024 ))
growth=$(( peak - before ))
limit=$(( filter_bytes + allowance ))
echo "$0: RSS before $before, peak $peak, growth $growth bytes;" \
     "documented $filter_bytes + allowance $allowance = $limit"
# Under AddressSanitizer freed buffers stay in quarantine and shadow
# memory is counted, so RSS says nothing about the filter; the data
# checks above still hold.
if [ "$sanitized" ]; then
  echo "$0: server runs under AddressSanitizer: memory bound not checked"
else
  [ $growth -le $limit ] ||
    fail "the server grew by $growth bytes, more than $limit"
fi

echo "$0: ok"
