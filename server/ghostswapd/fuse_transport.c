/* ghostswapd: the FUSE transports (see fuse_transport.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "daemon_log.h"
#include "fuse_transport.h"
#include "fuse_uring_uapi.h"

#define ENABLE_URING_PARAM "/sys/module/fuse/parameters/enable_uring"

/* The kernel's default max_pages when the server does not set it. */
#define KERNEL_DEFAULT_MAX_PAGES 32

struct fuse_transport {
  struct fuse_session *se;
  int fd;
  enum fuse_transport_kind asked;
  struct fuse_ring *ring;       /* NULL: /dev/fuse only */

  /* lock protects init_unique, init_pending, claimed and reason. */
  pthread_mutex_t lock;
  uint64_t init_unique;         /* the INIT request, once read */
  bool init_pending;            /* atomic: INIT read, not yet answered */
  bool claimed;                 /* the INIT reply carried the flag */
  char reason[640];             /* why not io_uring, if not */

  uint64_t dev[FUSE_OPCOUNT_N]; /* atomic: requests read from /dev/fuse */
  uint64_t ring_done[FUSE_OPCOUNT_N]; /* served over the ring, kept when
                                       * it stops */
  bool ring_used;               /* claimed, and the ring has stopped */
};

/* ring_count - requests of kind @i served over the ring.  Caller holds
 * tr->lock. */
static uint64_t
ring_count (struct fuse_transport *tr, unsigned i)
{
  return tr->ring ? fuse_ring_served (tr->ring, i) : tr->ring_done[i];
}

/* The session's hooks get the session's userdata (the ghostfs), not
 * this: there is one session per process. */
static struct fuse_transport *the;

/* fuse_transport_parse - see fuse_transport.h. */
int
fuse_transport_parse (const char *s, enum fuse_transport_kind *kind)
{
  if (strcmp (s, "auto") == 0)
    *kind = FUSE_TRANSPORT_AUTO;
  else if (strcmp (s, "uring") == 0)
    *kind = FUSE_TRANSPORT_URING;
  else if (strcmp (s, "dev") == 0)
    *kind = FUSE_TRANSPORT_DEV;
  else
    return -EINVAL;
  return 0;
}

/* not_uring - we serve over /dev/fuse: record and log why (a warning if
 * io_uring was asked for).  Caller holds tr->lock or is alone. */
static void
not_uring (struct fuse_transport *tr, const char *why)
{
  snprintf (tr->reason, sizeof tr->reason, "%s", why);
  if (tr->asked == FUSE_TRANSPORT_URING)
    log_warning ("transport: io_uring asked for, but %s: serving over "
                 "/dev/fuse", why);
  else
    log_info ("transport: /dev/fuse (%s)", why);
}

/* drop_ring - give up the ring before it was registered. */
static void
drop_ring (struct fuse_transport *tr)
{
  fuse_ring_destroy (tr->ring);
  tr->ring = NULL;
}

/* ---- Hooks ---- */

/* on_init - the kernel's INIT request (@in, @len bytes): does it offer
 * FUSE_OVER_IO_URING? */
static void
on_init (struct fuse_transport *tr, const char *buf, size_t len)
{
  const struct fuse_in_header *in = (const void *) buf;
  const struct fuse_init_in *arg = (const void *) (buf + sizeof *in);
  uint64_t flags = 0;

  pthread_mutex_lock (&tr->lock);
  tr->init_unique = in->unique;
  __atomic_store_n (&tr->init_pending, true, __ATOMIC_RELEASE);
  if (tr->ring != NULL) {
    if (len >= sizeof *in + sizeof *arg) {
      flags = arg->flags;
      if (flags & FUSE_INIT_EXT)
        flags |= (uint64_t) arg->flags2 << 32;
    }
    if (!(flags & FUSE_OVER_IO_URING)) {
      not_uring (tr, "the kernel did not offer FUSE_OVER_IO_URING at INIT");
      drop_ring (tr);
    }
  }
  pthread_mutex_unlock (&tr->lock);
}

static ssize_t
hook_read (int fd, void *buf, size_t len, void *userdata)
{
  struct fuse_transport *tr = the;
  ssize_t r = read (fd, buf, len);
  const struct fuse_in_header *in = buf;

  (void) userdata;
  if (r >= (ssize_t) sizeof *in) {
    __atomic_add_fetch (&tr->dev[fuse_opcount_index (in->opcode)], 1,
                        __ATOMIC_RELAXED);
    if (in->opcode == FUSE_INIT)
      on_init (tr, buf, (size_t) r);
  }
  return r;
}

/* claim - add FUSE_OVER_IO_URING to the INIT reply @iov if the ring can
 * serve what it negotiates.  Caller holds tr->lock.
 * Return: true if the flag was added. */
