/* ghostswapd: the FUSE-over-io_uring queues (see fuse_ring.h). */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "daemon_log.h"
#include "fuse_ring.h"
#include "fuse_uring_uapi.h"

/* Room before the payload for the fuse_in_header and the per-opcode
 * header, so that a request lies in one piece as read(2) on /dev/fuse
 * would have returned it, without copying the payload. */
#define PREFIX 4096

/* How long a thread sleeps in the kernel before looking at the stop
 * flag (ms). */
#define WAIT_MS 200

/* Failed commits in a row after which a thread gives up. */
#define MAX_RETRIES 8

enum command { CMD_WAIT, CMD_GO, CMD_QUIT };

struct ring_thread {
  struct fuse_ring *ring;
  unsigned qid;
  pthread_t tid;
  bool started;                 /* tid is valid */
  struct io_uring uring;
  bool uring_ok;
  struct fuse_uring_req_header *hdr;
  char *buf;                    /* PREFIX + FUSE_RING_PAYLOAD */
  char *payload;
  struct iovec iov[2];          /* what REGISTER hands the kernel */
  uint64_t unique;              /* the request being answered */
  bool replied;                 /* fuse_ring_capture took its reply */
};

struct fuse_ring {
  struct fuse_session *se;
  int fd;
  struct fuse_ring_options opts;
  unsigned nqueues;
  unsigned nthreads;

  /* lock protects setup_done, setup_err, setup_msg, command, failed and
   * fail_msg; cond signals changes of setup_done and command. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned setup_done;
  int setup_err;
  char setup_msg[256];
  enum command command;
  bool failed;
  char fail_msg[256];

  bool stop;                    /* atomic: threads return */
  uint64_t served[FUSE_OPCOUNT_N];      /* atomic */
  struct ring_thread t[];
};

/* The ring thread running on this thread, while it dispatches. */
static __thread struct ring_thread *current;

/* fuse_ring_possible_cpus - see fuse_ring.h. */
int
fuse_ring_possible_cpus (void)
{
  FILE *fp = fopen ("/sys/devices/system/cpu/possible", "re");
  char line[256], *p;
  long max = -1;

  if (fp == NULL)
    return -errno;
  if (fgets (line, sizeof line, fp) == NULL) {
    fclose (fp);
    return -EIO;
  }
  fclose (fp);
  /* "0-3", "0", "0-3,8-11": the last number is the highest CPU. */
  for (p = line; *p; ) {
    char *end;
    long v;

    if (*p < '0' || *p > '9') {       /* '-', ',' or the newline */
      p++;
      continue;
    }
    v = strtol (p, &end, 10);
    if (v > max)
      max = v;
    p = end;
  }
  return max < 0 ? -EIO : (int) (max + 1);
}

/* ---- Commands ---- */

/* prep_cmd - a URING_CMD SQE for @t with @op. */
static int
prep_cmd (struct ring_thread *t, uint32_t op, uint64_t commit_id)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe (&t->uring);
  struct fuse_uring_cmd_req *req;

  if (sqe == NULL)
    return -EBUSY;
  /* A 128-byte SQE: the command area follows the first 48 bytes. */
  memset (sqe, 0, 128);
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = t->ring->fd;
  sqe->cmd_op = op;
  sqe->user_data = op;
  if (op == FUSE_IO_URING_CMD_REGISTER) {
    sqe->addr = (uint64_t) (uintptr_t) t->iov;
    sqe->len = 2;
  }
  req = (struct fuse_uring_cmd_req *) sqe->cmd;
  req->qid = (uint16_t) t->qid;
  req->commit_id = commit_id;
  return 0;
}

/* record_failure - the first failure (@what on queue @qid, errno @err)
 * says why the ring is not used. */
static void
record_failure (struct fuse_ring *ring, const char *what, int err,
                unsigned qid)
{
  pthread_mutex_lock (&ring->lock);
  if (!ring->failed) {
    ring->failed = true;
    snprintf (ring->fail_msg, sizeof ring->fail_msg,
              "io_uring queue %u: %s: %s", qid, what, strerror (err));
    log_warning ("transport: %s: the kernel serves this connection over "
                 "/dev/fuse", ring->fail_msg);
  }
  pthread_mutex_unlock (&ring->lock);
}

/* ---- Requests ---- */

/* reply_error - answer the request in @t's entry with -@err. */
static void
reply_error (struct ring_thread *t, int err)
{
  struct fuse_out_header out = {
    .len = sizeof out, .error = -err, .unique = t->unique,
  };

  memcpy (t->hdr->in_out, &out, sizeof out);
  t->hdr->ring_ent_in_out.payload_sz = 0;
}

