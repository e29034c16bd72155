/* ghostswap: one backing device (see backing_impl.h). */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>

#include "backing_impl.h"
#include "crypt.h"
#include "cleanup.h"
#include "ghostswap/config.h"

/* gs_backing_new - see backing_impl.h. */
struct gs_backing *
gs_backing_new (const char *path, uint64_t nslots, unsigned id,
                const struct gs_backing_ops *ops, void *priv)
{
  struct gs_backing *b = calloc (1, sizeof *b);

  if (!b || strlen (path) >= sizeof b->path)
    goto fail;
  b->rmap = calloc (nslots, GS_RMAP_BYTES);
  b->crc = calloc (nslots, GS_CRC_BYTES);
  if (!b->rmap || !b->crc)
    goto fail;
  b->ops = ops;
  b->priv = priv;
  b->id = id;
  strcpy (b->path, path);
  b->fd = -1;
  b->nslots = nslots;
  b->healthy = true;
  pthread_mutex_init (&b->lock, NULL);
  pthread_mutex_init (&b->scrub_lock, NULL);
  pthread_cond_init (&b->settled, NULL);
  b->scrub = true;
  return b;
 fail:
  if (b) {
    free (b->rmap);
    free (b->crc);
  }
  free (b);
  return NULL;
}

/* gs_backing_same - see backing_impl.h. */
bool
gs_backing_same (const struct gs_backing *a, const struct gs_backing *b)
{
  return a->ops == b->ops && a->ops->same (a, b);
}

/* gs_backing_close - see backing_impl.h. */
void
gs_backing_close (struct gs_backing *b)
{
  if (!b)
    return;
  b->ops->close (b);
  free (b->rmap);
  free (b->crc);
  free (b->dirty_q);
  gs_crypt_destroy (b->crypt);
  pthread_cond_destroy (&b->settled);
  pthread_mutex_destroy (&b->scrub_lock);
  pthread_mutex_destroy (&b->lock);
  free (b);
}

static uint64_t
rmap_get (const struct gs_backing *b, uint64_t pslot)
{
  const unsigned char *p = b->rmap + pslot * GS_RMAP_BYTES;
  uint64_t v = 0;
  unsigned i;

  for (i = 0; i < GS_RMAP_BYTES; i++)
    v |= (uint64_t) p[i] << (8 * i);
  return v;
}

static void
rmap_set (struct gs_backing *b, uint64_t pslot, uint64_t v)
{
  unsigned char *p = b->rmap + pslot * GS_RMAP_BYTES;
  unsigned i;

  for (i = 0; i < GS_RMAP_BYTES; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

static uint64_t
rmap_state (uint64_t v)
{
  return v & GS_RMAP_STATE_MASK;
}

/* gs_backing_alloc - see backing_impl.h. */
uint64_t
gs_backing_alloc (struct gs_backing *b, const uint64_t *owners,
                  const uint32_t *crcs, const bool *zstd, uint64_t n,
                  uint64_t *first)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t p, scanned, run;

  if (__atomic_load_n (&b->draining, __ATOMIC_RELAXED)
      || !__atomic_load_n (&b->healthy, __ATOMIC_RELAXED)
      || __atomic_load_n (&b->offline, __ATOMIC_RELAXED)
      || __atomic_load_n (&b->used, __ATOMIC_RELAXED) + b->dirty >= b->nslots)
    return 0;               /* full, or only slots waiting for a scrub */
  /* Next fit: the first free slot from the cursor on, wrapping once.  A
   * pinned slot is not free, even if nothing points at it any more. */
  p = b->cursor < b->nslots ? b->cursor : 0;
  for (scanned = 0; scanned < b->nslots; scanned++) {
    if (rmap_get (b, p) == GS_RMAP_FREE)
      break;
    if (++p == b->nslots)
      p = 0;
  }
  if (scanned == b->nslots)
    return 0;
  for (run = 0; run < n && p + run < b->nslots
         && rmap_get (b, p + run) == GS_RMAP_FREE; run++) {
    assert (owners[run] <= GS_RMAP_OWNER_MASK);
    rmap_set (b, p + run, owners[run] | GS_RMAP_RESERVED
              | (zstd[run] ? GS_RMAP_ZSTD : 0));
    b->crc[p + run] = crcs[run];
  }
  b->cursor = p + run;
  b->reserved += run;
  __atomic_add_fetch (&b->used, run, __ATOMIC_RELAXED);
  *first = p;
  return run;
}

#define DIRTY_QUEUE 8192u      /* where freed slots are, for the scrub */

/* A freed slot: DIRTY until scrubbed (keeping @pin), or FREE when
 * scrubbing is off.  Context: b->lock held. */
static void
__to_dirty (struct gs_backing *b, uint64_t pslot, uint64_t pin)
{
  b->crc[pslot] = 0;
  if (!b->scrub) {
    rmap_set (b, pslot, GS_RMAP_FREE | pin);
    return;
  }
  rmap_set (b, pslot, GS_RMAP_DIRTY | pin);
  __atomic_store_n (&b->dirty, b->dirty + 1, __ATOMIC_RELAXED);
  if (!b->dirty_q)
    b->dirty_q = malloc (DIRTY_QUEUE * sizeof *b->dirty_q);
  if (b->dirty_q && b->dirty_n < DIRTY_QUEUE)
    b->dirty_q[b->dirty_n++] = pslot;
  else
    b->dirty_lost = true;
}

/* One reservation fewer.  Context: b->lock held. */
static void
unreserve (struct gs_backing *b)
{
  assert (b->reserved > 0);
  if (--b->reserved == 0)
    pthread_cond_broadcast (&b->settled);
}

/* gs_backing_commit_slot - see backing_impl.h. */
void
gs_backing_commit_slot (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v = rmap_get (b, pslot);

  assert (rmap_state (v) == GS_RMAP_RESERVED);
  rmap_set (b, pslot, (v & ~GS_RMAP_STATE_MASK) | GS_RMAP_LIVE);
  unreserve (b);
}

/* gs_backing_release - see backing_impl.h. */
void
gs_backing_release (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);

  assert (rmap_state (rmap_get (b, pslot)) == GS_RMAP_RESERVED);
  __to_dirty (b, pslot, 0);
  unreserve (b);
  __atomic_sub_fetch (&b->used, 1, __ATOMIC_RELAXED);
}

