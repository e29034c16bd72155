/* ghostswap: the remote NBD kind of backing (backing_nbd.h).
 *
 * A remote is one to NBD_CONNS connections (several only when the server
 * advertises multi-conn), each a libnbd handle driven with its
 * asynchronous API by the threads that need it: a thread with a batch
 * queues its requests on one connection, sends what the in-flight limit
 * allows, and then either drives the handle for one round (poll(2) on
 * its socket and a wake-up pipe, then nbd_aio_notify_*) or, when another
 * thread is driving it, waits for a completion.  Completion callbacks
 * only mark the request finished; the thread that drove the round reaps
 * finished requests and sends queued ones.  Reads are queued before
 * writes and not held back by the in-flight limit, so a client's read
 * goes out at once.
 *
 * A handle that died (the server went away, or a request waited more
 * than remote-timeout: a hung server) is closed, never revived: the
 * requests it had in flight are queued again, and the backing's own
 * thread (reconnect) makes a new handle, with back-off, and installs it
 * (it also looks at idle connections every second, so that one whose
 * server went away is replaced before the next request needs it);
 * then the queued requests are sent again (whole physical slots: reads
 * and writes are idempotent).  Closing a handle before any of its
 * requests is given up guarantees that a late write cannot land after
 * the slot was reused.  A request still unanswered remote-timeout after
 * it was queued fails: -ENOTCONN (the caller's pages stay where they
 * were; gs_backing_account does not mark the backing unhealthy for it);
 * once no connection has been up for remote-timeout, new requests fail
 * so at once, until the reconnect thread gets one again.
 * While no connection is up the backing is offline (takes no new pages).
 * An error the server answers is the request's result (-errno), a fault
 * of the backing as for files.
 *
 * Locks: each connection's lock protects its handle (every call into it
 * is made under the lock, but poll(2) is not), its request list and
 * counters; callbacks run under it (from nbd_aio_notify_* or a submit).
 * The remote's rlock protects the reconnect thread's stop and kick flags.
 * Order: connection lock -> rlock.  Figures (reconnects, latency) are
 * atomics.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "backing_nbd.h"
#include "cleanup.h"
#include "errmsg.h"
#include "ghostswap/backing.h"
#include "ghostswap/config.h"

#define NBD_CONNS 4                  /* connections with multi-conn */
#define NBD_INFLIGHT 32              /* writes, zeroes and trims in flight
                                      * per connection (reads: no limit) */
#define NBD_REQ_MAX (4u << 20)       /* bytes per read or write request */
#define NBD_WIPE_MAX (1u << 30)      /* bytes per zero or trim request */
#define NBD_SLICE_MS 100             /* longest poll(2) of one round */
#define BACKOFF_MIN_MS 20
#define BACKOFF_MAX_MS 2000
#define HIST_BUCKETS 256             /* read latency, 4 per power of 2 */

enum op_kind { OP_READ, OP_WRITE, OP_ZERO, OP_TRIM };

struct conn;

/* One request.  Fields under its connection's lock. */
struct nbd_op {
  struct conn *c;
  enum op_kind kind;
  void *buf;
  uint64_t off, len;
  uint64_t deadline;          /* monotonic µs: given up after it */
  unsigned gen;               /* the handle it is in flight on; 0: queued */
  bool fin;                   /* answered (by the callback) */
  bool done;                  /* reaped: err is its result */
  int err;                    /* errno, 0 */
  uint64_t t0;                /* when sent (µs) */
  struct nbd_op *prev, *next; /* in c->ops until done */
};

struct remote;

struct conn {
  struct remote *r;
  pthread_mutex_t lock;       /* protects all below and calls into h */
  pthread_cond_t cv;          /* broadcast: requests done, round over,
                               * handle installed */
  struct nbd_handle *h;       /* NULL while down */
  unsigned gen;               /* handles made so far */
  bool polling;               /* a thread is in poll(2) on h */
  bool doom;                  /* h must be closed (after the round) */
  bool closing;               /* nbd_close under way: callbacks ignored */
  unsigned inflight;
  struct nbd_op *ops;         /* not done: reads first, then the rest */
  struct nbd_op *tail;
  int wake[2];                /* pipe: a byte wakes the thread in poll(2) */
};

