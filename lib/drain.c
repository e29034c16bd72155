/* ghostswap: drain, migrate and relocate backing pages through the
 * reverse map.
 *
 * A drain reads its backing in physical order, in large batches of
 * contiguous runs (several reads in flight), and re-homes each live page:
 * into RAM while the pool is under its high watermark (a copy of the
 * stored frame, no recompression), else into another backing (or only
 * into the migration target).  A page's entry is switched only if it
 * still points at the slot that was read (gs_slot_lock_expect); a page
 * written, trimmed or moved meanwhile is skipped.  Every page read is
 * checked against its crc32c first; a bad one stays where it is and is
 * reported.
 *
 * Before it scans, a drain stops allocations on its source and waits for
 * every reservation there to be committed or released
 * (gs_backing_set_draining): from then on every page on the source is
 * LIVE, no new one appears and no physical slot is reused, so one pass
 * empties it and what it read is what the entries point at.  relocate
 * gets the same guarantee for its one slot by pinning it.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backing_list.h"
#include "cleanup.h"
#include "errmsg.h"
#include "slot.h"

#define DRAIN_BATCH 1024        /* pages read per batch: 4 MiB */
#define DRAIN_OP_PAGES 128      /* at most 512 KiB per read */

struct drain {
  struct gs_device *dev;
  struct gs_backing *src, *target;    /* target NULL: anywhere */
  bool migrate;
  uint64_t pslot[DRAIN_BATCH], owner[DRAIN_BATCH];
  uint32_t crc[DRAIN_BATCH];          /* each page's checksum */
  bool zstd[DRAIN_BATCH];             /* each page's stored form */
  struct gs_io io[DRAIN_BATCH];
  unsigned page_io[DRAIN_BATCH];      /* the read that carried each page */
  int page_res[DRAIN_BATCH];          /* each page's read result */
  unsigned char *buf;                 /* DRAIN_BATCH pages, aligned */
  unsigned char *out;                 /* pages going to another backing */
  unsigned nout;
  unsigned out_k[DRAIN_BATCH];        /* index in the batch of each */
  uint64_t out_owner[DRAIN_BATCH];
  uint32_t out_crc[DRAIN_BATCH];
  bool out_zstd[DRAIN_BATCH];
  uint64_t done, skipped;
  int err;
  bool stop;                          /* a write failed: no point going on */
  char msg[2 * PATH_MAX + 256];
};

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* The entry that points at page @k of the batch. */
static gs_entry
expected (const struct drain *d, unsigned k)
{
  return backing_to_entry (d->src->id, d->pslot[k], d->zstd[k]);
}

/* Does page @k's owner still point at the slot that was read?  A page that
 * failed its checksum is corrupt only if so: its slot may have been freed
 * (and punched) after the scan.  With the entry checked under the lock, a
 * free and punch cannot have come between the read and the check: they
 * happen together under the same lock. */
static bool
still_current (struct drain *d, unsigned k)
{
  struct gs_slot s;

  if (gs_slot_lock_expect (d->dev, d->owner[k], expected (d, k), &s) < 0)
    return false;
  gs_slot_unlock (&s);
  return true;
}

/* Re-home page @k of the batch into RAM if allowed and possible.
 * Return: 1 moved, 0 not moved (try a backing), -1 skipped (changed). */
static int
to_ram (struct drain *d, unsigned k)
{
  struct gs_device *dev = d->dev;
  struct gs_slot s;
  gs_entry ne;
  int ret = 0;

  if (gs_slot_lock_expect (dev, d->owner[k], expected (d, k), &s) < 0)
    return -1;
  if (!d->target && !gs_pool_above_high (dev)
      && gs_page_to_ram_object (dev, d->owner[k],
                                d->buf + (size_t) k * GS_SLOT_SIZE,
                                d->zstd[k], &ne) == 0) {
    __gs_slot_commit (dev, &s, ne);
    ret = 1;
  }
  gs_slot_unlock (&s);
  return ret;
}

