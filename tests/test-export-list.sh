#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# NBD_OPT_LIST and export names: the memory plugin lists the default
# export ""; -e NAME puts the name into --run's $uri and $exportname
# and clients can connect with it.

source "$srcdir/functions.sh"
# tests/raw_nbd.py is imported from the source tree: keep it clean.
export PYTHONDONTWRITEBYTECODE=1
requires nbdsh --version
requires nbdinfo --version
requires_plugin memory

make_tmpdir

# nbdinfo --list: exactly one export, the default "".
"$NBDKIT" -U - memory 1M --run 'nbdinfo --list --json "$uri"' \
  >"$tmpdir/list.json" || fail "nbdinfo --list failed"
/usr/bin/python3 - "$tmpdir/list.json" <<'EOF' || fail "nbdinfo --list output is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
names = [e["export-name"] for e in d["exports"]]
assert names == [""], names
assert d["exports"][0]["export-size"] == 1048576, d["exports"][0]
EOF

# Without -e, $exportname is empty and $uri names the default export
# (upstream writes nbd+unix://?socket=..., the NBD URI spec also allows
# nbd+unix:///?socket=...); $nbd is the same URI.
"$NBDKIT" -U - memory 1M --run '
  test -z "$exportname" || { echo "exportname=$exportname"; exit 1; }
  test "$nbd" = "$uri" || { echo "nbd=$nbd uri=$uri"; exit 1; }
  case "$uri" in
    "nbd+unix://?socket=$unixsocket"|"nbd+unix:///?socket=$unixsocket") ;;
    *) echo "unexpected uri $uri"; exit 1 ;;
  esac
' || fail "default \$exportname / \$uri are wrong"

# NBD_OPT_LIST through libnbd's option mode.
"$NBDKIT" -U - memory 1M --run '
  nbdsh --opt-mode -u "$uri" -c "
names = []
def cb(name, desc):
    names.append(name)
    return 0
assert h.opt_list(cb) == 1
assert names == [\"\"], names
h.opt_go()
assert h.get_size() == 1048576
"
' || fail "opt_list did not list the default export"

# -e NAME: $exportname and $uri carry it and the connection uses it.
"$NBDKIT" -e foo -U - memory 1M --run '
  test "$exportname" = foo || { echo "exportname=$exportname"; exit 1; }
  case "$uri" in
    "nbd+unix:///foo?socket=$unixsocket") ;;
    *) echo "unexpected uri $uri"; exit 1 ;;
  esac
  nbdsh -u "$uri" -c "
assert h.get_export_name() == \"foo\", h.get_export_name()
assert h.get_size() == 1048576
h.pwrite(b\"named\", 0)
assert h.pread(5, 0) == b\"named\"
"
' || fail "-e foo: \$exportname, \$uri or the connection is wrong"

# The long spellings of -e.
for opt in --export --export-name --exportname; do
  "$NBDKIT" $opt=bar -U - memory 1M --run 'test "$exportname" = bar' ||
    fail "$opt=bar did not set \$exportname"
done

# Raw NBD_OPT_LIST: NBD_REP_SERVER replies whose payload is a 32 bit
# name length, the name, and optionally a description; then NBD_REP_ACK.
"$NBDKIT" -U - memory 1M --run '
  RAW_NBD_SOCKET="$unixsocket" /usr/bin/python3 -c "
import sys, struct
sys.path.insert(0, \"$srcdir\")
import raw_nbd as r
c = r.Connection.from_env()
c.handshake_newstyle()
replies, _ = c.expect_option_reply(r.OPT_LIST, b\"\", r.REP_ACK)
names = []
for rtype, payload in replies:
    assert rtype == r.REP_SERVER, rtype
    n, = struct.unpack(\">I\", payload[:4])
    assert n <= len(payload) - 4, (n, payload)
    names.append(payload[4:4 + n])
assert names == [b\"\"], names
# The same connection can still go into transmission.
c.opt_go()
assert c.size == 1048576
c.disconnect()
"
' || fail "raw NBD_OPT_LIST check failed"

echo "$0: ok"
