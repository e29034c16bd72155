/* ghostswap: writeback: RAM pages to backing, oldest segments first.
 *
 * The pool is a log, so its oldest segments hold the pages written
 * longest ago.  Writeback claims the oldest segment and visits each object
 * through its back-pointer: a page read since the last pass (accessed bit)
 * gets a second chance and is copied to a fresh segment with the bit
 * cleared; any other page is copied, as it is stored (zstd frame or raw
 * page), into a batch buffer, its entry marked W, and the batch written
 * to backing with one io_uring write per contiguous run of physical
 * slots.  Then each entry still marked W (no write or trim replaced it
 * meanwhile) is switched to the backing slot and the RAM object freed; the
 * segment ends up empty and is freed whole, with no compaction needed.
 * Incompressible pages go first: a first pass over the oldest segments
 * takes only raw pages, which free 4 KiB each.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "device_impl.h"

#define BATCH_PAGES 64
#define RAW_PASS_SEGMENTS 8

struct batch {
  struct gs_device *dev;
  bool force;                 /* ignore accessed bits */
  bool raw_only;              /* the first pass: incompressible pages only */
  unsigned n;
  uint64_t slot[BATCH_PAGES];
  gs_entry entry[BATCH_PAGES];        /* as marked W */
  bool zstd[BATCH_PAGES];
  unsigned char *buf;                 /* BATCH_PAGES * 4 KiB, aligned */
  int64_t written;
  int err;                            /* -ENOSPC: no backing has room */
};

/* Switch or restore the n pages of @bt starting at @k after their write. */
static void
commit (struct batch *bt, unsigned k, unsigned n, struct gs_backing *b,
        uint64_t first, int res)
{
  struct gs_device *dev = bt->dev;
  unsigned j;

  for (j = k; j < k + n; j++) {
    uint64_t slot = bt->slot[j], pslot = first + (j - k);
    struct gs_cluster *c = gs_table_get (&dev->table,
                                         slot / GS_CLUSTER_SLOTS, false);
    unsigned i = (unsigned) (slot % GS_CLUSTER_SLOTS);
    bool done = false;

    if (c) {
      gs_cluster_lock (c);
      gs_entry e = __gs_cluster_entry (c, i);
      if (entry_is_writeback (e) && entry_same_place (e, bt->entry[j])) {
        if (res == 0 && b) {
          /* Cannot fail: the cluster has its entry array. */
          __gs_slot_replace (dev, c, i,
                             backing_to_entry (b->id, pslot, bt->zstd[j]));
          done = true;
        }
        else
          c->entries[i] = e & ~GS_RAM_WRITEBACK;
      }
      gs_cluster_unlock (c);
      gs_table_put (&dev->table, c);
    }
    if (done)
      bt->written++;
    else if (b)
      gs_backing_free (b, pslot);
  }
}

/* Write the batch out and commit it. */
static void
flush (struct batch *bt)
{
  struct gs_device *dev = bt->dev;
  unsigned k = 0;

  while (k < bt->n) {
    uint64_t first, got;
    struct gs_backing *b = gs_backing_reserve (dev, NULL, NULL, &bt->slot[k],
                                               bt->n - k, &first, &got);
    struct gs_io io;

    if (!b) {
      /* No room anywhere: the rest stays in RAM. */
      commit (bt, k, bt->n - k, NULL, 0, -ENOSPC);
      bt->err = -ENOSPC;
      break;
    }
    gs_backing_prep (b, &io, true, bt->buf + (size_t) k * GS_SLOT_SIZE,
                     first, (uint32_t) got);
    gs_uring_run (&io, 1);
    gs_backing_account (b, &io);
    if (io.res != 0)
      __atomic_add_fetch (&dev->ctr.backing_write_errors, 1, __ATOMIC_RELAXED);
    commit (bt, k, (unsigned) got, b, first, io.res);
    k += (unsigned) got;
  }
  __atomic_add_fetch (&dev->ctr.writeback_batches, 1, __ATOMIC_RELAXED);
  bt->n = 0;
}

