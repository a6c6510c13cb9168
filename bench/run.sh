#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Benchmark entry point: serves the same RAM disk from our nbdkit, Debian's
# nbdkit, qemu-nbd and nbd-server in turn and prints one markdown table of
# throughput, IOPS, connect latency, server CPU and memory per connection,
# with extra rows for the file plugin, the nbd plugin as a proxy and TLS,
# and the machine's memcpy and Unix-socket limits in the notes.  Not part
# of `meson test`.
# See bench/README.md for what is measured and how.

set -u -o pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")

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

usage ()
{
  cat <<EOF
usage: bench/run.sh [--tcp] [--append] [--quick] [--servers=LIST]
                    [--repeat=N] [--duration=SECONDS] [--size=SIZE]

  --tcp             serve every server on TCP 127.0.0.1 instead of Unix sockets
  --append          also append the results to bench/RESULTS.md
  --quick           one run per figure, 0.5 s random-I/O runs (a smoke test)
  --servers=LIST    comma-separated subset of: ours,debian,qemu-nbd,nbd-server
  --repeat=N        runs per figure, median reported (default $REPEAT)
  --duration=S      seconds per random-I/O run (default $DURATION)
  --size=SIZE       RAM disk size (default $DISK_SIZE)

Environment: NBDKIT (our server, default build/server/nbdkit), DEBIAN_NBDKIT,
QEMU_NBD, NBD_SERVER, REQUEST_SIZE, CONNECT_COUNT, IDLE_CONNS.
EOF
}

