# SPDX-License-Identifier: BSD-3-Clause
# A private OpenSSH server for the ssh plugin tests.  Source it after
# functions.sh and make_tmpdir, then call start_sshd.
#
# start_sshd   start /usr/sbin/sshd -D -e on 127.0.0.1 on a free port
#              with a throw-away host key and user key in $tmpdir, killed
#              at exit.  Sets SSHD_PORT and SSH_PARAMS (the nbdkit ssh
#              parameters that log in as root with the user key and
#              check the host key against $tmpdir/known_hosts).
#              Lines in $SSHD_EXTRA_CONFIG, if set, come first in
#              sshd_config (sshd keeps the first value of a keyword).

sshd=/usr/sbin/sshd

# sshd runs as root: it logs in as root with our key only.
[ "$(id -u)" = 0 ] || skip "the private sshd must run as root"
[ -x "$sshd" ] || skip "$sshd is not installed"
requires which ssh-keygen
requires python3 -c 'import socket'
# sshd refuses to start without its privilege separation directory.
if [ ! -d /run/sshd ]; then
  mkdir -p -m 0755 /run/sshd || skip "cannot create /run/sshd"
fi
# Keep the tests independent of the caller's agent and keys.
unset SSH_AUTH_SOCK

_sshd_free_port ()
{
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_sshd_write_config ()
{
  cat > "$tmpdir/sshd_config" <<EOF
${SSHD_EXTRA_CONFIG:-}
Port $1
ListenAddress 127.0.0.1
HostKey $tmpdir/host_key
AuthorizedKeysFile $tmpdir/authorized_keys
PidFile none
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
# The cheapest key exchange: the tests open many short sessions.
KexAlgorithms curve25519-sha256
Subsystem sftp internal-sftp
EOF
}

# Wait (bounded, 5 s) until PORT accepts connections or PID dies.
_sshd_wait_port ()
{
  local port=$1 pid=$2 i
  for (( i=0; i<100; i++ )); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

start_sshd ()
{
  local try port pid

  # The files are root's and private anyway, but StrictModes is off:
  # sshd would refuse authorized_keys under the world-writable /tmp.
  chmod 0700 "$tmpdir"
  ssh-keygen -q -t ed25519 -N '' -C test-host -f "$tmpdir/host_key" ||
    fail "ssh-keygen (host key) failed"
  ssh-keygen -q -t ed25519 -N '' -C test-user -f "$tmpdir/user_key" ||
    fail "ssh-keygen (user key) failed"
  cp "$tmpdir/user_key.pub" "$tmpdir/authorized_keys"
  chmod 0600 "$tmpdir/authorized_keys"

  # The port is free when we look; if another process takes it before
  # sshd binds, sshd exits and we try another.
  for (( try=0; try<3; try++ )); do
    port=$(_sshd_free_port) || fail "cannot find a free port"
    _sshd_write_config "$port"
    # -r: no re-exec for each connection (faster, same behaviour).
    "$sshd" -f "$tmpdir/sshd_config" -D -e -r 2>>"$tmpdir/sshd.log" &
    pid=$!
    cleanup_fn kill_pid "$pid"
    if _sshd_wait_port "$port" "$pid"; then
      SSHD_PORT=$port
      echo "[127.0.0.1]:$port $(cat "$tmpdir/host_key.pub")" \
        > "$tmpdir/known_hosts"
      SSH_PARAMS=(host=127.0.0.1 "port=$port" user=root config=
                  "identity=$tmpdir/user_key"
                  "known-hosts=$tmpdir/known_hosts")
      return 0
    fi
    kill_pid "$pid"
  done
  cat "$tmpdir/sshd.log" >&2
  fail "sshd did not start listening"
}
