#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# allocator=sparse|malloc[,mlock=true]|zstd for the memory and data
# plugins (nbdkit-memory-plugin(1) "ALLOCATORS"): the same writes, zeroes,
# trims and unaligned accesses read back identically through each, extents
# show holes for sparse and zstd and data for malloc, the data plugin
# builds the same disk with each, and bad values are named errors.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires_plugin memory
requires_plugin data
make_tmpdir
export tmpdir

allocators="sparse malloc zstd"
# mlock needs RLIMIT_MEMLOCK room for the whole disk (root has it here).
if [ "$(ulimit -l)" = unlimited ] || [ "$(ulimit -l)" -ge 8192 ]; then
  allocators="$allocators malloc,mlock=true"
else
  echo "locked memory limit $(ulimit -l) KiB: malloc,mlock=true not checked"
fi

for a in $allocators; do
  "$NBDKIT" -U - memory 8M allocator="$a" --run '
    /usr/bin/nbdsh --base-allocation -u "$uri" -c "
import random
rng = random.Random(7)
size = 8 << 20
model = bytearray(size)
def w(off, data):
    h.pwrite(data, off); model[off:off + len(data)] = data
# Unaligned writes across 32 KiB page edges, compressible and not.
for off, n in ((12345, 100000), (32767, 2), (size - 5, 5), (0, 65536)):
    w(off, bytes(rng.randrange(256) for _ in range(n)))
w(200000, b\"A\" * 70000)
h.zero(40000, 30000); model[30000:70000] = bytes(40000)
h.trim(65536, 131072); model[131072:196608] = bytes(65536)
h.zero(size, 0); model[0:size] = bytes(size)
w(1 << 20, b\"B\" * (1 << 20))
w(5 << 20, b\"\\x00\" * 32768 + b\"C\" * 10)
for off in range(0, size, 1 << 20):
    assert h.pread(1 << 20, off) == model[off:off + (1 << 20)], off
ext = []
h.block_status(size, 0, lambda m, o, e, err: ext.extend(e))
data_bytes = sum(ext[i] for i in range(0, len(ext), 2) if ext[i + 1] & 1 == 0)
kind = \"'"$a"'\".split(\",\")[0]
if kind == \"malloc\":
    assert ext == [size, 0], ext
else:
    assert data_bytes < 2 << 20, (data_bytes, ext[:10])
print(\"'"$a"': ok, %d bytes reported as data\" % data_bytes)
"' || fail "memory allocator=$a"
done

# The data plugin builds the same disk with every allocator.
for a in $allocators; do
  "$NBDKIT" -U - data '1 2 3 @32766 "ab" @1048576 (0x55)*70000 @^4096 9' \
      size=2M allocator="$a" --run '/usr/bin/nbdcopy "$uri" "$tmpdir/data-'"${a%%,*}"'.img"' ||
    fail "data allocator=$a"
done
for a in malloc zstd; do
  cmp "$tmpdir/data-sparse.img" "$tmpdir/data-$a.img" ||
    fail "data plugin: allocator=$a built a different disk"
done
echo "data plugin: same disk with $allocators"

# Bad values: exit 1, naming the problem.
expect_error ()
{
  local regex=$1 status=0
  shift
  "$NBDKIT" -U - "$@" --run true 2>"$tmpdir/err" || status=$?
  [ "$status" -eq 1 ] || fail "nbdkit $*: exit status $status"
  grep -Eq -- "$regex" "$tmpdir/err" ||
    fail "nbdkit $*: no /$regex/ in: $(cat "$tmpdir/err")"
}
expect_error "unknown allocator 'bogus'" memory 1M allocator=bogus
expect_error "allocator=sparse does not take the parameter 'mlock'" \
  memory 1M allocator=sparse,mlock=true
expect_error "mlock=maybe is not a boolean" memory 1M allocator=malloc,mlock=maybe
expect_error "'foo' is not a key=value" memory 1M allocator=malloc,foo
expect_error "allocator=malloc: cannot allocate" memory 1E allocator=malloc
expect_error "unknown allocator 'bogus'" data "1" allocator=bogus
echo "$0: ok"