struct remote {
  struct gs_backing *b;
  char *tls_psk, *tls_username, *tls_certificates;
  uint64_t timeout_us;
  uint64_t size;
  uint32_t req_max;           /* bytes per read or write request */
  bool can_zero, can_trim;
  bool insecure;              /* TCP without TLS */
  unsigned nconns;
  struct conn conn[NBD_CONNS];
  unsigned up;                /* atomic: connections with a handle */
  uint64_t down_since;        /* atomic: µs when the last one went, 0 */
  uint64_t rr;                /* atomic: round robin */
  uint64_t reconnects;        /* atomic */
  uint64_t read_count, read_usec_sum;  /* atomic */
  uint64_t hist[HIST_BUCKETS];         /* atomic */
  void *zeros;                /* req_max zero bytes, for wipes, or NULL */

  pthread_t thread;           /* reconnect */
  bool thread_started;
  pthread_mutex_t rlock;      /* protects stop and kick */
  pthread_cond_t rcv;
  bool stop, kick;
};

static uint64_t
now_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static struct timespec
abs_time (uint64_t us_mono)
{
  struct timespec ts = {
    .tv_sec = (time_t) (us_mono / 1000000u),
    .tv_nsec = (long) (us_mono % 1000000u) * 1000,
  };
  return ts;
}

/* gs_backing_is_remote - see backing_nbd.h. */
bool
gs_backing_is_remote (const char *path)
{
  static const char *const schemes[] = {
    "nbd://", "nbds://", "nbd+unix://", "nbds+unix://", "nbd+vsock://",
    "nbds+vsock://",
  };

  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp (path, schemes[i], strlen (schemes[i])) == 0)
      return true;
  return false;
}

/* ---- latency ---- */

static unsigned
hist_bucket (uint64_t v)
{
  unsigned e;

  if (v < 4)
    return (unsigned) v;
  e = 63u - (unsigned) __builtin_clzll (v);
  return 4u * (e - 1u) + (unsigned) ((v >> (e - 2u)) & 3u);
}

static uint64_t
hist_value (unsigned k)
{
  unsigned e, sub;

  if (k < 4)
    return k;
  e = k / 4u + 1u;
  sub = k % 4u;
  return ((4ull + sub) << (e - 2u)) + ((1ull << (e - 2u)) >> 1);
}

static uint64_t
hist_quantile (struct remote *r, unsigned per_mille)
{
  uint64_t c[HIST_BUCKETS], total = 0, want, cum = 0;
  unsigned k;

  for (k = 0; k < HIST_BUCKETS; k++)
    total += c[k] = __atomic_load_n (&r->hist[k], __ATOMIC_RELAXED);
  if (total == 0)
    return 0;
  want = (total * per_mille + 999) / 1000;
  for (k = 0; k < HIST_BUCKETS; k++) {
    cum += c[k];
    if (cum >= want)
      return hist_value (k);
  }
  return hist_value (HIST_BUCKETS - 1);
}

/* ---- requests on a connection ---- */

static int
op_done (void *opaque, int *error)
{
  struct nbd_op *op = opaque;

  if (!op->c->closing) {
    op->fin = true;
    op->err = *error;
  }
  return 1;
}

static void
__link (struct conn *c, struct nbd_op *op)
{
  op->prev = op->next = NULL;
  if (op->kind == OP_READ) {        /* reads go first */
    op->next = c->ops;
    if (c->ops)
      c->ops->prev = op;
    c->ops = op;
    if (!c->tail)
      c->tail = op;
    return;
  }
  op->prev = c->tail;
  if (c->tail)
    c->tail->next = op;
  c->tail = op;
  if (!c->ops)
    c->ops = op;
}

static void
__unlink (struct conn *c, struct nbd_op *op)
{
  if (op->prev)
    op->prev->next = op->next;
  else
    c->ops = op->next;
  if (op->next)
    op->next->prev = op->prev;
  else
    c->tail = op->prev;
  op->prev = op->next = NULL;
}

/* Send @op on c->h.  Context: c->lock held, c->h set. */
static void
__send (struct conn *c, struct nbd_op *op)
{
  nbd_completion_callback cb = { .callback = op_done, .user_data = op };
  int64_t ck = -1;

  op->gen = c->gen;
  op->t0 = now_us ();
  c->inflight++;
  switch (op->kind) {
  case OP_READ:
    ck = nbd_aio_pread (c->h, op->buf, op->len, op->off, cb, 0);
    break;
  case OP_WRITE:
    ck = nbd_aio_pwrite (c->h, op->buf, op->len, op->off, cb, 0);
    break;
  case OP_ZERO:
    ck = nbd_aio_zero (c->h, op->len, op->off, cb, 0);
    break;
  case OP_TRIM:
    ck = nbd_aio_trim (c->h, op->len, op->off, cb, 0);
    break;
  }
  if (ck >= 0)
    return;
  c->inflight--;
  op->gen = 0;
  if (nbd_aio_is_dead (c->h) || nbd_aio_is_closed (c->h)) {
    /* Stays queued for the next handle (libnbd may have called the
     * callback with ENOTCONN already). */
    op->fin = false;
    op->err = 0;
    c->doom = true;
    return;
  }
  op->fin = true;               /* refused by libnbd itself */
  op->err = nbd_get_errno () ? nbd_get_errno () : EIO;
}

