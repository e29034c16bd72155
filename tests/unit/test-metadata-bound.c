/* Metadata stays bounded under hostile request patterns, and comes back:
 * zero pages at random offsets of a 4 EiB device, WRITE_ZEROES with and
 * without NO_HOLE over 4 GiB ranges, data at random offsets then trims
 * of all of it.  Checked by this process's RSS (the independent
 * expectation) and by the engine's memory account against it.
 *
 * Skipped under sanitizers (GHOSTSWAP_SANITIZE): their shadow memory and
 * quarantine make RSS meaningless.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "ghostswap/device.h"
#include "test.h"

#define MIB (1024 * 1024)
#define DEV_SIZE (UINT64_C (4) << 60)          /* size=4E */
#define NZEROPAGES 20000
#define NDATA 2000
#define RANGE (UINT32_C (0xffffffff) - PAGE + 1) /* 4 GiB - 4 KiB */

static long
rss_kib (void)
{
  FILE *f = fopen ("/proc/self/status", "r");
  char line[256];
  long kib = -1;

  CHECK (f != NULL);
  while (fgets (line, sizeof line, f))
    if (sscanf (line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose (f);
  CHECK (kib > 0);
  return kib;
}

static struct gs_stats
stats (struct gs_device *dev)
{
  struct gs_stats st;

  gs_get_stats (dev, &st);
  return st;
}

static uint64_t
random_slot (uint64_t *s)
{
  return rnd_below (s, DEV_SIZE / PAGE);
}

/* RSS growth since @base must stay under @bound_kib. */
static void
check_growth (const char *what, long base, long bound_kib)
{
  long now = rss_kib ();

  fprintf (stderr, "%s: %s: RSS %+ld KiB\n", test_argv0, what, now - base);
  CHECKF (now - base <= bound_kib, "%s grew RSS by %ld KiB (bound %ld KiB)",
          what, now - base, bound_kib);
}

int
main (int argc, char **argv)
{
  static uint64_t data_slot[NDATA];
  static unsigned char page[PAGE], back[PAGE];
  struct gs_config cfg;
  struct gs_device *dev;
  struct gs_stats st0, st;
  uint64_t seed, s, i;
  long base, grown;
  int64_t account, rss_delta;
  uint64_t table0;

  TEST_INIT (argc, argv);
  if (getenv ("GHOSTSWAP_SANITIZE"))
    SKIP ("RSS bounds mean nothing under sanitizers (GHOSTSWAP_SANITIZE is set)");
  seed = test_seed ();
  s = seed;

  cfg = test_config (DEV_SIZE, 16 * MIB);
  CHECK_OK (gs_device_create (&cfg, &dev));
  /* Warm this thread's codec contexts and stdio so they are not counted. */
  fill_text (page, PAGE, &s);
  CHECK_OK (gs_pwrite (dev, page, PAGE, 0));
  CHECK_OK (gs_pread (dev, back, PAGE, 0));
  CHECK_OK (gs_trim (dev, PAGE, 0));
  st0 = stats (dev);
  table0 = gs_table_metadata_bytes (&dev->table);
  base = rss_kib ();

  /* Zero pages at random offsets: they read as zero already. */
  memset (page, 0, PAGE);
  for (i = 0; i < NZEROPAGES; i++)
    CHECK_OK (gs_pwrite (dev, page, PAGE, random_slot (&s) * PAGE));
  st = stats (dev);
  CHECKF (st.clusters == 0 && gs_table_metadata_bytes (&dev->table) == table0,
          "%d zero pages: %" PRIu64 " clusters, table %" PRIu64 " bytes",
          NZEROPAGES, st.clusters, gs_table_metadata_bytes (&dev->table));
  check_growth ("20000 zero pages at random offsets", base, 1024);

  /* WRITE_ZEROES over 4 GiB ranges of an empty device, NO_HOLE and not. */
  for (i = 0; i < 32; i++) {
    uint64_t off = rnd_below (&s, (DEV_SIZE - RANGE) / PAGE) * PAGE;
    CHECK_OK (gs_zero (dev, RANGE, off, i % 2 ? GS_ZERO_MAY_TRIM : 0));
  }
  st = stats (dev);
  CHECKF (st.clusters == 0 && gs_table_metadata_bytes (&dev->table) == table0,
          "zeroes: %" PRIu64 " clusters", st.clusters);
  check_growth ("32 WRITE_ZEROES of 4 GiB (16 NO_HOLE)", base, 1024);

  /* Data at random offsets: each page a cluster, a leaf and a path of
   * nodes of its own.  The account must follow RSS. */
  for (i = 0; i < NDATA; i++) {
    data_slot[i] = random_slot (&s);
    fill_text (page, PAGE, &s);
    CHECK_OK (gs_pwrite (dev, page, PAGE, data_slot[i] * PAGE));
  }
  st = stats (dev);
  grown = rss_kib () - base;
  rss_delta = (int64_t) grown * 1024;
  account = (int64_t) (st.memory_bytes - st0.memory_bytes);
  fprintf (stderr, "%s: %d data pages: RSS %+ld KiB, account %+" PRId64
           " KiB, metadata %" PRIu64 " KiB\n", test_argv0, NDATA, grown,
           account / 1024, st.metadata_bytes / 1024);
  CHECK (st.metadata_bytes > (uint64_t) NDATA * 2 * PAGE);
  CHECKF (llabs (rss_delta - account) <= rss_delta / 33 + 256 * 1024,
          "RSS grew by %" PRId64 " bytes, the account by %" PRId64,
          rss_delta, account);
  CHECK (st.memory_peak_bytes >= st.memory_bytes);

  /* Trim all of it: the table goes back to its root node. */
  for (i = 0; i < NDATA; i++)
    CHECK_OK (gs_trim (dev, PAGE, data_slot[i] * PAGE));
  st = stats (dev);
  CHECKF (st.clusters == 0 && gs_table_metadata_bytes (&dev->table) == table0,
          "after trimming everything: %" PRIu64 " clusters, table %"
          PRIu64 " bytes (empty: %" PRIu64 ")", st.clusters,
          gs_table_metadata_bytes (&dev->table), table0);
  CHECKF (dev->table.leaves_freed >= NDATA, "%" PRIu64 " leaves and nodes freed",
          dev->table.leaves_freed);
  /* What is left: the pool's open segments (one per stream used). */
  check_growth ("2000 data pages at random offsets, then trimmed", base,
                1024 + (long) (GS_POOL_STREAMS + 1) * GS_SEGMENT_BYTES / 1024);
  CHECK (stats (dev).memory_peak_bytes > st.memory_bytes);
  gs_reset_peak (dev);
  st = stats (dev);
  CHECKF (st.memory_peak_bytes == st.memory_bytes, "peak %" PRIu64
          " after reset, now %" PRIu64, st.memory_peak_bytes, st.memory_bytes);

  gs_device_destroy (dev);
  fprintf (stderr, "%s: seed %" PRIu64 " ok\n", test_argv0, seed);
  return 0;
}
