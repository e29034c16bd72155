/* Model-based concurrent stress: client requests against an exact shadow
 * while every mover runs.
 *
 * Three client threads do full, partial and unaligned writes, reads,
 * trims and zeroes (with and without may-trim) at random offsets of a
 * small device whose ram-limit forces pages out to two backings.  At the
 * same time: writeback in random batch sizes, compaction, drains of
 * either backing into RAM and migrations between them (the migrated
 * source is attached again afterwards), relocations of random physical
 * slots, ram-limit changes, and injected backing faults (read and write
 * errors on random ranges, switched off again soon).
 *
 * The shadow is exact: a client locks (in the test) every slot its
 * request touches, in ascending order, so requests on disjoint slots run
 * concurrently while the shadow of each slot changes with its request.
 * A request that fails leaves each of its slots either old or new (the
 * engine's per-slot atomicity), so such a slot keeps both candidates
 * until a whole-slot write or a read settles it.  Every successful read
 * must match the shadow byte for byte; errors are allowed only where the
 * engine promises them: ENOSPC for writes, EIO only while a fault was
 * injected.  At the end, with faults off and the movers stopped, every
 * slot is read and checked.
 *
 * GS_STRESS_SECONDS sets the run time (default 5); GS_TEST_SEED replays
 * each thread's stream of operations (their interleaving is the
 * scheduler's).
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

#define NSLOTS 2048u                 /* 8 MiB */
#define CLIENTS 3
#define BACKING_BYTES (16u << 20)
#define MAX_SPAN (3 * PAGE + 17)     /* longest request */

static struct gs_device *dev;
static unsigned char *shadow;        /* NSLOTS pages: the expected contents */
static unsigned char *alt;           /* the other candidate of an EITHER slot */
static bool either[NSLOTS];          /* old or new after a failed request */
static bool unknown[NSLOTS];         /* too many candidates: not checked
                                      * until a whole-slot write */
static pthread_mutex_t slot_lock[NSLOTS];
static uint64_t seed;
static bool stop;                    /* atomic */
static char path[2][PATH_MAX];

/* Faults: while any is set (and for requests that overlapped one), EIO is
 * an allowed answer.  fault_epoch changes whenever faults go on or off. */
static unsigned faults_on;           /* atomic */
static unsigned fault_epoch;         /* atomic */

/* What happened, for the summary line and to check that the run did
 * exercise the movers. */
static uint64_t n_ops, n_enospc, n_eio, n_drains, n_migrations, n_relocated,
  n_writeback, n_settled, n_unknown;

static void
count (uint64_t *c, uint64_t n)
{
  __atomic_add_fetch (c, n, __ATOMIC_RELAXED);
}

static void
lock_span (uint64_t first, uint64_t last)
{
  for (uint64_t s = first; s <= last; s++)
    pthread_mutex_lock (&slot_lock[s]);
}

static void
unlock_span (uint64_t first, uint64_t last)
{
  for (uint64_t s = first; s <= last; s++)
    pthread_mutex_unlock (&slot_lock[s]);
}

static bool
fault_window (unsigned epoch0)
{
  return __atomic_load_n (&faults_on, __ATOMIC_ACQUIRE) > 0
    || __atomic_load_n (&fault_epoch, __ATOMIC_ACQUIRE) != epoch0;
}

/* Check the bytes [@in, @in + @n) of slot @s read as @got; settle an
 * EITHER slot if the read covered it whole. */
static void
check_read (uint64_t s, uint32_t in, uint32_t n, const unsigned char *got,
            const char *what)
{
  unsigned char *sh = shadow + s * PAGE, *al = alt + s * PAGE;

  if (unknown[s])
    return;
  if (memcmp (got, sh + in, n) == 0) {
    if (either[s] && n == PAGE) {
      either[s] = false;
      count (&n_settled, 1);
    }
    return;
  }
  if (either[s] && memcmp (got, al + in, n) == 0) {
    if (n == PAGE) {
      memcpy (sh, al, PAGE);
      either[s] = false;
      count (&n_settled, 1);
    }
    return;
  }
  CHECKF (false, "%s: slot %llu bytes %u+%u differ from the shadow at +%ld "
          "(seed %llu)", what, (unsigned long long) s, in, n,
          first_diff (got, sh + in, n), (unsigned long long) seed);
}

