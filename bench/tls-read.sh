#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Sequential read over TLS with pre-shared keys: our nbdkit against
# Debian's nbdkit, same PSK file, same run.  Each server serves a RAM
# disk filled with random data; nbdcopy reads it to null: over
# nbds+unix:// (and, for reference, over plaintext nbd+unix:// from the
# same --tls=on server, and over TLS from our server forced to the cipher
# Debian's negotiates).  Prints a markdown table of medians of the
# throughput and of the server's CPU time per GiB (the steadier figure
# on a shared machine).  Not part
# of `meson test`; nothing here asserts a timing.
#
# usage: bench/tls-read.sh [--append] [--repeat=N] [--size=SIZE]
# Environment: NBDKIT (default build/server/nbdkit, then
# build-tls/server/nbdkit), DEBIAN_NBDKIT (default /usr/sbin/nbdkit,
# else /usr/bin/nbdkit), REQUEST_SIZE (nbdcopy --request-size, default
# 262144).

set -u -o pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
if [[ -z ${NBDKIT:-} ]]; then
  NBDKIT=$repo_dir/build/server/nbdkit
  [[ -x $NBDKIT ]] || NBDKIT=$repo_dir/build-tls/server/nbdkit
fi
if [[ -z ${DEBIAN_NBDKIT:-} ]]; then
  DEBIAN_NBDKIT=/usr/sbin/nbdkit
  [[ -x $DEBIAN_NBDKIT ]] || DEBIAN_NBDKIT=/usr/bin/nbdkit
fi
REPEAT=3
DISK_SIZE=1G
APPEND=0
REQUEST_SIZE=${REQUEST_SIZE:-262144}

for arg in "$@"; do
  case $arg in
    --append) APPEND=1 ;;
    --repeat=*) REPEAT=${arg#*=} ;;
    --size=*) DISK_SIZE=${arg#*=} ;;
    -h|--help) sed -n '3,18p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--append] [--repeat=N] [--size=SIZE]" >&2; exit 2 ;;
  esac
done

log () { printf '%s\n' "$*" >&2; }
die () { log "tls-read.sh: $*"; exit 1; }

for tool in nbdcopy nbdinfo psktool numfmt timeout "$NBDKIT" "$DEBIAN_NBDKIT"; do
  command -v "$tool" >/dev/null || die "missing: $tool"
done
disk_bytes=$(numfmt --from=iec "$DISK_SIZE") || die "bad size: $DISK_SIZE"

work_dir=$(mktemp -d /tmp/tls-bench.XXXXXX) || die "mktemp failed"
shm_dir=$(mktemp -d /dev/shm/tls-bench.XXXXXX) || die "mktemp failed"
pids=()
cleanup ()
{
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$work_dir" "$shm_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psk=$work_dir/keys.psk
psktool -u bench -p "$psk" >/dev/null 2>&1 || die "psktool failed"

# start NAME BINARY [OPTIONS...]: serve a RAM disk on $work_dir/NAME.sock,
# TLS optional.
start ()
{
  local name=$1 bin=$2 sock=$work_dir/$1.sock pidfile=$work_dir/$1.pid i
  shift 2
  "$bin" -f -P "$pidfile" -U "$sock" --tls=on --tls-psk="$psk" "$@" \
    memory "$DISK_SIZE" 2>"$work_dir/$name.log" &
  pids+=($!)
  for (( i = 0; i < 100; i++ )); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "$name did not start: $(cat "$work_dir/$name.log")"
}

tls_uri () { echo "nbds+unix://bench@/?socket=$work_dir/$1.sock&tls-psk-file=$psk"; }
plain_uri () { echo "nbd+unix:///?socket=$work_dir/$1.sock"; }

# copy_mibs SRC DST: nbdcopy throughput in MiB/s (disk size / wall time).
copy_mibs ()
{
  local t0 t1
  t0=$(date +%s.%N)
  timeout 600 nbdcopy --request-size="$REQUEST_SIZE" "$1" "$2" ||
    { echo FAIL; return; }
  t1=$(date +%s.%N)
  awk -v b="$disk_bytes" -v a="$t0" -v z="$t1" \
    'BEGIN { printf "%.0f\n", b / 1048576 / (z - a) }'
}

median () { sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "n/a") }'; }

