# shellcheck shell=bash disable=SC2154
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh library: settings and their defaults, logging, cleanup,
# starting and stopping processes, the client helpers, the random source
# and the readiness waits.  Sourced by bench/run.sh, not run on its own.
# (The globals are shared with bench/run.sh and the other bench/lib files;
# `shellcheck -x bench/run.sh` sees them all, this file alone does not.)

# Settings, all overridable from the environment (flags below set the same).
NBDKIT=${NBDKIT:-$repo_dir/build/server/nbdkit}
if [[ -z ${DEBIAN_NBDKIT:-} ]]; then
  DEBIAN_NBDKIT=/usr/sbin/nbdkit
  [[ -x $DEBIAN_NBDKIT ]] || DEBIAN_NBDKIT=/usr/bin/nbdkit
fi
QEMU_NBD=${QEMU_NBD:-qemu-nbd}
NBD_SERVER=${NBD_SERVER:-nbd-server}
SERVERS=${SERVERS:-ours,debian,qemu-nbd,nbd-server}
DISK_SIZE=${DISK_SIZE:-1G}           # size of the RAM disk each server serves
REPEAT=${REPEAT:-5}                  # runs per figure; the median is reported
SEQ_REPEAT=${SEQ_REPEAT:-3}          # the same for the (slower) nbdcopy rows
DURATION=${DURATION:-1}              # seconds per random-I/O run
REQUEST_SIZE=${REQUEST_SIZE:-262144} # nbdcopy --request-size
CONNECT_COUNT=${CONNECT_COUNT:-200}  # connections per connect-latency run
CONNECT_SECONDS=${CONNECT_SECONDS:-1} # ... or fewer (at least 10) after this
IDLE_CONNS=${IDLE_CONNS:-200}        # idle connections for the memory row
PSK_USER=${PSK_USER:-alice}          # TLS-PSK identity for the TLS rows
TRANSPORT=${TRANSPORT:-unix}         # unix or tcp (127.0.0.1), for every server
APPEND=${APPEND:-0}                  # 1: also append the table to RESULTS.md

log () { printf '%s\n' "$*" >&2; }
die () { log "run.sh: $*"; exit 1; }

cleanup ()
{
  local pid
  for pid in "${running_pids[@]}"; do
    stop_pid "$pid"
  done
  rm -rf "$work_dir" "$shm_dir"
}

# A process counts as running until it is gone or a zombie (a daemonized
# nbd-server is not our child, so we cannot reap it).
is_running ()
{
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

stop_pid ()
{
  local pid=$1 i
  is_running "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    is_running "$pid" || break
    sleep 0.1
  done
  is_running "$pid" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

forget_pid ()
{
  local kept=() pid
  for pid in "${running_pids[@]}"; do
    [[ $pid == "$1" ]] || kept+=("$pid")
  done
  running_pids=("${kept[@]}")
}

build_helpers ()
{
  local prog
  for prog in randio connect-latency idle-conns; do
    # shellcheck disable=SC2046 # pkg-config output must be word-split
    cc -O2 -Wall -Wextra -pthread -o "$work_dir/$prog" "$bench_dir/$prog.c" \
       $(pkg-config --cflags --libs libnbd) ||
      die "failed to build bench/$prog.c"
  done
  cc -O2 -Wall -Wextra -o "$work_dir/limits" "$bench_dir/limits.c" ||
    die "failed to build bench/limits.c"
  cc -O2 -Wall -Wextra -pthread -o "$work_dir/rawio" "$bench_dir/rawio.c" ||
    die "failed to build bench/rawio.c"
}

make_random_source ()
{
  source_file=$shm_dir/source.img
  log "Writing $DISK_SIZE of random data to $source_file ..."
  head -c "$disk_bytes" /dev/urandom >"$source_file" ||
    die "cannot create the random source file"
}

# A free TCP port on 127.0.0.1 (nothing answers a connect there).
pick_port ()
{
  local port
  for ((port = 20000 + RANDOM % 20000; ; port++)); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

wait_for_file ()
{
  local file=$1 pid=$2 i
  for ((i = 0; i < 100; i++)); do
    [[ -e $file ]] && return 0
    is_running "$pid" || return 1
    sleep 0.1
  done
  return 1
}

# Wait until the URI answers a handshake with the right size.
wait_for_uri ()
{
  local uri=$1 pid=$2 i size
  for ((i = 0; i < 100; i++)); do
    size=$(timeout 5 nbdinfo --size "$uri" 2>/dev/null) && break
    is_running "$pid" || return 1
    sleep 0.1
  done
  if [[ ${size:-} != "$disk_bytes" ]]; then
    log "  server answered size '${size:-nothing}', expected $disk_bytes"
    return 1
  fi
}
