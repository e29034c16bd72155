/* Backing I/O when io_uring stops working in the middle of a run.
 *
 *   test-uring-midrun inject
 *     GHOSTSWAP_IO_URING_FAIL_AFTER=40 (set by the test itself): the 41st
 *     submission through a ring fails with ENOMEM, the thread's ring is
 *     dropped, and its next setup fails too.  Writes through a 1 MiB
 *     ram-limit go on, with a check of every byte against the shadow
 *     after each round, until the thread has a ring again (the back-off
 *     retries it; a transient failure must not turn io_uring off for
 *     good); then a round that must not fall back, and a drain.
 *
 *   test-uring-midrun seccomp
 *     Two writers fill the device through io_uring; then, while one of
 *     them keeps writing (and the background thread writes back), a
 *     seccomp filter applied to every thread at once makes io_uring_setup
 *     and io_uring_enter fail with ENOSYS: rings already set up stop
 *     working mid-batch.  Every byte must still read back right, and a
 *     drain (a new thread, whose ring setup fails) must move every page.
 *
 *   test-uring-midrun batch
 *     gs_uring_run itself, with GHOSTSWAP_IO_URING_FAIL_AFTER=1: one batch
 *     of 300 writes, more than the ring holds, whose second submission
 *     fails while the first 64 ops are in the kernel: those must be
 *     waited for, the rest done with pwrite, each op's result 0 and the
 *     file byte-exact; then reads, and ops failed before the call left
 *     alone.
 */
#include <pthread.h>

#include "backing-workload.h"
#include "uring.h"

#define DEV_SLOTS 6144u             /* 24 MiB */
#define HALF (DEV_SLOTS / 2)
#define RAM_LIMIT (1024u * 1024)

static void
show (struct bw *w, const char *when)
{
  struct gs_stats st = bw_stats (w);

  fprintf (stderr, "%s: %s: %" PRIu64 " slots on backing; io_uring rings %"
           PRIu64 ", failures %" PRIu64 ", fallback batches %" PRIu64
           ", last error %" PRIu64 "\n", test_argv0, when, st.slots_backing,
           st.io_uring_rings, st.io_uring_failures,
           st.io_uring_fallback_batches, st.io_uring_last_error);
}

/* No backing I/O error was counted: the fallback must not report one. */
static void
check_no_io_errors (struct bw *w)
{
  struct gs_stats st = bw_stats (w);

  CHECKF (st.backing_read_errors == 0 && st.backing_write_errors == 0,
          "backing errors: %" PRIu64 " read, %" PRIu64 " write",
          st.backing_read_errors, st.backing_write_errors);
}

static void
run_inject (struct bw *w)
{
  struct gs_stats st;
  double t0;
  uint64_t fallback;

  CHECK_OK (setenv ("GHOSTSWAP_IO_URING_FAIL_AFTER", "40", 1));
  bw_create (w, (uint64_t) DEV_SLOTS * PAGE, RAM_LIMIT);
  bw_backing_add (w->dev, (uint64_t) DEV_SLOTS * PAGE);
  /* No background thread: this thread does all the writeback, so the
   * ring counts are its own. */

  bw_write_round (w, 0, DEV_SLOTS, DEV_SLOTS * 2);
  bw_verify (w, "round 1");
  show (w, "round 1");
  st = bw_stats (w);
  CHECK (st.slots_backing > DEV_SLOTS / 4);
  /* 1, or already 2 when round 1 outlasted the first back-off (a loaded
   * machine). */
  CHECK (st.io_uring_rings >= 1);
  CHECK (st.io_uring_failures >= 1);
  CHECK (st.io_uring_fallback_batches > 0);
  CHECK (st.io_uring_last_error == ENOMEM);

  /* Keep writing until the ring is back (1 s, then 2 s of back-off). */
  t0 = now_seconds ();
  for (unsigned round = 2; ; round++) {
    bw_write_round (w, 0, DEV_SLOTS, DEV_SLOTS / 4);
    bw_verify (w, "while falling back");
    st = bw_stats (w);
    if (st.io_uring_rings >= 2)
      break;
    CHECKF (now_seconds () - t0 < 30, "no new ring after 30 s (round %u)",
            round);
    usleep (300 * 1000);
  }
  show (w, "ring set up again");
  CHECK (st.io_uring_failures == 2);    /* one submission, one setup */

  /* Through the ring again: nothing falls back any more. */
  fallback = st.io_uring_fallback_batches;
  bw_write_round (w, 0, DEV_SLOTS, DEV_SLOTS);
  CHECK (gs_writeback (w->dev, 0) >= 0);
  bw_verify (w, "after recovery");
  st = bw_stats (w);
  CHECKF (st.io_uring_fallback_batches == fallback,
          "%" PRIu64 " batches fell back after the ring came back",
          st.io_uring_fallback_batches - fallback);
  CHECK (st.io_uring_failures == 2);

  bw_drain_to_ram (w);
  bw_verify (w, "after the drain");
  show (w, "after the drain");
  st = bw_stats (w);
  CHECK (st.slots_backing == 0);
  CHECK (st.io_uring_rings == 3);       /* the drain thread's */
  check_no_io_errors (w);
}