/* Write the pages queued for another backing and switch their entries. */
static void
flush_out (struct drain *d)
{
  struct gs_device *dev = d->dev;
  unsigned k = 0;

  while (k < d->nout) {
    uint64_t first, got, j;
    struct gs_backing *b = gs_backing_reserve (dev, d->src, d->target,
                                               &d->out_owner[k],
                                               &d->out_crc[k], &d->out_zstd[k],
                                               d->nout - k, &first, &got);
    struct gs_io io;

    if (!b && gs_backings_scrub (dev) > 0)
      continue;                 /* freed slots wiped: room again */
    if (!b) {
      d->err = -ENOSPC;
      d->stop = true;
      snprintf (d->msg, sizeof d->msg,
                "no room to drain %s into: RAM is at its high watermark "
                "and %s", d->src->path,
                d->target ? "the target is full or unhealthy"
                : "no other healthy backing has room");
      break;
    }
    gs_backing_prep (b, &io, true, d->out + (size_t) k * GS_SLOT_SIZE, first,
                     (uint32_t) got);
    gs_backing_io (b, &io, 1);
    for (j = 0; j < got; j++) {
      unsigned bk = d->out_k[k + j];
      struct gs_slot s;
      bool moved = false;

      if (io.res == 0
          && gs_slot_lock_expect (dev, d->owner[bk], expected (d, bk),
                                  &s) == 0) {
        __gs_slot_commit (dev, &s, backing_to_entry (b->id, first + j,
                                                     d->zstd[bk]));
        gs_slot_unlock (&s);
        moved = true;
      }
      if (moved)
        d->done++;
      else {
        gs_backing_release (b, first + j);
        if (io.res == 0)
          d->skipped++;
      }
    }
    if (io.res != 0) {
      d->err = io.res;
      d->stop = true;
      snprintf (d->msg, sizeof d->msg, "writing to %s failed: %s", b->path,
                strerrordesc_np (-io.res));
      break;
    }
    k += (unsigned) got;
  }
  d->nout = 0;
}

/* Read one batch of live pages from @from on and re-home them.
 * Return: the physical slot after the batch, or UINT64_MAX at the end. */
static uint64_t
drain_batch (struct drain *d, uint64_t from)
{
  size_t n = gs_backing_next_live (d->src, from, d->pslot, d->owner,
                                   d->crc, d->zstd, DRAIN_BATCH);
  size_t k, nio = 0;

  if (n == 0)
    return UINT64_MAX;
  /* One read per contiguous run (split into at most DRAIN_OP_PAGES). */
  for (k = 0; k < n; ) {
    size_t run = 1;
    while (k + run < n && run < DRAIN_OP_PAGES
           && d->pslot[k + run] == d->pslot[k] + run)
      run++;
    gs_backing_prep (d->src, &d->io[nio], false,
                     d->buf + k * GS_SLOT_SIZE, d->pslot[k], (uint32_t) run);
    for (size_t j = k; j < k + run; j++)
      d->page_io[j] = (unsigned) nio;
    nio++;
    k += run;
  }
  gs_backing_io (d->src, d->io, nio);
  /* A failed read of several pages: read them one by one, so that one bad
   * slot does not keep its neighbours on the source. */
  for (k = 0; k < n; k++) {
    const struct gs_io *io = &d->io[d->page_io[k]];
    d->page_res[k] = io->res;
    if (io->res != 0 && io->len > GS_SLOT_SIZE)
      d->page_res[k] = gs_backing_read_page (d->src, d->pslot[k],
                                             d->buf + k * GS_SLOT_SIZE,
                                             d->crc[k]);
    else if (io->res == 0)
      gs_backing_check_pages (d->buf + k * GS_SLOT_SIZE, &d->crc[k], 1,
                              &d->page_res[k]);
  }

  for (k = 0; k < n; k++) {
    int res = d->page_res[k];
    int r;

    if (res == -GS_EINTEGRITY && !still_current (d, (unsigned) k)) {
      /* Rewritten or trimmed since the scan (a trim punches the freed
       * slot): nothing wrong, just nothing to move. */
      d->skipped++;
      continue;
    }
    if (res == -GS_EINTEGRITY) {
      /* A corrupt page is never moved: it stays, reported, until a
       * client rewrites or trims its slot. */
      d->err = -EIO;
      gs_slot_report_integrity (d->dev, d->src, d->owner[k], d->pslot[k]);
      snprintf (d->msg, sizeof d->msg,
                "%s: physical slot %llu (ghost slot %llu) failed its "
                "checksum: left in place", d->src->path,
                (unsigned long long) d->pslot[k],
                (unsigned long long) d->owner[k]);
      continue;
    }
    if (res != 0) {
      /* The page stays where it is; the drain reports the error. */
      d->err = -EIO;
      snprintf (d->msg, sizeof d->msg,
                "reading %s failed at physical slot %llu: %s", d->src->path,
                (unsigned long long) d->pslot[k], strerrordesc_np (-res));
      continue;
    }
    r = to_ram (d, (unsigned) k);
    if (r > 0)
      d->done++;
    else if (r < 0)
      d->skipped++;
    else {
      memcpy (d->out + (size_t) d->nout * GS_SLOT_SIZE,
              d->buf + k * GS_SLOT_SIZE, GS_SLOT_SIZE);
      d->out_k[d->nout] = (unsigned) k;
      d->out_owner[d->nout] = d->owner[k];
      d->out_crc[d->nout] = d->crc[k];
      d->out_zstd[d->nout] = d->zstd[k];
      d->nout++;
    }
  }
  if (d->nout > 0)
    flush_out (d);
  /* Wipe what this batch freed on the source, in its physical order. */
  gs_backing_scrub (d->src, false);
  return d->pslot[n - 1] + 1;
}

