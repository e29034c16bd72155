/* ghostswap: batched I/O, io_uring with one ring per thread and a
 * synchronous fallback (see uring.h).
 *
 * While a batch runs, each op's res holds where it is (the OP_* values,
 * all positive, so never mistaken for a result): to do, queued in the
 * submission ring, or consumed by the kernel.  When a submission fails,
 * the ops the kernel consumed are waited for (their buffers belong to the
 * kernel until their completion is seen), the ring is freed with the
 * unconsumed ones, and those and the rest of the batch are done with
 * pread/pwrite.  The fallback does each op with one pread or pwrite (an
 * op has one buffer, so preadv/pwritev would add nothing).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "ghostswap/backing.h"
#include "uring.h"

#define RING_DEPTH 64

/* Back-off between setup attempts after a failure, in milliseconds. */
#define RETRY_FIRST_MS 1000u
#define RETRY_MAX_MS 64000u

/* Longest wait for the completions of ops already in the kernel when the
 * kernel refuses to wait for them (io_uring_enter blocked mid-run): they
 * still complete; the thread polls for them. */
#define ORPHAN_WAIT_MS 10000u

/* Where an op is while a batch runs (in its res). */
enum {
  OP_TODO = 1,                  /* not yet performed */
  OP_QUEUED = 2,                /* in the submission ring, not consumed */
  OP_KERNEL = 3,                /* consumed by the kernel, not completed */
};

/* A thread's ring and its retry state; owned by the thread. */
struct ring_state {
  struct io_uring ring;
  bool up;                      /* ring is set up */
  unsigned backoff_ms;          /* last back-off, 0 after a good batch */
  uint64_t retry_at_ns;         /* CLOCK_MONOTONIC: no setup before this */
};

static pthread_key_t ring_key;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;

/* Read once in ring_key_make, then only read. */
static bool uring_off;          /* GHOSTSWAP_IO_URING=0 */
static uint64_t fail_after;     /* GHOSTSWAP_IO_URING_FAIL_AFTER + 1, 0: off */

/* Process-wide, atomic. */
static struct gs_uring_status status;
static uint64_t submissions;    /* through rings, for fail_after */
static int fail_next_setup;     /* an injected setup failure is due */

static void
ring_free (void *p)
{
  struct ring_state *rs = p;

  if (rs->up)
    io_uring_queue_exit (&rs->ring);
  free (rs);
}

static void
ring_key_make (void)
{
  const char *off = getenv ("GHOSTSWAP_IO_URING");
  const char *fail = getenv ("GHOSTSWAP_IO_URING_FAIL_AFTER");

  pthread_key_create (&ring_key, ring_free);
  uring_off = off && strcmp (off, "0") == 0;
  if (fail && *fail) {
    char *end;
    unsigned long long n = strtoull (fail, &end, 10);
    if (*end == '\0')
      fail_after = n + 1;
  }
}

static uint64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Count a failure (@err < 0) and make @rs (if any) wait before its next
 * setup attempt. */
static void
note_failure (struct ring_state *rs, int err)
{
  __atomic_add_fetch (&status.failures, 1, __ATOMIC_RELAXED);
  __atomic_store_n (&status.last_error, -err, __ATOMIC_RELAXED);
  if (rs) {
    rs->backoff_ms = rs->backoff_ms == 0 ? RETRY_FIRST_MS
      : rs->backoff_ms >= RETRY_MAX_MS / 2 ? RETRY_MAX_MS
      : rs->backoff_ms * 2;
    rs->retry_at_ns = now_ns () + (uint64_t) rs->backoff_ms * 1000000u;
  }
}

/* The calling thread's state, made on first use; NULL without memory
 * (counted as a failure: the batch falls back). */
static struct ring_state *
get_state (void)
{
  struct ring_state *rs;

  pthread_once (&ring_once, ring_key_make);
  rs = pthread_getspecific (ring_key);
  if (rs)
    return rs;
  rs = calloc (1, sizeof *rs);
  if (!rs || pthread_setspecific (ring_key, rs) != 0) {
    free (rs);
    note_failure (NULL, -ENOMEM);
    return NULL;
  }
  return rs;
}

/* The thread's ring: set it up if it is down and its back-off has
 * passed.  NULL: use the fallback for this batch. */
static struct io_uring *
get_ring (struct ring_state *rs)
{
  int r;

  if (rs->up)
    return &rs->ring;
  if (uring_off || now_ns () < rs->retry_at_ns)
    return NULL;
  if (__atomic_exchange_n (&fail_next_setup, 0, __ATOMIC_RELAXED))
    r = -ENOMEM;
  else
    r = io_uring_queue_init (RING_DEPTH, &rs->ring, 0);
  if (r < 0) {
    note_failure (rs, r);
    return NULL;
  }
  rs->up = true;
  __atomic_add_fetch (&status.rings, 1, __ATOMIC_RELAXED);
  return &rs->ring;
}

/* Whether the test knob makes this submission fail (and arms a setup
 * failure to follow it). */
static bool
inject_submit_failure (void)
{
  if (fail_after == 0
      || __atomic_add_fetch (&submissions, 1, __ATOMIC_RELAXED) != fail_after)
    return false;
  __atomic_store_n (&fail_next_setup, 1, __ATOMIC_RELAXED);
  return true;
}

/* An op's result from a transfer of @got bytes or -errno. */
static int
op_result (const struct gs_io *io, long long got)
{
  if (got < 0)
    return (int) got;
  return (uint64_t) got == io->len ? 0 : -EIO;  /* short: an error */
}

