/* ghostswap: writeback: RAM pages to backing, oldest segments first.
 *
 * The pool is a log, so its oldest segments hold the pages written
 * longest ago.  Writeback claims the oldest segment and visits each object
 * through its back-pointer: a page read since the last pass (accessed bit)
 * gets a second chance and is copied to a fresh segment with the bit
 * cleared; any other page is copied, as it is stored (zstd frame or raw
 * page, padded to 4 KiB), into a batch buffer with its crc32c, its entry
 * marked W, and the batch written to backing with one write per
 * contiguous run of physical slots.  Then each entry still exactly as
 * marked (no write or trim replaced it meanwhile) is switched to its
 * backing slot and the RAM object freed; the segment ends up empty and is
 * freed whole, with no compaction needed.  The segment stays claimed
 * until then, so the marked entries cannot repeat (slot.h's movers' rule).
 * Incompressible pages go first: a first pass over the oldest segments
 * takes only raw pages, which free 4 KiB each.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backing_list.h"
#include "cleanup.h"
#include "slot.h"
#include "writeback.h"

#define BATCH_PAGES 64
#define RAW_PASS_SEGMENTS 8

struct gs_wb_batch {
  struct gs_device *dev;
  bool force;                 /* ignore accessed bits */
  bool raw_only;              /* the first pass: incompressible pages only */
  unsigned n;
  uint64_t slot[BATCH_PAGES];
  gs_entry entry[BATCH_PAGES];        /* as marked W */
  bool zstd[BATCH_PAGES];
  uint32_t crc[BATCH_PAGES];          /* of each 4 KiB stored form */
  unsigned char *buf;                 /* BATCH_PAGES * 4 KiB, aligned */
  int64_t written;
  int err;                            /* -ENOSPC: no backing has room */
};

/* Switch or restore the @n pages of @bt from @k on after their write of
 * result @res to @b at @first (@b NULL: nothing was reserved). */
static void
commit (struct gs_wb_batch *bt, unsigned k, unsigned n, struct gs_backing *b,
        uint64_t first, int res)
{
  struct gs_device *dev = bt->dev;
  unsigned j;

  for (j = k; j < k + n; j++) {
    uint64_t pslot = first + (j - k);
    struct gs_slot s;
    bool done = false;

    if (gs_slot_lock_expect (dev, bt->slot[j], bt->entry[j], &s) == 0) {
      if (res == 0 && b) {
        __gs_slot_commit (dev, &s, backing_to_entry (b->id, pslot,
                                                     bt->zstd[j]));
        done = true;
      }
      else
        __gs_slot_clear_writeback (&s);
      gs_slot_unlock (&s);
    }
    if (done)
      bt->written++;
    else if (b)
      gs_backing_release (b, pslot);
  }
}

/* Write the batch out and commit it. */
static void
flush (struct gs_wb_batch *bt)
{
  struct gs_device *dev = bt->dev;
  unsigned k = 0;

  while (k < bt->n) {
    uint64_t first, got;
    struct gs_backing *b = gs_backing_reserve (dev, NULL, NULL, &bt->slot[k],
                                               &bt->crc[k], &bt->zstd[k],
                                               bt->n - k, &first, &got);
    struct gs_io io;

    if (!b && gs_backings_scrub (dev) > 0)
      continue;                 /* freed slots wiped: room again */
    if (!b) {
      /* No room anywhere: the rest stays in RAM. */
      commit (bt, k, bt->n - k, NULL, 0, -ENOSPC);
      bt->err = -ENOSPC;
      break;
    }
    gs_backing_prep (b, &io, true, bt->buf + (size_t) k * GS_SLOT_SIZE,
                     first, (uint32_t) got);
    gs_backing_io (b, &io, 1);
    if (io.res != 0)
      gs_ctr_add (&dev->ctr.backing_write_errors, 1);
    commit (bt, k, (unsigned) got, b, first, io.res);
    k += (unsigned) got;
  }
  gs_ctr_add (&dev->ctr.writeback_batches, 1);
  bt->n = 0;
}

