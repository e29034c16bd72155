/* The recompression thread on its own: cold pages are recompressed
 * without any call, every byte stays, and a device destroyed in the
 * middle of a throttled pass stops it.
 *
 * Pages written once and left alone become cold after two of the
 * thread's periods (5 to 10 s); the test waits (up to 120 s, a bound for
 * a stuck thread, not a measure of speed) until every page has been
 * recompressed or tried, then reads them all back.  Then, on a second
 * device at recompress-cpu=1 with many pages, it waits for the first
 * recompressed page and destroys the device while the pass is still
 * sleeping between slices: destroy must stop and join the thread (under
 * the sanitizers: with nothing leaked or raced).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ghostswap/device.h"
#include "test.h"

#define SLOTS 256u
#define MANY 4096u

static unsigned char data[SLOTS][PAGE];

/* Wait until @done says so, at most 120 s. */
static bool
wait_for (struct gs_device *dev, bool (*done) (const struct gs_stats *))
{
  struct gs_stats st;
  unsigned i;

  for (i = 0; i < 1200; i++) {
    gs_get_stats (dev, &st);
    if (done (&st))
      return true;
    usleep (100000);
  }
  return false;
}

static bool
all_tried (const struct gs_stats *st)
{
  return st->recompressed_pages + st->recompress_kept_pages >= SLOTS;
}

static bool
one_smaller (const struct gs_stats *st)
{
  return st->recompressed_pages > 0;
}

int
main (int argc, char **argv)
{
  struct gs_config cfg = test_config (MANY * PAGE, 64u << 20);
  struct gs_device *dev;
  struct gs_stats st;
  unsigned char got[PAGE];
  uint64_t s;
  unsigned i;

  TEST_INIT (argc, argv);
  s = test_seed ();
  cfg.recompress_level = 19;
  cfg.recompress_cpu = 100;
  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK_OK (gs_device_start (dev));
  for (i = 0; i < SLOTS; i++) {
    fill_kind (data[i], KIND_TEXT, &s);
    CHECK_OK (gs_pwrite (dev, data[i], PAGE, (uint64_t) i * PAGE));
  }
  CHECKF (wait_for (dev, all_tried), "the thread did not recompress the "
          "cold pages within 120 s");
  gs_get_stats (dev, &st);
  fprintf (stderr, "%s: %llu pages smaller, %llu kept, %llu bytes saved, "
           "%.3f s CPU\n", test_argv0,
           (unsigned long long) st.recompressed_pages,
           (unsigned long long) st.recompress_kept_pages,
           (unsigned long long) st.recompress_saved_bytes,
           st.recompress_cpu_seconds);
  CHECK (st.recompressed_pages > 0 && st.recompress_cpu_seconds > 0);
  CHECK (st.recompressed_pages + st.recompress_kept_pages == SLOTS);
  for (i = 0; i < SLOTS; i++) {
    CHECK_OK (gs_pread (dev, got, PAGE, (uint64_t) i * PAGE));
    CHECKF (memcmp (got, data[i], PAGE) == 0, "slot %u differs at byte %ld",
            i, first_diff (got, data[i], PAGE));
  }
  gs_device_destroy (dev);

  /* Destroyed in the middle of a slow pass. */
  cfg.recompress_cpu = 1;
  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK_OK (gs_device_start (dev));
  for (i = 0; i < MANY; i++) {
    fill_kind (got, KIND_TEXT, &s);
    CHECK_OK (gs_pwrite (dev, got, PAGE, (uint64_t) i * PAGE));
  }
  CHECKF (wait_for (dev, one_smaller), "no page recompressed within 120 s");
  gs_get_stats (dev, &st);
  fprintf (stderr, "%s: destroyed after %llu of %u pages\n", test_argv0,
           (unsigned long long) (st.recompressed_pages
                                 + st.recompress_kept_pages), MANY);
  gs_device_destroy (dev);
  return 0;
}
