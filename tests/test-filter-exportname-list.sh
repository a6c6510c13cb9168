#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The exportname filter, seen by nbdinfo --list and nbdsh: every
# exportname-list= mode, default-export=, exportname-strict=, and the
# exportdesc= modes (keep, none, fixed:, script: with $name); bad
# parameters are refused naming the parameter.

source "$srcdir/functions.sh"
requires nbdinfo --version
requires nbdsh --version
requires_plugin file
requires_filter exportname

make_tmpdir
export tmpdir
dir=$tmpdir/dir
mkdir "$dir"
truncate -s 64K "$dir/a b"
truncate -s 128K "$dir/c"
truncate -s 192K "$dir/d"

# list ARGS...: the export list as "name|description" lines.
list ()
{
  "$NBDKIT" -U - --filter=exportname file dir="$dir" "$@" \
    --run 'nbdinfo --list --json "$uri"' > "$tmpdir/list.json" ||
    fail "nbdinfo --list failed with $*"
  /usr/bin/python3 -c '
import json, sys
for e in json.load(open(sys.argv[1]))["exports"]:
    print("%s|%s" % (e["export-name"], e.get("description", "-")))
' "$tmpdir/list.json"
}

# check ACTUAL EXPECTED WHAT
check ()
{
  [ "$1" = "$2" ] || fail "$3: got [$1], expected [$2]"
}

nl=$'\n'
check "$(list)" "a b|-${nl}c|-${nl}d|-" "exportname-list=keep (default)"
check "$(list exportname-list=keep)" "a b|-${nl}c|-${nl}d|-" \
  "exportname-list=keep"
check "$(list exportname-list=empty)" "" "exportname-list=empty"
check "$(list exportname-list=defaultonly default-export=c)" "c|-" \
  "exportname-list=defaultonly"
check "$(list exportname-list=explicit exportname=d exportname=c)" \
  "d|-${nl}c|-" "exportname-list=explicit"
check "$(list exportdesc=fixed:'a disk')" \
  "a b|a disk${nl}c|a disk${nl}d|a disk" "exportdesc=fixed:"
check "$(list exportdesc=none)" "a b|-${nl}c|-${nl}d|-" "exportdesc=none"
check "$(list exportdesc=script:'echo "$name is $(stat -c %s "'"$dir"'/$name") bytes"')" \
  "a b|a b is 65536 bytes${nl}c|c is 131072 bytes${nl}d|d is 196608 bytes" \
  "exportdesc=script:"

# exportname-list=error: the client gets an error instead of a list.
if "$NBDKIT" -U - --filter=exportname file dir="$dir" \
     exportname-list=error --run 'nbdinfo --list "$uri"' \
     > /dev/null 2> "$tmpdir/err"; then
  fail "exportname-list=error still listed exports"
fi
grep -q "exportname-list=error" "$tmpdir/err" ||
  fail "exportname-list=error: no server message"

# default-export= answers the empty name, with the right size and
# description; other names still work.
cat > "$tmpdir/default.py" <<'EOF'
import os
h.set_full_info(True)
h.connect_uri(os.environ["uri"])
assert h.get_size() == 128 * 1024, h.get_size()
assert h.get_canonical_export_name() == "c", h.get_canonical_export_name()
assert h.get_export_description() == "fixed text"
h2 = nbd.NBD()
h2.connect_uri(os.environ["uri"].replace(":///", ":///d"))
assert h2.get_size() == 192 * 1024
EOF
"$NBDKIT" -U - --filter=exportname file dir="$dir" default-export=c \
  exportdesc=fixed:"fixed text" \
  --run 'nbdsh -c - < "$tmpdir/default.py"' ||
  fail "default-export= did not choose the export"

# exportname-strict=true: only names given with exportname= open.
cat > "$tmpdir/strict.py" <<'EOF'
import os
base = os.environ["uri"]
h.connect_uri(base.replace(":///", ":///c"))
assert h.get_size() == 128 * 1024
h2 = nbd.NBD()
try:
    h2.connect_uri(base.replace(":///", ":///d"))
    raise AssertionError("a name not given with exportname= opened")
except nbd.Error:
    pass
EOF
"$NBDKIT" -U - --filter=exportname file dir="$dir" \
  exportname-strict=true exportname=c \
  --run 'nbdsh -c - < "$tmpdir/strict.py"' ||
  fail "exportname-strict=true did not restrict names"

# Bad parameters: exit status 1 and a message naming the parameter.
bad ()
{
  local param=$1 rc=0; shift
  "$NBDKIT" -U - --filter=exportname file dir="$dir" "$@" --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "nbdkit $* exited with status $rc, expected 1"
  grep -q -- "$param" "$tmpdir/err" || {
    cat "$tmpdir/err"
    fail "the error for $* does not name $param"
  }
}
bad exportname-list exportname-list=some
bad exportname-strict exportname-strict=sometimes
bad exportdesc exportdesc=shell:true

echo "$0: ok"
