# SPDX-License-Identifier: BSD-3-Clause
# Helpers for tests/test-plugin-nbd-*.sh, sourced after functions.sh.
# (Not named *.sh, so that meson does not run it as a test.)
#
# free_port                  print a TCP port that was free a moment ago
# wait_for_path PATH         wait (bounded) until PATH exists
# nbdsh_script URI SCRIPT    run the python SCRIPT (a string) with nbdsh on
#                            URI, failing the test if it fails
# write_slot URI NAME SLOT   write 64 KiB derived from NAME at SLOT*64 KiB,
#                            flush, and read it back through URI
# check_slot URI NAME SLOT   check that SLOT holds what write_slot wrote

free_port ()
{
  /usr/bin/python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

wait_for_path ()
{
  local i
  for (( i=0; i<300; i++ )); do
    [ -e "$1" ] && return 0
    sleep 0.1
  done
  fail "timed out waiting for $1"
}

nbdsh_script ()
{
  local uri=$1 script=$2
  nbdsh -u "$uri" -c "$script" || fail "nbdsh on $uri failed: $script"
}

# The contents of a slot: NAME repeated, so every writer leaves its mark.
_slot_py='
import os
name = os.environ["SLOT_NAME"].encode()
slot = int(os.environ["SLOT_INDEX"])
data = (name + b"|") * (65536 // (len(name) + 1) + 1)
data = data[:65536]
off = slot * 65536
'

write_slot ()
{
  SLOT_NAME=$2 SLOT_INDEX=$3 nbdsh -u "$1" -c "$_slot_py"'
h.pwrite(data, off)
h.flush()
assert h.pread(65536, off) == data, "read back differs"
' || fail "write_slot $2 $3 through $1 failed"
}

check_slot ()
{
  SLOT_NAME=$2 SLOT_INDEX=$3 nbdsh -u "$1" -c "$_slot_py"'
assert h.pread(65536, off) == data, "slot %d does not hold %r" % (slot, name)
' || fail "slot $3 does not hold the data written as $2"
}
