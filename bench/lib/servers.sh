# shellcheck shell=bash disable=SC2004,SC2034,SC2154
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh library: the main servers (one column each), how each one
# is started, its binary, version and title.  Sourced by bench/run.sh.
# (The globals are shared with bench/run.sh and the other bench/lib files;
# `shellcheck -x bench/run.sh` sees them all, this file alone does not.)

# Each start_* sets server_pid and server_uri, or returns non-zero.

listen_unix_or_tcp ()
{
  socket_path=$work_dir/$1.sock
  tcp_port=
  [[ $TRANSPORT == tcp ]] && tcp_port=$(pick_port)
  return 0
}

# Both nbdkits take the same command line: foreground, a pidfile written
# once the listening socket is ready, then ARGS (options, the plugin and
# its parameters).  start_nbdkit NAME BINARY ARGS...
start_nbdkit ()
{
  local name=$1 binary=$2 listen
  shift 2
  listen_unix_or_tcp "$name"
  if [[ $TRANSPORT == unix ]]; then
    listen=(-U "$socket_path")
    server_uri="nbd+unix:///?socket=$socket_path"
  else
    listen=(-i 127.0.0.1 -p "$tcp_port")
    server_uri="nbd://127.0.0.1:$tcp_port/"
  fi
  "$binary" -f -P "$work_dir/$name.pid" "${listen[@]}" "$@" \
    >"$work_dir/$name.log" 2>&1 &
  server_pid=$!
  running_pids+=("$server_pid")
  wait_for_file "$work_dir/$name.pid" "$server_pid"
}

start_ours () { start_nbdkit ours "$NBDKIT" memory "$DISK_SIZE"; }
start_debian () { start_nbdkit debian "$DEBIAN_NBDKIT" memory "$DISK_SIZE"; }

# start_qemu_nbd_as NAME FILENAME [OPTIONS...]: qemu-nbd serving FILENAME
# (a raw image, or an nbd URI when it is a proxy).
start_qemu_nbd_as ()
{
  local name=$1 filename=$2 listen
  shift 2
  listen_unix_or_tcp "$name"
  if [[ $TRANSPORT == unix ]]; then
    listen=(-k "$socket_path")
    server_uri="nbd+unix:///?socket=$socket_path"
  else
    listen=(-b 127.0.0.1 -p "$tcp_port")
    server_uri="nbd://127.0.0.1:$tcp_port/"
  fi
  # --shared=0 (no limit on clients) allows the 4-connection runs and the
  # idle connections; -t keeps serving after each client; writeback
  # caching because tmpfs has no use for O_DIRECT.
  "$QEMU_NBD" -f raw -t --shared=0 --cache=writeback "${listen[@]}" \
    --pid-file="$work_dir/$name.pid" "$@" "$filename" \
    >"$work_dir/$name.log" 2>&1 &
  server_pid=$!
  running_pids+=("$server_pid")
  if [[ $TRANSPORT == unix ]]; then
    wait_for_file "$socket_path" "$server_pid"
  else
    wait_for_file "$work_dir/$name.pid" "$server_pid"
  fi
}

start_qemu_nbd ()
{
  local image=$shm_dir/qemu-nbd.img
  truncate -s "$disk_bytes" "$image" || return 1
  start_qemu_nbd_as qemu-nbd "$image"
}

# nbd-server daemonizes (its -d mode serves one client only), so its PID
# comes from the pidfile.  It forks one child per connection.
start_nbd_server ()
{
  local image=$shm_dir/nbd-server.img config=$work_dir/nbd-server.conf
  local pidfile=$work_dir/nbd-server.pid i
  listen_unix_or_tcp nbd-server
  truncate -s "$disk_bytes" "$image" || return 1
  {
    echo "[generic]"
    echo "  allowlist = false"
    if [[ $TRANSPORT == unix ]]; then
      echo "  unixsock = $socket_path"
      server_uri="nbd+unix:///bench?socket=$socket_path"
    else
      echo "  listenaddr = 127.0.0.1"
      echo "  port = $tcp_port"
      server_uri="nbd://127.0.0.1:$tcp_port/bench"
    fi
    echo "[bench]"
    echo "  exportname = $image"
  } >"$config"
  "$NBD_SERVER" -C "$config" -p "$pidfile" >"$work_dir/nbd-server.log" 2>&1 ||
    return 1
  for ((i = 0; i < 100; i++)); do
    [[ -s $pidfile ]] && break
    sleep 0.1
  done
  server_pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ $server_pid =~ ^[0-9]+$ ]] || return 1
  running_pids+=("$server_pid")
}

# The binary of each server (empty if not on PATH), its version and title.
server_binary ()
{
  case $1 in
    ours) echo "$NBDKIT" ;;
    debian) echo "$DEBIAN_NBDKIT" ;;
    qemu-nbd) command -v "$QEMU_NBD" ;;
    nbd-server) command -v "$NBD_SERVER" ;;
  esac
}

server_version ()
{
  local binary version
  binary=$(server_binary "$1")
  case $1 in
    ours|debian|qemu-nbd)
      version=$("$binary" --version 2>/dev/null | head -n 1) ;;
    nbd-server)
      version=$("$binary" -V 2>&1 | grep -m 1 -o 'version.*') ;;
  esac
  echo "${version:-$binary, version unknown}"
}

server_title ()
{
  case $1 in
    ours) echo "ours" ;;
    debian) echo "nbdkit (Debian)" ;;
    qemu-nbd) echo "qemu-nbd" ;;
    nbd-server) echo "nbd-server" ;;
  esac
}

# Start SERVER's main server; on failure, leave its column empty with a
# skip_reason.
start_server ()
{
  local server=$1 binary
  binary=$(server_binary "$server")
  if [[ -z $binary || ! -x $binary ]]; then
    skip_reason[$server]="not installed (${binary:-not on PATH})"
    log "== $server: skipped, ${skip_reason[$server]}"
    return
  fi
  log "== $server: $(server_version "$server" || true) over $TRANSPORT"
  server_pid=
  server_uri=
  if ! "start_${server//-/_}" ||
      ! wait_for_uri "$server_uri" "$server_pid"; then
    skip_reason[$server]="failed to start"
    log "  failed to start; server log:"
    tail -n 20 "$work_dir/$server.log" >&2 2>/dev/null
    if [[ -n $server_pid ]]; then
      stop_pid "$server_pid"
      forget_pid "$server_pid"
    fi
    return
  fi
  log "  ready: pid $server_pid, $server_uri"
  server_pids[$server]=$server_pid
  server_uris[$server]=$server_uri
  active_servers+=("$server")
}