/* The second writer: slots [HALF, DEV_SLOTS), until told to stop. */
static struct bw w2;
static int stop;

static void *
writer (void *arg)
{
  unsigned rounds = *(unsigned *) arg;

  for (unsigned i = 0; rounds ? i < rounds
         : !__atomic_load_n (&stop, __ATOMIC_ACQUIRE); i++)
    bw_write_round (&w2, HALF, DEV_SLOTS - HALF, 256);
  return NULL;
}

static void
run_seccomp (struct bw *w)
{
  struct gs_stats st;
  pthread_t t;
  unsigned rounds;

  bw_create (w, (uint64_t) DEV_SLOTS * PAGE, RAM_LIMIT);
  bw_backing_add (w->dev, (uint64_t) DEV_SLOTS * PAGE);
  CHECK_OK (gs_device_start (w->dev));
  w2 = *w;
  w2.seed = w->seed ^ 0x5eed;

  /* Both halves through io_uring. */
  rounds = (HALF * 2) / 256;
  CHECK_OK (pthread_create (&t, NULL, writer, &rounds));
  bw_write_round (w, 0, HALF, HALF * 2);
  CHECK_OK (pthread_join (t, NULL));
  bw_verify (w, "before the filter");
  show (w, "before the filter");
  st = bw_stats (w);
  CHECK (st.slots_backing > DEV_SLOTS / 4);
  CHECK (st.io_uring_rings >= 1);
  CHECK (st.io_uring_failures == 0);
  CHECK (st.io_uring_fallback_batches == 0);

  /* The kernel stops taking io_uring calls while both write. */
  rounds = 0;
  CHECK_OK (pthread_create (&t, NULL, writer, &rounds));
  bw_write_round (w, 0, HALF, HALF / 2);
  bw_block_uring (ENOSYS, true, true);
  bw_write_round (w, 0, HALF, HALF * 2);
  __atomic_store_n (&stop, 1, __ATOMIC_RELEASE);
  CHECK_OK (pthread_join (t, NULL));
  CHECK (gs_writeback (w->dev, 0) >= 0);
  bw_verify (w, "after the filter");
  show (w, "after the filter");
  st = bw_stats (w);
  CHECK (st.io_uring_failures >= 1);
  CHECK (st.io_uring_fallback_batches > 0);
  CHECK (st.io_uring_last_error == ENOSYS);

  bw_drain_to_ram (w);
  bw_verify (w, "after the drain");
  show (w, "after the drain");
  CHECK (bw_stats (w).slots_backing == 0);
  check_no_io_errors (w);
}

#define BATCH_OPS 300u

