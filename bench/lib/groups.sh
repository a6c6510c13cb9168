# shellcheck shell=bash disable=SC2004,SC2034,SC2154
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh library: the extra row groups (file plugin, nbd plugin
# proxy, TLS), whose servers are started just before their rows and
# stopped after them.  Sourced by bench/run.sh.
# (The globals are shared with bench/run.sh and the other bench/lib files;
# `shellcheck -x bench/run.sh` sees them all, this file alone does not.)

# The file, proxy and tls rows have servers of their own, started just
# before their rows and stopped after them.  Each start_GROUP_SERVER NAME
# sets server_pid and server_uri like the start_* above, or returns
# non-zero.  A server without a starter has no figures in that group.

# A copy of the random source for NAME to serve; prints its path.
copy_source ()
{
  local image=$shm_dir/$1.img
  cp "$source_file" "$image" || return 1
  echo "$image"
}

# File rows: the file plugin on a 1 GiB file in /dev/shm, filled from the
# random source.  qemu-nbd and nbd-server serve files in /dev/shm in the
# main rows already; their columns repeat those figures.
start_file_ours ()
{
  local image
  image=$(copy_source "$1") || return 1
  start_nbdkit "$1" "$NBDKIT" file "$image"
}

start_file_debian ()
{
  local image
  image=$(copy_source "$1") || return 1
  start_nbdkit "$1" "$DEBIAN_NBDKIT" file "$image"
}

# The nbd plugin's parameters for the upstream at URI (a main server).
nbd_upstream ()
{
  local port
  case $1 in
    nbd+unix://*) echo "socket=${1#*socket=}" ;;
    nbd://*)
      port=${1#nbd://127.0.0.1:}
      echo "hostname=127.0.0.1"
      echo "port=${port%%/*}" ;;
    *) return 1 ;;
  esac
}

# Proxy rows: each proxy forwards to the main server of its own kind,
# whose disk the first write filled with random data.
start_proxy_nbdkit ()
{
  local name=$1 binary=$2 upstream=$3
  local -a params
  mapfile -t params < <(nbd_upstream "$upstream")
  [[ ${#params[@]} -gt 0 ]] || return 1
  start_nbdkit "$name" "$binary" nbd "${params[@]}"
}

start_proxy_ours ()
{
  start_proxy_nbdkit "$1" "$NBDKIT" "${server_uris[ours]}"
}

start_proxy_debian ()
{
  start_proxy_nbdkit "$1" "$DEBIAN_NBDKIT" "${server_uris[debian]}"
}

start_proxy_qemu_nbd ()
{
  start_qemu_nbd_as "$1" "${server_uris[qemu-nbd]}"
}

# TLS rows: TLS-PSK required, each server's default priority string.
# The URI of a TLS server, from the plaintext form start_* set.
tls_uri ()
{
  case $1 in
    nbd+unix://*)
      echo "nbds+unix://$PSK_USER@${1#nbd+unix://}&tls-psk-file=$psk_file" ;;
    nbd://*) echo "nbds://$PSK_USER@${1#nbd://}?tls-psk-file=$psk_file" ;;
  esac
}

# The PSK file, made once: psk_dir/keys.psk is the name qemu-nbd wants.
make_psk ()
{
  psk_dir=$work_dir/psk
  psk_file=$psk_dir/keys.psk
  [[ -s $psk_file ]] && return 0
  command -v psktool >/dev/null || return 1
  mkdir -p "$psk_dir" &&
    psktool -u "$PSK_USER" -p "$psk_file" >/dev/null 2>&1
}

start_tls_nbdkit ()
{
  local name=$1 binary=$2
  start_nbdkit "$name" "$binary" --tls=require --tls-psk="$psk_file" \
    memory "$DISK_SIZE" || return 1
  server_uri=$(tls_uri "$server_uri")
}

start_tls_ours () { start_tls_nbdkit "$1" "$NBDKIT"; }
start_tls_debian () { start_tls_nbdkit "$1" "$DEBIAN_NBDKIT"; }

start_tls_qemu_nbd ()
{
  local image
  image=$(copy_source "$1") || return 1
  start_qemu_nbd_as "$1" "$image" \
    --object "tls-creds-psk,id=tls0,endpoint=server,dir=$psk_dir" \
    --tls-creds tls0 || return 1
  server_uri=$(tls_uri "$server_uri")
}

# Start the servers of a row group (not main) for every active server
# that has a starter for it.  Servers that fail get a group_skip reason.
start_group ()
{
  local group=$1 server target starter copy_timeout=300
  log "== $group rows"
  if [[ $group == tls ]] && ! make_psk; then
    for server in "${active_servers[@]}"; do
      group_skip[$server|$group]="psktool (gnutls-bin) missing or failed"
    done
    log "  psktool (gnutls-bin) missing or failed: no TLS rows"
    return
  fi
  for server in "${active_servers[@]}"; do
    starter=start_${group}_${server//-/_}
    declare -F "$starter" >/dev/null || continue
    target=$(target_of "$server" "$group")
    if [[ $group == proxy ]] && { [[ -n ${server_broken[$server]:-} ]] ||
        ! is_running "${server_pids[$server]}"; }; then
      group_skip[$server|$group]="its upstream (the main server) is not running"
      continue
    fi
    server_pid=
    server_uri=
    if ! "$starter" "$server-$group" ||
        ! wait_for_uri "$server_uri" "$server_pid"; then
      group_skip[$server|$group]="the $group server failed to start"
      log "  $target failed to start; server log:"
      tail -n 20 "$work_dir/$server-$group.log" >&2 2>/dev/null
      if [[ -n $server_pid ]]; then
        stop_pid "$server_pid"
        forget_pid "$server_pid"
      fi
      continue
    fi
    # The TLS memory disks start empty: fill them with the random data
    # the other servers serve (qemu-nbd's is a copy of it already).
    if [[ $group == tls && $server != qemu-nbd ]] &&
        ! timed_copy "$source_file" "$server_uri" >/dev/null \
          2>>"$work_dir/client.log"; then
      group_skip[$server|$group]="could not fill its disk over TLS"
      log "  $target: could not fill its disk over TLS"
      stop_pid "$server_pid"
      forget_pid "$server_pid"
      continue
    fi
    log "  $target ready: pid $server_pid, $server_uri"
    server_pids[$target]=$server_pid
    server_uris[$target]=$server_uri
  done
}

stop_group ()
{
  local group=$1 server target
  for server in "${active_servers[@]}"; do
    target=$(target_of "$server" "$group")
    [[ -n ${server_pids[$target]:-} ]] || continue
    stop_pid "${server_pids[$target]}"
    forget_pid "${server_pids[$target]}"
    unset "server_pids[$target]"
    rm -f "$shm_dir/$server-$group.img"
  done
}
