/* Same-filled pages: detection (codec.c), and through the device: they
 * take no pool space, read back exactly, are counted as same, and wide
 * patterns are reference-counted in the pattern table (pattern.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "core.h"
#include "ghostswap/device.h"
#include "pattern.h"
#include "test.h"

#define NSLOTS (3 * 512 + 7)      /* not a whole number of clusters */

static unsigned char page[PAGE], back[PAGE];

static void
check_detect (uint64_t seed_word)
{
  uint64_t pat = 0x1234;
  size_t i;

  fill_words (page, PAGE, seed_word);
  CHECK (gs_page_same_filled (page, &pat));
  CHECKF (pat == seed_word, "%#" PRIx64 " vs %#" PRIx64, pat, seed_word);

  /* gs_fill_pattern is the inverse. */
  memset (back, 0x5a, PAGE);
  gs_fill_pattern (back, pat);
  CHECK (memcmp (page, back, PAGE) == 0);

  /* Last word only differing. */
  page[PAGE - 1] ^= 1;
  CHECK (!gs_page_same_filled (page, &pat));
  page[PAGE - 1] ^= 1;
  page[PAGE - 8] ^= 0x80;
  CHECK (!gs_page_same_filled (page, &pat));
  page[PAGE - 8] ^= 0x80;
  /* First word differing. */
  page[0] ^= 0x40;
  CHECK (!gs_page_same_filled (page, &pat));
  page[0] ^= 0x40;
  page[7] ^= 0x01;
  CHECK (!gs_page_same_filled (page, &pat));
  page[7] ^= 0x01;
  /* One middle byte, at several places. */
  for (i = 8; i < PAGE - 8; i += 509) {
    page[i] ^= 0x10;
    CHECKF (!gs_page_same_filled (page, &pat), "byte %zu", i);
    page[i] ^= 0x10;
  }
  CHECK (gs_page_same_filled (page, &pat) && pat == seed_word);
}

static struct gs_stats
stats (struct gs_device *dev)
{
  struct gs_stats st;
  gs_get_stats (dev, &st);
  return st;
}

/* The pattern table on its own against a model: random gets and puts of
 * words from a small universe (so that words come back after their last
 * put, and probe runs shift on removal). */
static void
pattern_table_model (uint64_t *s)
{
  enum { UNIVERSE = 3000, OPS = 300000 };
  static uint64_t word[UNIVERSE];
  static uint32_t refs[UNIVERSE], index[UNIVERSE];
  struct gs_patterns pt;
  uint32_t live = 0, k, i;

  gs_patterns_init (&pt);
  for (i = 0; i < UNIVERSE; i++) {
    /* Some words differ only in high bits, some in low bits. */
    word[i] = i % 3 == 0 ? (uint64_t) i << 40 : i % 3 == 1
      ? 0xdead000000000000ull + i : rnd_next (s);
    refs[i] = 0;
  }
  for (k = 0; k < OPS; k++) {
    /* Bias: grow, then shrink, then grow again. */
    bool grow = (k / 50000) % 2 == 0 ? rnd_below (s, 100) < 70
      : rnd_below (s, 100) < 30;
    i = (uint32_t) rnd_below (s, UNIVERSE);
    if (grow || refs[i] == 0) {
      uint32_t idx = 0xffffffffu;
      CHECK_OK (gs_patterns_get (&pt, word[i], &idx));
      if (refs[i] > 0)
        CHECKF (idx == index[i], "word %u: index %u, had %u", i, idx, index[i]);
      else {
        uint32_t j;
        /* A new index no live word holds. */
        for (j = 0; j < UNIVERSE && k % 97 == 0; j++)
          CHECK (refs[j] == 0 || index[j] != idx);
        index[i] = idx;
        live++;
      }
      refs[i]++;
    }
    else {
      gs_patterns_put (&pt, index[i]);
      if (--refs[i] == 0)
        live--;
    }
    CHECKF (pt.count == live, "op %u: count %u, model %u", k, pt.count, live);
    if (k % 1000 == 0)
      for (i = 0; i < UNIVERSE; i++)
        if (refs[i] > 0)
          CHECKF (gs_patterns_word (&pt, index[i]) == word[i],
                  "op %u: word %u", k, i);
  }
  /* Every live word is found again at its index. */
  for (i = 0; i < UNIVERSE; i++)
    if (refs[i] > 0) {
      uint32_t idx;
      CHECK_OK (gs_patterns_get (&pt, word[i], &idx));
      CHECK (idx == index[i]);
      gs_patterns_put (&pt, idx);
      while (refs[i]-- > 0)
        gs_patterns_put (&pt, index[i]);
    }
  CHECK (pt.count == 0);
  CHECK (gs_patterns_bytes (&pt) > 0);
  gs_patterns_destroy (&pt);
}

