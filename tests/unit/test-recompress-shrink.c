/* Recompression shrinks the pool on compressible data, keeps every byte,
 * and never works on a page twice.
 *
 * Text-like pages (and some incompressible ones, stored raw) are written
 * at compression-level 1; a recompression pass at level 19 must then make
 * pages smaller, shrink the pool's live bytes and its segments (compared
 * before and after, not timed), account what it saved, and leave every
 * page reading back as written.  A second pass, and a pass after
 * compaction has moved the recompressed objects, must find nothing to do
 * (the final flag travels with a moved object).  A page rewritten after
 * the pass is recompressed by the next one.  With recompress-level 0,
 * gs_recompress refuses (-EINVAL).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ghostswap/device.h"
#include "test.h"

#define SLOTS 2048u

static unsigned char data[SLOTS][PAGE];

static void
check_all (struct gs_device *dev, const char *when)
{
  unsigned char got[PAGE];
  unsigned i;

  for (i = 0; i < SLOTS; i++) {
    CHECK_OK (gs_pread (dev, got, PAGE, (uint64_t) i * PAGE));
    CHECKF (memcmp (got, data[i], PAGE) == 0, "%s: slot %u differs at "
            "byte %ld", when, i, first_diff (got, data[i], PAGE));
  }
}

int
main (int argc, char **argv)
{
  struct gs_config cfg = test_config (SLOTS * PAGE, 64u << 20);
  struct gs_device *dev;
  struct gs_stats a, b, c;
  uint64_t s;
  int64_t n;
  unsigned i;

  TEST_INIT (argc, argv);
  s = test_seed ();

  /* Off: refused, and nothing counted. */
  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK (gs_recompress (dev) == -EINVAL);
  gs_get_stats (dev, &a);
  CHECK (a.recompress_level == 0 && a.recompressed_pages == 0);
  gs_device_destroy (dev);

  cfg.recompress_level = 19;
  CHECK_OK (gs_device_create (&cfg, &dev));
  for (i = 0; i < SLOTS; i++) {
    fill_kind (data[i], i % 8 == 7 ? KIND_RANDOM : KIND_TEXT, &s);
    CHECK_OK (gs_pwrite (dev, data[i], PAGE, (uint64_t) i * PAGE));
  }
  gs_get_stats (dev, &a);
  CHECK (a.slots_ram == SLOTS && a.recompress_level == 19);

  n = gs_recompress (dev);
  gs_get_stats (dev, &b);
  fprintf (stderr, "%s: %lld of %u pages smaller, %llu kept, %llu bytes "
           "saved; live %llu -> %llu bytes, pool %llu -> %llu bytes, "
           "%.3f s CPU\n", test_argv0, (long long) n, SLOTS,
           (unsigned long long) b.recompress_kept_pages,
           (unsigned long long) b.recompress_saved_bytes,
           (unsigned long long) a.pool_live_bytes,
           (unsigned long long) b.pool_live_bytes,
           (unsigned long long) a.pool_bytes,
           (unsigned long long) b.pool_bytes, b.recompress_cpu_seconds);
  CHECKF (n > (int64_t) SLOTS / 2, "only %lld pages smaller", (long long) n);
  CHECK ((uint64_t) n == b.recompressed_pages);
  /* Every page was tried: smaller, or kept (the random ones at least). */
  CHECK (b.recompressed_pages + b.recompress_kept_pages == SLOTS);
  CHECK (b.recompress_kept_pages >= SLOTS / 8);
  CHECK (b.recompress_saved_bytes > 0);
  CHECK (b.recompress_cpu_seconds > 0);
  /* Live bytes fell by exactly what was saved; the pool's segments too
   * (the walked segments emptied and were freed). */
  CHECK (a.pool_live_bytes - b.pool_live_bytes == b.recompress_saved_bytes);
  CHECKF (b.pool_bytes < a.pool_bytes, "pool %llu -> %llu",
          (unsigned long long) a.pool_bytes, (unsigned long long) b.pool_bytes);
  CHECK (b.pool_garbage_bytes == 0);
  CHECK (b.slots_ram == SLOTS);
  check_all (dev, "after the pass");

  /* Nothing is tried twice: not again, not after compaction moved it. */
  CHECK (gs_recompress (dev) == 0);
  gs_compact (dev);
  CHECK (gs_recompress (dev) == 0);
  gs_get_stats (dev, &c);
  CHECK (c.recompressed_pages == b.recompressed_pages
         && c.recompress_kept_pages == b.recompress_kept_pages);
  check_all (dev, "after a second pass");

  /* A rewritten page is new: the next pass takes it. */
  fill_kind (data[3], KIND_TEXT, &s);
  CHECK_OK (gs_pwrite (dev, data[3], PAGE, 3 * PAGE));
  n = gs_recompress (dev);
  gs_get_stats (dev, &c);
  CHECK (n + (int64_t) (c.recompress_kept_pages - b.recompress_kept_pages)
         == 1);
  check_all (dev, "after a rewrite");

  gs_device_destroy (dev);
  return 0;
}
