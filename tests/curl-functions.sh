# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the curl plugin tests (tests/test-plugin-curl-*.sh), sourced
# after functions.sh and make_tmpdir.
#
# start_curl_server [ARGS...]  make $tmpdir/disk.img (1 MiB of random
#                              data) unless it exists, start
#                              tests/curl_server.py on loopback with it
#                              (ARGS are passed on), wait (bounded) for its
#                              port file; sets $url (http://127.0.0.1:PORT),
#                              $https_port and $server_log
# log_requests PATH            the server's log lines for requests of PATH

requires python3 -c 'import http.server, ssl'

start_curl_server ()
{
  local i
  [ -f "$tmpdir/disk.img" ] ||
    head -c 1048576 /dev/urandom > "$tmpdir/disk.img"
  server_log=$tmpdir/server.log
  rm -f "$tmpdir/port" "$server_log"
  python3 "$srcdir/curl_server.py" --file "$tmpdir/disk.img" \
    --port-file "$tmpdir/port" --log "$server_log" "$@" \
    > "$tmpdir/server.out" 2>&1 &
  server_pid=$!
  cleanup_fn kill_pid "$server_pid"
  for (( i=0; i<300; i++ )); do
    [ -s "$tmpdir/port" ] && break
    kill -0 "$server_pid" 2>/dev/null ||
      fail "curl_server.py exited: $(cat "$tmpdir/server.out")"
    sleep 0.05
  done
  [ -s "$tmpdir/port" ] || fail "curl_server.py did not start in 15 s"
  read -r http_port https_port < "$tmpdir/port"
  url=http://127.0.0.1:$http_port
  touch "$server_log"
}

log_requests ()
{
  grep -F "\"path\": \"$1\"" "$server_log" || true
}