/* Apply a successful write (@data NULL: zeroes) to slot @s's candidates. */
static void
apply (uint64_t s, uint32_t in, uint32_t n, const unsigned char *data)
{
  unsigned char *targets[2] = { shadow + s * PAGE, alt + s * PAGE };

  if (n == PAGE)
    either[s] = unknown[s] = false;
  for (int k = 0; k < (either[s] ? 2 : 1); k++) {
    if (data)
      memcpy (targets[k] + in, data, n);
    else
      memset (targets[k] + in, 0, n);
  }
}

/* After a failed request, slot @s is any of its candidates with or
 * without the request's bytes [@in, @in + @n) (@data NULL: zeroes).  Read
 * it whole, still under the test's lock: the read must give one of them,
 * and settles it.  If the read fails too (under a fault), keep two
 * candidates when that is all there is, else give the slot up as unknown
 * until a whole-slot write or trim settles it. */
static void
failed_slot (uint64_t s, uint32_t in, uint32_t n, const unsigned char *data)
{
  unsigned char cand[4][PAGE], got[PAGE];
  unsigned nc = 0, k;
  int r;

  if (unknown[s])
    return;
  memcpy (cand[nc++], shadow + s * PAGE, PAGE);
  if (either[s])
    memcpy (cand[nc++], alt + s * PAGE, PAGE);
  for (k = 0, r = (int) nc; k < (unsigned) r; k++) {
    memcpy (cand[nc], cand[k], PAGE);
    if (data)
      memcpy (cand[nc] + in, data, n);
    else
      memset (cand[nc] + in, 0, n);
    nc++;
  }
  r = gs_pread (dev, got, PAGE, s * PAGE);
  if (r == 0) {
    for (k = 0; k < nc; k++)
      if (memcmp (got, cand[k], PAGE) == 0)
        break;
    CHECKF (k < nc, "after a failed request, slot %llu holds neither its "
            "old nor its new contents (seed %llu)", (unsigned long long) s,
            (unsigned long long) seed);
    memcpy (shadow + s * PAGE, got, PAGE);
    either[s] = false;
    count (&n_settled, 1);
    return;
  }
  CHECKF (r == -EIO, "re-read of slot %llu: %s", (unsigned long long) s,
          strerror (-r));
  if (nc == 2) {
    memcpy (alt + s * PAGE, cand[1], PAGE);
    either[s] = true;
  }
  else {
    unknown[s] = true;
    count (&n_unknown, 1);
  }
}

static void
each_failed_slot (uint64_t off, uint64_t len, const unsigned char *data)
{
  while (len > 0) {
    uint64_t s = off / PAGE;
    uint32_t in = (uint32_t) (off % PAGE);
    uint32_t n = PAGE - in < len ? PAGE - in : (uint32_t) len;

    failed_slot (s, in, n, data);
    if (data)
      data += n;
    off += n;
    len -= n;
  }
}

