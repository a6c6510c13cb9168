#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every sh plugin method with its arguments and output formats: the call
# order and arguments logged by the script, list_exports in each layout,
# default_export, export descriptions, block_size triples, can_* answers
# (booleans, can_fua/can_cache words), extents lines, flags words,
# thread_model, magic_config_key; $tmpdir shared by all calls and
# removed at exit; the environment passed through.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires jq --version
requires_plugin sh
make_tmpdir
export tmpdir

cat >"$tmpdir/script" <<'SH'
#!/bin/sh
echo "$*" >>"$LOG"
case "$1" in
  load) echo "$tmpdir" >"$LOG.tmpdir"; echo "${MYVAR-unset}" >"$LOG.env" ;;
  magic_config_key) echo file ;;
  config) echo "$2=$3" >>"$tmpdir/config" ;;
  config_complete) [ -s "$tmpdir/config" ] || { echo "EINVAL no config" >&2; exit 1; } ;;
  thread_model) echo parallel ;;
  list_exports) cat "$EXPORTS" ;;
  default_export) echo "${DEFAULT:-a}" ;;
  open) echo "handle-$3" ;;
  export_description) echo "about $2" ;;
  get_size) echo 4M ;;
  block_size) echo "512 4K 1M" ;;
  can_write|can_flush|can_trim|can_zero|can_extents|can_multi_conn) exit 0 ;;
  is_rotational) exit 3 ;;
  can_fast_zero) exit 0 ;;
  can_fua) echo native ;;
  can_cache) echo native ;;
  pread) head -c $3 /dev/zero ;;
  pwrite) cat >/dev/null ;;
  extents)
    printf '0 1M\n1M 1048576 hole,zero\n2097152 1M 3\n3M 1M zero\n' ;;
  flush|trim|zero|cache|close|get_ready|after_fork|preconnect|unload) ;;
  *) exit 2 ;;
esac
SH
chmod +x "$tmpdir/script"
export LOG=$tmpdir/log EXPORTS=$tmpdir/exports MYVAR=passed
run ()
{
  : >"$LOG"
  "$NBDKIT" -U - sh "$tmpdir/script" disk.img k=v --run "$1"
}

# list_exports layouts.
list_names ()
{
  run 'nbdinfo --list --json "$uri"' |
    jq -r '.exports[] | .["export-name"]' |
    tr '\n' ' '
}
printf 'NAMES\na\nb\n' >"$EXPORTS"
[ "$(list_names)" = "a b " ] ||
  fail "NAMES: $(list_names)"
printf 'x\ny\n' >"$EXPORTS"
[ "$(list_names)" = "x y " ] ||
  fail "no layout line: $(list_names)"
# The descriptions: the raw NBD_OPT_LIST reply, through nbdsh.
cat >"$tmpdir/list.py" <<'PY'
h.set_opt_mode(True)
h.connect_uri(uri)
got = []
h.opt_list(lambda name, desc: got.append((name, desc)))
print(got)
PY
raw_list ()
{
  run 'nbdsh -c "uri = \"$uri\"" -c - <"$tmpdir/list.py"'
}
printf 'INTERLEAVED\na\nfirst\nb\nsecond\n' >"$EXPORTS"
[ "$(raw_list)" = "[('a', 'first'), ('b', 'second')]" ] ||
  fail "INTERLEAVED: $(raw_list)"
printf 'NAMES+DESCRIPTIONS\na\nb\nc\nfirst\nsecond\nthird\n' >"$EXPORTS"
[ "$(raw_list)" = "[('a', 'first'), ('b', 'second'), ('c', 'third')]" ] ||
  fail "NAMES+DESCRIPTIONS: $(raw_list)"
printf 'NAMES\nlast-line-without-newline' >"$EXPORTS"
[ "$(raw_list)" = "[('last-line-without-newline', '')]" ] ||
  fail "last line: $(raw_list)"

# Everything a connection sees, and the arguments of each method.
printf 'a\n' >"$EXPORTS"
json=$(DEFAULT=dflt run 'nbdinfo --json "$uri"') || fail "nbdinfo failed"
check_json ()
{
  local got
  got=$(jq -r ".exports[0]$1" <<<"$json")
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}
check_json '["export-name"]' dflt
check_json .description "about handle-dflt"
check_json '["export-size"]' 4194304
check_json .block_size_minimum 512
check_json .block_size_preferred 4096
check_json .block_size_maximum 1048576
check_json .is_rotational false
check_json .is_read_only false
for f in can_cache can_fast_zero can_flush can_fua can_multi_conn can_trim can_zero; do
  check_json .$f true
