#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Python plugin errors.  Bad scripts (missing, unreadable, syntax
# error, exception at load, in config, config_complete, thread_model or
# get_ready, a missing required callback, a bad API_VERSION, parameters
# in the wrong place) stop nbdkit with exit status 1 and a clear message
# before it serves.  While serving, an exception or a result of the
# wrong type fails that request or connection with a message naming the
# callback (the traceback for exceptions), the client gets EIO, and the
# server carries on.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin python
make_tmpdir

good='API_VERSION = 2
def open(readonly): return 1
def get_size(h): return 512
def pread(h, buf, offset, flags): buf[:] = bytes(len(buf))
'

# bad_start NAME EXPECTED SCRIPT-TEXT [ARGS...]: nbdkit exits 1 before
# serving (the --run command never runs), with EXPECTED in its errors.
bad_start ()
{
  local name=$1 expected=$2 text=$3 r=0
  shift 3
  printf '%s\n' "$text" >"$tmpdir/$name.py"
  rm -f "$tmpdir/ran"
  "$NBDKIT" -U - python "$@" --run 'touch "$tmpdir/ran"' \
    >"$tmpdir/$name.err" 2>&1 || r=$?
  [ "$r" = 1 ] || fail "$name: exit status $r, expected 1: $(cat "$tmpdir/$name.err")"
  [ ! -e "$tmpdir/ran" ] || fail "$name: nbdkit served"
  grep -qF -- "$expected" "$tmpdir/$name.err" ||
    fail "$name: no '$expected' in: $(cat "$tmpdir/$name.err")"
}
export tmpdir
t=$tmpdir

bad_start none "script= is required" ""
bad_start missing "$t/nosuch.py: cannot open file: No such file" "" "$t/nosuch.py"
bad_start syntax "syntax.py\", line 6" "$good
def oops(:" "$t/syntax.py"
grep -q SyntaxError "$t/syntax.err" || fail "syntax: no SyntaxError"
bad_start import "ModuleNotFoundError: No module named 'no_such_module'" \
  "import no_such_module" "$t/import.py"
bad_start before "the first parameter must be script=" "$good" \
  size=1 "$t/before.py"
bad_start noconfig "does not define config()" "$good" "$t/noconfig.py" size=1
bad_start nopread "$t/nopread.py: the script must define pread()" \
  "def open(r): return 1
def get_size(h): return 1" "$t/nopread.py"
bad_start api3 "API_VERSION 3 is not supported" "API_VERSION = 3" "$t/api3.py"
bad_start apistr "API_VERSION must be an int, not str" \
  "API_VERSION = '2'" "$t/apistr.py"
bad_start config "ValueError: bad size=x" "$good
def config(key, value): raise ValueError('bad %s=%s' % (key, value))" \
  "$t/config.py" size=x
grep -q "config: error: Traceback" "$t/config.err" || fail "config: no traceback"
bad_start complete "config_complete: error: Traceback" "$good
def config_complete(): 1 / 0" "$t/complete.py"
bad_start model "thread_model returned 7" "$good
def thread_model(): return 7" "$t/model.py"
bad_start model2 "thread_model returned str, expected an int" "$good
def thread_model(): return 'parallel'" "$t/model2.py"
bad_start ready "RuntimeError: not ready" "$good
def get_ready(): raise RuntimeError('not ready')" "$t/ready.py"

# While serving: the export name picks the misbehaviour.
cat >"$tmpdir/serve.py" <<'PY'
import nbdkit
API_VERSION = 2
kept = []

def open(readonly):
    name = nbdkit.export_name()
    if name == "open":
        raise RuntimeError("open refused")
    return name

def get_size(h):
    return "big" if h == "size" else 65536

def can_fua(h):
    return 7 if h == "fua" else nbdkit.FUA_NONE

def block_size(h):
    return (512, 4096) if h == "block" else (1, 4096, 65536)

def pread(h, buf, offset, flags):
    if offset == 512:
        raise KeyError("pread exploded")
    if offset == 1024:
        return b"short"
    if offset == 1536:
        kept.append(buf)      # kept past the call: released by then
    elif offset == 2048:
        kept[0][0] = 1
    buf[:] = bytes(len(buf))

def pwrite(h, buf, offset, flags):
    pass

def extents(h, count, offset, flags):
    if offset == 0:
        return 42
    return [(offset, count, "hole")]

def list_exports(readonly, is_tls):
    return [("a", "b", "c")]
PY

cat >"$tmpdir/t.py" <<'PY'
import errno, os
def fails(errnum, fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        assert e.errnum == errnum, (fn, e.errnum, e)
        return
    assert False, "%s%r did not fail" % (fn, args)

def connect(name):
    c = nbd.NBD()
    c.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    c.set_export_name(name)
    c.connect_unix(os.environ["unixsocket"])
    return c

for name in ("open", "size", "fua", "block"):
    try:
        connect(name)
        assert False, "connecting to %s worked" % name
    except nbd.Error:
        pass

c = connect("data")
assert c.pread(512, 0) == bytes(512)
fails(errno.EIO, c.pread, 512, 512)
fails(errno.EIO, c.pread, 512, 1024)
c.pread(512, 1536)
fails(errno.EIO, c.pread, 512, 2048)
fails(errno.EIO, c.block_status, 512, 0, lambda *a: 0)
fails(errno.EIO, c.block_status, 512, 512, lambda *a: 0)
# The server and this connection carry on.
assert c.pread(512, 0) == bytes(512)
c.shutdown()
assert connect("again").pread(512, 4096) == bytes(512)
PY

"$NBDKIT" -U - python "$tmpdir/serve.py" \
  --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py" &&
         ! nbdinfo --list "$uri" >/dev/null 2>&1 &&
         nbdinfo --size "$uri"' >"$tmpdir/out" 2>"$tmpdir/log" ||
  fail "serving errors: $(cat "$tmpdir/out" "$tmpdir/log")"
[ "$(cat "$tmpdir/out")" = 65536 ] || fail "the server did not carry on"
for e in "serve.py: open: error: Traceback" "RuntimeError: open refused" \
         "get_size returned str, expected an int" \
         "can_fua returned 7, which is not one of nbdkit.FUA_*" \
         "block_size returned tuple, expected a tuple (minimum, preferred, maximum)" \
         "serve.py: pread: error: Traceback (most recent call last):" \
         "line 22, in pread" "KeyError: 'pread exploded'" \
         "pread returned 5 bytes, expected 512" \
         "ValueError: operation forbidden on released memoryview object" \
         "extents returned int, expected an iterable of (offset, length, type)" \
         "extents returned str as the type, expected an int" \
         "list_exports: each item must be a name or a (name, description) tuple"
do
  grep -qF "$e" "$tmpdir/log" || fail "no '$e' in the log: $(cat "$tmpdir/log")"
done
echo "$0: ok"
