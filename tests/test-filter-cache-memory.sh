#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cache filter stays within the memory its man page states on a
# 1 GiB export: nbdcopy writes 1 GiB of new data through the cache in
# writeback mode with cache-on-read and a 256 MiB cache-max-size (so
# blocks are evicted and written back all the time), and reads it all
# back.  The peak RSS of the server (VmHWM) may grow by no more than the
# documented figure (3 bits per block with a maximum size, about 5 KiB
# of locks, one block per request thread and one for the evicting
# thread) plus a fixed allowance for the server's own request buffers
# and thread stacks.  The file is checked against the data written.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires_plugin file
requires_plugin pattern
requires_filter cache
requires_filter offset
[ -r /proc/self/status ] || skip "/proc/PID/status is needed"
make_tmpdir
export tmpdir
export TMPDIR=$tmpdir

size=$(( 1 << 30 ))
blksize=65536
threads=16
# The server's request buffers: up to `threads` requests of nbdcopy's
# default 256K in flight on each of its connections, thread stacks,
# malloc arenas.  Holding the data would need 1 GiB.
allowance=$(( 48 << 20 ))
filter_bytes=$(( size / blksize * 3 / 8 + 5 * 1024 + (4 * threads + 1) * blksize ))

truncate -s $size "$tmpdir/disk"
start_nbdkit -P "$tmpdir/pid" -U "$tmpdir/sock" -t $threads \
  --filter=cache file "$tmpdir/disk" cache=writeback cache-on-read=true \
  cache-max-size=256M cache-min-block-size=$blksize
pid=$(cat "$tmpdir/pid")
uri="nbd+unix:///?socket=$tmpdir/sock"

kib ()
{
  awk -v f="$1:" '$1 == f { print $2 }' /proc/$pid/status
}
before=$(( $(kib VmRSS) * 1024 ))
sanitized=
grep -q libasan "/proc/$pid/maps" && sanitized=yes

source_cmd=("$NBDKIT" --filter=offset pattern $(( 2 * size )) offset=$size)
nbdcopy -- [ "${source_cmd[@]}" ] "$uri" ||
  fail "copying 1 GiB through the cache failed"
nbdcopy "$uri" null: || fail "reading 1 GiB back failed"
peak=$(( $(kib VmHWM) * 1024 ))

# nbdcopy flushed at the end: the file has every byte written.
want=$(nbdcopy -- [ "${source_cmd[@]}" ] - | sha256sum) ||
  fail "checksumming the source failed"
[ "$(sha256sum <"$tmpdir/disk")" = "$want" ] ||
  fail "the file differs from the data written through the cache"

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