# Our default priority string prefers AES-GCM where the CPU accelerates
# it; "same" is our server with the string Debian's nbdkit is built with,
# so both negotiate the same cipher and only the I/O paths differ.
start ours "$NBDKIT"
start debian "$DEBIAN_NBDKIT"
start same "$NBDKIT" --tls-priority=NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK

# Fill both disks with the same random data so reads carry data, not
# holes.
log "filling the disks ($DISK_SIZE of random data)"
head -c "$disk_bytes" /dev/urandom >"$shm_dir/source" || die "no random source"
for s in ours debian same; do
  [[ $(copy_mibs "$shm_dir/source" "$(tls_uri "$s")") != FAIL ]] ||
    die "could not fill the $s disk over TLS"
done
rm -f "$shm_dir/source"

# Server CPU time (user + system, all threads) in clock ticks.
server_ticks () { awk '{ print $14 + $15 }' "/proc/$(cat "$work_dir/$1.pid")/stat"; }
hz=$(getconf CLK_TCK)

# Each round starts with a different server so none always goes first.
declare -A samples
servers=(ours debian same)
for (( r = 1; r <= REPEAT; r++ )); do
  for (( i = 0; i < ${#servers[@]}; i++ )); do
    s=${servers[(i + r - 1) % ${#servers[@]}]}
    for mode in tls plain; do
      [[ $s == same && $mode == plain ]] && continue
      if [[ $mode == tls ]]; then uri=$(tls_uri "$s"); else uri=$(plain_uri "$s"); fi
      t0=$(server_ticks "$s")
      v=$(copy_mibs "$uri" null:)
      t1=$(server_ticks "$s")
      cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v b="$disk_bytes" \
              'BEGIN { printf "%.0f\n", t * 1000 / hz / (b / 1073741824) }')
      log "run $r: $s $mode: $v MiB/s, server CPU $cpu ms/GiB"
      samples[$s.$mode]+="$v "
      samples[$s.$mode.cpu]+="$cpu "
    done
  done
done

median_of () { tr ' ' '\n' <<<"${samples[$1]:-}" | grep -v '^$' | median; }

row ()
{
  local key=$1 label=$2 ours=${3:-ours} o d ratio
  o=$(median_of "$ours.$key")
  d=$(median_of "debian.$key")
  ratio=$(awk -v o="$o" -v d="$d" 'BEGIN { if (d + 0 > 0 && o + 0 > 0) printf "%.2f", o / d; else print "n/a" }')
  printf '| %s | %s | %s | %s |\n' "$label" "$o" "$d" "$ratio"
}

report ()
{
  printf '## TLS sequential read, %s (%s)\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(uname -n)"
  printf 'nbdcopy --request-size=%s of a %s RAM disk of random data to null:, ' \
    "$REQUEST_SIZE" "$DISK_SIZE"
  printf 'Unix socket, TLS-PSK (%s); median of %s runs; load average at the end: %s.\n\n' \
    "GnuTLS $(gnutls-cli --version 2>/dev/null | head -1 | awk '{print $NF}')" \
    "$REPEAT" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '| | ours | Debian nbdkit %s | ours / Debian |\n|---|---|---|---|\n' \
    "$("$DEBIAN_NBDKIT" --version 2>/dev/null | awk '{print $2}')"
  row tls "read over TLS (nbds+unix, PSK), MiB/s"
  row tls "read over TLS, ours with Debian's priority string (same cipher), MiB/s" same
  row plain "read in plaintext (same --tls=on servers), MiB/s"
  row tls.cpu "server CPU per GiB read over TLS, ms (lower is better)"
  row tls.cpu "server CPU per GiB over TLS, ours with Debian's priority string, ms" same
  row plain.cpu "server CPU per GiB read in plaintext, ms"
  for s in ours debian same; do
    printf '\n%s samples: TLS %s' "$s" "${samples[$s.tls]}"
    [[ -n ${samples[$s.plain]:-} ]] && printf '/ plain %s' "${samples[$s.plain]}"
  done
  printf '\n'
}

out=$(report)
printf '%s\n' "$out"
if [[ $APPEND == 1 ]]; then
  printf '%s\n' "$out" >>"$bench_dir/RESULTS.md"
fi
