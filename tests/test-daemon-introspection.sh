#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd: the introspection XML in dbus/ (the contract) equals the live
# Manager and Export objects: the same interfaces, members, signatures,
# argument names and directions.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires /usr/bin/python3 -c 'import xml.etree.ElementTree'
daemon_setup
start_daemon
add_export x memory '@as []' '[("size", "1M")]' "{'start': <'manual'>}" >/dev/null ||
  fail "AddExport"
gdbus introspect --system -d org.nbdkit.Daemon1 -o /org/nbdkit/Daemon1 --xml > "$D/manager.xml"
gdbus introspect --system -d org.nbdkit.Daemon1 -o "$(export_path x)" --xml > "$D/export.xml"

/usr/bin/python3 - "$abs_top_srcdir/dbus/org.nbdkit.Daemon1.xml" \
    "$D/manager.xml" "$D/export.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

def describe(node, names):
    out = {}
    for iface in node.findall("interface"):
        n = iface.get("name")
        if n not in names:
            continue
        members = set()
        for m in iface:
            if m.tag in ("method", "signal"):
                args = tuple((a.get("name"), a.get("type"),
                              a.get("direction", "in" if m.tag == "method" else "out"))
                             for a in m.findall("arg"))
                members.add((m.tag, m.get("name"), args))
            elif m.tag == "property":
                members.add((m.tag, m.get("name"), m.get("type"), m.get("access")))
        out[n] = members
    return out

ifaces = {"org.nbdkit.Daemon1.Manager", "org.nbdkit.Daemon1.Export"}
contract = describe(ET.parse(sys.argv[1]).getroot(), ifaces)
live = {}
for f in sys.argv[2:]:
    live.update(describe(ET.parse(f).getroot(), ifaces))
ok = True
for n in sorted(ifaces):
    if n not in live:
        print("missing live interface", n); ok = False; continue
    for m in sorted(contract[n] - live[n], key=str):
        print("in the XML, not live:", n, m); ok = False
    for m in sorted(live[n] - contract[n], key=str):
        print("live, not in the XML:", n, m); ok = False
# Every member of the contract is documented by a comment before it.
import re
text = open(sys.argv[1]).read()
for n in ifaces:
    for m in contract[n]:
        pat = r"-->\s*(?:<[^>]*/>\s*|<property[^>]*>\s*<annotation[^>]*/>\s*</property>\s*)*<%s name=\"%s\"" % (m[0], m[1])
        if not re.search(pat, text):
            print("undocumented:", n, m[0], m[1]); ok = False
sys.exit(0 if ok else 1)
PY
[ $? = 0 ] || fail "the introspection XML and the live objects differ"
grep -q 'org.freedesktop.DBus.ObjectManager' "$D/manager.xml" || fail "no ObjectManager"
echo PASS