/* Send queued requests: reads (first in the list) at once, others
 * while the in-flight limit allows. */
static void
__pump (struct conn *c)
{
  struct nbd_op *op;

  for (op = c->ops; op && c->h && !c->doom; op = op->next) {
    if (op->kind != OP_READ && c->inflight >= NBD_INFLIGHT)
      break;
    if (op->gen == 0 && !op->fin)
      __send (c, op);
  }
}

/* Is c->h still usable?  If not, it is doomed (closed by the next thread
 * not in poll(2)). */
static bool
__alive (struct conn *c)
{
  if (c->h && !c->doom
      && (nbd_aio_is_dead (c->h) || nbd_aio_is_closed (c->h)))
    c->doom = true;
  return c->h && !c->doom;
}

/* Finished requests leave the list; one that failed on a handle that
 * died stays, to be sent again (__kill). */
static void
__reap (struct conn *c)
{
  struct remote *r = c->r;
  struct nbd_op *op, *next;
  bool alive = __alive (c);

  for (op = c->ops; op; op = next) {
    next = op->next;
    if (!op->fin || (op->err != 0 && !alive))
      continue;
    __unlink (c, op);
    if (op->gen != 0)
      c->inflight--;
    if (op->kind == OP_READ && op->err == 0 && op->gen != 0) {
      uint64_t us = now_us () - op->t0;
      __atomic_add_fetch (&r->read_count, 1, __ATOMIC_RELAXED);
      __atomic_add_fetch (&r->read_usec_sum, us, __ATOMIC_RELAXED);
      __atomic_add_fetch (&r->hist[hist_bucket (us)], 1, __ATOMIC_RELAXED);
    }
    op->done = true;
  }
}

static void
wake (struct conn *c)
{
  char one = 1;

  if (write (c->wake[1], &one, 1) < 0) {
    /* The pipe is full: it will wake the poller anyway. */
  }
}

/* Close the handle: answered requests are reaped, the rest queued again
 * for the next handle, and the reconnect thread told.
 * Context: c->lock held, nobody in poll(2) on it. */
static void
__kill (struct conn *c)
{
  struct remote *r = c->r;
  struct nbd_op *op;

  if (!c->h)
    return;
  for (op = c->ops; op; op = op->next)
    if (op->gen != 0 && (!op->fin || op->err != 0)) {
      /* Not answered, or failed as the connection went: again. */
      op->fin = false;
      op->err = 0;
      op->gen = 0;
      c->inflight--;
    }
  __reap (c);
  c->closing = true;
  nbd_close (c->h);
  c->closing = false;
  c->h = NULL;
  c->doom = false;
  if (__atomic_sub_fetch (&r->up, 1, __ATOMIC_RELAXED) == 0) {
    uint64_t t = now_us ();
    __atomic_store_n (&r->down_since, t, __ATOMIC_RELAXED);
    __atomic_store_n (&r->b->offline_since, t, __ATOMIC_RELAXED);
    __atomic_store_n (&r->b->offline, true, __ATOMIC_RELEASE);
  }
  pthread_mutex_lock (&r->rlock);
  r->kick = true;
  pthread_cond_signal (&r->rcv);
  pthread_mutex_unlock (&r->rlock);
  pthread_cond_broadcast (&c->cv);
}

/* Drive c->h for one round of at most @ms.  Context: c->lock held (not
 * across poll(2)), c->h set, nobody else polling. */
