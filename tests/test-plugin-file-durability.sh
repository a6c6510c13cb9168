#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every write acknowledged with FUA, or followed by an acknowledged
# FLUSH, survives kill -9 of the server: the file plugin alone, and under
# the cache filter in the modes whose manual promises it (writeback:
# flush and FUA write back; writethrough: every write).  The cow filter
# promises nothing (its overlay is thrown away) and cache=unsafe neither.

source "$srcdir/functions.sh"
requires /usr/bin/python3 -c 'import nbd'
requires_plugin file
make_tmpdir

# run NAME SEED [--filter=F...] [-- PARAM...]
run ()
{
  local name=$1 seed=$2 pid filters=() params=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do filters+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  params=("$@")
  truncate -s 0 "$tmpdir/disk"
  truncate -s 64M "$tmpdir/disk"
  start_nbdkit -P "$tmpdir/$name.pid" -U "$tmpdir/$name.sock" \
    "${filters[@]}" file "$tmpdir/disk" "${params[@]}"
  pid=$(cat "$tmpdir/$name.pid")
  /usr/bin/python3 "$srcdir/test-plugin-file-durability.py" \
    "$tmpdir/$name.sock" "$pid" "$tmpdir/disk" "$seed" ||
    fail "$name: acknowledged writes were lost"
  # The server really died by SIGKILL.
  for (( i=0; i<100; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "$name: the server is still running"
  return 0
}

run file 1
run file-2 2
run cache-writeback 3 --filter=cache
run cache-writethrough 4 --filter=cache -- cache=writethrough
run cache-writeback-small 5 --filter=cache -- cache-max-size=1M
run cache-over-blocksize 6 --filter=cache --filter=blocksize
