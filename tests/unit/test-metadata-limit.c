/* metadata-limit: past the cap, a write that needs new metadata fails
 * with ENOSPC and nothing stored changes; writes that need none, zeroes
 * and trims still work; trimming gives the room back.  Checked against a
 * shadow of every page written. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghostswap/device.h"
#include "test.h"

#define DEV_SIZE (UINT64_C (4) << 60)          /* size=4E */
#define LIMIT (256u * 1024)
#define MAXPAGES 1000

static struct gs_stats
stats (struct gs_device *dev)
{
  struct gs_stats st;

  gs_get_stats (dev, &st);
  return st;
}

static uint64_t slot_of[MAXPAGES], seed_of[MAXPAGES];
static unsigned npages;

static void
page_for (unsigned char *page, uint64_t seed)
{
  uint64_t s = seed;
  fill_text (page, PAGE, &s);
}

static void
check_all (struct gs_device *dev, const char *when)
{
  static unsigned char want[PAGE], got[PAGE];
  unsigned k;

  for (k = 0; k < npages; k++) {
    page_for (want, seed_of[k]);
    CHECK_OK (gs_pread (dev, got, PAGE, slot_of[k] * PAGE));
    CHECKF (memcmp (want, got, PAGE) == 0, "%s: page %u (slot %" PRIu64
            ") differs at byte %ld", when, k, slot_of[k],
            first_diff (want, got, PAGE));
  }
}

static bool
is_zero_page (const unsigned char *p)
{
  return p[0] == 0 && memcmp (p, p + 1, PAGE - 1) == 0;
}

int
main (int argc, char **argv)
{
  static unsigned char page[PAGE], back[PAGE];
  struct gs_config cfg;
  struct gs_device *dev;
  struct gs_stats st;
  uint64_t seed, s, slot, enospc0;
  unsigned k;
  int r = 0;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;

  cfg = test_config (DEV_SIZE, 64 << 20);
  cfg.metadata_limit = LIMIT;
  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK (stats (dev).metadata_limit == LIMIT);

  /* Pages far apart, each needing new nodes, a leaf and an entry array,
   * until the cap refuses one. */
  while (npages < MAXPAGES) {
    slot = rnd_below (&s, DEV_SIZE / PAGE);
    seed_of[npages] = rnd_next (&s);
    page_for (page, seed_of[npages]);
    r = gs_pwrite (dev, page, PAGE, slot * PAGE);
    if (r != 0)
      break;
    slot_of[npages++] = slot;
  }
  CHECKF (r == -ENOSPC, "after %u pages: %d (want -ENOSPC)", npages, r);
  CHECKF (npages > 5, "only %u pages fit under %u bytes", npages, LIMIT);
  st = stats (dev);
  CHECKF (st.metadata_bytes <= LIMIT + 64 * 1024 && st.enospc == 1,
          "metadata %" PRIu64 " (limit %u), enospc %" PRIu64,
          st.metadata_bytes, LIMIT, st.enospc);
  /* The refused page was not stored, and nothing else changed. */
  CHECK_OK (gs_pread (dev, back, PAGE, slot * PAGE));
  CHECK (is_zero_page (back));
  check_all (dev, "after the refused write");
  enospc0 = st.enospc;

  /* More refusals leave everything as it was, whatever the request. */
  for (k = 0; k < 20; k++) {
    uint64_t far = rnd_below (&s, DEV_SIZE / PAGE - 3);
    fill_text (page, PAGE, &s);
    r = gs_pwrite (dev, page, PAGE - 100, far * PAGE + 50);
    CHECKF (r == -ENOSPC || r == 0, "partial write: %d", r);
    if (r == 0) {         /* it fell into a cluster that exists: undo it
                           * (a slot of ours is one in about 2^40) */
      CHECK_OK (gs_trim (dev, PAGE, far * PAGE));
      continue;
    }
    CHECK_OK (gs_pread (dev, back, PAGE, far * PAGE));
    CHECK (is_zero_page (back));
  }
  check_all (dev, "after refused partial writes");
  CHECK (stats (dev).enospc > enospc0);

  /* What needs no new metadata still works at the cap: rewriting a page,
   * another slot of a cluster that exists, zeroes and trims anywhere. */
  seed_of[0] = rnd_next (&s);
  page_for (page, seed_of[0]);
  CHECK_OK (gs_pwrite (dev, page, PAGE, slot_of[0] * PAGE));
  if (slot_of[1] % 512 != 512 - 1) {
    seed_of[npages] = rnd_next (&s);
    slot_of[npages] = slot_of[1] + 1;
    page_for (page, seed_of[npages]);
    CHECK_OK (gs_pwrite (dev, page, PAGE, slot_of[npages] * PAGE));
    npages++;
  }
  CHECK_OK (gs_zero (dev, 1 << 30, rnd_below (&s, 1 << 20) * (1ull << 32), 0));
  CHECK_OK (gs_trim (dev, 1 << 30, rnd_below (&s, 1 << 20) * (1ull << 32)));
  check_all (dev, "after writes that need no metadata");

  /* Trimming every page gives the room back: far pages fit again. */
  for (k = 0; k < npages; k++)
    CHECK_OK (gs_trim (dev, PAGE, slot_of[k] * PAGE));
  st = stats (dev);
  /* Left: the root node, and the descriptors of open pool segments. */
  CHECKF (st.clusters == 0 && st.metadata_bytes <= 4096 + st.segments * 64,
          "after trimming: %" PRIu64 " clusters, %" PRIu64 " bytes",
          st.clusters, st.metadata_bytes);
  npages = 0;
  for (k = 0; k < 5; k++) {
    slot_of[npages] = rnd_below (&s, DEV_SIZE / PAGE);
    seed_of[npages] = rnd_next (&s);
    page_for (page, seed_of[npages]);
    CHECK_OK (gs_pwrite (dev, page, PAGE, slot_of[npages] * PAGE));
    npages++;
  }
  check_all (dev, "after trimming and writing again");

  gs_device_destroy (dev);
  fprintf (stderr, "%s: seed %" PRIu64 " ok\n", test_argv0, seed);
  return 0;
}
