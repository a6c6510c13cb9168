#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Read-only serving with the file plugin: with -r the export is read-only,
# every kind of write fails with EPERM and the file is left untouched; a
# file the server cannot open for writing is served read-only.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires sha256sum --version
requires_plugin file
make_tmpdir
export tmpdir

head -c $(( 4 << 20 )) /dev/urandom >"$tmpdir/disk"
sum_before=$(sha256sum <"$tmpdir/disk")

cat >"$tmpdir/t.py" <<'PY'
import errno, os
path = os.environ["tmpdir"] + "/disk"
assert h.is_read_only()
assert not h.can_trim() and not h.can_zero()
# Send the writes anyway: the server must refuse them itself.
h.set_strict_mode(0)
assert h.pread(h.get_size(), 0) == open(path, "rb").read()
for what, fn in (("pwrite", lambda: h.pwrite(b"x" * 512, 0)),
                 ("zero", lambda: h.zero(4096, 0)),
                 ("trim", lambda: h.trim(4096, 0))):
    try:
        fn()
    except nbd.Error as e:
        assert e.errnum == errno.EPERM, (what, e.errnum)
    else:
        raise AssertionError("%s succeeded on a read-only export" % what)
PY
"$NBDKIT" -U - -r file "$tmpdir/disk" --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "read-only checks failed"
[ "$(sha256sum <"$tmpdir/disk")" = "$sum_before" ] ||
  fail "the file changed although the export was read-only"

# Without -r, a file the server may not write is served read-only.  Root
# can write any file, so as root the server runs as nobody for this part.
chmod a-w "$tmpdir/disk"
as_user=()
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null ||
    skip "running as root and setpriv is missing: cannot test unwritable files"
  chmod 755 "$tmpdir"
  chmod 644 "$tmpdir/t.py"
  as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
"${as_user[@]}" "$NBDKIT" -U - file "$tmpdir/disk" \
  --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "read-only fallback checks failed"
[ "$(sha256sum <"$tmpdir/disk")" = "$sum_before" ] ||
  fail "the unwritable file changed"
