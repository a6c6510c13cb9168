#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# cache-max-size bounds the cache file: the disk space allocated to the
# unlinked file (stat of /proc/PID/fd/N) stays under the limit while
# 64 MiB are read with cache-on-read and while 64 MiB are written in
# writeback mode (dirty blocks being written back as they are evicted,
# after which the file holds exactly the data written).  Eviction is
# least-recently-used-ish: a block read over and over survives while
# many others pass through, a block read once is evicted (seen by
# changing the file underneath: a cached block still reads old data).
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires_plugin file
requires_plugin pattern
requires_filter cache
[ -d /proc/self/fd ] || skip "/proc/PID/fd is needed"
make_tmpdir
export tmpdir
export TMPDIR=$tmpdir

mib=$(( 1 << 20 ))
size=$(( 64 * mib ))
max=$(( 4 * mib ))
# Requests in flight may each add a block before the evicting thread
# runs: allow 16 threads' worth of 64K blocks on top.
slack=$(( 16 * 65536 ))

# Start a server on the file with the given parameters; sets pid, uri.
start_server ()
{
  local name=$1; shift
  start_nbdkit -P "$tmpdir/pid.$name" -U "$tmpdir/sock.$name" \
    --filter=cache file "$tmpdir/disk" "$@"
  pid=$(cat "$tmpdir/pid.$name")
  uri="nbd+unix:///?socket=$tmpdir/sock.$name"
}

# The disk space taken by the server's cache file.
cache_bytes ()
{
  local fd
  for fd in /proc/$pid/fd/*; do
    case $(readlink "$fd") in
      "$tmpdir"/nbdkit-cache-*)
        echo $(( $(stat -L -c '%b * %B' "$fd") ))
        return 0 ;;
    esac
  done
  fail "no cache file among the open files of nbdkit ($pid)"
}

# check_bound WHAT LIMIT
check_bound ()
{
  local used
  used=$(cache_bytes)
  echo "$0: $1: cache file uses $used bytes (limit $2)"
  [ "$used" -le $(( $2 + slack )) ] ||
    fail "$1: the cache file uses $used bytes, more than $2 + $slack"
}

# Reading 64 MiB with cache-on-read.
"$NBDKIT" -U - pattern $size --run 'nbdcopy "$uri" "$tmpdir/disk"' ||
  fail "making the disk failed"
start_server read cache-on-read=true cache-max-size=$max
nbdcopy "$uri" null: || fail "reading through the cache failed"
check_bound "after reading 64 MiB" $max
used=$(cache_bytes)
[ "$used" -ge $(( max / 2 )) ] ||
  fail "cache-on-read cached only $used bytes: is it caching at all?"

# Writing 64 MiB of new data in writeback mode: dirty blocks are
# written back when evicted, and the file ends up right.
truncate -s 0 "$tmpdir/disk"
truncate -s $size "$tmpdir/disk"
start_server write cache=writeback cache-max-size=$max \
  cache-high-threshold=90 cache-low-threshold=50
nbdcopy -- [ "$NBDKIT" --filter=offset pattern $(( 2 * size )) offset=$size ] \
  "$uri" || fail "writing through the cache failed"
check_bound "after writing 64 MiB" $max
nbdsh -u "$uri" -c 'h.flush()' || fail "flush failed"
"$NBDKIT" -U - --filter=offset pattern $(( 2 * size )) offset=$size \
  --run 'nbdcopy "$uri" "$tmpdir/expected"' || fail "making the expected data failed"
cmp "$tmpdir/disk" "$tmpdir/expected" ||
  fail "the file differs from what was written through the bounded cache"

# Least recently used first.  With room for 16 blocks (1 MiB of 64K),
# block 0 is read between every two new blocks; block 1 only at the
# start.  Then both are changed in the file behind the cache's back.
"$NBDKIT" -U - pattern $size --run 'nbdcopy "$uri" "$tmpdir/disk"' ||
  fail "making the disk failed"
start_server lru cache-on-read=true cache-max-size=1M cache-min-block-size=64K
nbdsh -u "$uri" -c '
for k in range(1, 200):
    h.pread(65536, k * 65536)
    h.pread(65536, 0)
' || fail "reading through the cache failed"
head -c 65536 /dev/zero | tr '\0' X | dd of="$tmpdir/disk" bs=65536 seek=0 conv=notrunc status=none
head -c 65536 /dev/zero | tr '\0' Y | dd of="$tmpdir/disk" bs=65536 seek=1 conv=notrunc status=none
nbdsh -u "$uri" -c '
import struct
b0 = h.pread(65536, 0)
b1 = h.pread(65536, 65536)
assert b0[:8] == struct.pack(">Q", 0) and b0 != b"X" * 65536, \
    "the block used all the time was evicted"
assert b1 == b"Y" * 65536, "the block used once is still cached"
' || fail "eviction did not prefer the least recently used block"
check_bound "after the LRU test" $mib

echo "$0: ok"
