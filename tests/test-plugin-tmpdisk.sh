#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The tmpdisk plugin: each connection gets its own fresh ext4 disk
# (label as asked, writes private to it), nothing stays in $TMPDIR
# during or after a connection, command= sees $disk, $size and the
# other parameters as variables (values with shell syntax are not
# run), a failing mkfs or command refuses the client with its reason,
# and bad parameters stop nbdkit before serving.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires blkid --version
requires mkfs.ext4 -V
requires_plugin tmpdisk
make_tmpdir
cd "$tmpdir"
mkdir tmp
export TMPDIR=$tmpdir/tmp

start_nbdkit -P pid -U sock tmpdisk 4M label=SCRATCH 2>log ||
  fail "nbdkit did not start"
nbdsh -c "
import os
uri = 'nbd+unix:///?socket=$tmpdir/sock'
h1 = nbd.NBD(); h1.connect_uri(uri)
h2 = nbd.NBD(); h2.connect_uri(uri)
assert h1.get_size() == 4 * 1024 * 1024
assert not h1.can_multi_conn()
assert h1.can_trim() and h1.can_zero()
# Both are ext4 (magic 0xEF53 at 1024+56), but different filesystems.
for h in (h1, h2):
    assert h.pread(2, 1024 + 56) == b'\x53\xef'
assert h1.pread(16, 1024 + 104) != h2.pread(16, 1024 + 104), 'same UUID'
h1.pwrite(b'private' * 100, 3 * 1024 * 1024)
assert h1.pread(700, 3 * 1024 * 1024) == b'private' * 100
assert h2.pread(700, 3 * 1024 * 1024) == bytes(700)
h1.zero(4096, 3 * 1024 * 1024)
assert h1.pread(700, 3 * 1024 * 1024) == bytes(700)
h1.flush()
# Nothing in \$TMPDIR while the disks are in use.
assert os.listdir('$tmpdir/tmp') == [], os.listdir('$tmpdir/tmp')
h1.shutdown(); h2.shutdown()
# A new connection starts from scratch.
h3 = nbd.NBD(); h3.connect_uri(uri)
assert h3.pread(700, 3 * 1024 * 1024) == bytes(700)
" || fail "connection checks failed"
nbdcopy --synchronous "nbd+unix:///?socket=$tmpdir/sock" disk.img
blkid disk.img | grep -q 'LABEL="SCRATCH".*TYPE="ext4"' ||
  fail "blkid: $(blkid disk.img)"
[ -z "$(ls -A tmp)" ] || fail "left in \$TMPDIR: $(ls -A tmp)"

# command=: the variables, and a value with shell syntax kept as data.
value='$(touch pwned) `touch pwned2`; "quoted" '"'single'"
"$NBDKIT" -U - tmpdisk 1M greeting="$value" label=L command='
    printf "%s|%s|%s|%s" "$greeting" "$size" "$label" "${type-unset}" >"$disk"
    truncate -s 3M "$disk"' --run 'nbdcopy --synchronous "$uri" cmd.img' ||
  fail "command= failed"
[ "$(stat -c %s cmd.img)" = $(( 3 * 1024 * 1024 )) ] || fail "command size"
[ "$(head -c 200 cmd.img | tr -d '\0')" = "$value|1048576|L|unset" ] ||
  fail "command= saw: $(head -c 200 cmd.img | tr -d '\0')"
[ ! -e pwned ] && [ ! -e pwned2 ] && [ ! -e tmp/pwned ] ||
  fail "a parameter value was run as shell code"

# Failures while making the disk refuse the client with the reason.
refused ()
{
  local want=$1; shift
  if "$NBDKIT" -U - tmpdisk "$@" --run 'nbdinfo --size "$uri"' >out 2>&1
  then
    fail "tmpdisk $* served a disk"
  fi
  grep -q -- "$want" out || fail "tmpdisk $*: $(cat out)"
  [ -z "$(ls -A tmp)" ] || fail "tmpdisk $*: left $(ls -A tmp)"
}
refused "command= failed with exit status 3: oops" 1M \
    command='echo oops; exit 3'
refused "did not create" 1M command=true
refused "mkfs.nosuchfs" 1M type=nosuchfs

# Bad parameters: exit 1 before serving.
bad ()
{
  local want=$1; shift
  if "$NBDKIT" -U - tmpdisk "$@" --run 'echo served' >out 2>&1; then
    fail "tmpdisk $* was accepted"
  fi
  grep -q served out && fail "tmpdisk $* served"
  grep -q -- "$want" out || fail "tmpdisk $*: error was: $(cat out)"
}
bad "size=<SIZE> parameter is required" type=ext4
bad "size=12Q" 12Q
bad "type=-V" 1M type=-V
bad "type=../x" 1M type=../x
bad "disk=x" 1M disk=x
bad "foo-bar" 1M foo-bar=1