static bool
claim (struct fuse_transport *tr, struct iovec *iov, int count)
{
  struct fuse_init_out *out;
  uint64_t need;
  char why[256];

  if (count < 2 || iov[1].iov_len < sizeof *out) {
    not_uring (tr, "the INIT reply has no room for the extended flags");
    return false;
  }
  out = iov[1].iov_base;
  need = out->max_write;
  if (need < 8192)
    need = 8192;
  if ((uint64_t) ((out->flags & FUSE_MAX_PAGES) ? out->max_pages
                  : KERNEL_DEFAULT_MAX_PAGES) * 4096 > need)
    need = (uint64_t) ((out->flags & FUSE_MAX_PAGES) ? out->max_pages
                       : KERNEL_DEFAULT_MAX_PAGES) * 4096;
  if (need > FUSE_RING_PAYLOAD) {
    snprintf (why, sizeof why, "the connection's requests (up to %" PRIu64
              " bytes) exceed the ring's buffers (%u)", need,
              FUSE_RING_PAYLOAD);
    not_uring (tr, why);
    return false;
  }
  out->flags |= FUSE_INIT_EXT;
  out->flags2 |= (uint32_t) (FUSE_OVER_IO_URING >> 32);
  return true;
}

static ssize_t
hook_writev (int fd, struct iovec *iov, int count, void *userdata)
{
  struct fuse_transport *tr = the;
  const struct fuse_out_header *out = iov[0].iov_base;
  bool claiming = false;
  ssize_t r;

  (void) userdata;
  if (fuse_ring_capture (iov, count, &r))
    return r;
  if (!__atomic_load_n (&tr->init_pending, __ATOMIC_ACQUIRE))
    return writev (fd, iov, count);     /* the common case: no lock */
  pthread_mutex_lock (&tr->lock);
  if (tr->init_pending && out->unique == tr->init_unique) {
    __atomic_store_n (&tr->init_pending, false, __ATOMIC_RELEASE);
    if (tr->ring != NULL) {
      if (out->error == 0 && claim (tr, iov, count))
        claiming = true;
      else {
        if (out->error != 0)
          not_uring (tr, "INIT failed");
        drop_ring (tr);
      }
    }
  }
  r = writev (fd, iov, count);
  if (claiming) {
    if (r < 0) {
      int e = errno;

      not_uring (tr, "the INIT reply was refused");
      drop_ring (tr);
      errno = e;
    } else {
      tr->claimed = true;
      fuse_ring_go (tr->ring);
      log_info ("transport: io_uring, %u queue(s) of %u thread(s)",
                fuse_ring_queues (tr->ring),
                fuse_ring_threads_per_queue (tr->ring));
    }
  }
  pthread_mutex_unlock (&tr->lock);
  return r;
}

/* ---- Start and stop ---- */

/* param_state - the enable_uring parameter: 1 on, 0 off, -errno. */
static int
param_state (void)
{
  FILE *fp = fopen (ENABLE_URING_PARAM, "re");
  int c;

  if (fp == NULL)
    return -errno;
  c = fgetc (fp);
  fclose (fp);
  return c == 'Y' || c == 'y' || c == '1';
}

/* fuse_transport_start - see fuse_transport.h. */
int
fuse_transport_start (struct fuse_session *se,
                      enum fuse_transport_kind asked,
                      const struct fuse_ring_options *opts,
                      struct fuse_transport **trp)
{
  static const struct fuse_custom_io io = {
    .read = hook_read,
    .writev = hook_writev,
  };
  struct fuse_transport *tr = calloc (1, sizeof *tr);
  char err[256], why[512];
  int r;

  if (tr == NULL)
    return -ENOMEM;
  tr->se = se;
  tr->fd = fuse_session_fd (se);
  tr->asked = asked;
  pthread_mutex_init (&tr->lock, NULL);
  if (asked == FUSE_TRANSPORT_DEV)
    not_uring (tr, "transport=dev");
  else if ((r = param_state ()) < 0)
    not_uring (tr, r == -ENOENT
               ? "this kernel has no FUSE over io_uring (no " ENABLE_URING_PARAM ")"
               : "cannot read " ENABLE_URING_PARAM);
  else if (r == 0)
    not_uring (tr, "the fuse module's enable_uring parameter is off "
               "(write Y to " ENABLE_URING_PARAM ")");
  else if ((r = fuse_ring_create (se, tr->fd, opts, &tr->ring, err,
                                  sizeof err)) < 0) {
    snprintf (why, sizeof why, "the queues did not start (%s)", err);
    not_uring (tr, why);
  }
  the = tr;
  r = fuse_session_custom_io (se, &io, tr->fd);
  if (r < 0) {
    the = NULL;
    fuse_ring_destroy (tr->ring);
    pthread_mutex_destroy (&tr->lock);
    free (tr);
    return r;
  }
  *trp = tr;
  return 0;
}

