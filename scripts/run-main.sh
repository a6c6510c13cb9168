#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Set up a fresh Debian 12 machine, build, and run nbdkitd (the export
# manager) with a 1 GiB RAM-disk export named "demo" on the shared NBD
# port 10809, added through the D-Bus API.  Uses the system bus when one
# runs and lets nbdkitd own its name, otherwise a private bus started
# here.  Ctrl-C stops everything this script started.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh"

nbdkitd=$top/build/daemon/nbdkitd
work=$(mktemp -d /tmp/nbdkitd-demo.XXXXXX)
chmod 755 "$work"
pids=()
stop_all ()
{
  local p
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    p=${pids[$i]}
    kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || :
  done
  rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

policy_installed=no
for d in /usr/share/dbus-1/system.d /etc/dbus-1/system.d; do
  [ -f "$d/org.nbdkit.Daemon1.conf" ] && policy_installed=yes
done
if [ "$policy_installed" = yes ] && busctl --system status >/dev/null 2>&1; then
  echo "Using the system bus."
else
  # A private system-type bus with nbdkitd's policy.
  mkdir -p "$work/system.d"
  cp "$top/dbus/org.nbdkit.Daemon1.conf" "$work/system.d/"
  cat > "$work/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$work/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>
  </policy>
  <includedir>$work/system.d</includedir>
</busconfig>
CONF
  dbus-daemon --config-file="$work/bus.conf" --nofork --nopidfile \
      --print-address=3 3>"$work/bus.addr" &
  pids+=($!)
  for (( i=0; i<100; i++ )); do [ -s "$work/bus.addr" ] && break; sleep 0.1; done
  export DBUS_SYSTEM_BUS_ADDRESS=$(head -1 "$work/bus.addr")
  echo "Started a private D-Bus system bus: $DBUS_SYSTEM_BUS_ADDRESS"
fi

"$nbdkitd" --state-dir="$work/state" --runtime-dir="$work/run" \
    --listen=tcp::10809 &
pids+=($!)
for (( i=0; i<100; i++ )); do
  busctl --system status org.nbdkit.Daemon1 >/dev/null 2>&1 && break
  sleep 0.1
done

busctl --system call org.nbdkit.Daemon1 /org/nbdkit/Daemon1 \
    org.nbdkit.Daemon1.Manager AddExport 'ssasa(ss)a{sv}' \
    demo memory 0 1 size 1G 1 description s "1 GiB RAM disk" >/dev/null
path=$(busctl --system call org.nbdkit.Daemon1 /org/nbdkit/Daemon1 \
    org.nbdkit.Daemon1.Manager GetExport s demo | cut -d'"' -f2)
for (( i=0; i<100; i++ )); do
  busctl --system get-property org.nbdkit.Daemon1 "$path" \
      org.nbdkit.Daemon1.Export State | grep -q running && break
  sleep 0.1
done

cat <<TXT

nbdkitd is running with the export "demo" (a 1 GiB RAM disk) on
nbd://localhost:10809/demo.  Ctrl-C stops everything.

Connect:
  nbdinfo --list nbd://localhost
  nbdinfo nbd://localhost/demo
  qemu-img info nbd://localhost/demo
  nbdsh -u nbd://localhost/demo -c 'print(h.get_size())'

Manage it${DBUS_SYSTEM_BUS_ADDRESS:+ (first: export DBUS_SYSTEM_BUS_ADDRESS='$DBUS_SYSTEM_BUS_ADDRESS')}:
  busctl --system call org.nbdkit.Daemon1 /org/nbdkit/Daemon1 \\
    org.nbdkit.Daemon1.Manager ListExports
  busctl --system introspect org.nbdkit.Daemon1 $path
  busctl --system call org.nbdkit.Daemon1 /org/nbdkit/Daemon1 \\
    org.nbdkit.Daemon1.Manager AddExport 'ssasa(ss)a{sv}' \\
    disk2 memory 0 1 size 100M 0
  $top/build/ctl/nbdkitctl list     (nbdkitctl, the command-line client)

TXT
wait "${pids[-1]}"
