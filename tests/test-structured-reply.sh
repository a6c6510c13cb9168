#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Structured replies are offered by default and withheld with --no-sr;
# without them there is no block status and no DF, but reads and writes
# still work with simple replies.

source "$srcdir/functions.sh"
# tests/raw_nbd.py is imported from the source tree: keep it clean.
export PYTHONDONTWRITEBYTECODE=1
requires nbdsh --version
requires_plugin memory

# Default: structured replies, base:allocation and DF are available and
# reads come back as structured replies.
"$NBDKIT" -U - memory 1M --run '
  nbdsh --base-allocation -u "$uri" -c "
assert h.get_structured_replies_negotiated()
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
assert h.can_df()
h.pwrite(b\"sr\" * 256, 0)
assert h.pread(512, 0) == b\"sr\" * 256
chunks = []
h.pread_structured(512, 0, lambda buf, off, st, err: chunks.append(off) or 0,
                   nbd.CMD_FLAG_DF)
assert chunks == [0], chunks
seen = []
h.block_status(65536, 0, lambda ctx, off, ents, err: seen.append(ctx) or 0)
assert seen == [nbd.CONTEXT_BASE_ALLOCATION], seen
"
' || fail "structured replies were not available by default"

# --no-sr: nothing structured, but data still flows.
"$NBDKIT" --no-sr -U - memory 1M --run '
  nbdsh --base-allocation -u "$uri" -c "
assert not h.get_structured_replies_negotiated()
assert not h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
assert not h.can_df()
try:
    h.block_status(512, 0, lambda *a: 0)
    assert False, \"block status worked without structured replies\"
except nbd.Error:
    pass
h.pwrite(b\"simple\" * 100, 4096)
assert h.pread(600, 4096) == b\"simple\" * 100
"
' || fail "--no-sr behaved wrongly with nbdsh"

# The same on the wire.
"$NBDKIT" -U - memory 1M --run '
  RAW_NBD_SOCKET="$unixsocket" /usr/bin/python3 -c "
import sys
sys.path.insert(0, \"$srcdir\")
import raw_nbd as r
c = r.Connection.from_env()
c.handshake_newstyle()
c.opt_structured_reply()
c.opt_go()
assert c.eflags & r.FLAG_SEND_DF, \"DF not advertised with structured replies\"
rep = c.request(r.CMD_READ, 0, 512)
assert not rep.simple, \"simple reply to a read after structured replies\"
assert rep.error == 0
assert rep.chunks[-1][0] & r.REPLY_FLAG_DONE
assert rep.content(0, 512) == bytes(512)
# An error on a read must also be structured.
rep = c.request(r.CMD_READ, 1048576, 512)
assert not rep.simple and rep.error == r.EINVAL, rep
c.disconnect()
"
' || fail "raw structured reply checks failed"

"$NBDKIT" --no-sr -U - memory 1M --run '
  RAW_NBD_SOCKET="$unixsocket" /usr/bin/python3 -c "
import sys
sys.path.insert(0, \"$srcdir\")
import raw_nbd as r
c = r.Connection.from_env()
c.handshake_newstyle()
c.expect_option_reply(r.OPT_STRUCTURED_REPLY, b\"\", r.REP_ERR_UNSUP)
c.expect_option_reply(r.OPT_SET_META_CONTEXT,
                      c.meta_data(b\"\", [b\"base:allocation\"]),
                      r.REP_ERR_INVALID)
c.opt_go()
assert not c.eflags & r.FLAG_SEND_DF, \"DF advertised without structured replies\"
rep = c.request(r.CMD_READ, 0, 512)
assert rep.simple and rep.error == 0 and rep.data == bytes(512), rep
rep = c.request(r.CMD_BLOCK_STATUS, 0, 512)
assert rep.simple and rep.error == r.EINVAL, rep
rep = c.request(r.CMD_READ, 0, 512, r.CMD_FLAG_DF)
assert rep.simple and rep.error == r.EINVAL, rep
assert c.read(0, 512) == bytes(512)
c.disconnect()
"
' || fail "raw --no-sr checks failed"

echo "$0: ok"