/* fuse_transport_describe - see fuse_transport.h. */
const char *
fuse_transport_describe (struct fuse_transport *tr, char *why, size_t len)
{
  char failed[256] = "";
  bool uring;

  pthread_mutex_lock (&tr->lock);
  uring = tr->ring != NULL ? tr->claimed
    && !fuse_ring_failed (tr->ring, failed, sizeof failed) : tr->ring_used;
  if (len == 0)
    ;
  else if (uring)
    snprintf (why, len, "%s", tr->asked == FUSE_TRANSPORT_URING
              ? "transport=uring"
              : "the kernel offers FUSE over io_uring (enable_uring is on)");
  else if (failed[0] != '\0')
    snprintf (why, len, "a ring registration failed (%s)", failed);
  else if (tr->ring != NULL)
    snprintf (why, len, "the kernel's INIT is not answered yet");
  else
    snprintf (why, len, "%s", tr->reason);
  pthread_mutex_unlock (&tr->lock);
  return uring ? "uring" : "dev";
}

/* fuse_transport_name - see fuse_transport.h. */
const char *
fuse_transport_name (struct fuse_transport *tr)
{
  return fuse_transport_describe (tr, NULL, 0);
}

/* fuse_transport_format - see fuse_transport.h. */
int
fuse_transport_format (struct fuse_transport *tr, char *buf, size_t len)
{
  static const char *const asked[] = { "auto", "uring", "dev" };
  uint64_t ring_total = 0, dev_total = 0;
  size_t n = 0;
  int w;
  unsigned i;

#define OUT(...)                                                        \
  do {                                                                  \
    w = snprintf (buf + (n < len ? n : len), n < len ? len - n : 0,     \
                  __VA_ARGS__);                                         \
    if (w < 0)                                                          \
      return w;                                                         \
    n += (size_t) w;                                                    \
  } while (0)

  pthread_mutex_lock (&tr->lock);
  for (i = 0; i < FUSE_OPCOUNT_N; i++) {
    dev_total += __atomic_load_n (&tr->dev[i], __ATOMIC_RELAXED);
    ring_total += ring_count (tr, i);
  }
  pthread_mutex_unlock (&tr->lock);
  OUT ("fuse_transport %s\n", fuse_transport_name (tr));
  OUT ("fuse_transport_asked %s\n", asked[tr->asked]);
  pthread_mutex_lock (&tr->lock);
  OUT ("fuse_uring_queues %u\n", tr->ring ? fuse_ring_queues (tr->ring) : 0);
  OUT ("fuse_dev_requests %" PRIu64 "\n", dev_total);
  OUT ("fuse_uring_requests %" PRIu64 "\n", ring_total);
  for (i = 0; i < FUSE_OPCOUNT_N; i++)
    OUT ("fuse_dev_%s %" PRIu64 "\n", fuse_opcount_name (i),
         __atomic_load_n (&tr->dev[i], __ATOMIC_RELAXED));
  for (i = 0; i < FUSE_OPCOUNT_N; i++)
    OUT ("fuse_uring_%s %" PRIu64 "\n", fuse_opcount_name (i),
         ring_count (tr, i));
  pthread_mutex_unlock (&tr->lock);
#undef OUT
  return (int) n;
}

/* fuse_transport_stop - see fuse_transport.h. */
void
fuse_transport_stop (struct fuse_transport *tr)
{
  if (tr == NULL)
    return;
  struct fuse_ring *ring;
  char why[256];
  unsigned i;

  pthread_mutex_lock (&tr->lock);
  ring = tr->ring;
  pthread_mutex_unlock (&tr->lock);
  if (ring == NULL)
    return;
  /* The threads may dispatch (and so take the lock in hook_writev)
   * until they are joined: not under the lock. */
  fuse_ring_stop (ring);
  pthread_mutex_lock (&tr->lock);
  for (i = 0; i < FUSE_OPCOUNT_N; i++)
    tr->ring_done[i] = fuse_ring_served (ring, i);
  tr->ring_used = tr->claimed && !fuse_ring_failed (ring, why, sizeof why);
  tr->ring = NULL;
  pthread_mutex_unlock (&tr->lock);
  fuse_ring_destroy (ring);
}

/* fuse_transport_free - see fuse_transport.h. */
void
fuse_transport_free (struct fuse_transport *tr)
{
  if (tr == NULL)
    return;
  if (the == tr)
    the = NULL;
  pthread_mutex_destroy (&tr->lock);
  free (tr);
}