/* gs_backing_free - see backing_impl.h. */
void
gs_backing_free (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v = rmap_get (b, pslot);

  assert (rmap_state (v) == GS_RMAP_LIVE);
  __to_dirty (b, pslot, v & GS_RMAP_PIN);
  __atomic_sub_fetch (&b->used, 1, __ATOMIC_RELAXED);
}

/* gs_backing_pin - see backing_impl.h. */
bool
gs_backing_pin (struct gs_backing *b, uint64_t pslot, uint64_t *owner,
                uint32_t *crc, bool *zstd)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v;

  if (pslot >= b->nslots)
    return false;
  v = rmap_get (b, pslot);
  if (rmap_state (v) != GS_RMAP_LIVE || (v & GS_RMAP_PIN))
    return false;
  rmap_set (b, pslot, v | GS_RMAP_PIN);
  *owner = v & GS_RMAP_OWNER_MASK;
  *crc = b->crc[pslot];
  *zstd = (v & GS_RMAP_ZSTD) != 0;
  return true;
}

/* gs_backing_unpin - see backing_impl.h. */
void
gs_backing_unpin (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v = rmap_get (b, pslot);

  assert (v & GS_RMAP_PIN);
  rmap_set (b, pslot, v & ~GS_RMAP_PIN);
}

/* gs_backing_set_draining - see backing_impl.h. */
void
gs_backing_set_draining (struct gs_backing *b, bool draining)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);

  __atomic_store_n (&b->draining, draining, __ATOMIC_RELAXED);
  while (draining && b->reserved > 0)
    pthread_cond_wait (&b->settled, &b->lock);
}

static int
cmp_u64 (const void *a, const void *c)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) c;
  return x < y ? -1 : x > y;
}

/* gs_backing_scrub - see backing_impl.h. */
uint64_t
gs_backing_scrub (struct gs_backing *b, bool all)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->scrub_lock);
  CLEANUP_FREE uint64_t *v = NULL;
  uint64_t n = 0, cap = DIRTY_QUEUE, k, done = 0;

  /* Take the batch: the queue, or (after it overflowed, or for @all)
   * every DIRTY slot of the map.  They stay DIRTY, so nothing allocates
   * them while they are wiped. */
  pthread_mutex_lock (&b->lock);
  if (b->dirty == 0) {
    pthread_mutex_unlock (&b->lock);
    return 0;
  }
  if (all || b->dirty_lost)
    cap = b->dirty;
  v = malloc (cap * sizeof *v);
  if (!v) {
    pthread_mutex_unlock (&b->lock);
    return 0;
  }
  if (all || b->dirty_lost) {
    for (uint64_t p = 0; p < b->nslots && n < cap; p++)
      if (rmap_state (rmap_get (b, p)) == GS_RMAP_DIRTY)
        v[n++] = p;
    b->dirty_lost = false;
  }
  else
    for (k = 0; k < b->dirty_n; k++)
      v[n++] = b->dirty_q[k];
  b->dirty_n = 0;
  pthread_mutex_unlock (&b->lock);

  /* Wipe contiguous runs, then make each slot of a wiped run FREE. */
  qsort (v, n, sizeof *v, cmp_u64);
  for (k = 0; k < n; ) {
    uint64_t run = 1;
    int r;

    while (k + run < n && v[k + run] == v[k] + run)
      run++;
    r = b->ops->wipe (b, v[k], run);
    pthread_mutex_lock (&b->lock);
    for (uint64_t j = k; j < k + run; j++) {
      uint64_t x = rmap_get (b, v[j]);
      if (rmap_state (x) != GS_RMAP_DIRTY)
        continue;               /* queued twice: done already */
      if (r < 0) {
        /* Stays DIRTY (never reused); a later full scan tries again. */
        b->dirty_lost = true;
        continue;
      }
      rmap_set (b, v[j], GS_RMAP_FREE | (x & GS_RMAP_PIN));
      __atomic_store_n (&b->dirty, b->dirty - 1, __ATOMIC_RELAXED);
      done++;
    }
    pthread_mutex_unlock (&b->lock);
    k += run;
  }
  __atomic_add_fetch (&b->scrubbed, done, __ATOMIC_RELAXED);
  return done;
}

