#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# Write the fuzz targets' seed corpora (corpus/<target>/) and the disk
# image fuzz-filters serves (disk.img.xz).  Run from anywhere; the output
# is committed.  Input formats: see the comment at the top of each
# fuzz-*.c.

import lzma
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

IHAVEOPT = b'IHAVEOPT'
OPT = dict(EXPORT_NAME=1, ABORT=2, LIST=3, STARTTLS=5, INFO=6, GO=7,
           STRUCTURED_REPLY=8, LIST_META_CONTEXT=9, SET_META_CONTEXT=10)
CMD = dict(READ=0, WRITE=1, DISC=2, FLUSH=3, TRIM=4, CACHE=5,
           WRITE_ZEROES=6, BLOCK_STATUS=7)
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 1, 2, 4, 8, 16
FIXED_NO_ZEROES = struct.pack('>I', 3)


def option(opt, data=b''):
    return IHAVEOPT + struct.pack('>II', OPT[opt], len(data)) + data


def name(s):
    return struct.pack('>I', len(s)) + s


def info_request(export, infos):
    return name(export) + struct.pack('>H', len(infos)) + \
        b''.join(struct.pack('>H', i) for i in infos)


def meta_request(export, queries):
    return name(export) + struct.pack('>I', len(queries)) + \
        b''.join(name(q) for q in queries)


def request(cmd, offset=0, length=0, flags=0, handle=1, payload=b''):
    return struct.pack('>IHHQQI', 0x25609513, flags, CMD[cmd], handle,
                       offset, length) + payload


GO = option('GO', info_request(b'', []))
SR = option('STRUCTURED_REPLY')
META = option('SET_META_CONTEXT', meta_request(b'', [b'base:allocation']))

OPTIONS = {
    # Mode byte 0: plain, from the client flags on.
    'go': b'\0' + FIXED_NO_ZEROES + GO,
    'go-infos': b'\0' + FIXED_NO_ZEROES +
    option('GO', info_request(b'', [0, 1, 2, 3])),
    'info-then-go': b'\0' + FIXED_NO_ZEROES +
    option('INFO', info_request(b'', [1, 2, 3])) + GO,
    'info-unknown-export': b'\0' + FIXED_NO_ZEROES +
    option('INFO', info_request(b'nosuch', [])) + option('ABORT'),
    'list-abort': b'\0' + FIXED_NO_ZEROES + option('LIST') + option('ABORT'),
    'sr-meta-go': b'\0' + FIXED_NO_ZEROES + SR + META + GO,
    'list-meta': b'\0' + FIXED_NO_ZEROES + SR +
    option('LIST_META_CONTEXT', meta_request(b'', [])) +
    option('LIST_META_CONTEXT', meta_request(b'', [b'base:'])) +
    option('ABORT'),
    'meta-bad': b'\0' + FIXED_NO_ZEROES + SR +
    option('SET_META_CONTEXT', meta_request(b'x', [b'nosuch:ctx',
                                                   b'base:allocation'])) +
    option('ABORT'),
    'export-name': b'\0' + FIXED_NO_ZEROES + option('EXPORT_NAME'),
    'export-name-zeroes': b'\0' + struct.pack('>I', 1) +
    option('EXPORT_NAME'),
    'unfixed': b'\0' + struct.pack('>I', 0) + option('EXPORT_NAME', b'x'),
    'unknown-option': b'\0' + FIXED_NO_ZEROES +
    IHAVEOPT + struct.pack('>II', 99, 4) + b'abcd' + option('ABORT'),
    'starttls-plain': b'\0' + FIXED_NO_ZEROES + option('STARTTLS') +
    b'\x16\x03\x01\x00\x05hello',
    'go-then-requests': b'\0' + FIXED_NO_ZEROES + SR + META + GO +
    request('READ', 0, 512) + request('BLOCK_STATUS', 0, 65536) +
    request('DISC'),
    # Mode byte 1: inside TLS after STARTTLS.
    'tls-go': b'\1' + GO,
    'tls-list': b'\1' + option('LIST') + option('ABORT'),
    'tls-sr-meta-go': b'\1' + SR + META + GO + request('READ', 0, 4096),
    'tls-info': b'\1' + option('INFO', info_request(b'', [3])) +
    option('STARTTLS') + option('ABORT'),
}

PATTERN = bytes(range(256)) * 16


