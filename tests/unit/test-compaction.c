/* Pool compaction (lib/pool.c, relocate in lib/device.c): garbage goes,
 * live objects move with their back-pointers kept right, no slot changes
 * contents; and compaction racing writers, trimmers and readers. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "ghostswap/device.h"
#include "pool.h"
#include "table.h"
#include "test.h"

static struct gs_stats
stats (struct gs_device *dev)
{
  struct gs_stats st;
  gs_get_stats (dev, &st);
  return st;
}

/* Every RAM entry's object names its slot as owner; count them. */
static uint64_t
check_back_pointers (struct gs_device *dev)
{
  uint64_t nclusters = (dev->nslots + GS_CLUSTER_SLOTS - 1) / GS_CLUSTER_SLOTS;
  uint64_t cidx, ram = 0;

  for (cidx = 0; cidx < nclusters; cidx++) {
    struct gs_cluster *c = gs_table_get (&dev->table, cidx, false);
    unsigned i;

    if (!c)
      continue;
    gs_cluster_lock (c);
    for (i = 0; i < GS_CLUSTER_SLOTS; i++) {
      gs_entry e = __gs_cluster_entry (c, i);
      uint64_t slot = cidx * GS_CLUSTER_SLOTS + i;
      if (!entry_is_ram (e))
        continue;
      ram++;
      CHECKF (gs_pool_object_owner (e) == slot,
              "slot %" PRIu64 ": object owner %" PRIu64, slot,
              gs_pool_object_owner (e));
      {
        size_t cap;
        bool raw;
        const void *p = gs_pool_object (e, &cap, &raw);
        CHECK (p != NULL && cap > 0);
        if (raw)
          CHECK (cap == PAGE);
      }
    }
    gs_cluster_unlock (c);
  }
  return ram;
}

static bool
all_zero_page (const unsigned char *p)
{
  size_t i;
  for (i = 0; i < PAGE; i++)
    if (p[i])
      return false;
  return true;
}

static void
check_slot (struct gs_device *dev, const unsigned char *shadow, uint64_t slot)
{
  unsigned char got[PAGE];
  long d;

  CHECK_OK (gs_pread (dev, got, PAGE, slot * PAGE));
  d = first_diff (got, shadow + slot * PAGE, PAGE);
  CHECKF (d < 0, "slot %" PRIu64 " byte %ld: %#x, shadow %#x", slot, d,
          got[d], shadow[slot * PAGE + (uint64_t) d]);
}

/* Page contents for the compaction tests: mostly compressible, of varied
 * size, a few raw. */
static void
varied_page (unsigned char *p, uint64_t *s)
{
  unsigned r = (unsigned) rnd_below (s, 20);

  if (r == 0)
    fill_random (p, PAGE, s);
  else if (r == 1) {
    /* Half random, half zero: a middle-sized frame. */
    memset (p, 0, PAGE);
    fill_random (p, PAGE / 2 - rnd_below (s, 1000), s);
  }
  else
    fill_text (p, PAGE, s);
}