/* gs_backing_wipe_all - see backing_impl.h. */
int
gs_backing_wipe_all (struct gs_backing *b)
{
  return b->ops->wipe (b, 0, b->nslots);
}

/* gs_backing_next_live - see backing_impl.h. */
size_t
gs_backing_next_live (struct gs_backing *b, uint64_t from, uint64_t *pslots,
                      uint64_t *owners, uint32_t *crcs, bool *zstd, size_t max)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  size_t n = 0;
  uint64_t p, v;

  for (p = from; p < b->nslots && n < max; p++) {
    v = rmap_get (b, p);
    if (rmap_state (v) == GS_RMAP_LIVE) {
      pslots[n] = p;
      owners[n] = v & GS_RMAP_OWNER_MASK;
      crcs[n] = b->crc[p];
      zstd[n] = (v & GS_RMAP_ZSTD) != 0;
      n++;
    }
  }
  return n;
}

/* gs_backing_slot_crc - see backing_impl.h. */
uint32_t
gs_backing_slot_crc (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);

  assert (rmap_state (rmap_get (b, pslot)) == GS_RMAP_LIVE);
  return b->crc[pslot];
}

/* gs_backing_mark_bad - see backing_impl.h. */
bool
gs_backing_mark_bad (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v = rmap_get (b, pslot);

  if (v & GS_RMAP_BAD)
    return false;
  rmap_set (b, pslot, v | GS_RMAP_BAD);
  return true;
}

/* gs_page_crc - see backing_impl.h.  ISA-L's crc32_iscsi is CRC-32C
 * without the final inversion; with it, this is the standard crc32c. */
uint32_t
gs_page_crc (const void *page)
{
  return ~crc32_iscsi ((unsigned char *) page, GS_SLOT_SIZE, 0xffffffffu);
}

/* gs_backing_check_pages - see backing_impl.h. */
void
gs_backing_check_pages (const void *buf, const uint32_t *crcs, size_t n,
                        int *res)
{
  const unsigned char *p = buf;
  size_t k;

  for (k = 0; k < n; k++)
    if (res[k] == 0 && gs_page_crc (p + k * GS_SLOT_SIZE) != crcs[k])
      res[k] = -GS_EINTEGRITY;
}

static bool
fault_hits (struct gs_backing *b, enum gs_fault_kind k, uint64_t first,
            uint64_t n)
{
  return b->fault[k].on && first <= b->fault[k].last
    && first + n - 1 >= b->fault[k].first;
}

/* Per thread: cipher contexts for the last backings it used, told apart
 * by the key's id (a closed backing's key is never reused: ids only
 * grow). */
#define CRYPT_CACHE 8

struct crypt_cache {
  uint64_t id[CRYPT_CACHE];
  struct gs_crypt_ctx *ctx[CRYPT_CACHE];
  unsigned next;
};

static pthread_key_t crypt_key;
static pthread_once_t crypt_once = PTHREAD_ONCE_INIT;
static uint64_t crypt_ids;          /* atomic: the last key id given */

static void
crypt_cache_free (void *p)
{
  struct crypt_cache *cc = p;

  for (unsigned i = 0; i < CRYPT_CACHE; i++)
    gs_crypt_ctx_free (cc->ctx[i]);
  free (cc);
}

static void
crypt_key_make (void)
{
  pthread_key_create (&crypt_key, crypt_cache_free);
}