static void
__round (struct conn *c, int ms)
{
  struct nbd_handle *h = c->h;
  unsigned dir = (unsigned) nbd_aio_get_direction (h);
  struct pollfd p[2] = {
    { .fd = nbd_aio_get_fd (h), .events = 0 },
    { .fd = c->wake[0], .events = POLLIN },
  };
  char v[64];
  int n;

  if (dir & LIBNBD_AIO_DIRECTION_READ)
    p[0].events |= POLLIN;
  if (dir & LIBNBD_AIO_DIRECTION_WRITE)
    p[0].events |= POLLOUT;
  if (p[0].fd < 0) {
    c->doom = true;
    __kill (c);
    return;
  }
  c->polling = true;
  pthread_mutex_unlock (&c->lock);
  n = poll (p, 2, ms);
  pthread_mutex_lock (&c->lock);
  c->polling = false;
  if (n > 0 && (p[1].revents & POLLIN)
      && read (c->wake[0], v, sizeof v) < 0) {
    /* Nothing to read: another round took it. */
  }
  if (n > 0 && !c->doom && c->inflight == 0
      && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
    c->doom = true;             /* nothing asked, yet readable: EOF */
  if (n > 0 && !c->doom) {
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
      nbd_aio_notify_read (h);
    if ((p[0].revents & POLLOUT) && !nbd_aio_is_dead (h))
      nbd_aio_notify_write (h);
  }
  if (c->doom || nbd_aio_is_dead (h) || nbd_aio_is_closed (h))
    __kill (c);
  else {
    __reap (c);
    __pump (c);
  }
  pthread_cond_broadcast (&c->cv);
}

static bool
pending (const struct nbd_op *ops, size_t n)
{
  for (size_t k = 0; k < n; k++)
    if (!ops[k].done)
      return true;
  return false;
}

/* A connection to use, locked: one that is up if any (round robin). */
static struct conn *
pick (struct remote *r)
{
  unsigned start = (unsigned) __atomic_fetch_add (&r->rr, 1,
                                                  __ATOMIC_RELAXED);

  for (unsigned i = 0; i < r->nconns; i++) {
    struct conn *c = &r->conn[(start + i) % r->nconns];

    pthread_mutex_lock (&c->lock);
    if (c->h || i + 1 == r->nconns)
      return c;
    pthread_mutex_unlock (&c->lock);
  }
  return NULL;                  /* not reached: nconns >= 1 */
}

/* Perform the @n requests @ops on one connection and wait for all: each
 * ends with its err (-ENOTCONN-worthy ETIMEDOUT after remote-timeout).
 * Context: may sleep; takes a connection's lock. */
static void
perform (struct remote *r, struct nbd_op *ops, size_t n)
{
  struct conn *c = pick (r);
  uint64_t t0 = now_us (), deadline = t0 + r->timeout_us;
  uint64_t since = __atomic_load_n (&r->down_since, __ATOMIC_RELAXED);
  size_t k;

  if (!c->h && since != 0 && t0 - since >= r->timeout_us) {
    /* Down for longer than remote-timeout already: fail at once (a
     * drain retrying page by page must not wait that long for each). */
    for (k = 0; k < n; k++) {
      ops[k].done = true;
      ops[k].err = ETIMEDOUT;
    }
    pthread_mutex_unlock (&c->lock);
    return;
  }
  for (k = 0; k < n; k++) {
    ops[k].c = c;
    ops[k].deadline = deadline;
    ops[k].gen = 0;
    ops[k].fin = ops[k].done = false;
    ops[k].err = 0;
    __link (c, &ops[k]);
  }
  if (c->h)
    __pump (c);
  if (c->polling)
    wake (c);                   /* its poll(2) may want POLLOUT now */
  while (pending (ops, n)) {
    uint64_t t = now_us ();

    __reap (c);
    if (!pending (ops, n))
      break;
    if (c->doom && c->h && !c->polling)
      __kill (c);
    if (t >= deadline) {
      bool sent = false;

      for (k = 0; k < n; k++)
        sent |= !ops[k].done && ops[k].gen != 0;
      if (sent && c->polling) {
        /* Not answered in time on a live handle: a hung server.  The
         * thread in poll(2) closes it after its round. */
        c->doom = true;
        wake (c);
        struct timespec ts = abs_time (t + 10000);
        pthread_cond_timedwait (&c->cv, &c->lock, &ts);
        continue;
      }
      if (sent)
        __kill (c);             /* queues ours again */
      /* Every one not done is queued now (never given to libnbd, or its
       * handle is closed): it leaves the list with its result. */
      for (k = 0; k < n; k++)
        if (!ops[k].done) {
          __unlink (c, &ops[k]);
          ops[k].done = true;
          ops[k].err = ops[k].fin && ops[k].err ? ops[k].err : ETIMEDOUT;
        }
      break;
    }
    if (c->h && !c->polling) {
      uint64_t left = (deadline - t + 999) / 1000;
      __round (c, left < NBD_SLICE_MS ? (int) left : NBD_SLICE_MS);
      continue;
    }
    struct timespec ts = abs_time (t + NBD_SLICE_MS * 1000u < deadline
                                   ? t + NBD_SLICE_MS * 1000u : deadline);
    pthread_cond_timedwait (&c->cv, &c->lock, &ts);
  }
  pthread_mutex_unlock (&c->lock);
}

/* ---- the kind's operations ---- */

static int
op_result (const struct nbd_op *op)
{
  if (op->err == 0)
    return 0;
  return op->err == ETIMEDOUT ? -ENOTCONN : -op->err;
}

static int
nbd_run (struct gs_backing *b, struct gs_io *ios, size_t n)
{
  struct remote *r = b->priv;
  CLEANUP_FREE struct nbd_op *ops = NULL;
  size_t k, nops = 0, j;
  int first = 0;

  for (k = 0; k < n; k++)
    if (ios[k].res == 0)
      nops += (ios[k].len + r->req_max - 1) / r->req_max;
  if (nops > 0) {
    ops = calloc (nops, sizeof *ops);
    if (!ops) {
      for (k = 0; k < n; k++)
        if (ios[k].res == 0)
          ios[k].res = -ENOMEM;
      return -ENOMEM;
    }
  }
  for (k = 0, j = 0; k < n; k++)
    for (uint64_t o = 0; ios[k].res == 0 && o < ios[k].len; o += r->req_max) {
      ops[j].kind = ios[k].write ? OP_WRITE : OP_READ;
      ops[j].buf = (unsigned char *) ios[k].buf + o;
      ops[j].off = ios[k].offset + o;
      ops[j].len = ios[k].len - o < r->req_max ? ios[k].len - o : r->req_max;
      j++;
    }
  if (nops > 0)
    perform (r, ops, nops);
  for (k = 0, j = 0; k < n; k++) {
    if (ios[k].res == 0)
      for (uint64_t o = 0; o < ios[k].len; o += r->req_max, j++)
        if (ios[k].res == 0)
          ios[k].res = op_result (&ops[j]);
    if (first == 0)
      first = ios[k].res;
  }
  return first;
}

static int
nbd_wipe (struct gs_backing *b, uint64_t first, uint64_t n)
{
  struct remote *r = b->priv;
  uint64_t off = first * GS_SLOT_SIZE, end = (first + n) * GS_SLOT_SIZE;
  /* Zero (the server may punch, reads give zeros); with encryption on, a
   * trim is enough (only ciphertext under a lost key stays); else write
   * zeros. */
  enum op_kind kind = r->can_zero ? OP_ZERO
    : r->can_trim && b->crypt ? OP_TRIM : OP_WRITE;
  uint64_t step = kind == OP_WRITE ? r->req_max : NBD_WIPE_MAX;
  struct nbd_op ops[8];

  if (kind == OP_WRITE && !r->zeros)
    return -ENOMEM;
  while (off < end) {
    size_t m = 0;

    for (; m < 8 && off < end; m++, off += step) {
      memset (&ops[m], 0, sizeof ops[m]);
      ops[m].kind = kind;
      ops[m].buf = r->zeros;
      ops[m].off = off;
      ops[m].len = end - off < step ? end - off : step;
    }
    perform (r, ops, m);
    for (size_t k = 0; k < m; k++)
      if (ops[k].err)
        return op_result (&ops[k]);
  }
  return 0;
}

static bool
nbd_same (const struct gs_backing *a, const struct gs_backing *b)
{
  return strcmp (a->path, b->path) == 0;
}

static void
nbd_info (struct gs_backing *b, struct gs_backing_info *o)
{
  struct remote *r = b->priv;
  unsigned up = __atomic_load_n (&r->up, __ATOMIC_RELAXED);
  uint64_t since = __atomic_load_n (&r->down_since, __ATOMIC_RELAXED);
  uint64_t inflight = 0;

  for (unsigned i = 0; i < r->nconns; i++) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&r->conn[i].lock);
    inflight += r->conn[i].inflight;
  }
  o->remote = true;
  o->remote_insecure = r->insecure;
  o->remote_connected = up > 0;
  o->remote_state = up == r->nconns ? "connected"
    : up == 0 && now_us () - since > r->timeout_us ? "down" : "reconnecting";
  o->reconnects = __atomic_load_n (&r->reconnects, __ATOMIC_RELAXED);
  o->inflight = inflight;
  o->read_count = __atomic_load_n (&r->read_count, __ATOMIC_RELAXED);
  o->read_usec_sum = __atomic_load_n (&r->read_usec_sum, __ATOMIC_RELAXED);
  o->read_usec_p50 = hist_quantile (r, 500);
  o->read_usec_p99 = hist_quantile (r, 990);
}

