#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Side by side with Debian's nbdkit (1.32) on the same sh scripts: the
# same calls with the same arguments, the same nbdinfo --json answers
# for every combination of can_* methods, the same data read.  Known
# server differences are left out of the comparison: the block size
# this server advertises when the plugin gives none, and when close
# runs at shutdown.
source "${srcdir:-$(dirname "$0")}/functions.sh"
normal_build_only "a comparison with Debian's nbdkit"

debian=/usr/bin/nbdkit
[ -x "$debian" ] || skip "no Debian nbdkit at $debian"
"$debian" sh --dump-plugin >/dev/null 2>&1 || skip "Debian's nbdkit has no sh plugin"
requires nbdsh --version
requires nbdinfo --version
requires jq --version
requires_plugin sh
make_tmpdir
export tmpdir

# Answers only the methods in $HAVE; logs every call to $LOG.
cat >"$tmpdir/script" <<'SH'
#!/bin/sh
echo "$*" >>"$LOG"
case " $HAVE " in *" $1 "*) ;; *) exit 2 ;; esac
case "$1" in
  magic_config_key) echo file ;;
  thread_model) echo parallel ;;
  open) echo "h$3" ;;
  get_size) echo 1M ;;
  can_fua|can_cache) echo "$WORD" ;;
  can_*|is_rotational) exit "$BOOL" ;;
  pread) i=0; while [ $i -lt $(( $3 / 16 )) ]; do
           printf '%015x\n' $(( $4 + i * 16 )); i=$((i + 1)); done ;;
  pwrite) cat >/dev/null ;;
  extents) echo "0 512K"; echo "512K 512K hole,zero" ;;
  list_exports) printf 'INTERLEAVED\na\ndesc a\nb\ndesc b\n' ;;
  default_export) echo b ;;
  export_description) echo "about $2" ;;
  block_size) echo "512 4K 1M" ;;
esac
SH
chmod +x "$tmpdir/script"
export LOG=$tmpdir/log

# The JSON nbdinfo gives, less what depends on the server, not the
# plugin.
info ()
{
  local server=$1 params=()
  : >"$LOG"
  # Parameters need a config method (and a bare one magic_config_key).
  case " $HAVE " in *" magic_config_key "*) params=(disk.img k=v) ;; esac
  "$server" -U - sh "$tmpdir/script" "${params[@]}" \
      --run 'nbdinfo --json --list "$uri"' |
    jq -S 'del(.exports[].uri) |
           if env.HAVE | test("block_size") then . else
             del(.exports[] | .block_size_minimum, .block_size_preferred,
                 .block_size_maximum) end'
}

all="load magic_config_key config config_complete thread_model get_ready
     after_fork preconnect list_exports default_export open close
     export_description get_size block_size can_write can_flush can_trim
     can_zero can_fast_zero can_extents can_fua can_multi_conn can_cache
     is_rotational pread pwrite flush trim zero extents cache"
all=$(echo $all)
n=0
for have in "$all" "get_size pread" "get_size pread can_write pwrite" \
            "get_size pread can_write pwrite can_flush flush" \
            "get_size pread can_write pwrite can_zero zero" \
            "get_size pread can_write pwrite can_fast_zero" \
            "get_size pread can_cache cache" "get_size pread open close"; do
  words=native
  [ "$have" = "$all" ] && words="native emulate none"
  for word in $words; do
    for bool in 0 3; do
      export HAVE=$have WORD=$word BOOL=$bool
      ours=$(info "$NBDKIT") || fail "ours failed with HAVE=$have"
      grep -v '^close' "$LOG" >"$tmpdir/ours.log"
      theirs=$(info "$debian") || fail "Debian's failed with HAVE=$have"
      grep -v '^close' "$LOG" >"$tmpdir/theirs.log"
      [ "$ours" = "$theirs" ] ||
        fail "HAVE=$have WORD=$word BOOL=$bool: nbdinfo differs:
$(diff <(echo "$theirs") <(echo "$ours"))"
      diff -u "$tmpdir/theirs.log" "$tmpdir/ours.log" >"$tmpdir/diff" ||
        fail "HAVE=$have WORD=$word BOOL=$bool: calls differ:
$(cat "$tmpdir/diff")"
      n=$((n + 1))
    done
  done
done

# Data and the data methods' arguments.
export HAVE=$all WORD=native BOOL=0
cat >"$tmpdir/t.py" <<'PY'
import hashlib
h.pwrite(bytes(512), 0, nbd.CMD_FLAG_FUA)
h.zero(512, 0, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_FUA)
h.zero(512, 0, nbd.CMD_FLAG_NO_HOLE)
h.trim(512, 0, nbd.CMD_FLAG_FUA)
h.flush()
h.cache(512, 0)
h.block_status(1 << 20, 0, lambda *a: print(a[2]), nbd.CMD_FLAG_REQ_ONE)
print(hashlib.sha256(h.pread(1 << 20, 0)).hexdigest())
print(h.pread(512, 4096)[:48])
PY
for server in "$NBDKIT" "$debian"; do
  : >"$LOG"
  "$server" -U - sh "$tmpdir/script" disk.img \
    --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' \
    >"$tmpdir/out.$n" || fail "$server: data checks failed"
  grep -E '^(pread|pwrite|zero|trim|flush|cache|extents) ' "$LOG" >"$tmpdir/data.$n"
  n=$((n + 1))
done
cmp "$tmpdir/out.$((n - 2))" "$tmpdir/out.$((n - 1))" ||
  fail "data differs: $(diff "$tmpdir/out.$((n - 1))" "$tmpdir/out.$((n - 2))")"
# This server may also ask for extents by itself; compare the rest.
diff <(grep -v '^extents' "$tmpdir/data.$((n - 1))") \
     <(grep -v '^extents' "$tmpdir/data.$((n - 2))") >"$tmpdir/diff" ||
  fail "data calls differ: $(cat "$tmpdir/diff")"
grep -qx "extents hb 1048576 0 req_one" "$tmpdir/data.$((n - 2))" ||
  fail "no extents req_one call: $(cat "$tmpdir/data.$((n - 2))")"
echo "$0: ok ($n comparisons)"
