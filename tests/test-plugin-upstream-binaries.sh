#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Plugin binaries built for upstream nbdkit (Debian's nbdkit packages)
# load and serve in this nbdkit unchanged: for each, the whole disk read
# through our server equals the disk read through Debian's nbdkit from
# the same binary and parameters (synthesized filesystems, which carry
# timestamps, are compared by size and checked by their own tools), and
# writable plugins read back what was written.

source "$srcdir/functions.sh"
requires nbdcopy --version
requires nbdsh --version
debdir=/usr/lib/x86_64-linux-gnu/nbdkit/plugins
debnbdkit=/usr/bin/nbdkit
[ -x "$debnbdkit" ] && [ -d "$debdir" ] ||
  skip "Debian's nbdkit is not installed"
make_tmpdir

mkdir "$tmpdir/dir"
echo "a file in a directory" > "$tmpdir/dir/hello.txt"
head -c 100000 /dev/urandom > "$tmpdir/dir/random.bin"
head -c 1048576 /dev/urandom > "$tmpdir/file"
head -c 65536 /dev/urandom > "$tmpdir/file2"
printf '%s\n' 'import nbdkit' 'API_VERSION = 2' \
  'disk = bytearray(1048576)' \
  'def open(readonly): return 1' \
  'def get_size(h): return len(disk)' \
  'def pread(h, buf, offset, flags): buf[:] = disk[offset:offset+len(buf)]' \
  'def pwrite(h, buf, offset, flags): disk[offset:offset+len(buf)] = buf' \
  > "$tmpdir/ram.py"

# checksum SERVER PLUGIN ARGS...: md5 of the whole disk (--no-extents:
# Debian's split plugin crashes its own server on block status)
checksum ()
{
  local server=$1 plugin=$2
  shift 2
  "$server" -U - "$debdir/nbdkit-$plugin-plugin.so" "$@" \
    --run 'nbdcopy --no-extents "$uri" - | md5sum' 2>"$tmpdir/err" | awk '{print $1}'
}
disksize ()
{
  local server=$1 plugin=$2
  shift 2
  "$server" -U - "$debdir/nbdkit-$plugin-plugin.so" "$@" \
    --run 'nbdsh -u "$uri" -c "print(h.get_size())"' 2>"$tmpdir/err"
}

# compare same|size PLUGIN ARGS...: serve with both servers and compare
# the whole content (same) or only the size (size).
n=0
compare ()
{
  local how=$1 plugin=$2 want got
  shift 2
  if [ ! -f "$debdir/nbdkit-$plugin-plugin.so" ]; then
    echo "$plugin: not installed here, skipped"
    return 0
  fi
  if [ "$how" = same ]; then
    want=$(checksum "$debnbdkit" "$plugin" "$@") ||
      fail "$plugin: Debian's nbdkit could not serve it: $(cat "$tmpdir/err")"
    got=$(checksum "$NBDKIT" "$plugin" "$@") ||
      fail "$plugin: our nbdkit could not serve it: $(cat "$tmpdir/err")"
  else
    want=$(disksize "$debnbdkit" "$plugin" "$@") ||
      fail "$plugin: Debian's nbdkit could not serve it: $(cat "$tmpdir/err")"
    got=$(disksize "$NBDKIT" "$plugin" "$@") ||
      fail "$plugin: our nbdkit could not serve it: $(cat "$tmpdir/err")"
  fi
  [ -n "$got" ] && [ "$got" = "$want" ] ||
    fail "$plugin: our nbdkit served $got, Debian's $want"
  n=$((n + 1))
}
compare same memory 1M
compare same file "$tmpdir/file"
compare same data "1 2 3 @512 4 5 6"
compare same pattern 1M
compare same null 1M
compare same full 1M
compare same random 1M seed=42
compare same sparse-random 4M seed=7
compare same split "$tmpdir/file" "$tmpdir/file2"
compare same example1
compare same example3
compare same eval "get_size=echo 64k" \
  'pread=dd if=/dev/zero count=$3 iflag=count_bytes status=none'
compare same partitioning "$tmpdir/file"
compare size floppy "$tmpdir/dir"
compare size linuxdisk "$tmpdir/dir"
# libpython's own allocations at exit are reported by LeakSanitizer.
if ldd "$NBDKIT" | grep -q libasan; then
  echo "python: skipped in the sanitizer build (libpython leaks at exit)"
else
  compare same python "$tmpdir/ram.py"
fi
[ $n -ge 10 ] || fail "only $n upstream plugins could be compared"

# Writable plugins read back what was written.
writable=("memory 1M" "file $tmpdir/file")
ldd "$NBDKIT" | grep -q libasan || writable+=("python $tmpdir/ram.py")
for c in "${writable[@]}"; do
  read -r plugin arg <<<"$c"
  [ -f "$debdir/nbdkit-$plugin-plugin.so" ] || continue
  "$NBDKIT" -U - "$debdir/nbdkit-$plugin-plugin.so" "$arg" --run '
    nbdsh -u "$uri" -c "
h.pwrite(b\"upstream\" * 512, 8192)
h.can_flush() and h.flush()
assert h.pread(4096, 8192) == b\"upstream\" * 512
"' || fail "$plugin: write and read back failed"
done

echo "$n upstream plugin binaries served the same data as Debian's nbdkit"
