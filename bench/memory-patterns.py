#!/usr/bin/python3
# memory-patterns.py SOCKET PATTERN [N] - drive one hostile request
# pattern at an NBD server on a Unix socket (for bench-memory.sh).
#
#   zero-pages N        N writes of a zero page at random 4 KiB offsets
#   zeroes-nohole N     N WRITE_ZEROES of 4 GiB - 4 KiB with NO_HOLE
#   zeroes N            the same without NO_HOLE
#   data N SEED         N pages of text at random offsets (offsets from SEED)
#   trim-data N SEED    trim the pages "data N SEED" wrote
import random
import sys

import nbd

sock, pattern = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
h = nbd.NBD()
h.connect_unix(sock)
size = h.get_size()
slots = size // 4096
rng = random.Random(seed)
RANGE = 0xffffffff - 4096 + 1

if pattern == "zero-pages":
    buf = bytearray(4096)
    for _ in range(n):
        h.pwrite(buf, rng.randrange(slots) * 4096)
elif pattern in ("zeroes-nohole", "zeroes"):
    flags = nbd.CMD_FLAG_NO_HOLE if pattern == "zeroes-nohole" else 0
    for _ in range(n):
        h.zero(RANGE, rng.randrange((size - RANGE) // 4096) * 4096, flags)
elif pattern in ("data", "trim-data"):
    text = (b"ghostswap page %d: the quick brown fox jumps over the lazy dog. "
            * 80)
    for i in range(n):
        off = rng.randrange(slots) * 4096
        if pattern == "data":
            page = (text % tuple([i] * 80))[:4096].ljust(4096, b".")
            h.pwrite(page, off)
        else:
            h.trim(4096, off)
else:
    sys.exit("memory-patterns: unknown pattern " + pattern)
h.shutdown()