/* Conditions wait on CLOCK_MONOTONIC, as now_us counts. */
static void
cond_init (pthread_cond_t *cv)
{
  pthread_condattr_t a;

  pthread_condattr_init (&a);
  pthread_condattr_setclock (&a, CLOCK_MONOTONIC);
  pthread_cond_init (cv, &a);
  pthread_condattr_destroy (&a);
}

static int
conn_init (struct remote *r, struct conn *c)
{
  c->r = r;
  if (pipe2 (c->wake, O_NONBLOCK | O_CLOEXEC) < 0)
    return -errno;
  pthread_mutex_init (&c->lock, NULL);
  cond_init (&c->cv);
  return 0;
}

static void
conn_destroy (struct conn *c)
{
  if (c->h)
    nbd_close (c->h);
  close (c->wake[0]);
  close (c->wake[1]);
  pthread_cond_destroy (&c->cv);
  pthread_mutex_destroy (&c->lock);
}

static void
stop_thread (struct remote *r)
{
  if (!r->thread_started)
    return;
  pthread_mutex_lock (&r->rlock);
  r->stop = true;
  pthread_cond_signal (&r->rcv);
  pthread_mutex_unlock (&r->rlock);
  pthread_join (r->thread, NULL);
  r->thread_started = false;
}

static void
remote_free (struct remote *r)
{
  if (!r)
    return;
  stop_thread (r);
  for (unsigned i = 0; i < r->nconns; i++)
    conn_destroy (&r->conn[i]);
  pthread_cond_destroy (&r->rcv);
  pthread_mutex_destroy (&r->rlock);
  free (r->zeros);
  free (r->tls_psk);
  free (r->tls_username);
  free (r->tls_certificates);
  free (r);
}