done
expected_start="load
magic_config_key
config file disk.img
config k v
config_complete
thread_model
get_ready
after_fork
preconnect false
default_export false false
open false dflt false
get_size handle-dflt"
[ "$(head -12 "$LOG")" = "$expected_start" ] ||
  fail "calls differ: $(diff <(echo "$expected_start") <(head -12 "$LOG"))"
tail -1 "$LOG" | grep -qx unload || fail "unload is not last: $(tail -3 "$LOG")"
grep -qx "close handle-dflt" "$LOG" || fail "no close"
[ "$(cat "$LOG.env")" = passed ] || fail "the environment was not passed"

# $tmpdir is one directory for every call, and gone after exit.
dir=$(cat "$LOG.tmpdir")
[ -n "$dir" ] && [ "$dir" != "$tmpdir" ] || fail "bad \$tmpdir '$dir'"
[ ! -e "$dir" ] || fail "\$tmpdir $dir was not removed"
: >"$LOG"
"$NBDKIT" -U - sh "$tmpdir/script" disk.img \
  --run 'test -d "$(cat "$LOG.tmpdir")" && grep -qx "file=disk.img" "$(cat "$LOG.tmpdir")/config"' ||
  fail "config's file is not in the same \$tmpdir during serving"
# ... and also after a failed start (config_complete fails here).
: >"$LOG"
if "$NBDKIT" -U - sh "$tmpdir/script" --run true 2>/dev/null; then
  fail "config_complete failing was ignored"
fi
dir=$(cat "$LOG.tmpdir")
[ ! -e "$dir" ] || fail "\$tmpdir $dir left behind after a failed start"
# nbdkit's own environment does not get tmpdir.
out=$("$NBDKIT" -U - sh "$tmpdir/script" disk.img --run 'echo "${tmpdir-none}"')
[ "$out" = "$tmpdir" ] || fail "--run saw tmpdir=$out"

# Data methods: arguments and flags words; extents formats.
cat >"$tmpdir/t.py" <<'PY'
h.pread(512, 1024)
h.pwrite(bytes(512), 0, nbd.CMD_FLAG_FUA)
h.pwrite(bytes(512), 512)
h.zero(512, 0)
h.zero(512, 0, nbd.CMD_FLAG_NO_HOLE)
h.zero(512, 0, nbd.CMD_FLAG_FUA | nbd.CMD_FLAG_FAST_ZERO)
h.trim(512, 4096, nbd.CMD_FLAG_FUA)
h.trim(512, 4096)
h.flush()
h.cache(4096, 8192)
got = []
h.block_status(4 << 20, 0, lambda ctx, off, ents, err: got.extend(ents))
M = 1 << 20
assert got == [M, 0, 2 * M, 3, M, 2], got   # equal types merge
got = []
h.block_status(4 << 20, 0, lambda ctx, off, ents, err: got.extend(ents),
               nbd.CMD_FLAG_REQ_ONE)
assert got == [M, 0], got
PY
run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "data methods failed"
for call in "pread handle-a 512 1024" "pwrite handle-a 512 0 fua" \
            "pwrite handle-a 512 512 " "zero handle-a 512 0 may_trim" \
            "zero handle-a 512 0 " "zero handle-a 512 0 fua,may_trim,fast" \
            "trim handle-a 512 4096 fua" "trim handle-a 512 4096 " \
            "flush handle-a" "cache handle-a 4096 8192" \
            "extents handle-a 4194304 0 " "extents handle-a 4194304 0 req_one"
do
  grep -qxF -- "$call" "$LOG" || fail "no call '$call' in: $(cat "$LOG")"
done

# thread_model: the script's answer is the model used.
"$NBDKIT" -v -U - sh "$tmpdir/script" disk.img --run true 2>"$tmpdir/v" ||
  fail "nbdkit -v failed"
grep -q "using thread model: parallel" "$tmpdir/v" ||
  fail "thread model: $(grep 'thread model' "$tmpdir/v")"
# --dump-plugin names the exit statuses understood.
"$NBDKIT" --dump-plugin sh | grep -qx max_known_status=3 ||
  fail "--dump-plugin has no max_known_status=3"
echo "$0: ok"