for arg in "$@"; do
  case $arg in
    --tcp) TRANSPORT=tcp ;;
    --append) APPEND=1 ;;
    --quick) REPEAT=1; SEQ_REPEAT=1; DURATION=0.5 ;;
    --servers=*) SERVERS=${arg#*=} ;;
    --repeat=*) REPEAT=${arg#*=}; SEQ_REPEAT=$REPEAT ;;
    --duration=*) DURATION=${arg#*=} ;;
    --size=*) DISK_SIZE=${arg#*=} ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

log () { printf '%s\n' "$*" >&2; }
die () { log "run.sh: $*"; exit 1; }

[[ $TRANSPORT == unix || $TRANSPORT == tcp ]] || die "bad transport: $TRANSPORT"
[[ $REPEAT =~ ^[1-9][0-9]*$ && $SEQ_REPEAT =~ ^[1-9][0-9]*$ ]] ||
  die "bad repeat count: $REPEAT / $SEQ_REPEAT"
[[ $IDLE_CONNS =~ ^[1-9][0-9]*$ ]] || die "bad IDLE_CONNS: $IDLE_CONNS"
for tool in nbdcopy nbdinfo cc pkg-config numfmt timeout ps getconf; do
  command -v "$tool" >/dev/null || die "missing required tool: $tool"
done
pkg-config --exists libnbd || die "libnbd development files (libnbd-dev) missing"
disk_bytes=$(numfmt --from=iec "$DISK_SIZE") || die "bad size: $DISK_SIZE"

# Everything temporary lives here (sockets, configs, logs, helper binaries);
# disk images and the random source live in /dev/shm so they are RAM too.
work_dir=$(mktemp -d /tmp/nbd-bench.XXXXXX) || die "mktemp failed"
shm_dir=$(mktemp -d /dev/shm/nbd-bench.XXXXXX) || die "mktemp in /dev/shm failed"
running_pids=()

cleanup ()
{
  local pid
  for pid in "${running_pids[@]}"; do
    stop_pid "$pid"
  done
  rm -rf "$work_dir" "$shm_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

# ---------------------------------------------------------------- helpers

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
}

# The machine's limits (bench/limits.c), measured before any server runs:
# sets limit_memcpy and limit_unix in GiB/s, or leaves them empty.
measure_limits ()
{
  local output
  limit_memcpy=
  limit_unix=
  log "Measuring memcpy and same-CPU Unix-socket throughput ..."
  output=$(timeout --kill-after=5 120 "$work_dir/limits") ||
    { log "  limits failed"; return 0; }
  limit_memcpy=$(awk '$1 == "memcpy" { print $2 }' <<<"$output")
  limit_unix=$(awk '$1 == "unix" { print $2 }' <<<"$output")
  log "  memcpy ${limit_memcpy:-?} GiB/s, Unix socket on one CPU" \
    "${limit_unix:-?} GiB/s"
}

# PID and the PIDs of all its descendants (nbd-server forks one child
# per connection), one a line.
process_tree ()
{
  ps -e -o pid= -o ppid= |
    awk -v root="$1" '
      { parent[$1] = $2 }
      END {
        keep[root] = 1
        print root
        do {
          more = 0
          for (p in parent)
            if (!(p in keep) && (parent[p] in keep)) {
              keep[p] = 1
              print p
              more = 1
            }
        } while (more)
      }'
}

# CPU time of a server in clock ticks: utime + stime + cutime + cstime of
# its process and of each descendant still alive (children already reaped
# are in the parent's cutime and cstime).
server_ticks ()
{
  local pid line total=0
  local -a fields
  for pid in $(process_tree "$1"); do
    { line=$(<"/proc/$pid/stat"); } 2>/dev/null || continue
    read -r -a fields <<<"${line##*) }"
    total=$((total + fields[11] + fields[12] + fields[13] + fields[14]))
  done
  echo "$total"
}

# Proportional set size of a server in KiB: Pss summed over its process
# and all its descendants (pages shared after a fork count once in all).
server_pss ()
{
  local pid
  for pid in $(process_tree "$1"); do
    awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null
  done | awk '{ kib += $1 } END { print kib + 0 }'
}

# Wait (up to 3 s) until the server has no more processes than COUNT:
# nbd-server's per-connection children have exited and been reaped into
# its cutime/cstime.
settle_children ()
{
  local pid=$1 count=$2 i
  for ((i = 0; i < 30; i++)); do
    [[ $(process_tree "$pid" | wc -l) -le $count ]] && return 0
    sleep 0.1
  done
  return 0
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

# ---------------------------------------------------------------- servers
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

# ---------------------------------------------------------------- row groups
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

# ---------------------------------------------------------------- figures

# Figure keys in table order, with their row labels.  A prefix file_,
# proxy_ or tls_ names the group of servers a figure is measured on (see
# "row groups" above); the rest is the client command.  Keys ending in
# _cpu are measured along with the figure without the suffix; _pct and
# the file rows of qemu-nbd and nbd-server are computed at the end.
figures=(seq_first_write seq_write seq_read seq_read_cpu
         rand_read_q1_c1 rand_read_q32_c1 rand_read_q1_c4 rand_read_q32_c4
         rand_write_q1_c1 rand_write_q32_c1 rand_write_q1_c4 rand_write_q32_c4
         connect idle_rss
         file_seq_read file_rand_read_q32_c1
         proxy_seq_read proxy_rand_read_q32_c1
         tls_seq_read tls_seq_read_cpu tls_seq_read_pct)
declare -A figure_label=(
  [seq_first_write]="Sequential first write (allocating, 1 run), MiB/s"
  [seq_write]="Sequential overwrite, MiB/s"
  [seq_read]="Sequential read, MiB/s"
  [seq_read_cpu]="Sequential read, server CPU ms per GiB (lower is better)"
  [rand_read_q1_c1]="4K random read IOPS, QD1, 1 conn"
  [rand_read_q32_c1]="4K random read IOPS, QD32, 1 conn"
  [rand_read_q1_c4]="4K random read IOPS, QD1, 4 conns"
  [rand_read_q32_c4]="4K random read IOPS, QD32, 4 conns"
  [rand_write_q1_c1]="4K random write IOPS, QD1, 1 conn"
  [rand_write_q32_c1]="4K random write IOPS, QD32, 1 conn"
  [rand_write_q1_c4]="4K random write IOPS, QD1, 4 conns"
  [rand_write_q32_c4]="4K random write IOPS, QD32, 4 conns"
  [connect]="Connect + handshake, µs (lower is better)"
  [idle_rss]="Memory per idle connection, KiB ($IDLE_CONNS conns, 1 run; lower is better)"
  [file_seq_read]="File plugin: sequential read, MiB/s"
  [file_rand_read_q32_c1]="File plugin: 4K random read IOPS, QD32, 1 conn"
  [proxy_seq_read]="nbd plugin proxy: sequential read, MiB/s"
  [proxy_rand_read_q32_c1]="nbd plugin proxy: 4K random read IOPS, QD32, 1 conn"
  [tls_seq_read]="TLS (PSK): sequential read, MiB/s"
  [tls_seq_read_cpu]="TLS (PSK): sequential read, server CPU ms per GiB (lower is better)"
  [tls_seq_read_pct]="TLS read as % of ours plaintext sequential read"
)
declare -A result      # "server|figure" -> median, or "fail"
declare -A skip_reason # server -> why it has no column values
declare -A group_skip  # "server|group" -> why it has no values in a group
declare -A samples     # "server|figure" -> space-separated samples
# Keyed by target: the server's name for the main servers, SERVER/GROUP
# for the servers of a row group.
declare -A server_pids server_uris server_broken
active_servers=()
copy_timeout=60        # seconds before an nbdcopy counts as hung
clock_ticks=$(getconf CLK_TCK)

median ()
{
  printf '%s\n' "$@" | sort -g |
    awk '{ v[NR] = $1 }
         END { if (NR % 2) print v[(NR + 1) / 2];
               else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The group of a figure: main, file, proxy or tls.
figure_group ()
{
  case $1 in
    file_*) echo file ;;
    proxy_*) echo proxy ;;
    tls_*) echo tls ;;
    *) echo main ;;
  esac
}

