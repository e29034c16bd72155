/* Regression test for issue 7, defect 1: a drain that starts while a
 * writeback has a batch in flight on its source must never turn pages
 * into zeros (or into any stale contents).
 *
 * One writer keeps an exact shadow of a small device and rewrites random
 * slots with non-zero pages; a second thread forces writebacks in small
 * batches (so that reservations on the backing are always in flight); the
 * main thread drains the backing into RAM over and over and, after each
 * drain, reads every slot back against the shadow.  The writer holds the
 * shadow lock across each write, and the checker takes it for each
 * read, so the shadow is exact.
 *
 * GS_DRAIN_RACE_SECONDS sets the run time (default 3).
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

#define SLOTS 256

static struct gs_device *dev;
static unsigned char shadow[SLOTS][PAGE];
static pthread_mutex_t shadow_lock = PTHREAD_MUTEX_INITIALIZER;
static bool stop;                   /* atomic */
static uint64_t seed;
static uint64_t writebacks;         /* atomic: pages written back */

static void *
writer (void *arg)
{
  uint64_t s = seed ^ 0x1234;
  unsigned char page[PAGE];

  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED)) {
    uint64_t slot = rnd_below (&s, SLOTS);
    int r;

    fill_kind (page, rnd_below (&s, 2) ? KIND_TEXT : KIND_RANDOM, &s);
    page[0] |= 1;                   /* never all zero */
    pthread_mutex_lock (&shadow_lock);
    r = gs_pwrite (dev, page, PAGE, slot * PAGE);
    if (r == 0)
      memcpy (shadow[slot], page, PAGE);
    pthread_mutex_unlock (&shadow_lock);
    CHECKF (r == 0 || r == -ENOSPC, "write of slot %llu: %s",
            (unsigned long long) slot, strerror (-r));
  }
  return NULL;
}

static void *
pusher (void *arg)
{
  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED)) {
    int64_t n = gs_writeback (dev, 8);
    if (n > 0)
      __atomic_add_fetch (&writebacks, (uint64_t) n, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void
check_all (unsigned round)
{
  unsigned char got[PAGE];
  uint64_t slot;

  for (slot = 0; slot < SLOTS; slot++) {
    long d;
    int r;

    pthread_mutex_lock (&shadow_lock);
    r = gs_pread (dev, got, PAGE, slot * PAGE);
    d = r == 0 ? first_diff (got, shadow[slot], PAGE) : 0;
    pthread_mutex_unlock (&shadow_lock);
    CHECKF (r == 0, "round %u: read of slot %llu: %s", round,
            (unsigned long long) slot, strerror (-r));
    CHECKF (d < 0, "round %u: slot %llu differs from the shadow at byte "
            "%ld (seed %llu)", round, (unsigned long long) slot, d,
            (unsigned long long) seed);
  }
}

int
main (int argc, char **argv)
{
  struct gs_config cfg = test_config (SLOTS * PAGE, 4u << 20);
  char path[PATH_MAX], err[512];
  const char *env = getenv ("GS_DRAIN_RACE_SECONDS");
  double seconds = env ? atof (env) : 3.0, end;
  pthread_t tw, tp;
  unsigned char page[PAGE];
  unsigned round = 0, drains_failed = 0;
  uint64_t slot;
  int r;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  test_backing_path (path, sizeof path, "drain-race");
  cfg.writeback_high = 99;          /* a drain goes to RAM */
  CHECK_OK (gs_device_create (&cfg, &dev));
  r = gs_backing_add (dev, path, 64u << 20, err, sizeof err);
  if (r < 0) {
    test_backing_cleanup ();
    SKIP ("cannot attach a backing file: %s", err);
  }
  for (slot = 0; slot < SLOTS; slot++) {
    memset (page, (int) (slot | 1), PAGE);
    page[1] = 0;                    /* not same-filled */
    CHECK_OK (gs_pwrite (dev, page, PAGE, slot * PAGE));
    memcpy (shadow[slot], page, PAGE);
  }
  pthread_create (&tw, NULL, writer, NULL);
  pthread_create (&tp, NULL, pusher, NULL);
  end = now_seconds () + seconds;
  while (now_seconds () < end) {
    r = gs_drain_start (dev, path, NULL, false, err, sizeof err);
    CHECKF (r == 0, "drain start: %s", err);
    r = gs_drain_wait (dev);
    /* -ENOSPC: the writer filled RAM meanwhile and there is nowhere else
     * to put the pages (an honest answer); nothing else may fail. */
    CHECKF (r == 0 || r == -ENOSPC, "drain: %s", strerror (-r));
    if (r != 0)
      drains_failed++;
    check_all (++round);
  }
  __atomic_store_n (&stop, true, __ATOMIC_RELAXED);
  pthread_join (tw, NULL);
  pthread_join (tp, NULL);
  check_all (++round);
  fprintf (stderr, "%s: %u drains (%u out of room), %llu pages "
           "written back\n", test_argv0, round - 1, drains_failed,
           (unsigned long long) writebacks);
  CHECK (writebacks > 0);
  gs_device_destroy (dev);
  test_backing_cleanup ();
  return 0;
}
