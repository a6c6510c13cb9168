#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ip filter over real TCP connections on the loopback interface:
# addresses, networks and keywords in allow= and deny= lists accept or
# refuse the client as nbdkit-ip-filter(1) "RULES" says (an allow match
# wins, then a deny match refuses, otherwise accept), refusals are
# logged with the rule, and IPv6 is checked when ::1 is available.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires_plugin memory
requires_filter ip
make_tmpdir
export tmpdir

free_port ()
{
  python3 -c '
import socket, sys
s = socket.socket(getattr(socket, sys.argv[1]))
s.bind((sys.argv[2], 0))
print(s.getsockname()[1])
s.close()' "$1" "$2"
}

# expect accepted|refused FAMILY RULES...: serve on the loopback address
# of FAMILY and connect one client with nbdinfo.
expect ()
{
  local want=$1 family=$2; shift 2
  local addr host port r
  if [ "$family" = 4 ]; then addr=127.0.0.1 host=127.0.0.1
  else addr=::1 host="[::1]"; fi
  port=$(free_port "AF_INET$( [ "$family" = 6 ] && echo 6 )" "$addr")
  : >"$tmpdir/log"
  "$NBDKIT" -i "$addr" -p "$port" --filter=ip memory 1M "$@" \
      --run "nbdinfo --size nbd://$host:$port" \
      >"$tmpdir/out" 2>"$tmpdir/log"
  r=$?
  case $want in
    accepted)
      [ $r = 0 ] && [ "$(cat "$tmpdir/out")" = 1048576 ] ||
        fail "IPv$family $*: the client was refused: $(cat "$tmpdir/log")"
      ;;
    refused)
      [ $r != 0 ] ||
        fail "IPv$family $*: the client was accepted"
      grep -q "client .* refused by deny rule" "$tmpdir/log" ||
        fail "IPv$family $*: no refusal in the log: $(cat "$tmpdir/log")"
      ;;
  esac
}

expect accepted 4
expect accepted 4 allow=127.0.0.1 deny=all
expect accepted 4 deny=all allow=127.0.0.1
expect refused  4 deny=127.0.0.0/8
expect refused  4 deny=127.0.0.1
expect accepted 4 deny=10.0.0.0/8,192.168.0.0/16
expect accepted 4 allow=127.0.0.0/31,::1 deny=all
expect refused  4 allow=127.0.0.2 deny=anyipv4
expect refused  4 allow=anyipv6 deny=all
expect accepted 4 allow=allipv4 deny=any
expect accepted 4 allow=10.1.1.1 allow=127.0.0.1 deny=all
expect refused  4 allow=10.1.1.1 deny=10.2.2.2 deny=all
expect accepted 4 deny=anyunix,anyvsock,uid:0,anyipv6
expect accepted 4 allow=127.0.0.0/8 deny=127.0.0.1
expect refused  4 allow=128.0.0.0/1 deny=0.0.0.0/0

# The refusal names the client and the rule.
expect refused 4 allow=10.0.0.1 deny=127.0.0.0/24
grep -q "client 127.0.0.1 refused by deny rule '127.0.0.0/24'" \
    "$tmpdir/log" || fail "the refusal message is wrong: $(cat "$tmpdir/log")"

# IPv6, if the loopback has it.
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' \
     2>/dev/null; then
  expect accepted 6 allow=::1 deny=all
  expect accepted 6 allow=::1/128 deny=all
  expect accepted 6 allow=0:0:0:0:0:0:0:1 deny=all
  expect refused  6 deny=::/0
  expect refused  6 allow=anyipv4 deny=all
  expect refused  6 allow=fe80::/10 deny=::1
  expect accepted 6 allow=anyipv6 deny=all
  expect accepted 6 deny=127.0.0.1,anyipv4
else
  echo "$0: IPv6 loopback not available, IPv6 cases skipped"
fi
