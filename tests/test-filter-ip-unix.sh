#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ip filter over Unix domain sockets: uid:, gid:, pid: and anyunix
# rules checked against the real credentials of the connecting client
# (this test's user and a client process whose PID is known before it
# connects); refusals are logged.  Also bad rules stop the server with a
# message naming allow= or deny=.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires_plugin memory
requires_filter ip
make_tmpdir
export tmpdir

uid=$(id -u)
gid=$(id -g)
other_uid=$(( uid + 4242 ))

expect ()
{
  local want=$1; shift
  local r
  "$NBDKIT" -U - --filter=ip memory 1M "$@" \
      --run 'nbdinfo --size "$uri"' >"$tmpdir/out" 2>"$tmpdir/log"
  r=$?
  case $want in
    accepted)
      [ $r = 0 ] && [ "$(cat "$tmpdir/out")" = 1048576 ] ||
        fail "$*: the client was refused: $(cat "$tmpdir/log")"
      ;;
    refused)
      [ $r != 0 ] || fail "$*: the client was accepted"
      grep -q "client unix socket .* refused by deny rule" "$tmpdir/log" ||
        fail "$*: no refusal in the log: $(cat "$tmpdir/log")"
      ;;
  esac
}

expect accepted allow=uid:$uid deny=all
expect refused  deny=uid:$uid
expect refused  allow=uid:$other_uid deny=all
expect accepted allow=gid:$gid deny=all
expect refused  allow=gid:$(( gid + 4242 )) deny=anyunix
expect refused  deny=anyunix
expect refused  deny=allunix
expect accepted deny=anyipv4,anyipv6,anyvsock,127.0.0.1
expect accepted allow=anyunix deny=all
expect accepted allow=uid:$other_uid,uid:$uid deny=all

# The message names the credentials and the rule.
expect refused deny=uid:$uid
grep -q "uid $uid, gid $gid) refused by deny rule 'uid:$uid'" \
    "$tmpdir/log" || fail "the refusal message is wrong: $(cat "$tmpdir/log")"

# pid: rules need the client's PID before it connects: a subshell
# records its PID, waits for the server and then becomes nbdinfo.
pid_client ()
{
  local want=$1 rule_kind=$2 r
  rm -f "$tmpdir/cpid" "$tmpdir/go" "$tmpdir/pid" "$tmpdir/sock"
  ( echo $BASHPID >"$tmpdir/cpid"
    for (( i=0; i<300; i++ )); do [ -e "$tmpdir/go" ] && break; sleep 0.1; done
    exec nbdinfo --size "nbd+unix:///?socket=$tmpdir/sock"
  ) >"$tmpdir/out" 2>/dev/null &
  local client=$!
  for (( i=0; i<100; i++ )); do [ -s "$tmpdir/cpid" ] && break; sleep 0.1; done
  local cpid
  cpid=$(cat "$tmpdir/cpid")
  [ "$cpid" = "$client" ] || fail "could not learn the client's PID"
  local args=(allow=pid:$cpid deny=all)
  [ "$rule_kind" = deny ] && args=(deny=pid:$cpid)
  "$NBDKIT" -f -P "$tmpdir/pid" -U "$tmpdir/sock" --filter=ip memory 1M \
      "${args[@]}" 2>"$tmpdir/log" &
  local server=$!
  cleanup_fn kill_pid "$server"
  for (( i=0; i<300; i++ )); do [ -s "$tmpdir/pid" ] && break; sleep 0.1; done
  touch "$tmpdir/go"
  wait "$client"
  r=$?
  kill_pid "$server"
  if [ "$want" = accepted ]; then
    [ $r = 0 ] || fail "${args[*]}: the client was refused: $(cat "$tmpdir/log")"
  else
    [ $r != 0 ] || fail "${args[*]}: the client was accepted"
    grep -q "(pid $cpid, .* refused by deny rule 'pid:$cpid'" "$tmpdir/log" ||
      fail "${args[*]}: no refusal in the log: $(cat "$tmpdir/log")"
  fi
}
pid_client accepted allow
pid_client refused deny

# Bad rules.
for args in "allow=10.0.0.0/33" "deny=::1/129" "allow=300.1.1.1" \
            "deny=1.2.3.4,,5.6.7.8" "allow=anywhere" "deny=uid:abc" \
            "allow=pid:-1" "deny=gid:" "allow=10.0.0.0/x" "deny=" \
            "allow=vsock-cid:99999999999"; do
  key=${args%%=*}
  "$NBDKIT" -U - --filter=ip memory 1M "$args" --run true 2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "$args: exit status $r, expected 1"
  grep -q "$key" "$tmpdir/err" ||
    fail "$args: the message does not name '$key': $(cat "$tmpdir/err")"
done