/* This thread's context for @b's key, made on first use. */
static struct gs_crypt_ctx *
thread_ctx (struct gs_backing *b)
{
  struct crypt_cache *cc;
  unsigned i;

  pthread_once (&crypt_once, crypt_key_make);
  cc = pthread_getspecific (crypt_key);
  if (!cc) {
    cc = calloc (1, sizeof *cc);
    if (!cc)
      return NULL;
    pthread_setspecific (crypt_key, cc);
  }
  for (i = 0; i < CRYPT_CACHE; i++)
    if (cc->ctx[i] && cc->id[i] == b->crypt_id)
      return cc->ctx[i];
  i = cc->next++ % CRYPT_CACHE;
  gs_crypt_ctx_free (cc->ctx[i]);
  cc->ctx[i] = NULL;
  if (gs_crypt_ctx_new (b->crypt, &cc->ctx[i]) < 0)
    return NULL;
  cc->id[i] = b->crypt_id;
  return cc->ctx[i];
}

/* Encrypt (@seal) or decrypt in place the @n pages at @buf, physical
 * slots from @pslot on, with @b's key; nothing without encryption. */
static int
crypt_pages (struct gs_backing *b, bool seal, uint64_t pslot, void *buf,
             uint32_t n)
{
  unsigned char *p = buf;
  struct gs_crypt_ctx *ctx;
  uint32_t k;

  if (!b->crypt)
    return 0;
  ctx = thread_ctx (b);
  if (!ctx)
    return -ENOMEM;
  for (k = 0; k < n; k++) {
    int r = seal ? gs_crypt_encrypt (ctx, pslot + k, p + k * GS_SLOT_SIZE)
      : gs_crypt_decrypt (ctx, pslot + k, p + k * GS_SLOT_SIZE);
    if (r < 0)
      return r;
  }
  return 0;
}

/* gs_backing_encrypt - see backing_impl.h. */
int
gs_backing_encrypt (struct gs_backing *b, bool on)
{
  int r;

  if (!on)
    return 0;
  r = gs_crypt_create (&b->crypt);
  if (r < 0)
    return r;
  b->crypt_id = __atomic_add_fetch (&crypt_ids, 1, __ATOMIC_RELAXED);
  /* Freed slots hold ciphertext under a key that dies with the process:
   * they need wiping only to give the space back. */
  b->scrub = b->punch;
  return 0;
}

/* gs_backing_prep - see backing_impl.h. */
void
gs_backing_prep (struct gs_backing *b, struct gs_io *io, bool write,
                 void *buf, uint64_t pslot, uint32_t n)
{
  io->fd = b->fd;
  io->write = write;
  io->buf = buf;
  io->len = n * GS_SLOT_SIZE;
  io->offset = pslot * GS_SLOT_SIZE;
  io->res = 0;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
    if (write && fault_hits (b, GS_FAULT_ENOSPC, pslot, n))
      io->res = -ENOSPC;
    else if (fault_hits (b, write ? GS_FAULT_WRITE : GS_FAULT_READ, pslot, n))
      io->res = -EIO;
  }
  if (write && io->res == 0)
    io->res = crypt_pages (b, true, pslot, buf, n);
}

/* gs_backing_account - see backing_impl.h. */
void
gs_backing_account (struct gs_backing *b, struct gs_io *io)
{
  uint64_t pages = io->len / GS_SLOT_SIZE;

  if (!io->write && io->res == 0)
    io->res = crypt_pages (b, false, io->offset / GS_SLOT_SIZE, io->buf,
                           (uint32_t) pages);

  if (io->write) {
    __atomic_add_fetch (&b->writes, pages, __ATOMIC_RELAXED);
    if (io->res != 0)
      __atomic_add_fetch (&b->write_errors, 1, __ATOMIC_RELAXED);
    /* Unreachable for now is not broken: the pages stay where they are
     * and the write is tried again later. */
    if (io->res != 0 && io->res != -ENOTCONN)
      __atomic_store_n (&b->healthy, false, __ATOMIC_RELAXED);
  }
  else {
    __atomic_add_fetch (&b->reads, pages, __ATOMIC_RELAXED);
    if (io->res != 0)
      __atomic_add_fetch (&b->read_errors, 1, __ATOMIC_RELAXED);
  }
}

/* gs_backing_io - see backing_impl.h. */
int
gs_backing_io (struct gs_backing *b, struct gs_io *ios, size_t n)
{
  int first = 0;
  size_t k;

  b->ops->run (b, ios, n);
  for (k = 0; k < n; k++) {
    gs_backing_account (b, &ios[k]);
    if (first == 0)
      first = ios[k].res;
  }
  return first;
}

/* gs_backing_read_page - see backing_impl.h. */
int
gs_backing_read_page (struct gs_backing *b, uint64_t pslot, void *buf,
                      uint32_t crc)
{
  struct gs_io io;

  gs_backing_prep (b, &io, false, buf, pslot, 1);
  if (gs_backing_io (b, &io, 1) != 0)
    return -EIO;
  return gs_page_crc (buf) == crc ? 0 : -GS_EINTEGRITY;
}
