#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Our ssh plugin beside Debian's nbdkit 1.32 ssh plugin on the same
# private sshd: the same export flags and size (nbdinfo --json), the
# same data, each reading what the other wrote, and the same result for
# create=true.
source "${srcdir:-$(dirname "$0")}/functions.sh"
normal_build_only "a comparison with Debian's nbdkit"

debian=/usr/bin/nbdkit
requires nbdsh --version
requires nbdinfo --version
requires "$debian" ssh --dump-plugin
requires_plugin ssh
make_tmpdir
export tmpdir
source "$srcdir/ssh-server.sh"
start_sshd

disk=$tmpdir/disk.img
head -c 256k /dev/urandom > "$disk"

# run SERVER NAME: the export's size and flags to NAME.json, then write
# "NAME" at an offset of its own and read the whole disk into NAME.img.
run ()
{
  local server=$1 name=$2
  "$server" -U - ssh "${SSH_PARAMS[@]}" "$disk" --run '
    nbdsh -u "$uri" -c "
import json, os
d = os.environ[\"tmpdir\"]
flags = {f: getattr(h, f)() for f in (
    \"get_size\", \"is_read_only\", \"is_rotational\", \"can_flush\",
    \"can_fua\", \"can_multi_conn\", \"can_trim\", \"can_zero\",
    \"can_fast_zero\", \"can_cache\", \"can_df\")}
json.dump(flags, open(d + \"/'"$name"'.json\", \"w\"))
off = {\"debian\": 1000, \"ours\": 5000}[\"'"$name"'\"]
h.pwrite(b\"'"$name"'\", off)
h.flush()
open(d + \"/'"$name"'.img\", \"wb\").write(h.pread(h.get_size(), 0))
"' || fail "$name: the server or its client failed"
}

run "$debian" debian
run "$NBDKIT" ours

python3 - "$tmpdir" <<'PY' || fail "our answers differ from Debian's"
import json, sys
d = sys.argv[1]
def flags(name):
    return json.load(open(d + "/" + name + ".json"))
deb, ours = flags("debian"), flags("ours")
assert deb == ours, (deb, ours)
deb_img = open(d + "/debian.img", "rb").read()
ours_img = open(d + "/ours.img", "rb").read()
assert deb_img[1000:1006] == b"debian"
# Ours saw Debian's write and its own; the disk now holds both.
assert ours_img == deb_img[:5000] + b"ours" + deb_img[5004:], "data differ"
remote = open(d + "/disk.img", "rb").read()
assert remote[5000:5004] == b"ours" and remote[1000:1006] == b"debian"
PY

# create=true: the same size and mode.
for server in "$debian" "$NBDKIT"; do
  new=$tmpdir/new-$(basename "$(dirname "$server")").img
  "$server" -U - ssh "${SSH_PARAMS[@]}" "$new" create=true \
    create-size=100k create-mode=0640 --run 'nbdinfo --size "$uri"' \
    >/dev/null || fail "$server: create=true failed"
  stat -c %s:%a "$new"
done > "$tmpdir/created"
[ "$(sort -u "$tmpdir/created")" = 102400:640 ] ||
  fail "create=true results differ: $(cat "$tmpdir/created")"

