#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cc plugin's errors: a compile error (shown with the script's own
# name and line, also for a #! script), an API version 1 plugin, a
# missing or misplaced script, a failing compiler, the compiled plugin
# refusing a parameter, compiler settings after plugin parameters: each
# stops nbdkit with exit status 1 before serving, leaving no temporary
# files.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin cc
CC=$("$NBDKIT" cc --dump-plugin | sed -n 's/^CC=//p')
requires $CC --version
make_tmpdir
cd "$tmpdir"
mkdir tmp
export TMPDIR=$tmpdir/tmp

cat >tiny.c <<'C'
#include <string.h>
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
static int config (const char *key, const char *value)
{
  if (strcmp (key, "ok") == 0)
    return 0;
  nbdkit_error ("tiny: unknown parameter %s", key);
  return -1;
}
static int64_t get_size (void *h) { return 0; }
static int pread (void *h, void *b, uint32_t n, uint64_t o, uint32_t f)
{ return 0; }
static struct nbdkit_plugin plugin = {
  .name = "tiny", .config = config, .get_size = get_size, .pread = pread,
};
NBDKIT_REGISTER_PLUGIN (plugin)
C

# Errors stop nbdkit with exit status 1 before serving.
expect_error ()
{
  local want=$1 status; shift
  "$NBDKIT" cc "$@" --run 'echo served' >out 2>err </dev/null
  status=$?
  [ "$status" = 1 ] || fail "nbdkit cc $*: exit status $status, not 1"
  ! grep -q served out || fail "nbdkit cc $*: served"
  grep -q -- "$want" err || fail "nbdkit cc $*: expected '$want', got: $(cat err)"
}
printf 'int x = ;\n' >bad.c
expect_error "bad.c:1:" bad.c
grep -q "bad.c: compilation failed" err || fail "no summary: $(cat err)"
{ echo "#!$NBDKIT cc"; echo; echo "int x = ;"; } >script.c
chmod +x script.c
./script.c --run 'echo served' >out 2>err
[ $? = 1 ] || fail "#! script with an error: exit status not 1"
grep -q "script.c:3:" err || fail "#! script error not at line 3: $(cat err)"
cat >v1.c <<'C'
#define NBDKIT_API_VERSION 1
#include <nbdkit-plugin.h>
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
static int64_t get_size (void *h) { return 0; }
static int pread (void *h, void *b, uint32_t n, uint64_t o) { return 0; }
static struct nbdkit_plugin plugin = {
  .name = "v1", .get_size = get_size, .pread = pread,
};
NBDKIT_REGISTER_PLUGIN (plugin)
C
expect_error "NBDKIT_API_VERSION 1" v1.c EXTRA_CFLAGS=-O0
expect_error "no C program name"
expect_error "first parameter must be the C file" CC=gcc tiny.c
expect_error "missing.c" missing.c
expect_error "not a regular file" "$tmpdir"
expect_error "compilation failed (false exited" tiny.c CC=false
expect_error "tiny: unknown parameter size" tiny.c EXTRA_CFLAGS=-O0 size=1
expect_error "must come before" tiny.c EXTRA_CFLAGS=-O0 ok=1 CC=gcc
[ -z "$(ls tmp)" ] || fail "temporary files left behind: $(ls tmp)"