static void
do_request (uint64_t *rs)
{
  unsigned char buf[MAX_SPAN + PAGE];      /* whole pages are filled */
  uint64_t off, len, first, last;
  unsigned op = (unsigned) rnd_below (rs, 100), epoch0;
  int r;

  /* Mostly aligned whole pages (as swap does), often partial ones. */
  if (rnd_below (rs, 2)) {
    off = rnd_below (rs, NSLOTS) * PAGE;
    len = (1 + rnd_below (rs, 3)) * PAGE;
  }
  else {
    off = rnd_below (rs, (uint64_t) NSLOTS * PAGE);
    len = 1 + rnd_below (rs, MAX_SPAN);
  }
  if (off + len > (uint64_t) NSLOTS * PAGE)
    len = (uint64_t) NSLOTS * PAGE - off;
  first = off / PAGE;
  last = (off + len - 1) / PAGE;
  lock_span (first, last);
  epoch0 = __atomic_load_n (&fault_epoch, __ATOMIC_ACQUIRE);
  if (op < 40) {
    /* A write of mixed contents. */
    for (uint64_t p = 0; p < len; p += PAGE)
      fill_kind (buf + p, (enum page_kind) rnd_below (rs, KIND_COUNT), rs);
    r = gs_pwrite (dev, buf, (uint32_t) len, off);
  }
  else if (op < 75) {
    r = gs_pread (dev, buf, (uint32_t) len, off);
  }
  else if (op < 88)
    r = gs_trim (dev, (uint32_t) len, off);
  else
    r = gs_zero (dev, (uint32_t) len, off,
                 rnd_below (rs, 2) ? GS_ZERO_MAY_TRIM : 0);

  if (r == 0) {
    uint64_t o = off, l = len;
    const unsigned char *d = buf;
    while (l > 0) {
      uint64_t s = o / PAGE;
      uint32_t in = (uint32_t) (o % PAGE);
      uint32_t n = PAGE - in < l ? PAGE - in : (uint32_t) l;
      if (op < 40)
        apply (s, in, n, d);
      else if (op < 75)
        check_read (s, in, n, d, "read");
      else
        apply (s, in, n, NULL);
      d += n;
      o += n;
      l -= n;
    }
  }
  else {
    CHECKF (r == -EIO || (r == -ENOSPC && op < 40)
            || (r == -ENOSPC && op >= 75),
            "request %u at %llu+%llu: %s", op, (unsigned long long) off,
            (unsigned long long) len, strerror (-r));
    if (r == -EIO) {
      CHECKF (fault_window (epoch0), "EIO with no fault injected: request %u "
              "at %llu+%llu (seed %llu)", op, (unsigned long long) off,
              (unsigned long long) len, (unsigned long long) seed);
      count (&n_eio, 1);
    }
    else
      count (&n_enospc, 1);
    if (op < 40)
      each_failed_slot (off, len, buf);
    else if (op >= 75)
      each_failed_slot (off, len, NULL);
  }
  unlock_span (first, last);
  count (&n_ops, 1);
}

static void *
client (void *arg)
{
  uint64_t rs = seed ^ (0x100 + (uintptr_t) arg);

  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED))
    do_request (&rs);
  return NULL;
}

static bool
attached (int k)
{
  struct gs_backing_info info[4];
  unsigned n = gs_backing_list (dev, info, 4);

  for (unsigned i = 0; i < n && i < 4; i++)
    if (strcmp (info[i].path, path[k]) == 0)
      return true;
  return false;
}

/* Drains, migrations and relocations. */
static void *
mover (void *arg)
{
  uint64_t rs = seed ^ 0x200;
  char err[1024];

  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED)) {
    int k = (int) rnd_below (&rs, 2), r;
    unsigned what = (unsigned) rnd_below (&rs, 10);

    if (!attached (k)) {
      r = gs_backing_add (dev, path[k], 0, err, sizeof err);
      CHECKF (r == 0, "re-attach %s: %s", path[k], err);
      continue;
    }
    if (what < 3) {
      r = gs_drain_start (dev, path[k], NULL, false, err, sizeof err);
      CHECKF (r == 0, "drain start: %s", err);
      r = gs_drain_wait (dev);
      CHECKF (r == 0 || r == -EIO || r == -ENOSPC, "drain of %s: %s",
              path[k], strerror (-r));
      count (&n_drains, 1);
    }
    else if (what < 5 && attached (1 - k)) {
      r = gs_drain_start (dev, path[k], path[1 - k], true, err, sizeof err);
      CHECKF (r == 0, "migrate start: %s", err);
      r = gs_drain_wait (dev);
      CHECKF (r == 0 || r == -EIO || r == -ENOSPC, "migration of %s: %s",
              path[k], strerror (-r));
      if (r == 0)
        count (&n_migrations, 1);
    }
    else {
      for (int j = 0; j < 64; j++) {
        r = gs_relocate_slot (dev, path[k],
                              rnd_below (&rs, BACKING_BYTES / PAGE));
        CHECKF (r == 0 || r == -ENOENT || r == -EIO || r == -ENOSPC,
                "relocate: %s", strerror (-r));
        if (r == 0)
          count (&n_relocated, 1);
      }
    }
  }
  return NULL;
}

