#!/usr/bin/python3
# Write the seed inputs of fuzz-engine (corpus/engine/: kinds,
# writeback-drain, migrate, unaligned-end; not the regress-* files) in its input
# encoding (see run_op and the take_* functions in fuzz-engine.c), so that
# the fuzzer starts from sequences that reach writeback, drains,
# migrations and the end of the device.  Run from tests/fuzz:
#
#   ./engine-seeds.py corpus/engine
import struct
import sys

(W, R, T, Z, EXT, COMP, RAM, WB, ADD, REM, DRAIN, DWAIT, DCAN, RELOC,
 CHECK) = range(15)


def u16(v):
    return struct.pack('<H', v & 0xffff)


def aligned(slot):
    return u16(slot << 2 | 0)


def unaligned(slot, byte):
    return u16(slot << 2 | 1) + u16(byte)


def near_end(back):
    return u16(back << 2 | 2)


PAGE = u16(0)


def length(n):
    return u16(n << 2 | 1)


def pages(n):
    return u16((n - 1) << 2 | 3)


def zero():
    return bytes([0])


def fill(b):
    return bytes([1, b])


def word(w):
    return bytes([2]) + struct.pack('<Q', w)


def rnd(seed):
    return bytes([3]) + struct.pack('<I', seed)


def text(seed):
    return bytes([4]) + struct.pack('<I', seed)


def own():
    return bytes([5])


def op(o, *args):
    return bytes([o]) + b''.join(args)


def drain(src, target=None, migrate=False):
    v = src | (0 if target is None else target << 2 | 0x20)
    return op(DRAIN, bytes([v | (0x40 if migrate else 0)]))


seeds = {}

s = b''
for i, k in enumerate([zero(), fill(0x5a), word(0x0123456789abcdef), rnd(7),
                       text(9), own()]):
    s += op(W, aligned(i * 3), PAGE, k)
for i in range(6):
    s += op(R, aligned(i * 3), PAGE)
s += op(T, aligned(3), pages(2)) + op(Z, aligned(9), pages(2), bytes([0]))
s += op(Z, unaligned(12, 100), length(5000), bytes([1]))
s += op(EXT, aligned(0), pages(8), bytes([7])) + op(CHECK, bytes([0]))
seeds['kinds'] = s

# Writeback onto bk0 at the smallest ram-limit, then a drain into RAM
# while unaligned writes go on.
s = op(ADD, bytes([0]), bytes([15])) + op(RAM, bytes([0]))
for i in range(40):
    s += op(W, aligned(i), pages(2), rnd(i))
s += op(WB, bytes([0])) + op(CHECK, bytes([0])) + op(RAM, bytes([255]))
s += drain(0)
for i in range(10):
    s += op(W, unaligned(i * 4, 2000), length(6000), text(i))
s += op(DWAIT) + op(CHECK, bytes([0])) + op(CHECK, bytes([1]))
seeds['writeback-drain'] = s

# Migrate bk0 -> bk1 while pages are rewritten, then relocate and remove.
s = op(ADD, bytes([0]), bytes([15])) + op(ADD, bytes([1]), bytes([15]))
s += op(RAM, bytes([0]))
for i in range(30):
    s += op(W, aligned(i * 2), PAGE, rnd(100 + i))
s += op(WB, bytes([200])) + drain(0, 1, migrate=True)
for i in range(10):
    s += op(W, aligned(i * 2), PAGE, word(i)) + op(R, aligned(i * 2 + 20), PAGE)
s += op(DWAIT) + op(RELOC, bytes([1]), u16(3)) + op(COMP) + op(REM, bytes([0]))
s += op(CHECK, bytes([0]))
seeds['migrate'] = s

# Requests across slot boundaries, at the end of the device and past it.
s = op(W, near_end(1), pages(1), fill(1))
s += op(W, near_end(4), length(100), text(3))
s += op(W, unaligned(5, 4000), length(200), rnd(5))
s += op(W, unaligned(600, 1), u16(7 << 2 | 2), fill(9))
s += op(T, near_end(8), length(9000))
s += op(R, near_end(3), length(12288))
s += op(EXT, near_end(16), pages(4), bytes([0]))
s += op(CHECK, bytes([9])) + op(CHECK, bytes([15]))
seeds['unaligned-end'] = s

for name, data in seeds.items():
    with open('%s/%s' % (sys.argv[1], name), 'wb') as f:
        f.write(data)