/* serve - the request now in @t's entry: dispatch it through libfuse,
 * which answers into the entry (fuse_ring_capture). */
static void
serve (struct ring_thread *t)
{
  struct fuse_in_header in;
  struct fuse_buf fbuf;
  size_t psz, oplen;
  char *start;

  memcpy (&in, t->hdr->in_out, sizeof in);
  psz = t->hdr->ring_ent_in_out.payload_sz;
  t->unique = t->hdr->ring_ent_in_out.commit_id;
  __atomic_add_fetch (&t->ring->served[fuse_opcount_index (in.opcode)], 1,
                      __ATOMIC_RELAXED);
  if (psz > FUSE_RING_PAYLOAD || in.len < sizeof in + psz
      || in.len - sizeof in - psz > FUSE_URING_OP_IN_OUT_SZ) {
    log_warning ("io_uring queue %u: malformed request (opcode %u, "
                 "length %u, payload %zu): answered EIO", t->qid,
                 in.opcode, in.len, psz);
    reply_error (t, EIO);
    return;
  }
  oplen = in.len - sizeof in - psz;
  start = t->payload - oplen - sizeof in;
  memcpy (start, &in, sizeof in);
  memcpy (start + sizeof in, t->hdr->op_in, oplen);

  memset (&fbuf, 0, sizeof fbuf);
  fbuf.mem = start;
  fbuf.size = in.len;
  t->replied = false;
  current = t;
  fuse_session_process_buf (t->ring->se, &fbuf);
  current = NULL;
  if (!t->replied)              /* libfuse dropped it: never leave the
                                 * kernel waiting */
    reply_error (t, EIO);
}

/* fuse_ring_capture - see fuse_ring.h. */
bool
fuse_ring_capture (const struct iovec *iov, int count, ssize_t *len)
{
  struct ring_thread *t = current;
  struct fuse_out_header out;
  size_t total = 0, n = 0;
  int i;

  if (t == NULL || count < 1 || iov[0].iov_len < sizeof out)
    return false;
  memcpy (&out, iov[0].iov_base, sizeof out);
  if (out.unique != t->unique || t->replied)
    return false;               /* a notification, or not ours */
  for (i = 0; i < count; i++)
    total += iov[i].iov_len;
  if (total - sizeof out > FUSE_RING_PAYLOAD) {
    reply_error (t, EIO);
  } else {
    for (i = 1; i < count; i++) {
      memmove (t->payload + n, iov[i].iov_base, iov[i].iov_len);
      n += iov[i].iov_len;
    }
    out.len = (uint32_t) total;
    memcpy (t->hdr->in_out, &out, sizeof out);
    t->hdr->ring_ent_in_out.payload_sz = (uint32_t) n;
  }
  t->replied = true;
  *len = (ssize_t) total;
  return true;
}

/* ---- Threads ---- */

/* setup - the io_uring and the entry's buffers. */
static int
setup (struct ring_thread *t, char *err, size_t errlen)
{
  struct io_uring_params p;
  int r;

  /* Completions are reaped only by this thread: let the kernel run their
   * task work when it waits (DEFER_TASKRUN), older kernels without. */
  memset (&p, 0, sizeof p);
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER
    | IORING_SETUP_DEFER_TASKRUN;
  r = io_uring_queue_init_params (4, &t->uring, &p);
  if (r == -EINVAL) {
    memset (&p, 0, sizeof p);
    p.flags = IORING_SETUP_SQE128;
    r = io_uring_queue_init_params (4, &t->uring, &p);
  }
  if (r < 0) {
    snprintf (err, errlen, "io_uring_setup with 128-byte SQEs: %s",
              strerror (-r));
    return r;
  }
  t->uring_ok = true;
  t->hdr = aligned_alloc (4096, 4096);
  t->buf = aligned_alloc (4096, PREFIX + FUSE_RING_PAYLOAD);
  if (t->hdr == NULL || t->buf == NULL) {
    snprintf (err, errlen, "ring buffers: %s", strerror (ENOMEM));
    return -ENOMEM;
  }
  memset (t->hdr, 0, sizeof *t->hdr);
  t->payload = t->buf + PREFIX;
  t->iov[0].iov_base = t->hdr;
  t->iov[0].iov_len = sizeof *t->hdr;
  t->iov[1].iov_base = t->payload;
  t->iov[1].iov_len = FUSE_RING_PAYLOAD;
  return 0;
}

