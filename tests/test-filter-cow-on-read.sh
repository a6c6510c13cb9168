#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cow filter over a read-only plugin (pattern): the export becomes
# writable, writes read back and the rest still reads as the pattern;
# what goes into the overlay file (space allocated to the unlinked file,
# seen through /proc/PID/fd) follows cow-on-read=false|true|/PATH and
# cow-on-cache=false|true; and cow-block-size sets the unit copied.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin pattern
requires_filter cow
[ -d /proc/self/fd ] || skip "/proc/PID/fd is needed"
make_tmpdir
export tmpdir
export TMPDIR=$tmpdir

# pattern alone is read-only; through cow it is writable.
"$NBDKIT" -U - pattern 1M --run 'nbdsh -u "$uri" -c "assert h.is_read_only()"' ||
  fail "the pattern plugin is unexpectedly writable"
"$NBDKIT" -U - --filter=cow pattern 1M --run 'nbdsh -u "$uri" -c "
import struct
assert not h.is_read_only()
h.pwrite(b\"Z\" * 10000, 4099)
h.zero(65536, 131072)
h.trim(1000, 300000)
h.flush()
def pattern(off, n):
    start = off - off % 8
    words = b\"\".join(struct.pack(\">Q\", o) for o in range(start, off + n + 8, 8))
    return words[off - start:off - start + n]
buf = h.pread(h.get_size(), 0)
exp = bytearray(pattern(0, h.get_size()))
exp[4099:14099] = b\"Z\" * 10000
exp[131072:196608] = bytes(65536)
exp[300000:301000] = bytes(1000)
assert buf == exp, \"the data read through cow is wrong\"
"' || fail "cow over the pattern plugin is not writable or reads back wrongly"

# Start a server with the given parameters; sets pid and sock.
start_server ()
{
  sock=$tmpdir/sock.$1; shift
  start_nbdkit -P "$tmpdir/pid.$(basename "$sock")" -U "$sock" \
    --filter=cow pattern 64M "$@"
  pid=$(cat "$tmpdir/pid.$(basename "$sock")")
}

# The bytes of disk space the server's overlay file takes.
overlay_bytes ()
{
  local fd
  for fd in /proc/$pid/fd/*; do
    case $(readlink "$fd") in
      "$tmpdir"/nbdkit-cow-*)
        echo $(( $(stat -L -c '%b * %B' "$fd") ))
        return 0 ;;
    esac
  done
  fail "no overlay file among the open files of nbdkit ($pid)"
}

client ()
{
  nbdsh -u "nbd+unix:///?socket=$sock" -c "$1" ||
    fail "client command failed: $1"
}

mib=$(( 1 << 20 ))

# cow-on-read=false (the default): reading copies nothing.
start_server off
client 'h.pread(8 << 20, 0)'
[ "$(overlay_bytes)" -lt $mib ] ||
  fail "reads were copied into the overlay without cow-on-read"

# cow-on-read=true: 8 MiB read means at least 8 MiB in the overlay, and
# the data read is still the plugin's.
start_server on cow-on-read=true
client '
import struct
buf = h.pread(8 << 20, 16 << 20)
assert buf[:8] == struct.pack(">Q", 16 << 20) and \
       buf[-8:] == struct.pack(">Q", (24 << 20) - 8), "wrong data"
assert h.pread(8 << 20, 16 << 20) == buf, "different data the second time"'
used=$(overlay_bytes)
[ "$used" -ge $(( 8 * mib )) ] ||
  fail "cow-on-read=true copied only $used bytes of 8 MiB read"
[ "$used" -le $(( 9 * mib )) ] ||
  fail "cow-on-read=true copied $used bytes for 8 MiB read"

# cow-on-read=/PATH: copies only while the file exists.
start_server path cow-on-read="$tmpdir/switch"
client 'h.pread(4 << 20, 0)'
[ "$(overlay_bytes)" -lt $mib ] ||
  fail "reads were copied while $tmpdir/switch did not exist"
touch "$tmpdir/switch"
client 'h.pread(4 << 20, 32 << 20)'
[ "$(overlay_bytes)" -ge $(( 4 * mib )) ] ||
  fail "reads were not copied while $tmpdir/switch existed"

# cow-on-cache: a cache request copies the range only when it is true.
start_server cache-off
client 'h.cache(4 << 20, 0)'
[ "$(overlay_bytes)" -lt $mib ] ||
  fail "a cache request was copied without cow-on-cache"
start_server cache-on cow-on-cache=true
client 'assert h.can_cache(); h.cache(4 << 20, 0)'
[ "$(overlay_bytes)" -ge $(( 4 * mib )) ] ||
  fail "cow-on-cache=true did not copy the cached range"

# cow-block-size: a 1-byte write copies one block of that size.
start_server bs cow-block-size=1M
client 'h.pwrite(b"x", 5 << 20)'
used=$(overlay_bytes)
[ "$used" -ge $mib ] && [ "$used" -lt $(( 2 * mib )) ] ||
  fail "a 1-byte write with cow-block-size=1M took $used bytes"

echo "$0: ok"
