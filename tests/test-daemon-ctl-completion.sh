#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The bash completion of nbdkitctl: verbs, options, export names from a
# real nbdkitd, plugin and filter names.

source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
source "$srcdir/test-daemon-ctl-lib.bash"

ctl_setup
requires_plugin memory
daemon_setup
start_daemon
source "$abs_top_srcdir/ctl/nbdkitctl.bash-completion"

# complete WORD...: the completions of the last word, one per line.
complete_words ()
{
  COMP_WORDS=("$@")
  COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  COMPREPLY=()
  _nbdkitctl
  printf '%s\n' "${COMPREPLY[@]}" | sort
}

expect_completions ()
{
  local want=$1 got
  shift
  got=$(complete_words "$@")
  [ "$got" = "$want" ] || fail "completing '$*': got [$got], want [$want]"
}

ctl add-export disk1 --start=manual memory 1M
ctl add-export disk2 --start=manual memory 1M
ctl add-export other --start=manual memory 1M

expect_completions "$(printf 'disk1\ndisk2\nother')" nbdkitctl show-export ""
expect_completions "$(printf 'disk1\ndisk2')" nbdkitctl remove-export d
expect_completions "$(printf 'disk1\ndisk2')" nbdkitctl -q uri d
expect_completions "other" nbdkitctl --json start o
expect_completions "" nbdkitctl uri disk1 ""
expect_completions "show-export" nbdkitctl show-
expect_completions "$(printf 'remove-export\nrestart')" nbdkitctl re
expect_completions "--force" nbdkitctl remove-export --fo
expect_completions "memory" nbdkitctl add-export new memo
expect_completions "$(printf 'boot\nmanual\non-demand')" \
  nbdkitctl add-export new --start = ""
complete_words nbdkitctl add-export new --filter = "" | grep -qx cow ||
  fail "filter names are not completed"
complete_words nbdkitctl add-export new --t | grep -qx -- --tls= ||
  fail "export options are not completed"

echo "$0: OK"