int
main (int argc, char *argv[])
{
  struct gs_config cfg;
  struct gs_device *dev;
  struct gs_stats st;
  uint64_t seed, s, pat;
  unsigned i;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;

  /* --- detection --- */
  memset (page, 0, PAGE);
  CHECK (gs_page_same_filled (page, &pat) && pat == 0);
  check_detect (0);
  check_detect (~0ull);
  check_detect (0x0101010101010101ull);
  check_detect (0xdeadbeefcafef00dull);
  for (i = 0; i < 200; i++)
    check_detect (rnd_next (&s));
  /* A page repeating a 16-byte unit whose halves differ is not. */
  for (i = 0; i < PAGE / 16; i++) {
    memset (page + 16 * i, 0x11, 8);
    memset (page + 16 * i + 8, 0x22, 8);
  }
  CHECK (!gs_page_same_filled (page, &pat));
  fill_random (page, PAGE, &s);
  CHECK (!gs_page_same_filled (page, &pat));

  pattern_table_model (&s);

  /* --- through the device --- */
  cfg = test_config ((uint64_t) NSLOTS * PAGE, 64 << 20);
  CHECK_OK (gs_device_create (&cfg, &dev));

  /* Zero pages: same, same_zero, no pool bytes. */
  memset (page, 0, PAGE);
  for (i = 0; i < 600; i++)
    CHECK_OK (gs_pwrite (dev, page, PAGE, (uint64_t) i * PAGE));
  st = stats (dev);
  CHECKF (st.slots_same == 600, "slots_same %" PRIu64, st.slots_same);
  CHECKF (st.slots_same_zero == 600, "slots_same_zero %" PRIu64,
          st.slots_same_zero);
  CHECK (st.slots_ram == 0);
  CHECK (st.pool_bytes == 0);
  CHECK (st.slots_empty == NSLOTS - 600);
  for (i = 0; i < 600; i += 37) {
    memset (back, 0xee, PAGE);
    CHECK_OK (gs_pread (dev, back, PAGE, (uint64_t) i * PAGE));
    CHECK (memcmp (back, page, PAGE) == 0);
  }

  /* Inline patterns over some of them, then wide ones. */
  {
    static uint64_t words[NSLOTS];
    unsigned nwide = 0;

    for (i = 0; i < NSLOTS; i++) {
      words[i] = i % 3 == 0 ? 0 : i % 3 == 1 ? inline_word (&s) : wide_word (&s);
      if (words[i] != 0 && !pattern_fits_inline (words[i]))
        nwide++;
      fill_words (page, PAGE, words[i]);
      CHECK_OK (gs_pwrite (dev, page, PAGE, (uint64_t) i * PAGE));
    }
    CHECK (nwide > 0);
    st = stats (dev);
    CHECKF (st.slots_same == NSLOTS, "slots_same %" PRIu64, st.slots_same);
    CHECKF (st.slots_same_zero == (NSLOTS + 2) / 3, "same_zero %" PRIu64,
            st.slots_same_zero);
    CHECK (st.slots_ram == 0 && st.pool_bytes == 0 && st.slots_empty == 0);
    CHECKF (dev->patterns.count == nwide, "pattern count %u, %u wide",
            dev->patterns.count, nwide);
    for (i = 0; i < NSLOTS; i++) {
      fill_words (page, PAGE, words[i]);
      CHECK_OK (gs_pread (dev, back, PAGE, (uint64_t) i * PAGE));
      CHECKF (memcmp (back, page, PAGE) == 0, "slot %u word %#" PRIx64,
              i, words[i]);
    }
    /* Unaligned reads across same-filled slots. */
    {
      static unsigned char big[3 * PAGE];
      uint64_t off = 5 * PAGE + 1001;
      CHECK_OK (gs_pread (dev, big, sizeof big - 5, off));
      for (i = 0; i < sizeof big - 5; i++) {
        uint64_t at = off + i;
        unsigned slot = (unsigned) (at / PAGE);
        unsigned char b[8];
        memcpy (b, &words[slot], 8);
        CHECKF (big[i] == b[at % 8], "byte at %" PRIu64, at);
      }
    }

    /* Overwrite every wide slot with data: their patterns go. */
    for (i = 0; i < NSLOTS; i++)
      if (i % 3 == 2) {
        fill_text (page, PAGE, &s);
        CHECK_OK (gs_pwrite (dev, page, PAGE, (uint64_t) i * PAGE));
      }
    CHECKF (dev->patterns.count == 0, "pattern count %u", dev->patterns.count);
    st = stats (dev);
    CHECK (st.slots_ram == NSLOTS / 3);
    CHECK (st.slots_same == NSLOTS - NSLOTS / 3);
    CHECK (st.pool_bytes > 0);
  }

  /* Many slots sharing one wide pattern: one table entry, released only
   * when the last of them goes. */
  {
    const uint64_t w = 0xdeadbeefcafef00dull;
    const unsigned n = 1000;
    uint32_t before = dev->patterns.count;

    fill_words (page, PAGE, w);
    for (i = 0; i < n; i++)
      CHECK_OK (gs_pwrite (dev, page, PAGE, (uint64_t) i * PAGE));
    CHECKF (dev->patterns.count == before + 1, "count %u", dev->patterns.count);
    /* Trim all but one: still there. */
    CHECK_OK (gs_trim (dev, (n - 1) * PAGE, PAGE));
    CHECK (dev->patterns.count == before + 1);
    CHECK_OK (gs_pread (dev, back, PAGE, 0));
    CHECK (memcmp (back, page, PAGE) == 0);
    CHECK_OK (gs_pread (dev, back, PAGE, PAGE));
    memset (page, 0, PAGE);
    CHECK (memcmp (back, page, PAGE) == 0);
    /* The last one overwritten by a zero write. */
    CHECK_OK (gs_zero (dev, PAGE, 0, 0));
    CHECK (dev->patterns.count == before);
    /* Re-add, interleaving with other wide words, then trim all. */
    for (i = 0; i < n; i++) {
      fill_words (page, PAGE, i % 2 ? w : 0x8badf00d8badf00dull + (i % 7));
      CHECK_OK (gs_pwrite (dev, page, PAGE, (uint64_t) i * PAGE));
    }
    CHECKF (dev->patterns.count == before + 8, "count %u", dev->patterns.count);
    for (i = 0; i < n; i++) {
      fill_words (page, PAGE, i % 2 ? w : 0x8badf00d8badf00dull + (i % 7));
      CHECK_OK (gs_pread (dev, back, PAGE, (uint64_t) i * PAGE));
      CHECKF (memcmp (back, page, PAGE) == 0, "slot %u", i);
    }
    CHECK_OK (gs_trim (dev, NSLOTS * PAGE, 0));
    CHECKF (dev->patterns.count == 0, "count %u", dev->patterns.count);
    st = stats (dev);
    CHECK (st.slots_same == 0 && st.slots_same_zero == 0 && st.slots_ram == 0);
    CHECK (st.slots_empty == NSLOTS);
    CHECKF (st.clusters == 0, "clusters %" PRIu64, st.clusters);
  }

  /* Many distinct wide patterns (the table grows, rehashes, frees and
   * reuses indexes): all read back; trimming every other one and
   * rewriting keeps the rest right. */
  {
    static uint64_t words[NSLOTS];
    for (i = 0; i < NSLOTS; i++) {
      words[i] = wide_word (&s);
      fill_words (page, PAGE, words[i]);
      CHECK_OK (gs_pwrite (dev, page, PAGE, (uint64_t) i * PAGE));
    }
    CHECK (dev->patterns.count == NSLOTS);
    for (i = 0; i < NSLOTS; i += 2)
      CHECK_OK (gs_trim (dev, PAGE, (uint64_t) i * PAGE));
    CHECK (dev->patterns.count == NSLOTS / 2);
    for (i = 0; i < NSLOTS; i += 2) {
      words[i] = wide_word (&s);
      fill_words (page, PAGE, words[i]);
      CHECK_OK (gs_pwrite (dev, page, PAGE, (uint64_t) i * PAGE));
    }
    CHECK (dev->patterns.count == NSLOTS);
    for (i = 0; i < NSLOTS; i++) {
      fill_words (page, PAGE, words[i]);
      CHECK_OK (gs_pread (dev, back, PAGE, (uint64_t) i * PAGE));
      CHECKF (memcmp (back, page, PAGE) == 0, "slot %u", i);
    }
    /* Patterns made by partial writes (read-modify-write) count too. */
    fill_words (page, PAGE, words[1]);
    CHECK_OK (gs_pwrite (dev, page, 100, 0));        /* slot 0: mixed */
    CHECK_OK (gs_pwrite (dev, page + 100, PAGE - 100, 100));  /* = words[1] */
    CHECK_OK (gs_pread (dev, back, PAGE, 0));
    CHECK (memcmp (back, page, PAGE) == 0);
    st = stats (dev);
    CHECK (st.slots_same == NSLOTS && st.slots_ram == 0);
    CHECK_OK (gs_zero (dev, NSLOTS * PAGE, 0, GS_ZERO_MAY_TRIM));
    CHECKF (dev->patterns.count == 0, "count %u", dev->patterns.count);
    st = stats (dev);
    CHECK (st.slots_empty == NSLOTS && st.clusters == 0);
  }

  gs_device_destroy (dev);
  return 0;
}
