# shellcheck shell=bash disable=SC2004,SC2154
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh library: what a server costs and what the machine allows.
# The CPU time and memory of a server and its descendants (the Server CPU
# rows), the memory per idle connection row, and the memcpy and
# Unix-socket limits of the notes.  Sourced by bench/run.sh.
# (The globals are shared with bench/run.sh and the other bench/lib files;
# `shellcheck -x bench/run.sh` sees them all, this file alone does not.)

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
