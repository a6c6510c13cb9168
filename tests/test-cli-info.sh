#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The informational command lines: --version/-V, --help, PLUGIN --help,
# --dump-config and --dump-plugin.  Output formats and key names follow
# upstream nbdkit (nbdkit-probing(1)) so scripts written for it work.

source "$srcdir/functions.sh"
requires_plugin memory

make_tmpdir
out="$tmpdir/out"

# --- --version and -V -------------------------------------------------

"$NBDKIT" --version >"$out" || fail "--version exited with status $?"
head -n1 "$out" | grep -Eq '^nbdkit [0-9]+\.[0-9]+\.[0-9]+$' ||
  fail "--version first line is not 'nbdkit X.Y.Z': $(head -n1 "$out")"
version=$(head -n1 "$out" | cut -d' ' -f2)
"$NBDKIT" -V >"$tmpdir/out-V" || fail "-V exited with status $?"
cmp -s "$out" "$tmpdir/out-V" || fail "-V output differs from --version"

# --- --help -------------------------------------------------------------

"$NBDKIT" --help >"$out" || fail "--help exited with status $?"
for opt in --filter --foreground --pidfile --port --readonly --run --unix \
           --threads --exportname --newstyle --oldstyle --no-sr --single \
           --ipaddr --tls --verbose --dump-config --dump-plugin --version \
           PLUGIN; do
  grep -q -- "$opt" "$out" || fail "--help does not mention $opt"
done

# PLUGIN --help adds the plugin's own configuration help.
"$NBDKIT" memory --help >"$out" || fail "memory --help exited with status $?"
grep -q 'size=' "$out" || fail "memory --help does not show size=: $(cat "$out")"
grep -q 'memory' "$out" || fail "memory --help does not name the plugin"
grep -q -- '--filter' "$out" || fail "memory --help lacks the general usage"

# --- --dump-config ------------------------------------------------------

"$NBDKIT" --dump-config >"$out" || fail "--dump-config exited with status $?"
if grep -Evq '^[a-z_][a-z0-9_]*=' "$out"; then
  fail "--dump-config has lines that are not key=value: $(grep -Ev '^[a-z_][a-z0-9_]*=' "$out")"
fi
dups=$(cut -d= -f1 "$out" | sort | uniq -d)
[ -z "$dups" ] || fail "--dump-config repeats keys: $dups"

config_value ()
{
  grep "^$1=" "$out" | head -n1 | cut -d= -f2-
}

# The keys upstream nbdkit 1.32 prints that describe any build (upstream
# also prints selinux= and zstd=, which depend on optional features).
for key in binary bindir exit_with_parent filterdir host_cpu host_os \
           libdir mandir name plugindir sbindir sysconfdir tls version \
           version_major version_minor; do
  grep -q "^$key=" "$out" || fail "--dump-config lacks $key="
done
[ "$(config_value name)" = nbdkit ] || fail "--dump-config name is not nbdkit"
[ "$(config_value version)" = "$version" ] ||
  fail "--dump-config version=$(config_value version) but --version says $version"
[ "$(config_value version_major).$(config_value version_minor)" = \
  "$(echo "$version" | cut -d. -f1-2)" ] ||
  fail "--dump-config version_major/version_minor disagree with $version"
for key in tls exit_with_parent; do
  case "$(config_value $key)" in
    yes|no) ;;
    *) fail "--dump-config $key= is not yes or no: $(config_value $key)" ;;
  esac
done
binary=$(config_value binary)
case "$binary" in
  /*) ;;
  *) fail "--dump-config binary= is not absolute: $binary" ;;
esac
[ "$(realpath "$binary")" = "$(realpath "$(command -v "$NBDKIT")")" ] ||
  fail "--dump-config binary=$binary is not the running program $NBDKIT"
for key in bindir filterdir libdir mandir plugindir sbindir sysconfdir; do
  case "$(config_value $key)" in
    /*) ;;
    *) fail "--dump-config $key= is not an absolute path" ;;
  esac
done

# --- --dump-plugin ------------------------------------------------------

check_dump_plugin ()
{
  local key
  if grep -Evq '^[A-Za-z_][A-Za-z0-9_]*=' "$out"; then
    fail "--dump-plugin has lines that are not key=value: $(grep -Ev '^[A-Za-z_][A-Za-z0-9_]*=' "$out")"
  fi
  # The lines every plugin gets, in upstream's names.
  for key in path name version api_version struct_size max_thread_model \
             thread_model errno_is_preserved; do
    grep -q "^$key=" "$out" || fail "--dump-plugin lacks $key="
  done
  [ "$(config_value name)" = memory ] || fail "--dump-plugin name is not memory"
  [ "$(config_value api_version)" = 2 ] || fail "--dump-plugin api_version is not 2"
  config_value struct_size | grep -Eq '^[1-9][0-9]*$' ||
    fail "--dump-plugin struct_size is not a positive number"
  for key in max_thread_model thread_model; do
    case "$(config_value $key)" in
      serialize_connections|serialize_all_requests|serialize_requests|parallel) ;;
      *) fail "--dump-plugin $key= is not a thread model: $(config_value $key)" ;;
    esac
  done
  case "$(config_value errno_is_preserved)" in
    0|1) ;;
    *) fail "--dump-plugin errno_is_preserved is not 0 or 1" ;;
  esac
  [ "$(config_value magic_config_key)" = size ] ||
    fail "--dump-plugin magic_config_key is not size"
  [ -f "$(config_value path)" ] ||
    fail "--dump-plugin path=$(config_value path) is not a file"
  # has_* lines for the callbacks the memory plugin must have.
  for key in has_get_size has_pread has_pwrite; do
    [ "$(config_value $key)" = 1 ] || fail "--dump-plugin lacks $key=1"
  done
  if grep '^has_' "$out" | grep -Evq '^has_[a-z_]+=1$'; then
    fail "--dump-plugin has_* lines must read has_NAME=1"
  fi
  dups=$(cut -d= -f1 "$out" | sort | uniq -d)
  [ -z "$dups" ] || fail "--dump-plugin repeats keys: $dups"
}

"$NBDKIT" --dump-plugin memory >"$out" ||
  fail "--dump-plugin memory exited with status $?"
check_dump_plugin
cp "$out" "$tmpdir/dump1"
"$NBDKIT" memory --dump-plugin >"$out" ||
  fail "memory --dump-plugin exited with status $?"
check_dump_plugin
cmp -s "$out" "$tmpdir/dump1" ||
  fail "--dump-plugin output depends on the option's position"

# A plugin that does not exist cannot be dumped.
status=0
"$NBDKIT" --dump-plugin nosuchplugin >/dev/null 2>"$tmpdir/err" || status=$?
[ "$status" -eq 1 ] || fail "--dump-plugin nosuchplugin: exit status $status, expected 1"
grep -q nosuchplugin "$tmpdir/err" || fail "--dump-plugin nosuchplugin: error does not name it"

echo "$0: ok (nbdkit $version)"
