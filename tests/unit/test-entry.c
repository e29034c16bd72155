/* The 64-bit slot entry encoding (lib/entry.h): every tag round-trips,
 * the accessed bit leaves the rest intact, tags are distinct. */
#include <stdint.h>
#include <stdio.h>

#include "entry.h"
#include "pool.h"
#include "test.h"

/* Inline patterns: which 8-byte words sign-extend from 59 bits. */
static bool
fits_59 (uint64_t w)
{
  /* The top 64 - PATTERN_BITS + 1 bits all equal. */
  unsigned shift = GS_SAME_PATTERN_BITS - 1;
  uint64_t top = w >> shift;
  return top == 0 || top == (~0ull >> shift);
}

static void
check_inline (uint64_t pattern)
{
  gs_entry e = pattern_to_entry (pattern);

  CHECKF (pattern_fits_inline (pattern), "pattern %#" PRIx64, pattern);
  CHECK (!entry_is_empty (e));
  CHECK (entry_is_same (e));
  CHECK (!entry_is_same_wide (e));
  CHECK (!entry_is_ram (e));
  CHECK (!entry_is_backing (e));
  CHECK (!entry_is_young (e));
  CHECKF (entry_to_pattern (e) == pattern, "pattern %#" PRIx64 " -> %#" PRIx64,
          pattern, entry_to_pattern (e));
  CHECK (entry_is_zero (e) == (pattern == 0));
  /* The accessed bit is not part of the pattern. */
  CHECK (entry_is_young (entry_mkyoung (e)));
  CHECK (entry_to_pattern (entry_mkyoung (e)) == pattern);
  CHECK (entry_is_zero (entry_mkyoung (e)) == (pattern == 0));
  CHECK (!entry_is_same_wide (entry_mkyoung (e)));
  CHECK (entry_mkold (entry_mkyoung (e)) == e);
  CHECK (entry_same_place (e, entry_mkyoung (e)));
  CHECK (!entry_is_writeback (e));
}

