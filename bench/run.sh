#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Benchmark entry point: serves the same RAM disk from our nbdkit, Debian's
# nbdkit, qemu-nbd and nbd-server in turn and prints one markdown table of
# throughput, IOPS and connect latency.  Not part of `meson test`.
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
QEMU_NBD, NBD_SERVER, REQUEST_SIZE, CONNECT_COUNT.
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
for tool in nbdcopy nbdinfo cc pkg-config numfmt timeout; do
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
  for prog in randio connect-latency; do
    # shellcheck disable=SC2046 # pkg-config output must be word-split
    cc -O2 -Wall -Wextra -pthread -o "$work_dir/$prog" "$bench_dir/$prog.c" \
       $(pkg-config --cflags --libs libnbd) ||
      die "failed to build bench/$prog.c"
  done
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

# Both nbdkits take the same command line: the memory plugin, foreground,
# a pidfile written once the listening socket is ready.
start_nbdkit ()
{
  local name=$1 binary=$2 listen
  listen_unix_or_tcp "$name"
  if [[ $TRANSPORT == unix ]]; then
    listen=(-U "$socket_path")
    server_uri="nbd+unix:///?socket=$socket_path"
  else
    listen=(-i 127.0.0.1 -p "$tcp_port")
    server_uri="nbd://127.0.0.1:$tcp_port/"
  fi
  "$binary" -f -P "$work_dir/$name.pid" "${listen[@]}" memory "$DISK_SIZE" \
    >"$work_dir/$name.log" 2>&1 &
  server_pid=$!
  running_pids+=("$server_pid")
  wait_for_file "$work_dir/$name.pid" "$server_pid"
}

start_ours () { start_nbdkit ours "$NBDKIT"; }
start_debian () { start_nbdkit debian "$DEBIAN_NBDKIT"; }

