# shellcheck shell=bash disable=SC2034,SC2153,SC2154
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh library: the figures (table rows) and their shared state,
# how one sample of a figure is taken, the medians, and the measuring
# loop over figures, repeats and servers.  Sourced by bench/run.sh.
# (The globals are shared with bench/run.sh and the other bench/lib files;
# `shellcheck -x bench/run.sh` sees them all, this file alone does not.)

# Figure keys in table order, with their row labels.  A prefix file_,
# proxy_ or tls_ names the group of servers a figure is measured on (see
# bench/lib/groups.sh); the rest is the client command.  Keys ending in
# _cpu are measured along with the figure without the suffix; _pct and
# the file rows of qemu-nbd and nbd-server are computed at the end.
figures=(seq_first_write seq_write seq_read seq_read_cpu rawseq_read
         rand_read_q1_c1 rand_read_q32_c1 rand_read_q1_c4 rand_read_q32_c4
         rand_write_q1_c1 rand_write_q32_c1 rand_write_q1_c4 rand_write_q32_c4
         raw_read_q32_c1 raw_write_q32_c1
         connect idle_rss
         file_seq_read file_rand_read_q32_c1 file_raw_read_q32_c1
         proxy_seq_read proxy_rand_read_q32_c1 proxy_raw_read_q32_c1
         tls_seq_read tls_seq_read_cpu tls_seq_read_pct)
declare -A figure_label=(
  [seq_first_write]="Sequential first write (allocating, 1 run), MiB/s"
  [seq_write]="Sequential overwrite, MiB/s"
  [seq_read]="Sequential read, MiB/s"
  [seq_read_cpu]="Sequential read, server CPU ms per GiB (lower is better)"
  [rawseq_read]="Sequential read, 256 KiB requests at QD8, batching client (rawio), MiB/s"
  [rand_read_q1_c1]="4K random read IOPS, QD1, 1 conn"
  [rand_read_q32_c1]="4K random read IOPS, QD32, 1 conn"
  [rand_read_q1_c4]="4K random read IOPS, QD1, 4 conns"
  [rand_read_q32_c4]="4K random read IOPS, QD32, 4 conns"
  [rand_write_q1_c1]="4K random write IOPS, QD1, 1 conn"
  [rand_write_q32_c1]="4K random write IOPS, QD32, 1 conn"
  [rand_write_q1_c4]="4K random write IOPS, QD1, 4 conns"
  [rand_write_q32_c4]="4K random write IOPS, QD32, 4 conns"
  [raw_read_q32_c1]="4K random read IOPS, QD32, 1 conn, batching client (rawio)"
  [raw_write_q32_c1]="4K random write IOPS, QD32, 1 conn, batching client (rawio)"
  [connect]="Connect + handshake, µs (lower is better)"
  [idle_rss]="Memory per idle connection, KiB ($IDLE_CONNS conns, 1 run; lower is better)"
  [file_seq_read]="File plugin: sequential read, MiB/s"
  [file_rand_read_q32_c1]="File plugin: 4K random read IOPS, QD32, 1 conn"
  [file_raw_read_q32_c1]="File plugin: 4K random read IOPS, QD32, 1 conn, rawio"
  [proxy_seq_read]="nbd plugin proxy: sequential read, MiB/s"
  [proxy_rand_read_q32_c1]="nbd plugin proxy: 4K random read IOPS, QD32, 1 conn"
  [proxy_raw_read_q32_c1]="nbd plugin proxy: 4K random read IOPS, QD32, 1 conn, rawio"
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
  local figure=$1 uri=$2 client kind depth conns flag=
  case $figure in
    seq_first_write|seq_write) timed_copy "$source_file" "$uri" ;;
    seq_read) timed_copy "$uri" null: ;;
    rand_*|raw_*)
      IFS=_ read -r client kind depth conns <<<"$figure"
      [[ $kind == write ]] && flag=-w
      [[ $client == raw ]] && client=rawio || client=randio
      timeout --kill-after=5 $((${DURATION%.*} + 20)) "$work_dir/$client" \
        $flag -q "${depth#q}" -c "${conns#c}" -t "$DURATION" "$uri" ;;
    rawseq_read)
      # rawio counts requests of 256 KiB: 4 make a MiB.
      timeout --kill-after=5 $((${DURATION%.*} + 20)) "$work_dir/rawio" \
        -s -b 262144 -q 8 -c 1 -t "$DURATION" "$uri" |
        awk '{ printf "%.0f\n", $1 / 4 }' ;;
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
    for figure in file_seq_read file_rand_read_q32_c1 file_raw_read_q32_c1; do
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