static void
offline (uint64_t *s)
{
  const uint64_t nslots = 6000;
  struct gs_config cfg = test_config (nslots * PAGE + 5 * PAGE, 256 << 20);
  struct gs_device *dev;
  unsigned char *shadow = calloc (nslots + 5, PAGE);
  unsigned char page[PAGE];
  struct gs_stats before, after;
  uint64_t i, moved, dropped = 0, rewritten = 0;

  CHECK (shadow != NULL);
  CHECK_OK (gs_device_create (&cfg, &dev));
  for (i = 0; i < nslots; i++) {
    varied_page (shadow + i * PAGE, s);
    CHECK_OK (gs_pwrite (dev, shadow + i * PAGE, PAGE, i * PAGE));
  }
  before = stats (dev);
  CHECK (before.slots_ram == nslots);
  CHECK (check_back_pointers (dev) == nslots);
  CHECKF (before.pool_garbage_bytes == 0, "garbage %" PRIu64 " before any free",
          before.pool_garbage_bytes);

  /* Make garbage: overwrite or trim a random 60 %. */
  for (i = 0; i < nslots; i++) {
    if (rnd_below (s, 100) >= 60)
      continue;
    switch (rnd_below (s, 4)) {
    case 0:
      CHECK_OK (gs_trim (dev, PAGE, i * PAGE));
      memset (shadow + i * PAGE, 0, PAGE);
      dropped++;
      break;
    case 1:
      CHECK_OK (gs_zero (dev, PAGE, i * PAGE, 0));
      memset (shadow + i * PAGE, 0, PAGE);
      dropped++;
      break;
    case 2:
      fill_words (page, PAGE, wide_word (s));
      CHECK_OK (gs_pwrite (dev, page, PAGE, i * PAGE));
      memcpy (shadow + i * PAGE, page, PAGE);
      dropped++;
      break;
    default:
      /* Rewritten with new data: a new object. */
      varied_page (page, s);
      CHECK_OK (gs_pwrite (dev, page, PAGE, i * PAGE));
      memcpy (shadow + i * PAGE, page, PAGE);
      rewritten++;
    }
  }
  before = stats (dev);
  CHECK (before.slots_ram == nslots - dropped);
  CHECKF (before.pool_garbage_bytes > 0, "no garbage after freeing %" PRIu64
          " of %" PRIu64, dropped + rewritten, nslots);
  CHECK (before.pool_live_bytes < before.pool_bytes);

  moved = gs_compact (dev);
  after = stats (dev);
  fprintf (stderr, "%s: compaction moved %" PRIu64 " objects; pool %" PRIu64
           " -> %" PRIu64 " bytes, garbage %" PRIu64 " -> %" PRIu64 "\n",
           test_argv0, moved, before.pool_bytes, after.pool_bytes,
           before.pool_garbage_bytes, after.pool_garbage_bytes);
  CHECK (moved > 0);
  CHECK (after.objects_moved == before.objects_moved + moved);
  CHECK (after.compactions == before.compactions + 1);
  CHECKF (after.pool_garbage_bytes * 20 < before.pool_garbage_bytes,
          "garbage %" PRIu64 " -> %" PRIu64, before.pool_garbage_bytes,
          after.pool_garbage_bytes);
  CHECKF (after.pool_bytes < before.pool_bytes, "pool %" PRIu64 " -> %" PRIu64,
          before.pool_bytes, after.pool_bytes);
  /* Nothing live was lost or duplicated. */
  CHECK (after.pool_live_bytes == before.pool_live_bytes);
  CHECK (after.compressed_bytes == before.compressed_bytes);
  CHECK (after.slots_ram == before.slots_ram);
  CHECK (after.slots_ram_raw == before.slots_ram_raw);
  CHECK (after.slots_same == before.slots_same);
  /* The pool is now about as big as what it holds. */
  CHECKF (after.pool_bytes - after.pool_live_bytes
          <= (GS_POOL_STREAMS + 2) * (GS_SEGMENT_DATA + 1024),
          "pool %" PRIu64 ", live %" PRIu64, after.pool_bytes,
          after.pool_live_bytes);
  CHECK (check_back_pointers (dev) == after.slots_ram);
  for (i = 0; i < nslots + 5; i++)
    check_slot (dev, shadow, i);

  /* A second pass finds nothing to do. */
  CHECK (gs_compact (dev) == 0);
  CHECK (check_back_pointers (dev) == after.slots_ram);

  /* Free everything that moved, and more: live bytes go to zero. */
  CHECK_OK (gs_trim (dev, (uint32_t) (nslots * PAGE), 0));
  after = stats (dev);
  CHECK (after.pool_live_bytes == 0 && after.slots_ram == 0);
  CHECK (after.clusters == 0);
  gs_compact (dev);
  after = stats (dev);
  CHECKF (after.pool_garbage_bytes == 0, "garbage %" PRIu64,
          after.pool_garbage_bytes);
  /* Only open segments may remain. */
  CHECKF (after.segments <= GS_POOL_STREAMS + 1, "%" PRIu64 " segments",
          after.segments);
  gs_device_destroy (dev);
  free (shadow);
}

/* A full pool with garbage: writers that meet ENOSPC compact and go on;
 * gs_set_ram_limit moves the wall both ways. */