start_qemu_nbd ()
{
  local image=$shm_dir/qemu-nbd.img listen
  listen_unix_or_tcp qemu-nbd
  truncate -s "$disk_bytes" "$image" || return 1
  if [[ $TRANSPORT == unix ]]; then
    listen=(-k "$socket_path")
    server_uri="nbd+unix:///?socket=$socket_path"
  else
    listen=(-b 127.0.0.1 -p "$tcp_port")
    server_uri="nbd://127.0.0.1:$tcp_port/"
  fi
  # --shared allows the 4-connection runs; -t keeps serving after each
  # client; writeback caching because tmpfs has no use for O_DIRECT.
  "$QEMU_NBD" -f raw -t --shared=16 --cache=writeback "${listen[@]}" \
    --pid-file="$work_dir/qemu-nbd.pid" "$image" \
    >"$work_dir/qemu-nbd.log" 2>&1 &
  server_pid=$!
  running_pids+=("$server_pid")
  if [[ $TRANSPORT == unix ]]; then
    wait_for_file "$socket_path" "$server_pid"
  else
    wait_for_file "$work_dir/qemu-nbd.pid" "$server_pid"
  fi
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

# ---------------------------------------------------------------- figures

# Figure keys in table order, with their row labels.
figures=(seq_first_write seq_write seq_read
         rand_read_q1_c1 rand_read_q32_c1 rand_read_q1_c4 rand_read_q32_c4
         rand_write_q1_c1 rand_write_q32_c1 rand_write_q1_c4 rand_write_q32_c4
         connect)
declare -A figure_label=(
  [seq_first_write]="Sequential first write (allocating, 1 run), MiB/s"
  [seq_write]="Sequential overwrite, MiB/s"
  [seq_read]="Sequential read, MiB/s"
  [rand_read_q1_c1]="4K random read IOPS, QD1, 1 conn"
  [rand_read_q32_c1]="4K random read IOPS, QD32, 1 conn"
  [rand_read_q1_c4]="4K random read IOPS, QD1, 4 conns"
  [rand_read_q32_c4]="4K random read IOPS, QD32, 4 conns"
  [rand_write_q1_c1]="4K random write IOPS, QD1, 1 conn"
  [rand_write_q32_c1]="4K random write IOPS, QD32, 1 conn"
  [rand_write_q1_c4]="4K random write IOPS, QD1, 4 conns"
  [rand_write_q32_c4]="4K random write IOPS, QD32, 4 conns"
  [connect]="Connect + handshake, µs (lower is better)"
)
declare -A result      # "server|figure" -> median, or "fail"
declare -A skip_reason # server -> why it has no column values
declare -A samples     # "server|figure" -> space-separated samples
declare -A server_pids server_uris server_broken
active_servers=()

median ()
{
  printf '%s\n' "$@" | sort -g |
    awk '{ v[NR] = $1 }
         END { if (NR % 2) print v[(NR + 1) / 2];
               else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Copy with nbdcopy and print MiB/s (wall clock around the whole copy,
# including its connections and final flush).
timed_copy ()
{
  local start end
  start=$EPOCHREALTIME
  timeout --kill-after=5 60 nbdcopy --request-size="$REQUEST_SIZE" "$1" "$2" ||
    return
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

# One sample of FIGURE from SERVER, appended to samples[].  A failure marks
# the figure failed for that server; a server that died or made a client
# time out is dropped from the rest of the run rather than stalling it.
sample ()
{
  local server=$1 figure=$2 value status
  [[ ${result[$server|$figure]:-} == fail ]] && return 1
  if [[ -n ${server_broken[$server]:-} ]] ||
      ! is_running "${server_pids[$server]}"; then
    [[ -z ${server_broken[$server]:-} ]] &&
      log "  $server: server is no longer running"
    server_broken[$server]=1
    result[$server|$figure]=fail
    return 1
  fi
  value=$(run_figure "$figure" "${server_uris[$server]}" \
            2>>"$work_dir/client.log")
  status=$?
  if [[ $status -ne 0 || -z $value ]]; then
    log "  $server $figure: FAILED, status $status" \
      "($(tail -n 1 "$work_dir/client.log"))"
    result[$server|$figure]=fail
    if [[ $status -eq 124 || $status -eq 137 ]]; then
      log "  $server: client timed out; no more figures from this server"
      server_broken[$server]=1
    fi
    return 1
  fi
  samples[$server|$figure]+=" $value"
}

# Every figure is measured REPEAT times, rotating over the servers inside
# each repeat, so that a slow spell on a shared machine hits all servers
# alike rather than whichever one happened to be running.
measure_all ()
{
  local figure server i repeat figure_started
  local -a values

  # Pre-fill: the first write allocates every page of each RAM disk and
  # leaves random data, so the reads that follow never hit holes or
  # all-zero pages.  It is reported on its own row (one run).
  for server in "${active_servers[@]}"; do
    sample "$server" seq_first_write &&
      result[$server|seq_first_write]=${samples[$server|seq_first_write]# }
    log "  $server: first write ${result[$server|seq_first_write]:-} MiB/s"
  done
  for figure in "${figures[@]}"; do
    [[ $figure == seq_first_write ]] && continue
    repeat=$REPEAT
    [[ $figure == seq_* ]] && repeat=$SEQ_REPEAT
    figure_started=$EPOCHREALTIME
    for ((i = 0; i < repeat; i++)); do
      for server in "${active_servers[@]}"; do
        sample "$server" "$figure"
      done
    done
    for server in "${active_servers[@]}"; do
      [[ ${result[$server|$figure]:-} == fail ]] && continue
      read -r -a values <<<"${samples[$server|$figure]}"
      result[$server|$figure]=$(median "${values[@]}")
      log "  $(printf '%-11s %-18s' "$server" "$figure")" \
        "${values[*]} -> ${result[$server|$figure]}"
    done
    log "  ($figure took $(awk -v s="$figure_started" -v e="$EPOCHREALTIME" \
      'BEGIN { printf "%.1f", e - s }') s)"
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
  echo "Medians of the runs. Higher is better except the connect row;" \
    "ratios above 1 there mean our server is slower."
  for server in "${servers[@]}"; do
    [[ -n ${skip_reason[$server]:-} ]] &&
      echo "- $(server_title "$server"): skipped, ${skip_reason[$server]}."
  done
  echo "- Baseline, nbdcopy from the /dev/shm source file to null:" \
    "$(format_value "${baseline:-}") MiB/s."
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
