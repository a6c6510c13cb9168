#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The limit filter with real concurrent clients: with the default limit
# of 1, a second client is refused (and the refusal logged) while the
# first holds its connection, and served once the first has left;
# limit=2 admits two and refuses the third; limit=0 admits many.  A bad
# limit stops the server with a message naming the parameter.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin memory
requires_filter limit
make_tmpdir
export tmpdir

start_server ()
{
  rm -f "$tmpdir/pid" "$tmpdir/sock"
  : >"$tmpdir/log"
  "$NBDKIT" -f -P "$tmpdir/pid" -U "$tmpdir/sock" "$@" 2>>"$tmpdir/log" &
  server=$!
  cleanup_fn kill_pid "$server"
  for (( i=0; i<300; i++ )); do [ -s "$tmpdir/pid" ] && break; sleep 0.1; done
  [ -s "$tmpdir/pid" ] || fail "nbdkit did not start"
  uri="nbd+unix:///?socket=$tmpdir/sock"
}

# hold NAME: connect a client that stays connected until
# $tmpdir/release-NAME exists; returns once it is connected.
holders=()
hold ()
{
  local name=$1
  nbdsh -u "$uri" -c "
import os, time
d = os.environ['tmpdir']
open(d + '/held-$name', 'w').close()
while not os.path.exists(d + '/release-$name'):
    time.sleep(0.05)
assert h.pread(512, 0) == bytes(512)
" &
  holders+=($!)
  for (( i=0; i<200; i++ )); do
    [ -e "$tmpdir/held-$name" ] && return 0
    sleep 0.1
  done
  fail "client $name did not connect"
}

release_all ()
{
  touch "$tmpdir"/release-{a,b,c,d}
  for p in "${holders[@]}"; do
    wait "$p" || fail "a holding client failed"
  done
  holders=()
  rm -f "$tmpdir"/held-* "$tmpdir"/release-*
}

served ()
{
  [ "$(nbdinfo --size "$uri" 2>/dev/null)" = 1048576 ]
}

# Default limit=1.
start_server --filter=limit memory 1M
served || fail "the first client was refused"
hold a
served && fail "a second client was served while the first held on"
grep -q "too many clients (limit=1): connection refused" "$tmpdir/log" ||
  fail "the refusal was not logged: $(cat "$tmpdir/log")"
release_all
served || fail "a client was refused after the first one left"
kill_pid "$server"

# limit=2.
start_server --filter=limit memory 1M limit=2
hold a
hold b
served && fail "a third client was served with limit=2"
touch "$tmpdir/release-a"
wait "${holders[0]}" || fail "client a failed"
served || fail "a client was refused with one slot free"
release_all
kill_pid "$server"

# limit=0: no limit.
start_server --filter=limit memory 1M limit=0
hold a
hold b
hold c
served || fail "limit=0 refused a client"
release_all
kill_pid "$server"

# Bad values.
for value in -1 abc 1.5 ""; do
  "$NBDKIT" -U - --filter=limit memory 1M "limit=$value" --run true \
      2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "limit=$value: exit status $r, expected 1"
  grep -q "limit" "$tmpdir/err" ||
    fail "limit=$value: the message does not name 'limit'"
done