/* await_go - report setup (@r) and wait for the command.
 * Return: true to go on. */
static bool
await_go (struct ring_thread *t, int r, const char *err)
{
  struct fuse_ring *ring = t->ring;
  bool go;

  pthread_mutex_lock (&ring->lock);
  if (r < 0 && ring->setup_err == 0) {
    ring->setup_err = r;
    snprintf (ring->setup_msg, sizeof ring->setup_msg, "%s", err);
  }
  ring->setup_done++;
  pthread_cond_broadcast (&ring->cond);
  while (ring->command == CMD_WAIT)
    pthread_cond_wait (&ring->cond, &ring->lock);
  go = ring->command == CMD_GO && r == 0;
  pthread_mutex_unlock (&ring->lock);
  return go;
}

/* wait_cqe - the next completion, sleeping in the kernel for up to
 * WAIT_MS.  (Polling before sleeping was measured and did not help: see
 * docs/benchmarks-swap.md.)
 * Return: 0 and *@cqe, or -ETIME / -errno. */
static int
wait_cqe (struct ring_thread *t, struct io_uring_cqe **cqe)
{
  struct __kernel_timespec ts = { 0, WAIT_MS * 1000000L };

  return io_uring_wait_cqe_timeout (&t->uring, cqe, &ts);
}

static void *
thread_main (void *arg)
{
  struct ring_thread *t = arg;
  struct fuse_ring *ring = t->ring;
  char err[256] = "";
  bool served_any = false;
  unsigned retries = 0;
  int r;

  r = setup (t, err, sizeof err);
  if (!await_go (t, r, err))
    return NULL;

  r = prep_cmd (t, FUSE_IO_URING_CMD_REGISTER, 0);
  if (r == 0)
    r = io_uring_submit (&t->uring);
  if (r < 0) {
    record_failure (ring, "cannot submit REGISTER", -r, t->qid);
    return NULL;
  }
  while (!__atomic_load_n (&ring->stop, __ATOMIC_ACQUIRE)) {
    struct io_uring_cqe *cqe;
    uint32_t op;

    r = wait_cqe (t, &cqe);
    if (r == -ETIME || r == -EINTR || r == -EAGAIN)
      continue;
    if (r < 0) {
      log_warning ("io_uring queue %u: waiting: %s", t->qid, strerror (-r));
      break;
    }
    r = cqe->res;
    op = (uint32_t) cqe->user_data;
    io_uring_cqe_seen (&t->uring, cqe);
    if (r == -ENOTCONN || r == -ECONNABORTED || r == -ENODEV)
      break;                    /* unmounted or aborted */
    if (r < 0) {
      if (op == FUSE_IO_URING_CMD_REGISTER && !served_any) {
        /* The kernel has gone back to /dev/fuse for the connection. */
        record_failure (ring, "REGISTER failed", -r, t->qid);
        break;
      }
      if (++retries > MAX_RETRIES) {
        log_error ("io_uring queue %u: %s failed %u times in a row (%s): "
                   "this thread stops", t->qid,
                   op == FUSE_IO_URING_CMD_REGISTER ? "REGISTER"
                   : "COMMIT_AND_FETCH", retries, strerror (-r));
        break;
      }
      /* A failed commit leaves the kernel without this entry: hand it
       * over again. */
      log_warning ("io_uring queue %u: %s: %s; registering the entry "
                   "again", t->qid, op == FUSE_IO_URING_CMD_REGISTER
                   ? "REGISTER" : "COMMIT_AND_FETCH", strerror (-r));
      r = prep_cmd (t, FUSE_IO_URING_CMD_REGISTER, 0);
    } else {
      served_any = true;
      retries = 0;
      serve (t);
      r = prep_cmd (t, FUSE_IO_URING_CMD_COMMIT_AND_FETCH, t->unique);
    }
    if (r == 0)
      r = io_uring_submit (&t->uring);
    if (r < 0) {
      log_error ("io_uring queue %u: cannot submit: %s: this thread stops",
                 t->qid, strerror (-r));
      break;
    }
  }
  return NULL;
}

/* ---- Creation and teardown ---- */

static void
free_ring (struct fuse_ring *ring)
{
  unsigned i;

  for (i = 0; i < ring->nthreads; i++) {
    struct ring_thread *t = &ring->t[i];

    /* Closing the io_uring cancels its commands still in the kernel. */
    if (t->uring_ok)
      io_uring_queue_exit (&t->uring);
    free (t->hdr);
    free (t->buf);
  }
  pthread_mutex_destroy (&ring->lock);
  pthread_cond_destroy (&ring->cond);
  free (ring);
}

