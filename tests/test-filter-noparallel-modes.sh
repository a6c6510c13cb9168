#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The noparallel filter: the thread model each serialize= mode gives
# (--dump-plugin), never looser than the plugin's; multi-conn hidden
# only for serialize=connections; with serialize=connections a second
# client is not served until the first one leaves; bad modes refused.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter noparallel
requires_filter log
requires_plugin sh

make_tmpdir

# model ARGS...: the thread model the server really runs with, as the
# log filter's "Ready" line reports it (0 = serialize_connections,
# 1 = serialize_all_requests, 2 = serialize_requests, 3 = parallel).
model ()
{
  rm -f "$tmpdir/log"
  "$NBDKIT" -U - --filter=log --filter=noparallel "$@" \
    logfile="$tmpdir/log" --run true ||
    fail "$*: nbdkit failed"
  sed -n 's/.* Ready thread_model=//p' "$tmpdir/log"
}

check_model ()
{
  local want=$1 got
  shift
  got=$(model "$@")
  [ "$got" = "$want" ] || fail "$*: thread model $got, expected $want"
}

check_model 2 memory 1M
check_model 2 memory 1M serialize=requests
check_model 1 memory 1M serialize=all-requests
check_model 1 memory 1M serialise=all_requests
check_model 0 memory 1M serialize=connections
# The filter never loosens a stricter plugin: sh scripts default to
# serialize_all_requests.
printf '%s\n' 'case "$1" in get_size) echo 512 ;; *) exit 2 ;; esac' \
  > "$tmpdir/disk.sh"
chmod +x "$tmpdir/disk.sh"
check_model 1 sh "$tmpdir/disk.sh" serialize=requests

# Multi-conn as each mode advertises it, one nbdsh running nbdkit -s
# once per mode.
nbdsh -c "
import os
for mode, want in (('requests', True), ('all-requests', True),
                   ('connections', False)):
    h = nbd.NBD()
    h.connect_command([os.environ['NBDKIT'], '-s', '--exit-with-parent',
                       '--filter=noparallel', 'memory', '1M',
                       'serialize=' + mode])
    assert h.can_multi_conn() == want, 'serialize=%s: multi-conn %s' % (mode, not want)
    h.shutdown()
" || fail "multi-conn advertised wrongly"

# One client at a time: the second handshake completes only after the
# first client disconnects.  Data written by the first is then seen.
# (The 0.3 s in which the second must not be served is the one fixed
# wait: nothing signals "still waiting".)
"$NBDKIT" -U - --filter=noparallel memory 1M serialize=connections \
  --run 'nbdsh -c "
import time
h.connect_uri(\"$uri\")
h.pwrite(b\"first\", 0)
h2 = nbd.NBD()
h2.aio_connect_uri(\"$uri\")
deadline = time.monotonic() + 0.3
while time.monotonic() < deadline:
    h2.poll(50)
    assert not h2.aio_is_ready(), \"second client served while the first is connected\"
h.shutdown()
del h
deadline = time.monotonic() + 20
while not h2.aio_is_ready():
    assert time.monotonic() < deadline, \"second client never served\"
    assert not h2.aio_is_dead(), h2.get_error()
    h2.poll(100)
assert h2.pread(5, 0) == b\"first\"
"' || fail "serialize=connections: wrong order of service"

for v in bogus ""; do
  rc=0
  "$NBDKIT" --filter=noparallel memory 1M serialize=$v --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "serialize=$v: exit status $rc, expected 1"
  grep -q "serialize.*'$v'" "$tmpdir/err" ||
    fail "serialize=$v: the error does not name the parameter and value"
done

echo "$0: ok"