/* Publish progress; with @final, also the result, and mark the drain
 * finished (the thread takes drain_lock no more after that). */
static void
publish (struct drain *d, double start, bool final)
{
  struct gs_device *dev = d->dev;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->drain_lock);
  struct gs_drain_status *st = &dev->drain_status;

  st->done = d->done;
  st->skipped = d->skipped;
  st->seconds = now () - start;
  st->bytes_per_sec = st->seconds > 0
    ? (double) d->done * GS_SLOT_SIZE / st->seconds : 0;
  if (final) {
    st->result = d->err;
    snprintf (st->message, sizeof st->message, "%s", d->msg);
    st->running = false;
    pthread_cond_broadcast (&dev->drain_cond);
  }
}

static bool
cancelled (struct gs_device *dev)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->drain_lock);

  return dev->drain_cancel;
}

static void *
drain_thread (void *arg)
{
  CLEANUP_FREE struct drain *d = arg;
  struct gs_device *dev = d->dev;
  double start = now ();
  uint64_t pos = 0;
  bool cancel = false, detached = false;

  pthread_setname_np (pthread_self (), "gs-drain");
  gs_backing_set_draining (d->src, true);
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->drain_lock);
    dev->drain_status.total = __atomic_load_n (&d->src->used,
                                               __ATOMIC_RELAXED);
  }
  while (pos != UINT64_MAX && !cancel && !d->stop) {
    pos = drain_batch (d, pos);
    publish (d, start, false);
    cancel = cancelled (dev);
  }
  if (cancel && d->err == 0) {
    d->err = -ECANCELED;
    snprintf (d->msg, sizeof d->msg, "drain of %s cancelled", d->src->path);
  }
  /* Nothing can appear on a draining source, so a page left there is
   * one whose error was reported above. */
  assert (d->err != 0 || d->stop || cancel
          || __atomic_load_n (&d->src->used, __ATOMIC_ACQUIRE) == 0);
  gs_backing_put (dev, d->target);
  /* Detach a migrated source while it still takes no new pages, with this
   * thread's reference. */
  if (d->migrate && d->err == 0) {
    d->err = gs_backing_detach (dev, d->src, 1, d->msg, sizeof d->msg);
    detached = d->err == 0;
  }
  if (!detached) {
    gs_backing_set_draining (d->src, false);
    gs_backing_put (dev, d->src);
  }
  free (d->buf);
  free (d->out);
  publish (d, start, true);
  return NULL;
}

/* gs_drain_start - see backing.h. */
int
gs_drain_start (struct gs_device *dev, const char *source, const char *target,
                bool migrate, char *err, size_t errlen)
{
  struct drain *d = NULL;
  struct gs_backing *src, *tgt = NULL;
  void *buf = NULL, *out = NULL;
  int r;

  src = gs_backing_get (dev, source);
  if (!src) {
    r = gs_errmsg (err, errlen, -ENOENT, "drain: %s is not attached", source);
    goto fail;
  }
  if (target) {
    tgt = gs_backing_get (dev, target);
    if (!tgt) {
      r = gs_errmsg (err, errlen, -ENOENT, "drain: target %s is not attached",
                     target);
      goto fail;
    }
    if (tgt == src) {
      r = gs_errmsg (err, errlen, -EINVAL,
                     "drain: %s cannot be drained into itself", source);
      goto fail;
    }
  }
  d = calloc (1, sizeof *d);
  if (!d || posix_memalign (&buf, GS_SLOT_SIZE,
                            (size_t) DRAIN_BATCH * GS_SLOT_SIZE) != 0
      || posix_memalign (&out, GS_SLOT_SIZE,
                         (size_t) DRAIN_BATCH * GS_SLOT_SIZE) != 0) {
    r = gs_errmsg (err, errlen, -ENOMEM, "drain: out of memory");
    goto fail;
  }
  d->dev = dev;
  d->src = src;
  d->target = tgt;
  d->migrate = migrate;
  d->buf = buf;
  d->out = out;

  pthread_mutex_lock (&dev->drain_lock);
  if (dev->drain_status.running) {
    r = gs_errmsg (err, errlen, -EBUSY,
                   "drain: a drain of %s is already running",
                   dev->drain_status.source);
    pthread_mutex_unlock (&dev->drain_lock);
    goto fail;
  }
  if (dev->drain_thread_live) {
    /* The last drain published its end and takes the lock no more. */
    pthread_join (dev->drain_thread, NULL);
    dev->drain_thread_live = false;
  }
  memset (&dev->drain_status, 0, sizeof dev->drain_status);
  dev->drain_status.running = true;
  dev->drain_status.migrate = migrate;
  snprintf (dev->drain_status.source, PATH_MAX, "%s", source);
  snprintf (dev->drain_status.target, PATH_MAX, "%s", target ? target : "");
  dev->drain_status.total = __atomic_load_n (&src->used, __ATOMIC_RELAXED);
  dev->drain_cancel = false;
  r = pthread_create (&dev->drain_thread, NULL, drain_thread, d);
  if (r != 0) {
    dev->drain_status.running = false;
    pthread_mutex_unlock (&dev->drain_lock);
    r = gs_errmsg (err, errlen, -r, "drain: cannot start a thread: %s",
                   strerrordesc_np (r));
    goto fail;
  }
  dev->drain_thread_live = true;
  pthread_mutex_unlock (&dev->drain_lock);
  return 0;

 fail:
  gs_backing_put (dev, tgt);
  gs_backing_put (dev, src);
  free (buf);
  free (out);
  free (d);
  return r;
}