static void
nbd_close_backing (struct gs_backing *b)
{
  remote_free (b->priv);
}

static const struct gs_backing_ops nbd_ops = {
  .run = nbd_run,
  .wipe = nbd_wipe,
  .same = nbd_same,
  .info = nbd_info,
  .close = nbd_close_backing,
};

/* ---- connecting ---- */

/* A new handle connected to @uri within remote-timeout, or NULL with a
 * message. */
static struct nbd_handle *
connect_handle (struct remote *r, const char *uri, char *err, size_t errlen)
{
  struct nbd_handle *h = nbd_create ();
  uint64_t deadline = now_us () + r->timeout_us;

  if (!h) {
    snprintf (err, errlen, "%s", nbd_get_error ());
    return NULL;
  }
  if ((r->tls_psk && nbd_set_tls_psk_file (h, r->tls_psk) < 0)
      || (r->tls_username && nbd_set_tls_username (h, r->tls_username) < 0)
      || (r->tls_certificates
          && nbd_set_tls_certificates (h, r->tls_certificates) < 0)
      || nbd_aio_connect_uri (h, uri) < 0)
    goto fail;
  while (nbd_aio_is_connecting (h)) {
    unsigned dir = (unsigned) nbd_aio_get_direction (h);
    struct pollfd p = { .fd = nbd_aio_get_fd (h), .events = 0 };
    uint64_t t = now_us ();
    int n;

    if (t >= deadline) {
      snprintf (err, errlen, "no answer within remote-timeout (%llu s)",
                (unsigned long long) (r->timeout_us / 1000000u));
      nbd_close (h);
      return NULL;
    }
    if (dir & LIBNBD_AIO_DIRECTION_READ)
      p.events |= POLLIN;
    if (dir & LIBNBD_AIO_DIRECTION_WRITE)
      p.events |= POLLOUT;
    n = poll (&p, 1, (deadline - t) / 1000 < NBD_SLICE_MS
              ? (int) ((deadline - t) / 1000) + 1 : NBD_SLICE_MS);
    if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))
        && nbd_aio_notify_read (h) < 0)
      goto fail;
    if (n > 0 && (p.revents & POLLOUT) && nbd_aio_is_connecting (h)
        && nbd_aio_notify_write (h) < 0)
      goto fail;
  }
  if (!nbd_aio_is_ready (h)) {
    snprintf (err, errlen, "%s", nbd_get_error () ? nbd_get_error ()
              : "the connection failed");
    nbd_close (h);
    return NULL;
  }
  return h;
 fail:
  snprintf (err, errlen, "%s", nbd_get_error ());
  nbd_close (h);
  return NULL;
}