# The key of SERVER's server in GROUP.
target_of ()
{
  if [[ $2 == main ]]; then echo "$1"; else echo "$1/$2"; fi
}

# Copy with nbdcopy and print MiB/s (wall clock around the whole copy,
# including its connections and final flush).
timed_copy ()
{
  local start end
  start=$EPOCHREALTIME
  timeout --kill-after=5 "$copy_timeout" \
    nbdcopy --request-size="$REQUEST_SIZE" "$1" "$2" || return
  end=$EPOCHREALTIME
  awk -v b="$disk_bytes" -v s="$start" -v e="$end" \
    'BEGIN { printf "%.0f\n", b / 1048576 / (e - s) }'
}

# The client command for one figure against one URI; prints one number.
run_figure ()
{
  local figure=$1 uri=$2 kind depth conns flag=
  case $figure in
    seq_first_write|seq_write) timed_copy "$source_file" "$uri" ;;
    seq_read) timed_copy "$uri" null: ;;
    rand_*)
      IFS=_ read -r _ kind depth conns <<<"$figure"
      [[ $kind == write ]] && flag=-w
      timeout --kill-after=5 $((${DURATION%.*} + 20)) "$work_dir/randio" \
        $flag -q "${depth#q}" -c "${conns#c}" -t "$DURATION" "$uri" ;;
    connect)
      timeout --kill-after=5 60 \
        "$work_dir/connect-latency" -n "$CONNECT_COUNT" -t "$CONNECT_SECONDS" \
        "$uri" ;;
  esac
}

