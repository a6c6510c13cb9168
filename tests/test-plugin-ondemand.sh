#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ondemand plugin: a disk per export name made on first use and
# kept (data survives reconnecting and a restart), "" is "default",
# names with '.', '/' or ':' (or too long) refused without creating
# anything outside dir=, a second client of a name refused while the
# first has it (wait=true: it waits for the lock instead), the exports
# listed, command= given the name in $disk without running it as
# shell code, and bad parameters refused before serving.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires mkfs.ext4 -V
requires_plugin ondemand
make_tmpdir
cd "$tmpdir"
mkdir exports

start_nbdkit -P pid -U sock ondemand dir=exports 2M ||
  fail "nbdkit did not start"
nbdsh -c "
import os, urllib.parse
def uri(name):
    return 'nbd+unix:///%s?socket=$tmpdir/sock' % urllib.parse.quote(name, safe='')
def connect(name):
    h = nbd.NBD(); h.connect_uri(uri(name)); return h
def refused(name):
    try:
        connect(name)
    except nbd.Error:
        return True
    return False

a = connect('alice')
assert a.get_size() == 2 * 1024 * 1024
assert a.pread(2, 1024 + 56) == b'\x53\xef', 'not ext4'
a.pwrite(b'kept' * 256, 1024 * 1024)
a.flush()
assert refused('alice'), 'a second client of alice got in'
b = connect('bob')
assert b.pread(1024, 1024 * 1024) == bytes(1024)
b.shutdown()
a.shutdown()
a = connect('alice')
assert a.pread(1024, 1024 * 1024) == b'kept' * 256
a.shutdown()
connect('').shutdown()
for bad in ['a.b', '..', '../escape', 'a/b', '/etc', 'x:y', 'n' * 256]:
    assert refused(bad), bad
connect('sp ace ü -x').shutdown()
assert sorted(os.listdir('$tmpdir/exports')) == \
    ['alice', 'bob', 'default', 'sp ace ü -x'], os.listdir('$tmpdir/exports')
assert sorted(os.listdir('$tmpdir')) == \
    ['exports', 'pid', 'sock'], os.listdir('$tmpdir')
" || fail "export checks failed"

nbdinfo --list --json "nbd+unix://?socket=$tmpdir/sock" >list.json ||
  fail "nbdinfo --list failed"
names=$(python3 -c '
import json, sys
print(",".join(sorted(e["export-name"] for e in json.load(open(sys.argv[1]))["exports"])))
' list.json)
[ "$names" = "alice,bob,default,sp ace ü -x" ] || fail "listed: $names"
kill_pid "$(cat pid)"

# Restarted with wait=true: alice's data is still there, and a second
# client of a disk whose lock is held waits for it.
start_nbdkit -P pid2 -U sock2 ondemand dir=exports 2M wait=true ||
  fail "nbdkit (wait=true) did not start"
nbdsh -c "
import fcntl, os, threading
uri = 'nbd+unix:///alice?socket=$tmpdir/sock2'
a = nbd.NBD(); a.connect_uri(uri)
assert a.pread(1024, 1024 * 1024) == b'kept' * 256
a.shutdown()
# Hold the lock as another client would, and connect meanwhile.
fd = os.open('$tmpdir/exports/alice', os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
b = nbd.NBD()
t = threading.Thread(target=lambda: b.connect_uri(uri))
t.start()
t.join(0.5)
assert t.is_alive(), 'did not wait for the lock'
os.close(fd)
t.join(20)
assert not t.is_alive(), 'still waiting after the lock was released'
assert b.pread(4, 1024 * 1024) == b'kept'
" || fail "wait=true checks failed"

# command=: the export name reaches \$disk as data, never as code.
mkdir cmdexports
name='$(touch pwned);`touch pwned2`'
"$NBDKIT" -U - ondemand dir=cmdexports 1M tag=T command='
    printf "%s|%s|%s" "$(basename "$disk")" "$size" "$tag" >"$disk"
    truncate -s "$size" "$disk"' \
    --run "nbdinfo --size 'nbd+unix:///\$(touch%20pwned);%60touch%20pwned2%60?socket='\"\$unixsocket\"" \
    >size.out || fail "command= export failed"
[ "$(cat size.out)" = 1048576 ] || fail "command= size: $(cat size.out)"
[ "$(head -c 100 "cmdexports/$name" | tr -d '\0')" = "$name|1048576|T" ] ||
  fail "command= wrote: $(head -c 100 "cmdexports/$name" | tr -d '\0')"
[ -z "$(find . -name 'pwned*')" ] || fail "the export name was run as code"

# Bad parameters: exit 1 before serving.
bad ()
{
  local want=$1; shift
  if "$NBDKIT" -U - ondemand "$@" --run 'echo served' >out 2>&1; then
    fail "ondemand $* was accepted"
  fi
  grep -q served out && fail "ondemand $* served"
  grep -q -- "$want" out || fail "ondemand $*: error was: $(cat out)"
}
bad "dir=<EXPORTSDIR> parameter is required" 1M
bad "dir=missing" dir=missing 1M
bad "size=<SIZE> parameter is required" dir=exports
bad "wait=maybe" dir=exports 1M wait=maybe
bad "type=-x" dir=exports 1M type=-x