static void
run_batch (void)
{
  static struct gs_io io[BATCH_OPS];
  unsigned char *buf = malloc ((size_t) BATCH_OPS * PAGE);
  unsigned char *got = malloc ((size_t) BATCH_OPS * PAGE);
  struct gs_uring_status us;
  uint64_t seed = 42;
  int fd;

  CHECK (buf && got);
  CHECK_OK (setenv ("GHOSTSWAP_IO_URING_FAIL_AFTER", "1", 1));
  fd = open (bw_file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  CHECKF (fd >= 0, "%s: %s", bw_file, strerror (errno));
  fill_random (buf, (size_t) BATCH_OPS * PAGE, &seed);

  /* Ops in reverse file order, so that a misplaced one shows. */
  for (unsigned i = 0; i < BATCH_OPS; i++)
    io[i] = (struct gs_io) { .fd = fd, .write = true,
                             .buf = buf + (size_t) i * PAGE, .len = PAGE,
                             .offset = (uint64_t) (BATCH_OPS - 1 - i) * PAGE };
  io[7].res = -ENOSPC;          /* failed before the call: left alone */
  CHECK (gs_uring_run (io, BATCH_OPS) == -ENOSPC);
  for (unsigned i = 0; i < BATCH_OPS; i++)
    CHECKF (io[i].res == (i == 7 ? -ENOSPC : 0), "write op %u: res %d", i,
            io[i].res);
  gs_uring_get_status (&us);
  fprintf (stderr, "%s: rings %" PRIu64 ", failures %" PRIu64
           ", fallback batches %" PRIu64 "\n", test_argv0, us.rings,
           us.failures, us.fallback_batches);
  CHECK (us.rings == 1 && us.failures == 1 && us.fallback_batches == 1);
  CHECK (us.last_error == ENOMEM);
  for (unsigned i = 0; i < BATCH_OPS; i++) {
    uint64_t off = (uint64_t) (BATCH_OPS - 1 - i) * PAGE;
    if (i == 7)
      continue;
    CHECK (pread (fd, got, PAGE, (off_t) off) == PAGE);
    CHECKF (memcmp (got, buf + (size_t) i * PAGE, PAGE) == 0,
            "file block %" PRIu64 " is not op %u's page", off / PAGE, i);
  }

  /* Reads: the ring is in its back-off, so all of it falls back. */
  memset (got, 0, (size_t) BATCH_OPS * PAGE);
  for (unsigned i = 0; i < BATCH_OPS; i++)
    io[i] = (struct gs_io) { .fd = fd, .write = false,
                             .buf = got + (size_t) i * PAGE, .len = PAGE,
                             .offset = (uint64_t) i * PAGE };
  io[BATCH_OPS - 1 - 7].offset = (uint64_t) (BATCH_OPS + 5) * PAGE;
  CHECK (gs_uring_run (io, BATCH_OPS) == -EIO);   /* past the end: short */
  for (unsigned i = 0; i < BATCH_OPS; i++) {
    if (i == BATCH_OPS - 1 - 7) {
      CHECKF (io[i].res == -EIO, "read past the end: res %d", io[i].res);
      continue;
    }
    CHECKF (io[i].res == 0, "read op %u: res %d", i, io[i].res);
    CHECKF (memcmp (got + (size_t) i * PAGE,
                    buf + (size_t) (BATCH_OPS - 1 - i) * PAGE, PAGE) == 0,
            "read op %u: wrong data", i);
  }
  gs_uring_get_status (&us);
  CHECK (us.fallback_batches == 2 && us.rings == 1);
  close (fd);
  free (buf);
  free (got);
}

int
main (int argc, char **argv)
{
  struct bw w = { 0 };

  TEST_INIT (argc, argv);
  CHECKF (argc == 2 && (strcmp (argv[1], "inject") == 0
                        || strcmp (argv[1], "seccomp") == 0
                        || strcmp (argv[1], "batch") == 0),
          "usage: %s inject|seccomp|batch", argv[0]);
  w.seed = test_seed ();
  bw_dir_make ();
  if (strcmp (argv[1], "batch") == 0) {
    run_batch ();
    return 0;
  }
  if (strcmp (argv[1], "inject") == 0)
    run_inject (&w);
  else
    run_seccomp (&w);
  gs_device_destroy (w.dev);
  free (w.shadow);
  return 0;
}
