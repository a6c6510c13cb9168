#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The systemd units in systemd/ (nbdkit.socket, nbdkit@.service,
# nbdkit.service) and the LISTEN_FDS socket/service pair shown in
# nbdkit-service(1):
# - pass `systemd-analyze verify --man=no` with no complaint at all (the
#   @SBINDIR@ placeholder pointed at the nbdkit under test); a broken
#   copy is rejected, so the verifier really checks here;
# - their ExecStart= command lines work with this nbdkit: nbdkit.service's
#   serves a client; nbdkit@.service's serves a client accepted the way
#   Accept=yes does it (systemd-socket-activate --accept --inetd).

source "$srcdir/functions.sh"
requires systemd-analyze --version
requires nbdinfo --version
requires_plugin file

make_tmpdir
units="$abs_top_srcdir/systemd"
mkdir "$tmpdir/units"

# Can systemd-analyze verify run here at all (no systemd as PID 1)?
cat >"$tmpdir/units/probe.service" <<EOF
[Service]
ExecStart=$(command -v true)
EOF
systemd-analyze verify --man=no "$tmpdir/units/probe.service" \
  >"$tmpdir/probe.out" 2>&1 ||
  skip "systemd-analyze verify cannot run here: $(head -n3 "$tmpdir/probe.out")"
rm "$tmpdir/units/probe.service"

for u in nbdkit.socket nbdkit@.service nbdkit.service; do
  [ -f "$units/$u" ] || fail "missing unit $units/$u"
done
grep -q '@SBINDIR@/nbdkit' "$units/nbdkit.service" "$units/nbdkit@.service" ||
  fail "the service units do not use the @SBINDIR@ placeholder"
for u in nbdkit.socket nbdkit@.service nbdkit.service; do
  sed "s|@SBINDIR@/nbdkit|$NBDKIT|g" "$units/$u" >"$tmpdir/units/$u"
done

# verify UNIT...: exit 0 and no output (warnings come with status 0).
verify ()
{
  local status=0
  (cd "$tmpdir/units" && systemd-analyze verify --man=no "$@") \
    >"$tmpdir/verify.out" 2>&1 || status=$?
  [ "$status" -eq 0 ] && [ ! -s "$tmpdir/verify.out" ]
}

verify nbdkit.socket nbdkit@.service nbdkit.service ||
  fail "systemd-analyze verify: $(cat "$tmpdir/verify.out")"
echo "ok: systemd/ units verify"

# The pair from nbdkit-service(1): Accept=no, nbdkit gets LISTEN_FDS.
cat >"$tmpdir/units/nbdkit-disk.socket" <<'EOF'
[Unit]
Description=NBD socket for disk.img

[Socket]
ListenStream=10809
ListenStream=/run/nbdkit-disk.sock

[Install]
WantedBy=sockets.target
EOF
cat >"$tmpdir/units/nbdkit-disk.service" <<EOF
[Unit]
Description=NBD server for disk.img
Requires=nbdkit-disk.socket

[Service]
ExecStart=$NBDKIT --foreground --log=syslog file /srv/disk.img
EOF
verify nbdkit-disk.socket nbdkit-disk.service ||
  fail "systemd-analyze verify (man page example): $(cat "$tmpdir/verify.out")"
echo "ok: the LISTEN_FDS example from nbdkit-service(1) verifies"

# A broken unit must be rejected, or the checks above prove nothing.
sed 's/^Accept=yes/Accept=maybe/; s/^ListenStream=10809/ListenStream=not a port/' \
  "$tmpdir/units/nbdkit.socket" >"$tmpdir/units/broken.socket"
if verify broken.socket; then
  fail "systemd-analyze verify accepted a broken unit: it checks nothing here"
fi
echo "ok: a broken unit is rejected"

# --- the ExecStart= lines against this nbdkit ------------------------
# exec_args UNIT: the arguments after the program, one per line, with
# the shipped disk path replaced by a disk of ours.
truncate -s 3M "$tmpdir/disk.img"
exec_args ()
{
  sed -n 's/^ExecStart=[^ ]* //p' "$1" | tail -n1 | tr ' ' '\n' |
    sed "s|^/var/lib/nbdkit/disk.img$|$tmpdir/disk.img|"
}

mapfile -t args < <(exec_args "$units/nbdkit.service")
[ "${#args[@]}" -gt 0 ] || fail "no ExecStart= in nbdkit.service"
out=$(timeout 60 "$NBDKIT" -U - --run 'nbdinfo --size "$uri"' "${args[@]}") ||
  fail "nbdkit.service's command line does not work: nbdkit ${args[*]}"
[ "$out" = 3145728 ] || fail "nbdkit.service's command line: size $out"
echo "ok: nbdkit.service command line serves"

mapfile -t args < <(exec_args "$units/nbdkit@.service")
[ "${#args[@]}" -gt 0 ] || fail "no ExecStart= in nbdkit@.service"
if ! systemd-socket-activate --version >/dev/null 2>&1; then
  echo "systemd-socket-activate missing: nbdkit@.service command line not run"
else
  sock="$tmpdir/accept.sock"
  systemd-socket-activate --accept --inetd -l "$sock" "$NBDKIT" "${args[@]}" \
    2>"$tmpdir/accept.log" &
  sa=$!
  cleanup_fn kill_pid "$sa"
  for (( i=0; i<300; i++ )); do
    [ -S "$sock" ] && break
    sleep 0.1
  done
  out=$(nbdinfo --size "nbd+unix:///?socket=$sock") ||
    fail "nbdkit@.service's command line does not serve: $(cat "$tmpdir/accept.log")"
  [ "$out" = 3145728 ] || fail "nbdkit@.service's command line: size $out"
  kill_pid "$sa"
  echo "ok: nbdkit@.service command line serves an accepted connection"
fi

echo "$0: ok"