static void
command (struct fuse_ring *ring, enum command c)
{
  pthread_mutex_lock (&ring->lock);
  if (ring->command == CMD_WAIT)
    ring->command = c;
  pthread_cond_broadcast (&ring->cond);
  pthread_mutex_unlock (&ring->lock);
}

/* fuse_ring_create - see fuse_ring.h. */
int
fuse_ring_create (struct fuse_session *se, int fd,
                  const struct fuse_ring_options *opts,
                  struct fuse_ring **ringp, char *err, size_t errlen)
{
  struct fuse_ring *ring;
  int cpus = fuse_ring_possible_cpus ();
  unsigned i, n;
  int r = 0;

  if (cpus < 0) {
    snprintf (err, errlen, "cannot read /sys/devices/system/cpu/possible: %s",
              strerror (-cpus));
    return cpus;
  }
  n = (unsigned) cpus * (opts->threads_per_queue > 0
                         ? opts->threads_per_queue
                         : FUSE_RING_THREADS_PER_QUEUE);
  ring = calloc (1, sizeof *ring + n * sizeof ring->t[0]);
  if (ring == NULL) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  ring->se = se;
  ring->fd = fd;
  ring->opts = *opts;
  ring->nqueues = (unsigned) cpus;
  ring->nthreads = n;
  pthread_mutex_init (&ring->lock, NULL);
  pthread_cond_init (&ring->cond, NULL);
  for (i = 0; i < n; i++) {
    ring->t[i].ring = ring;
    ring->t[i].qid = i % ring->nqueues;
    r = pthread_create (&ring->t[i].tid, NULL, thread_main, &ring->t[i]);
    if (r != 0) {
      snprintf (err, errlen, "cannot start a queue thread: %s",
                strerror (r));
      r = -r;
      break;
    }
    ring->t[i].started = true;
  }
  pthread_mutex_lock (&ring->lock);
  while (r == 0 && ring->setup_done < n)
    pthread_cond_wait (&ring->cond, &ring->lock);
  if (r == 0 && ring->setup_err < 0) {
    r = ring->setup_err;
    snprintf (err, errlen, "%s", ring->setup_msg);
  }
  pthread_mutex_unlock (&ring->lock);
  if (r < 0) {
    fuse_ring_destroy (ring);
    return r;
  }
  *ringp = ring;
  return 0;
}

/* fuse_ring_queues - see fuse_ring.h. */
unsigned
fuse_ring_queues (const struct fuse_ring *ring)
{
  return ring->nqueues;
}

/* fuse_ring_threads_per_queue - see fuse_ring.h. */
unsigned
fuse_ring_threads_per_queue (const struct fuse_ring *ring)
{
  return ring->nthreads / ring->nqueues;
}

/* fuse_ring_go - see fuse_ring.h. */
void
fuse_ring_go (struct fuse_ring *ring)
{
  command (ring, CMD_GO);
}

/* fuse_ring_failed - see fuse_ring.h. */
bool
fuse_ring_failed (struct fuse_ring *ring, char *why, size_t len)
{
  bool failed;

  pthread_mutex_lock (&ring->lock);
  failed = ring->failed;
  if (failed)
    snprintf (why, len, "%s", ring->fail_msg);
  pthread_mutex_unlock (&ring->lock);
  return failed;
}

/* fuse_ring_served - see fuse_ring.h. */
uint64_t
fuse_ring_served (const struct fuse_ring *ring, unsigned i)
{
  return i < FUSE_OPCOUNT_N
    ? __atomic_load_n (&ring->served[i], __ATOMIC_RELAXED) : 0;
}

/* fuse_ring_stop - see fuse_ring.h. */
void
fuse_ring_stop (struct fuse_ring *ring)
{
  unsigned i;

  __atomic_store_n (&ring->stop, true, __ATOMIC_RELEASE);
  command (ring, CMD_QUIT);
  for (i = 0; i < ring->nthreads; i++)
    if (ring->t[i].started) {
      pthread_join (ring->t[i].tid, NULL);
      ring->t[i].started = false;
    }
}

/* fuse_ring_destroy - see fuse_ring.h. */
void
fuse_ring_destroy (struct fuse_ring *ring)
{
  if (ring == NULL)
    return;
  fuse_ring_stop (ring);
  free_ring (ring);
}