# One sample of FIGURE from SERVER (its server in the figure's group),
# appended to samples[].  A failure marks the figure failed for that
# server; a server that died or made a client time out is dropped from
# the rest of the run (or of its group) rather than stalling it.  If the
# figure has a _cpu companion row, the server's CPU time during the run
# is recorded there, in ms per GiB.
sample ()
{
  local server=$1 figure=$2 value status group target pid
  local copy_timeout=$copy_timeout cpu_figure='' ticks processes
  group=$(figure_group "$figure")
  target=$(target_of "$server" "$group")
  pid=${server_pids[$target]:-}
  [[ -n $pid ]] || return 1
  [[ ${result[$server|$figure]:-} == fail ]] && return 1
  if [[ -n ${server_broken[$target]:-} ]] || ! is_running "$pid"; then
    [[ -z ${server_broken[$target]:-} ]] &&
      log "  $target: server is no longer running"
    server_broken[$target]=1
    result[$server|$figure]=fail
    return 1
  fi
  [[ $group == tls ]] && copy_timeout=300   # qemu-nbd's TLS is slow
  if [[ -n ${figure_label[${figure}_cpu]:-} ]]; then
    cpu_figure=${figure}_cpu
    processes=$(process_tree "$pid" | wc -l)
    ticks=$(server_ticks "$pid")
  fi
  value=$(run_figure "${figure#"$group"_}" "${server_uris[$target]}" \
            2>>"$work_dir/client.log")
  status=$?
  if [[ $status -ne 0 || -z $value ]]; then
    log "  $target $figure: FAILED, status $status" \
      "($(tail -n 1 "$work_dir/client.log"))"
    result[$server|$figure]=fail
    [[ -n $cpu_figure ]] && result[$server|$cpu_figure]=fail
    if [[ $status -eq 124 || $status -eq 137 ]]; then
      log "  $target: client timed out; no more figures from this server"
      server_broken[$target]=1
    fi
    return 1
  fi
  samples[$server|$figure]+=" $value"
  if [[ -n $cpu_figure ]]; then
    settle_children "$pid" "$processes"
    ticks=$(($(server_ticks "$pid") - ticks))
    samples[$server|$cpu_figure]+=" $(awk -v t="$ticks" -v hz="$clock_ticks" \
      -v b="$disk_bytes" 'BEGIN { printf "%.0f", t * 1000 / hz / (b / 1073741824) }')"
  fi
}