static void
full_pool (uint64_t *s)
{
  const uint64_t nslots = 4096, limit = 2 << 20;
  struct gs_config cfg = test_config (nslots * PAGE, limit);
  struct gs_device *dev;
  unsigned char *shadow = calloc (nslots, PAGE);
  unsigned char page[PAGE];
  uint64_t i, filled, freed = 0, rewritten = 0;
  struct gs_stats st;
  int r = 0;

  CHECK (shadow != NULL);
  CHECK_OK (gs_device_create (&cfg, &dev));
  /* Fill until the pool is full. */
  for (i = 0; i < nslots; i++) {
    varied_page (page, s);
    r = gs_pwrite (dev, page, PAGE, i * PAGE);
    if (r == -ENOSPC)
      break;
    CHECK_OK (r);
    memcpy (shadow + i * PAGE, page, PAGE);
  }
  CHECKF (r == -ENOSPC, "a %" PRIu64 "-byte pool held %" PRIu64 " pages",
          limit, i);
  filled = i;
  check_slot (dev, shadow, filled);       /* the failed write left it */
  st = stats (dev);
  CHECKF (st.pool_bytes <= limit, "pool %" PRIu64 " over its limit %" PRIu64,
          st.pool_bytes, limit);
  CHECK (st.enospc == 1 && st.errors == 1);
  /* Same-filled pages need no pool: they still go in. */
  fill_words (page, PAGE, wide_word (s));
  CHECK_OK (gs_pwrite (dev, page, PAGE, filled * PAGE));
  memcpy (shadow + filled * PAGE, page, PAGE);
  CHECK_OK (gs_zero (dev, PAGE, (filled + 1) * PAGE, 0));

  /* Free 60 % (scattered): garbage in every segment. */
  for (i = 0; i < filled; i++)
    if (rnd_below (s, 100) < 60) {
      CHECK_OK (gs_trim (dev, PAGE, i * PAGE));
      memset (shadow + i * PAGE, 0, PAGE);
      freed++;
    }
  /* Writes of the same kind of pages find room again, by compaction. */
  for (i = 0; i < filled && rewritten < freed / 2; i++) {
    if (!all_zero_page (shadow + i * PAGE))
      continue;
    varied_page (page, s);
    r = gs_pwrite (dev, page, PAGE, i * PAGE);
    CHECKF (r == 0, "rewrite %" PRIu64 " of %" PRIu64 " freed: %d", rewritten,
            freed, r);
    memcpy (shadow + i * PAGE, page, PAGE);
    rewritten++;
  }
  st = stats (dev);
  CHECK (st.compactions > 0 && st.objects_moved > 0);
  CHECK (st.pool_bytes <= limit + GS_POOL_RESERVE * (GS_SEGMENT_DATA + 4096));
  for (i = 0; i < nslots; i++)
    check_slot (dev, shadow, i);
  CHECK (check_back_pointers (dev) == st.slots_ram);

  /* Lower the limit below what is stored: nothing is lost, new data is
   * refused; raise it: accepted again. */
  CHECK (gs_set_ram_limit (dev, 0) == -EINVAL);
  CHECK (gs_set_ram_limit (dev, GS_MIN_RAM_LIMIT - 1) == -EINVAL);
  CHECK (stats (dev).pool_bytes > GS_MIN_RAM_LIMIT);
  CHECK_OK (gs_set_ram_limit (dev, GS_MIN_RAM_LIMIT));
  CHECK (stats (dev).ram_limit == GS_MIN_RAM_LIMIT);
  /* The open segment may still take what fits in it, no more. */
  for (i = 0; i <= GS_SEGMENT_DATA / PAGE; i++) {
    uint64_t slot = nslots - 1 - i;
    fill_random (page, PAGE, s);
    r = gs_pwrite (dev, page, PAGE, slot * PAGE);
    if (r == -ENOSPC)
      break;
    CHECK_OK (r);
    memcpy (shadow + slot * PAGE, page, PAGE);
  }
  CHECKF (r == -ENOSPC, "%" PRIu64 " raw pages written over a lowered limit",
          i);
  for (i = 0; i < nslots; i++)
    check_slot (dev, shadow, i);
  CHECK_OK (gs_set_ram_limit (dev, 64 << 20));
  CHECK_OK (gs_pwrite (dev, page, PAGE, (nslots - 1) * PAGE));
  memcpy (shadow + (nslots - 1) * PAGE, page, PAGE);
  check_slot (dev, shadow, nslots - 1);

  gs_device_destroy (dev);
  free (shadow);
}

/* --- compaction concurrent with I/O --- */

#define WRITERS 3
#define SLOTS_PER 1500
#define RUN_SECONDS 3.0

static struct gs_device *cdev;
static unsigned char *cshadow;
static volatile int stop;
static uint64_t cseed;