def request_sequences(size):
    """Valid request sequences for an export of SIZE bytes."""
    half = size // 2
    return {
        'read': request('READ', 0, 4096) + request('READ', half, 512,
                                                     flags=DF),
        'write-read': request('WRITE', 4096, 2048, payload=PATTERN[:2048]) +
        request('READ', 4096, 4096),
        'write-fua-flush': request('WRITE', 0, 512, FUA,
                                   payload=PATTERN[:512]) +
        request('FLUSH'),
        'trim-zero': request('TRIM', 0, 8192) +
        request('WRITE_ZEROES', 8192, 8192, NO_HOLE) +
        request('WRITE_ZEROES', 0, 4096, FAST_ZERO) +
        request('READ', 0, 16384),
        'cache': request('CACHE', 0, size),
        'block-status': request('WRITE', 0, 2048, payload=PATTERN[:2048]) +
        request('BLOCK_STATUS', 0, size) +
        request('BLOCK_STATUS', 0, size, REQ_ONE),
        'out-of-range': request('READ', size - 512, 1024) +
        request('WRITE', size, 4, payload=b'abcd') +
        request('READ', 0, 64 * 1024 * 1024 + 1),
        'bad-flags': request('READ', 0, 512, 0xff) +
        request('FLUSH', 0, 0, FUA) + request('TRIM', 0, 0),
        'unknown-command': struct.pack('>IHHQQI', 0x25609513, 0, 99, 1, 0, 0)
        + request('DISC'),
        'bad-magic': b'\x25\x60\x95\x14' + bytes(24),
        'disc': request('DISC'),
    }


def transmission_corpus():
    seeds = {}
    reqs = request_sequences(128 * 1024)
    # Mode byte: bits 0-1 handshake, bit 2 read-only, bit 3 oldstyle.
    for mode, names in [(0, list(reqs)), (1, ['read', 'block-status']),
                        (2, ['write-read', 'block-status', 'bad-flags']),
                        (3, ['read', 'disc']),
                        (4, ['write-read', 'trim-zero']),
                        (8, ['read', 'write-fua-flush'])]:
        for n in names:
            seeds['mode%d-%s' % (mode, n)] = bytes([mode]) + reqs[n]
    return seeds


def filters_corpus():
    seeds = {}
    reqs = request_sequences(192 * 1024)
    for mode, names in [(0, list(reqs)), (1, ['block-status', 'read']),
                        (2, ['write-read', 'trim-zero'])]:
        for n in names:
            seeds['mode%d-%s' % (mode, n)] = bytes([mode]) + reqs[n]
    return seeds


def disk_image():
    """256 KiB: an MBR with partition 1 at 32 KiB (192 KiB) and 2 at 224
    KiB (32 KiB), data and holes, as 16 xz streams of 16 KiB each so
    that the xz filter can read it in pieces.
    """
    disk = bytearray(256 * 1024)
    for i, (start, sectors) in enumerate([(64, 384), (448, 64)]):
        entry = struct.pack('<B3sB3sII', 0, b'\0\0\0', 0x83, b'\0\0\0',
                            start, sectors)
        disk[446 + 16 * i:446 + 16 * (i + 1)] = entry
    disk[510:512] = b'\x55\xaa'
    for off in range(32 * 1024, 256 * 1024, 48 * 1024):
        disk[off:off + 16 * 1024] = PATTERN * 4
    # A small dictionary: the decoder allocates all of it for each block.
    lzma2 = [{'id': lzma.FILTER_LZMA2, 'dict_size': 64 * 1024}]
    streams = [lzma.compress(bytes(disk[off:off + 16 * 1024]),
                             format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                             filters=lzma2)
               for off in range(0, len(disk), 16 * 1024)]
    return b''.join(streams)


def write_dir(target, seeds):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith('seed-'):
            os.unlink(os.path.join(d, f))
    for n, data in sorted(seeds.items()):
        assert len(data) < 4096, n
        with open(os.path.join(d, 'seed-' + n), 'wb') as f:
            f.write(data)


def main():
    write_dir('fuzz-options', OPTIONS)
    write_dir('fuzz-transmission', transmission_corpus())
    write_dir('fuzz-filters', filters_corpus())
    with open(os.path.join(HERE, 'disk.img.xz'), 'wb') as f:
        f.write(disk_image())


if __name__ == '__main__':
    main()