int
main (int argc, char *argv[])
{
  static const uint64_t inl[] = {
    0, ~0ull, 0x0101010101010101ull, 1, 2, 42, 0xff, 0x12345678,
    (uint64_t) -1, (uint64_t) -2, (uint64_t) -4096, (uint64_t) -123456789,
    0x03ffffffffffffffull, 0xfc00000000000000ull, 0x0202020202020202ull,
    0xfefefefefefefefeull, 0x0303030303030303ull,
  };
  static const uint64_t wide[] = {
    0xdeadbeefcafef00dull, 0x7fffffffffffffffull, 0x8000000000000000ull,
    0x0400000000000000ull, 0xfbffffffffffffffull, 0xaaaaaaaaaaaaaaaaull,
    0x5555555555555555ull, 0x8080808080808080ull, 0x4141414141414141ull,
    0x2020202020202020ull,   /* a page of spaces */
  };
  uint64_t seed, s;
  size_t i;
  unsigned k;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;

  /* EMPTY. */
  CHECK (GS_ENTRY_EMPTY == 0);
  CHECK (entry_is_empty (0));
  CHECK (!entry_is_same (0) && !entry_is_ram (0) && !entry_is_backing (0));
  CHECK (entry_mkyoung (GS_ENTRY_EMPTY) == GS_ENTRY_EMPTY);
  CHECK (!entry_is_young (entry_mkyoung (GS_ENTRY_EMPTY)));
  CHECK (!entry_is_zero (GS_ENTRY_EMPTY));

  /* Tags are distinct and none is EMPTY. */
  CHECK (GS_ENTRY_TAG_SAME != GS_ENTRY_EMPTY);
  CHECK (GS_ENTRY_TAG_RAM != GS_ENTRY_EMPTY);
  CHECK (GS_ENTRY_TAG_BACKING != GS_ENTRY_EMPTY);
  CHECK (GS_ENTRY_TAG_SAME != GS_ENTRY_TAG_RAM);
  CHECK (GS_ENTRY_TAG_SAME != GS_ENTRY_TAG_BACKING);
  CHECK (GS_ENTRY_TAG_RAM != GS_ENTRY_TAG_BACKING);
  CHECK ((GS_ENTRY_ACCESSED & GS_ENTRY_TAG_MASK) == 0);

  /* Inline patterns. */
  for (i = 0; i < sizeof inl / sizeof inl[0]; i++)
    check_inline (inl[i]);
  for (i = 0; i < sizeof wide / sizeof wide[0]; i++)
    CHECKF (!pattern_fits_inline (wide[i]), "%#" PRIx64, wide[i]);
  for (k = 0; k < 100000; k++) {
    uint64_t w = rnd_next (&s);
    if (k % 2)
      w = inline_word (&s);
    CHECKF (pattern_fits_inline (w) == fits_59 (w), "%#" PRIx64, w);
    if (fits_59 (w))
      check_inline (w);
  }
  /* Small and negative ints. */
  for (k = 0; k < 4096; k++) {
    check_inline (k);
    check_inline ((uint64_t) -(int64_t) k);
  }

  /* Pattern table indexes. */
  {
    static const uint32_t idx[] = { 0, 1, 2, 63, 64, 4095, 0x7fffffff,
                                    0x80000000u, 0xfffffffeu, 0xffffffffu };
    for (i = 0; i < sizeof idx / sizeof idx[0] + 1000; i++) {
      uint32_t x = i < sizeof idx / sizeof idx[0] ? idx[i]
        : (uint32_t) rnd_next (&s);
      gs_entry e = pattern_index_to_entry (x), y;
      CHECK (!entry_is_empty (e));
      CHECK (entry_is_same (e));
      CHECK (entry_is_same_wide (e));
      CHECK (!entry_is_zero (e));
      CHECK (!entry_is_ram (e) && !entry_is_backing (e));
      CHECK (!entry_is_young (e));
      CHECKF (entry_to_pattern_index (e) == x, "%#x", x);
      y = entry_mkyoung (e);
      CHECK (entry_is_young (y) && entry_is_same_wide (y));
      CHECK (entry_to_pattern_index (y) == x);
      CHECK (!entry_is_zero (y));
      CHECK (entry_mkold (y) == e);
    }
  }

  /* RAM: 32-byte aligned segment addresses below 2^48, any offset up to
   * GS_SEGMENT_DATA. */
  for (k = 0; k < 200000; k++) {
    uint64_t addr, off;
    gs_entry e, y;

    switch (k) {
    case 0: addr = GS_RAM_SEGMENT_ALIGN; off = 0; break;
    case 1: addr = GS_RAM_ADDRESS_LIMIT - GS_RAM_SEGMENT_ALIGN;
      off = GS_SEGMENT_DATA; break;
    case 2: addr = 0x7fffffffe000ull; off = GS_SEGMENT_DATA - 1; break;
    case 3: addr = 0x0000555555554000ull; off = 1; break;
    default:
      addr = rnd_below (&s, GS_RAM_ADDRESS_LIMIT)
        & ~(uint64_t) (GS_RAM_SEGMENT_ALIGN - 1);
      off = rnd_below (&s, GS_SEGMENT_DATA + 1);
    }
    e = ram_to_entry ((const struct gs_segment *) (uintptr_t) addr,
                      (uint32_t) off);
    if (addr == 0 && off == 0)
      continue;
    CHECK (!entry_is_empty (e));
    CHECK (entry_is_ram (e));
    CHECK (!entry_is_same (e) && !entry_is_backing (e));
    CHECK (!entry_is_young (e));
    CHECKF ((uint64_t) (uintptr_t) entry_to_segment (e) == addr,
            "addr %#" PRIx64 " off %" PRIu64, addr, off);
    CHECKF (entry_to_offset (e) == off, "addr %#" PRIx64 " off %" PRIu64,
            addr, off);
    y = entry_mkyoung (e);
    CHECK (entry_is_young (y) && entry_is_ram (y));
    CHECK ((uint64_t) (uintptr_t) entry_to_segment (y) == addr);
    CHECK (entry_to_offset (y) == off);
    CHECK (entry_mkold (y) == e);
    CHECK (entry_same_place (e, y));
    /* The writeback mark: set, kept by mkyoung/mkold, still the same
     * place, and not part of the address. */
    CHECK (!entry_is_writeback (e) && !entry_is_writeback (y));
    {
      gs_entry w = entry_mkwriteback (e);
      CHECK (entry_is_writeback (w) && entry_is_ram (w));
      CHECK (!entry_is_young (w));
      CHECK ((uint64_t) (uintptr_t) entry_to_segment (w) == addr);
      CHECK (entry_to_offset (w) == off);
      CHECK (entry_same_place (w, e) && entry_same_place (e, w));
      CHECK (entry_same_place (entry_mkyoung (w), e));
      CHECK (entry_is_writeback (entry_mkyoung (w)));
      CHECK (entry_is_writeback (entry_mkold (entry_mkyoung (w))));
      CHECK (entry_mkold (entry_mkyoung (w)) == w);
    }
    /* A different offset is a different place. */
    if (off > 0)
      CHECK (!entry_same_place (e, ram_to_entry ((const struct gs_segment *)
                                                 (uintptr_t) addr,
                                                 (uint32_t) off - 1)));
  }

  /* BACKING. */
  for (k = 0; k < 100000; k++) {
    unsigned id;
    uint64_t pslot;
    bool zstd = k % 3 == 1;
    gs_entry e, y;

    switch (k) {
    case 0: id = 0; pslot = 0; break;
    case 1: id = 255; pslot = (1ull << GS_BACKING_PSLOT_BITS) - 1; break;
    case 2: id = 1; pslot = 1; break;
    default:
      id = (unsigned) rnd_below (&s, 256);
      pslot = rnd_below (&s, 1ull << GS_BACKING_PSLOT_BITS);
    }
    e = backing_to_entry (id, pslot, zstd);
    CHECK (!entry_is_empty (e));
    CHECK (entry_is_backing (e));
    CHECK (!entry_is_same (e) && !entry_is_ram (e));
    CHECK (!entry_is_young (e));
    CHECKF (entry_to_backing_id (e) == id, "id %u pslot %" PRIu64, id, pslot);
    CHECKF (entry_to_pslot (e) == pslot, "id %u pslot %" PRIu64, id, pslot);
    CHECK (entry_backing_is_zstd (e) == zstd);
    CHECK (!entry_is_writeback (e));
    CHECK (entry_same_place (e, entry_mkyoung (e)));
    if (pslot > 0)
      CHECK (!entry_same_place (e, backing_to_entry (id, pslot - 1, zstd)));
    CHECK (!entry_same_place (e, backing_to_entry (id ^ 1, pslot, zstd)));
    y = entry_mkyoung (e);
    CHECK (entry_is_young (y) && entry_is_backing (y));
    CHECK (entry_to_backing_id (y) == id && entry_to_pslot (y) == pslot);
    CHECK (entry_backing_is_zstd (y) == zstd);
    CHECK (entry_mkold (y) == e);
    CHECK (entry_mkold (e) == e);
  }

  /* mkyoung/mkold are idempotent and only touch the accessed bit. */
  for (k = 0; k < 100000; k++) {
    gs_entry e = rnd_next (&s) & ~GS_ENTRY_ACCESSED;
    if (entry_is_empty (e))
      continue;
    CHECK (entry_mkyoung (e) == (e | GS_ENTRY_ACCESSED));
    CHECK (entry_mkyoung (entry_mkyoung (e)) == entry_mkyoung (e));
    CHECK (entry_mkold (entry_mkold (e)) == e);
    CHECK (entry_tag (entry_mkyoung (e)) == entry_tag (e));
  }
  return 0;
}
