/* Recompression racing clients and the other movers, against an exact
 * shadow.
 *
 * Three writer threads each own every third slot of a small device and
 * keep its exact contents: full writes of text, incompressible, zero and
 * patterned pages, partial writes, trims, zeroes with and without
 * may-trim, and reads checked byte for byte.  Meanwhile one thread runs
 * recompression passes (gs_recompress, level 9) back to back, one
 * compacts the pool, and one writes pages back to a backing file (when
 * one can be made) and now and then drains it back into RAM, while the pool's ram-limit keeps writers reclaiming.
 * Every window of a recompression (frame copied, lock dropped, page
 * compressed, lock taken again) is open to a write, trim or move of the
 * same slot; the slot module must refuse a stale commit.  A request that
 * fails (ENOSPC only) leaves its slot old or new, never anything else.
 * At the end every slot is read and checked, and the run must have
 * recompressed pages.
 *
 * GS_RECOMPRESS_RACE_SECONDS sets the run time (default 4).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ghostswap/backing.h"
#include "ghostswap/device.h"
#include "test.h"
#include "test_backing.h"

#define WRITERS 3
#define SLOTS 768u

static struct gs_device *dev;
static unsigned char shadow[SLOTS][PAGE];
static uint64_t seed;
static bool stop;                     /* atomic */
static uint64_t n_ops, n_enospc, n_passes, n_compactions, n_written_back,
  n_drains;

static void
count (uint64_t *c, uint64_t n)
{
  __atomic_add_fetch (c, n, __ATOMIC_RELAXED);
}

static bool
stopping (void)
{
  return __atomic_load_n (&stop, __ATOMIC_RELAXED);
}

static void
check_slot (uint64_t slot, const char *when)
{
  unsigned char got[PAGE];
  int r = gs_pread (dev, got, PAGE, slot * PAGE);

  CHECKF (r == 0, "%s: read of slot %llu: %s", when,
          (unsigned long long) slot, strerror (-r));
  CHECKF (memcmp (got, shadow[slot], PAGE) == 0, "%s: slot %llu differs "
          "from the shadow at byte %ld (seed %llu)", when,
          (unsigned long long) slot, first_diff (got, shadow[slot], PAGE),
          (unsigned long long) seed);
}

/* A request on @slot returned @r; @want is what the slot holds if it
 * succeeded.  On ENOSPC the slot must hold the old or the new contents. */
static void
settle (uint64_t slot, int r, const unsigned char *want)
{
  unsigned char got[PAGE];

  if (r == 0) {
    memcpy (shadow[slot], want, PAGE);
    return;
  }
  CHECKF (r == -ENOSPC, "request on slot %llu: %s",
          (unsigned long long) slot, strerror (-r));
  count (&n_enospc, 1);
  CHECK_OK (gs_pread (dev, got, PAGE, slot * PAGE));
  CHECKF (memcmp (got, shadow[slot], PAGE) == 0
          || memcmp (got, want, PAGE) == 0,
          "slot %llu after a failed request is neither old nor new",
          (unsigned long long) slot);
  memcpy (shadow[slot], got, PAGE);
}

static void *
writer (void *arg)
{
  unsigned t = (unsigned) (uintptr_t) arg;
  uint64_t s = seed ^ (0x9e37ull * (t + 1));
  unsigned char want[PAGE];

  while (!stopping ()) {
    uint64_t slot = t + WRITERS * rnd_below (&s, SLOTS / WRITERS);
    uint64_t off = slot * PAGE;
    unsigned op = (unsigned) rnd_below (&s, 16);
    int r;

    count (&n_ops, 1);
    if (op < 7) {                     /* full write, mostly text */
      enum page_kind k = op < 4 ? KIND_TEXT
        : (enum page_kind) rnd_below (&s, KIND_COUNT);
      fill_kind (want, k, &s);
      settle (slot, gs_pwrite (dev, want, PAGE, off), want);
    }
    else if (op < 9) {                /* partial write */
      uint32_t in = (uint32_t) rnd_below (&s, PAGE);
      uint32_t n = 1 + (uint32_t) rnd_below (&s, PAGE - in);
      memcpy (want, shadow[slot], PAGE);
      fill_text (want + in, n, &s);
      settle (slot, gs_pwrite (dev, want + in, n, off + in), want);
    }
    else if (op == 9) {               /* trim */
      memset (want, 0, PAGE);
      settle (slot, gs_trim (dev, PAGE, off), want);
    }
    else if (op == 10) {              /* zero, with or without may-trim */
      memset (want, 0, PAGE);
      r = gs_zero (dev, PAGE, off, rnd_below (&s, 2) ? GS_ZERO_MAY_TRIM : 0);
      settle (slot, r, want);
    }
    else
      check_slot (slot, "during the run");
  }
  return NULL;
}