# The median of each server's samples of FIGURE, into result[].
summarize ()
{
  local figure=$1 server
  local -a values
  for server in "${active_servers[@]}"; do
    [[ ${result[$server|$figure]:-} == fail ]] && continue
    [[ -n ${samples[$server|$figure]:-} ]] || continue
    read -r -a values <<<"${samples[$server|$figure]}"
    result[$server|$figure]=$(median "${values[@]}")
    log "  $(printf '%-11s %-22s' "$server" "$figure")" \
      "${values[*]} -> ${result[$server|$figure]}"
  done
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

# Memory per idle connection, one run per server: Pss of the server (and
# its descendants) before and while bench/idle-conns holds IDLE_CONNS
# connections open after their handshakes, divided by IDLE_CONNS.
measure_idle ()
{
  local server pid before after line idle_pid idle_out idle_in
  for server in "${active_servers[@]}"; do
    pid=${server_pids[$server]}
    if [[ -n ${server_broken[$server]:-} ]] || ! is_running "$pid"; then
      result[$server|idle_rss]=fail
      continue
    fi
    before=$(server_pss "$pid")
    after=
    coproc IDLE {
      exec timeout --kill-after=5 300 "$work_dir/idle-conns" \
        -n "$IDLE_CONNS" "${server_uris[$server]}" 2>>"$work_dir/client.log"
    }
    # shellcheck disable=SC2153 # IDLE_PID is set by coproc
    idle_pid=$IDLE_PID
    idle_out=${IDLE[0]}
    idle_in=${IDLE[1]}
    running_pids+=("$idle_pid")
    line=
    read -r -t 120 line <&"$idle_out"
    if [[ $line == ready ]]; then
      sleep 1   # let the servers finish setting up each connection
      after=$(server_pss "$pid")
    fi
    # End of file on its standard input closes the connections.
    { exec {idle_in}>&-; } 2>/dev/null
    [[ -z $after ]] && stop_pid "$idle_pid"
    wait "$idle_pid" 2>/dev/null
    forget_pid "$idle_pid"
    { exec {idle_out}<&-; } 2>/dev/null
    if [[ -z $after ]]; then
      log "  $server idle_rss: FAILED ($(tail -n 1 "$work_dir/client.log"))"
      result[$server|idle_rss]=fail
      continue
    fi
    result[$server|idle_rss]=$(awk -v a="$after" -v b="$before" \
      -v n="$IDLE_CONNS" 'BEGIN { printf "%.1f", (a - b) / n }')
    log "  $(printf '%-11s %-22s' "$server" idle_rss)" \
      "Pss $before -> $after KiB -> ${result[$server|idle_rss]} KiB/conn"
  done
}

# Every figure is measured REPEAT times, rotating over the servers inside
# each repeat, so that a slow spell on a shared machine hits all servers
# alike rather than whichever one happened to be running.  The rows of
# a group run with that group's servers, started just before them and
# stopped after them.
measure_all ()
{
  local figure server i repeat figure_started group current=main

  # Pre-fill: the first write allocates every page of each RAM disk and
  # leaves random data, so the reads that follow never hit holes or
  # all-zero pages.  It is reported on its own row (one run).
  for server in "${active_servers[@]}"; do
    sample "$server" seq_first_write &&
      result[$server|seq_first_write]=${samples[$server|seq_first_write]# }
    log "  $server: first write ${result[$server|seq_first_write]:-} MiB/s"
  done
  for figure in "${figures[@]}"; do
    case $figure in
      seq_first_write|*_cpu|*_pct) continue ;;
    esac
    figure_started=$EPOCHREALTIME
    group=$(figure_group "$figure")
    if [[ $group != "$current" ]]; then
      [[ $current != main ]] && stop_group "$current"
      current=$group
      start_group "$group"
    fi
    if [[ $figure == idle_rss ]]; then
      measure_idle
    else
      repeat=$REPEAT
      [[ $figure == *seq_* ]] && repeat=$SEQ_REPEAT
      for ((i = 0; i < repeat; i++)); do
        for server in "${active_servers[@]}"; do
          sample "$server" "$figure"
        done
      done
      summarize "$figure"
      [[ -n ${figure_label[${figure}_cpu]:-} ]] && summarize "${figure}_cpu"
    fi
    log "  ($figure took $(awk -v s="$figure_started" -v e="$EPOCHREALTIME" \
      'BEGIN { printf "%.1f", e - s }') s)"
  done
  [[ $current != main ]] && stop_group "$current"
  derive_figures
}

# The figures that are not measured on their own.
derive_figures ()
{
  local server figure plain
  # qemu-nbd and nbd-server serve files in /dev/shm already: their file
  # rows are their main figures.
  for server in qemu-nbd nbd-server; do
    for figure in file_seq_read file_rand_read_q32_c1; do
      [[ -n ${result[$server|${figure#file_}]:-} ]] &&
        result[$server|$figure]=${result[$server|${figure#file_}]}
    done
  done
  plain=${result[ours|seq_read]:-}
  for server in "${active_servers[@]}"; do
    [[ ${result[$server|tls_seq_read]:-} == fail ]] &&
      result[$server|tls_seq_read_pct]=fail
    [[ ${result[$server|tls_seq_read]:-} =~ ^[0-9.]+$ &&
       $plain =~ ^[0-9.]+$ ]] || continue
    result[$server|tls_seq_read_pct]=$(awk -v t="${result[$server|tls_seq_read]}" \
      -v p="$plain" 'BEGIN { if (p > 0) printf "%.0f", 100 * t / p }')
  done
}

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

# ---------------------------------------------------------------- report

format_value ()
{
  case $1 in
    "") echo "—" ;;
    fail) echo "FAIL" ;;
    *) printf '%.0f' "$1" ;;
  esac
}

print_table ()
{
  local server figure row ours theirs
  local -a servers
  IFS=, read -r -a servers <<<"$SERVERS"

  row="| Figure ($TRANSPORT socket) |"
  for server in "${servers[@]}"; do row+=" $(server_title "$server") |"; done
  echo "$row ours / Debian nbdkit |"
  row="|---|"
  for server in "${servers[@]}"; do row+="---:|"; done
  echo "$row---:|"

  for figure in "${figures[@]}"; do
    row="| ${figure_label[$figure]} |"
    for server in "${servers[@]}"; do
      row+=" $(format_value "${result[$server|$figure]:-}") |"
    done
    ours=${result[ours|$figure]:-}
    theirs=${result[debian|$figure]:-}
    if [[ $ours =~ ^[0-9.]+$ && $theirs =~ ^[0-9.]+$ ]] &&
        awk -v t="$theirs" 'BEGIN { exit !(t > 0) }'; then
      row+=" $(awk -v o="$ours" -v t="$theirs" 'BEGIN { printf "%.2f", o / t }') |"
    else
      row+=" — |"
    fi
    echo "$row"
  done
  echo
  echo "Medians of the runs. Higher is better except the rows marked" \
    "\"lower is better\"; ratios above 1 there mean our server is slower" \
    "or uses more."
  for server in "${servers[@]}"; do
    [[ -n ${skip_reason[$server]:-} ]] &&
      echo "- $(server_title "$server"): skipped, ${skip_reason[$server]}."
  done
  echo "- Baseline, nbdcopy from the /dev/shm source file to null:" \
    "$(format_value "${baseline:-}") MiB/s."
  print_limits
  print_row_notes "${servers[@]}"
  return 0
}

# The machine limits, and our sequential read against the Unix one.
print_limits ()
{
  local line ours=${result[ours|seq_read]:-}
  line="- Machine limits (bench/limits.c, before any server started):"
  line+=" memcpy ${limit_memcpy:-?} GiB/s (one thread, 256 MiB buffers,"
  line+=" 8 copies); Unix socket with writer and reader pinned to one CPU"
  line+=" ${limit_unix:-?} GiB/s (256 KiB writes, 2 GiB, default socket"
  line+=" buffers)."
  if [[ $ours =~ ^[0-9.]+$ && ${limit_unix:-} =~ ^[0-9.]+$ ]]; then
    line+=" Our sequential read is $(awk -v o="$ours" -v u="$limit_unix" \
      'BEGIN { if (u > 0) printf "%.0f", 100 * o / (u * 1024) }')% of that"
    line+=" Unix-socket limit"
    [[ $TRANSPORT == tcp ]] && line+=" (though it ran over TCP here)"
    line+="."
  fi
  echo "$line"
}

# How the extra rows were measured, and why a cell is empty.
print_row_notes ()
{
  local server group pct line='' upstream='socket=UPSTREAM' qemu_uri
  qemu_uri='nbd+unix:///?socket=…'
  if [[ $TRANSPORT == tcp ]]; then
    upstream='hostname=127.0.0.1 port=UPSTREAM'
    qemu_uri='nbd://127.0.0.1:PORT/'
  fi
  echo "- Server CPU rows: utime + stime + cutime + cstime from" \
    "/proc/PID/stat of the server and its live descendants, read around" \
    "each sequential-read run (the same runs as the MiB/s row), in ms per" \
    "GiB read; median."
  echo "- Memory per idle connection: one run per server. bench/idle-conns" \
    "holds $IDLE_CONNS connections open after their handshakes; the row is" \
    "(Pss while they are open - Pss before) / $IDLE_CONNS, Pss summed over" \
    "the server process and all its descendants (/proc/PID/smaps_rollup)."
  echo "- File plugin rows: ours and Debian's nbdkit run \`nbdkit file\` on a" \
    "$DISK_SIZE copy of the random source in /dev/shm. The qemu-nbd and" \
    "nbd-server columns repeat their main sequential-read and QD32 1-conn" \
    "figures, because they serve files in /dev/shm in every row."
  echo "- nbd plugin proxy rows: \`nbdkit nbd $upstream\` in front of" \
    "the same nbdkit's main memory server; qemu-nbd serves the main" \
    "qemu-nbd's NBD URI (\`qemu-nbd -f raw $qemu_uri\`);" \
    "nbd-server: —, it has no proxy mode."
  for server in ours debian qemu-nbd; do
    [[ ${result[$server|tls_seq_read]:-} =~ ^[0-9.]+$ &&
       ${result[$server|seq_read]:-} =~ ^[0-9.]+$ ]] || continue
    pct=$(awk -v t="${result[$server|tls_seq_read]}" \
      -v p="${result[$server|seq_read]}" \
      'BEGIN { if (p > 0) printf "%.0f", 100 * t / p }')
    line+="${line:+, }$(server_title "$server") ${pct}%"
  done
  [[ -n $line ]] &&
    line=" TLS read as % of the same server's plaintext read: $line."
  echo "- TLS rows: TLS-PSK required (a psktool key, identity $PSK_USER)," \
    "each server's default priority string. Both nbdkits serve a memory" \
    "disk filled over TLS first, qemu-nbd (tls-creds-psk) a copy of the" \
    "random source. nbd-server: —, it supports only X.509 certificates," \
    "not PSK.$line"
  for server in "$@"; do
    for group in file proxy tls; do
      [[ -n ${group_skip[$server|$group]:-} ]] &&
        echo "- $(server_title "$server"), $group rows: —," \
          "${group_skip[$server|$group]}."
    done
  done
  return 0
}

print_header ()
{
  local server version
  local -a servers
  IFS=, read -r -a servers <<<"$SERVERS"
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- Machine: $(nproc) CPUs ($(grep -m 1 'model name' /proc/cpuinfo |
    cut -d: -f2 | sed 's/^ *//')), kernel $(uname -r)," \
    "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
    "load average at start $load_at_start"
  for server in "${servers[@]}"; do
    if [[ -n ${skip_reason[$server]:-} ]]; then
      version="skipped, ${skip_reason[$server]}"
    else
      version=$(server_version "$server" 2>/dev/null)
    fi
    echo "- $(server_title "$server"): $version"
  done
  echo "- Client: libnbd $(pkg-config --modversion libnbd)," \
    "$(nbdcopy --version 2>/dev/null | head -n 1)"
  echo "- Settings: ${DISK_SIZE} RAM disk, transport $TRANSPORT," \
    "nbdcopy --request-size=$REQUEST_SIZE (default connections/threads)," \
    "random I/O ${DURATION} s per run (QD is per connection)," \
    "up to $CONNECT_COUNT connects (${CONNECT_SECONDS} s) per latency run," \
    "$SEQ_REPEAT runs per nbdcopy figure and $REPEAT per other figure"
  echo
}

# ---------------------------------------------------------------- main

started=$SECONDS
load_at_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
awk -v l="${load_at_start%% *}" 'BEGIN { exit !(l > 0.5) }' &&
  log "Warning: load average is $load_at_start; other work will skew the results."
build_helpers
measure_limits
make_random_source
baseline=$(timed_copy "$source_file" null: 2>/dev/null) || baseline=fail

IFS=, read -r -a server_list <<<"$SERVERS"
for server in "${server_list[@]}"; do
  case $server in
    ours|debian|qemu-nbd|nbd-server) start_server "$server" ;;
    *) die "unknown server: $server" ;;
  esac
done
if [[ ${#active_servers[@]} -gt 0 ]]; then
  measure_all
else
  log "No server could be started."
fi
for server in "${active_servers[@]}"; do
  stop_pid "${server_pids[$server]}"
  forget_pid "${server_pids[$server]}"
done
log "Finished in $((SECONDS - started)) s."

report=$({ print_header; print_table; })
echo "$report"
if [[ $APPEND == 1 ]]; then
  { echo; echo "$report"; } >>"$bench_dir/RESULTS.md"
  log "Appended to $bench_dir/RESULTS.md"
fi