/* Make a handle for every connection that has none. */
static bool
reconnect_all (struct remote *r)
{
  char err[256];
  bool ok = true;

  for (unsigned i = 0; i < r->nconns; i++) {
    struct conn *c = &r->conn[i];
    struct nbd_handle *h;
    bool need;

    pthread_mutex_lock (&c->lock);
    need = c->h == NULL;
    pthread_mutex_unlock (&c->lock);
    if (!need)
      continue;
    h = connect_handle (r, r->b->path, err, sizeof err);
    if (h && (uint64_t) nbd_get_size (h) < r->size) {
      nbd_close (h);            /* not the export we had */
      h = NULL;
    }
    if (!h) {
      ok = false;
      continue;
    }
    pthread_mutex_lock (&c->lock);
    c->h = h;
    c->gen++;
    __atomic_add_fetch (&r->reconnects, 1, __ATOMIC_RELAXED);
    if (__atomic_add_fetch (&r->up, 1, __ATOMIC_RELAXED) == 1) {
      __atomic_store_n (&r->down_since, 0, __ATOMIC_RELAXED);
      __atomic_store_n (&r->b->offline, false, __ATOMIC_RELAXED);
    }
    __pump (c);
    pthread_cond_broadcast (&c->cv);
    pthread_mutex_unlock (&c->lock);
  }
  return ok;
}

/* An idle connection whose server went away (its socket reads EOF) is
 * found here, not only at the next request, so that the state shown is
 * true.  Context: no lock held; takes each connection's lock. */
static void
probe_idle (struct remote *r)
{
  for (unsigned i = 0; i < r->nconns; i++) {
    struct conn *c = &r->conn[i];
    struct pollfd p = { .fd = -1, .events = POLLIN };

    if (pthread_mutex_trylock (&c->lock) != 0)
      continue;                 /* busy: its users will see */
    if (c->h && !c->polling && !c->ops && c->inflight == 0) {
      /* Nothing was asked, so the server has nothing to say: a readable
       * socket is its end (EOF), or garbage.  (libnbd is not asked to
       * read it: it is closed.) */
      p.fd = nbd_aio_get_fd (c->h);
      if (p.fd < 0 || (poll (&p, 1, 0) > 0
                       && (p.revents & (POLLIN | POLLHUP | POLLERR))))
        c->doom = true;
      if (!__alive (c))
        __kill (c);
    }
    pthread_mutex_unlock (&c->lock);
  }
}

/* The reconnect thread: new handles for lost ones, with back-off; idle
 * connections probed every second. */
static void *
reconnect (void *opaque)
{
  struct remote *r = opaque;
  unsigned backoff = BACKOFF_MIN_MS;

  pthread_mutex_lock (&r->rlock);
  while (!r->stop) {
    bool ok;

    if (!r->kick) {
      struct timespec ts = abs_time (now_us () + 1000000u);

      if (pthread_cond_timedwait (&r->rcv, &r->rlock, &ts) == ETIMEDOUT
          && !r->kick && !r->stop) {
        pthread_mutex_unlock (&r->rlock);
        probe_idle (r);
        pthread_mutex_lock (&r->rlock);
      }
      continue;
    }
    r->kick = false;
    pthread_mutex_unlock (&r->rlock);
    probe_idle (r);             /* the others may be gone too */
    ok = reconnect_all (r);
    pthread_mutex_lock (&r->rlock);
    if (ok) {
      backoff = BACKOFF_MIN_MS;
      continue;
    }
    r->kick = true;
    struct timespec ts = abs_time (now_us () + backoff * 1000ull);
    while (!r->stop
           && pthread_cond_timedwait (&r->rcv, &r->rlock, &ts) != ETIMEDOUT)
      ;
    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
  }
  pthread_mutex_unlock (&r->rlock);
  return NULL;
}

static int
dup_opt (char **dst, const char *src)
{
  if (!src)
    return 0;
  *dst = strdup (src);
  return *dst ? 0 : -ENOMEM;
}

/* gs_backing_nbd_attach - see backing_nbd.h. */
int
gs_backing_nbd_attach (const char *uri, unsigned id,
                       const struct gs_backing_params *pm,
                       struct gs_backing **bp, char *err, size_t errlen)
{
  struct remote *r = calloc (1, sizeof *r);
  char msg[256];
  struct nbd_handle *h;
  int64_t size, bmin, bmax;
  unsigned want, i;
  int e;