/* Visit one object of a claimed segment. */
static void
visit (void *opaque, uint64_t owner, gs_entry entry)
{
  struct batch *bt = opaque;
  struct gs_device *dev = bt->dev;
  struct gs_cluster *c;
  unsigned i = (unsigned) (owner % GS_CLUSTER_SLOTS);
  gs_entry e, moved;
  const void *obj;
  size_t cap, len;
  bool raw;

  if (bt->err || owner >= dev->nslots)
    return;
  c = gs_table_get (&dev->table, owner / GS_CLUSTER_SLOTS, false);
  if (!c)
    return;
  gs_cluster_lock (c);
  e = __gs_cluster_entry (c, i);
  if (!entry_is_ram (e) || entry_is_writeback (e)
      || !entry_same_place (e, entry)) {
    gs_cluster_unlock (c);      /* dead object */
    gs_table_put (&dev->table, c);
    return;
  }
  obj = gs_pool_object (e, &cap, &raw);
  if (bt->raw_only && !raw) {
    gs_cluster_unlock (c);
    gs_table_put (&dev->table, c);
    return;
  }
  if (entry_is_young (e) && !bt->force
      && gs_pool_move (dev->pool, e, &moved) == 0) {
    /* Second chance: keep it in RAM, in a newer segment, and forget the
     * access so that it goes next time unless read again. */
    c->entries[i] = entry_mkold (moved);
    __atomic_add_fetch (&dev->ctr.writeback_second_chance, 1,
                        __ATOMIC_RELAXED);
    gs_cluster_unlock (c);
    gs_table_put (&dev->table, c);
    return;
  }
  len = raw ? GS_SLOT_SIZE : gs_frame_size (obj, cap);
  if (len == 0) {
    gs_cluster_unlock (c);      /* corrupt frame: leave it where it is */
    gs_table_put (&dev->table, c);
    return;
  }
  memcpy (bt->buf + (size_t) bt->n * GS_SLOT_SIZE, obj, len);
  memset (bt->buf + (size_t) bt->n * GS_SLOT_SIZE + len, 0, GS_SLOT_SIZE - len);
  e = entry_mkwriteback (e);
  c->entries[i] = e;
  bt->slot[bt->n] = owner;
  bt->entry[bt->n] = e;
  bt->zstd[bt->n] = !raw;
  bt->n++;
  gs_cluster_unlock (c);
  gs_table_put (&dev->table, c);
  if (bt->n == BATCH_PAGES)
    flush (bt);
}

static bool
done (struct gs_device *dev, struct batch *bt, uint64_t pages)
{
  if (bt->err)
    return true;
  if (pages > 0)
    return (uint64_t) bt->written >= pages;
  return gs_pool_bytes (dev->pool)
    <= gs_pool_limit (dev->pool) / 100 * dev->cfg.writeback_low;
}

/* Walk claimed segments oldest first until done. */
static void
walk_oldest (struct gs_device *dev, struct batch *bt, uint64_t pages,
             size_t max_segments)
{
  struct gs_segment *s;
  size_t walked = 0;

  while (walked < max_segments && !done (dev, bt, pages)) {
    if (gs_pool_take (dev->pool, 101, &s, 1) == 0) {
      /* Everything left is in open segments: seal them, once. */
      if (walked > 0 || gs_pool_bytes (dev->pool) == 0)
        break;
      gs_pool_seal_open (dev->pool);
      if (gs_pool_take (dev->pool, 101, &s, 1) == 0)
        break;
    }
    gs_pool_walk (dev->pool, s, visit, bt);
    if (bt->n > 0)
      flush (bt);
    gs_pool_give_back (dev->pool, s);
    walked++;
  }
}

/* gs_writeback_run - see device_impl.h. */
int64_t
gs_writeback_run (struct gs_device *dev, uint64_t pages, bool force)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->writeback_lock);
  CLEANUP_FREE struct batch *bt = NULL;
  void *buf;

  if (!gs_backing_any_room (dev))
    return -ENOSPC;
  bt = calloc (1, sizeof *bt);
  if (!bt || posix_memalign (&buf, GS_SLOT_SIZE,
                             (size_t) BATCH_PAGES * GS_SLOT_SIZE) != 0)
    return -ENOMEM;
  bt->buf = buf;
  bt->dev = dev;
  bt->force = force;

  if (__atomic_load_n (&dev->ctr.slots_ram_raw, __ATOMIC_RELAXED) > 0) {
    bt->raw_only = true;
    walk_oldest (dev, bt, pages, RAW_PASS_SEGMENTS);
    bt->raw_only = false;
  }
  walk_oldest (dev, bt, pages, SIZE_MAX);
  free (bt->buf);
  __atomic_add_fetch (&dev->ctr.writeback_pages, (uint64_t) bt->written,
                      __ATOMIC_RELAXED);
  if (bt->written == 0 && bt->err)
    return bt->err;
  return bt->written;
}

/* gs_writeback - see backing.h. */
int64_t
gs_writeback (struct gs_device *dev, uint64_t pages)
{
  return gs_writeback_run (dev, pages, false);
}