static void *
writer (void *arg)
{
  unsigned t = (unsigned) (uintptr_t) arg;
  uint64_t s = cseed + 31 * t, ops = 0;
  unsigned char page[PAGE], got[PAGE];

  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED)) {
    /* Thread t owns slots t, t + WRITERS, ... */
    uint64_t slot = rnd_below (&s, SLOTS_PER) * WRITERS + t;
    unsigned char *sh = cshadow + slot * PAGE;
    unsigned op = (unsigned) rnd_below (&s, 10);

    if (op < 6) {
      varied_page (page, &s);
      CHECK_OK (gs_pwrite (cdev, page, PAGE, slot * PAGE));
      memcpy (sh, page, PAGE);
    }
    else if (op < 7) {
      uint32_t at = (uint32_t) rnd_below (&s, PAGE), n;
      n = 1 + (uint32_t) rnd_below (&s, PAGE - at);
      fill_text (page, n, &s);
      CHECK_OK (gs_pwrite (cdev, page, n, slot * PAGE + at));
      memcpy (sh + at, page, n);
    }
    else if (op < 8) {
      CHECK_OK (gs_trim (cdev, PAGE, slot * PAGE));
      memset (sh, 0, PAGE);
    }
    else {
      long d;
      CHECK_OK (gs_pread (cdev, got, PAGE, slot * PAGE));
      d = first_diff (got, sh, PAGE);
      CHECKF (d < 0, "thread %u slot %" PRIu64 " byte %ld during compaction",
              t, slot, d);
    }
    ops++;
  }
  return (void *) (uintptr_t) ops;
}

static void *
compactor (void *arg)
{
  uint64_t moved = 0;

  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED)) {
    moved += gs_compact (cdev);
    usleep (20000);
  }
  return (void *) (uintptr_t) moved;
}

static void
online (uint64_t seed)
{
  const uint64_t nslots = (uint64_t) SLOTS_PER * WRITERS;
  struct gs_config cfg = test_config (nslots * PAGE, 256 << 20);
  pthread_t th[WRITERS], comp;
  void *ret;
  uint64_t i, ops = 0, moved;
  struct gs_stats st;
  double start;
  unsigned t;

  cseed = seed;
  cfg.compact_threshold = 5;
  CHECK_OK (gs_device_create (&cfg, &cdev));
  cshadow = calloc (nslots, PAGE);
  CHECK (cshadow != NULL);
  CHECK_OK (gs_device_start (cdev));
  CHECK_OK (gs_device_start (cdev));     /* twice is harmless */

  for (t = 0; t < WRITERS; t++)
    CHECK_OK (pthread_create (&th[t], NULL, writer, (void *) (uintptr_t) t));
  CHECK_OK (pthread_create (&comp, NULL, compactor, NULL));
  start = now_seconds ();
  while (now_seconds () - start < RUN_SECONDS)
    usleep (50000);
  __atomic_store_n (&stop, 1, __ATOMIC_RELAXED);
  for (t = 0; t < WRITERS; t++) {
    CHECK_OK (pthread_join (th[t], &ret));
    ops += (uint64_t) (uintptr_t) ret;
  }
  CHECK_OK (pthread_join (comp, &ret));
  moved = (uint64_t) (uintptr_t) ret;
  st = stats (cdev);
  fprintf (stderr, "%s: online: %" PRIu64 " ops, gs_compact moved %" PRIu64
           ", %" PRIu64 " in all over %" PRIu64 " passes\n", test_argv0, ops,
           moved, st.objects_moved, st.compactions);
  CHECK (st.objects_moved > 0);

  for (i = 0; i < nslots; i++)
    check_slot (cdev, cshadow, i);
  CHECK (check_back_pointers (cdev) == st.slots_ram);
  /* Compacting while idle keeps everything.  One pass may leave the
   * garbage that writers made in compaction's open segment, which that
   * pass seals; a second pass leaves none. */
  gs_compact (cdev);
  st = stats (cdev);
  CHECKF (st.pool_garbage_bytes <= GS_SEGMENT_DATA, "garbage %" PRIu64
          " after compacting", st.pool_garbage_bytes);
  gs_compact (cdev);
  st = stats (cdev);
  CHECKF (st.pool_garbage_bytes == 0, "garbage %" PRIu64
          " after compacting twice", st.pool_garbage_bytes);
  for (i = 0; i < nslots; i++)
    check_slot (cdev, cshadow, i);
  CHECK (check_back_pointers (cdev) == st.slots_ram);

  gs_device_destroy (cdev);
  free (cshadow);
}

int
main (int argc, char *argv[])
{
  uint64_t seed, s;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;

  offline (&s);
  full_pool (&s);
  online (seed);
  return 0;
}
