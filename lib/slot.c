/* ghostswap: the slot state machine (see slot.h). */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "slot.h"

/* gs_slot_find - see slot.h. */
int
gs_slot_find (struct gs_device *dev, uint64_t slot, bool create,
              struct gs_slot *s)
{
  s->t = &dev->table;
  s->c = gs_table_get (&dev->table, slot / GS_CLUSTER_SLOTS, create);
  s->i = (unsigned) (slot % GS_CLUSTER_SLOTS);
  s->slot = slot;
  if (!s->c)
    return !create ? -ENOENT
      : errno == ENOSPC ? -GS_ENOSPC_METADATA : -ENOMEM;
  return 0;
}

/* gs_slot_lock - see slot.h. */
void
gs_slot_lock (struct gs_slot *s)
{
  gs_cluster_lock (s->c);
}

/* gs_slot_unlock - see slot.h. */
void
gs_slot_unlock (struct gs_slot *s)
{
  gs_cluster_unlock (s->c);
  gs_table_put (s->t, s->c);
}

/* gs_slot_release - see slot.h. */
void
gs_slot_release (struct gs_slot *s)
{
  gs_table_put (s->t, s->c);
}

/* gs_slot_lock_expect - see slot.h. */
int
gs_slot_lock_expect (struct gs_device *dev, uint64_t slot, gs_entry expected,
                     struct gs_slot *s)
{
  if (slot >= dev->nslots || gs_slot_find (dev, slot, false, s) < 0)
    return -ESTALE;
  gs_slot_lock (s);
  if (entry_mkold (__gs_slot_entry (s)) != entry_mkold (expected)) {
    gs_slot_unlock (s);
    return -ESTALE;
  }
  return 0;
}

/* __gs_slot_entry - see slot.h. */
gs_entry
__gs_slot_entry (struct gs_slot *s)
{
  return __gs_cluster_entry (s->c, s->i);
}

/* __gs_slot_entry_at - see slot.h. */
gs_entry
__gs_slot_entry_at (struct gs_cluster *c, unsigned i)
{
  return __gs_cluster_entry (c, i);
}

static void
count_entry (struct gs_device *dev, gs_entry e, int64_t sign)
{
  if (entry_is_same (e)) {
    gs_ctr_add (&dev->ctr.slots_same, sign);
    if (entry_is_zero (e))
      gs_ctr_add (&dev->ctr.slots_same_zero, sign);
  }
  else if (entry_is_backing (e))
    gs_ctr_add (&dev->ctr.slots_backing, sign);
  else if (entry_is_ram (e)) {
    size_t cap;
    bool raw;
    gs_pool_object (e, &cap, &raw);
    gs_ctr_add (&dev->ctr.slots_ram, sign);
    if (raw)
      gs_ctr_add (&dev->ctr.slots_ram_raw, sign);
  }
}

static struct gs_backing *
backing_of (struct gs_device *dev, gs_entry e)
{
  struct gs_backing *b = dev->backing[entry_to_backing_id (e)];

  assert (b != NULL);
  return b;
}

/* Drop what entry @e held. */
static void
__release (struct gs_device *dev, struct gs_slot *s, gs_entry e)
{
  assert_cluster_locked (s->c);
  count_entry (dev, e, -1);
  if (entry_is_same_wide (e))
    gs_patterns_put (&dev->patterns, entry_to_pattern_index (e));
  else if (entry_is_ram (e))
    gs_pool_free (dev->pool, e);
  else if (entry_is_backing (e))
    gs_backing_free (backing_of (dev, e), entry_to_pslot (e));
}

/* Store @e over the old entry and release the old one. */
static int
__replace (struct gs_device *dev, struct gs_slot *s, gs_entry e)
{
  gs_entry old = __gs_slot_entry (s);
  int r;

  r = __gs_cluster_set (&dev->table, s->c, s->i, e);
  if (r < 0)
    return r;
  __release (dev, s, old);
  count_entry (dev, e, +1);
  return 0;
}

/* __gs_slot_store - see slot.h. */
int
__gs_slot_store (struct gs_device *dev, struct gs_slot *s, gs_entry e)
{
  int r;

  assert (!entry_is_backing (e) && !entry_is_writeback (e));
  r = __replace (dev, s, e);
  return r == -ENOSPC ? -GS_ENOSPC_METADATA : r;
}

/* __gs_slot_commit - see slot.h. */
void
__gs_slot_commit (struct gs_device *dev, struct gs_slot *s, gs_entry e)
{
  gs_entry old = __gs_slot_entry (s);
  int r;

  /* The mover's transitions, and only those. */
  assert ((entry_is_writeback (old) && entry_is_backing (e))
          || (entry_is_backing (old)
              && (entry_is_backing (e) || entry_is_ram (e))));
  assert (!entry_is_writeback (e));
  if (entry_is_backing (e))
    gs_backing_commit_slot (backing_of (dev, e), entry_to_pslot (e));
  r = __replace (dev, s, e);
  assert (r == 0);      /* a non-empty old entry: the array exists */
  (void) r;
}

/* __gs_slot_moved - see slot.h. */
void
__gs_slot_moved (struct gs_slot *s, gs_entry e)
{
  assert_cluster_locked (s->c);
  assert (entry_is_ram (__gs_slot_entry (s)) && entry_is_ram (e)
          && !entry_is_writeback (e));
  s->c->entries[s->i] = e;
}