static void *
recompressor (void *arg)
{
  while (!stopping ()) {
    int64_t n = gs_recompress (dev);
    CHECKF (n >= 0, "gs_recompress: %s", strerror ((int) -n));
    count (&n_passes, 1);
  }
  return NULL;
}

static void *
compactor (void *arg)
{
  while (!stopping ()) {
    gs_compact (dev);
    count (&n_compactions, 1);
    usleep (2000);
  }
  return NULL;
}

/* Writeback in small batches, and now and then a drain of the backing
 * back into RAM (which runs out of room: ENOSPC is its honest answer). */
static void *
pusher (void *arg)
{
  const char *path = arg;
  char err[512];
  unsigned i = 0;

  while (!stopping ()) {
    int64_t n = gs_writeback (dev, 16);
    int r;

    if (n > 0)
      count (&n_written_back, (uint64_t) n);
    if (++i % 64 == 0) {
      r = gs_drain_start (dev, path, NULL, false, err, sizeof err);
      CHECKF (r == 0, "drain start: %s", err);
      r = gs_drain_wait (dev);
      CHECKF (r == 0 || r == -ENOSPC, "drain: %s", strerror (-r));
      count (&n_drains, 1);
    }
    usleep (1000);
  }
  return NULL;
}

int
main (int argc, char **argv)
{
  /* 3 MiB of data in a 1 MiB pool: writers reclaim, and writeback has
   * work. */
  struct gs_config cfg = test_config (SLOTS * PAGE, 1024u << 10);
  const char *env = getenv ("GS_RECOMPRESS_RACE_SECONDS");
  double seconds = env ? atof (env) : 4.0;
  char path[PATH_MAX], err[512];
  pthread_t tw[WRITERS], tr, tc, tp;
  bool backing;
  struct gs_stats st;
  uint64_t slot;
  unsigned t;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  cfg.recompress_level = 9;
  cfg.recompress_cpu = 100;
  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK_OK (gs_device_start (dev));   /* the background threads too */
  test_backing_path (path, sizeof path, "recompress-race");
  atexit (test_backing_cleanup);      /* on failure too */
  backing = gs_backing_add (dev, path, 16u << 20, err, sizeof err) == 0;
  if (!backing)
    fprintf (stderr, "%s: no backing (%s): RAM only\n", test_argv0, err);

  for (t = 0; t < WRITERS; t++)
    pthread_create (&tw[t], NULL, writer, (void *) (uintptr_t) t);
  pthread_create (&tr, NULL, recompressor, NULL);
  pthread_create (&tc, NULL, compactor, NULL);
  if (backing)
    pthread_create (&tp, NULL, pusher, path);
  usleep ((useconds_t) (seconds * 1e6));
  __atomic_store_n (&stop, true, __ATOMIC_RELAXED);
  for (t = 0; t < WRITERS; t++)
    pthread_join (tw[t], NULL);
  pthread_join (tr, NULL);
  pthread_join (tc, NULL);
  if (backing)
    pthread_join (tp, NULL);

  /* Once more with nothing running, then every byte. */
  CHECK (gs_recompress (dev) >= 0);
  for (slot = 0; slot < SLOTS; slot++)
    check_slot (slot, "at the end");
  gs_get_stats (dev, &st);
  fprintf (stderr, "%s: %llu requests (%llu ENOSPC), %llu recompression "
           "passes: %llu pages smaller, %llu kept; %llu compactions, %llu "
           "pages written back, %llu drains\n", test_argv0,
           (unsigned long long) n_ops, (unsigned long long) n_enospc,
           (unsigned long long) n_passes,
           (unsigned long long) st.recompressed_pages,
           (unsigned long long) st.recompress_kept_pages,
           (unsigned long long) n_compactions,
           (unsigned long long) st.writeback_pages,
           (unsigned long long) n_drains);
  CHECK (st.recompressed_pages > 0);
  CHECK (!backing || st.writeback_pages > 0);
  gs_device_destroy (dev);
  return 0;
}