/* Visit one object of a claimed segment. */
static void
visit (void *opaque, uint64_t owner, gs_entry entry)
{
  struct gs_wb_batch *bt = opaque;
  struct gs_device *dev = bt->dev;
  struct gs_slot s;
  unsigned char *out = bt->buf + (size_t) bt->n * GS_SLOT_SIZE;
  gs_entry e, moved;
  const void *obj;
  size_t cap, len;
  bool raw;

  if (bt->err || gs_slot_lock_expect (dev, owner, entry, &s) < 0)
    return;                     /* dead object */
  e = __gs_slot_entry (&s);
  obj = gs_pool_object (e, &cap, &raw);
  if (bt->raw_only && !raw) {
    gs_slot_unlock (&s);
    return;
  }
  if (entry_is_young (e) && !bt->force
      && gs_pool_move (dev->pool, e, &moved) == 0) {
    /* Second chance: keep it in RAM, in a newer segment, and forget the
     * access so that it goes next time unless read again. */
    __gs_slot_moved (&s, entry_mkold (moved));
    gs_ctr_add (&dev->ctr.writeback_second_chance, 1);
    gs_slot_unlock (&s);
    return;
  }
  len = raw ? GS_SLOT_SIZE : gs_frame_size (obj, cap);
  if (len == 0) {
    gs_slot_unlock (&s);        /* corrupt frame: leave it where it is */
    return;
  }
  memcpy (out, obj, len);
  memset (out + len, 0, GS_SLOT_SIZE - len);
  bt->slot[bt->n] = owner;
  bt->entry[bt->n] = __gs_slot_mark_writeback (&s);
  bt->zstd[bt->n] = !raw;
  gs_slot_unlock (&s);
  /* The checksum of the stored form, taken as it is made. */
  bt->crc[bt->n] = gs_page_crc (out);
  bt->n++;
  if (bt->n == BATCH_PAGES)
    flush (bt);
}

static bool
done (struct gs_device *dev, struct gs_wb_batch *bt, uint64_t pages)
{
  if (bt->err)
    return true;
  if (pages > 0)
    return (uint64_t) bt->written >= pages;
  return gs_pool_at_low (dev);
}

/* Walk claimed segments oldest first until done. */
static void
walk_oldest (struct gs_device *dev, struct gs_wb_batch *bt, uint64_t pages,
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

/* The device's batch, made on first use.  Context: writeback_lock held. */
static struct gs_wb_batch *
batch (struct gs_device *dev)
{
  struct gs_wb_batch *bt = dev->wb;
  void *buf;

  if (bt)
    return bt;
  bt = calloc (1, sizeof *bt);
  if (!bt)
    return NULL;
  if (posix_memalign (&buf, GS_SLOT_SIZE,
                      (size_t) BATCH_PAGES * GS_SLOT_SIZE) != 0) {
    free (bt);
    return NULL;
  }
  bt->buf = buf;
  bt->dev = dev;
  dev->wb = bt;
  return bt;
}

/* gs_writeback_run - see writeback.h. */
int64_t
gs_writeback_run (struct gs_device *dev, uint64_t pages, bool force)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->writeback_lock);
  struct gs_wb_batch *bt;

  if (!gs_backing_any_room (dev))
    return -ENOSPC;
  bt = batch (dev);
  if (!bt)
    return -ENOMEM;
  bt->force = force;
  bt->n = 0;
  bt->written = 0;
  bt->err = 0;
  if (__atomic_load_n (&dev->ctr.slots_ram_raw, __ATOMIC_RELAXED) > 0) {
    bt->raw_only = true;
    walk_oldest (dev, bt, pages, RAW_PASS_SEGMENTS);
    bt->raw_only = false;
  }
  walk_oldest (dev, bt, pages, SIZE_MAX);
  gs_ctr_add (&dev->ctr.writeback_pages, bt->written);
  if (bt->written == 0 && bt->err)
    return bt->err;
  return bt->written;
}

/* gs_writeback_free - see writeback.h. */
void
gs_writeback_free (struct gs_device *dev)
{
  if (dev->wb) {
    free (dev->wb->buf);
    free (dev->wb);
    dev->wb = NULL;
  }
}

/* gs_writeback - see backing.h. */
int64_t
gs_writeback (struct gs_device *dev, uint64_t pages)
{
  return gs_writeback_run (dev, pages, false);
}