/* __gs_slot_recompressed - see slot.h. */
void
__gs_slot_recompressed (struct gs_device *dev, struct gs_slot *s, gs_entry e)
{
  gs_entry old = __gs_slot_entry (s);
  int r;

  assert (entry_is_ram (old) && !entry_is_writeback (old));
  assert (entry_is_ram (e) && !entry_is_writeback (e));
  r = __replace (dev, s, e | (old & GS_ENTRY_ACCESSED));
  assert (r == 0);      /* a non-empty old entry: the array exists */
  (void) r;
}

/* __gs_slot_mark_writeback - see slot.h. */
gs_entry
__gs_slot_mark_writeback (struct gs_slot *s)
{
  gs_entry e = __gs_slot_entry (s);

  assert (entry_is_ram (e) && !entry_is_writeback (e));
  e = entry_mkwriteback (e);
  s->c->entries[s->i] = e;
  return e;
}

/* __gs_slot_clear_writeback - see slot.h. */
void
__gs_slot_clear_writeback (struct gs_slot *s)
{
  gs_entry e = __gs_slot_entry (s);

  assert (entry_is_writeback (e));
  s->c->entries[s->i] = e & ~GS_RAM_WRITEBACK;
}

/* Set A on a non-empty entry. */
static void
__mkyoung (struct gs_slot *s)
{
  gs_entry e = __gs_slot_entry (s);

  if (!entry_is_empty (e) && !entry_is_young (e))
    s->c->entries[s->i] = entry_mkyoung (e);
}

/* gs_slot_report_integrity - see slot.h. */
void
gs_slot_report_integrity (struct gs_device *dev, struct gs_backing *b,
                          uint64_t slot, uint64_t pslot)
{
  gs_ctr_add (&dev->ctr.integrity_errors, 1);
  if (gs_backing_mark_bad (b, pslot) && dev->integrity_fn)
    dev->integrity_fn (dev->integrity_opaque, slot, b->path, pslot);
}

/* This thread's 4 KiB-aligned buffer for direct I/O to backings. */
static pthread_key_t bounce_key;
static pthread_once_t bounce_once = PTHREAD_ONCE_INIT;

static void
bounce_key_make (void)
{
  pthread_key_create (&bounce_key, free);
}

static void *
bounce_buffer (void)
{
  void *p;

  pthread_once (&bounce_once, bounce_key_make);
  p = pthread_getspecific (bounce_key);
  if (!p) {
    if (posix_memalign (&p, GS_SLOT_SIZE, GS_SLOT_SIZE) != 0)
      return NULL;
    pthread_setspecific (bounce_key, p);
  }
  return p;
}

/* Read the backing page @s points at into @page.  Single pages on the
 * request path use pread: one system call, no ring to set up in every
 * nbdkit thread. */
static int
__read_backing (struct gs_device *dev, struct gs_slot *s, gs_entry e,
                void *page)
{
  struct gs_backing *b = backing_of (dev, e);
  uint64_t pslot = entry_to_pslot (e);
  void *buf = bounce_buffer ();
  int r;

  if (!buf)
    return -ENOMEM;
  r = gs_backing_read_page (b, pslot, buf, gs_backing_slot_crc (b, pslot));
  if (r == -GS_EINTEGRITY) {
    gs_slot_report_integrity (dev, b, s->slot, pslot);
    return -EIO;
  }
  if (r < 0) {
    gs_ctr_add (&dev->ctr.backing_read_errors, 1);
    return r;
  }
  if (entry_backing_is_zstd (e))
    return gs_decompress (&dev->codec, page, buf, GS_SLOT_SIZE);
  memcpy (page, buf, GS_SLOT_SIZE);
  return 0;
}

/* __gs_slot_read - see slot.h. */
int
__gs_slot_read (struct gs_device *dev, struct gs_slot *s, void *page)
{
  gs_entry e = __gs_slot_entry (s);
  int r = 0;

  if (entry_is_empty (e))
    memset (page, 0, GS_SLOT_SIZE);
  else if (entry_is_same_wide (e))
    gs_fill_pattern (page, gs_patterns_word (&dev->patterns,
                                             entry_to_pattern_index (e)));
  else if (entry_is_same (e))
    gs_fill_pattern (page, entry_to_pattern (e));
  else if (entry_is_ram (e)) {
    size_t cap;
    bool raw;
    const void *obj = gs_pool_object (e, &cap, &raw);
    if (raw)
      memcpy (page, obj, GS_SLOT_SIZE);
    else
      r = gs_decompress (&dev->codec, page, obj, cap);
  }
  else
    r = __read_backing (dev, s, e, page);
  if (r == 0)
    __mkyoung (s);
  return r;
}

/* gs_page_to_ram_object - see slot.h. */
int
gs_page_to_ram_object (struct gs_device *dev, uint64_t owner,
                       const void *page, bool zstd, gs_entry *e)
{
  size_t len = GS_SLOT_SIZE;

  if (zstd) {
    len = gs_frame_size (page, GS_SLOT_SIZE);
    if (len == 0)
      return -EIO;
  }
  return gs_pool_alloc (dev->pool, owner, !zstd, page, len, e);
}