/* gs_drain_wait - see backing.h. */
int
gs_drain_wait (struct gs_device *dev)
{
  pthread_t thread;
  bool join = false;
  int result;

  pthread_mutex_lock (&dev->drain_lock);
  while (dev->drain_status.running)
    pthread_cond_wait (&dev->drain_cond, &dev->drain_lock);
  if (dev->drain_thread_live) {
    thread = dev->drain_thread;
    dev->drain_thread_live = false;
    join = true;
  }
  result = dev->drain_status.result;
  pthread_mutex_unlock (&dev->drain_lock);
  if (join)
    pthread_join (thread, NULL);
  return result;
}

/* gs_drain_cancel - see backing.h. */
int
gs_drain_cancel (struct gs_device *dev)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->drain_lock);

  if (!dev->drain_status.running)
    return -ENOENT;
  dev->drain_cancel = true;
  return 0;
}

/* gs_drain_get_status - see backing.h. */
void
gs_drain_get_status (struct gs_device *dev, struct gs_drain_status *st)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->drain_lock);

  *st = dev->drain_status;
}

/* gs_relocate_slot - see backing.h. */
int
gs_relocate_slot (struct gs_device *dev, const char *source, uint64_t pslot)
{
  CLEANUP_FREE struct drain *d = NULL;
  struct gs_backing *src = gs_backing_get (dev, source);
  void *buf = NULL, *out = NULL;
  int r = 0, moved;

  if (!src)
    return -ENOENT;
  d = calloc (1, sizeof *d);
  if (!d || posix_memalign (&buf, GS_SLOT_SIZE, GS_SLOT_SIZE) != 0
      || posix_memalign (&out, GS_SLOT_SIZE, GS_SLOT_SIZE) != 0) {
    free (buf);
    gs_backing_put (dev, src);
    return -ENOMEM;
  }
  d->dev = dev;
  d->src = src;
  d->buf = buf;
  d->out = out;
  d->pslot[0] = pslot;
  /* Pinned, the slot is not reallocated while its copy is moved. */
  if (!gs_backing_pin (src, pslot, &d->owner[0], &d->crc[0], &d->zstd[0])) {
    r = -ENOENT;
    goto out;
  }
  r = gs_backing_read_page (src, pslot, buf, d->crc[0]);
  if (r == -GS_EINTEGRITY) {
    if (still_current (d, 0)) {
      gs_slot_report_integrity (dev, src, d->owner[0], pslot);
      r = -EIO;
    }
    else
      r = -ENOENT;              /* freed (and punched) meanwhile */
  }
  else if (r < 0)
    r = -EIO;
  else if ((moved = to_ram (d, 0)) < 0)
    r = -ENOENT;
  else if (moved == 0) {
    memcpy (out, buf, GS_SLOT_SIZE);
    d->out_k[0] = 0;
    d->out_owner[0] = d->owner[0];
    d->out_crc[0] = d->crc[0];
    d->out_zstd[0] = d->zstd[0];
    d->nout = 1;
    flush_out (d);
    r = d->err;
    if (r == 0 && d->done == 0)
      r = -ENOENT;
  }
  gs_backing_unpin (src, pslot);
 out:
  free (buf);
  free (out);
  gs_backing_put (dev, src);
  return r;
}