  if (!r)
    return gs_errmsg (err, errlen, -ENOMEM, "backing: %s: out of memory", uri);
  pthread_mutex_init (&r->rlock, NULL);
  cond_init (&r->rcv);
  r->timeout_us = (uint64_t) (pm->remote_timeout ? pm->remote_timeout
                              : GS_REMOTE_TIMEOUT_DEFAULT) * 1000000u;
  r->insecure = strncmp (uri, "nbd://", 6) == 0;
  if (dup_opt (&r->tls_psk, pm->tls_psk) < 0
      || dup_opt (&r->tls_username, pm->tls_username) < 0
      || dup_opt (&r->tls_certificates, pm->tls_certificates) < 0
      || strlen (uri) >= PATH_MAX) {
    e = strlen (uri) >= PATH_MAX ? -ENAMETOOLONG : -ENOMEM;
    remote_free (r);
    return gs_errmsg (err, errlen, e, "backing: %s: %s", uri,
                      e == -ENOMEM ? "out of memory" : "URI too long");
  }
  h = connect_handle (r, uri, msg, sizeof msg);
  if (!h) {
    remote_free (r);
    return gs_errmsg (err, errlen, -EIO, "backing: %s: cannot connect: %s",
                      uri, msg);
  }
  size = nbd_get_size (h);
  bmin = nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM);
  bmax = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);
  e = 0;
  if (nbd_is_read_only (h) == 1)
    e = gs_errmsg (err, errlen, -EROFS, "backing: %s: the export is "
                   "read-only", uri);
  else if (size < (int64_t) GS_SLOT_SIZE)
    e = gs_errmsg (err, errlen, -EINVAL, "backing: %s: the export is smaller "
                   "than one page (%lld bytes)", uri, (long long) size);
  else if (bmin > 0 && GS_SLOT_SIZE % (uint64_t) bmin != 0)
    e = gs_errmsg (err, errlen, -EINVAL, "backing: %s: the export's minimum "
                   "block size %lld does not divide the page size 4096", uri,
                   (long long) bmin);
  else if (bmax > 0 && bmax < (int64_t) GS_SLOT_SIZE)
    e = gs_errmsg (err, errlen, -EINVAL, "backing: %s: the export's maximum "
                   "request size %lld is below the page size 4096", uri,
                   (long long) bmax);
  if (e < 0) {
    nbd_close (h);
    remote_free (r);
    return e;
  }
  r->size = (uint64_t) size;
  r->req_max = NBD_REQ_MAX;
  if (bmax > 0 && (uint64_t) bmax < r->req_max)
    r->req_max = (uint32_t) ((uint64_t) bmax / GS_SLOT_SIZE * GS_SLOT_SIZE);
  r->can_zero = nbd_can_zero (h) == 1;
  r->can_trim = nbd_can_trim (h) == 1;
  want = nbd_can_multi_conn (h) == 1 ? NBD_CONNS : 1;
  if (!r->can_zero && posix_memalign (&r->zeros, GS_SLOT_SIZE, r->req_max) == 0)
    memset (r->zeros, 0, r->req_max);
  for (i = 0; i < want; i++) {
    struct nbd_handle *hi = i == 0 ? h
      : connect_handle (r, uri, msg, sizeof msg);

    if (!hi)
      break;                    /* fewer connections then */
    e = conn_init (r, &r->conn[i]);
    if (e < 0) {
      nbd_close (hi);
      break;
    }
    r->conn[i].h = hi;
    r->conn[i].gen = 1;
    r->nconns++;
    r->up++;
  }
  if (r->nconns == 0) {
    remote_free (r);
    return gs_errmsg (err, errlen, e, "backing: %s: %s", uri,
                      strerrordesc_np (-e));
  }
  r->b = gs_backing_new (uri, r->size / GS_SLOT_SIZE, id, &nbd_ops, r);
  if (!r->b) {
    remote_free (r);
    return gs_errmsg (err, errlen, -ENOMEM, "backing: %s: out of memory", uri);
  }
  r->b->punch = pm->punch;
  e = pthread_create (&r->thread, NULL, reconnect, r);
  if (e != 0) {
    gs_backing_close (r->b);
    return gs_errmsg (err, errlen, -e, "backing: %s: cannot start a thread: "
                      "%s", uri, strerrordesc_np (e));
  }
  r->thread_started = true;
  *bp = r->b;
  return 0;
}