/* Writeback, compaction, ram-limit changes and faults. */
static void *
pressure (void *arg)
{
  uint64_t rs = seed ^ 0x300;

  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED)) {
    unsigned what = (unsigned) rnd_below (&rs, 20);
    int64_t n;

    if (what < 10) {
      n = gs_writeback (dev, 1 + rnd_below (&rs, 64));
      if (n > 0)
        count (&n_writeback, (uint64_t) n);
    }
    else if (what < 14)
      gs_compact (dev);
    else if (what < 17)
      CHECK_OK (gs_set_ram_limit (dev, rnd_below (&rs, 2) ? 1u << 20
                                  : 4u << 20));
    else if (what == 17) {
      int k = (int) rnd_below (&rs, 2);
      uint64_t a = rnd_below (&rs, BACKING_BYTES / PAGE), b;

      b = a + rnd_below (&rs, 256);
      __atomic_add_fetch (&faults_on, 1, __ATOMIC_ACQ_REL);
      __atomic_add_fetch (&fault_epoch, 1, __ATOMIC_ACQ_REL);
      if (gs_fault_set (dev, path[k], rnd_below (&rs, 4) ? "read" : "write",
                        a, b) == 0)
        usleep (2000);
      gs_fault_set (dev, path[k], "off", 0, 0);
      __atomic_add_fetch (&fault_epoch, 1, __ATOMIC_ACQ_REL);
      __atomic_sub_fetch (&faults_on, 1, __ATOMIC_ACQ_REL);
    }
    usleep (500);
  }
  return NULL;
}

int
main (int argc, char **argv)
{
  struct gs_config cfg = test_config ((uint64_t) NSLOTS * PAGE, 1u << 20);
  const char *env = getenv ("GS_STRESS_SECONDS");
  double seconds = env ? atof (env) : 5.0;
  pthread_t cl[CLIENTS], mv, pr;
  unsigned char page[PAGE];
  char err[1024];
  uint64_t s;
  int r;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  cfg.fault_injection = true;
  shadow = calloc (NSLOTS, PAGE);
  alt = calloc (NSLOTS, PAGE);
  CHECK (shadow && alt);
  for (s = 0; s < NSLOTS; s++)
    pthread_mutex_init (&slot_lock[s], NULL);
  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK_OK (gs_device_start (dev));
  for (int k = 0; k < 2; k++) {
    char name[8];
    snprintf (name, sizeof name, "b%d", k);
    test_backing_path (path[k], sizeof path[k], name);
    r = gs_backing_add (dev, path[k], BACKING_BYTES, err, sizeof err);
    if (r < 0) {
      test_backing_cleanup ();
      SKIP ("cannot attach a backing file: %s", err);
    }
  }
  for (uintptr_t t = 0; t < CLIENTS; t++)
    pthread_create (&cl[t], NULL, client, (void *) t);
  pthread_create (&mv, NULL, mover, NULL);
  pthread_create (&pr, NULL, pressure, NULL);
  usleep ((useconds_t) (seconds * 1e6));
  __atomic_store_n (&stop, true, __ATOMIC_RELAXED);
  for (int t = 0; t < CLIENTS; t++)
    pthread_join (cl[t], NULL);
  pthread_join (mv, NULL);
  pthread_join (pr, NULL);

  /* Everything, with no fault and nothing moving. */
  for (s = 0; s < NSLOTS; s++) {
    r = gs_pread (dev, page, PAGE, s * PAGE);
    CHECKF (r == 0, "final read of slot %llu: %s", (unsigned long long) s,
            strerror (-r));
    check_read (s, 0, PAGE, page, "final check");
  }
  fprintf (stderr, "%s: %llu requests (%llu ENOSPC, %llu EIO under faults, "
           "%llu slots settled, %llu unknown), %llu drains, %llu migrations, %llu "
           "relocations, %llu pages written back\n", test_argv0,
           (unsigned long long) n_ops, (unsigned long long) n_enospc,
           (unsigned long long) n_eio, (unsigned long long) n_settled,
           (unsigned long long) n_unknown,
           (unsigned long long) n_drains, (unsigned long long) n_migrations,
           (unsigned long long) n_relocated,
           (unsigned long long) n_writeback);
  CHECK (n_writeback > 0 && n_drains > 0);
  gs_device_destroy (dev);
  test_backing_cleanup ();
  free (shadow);
  free (alt);
  return 0;
}
