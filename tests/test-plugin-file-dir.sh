#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# dir= mode of the file plugin: the export list is exactly the regular
# files (and symlinks to them) in the directory, each export serves its
# own file, and the default export, subdirectories, special files and
# names with '/' are refused.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires nbdsh --version
requires_plugin file
make_tmpdir
export tmpdir

d=$tmpdir/exports
mkdir "$d" "$d/subdir"
truncate -s 1M "$d/a"
head -c 2048 /dev/urandom >"$d/b.img"
truncate -s 3M "$d/with space"
ln -s a "$d/link"
ln -s /nonexistent "$d/dangling"
mkfifo "$d/fifo"
truncate -s 1M "$tmpdir/outside"

list=$("$NBDKIT" -U - file dir="$d" --run 'nbdinfo --list --json "$uri"') ||
  fail "nbdinfo --list failed"
names=$(python3 -c '
import json, sys
print("\n".join(sorted(e["export-name"] for e in json.load(sys.stdin)["exports"])))
' <<<"$list")
[ "$names" = "$(printf '%s\n' a b.img link 'with space')" ] ||
  fail "export list is: $names"

cat >"$tmpdir/t.py" <<'PY'
import os
d = os.environ["tmpdir"] + "/exports"
sock = os.environ["sock"]

def connect(name):
    g = nbd.NBD()
    g.set_export_name(name)
    g.connect_unix(sock)
    return g

sizes = {"a": 1 << 20, "b.img": 2048, "link": 1 << 20, "with space": 3 << 20}
for name, size in sizes.items():
    g = connect(name)
    assert g.get_size() == size, (name, g.get_size())
    g.shutdown()

g = connect("b.img")
assert g.pread(2048, 0) == open(d + "/b.img", "rb").read()
g.pwrite(b"hello", 100)
g.flush()
g.shutdown()
assert open(d + "/b.img", "rb").read()[100:105] == b"hello"

for bad in ("", "subdir", "fifo", "dangling", "missing", "../outside",
            "subdir/../a", ".", ".."):
    try:
        connect(bad)
    except nbd.Error:
        pass
    else:
        raise AssertionError("export %r was served" % bad)
PY
"$NBDKIT" -U - file dir="$d" --run 'sock=$unixsocket nbdsh -n -c - <"$tmpdir/t.py"' ||
  fail "dir= export checks failed"

# A directory given as file= is an error that suggests dir=.
status=0
"$NBDKIT" -U - file "$d" --run 'exit 0' 2>"$tmpdir/err" || status=$?
[ $status -eq 1 ] || fail "file=DIR: exit status $status, expected 1"
grep -q "dir=" "$tmpdir/err" || fail "file=DIR: message does not suggest dir="

# directory= is another name for dir= (as in upstream nbdkit).
"$NBDKIT" -U - file directory="$d" --run 'nbdinfo --list --json "$uri"' \
  >"$tmpdir/list.json" || fail "directory=: nbdinfo --list failed"
grep -q '"export-name"' "$tmpdir/list.json" ||
  fail "directory=: no exports listed: $(cat "$tmpdir/list.json")"
