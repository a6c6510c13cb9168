#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every error class of nbdkitctl against a real nbdkitd: one line naming
# the export, parameter or value, and the documented exit code
# (nbdkitctl(1), "EXIT STATUS").  Access denied is test-daemon-ctl-polkit.

source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
source "$srcdir/test-daemon-ctl-lib.bash"

ctl_setup
requires /usr/bin/nbdsh --version
requires_plugin memory
requires_plugin file
daemon_setup
start_daemon

ctl add-export disk1 --listen="unix:$D/disk1.sock" memory 1M
wait_state disk1 running

# 3: not found.
expect_exit 3 '^nbdkitctl: export "nope" does not exist$' \
  "$CTL" show-export nope
for verb in start stop restart uri remove-export list-connections; do
  expect_exit 3 'export "nope" does not exist' "$CTL" $verb nope
done
expect_exit 3 'export "nope" does not exist' "$CTL" update-export nope -r
expect_exit 3 'export "nope" does not exist' "$CTL" disconnect nope 1
expect_exit 3 "nosuchplugin" "$CTL" add-export x nosuchplugin a=b
expect_exit 3 "nosuchfilter" \
  "$CTL" add-export x --filter=nosuchfilter memory 1M

# 4: already exists (the export; a listener address).
expect_exit 4 '^nbdkitctl: export "disk1" already exists$' \
  "$CTL" add-export disk1 memory 1M
port=$(free_tcp_port)
ctl add-export t1 --start=manual --listen="tcp:127.0.0.1:$port" memory 1M
expect_exit 4 "$port" \
  "$CTL" add-export t2 --listen="tcp:127.0.0.1:$port" memory 1M

# 2: invalid argument, from the daemon, naming the parameter.
expect_exit 2 "'bad'.*unknown parameter 'foo'" \
  "$CTL" add-export bad memory foo=bar
expect_exit 2 "TLS" "$CTL" add-export tls1 --tls=require memory 1M
expect_exit 2 "threads" "$CTL" add-export th --threads=100000 memory 1M

# 7: the worker (the plugin) failed.
expect_exit 7 "$D/missing" "$CTL" add-export f1 file "$D/missing"

# 8: busy (a client is connected), then --force.
hold_client "nbd+unix:///disk1?socket=$D/disk1.sock"
wait_property disk1 ActiveConnections 1
expect_exit 8 'disk1' "$CTL" remove-export disk1
ctl remove-export --force disk1
wait_client_gone

# Nothing was changed by the failures.
ctl --json list > "$D/ctl.json"
json_check "$D/ctl.json" "[e['name'] for e in d] == ['t1']"

# 6: the daemon is not running (and the bus cannot activate it).
stop_daemon
expect_exit 6 'nbdkitd is not running or not reachable on the system bus' \
  "$CTL" list
expect_exit 6 'not running' "$CTL" add-export x memory 1M

echo "$0: OK"