static void
reap (struct io_uring *ring, struct gs_io *ios, struct io_uring_cqe *cqe,
      unsigned *inflight)
{
  struct gs_io *io = &ios[io_uring_cqe_get_data64 (cqe)];

  io->res = op_result (io, cqe->res);
  io_uring_cqe_seen (ring, cqe);
  (*inflight)--;
}

/* After a failed submission: wait until no op of the batch is in the
 * kernel.  If the kernel refuses to wait too, poll the completion ring
 * (completions are posted on the thread's way back from any system
 * call).  An op still there after ORPHAN_WAIT_MS fails with -EIO. */
static void
wait_inflight (struct io_uring *ring, struct gs_io *ios, size_t n,
               unsigned inflight)
{
  const struct timespec ms = { 0, 1000000 };
  unsigned waited = 0;

  while (inflight > 0 && waited < ORPHAN_WAIT_MS) {
    struct io_uring_cqe *cqe;
    int r = io_uring_wait_cqe (ring, &cqe);

    if (r == 0)
      reap (ring, ios, cqe, &inflight);
    else if (r != -EINTR) {
      nanosleep (&ms, NULL);
      waited++;
    }
  }
  for (size_t i = 0; inflight > 0 && i < n; i++)
    if (ios[i].res == OP_KERNEL)
      ios[i].res = -EIO;
}

/* Run the ops marked OP_TODO through @ring.
 * Return: 0, or the -errno of a failed submission (then the ops left
 * OP_TODO or OP_QUEUED were not performed and no op is in the kernel). */
static int
ring_run (struct io_uring *ring, struct gs_io *ios, size_t n)
{
  size_t next = 0;              /* next op to queue */
  size_t sub = 0;               /* first queued op the kernel has not taken */
  unsigned queued = 0, inflight = 0;

  for (;;) {
    struct io_uring_cqe *cqe;
    int r;

    while (next < n && queued + inflight < RING_DEPTH) {
      struct gs_io *io = &ios[next];
      struct io_uring_sqe *sqe;

      if (io->res != OP_TODO) {         /* failed before submission */
        next++;
        continue;
      }
      sqe = io_uring_get_sqe (ring);
      if (!sqe)
        break;
      if (io->write)
        io_uring_prep_write (sqe, io->fd, io->buf, io->len, io->offset);
      else
        io_uring_prep_read (sqe, io->fd, io->buf, io->len, io->offset);
      io_uring_sqe_set_data64 (sqe, next);
      io->res = OP_QUEUED;
      next++;
      queued++;
    }
    if (queued + inflight == 0)
      return 0;
    r = inject_submit_failure () ? -ENOMEM
      : io_uring_submit_and_wait (ring, 1);
    if (r == 0 && inflight == 0)
      r = -EAGAIN;              /* nothing taken, nothing to wait for */
    if (r < 0 && r != -EINTR) {
      wait_inflight (ring, ios, n, inflight);
      return r;
    }
    /* The kernel takes queued ops in order. */
    for (; r > 0 && queued > 0; sub++) {
      if (ios[sub].res == OP_QUEUED) {
        ios[sub].res = OP_KERNEL;
        queued--;
        inflight++;
        r--;
      }
    }
    while (inflight > 0 && io_uring_peek_cqe (ring, &cqe) == 0)
      reap (ring, ios, cqe, &inflight);
  }
}

/* One op with pread/pwrite. */
static void
sync_op (struct gs_io *io)
{
  ssize_t r;

  do {
    if (io->write)
      r = pwrite (io->fd, io->buf, io->len, (off_t) io->offset);
    else
      r = pread (io->fd, io->buf, io->len, (off_t) io->offset);
  } while (r < 0 && errno == EINTR);
  io->res = op_result (io, r < 0 ? -errno : r);
}

/* gs_uring_run - see uring.h. */
int
gs_uring_run (struct gs_io *ios, size_t n)
{
  struct ring_state *rs = get_state ();
  struct io_uring *ring = rs ? get_ring (rs) : NULL;
  bool fell_back = false;
  size_t i;
  int first = 0;

  for (i = 0; i < n; i++)
    if (ios[i].res == 0)
      ios[i].res = OP_TODO;
  if (ring) {
    int r = ring_run (ring, ios, n);
    if (r < 0) {
      note_failure (rs, r);
      io_uring_queue_exit (ring);
      rs->up = false;
    }
    else
      rs->backoff_ms = 0;
  }
  for (i = 0; i < n; i++) {
    if (ios[i].res == OP_TODO || ios[i].res == OP_QUEUED) {
      sync_op (&ios[i]);
      fell_back = true;
    }
    if (ios[i].res != 0 && first == 0)
      first = ios[i].res;
  }
  if (fell_back)
    __atomic_add_fetch (&status.fallback_batches, 1, __ATOMIC_RELAXED);
  return first;
}

/* gs_uring_get_status - see uring.h. */
void
gs_uring_get_status (struct gs_uring_status *st)
{
  st->rings = __atomic_load_n (&status.rings, __ATOMIC_RELAXED);
  st->failures = __atomic_load_n (&status.failures, __ATOMIC_RELAXED);
  st->fallback_batches = __atomic_load_n (&status.fallback_batches,
                                          __ATOMIC_RELAXED);
  st->last_error = __atomic_load_n (&status.last_error, __ATOMIC_RELAXED);
}

/* gs_backing_io_check - see backing.h. */
int
gs_backing_io_check (void)
{
  struct io_uring ring;
  int r;

  pthread_once (&ring_once, ring_key_make);
  if (uring_off)
    return -ENOTSUP;
  r = io_uring_queue_init (1, &ring, 0);
  if (r == 0)
    io_uring_queue_exit (&ring);
  return r;
}
