#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The nbd plugin's command line: --dump-plugin reports libnbd's features;
# --help and the man page list the same parameters; every bad
# combination is refused before serving, with an error that names the
# problem (none or two connection modes, port= or arg= without their
# mode, shared=false with command=/socket-fd=, dynamic-export=true with
# shared=true, command= or export=, export= with uri=, a URI that is not
# an NBD URI, bad numbers, tls= values, socket-fd= that is not a
# socket, unknown keys).

source "$srcdir/functions.sh"
requires_plugin nbd

make_tmpdir

# --- --dump-plugin. -----------------------------------------------------
"$NBDKIT" nbd --dump-plugin >"$tmpdir/dump" || fail "--dump-plugin failed"
version=$(pkg-config --modversion libnbd 2>/dev/null ||
          nbdsh -c 'print(h.get_version())' 2>/dev/null || :)
grep -qx "libnbd_version=${version:-[0-9.]*}" "$tmpdir/dump" ||
  grep -qx 'libnbd_version=[0-9][0-9.]*' "$tmpdir/dump" ||
  fail "no libnbd_version line: $(cat "$tmpdir/dump")"
for k in tls uri vsock dynamic_list; do
  grep -qx "libnbd_$k=[01]" "$tmpdir/dump" || fail "no libnbd_$k= line"
done
grep -qx 'magic_config_key=uri' "$tmpdir/dump" ||
  fail "the magic key is not uri"
grep -qx 'thread_model=parallel' "$tmpdir/dump" ||
  fail "the thread model is not parallel"

# --- --help and the man page. -------------------------------------------
"$NBDKIT" nbd --help >"$tmpdir/help" || fail "--help failed"
pod=$srcdir/../plugins/nbd/nbdkit-nbd-plugin.pod
for p in uri socket hostname vhost-cid port socket-fd command arg export \
         dynamic-export retry shared tls tls-certificates tls-verify \
         tls-username tls-psk; do
  grep -q "^\[\?$p[]=]" "$tmpdir/help" || fail "--help does not list $p="
  grep -q "^=item \[\?B<$p=" "$pod" || fail "the man page does not list $p="
done

# --- Errors. -----------------------------------------------------------
# refused MESSAGE-REGEX ARGS...: the plugin refuses ARGS with MESSAGE.
refused ()
{
  local want=$1
  shift
  if timeout 30 "$NBDKIT" -f -U "$tmpdir/never.sock" nbd "$@" \
       >"$tmpdir/out" 2>&1; then
    fail "accepted: nbd $*"
  fi
  grep -q -- "$want" "$tmpdir/out" ||
    fail "nbd $*: expected /$want/, got: $(cat "$tmpdir/out")"
  [ ! -e "$tmpdir/never.sock" ] || fail "nbd $*: nbdkit started listening"
}

refused 'one of socket=, hostname=, vhost-cid=, uri=, socket-fd= or command= must be given'
refused 'one of socket=, hostname=, vhost-cid=, uri=, socket-fd= or command= must be given' \
  export=foo
refused 'not both socket= and hostname=' socket=/s hostname=h
refused 'not both uri= and command=' nbd://h command=qemu-nbd
refused 'not both hostname= and vhost-cid=' hostname=h vhost-cid=2
refused 'not both vsock= and socket-fd=' vsock=2 socket-fd=0
refused 'socket= may only be given once' socket=/a socket=/b
refused 'port= can only be used with hostname= or vhost-cid=' socket=/s port=1
refused 'port= must not be empty' hostname=h port=
refused 'port: number is out of range' hostname=h port=65536
refused 'arg= can only be used with command=' socket=/s arg=x
refused 'command= implies shared=true' command=qemu-nbd shared=false
refused 'socket-fd= implies shared=true' socket-fd=0 shared=false
refused 'dynamic-export=true cannot be used with shared=true' \
  socket=/s shared=true dynamic-export=true
refused 'dynamic-export=true cannot be used with command=' \
  command=qemu-nbd dynamic-export=true
refused 'export= cannot be used with dynamic-export=true' \
  socket=/s export=foo dynamic-export=true
refused 'export= cannot be used with uri=' uri=nbd://h/x export=foo
refused 'not an NBD URI' http://example.com/
refused 'not an NBD URI' /just/a/path
refused 'tls=maybe: expecting off, on or require' socket=/s tls=maybe
refused 'retry' socket=/s retry=-1
refused 'retry' socket=/s retry=lots
refused 'shared' socket=/s shared=perhaps
refused 'vhost-cid' vhost-cid=two
refused 'port' vhost-cid=2 port=99999999999
refused 'socket-fd=-1: must not be negative' socket-fd=-1
refused 'socket-fd=99: Bad file descriptor' socket-fd=99
refused 'socket-fd=0: not a socket' socket-fd=0 </dev/null
refused "unknown parameter 'sockets'" sockets=/s

# A mode is accepted as written (no connection is attempted until a
# client arrives): these start and are stopped by --run.
for args in "socket=/nonexistent" "hostname=localhost port=nbd" \
            "vhost-cid=2 port=10809" "nbd+unix:///x?socket=/nonexistent" \
            "socket=/s tls=require tls-psk=/nonexistent tls-username=u"; do
  # shellcheck disable=SC2086
  "$NBDKIT" -U - nbd $args --run 'true' ||
    fail "valid parameters were refused: $args"
done

echo "$0: ok"
