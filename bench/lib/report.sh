# shellcheck shell=bash disable=SC2153,SC2154
# SPDX-License-Identifier: BSD-3-Clause
# bench/run.sh library: the markdown report (header, table and notes).
# Sourced by bench/run.sh.
# (The globals are shared with bench/run.sh and the other bench/lib files;
# `shellcheck -x bench/run.sh` sees them all, this file alone does not.)

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
  local line ours=${result[ours|seq_read]:-} raw=${result[ours|rawseq_read]:-}
  line="- Machine limits (bench/limits.c, before any server started):"
  line+=" memcpy ${limit_memcpy:-?} GiB/s (one thread, 256 MiB buffers,"
  line+=" 8 copies); Unix socket with writer and reader pinned to one CPU"
  line+=" ${limit_unix:-?} GiB/s (256 KiB writes, 2 GiB, default socket"
  line+=" buffers)."
  if [[ $ours =~ ^[0-9.]+$ && ${limit_unix:-} =~ ^[0-9.]+$ ]]; then
    line+=" Our sequential read is $(awk -v o="$ours" -v u="$limit_unix" \
      'BEGIN { if (u > 0) printf "%.0f", 100 * o / (u * 1024) }')% of that"
    line+=" Unix-socket limit"
    [[ $raw =~ ^[0-9.]+$ ]] &&
      line+=" ($(awk -v o="$raw" -v u="$limit_unix" \
        'BEGIN { if (u > 0) printf "%.0f", 100 * o / (u * 1024) }')% with rawio)"
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
