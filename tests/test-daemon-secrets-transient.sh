#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd: the libvirt-style example (docs/examples/nbdkitd-transient-export.py)
# creates a transient export with a secret passed as a file descriptor;
# the secret reaches the plugin (it serves it as data) but never appears in
# ps, /proc/PID/cmdline or environ, the state dir or any property; the
# export vanishes when its creator disconnects.  Secrets on a persistent
# export are refused.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires /usr/bin/python3 -c 'import gi, nbd; from gi.repository import Gio'
requires which cc
daemon_setup

# A plugin that reads its password with nbdkit_read_password and serves it.
cat > "$D/secretplugin.c" <<'C'
#include <stdlib.h>
#include <string.h>
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
static char *secret;
static int sp_config (const char *k, const char *v)
{
  if (strcmp (k, "password") == 0)
    return nbdkit_read_password (v, &secret);
  nbdkit_error ("unknown parameter '%s'", k);
  return -1;
}
static int sp_config_complete (void)
{
  if (!secret) { nbdkit_error ("password is required"); return -1; }
  return 0;
}
static void *sp_open (int ro) { return NBDKIT_HANDLE_NOT_NEEDED; }
static int64_t sp_get_size (void *h) { return 512; }
static int sp_pread (void *h, void *buf, uint32_t n, uint64_t off, uint32_t f)
{
  size_t len = strlen (secret);
  memset (buf, 0, n);
  if (off < len)
    memcpy (buf, secret + off, len - off < n ? len - off : n);
  return 0;
}
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
static struct nbdkit_plugin plugin = {
  .name = "secretplugin", .config = sp_config,
  .config_complete = sp_config_complete, .open = sp_open,
  .get_size = sp_get_size, .pread = sp_pread,
};
NBDKIT_REGISTER_PLUGIN (plugin)
C
cc -shared -fPIC -I"$abs_top_srcdir/include" -I"$abs_top_builddir" \
   -o "$D/secretplugin.so" "$D/secretplugin.c" || fail "cannot build the plugin"

start_daemon
secret="s3cr3t-$RANDOM$RANDOM"
export SECRET=$secret WAIT_FOR=$D/checked
/usr/bin/python3 "$abs_top_srcdir/docs/examples/nbdkitd-transient-export.py" \
    vm1 "$D/secretplugin.so" password "$D/vm1.sock" > "$D/example.log" 2>&1 &
example=$!
cleanup_fn kill_pid $example
for (( i=0; i<200; i++ )); do grep -q '^client read:' "$D/example.log" && break; sleep 0.05; done
cat "$D/example.log"
grep -qx "client read: $secret" "$D/example.log" || fail "the plugin did not get the secret"
grep -q '^State: running\|^URIs: nbd+unix:///vm1' "$D/example.log" || fail "example output"

# The secret is nowhere else.
worker=$(eprop vm1 MainPID)
[ "$worker" -gt 0 ] || fail "no worker"
unset SECRET
for pid in "$worker" "$DAEMON_PID"; do
  text=$(tr '\0' ' ' < /proc/$pid/cmdline)
  [[ $text == *"$secret"* ]] && fail "secret in cmdline of $pid"
  text=$(tr '\0' ' ' < /proc/$pid/environ)
  [[ $text == *"$secret"* ]] && fail "secret in environ of $pid"
done
tr '\0' ' ' < /proc/$worker/cmdline | grep -q 'password=-[0-9]' || fail "no password=-FD"
# (Not grep "$secret": grep's own arguments would show in ps.)
pslist=$(ps -eo args)
[[ $pslist == *"$secret"* ]] && fail "secret in ps"
grep -rq "$secret" "$D/state" && fail "secret in the state dir"
"${BUSCTL[@]}" introspect org.nbdkit.Daemon1 "$(export_path vm1)" | grep -q "$secret" &&
  fail "secret in a property"
eprop vm1 Parameters | grep -q '"password" "<secret>' || fail "Parameters: $(eprop vm1 Parameters)"
[ "$(eprop vm1 Persistent)" = false ] || fail "Persistent"
grep -q "$secret" "$D/daemon.log" && fail "secret in the daemon log"

# The creator leaves: the export goes, its socket and worker too.
touch "$D/checked"
wait $example || fail "example failed: $(cat "$D/example.log")"
for (( i=0; i<100; i++ )); do mcall GetExport s vm1 >/dev/null 2>&1 || break; sleep 0.05; done
mcall GetExport s vm1 >/dev/null 2>&1 && fail "transient export survived its creator"
for (( i=0; i<100; i++ )); do kill -0 "$worker" 2>/dev/null || break; sleep 0.05; done
kill -0 "$worker" 2>/dev/null && fail "worker of the transient export still runs"
[ -e "$D/vm1.sock" ] && fail "socket left behind"

# A persistent export with a secret is refused.
out=$(/usr/bin/python3 - "$D/secretplugin.so" <<'PY' 2>&1
import os, sys
from gi.repository import Gio, GLib
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
r, w = os.pipe(); os.write(w, b"x"); os.close(w)
fds = Gio.UnixFDList.new(); i = fds.append(r)
args = GLib.Variant("(ssasa(ss)a{sv})", ("p", sys.argv[1], [], [],
       {"secrets": GLib.Variant("a{sh}", {"password": i})}))
bus.call_with_unix_fd_list_sync("org.nbdkit.Daemon1", "/org/nbdkit/Daemon1",
    "org.nbdkit.Daemon1.Manager", "AddExport", args, None, 0, -1, fds, None)
PY
) && fail "persistent export with a secret accepted"
echo "$out" | grep -q 'org.nbdkit.Daemon1.Error.InvalidParameter' || fail "wrong error: $out"
echo PASS
