/* ghostswap: the device: requests at any offset and length, on top of
 * the slot module (every entry is read and stored there) and the policy
 * (a writer short of RAM reclaims through it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "background.h"
#include "backing_list.h"
#include "cleanup.h"
#include "recompress.h"
#include "slot.h"
#include "writeback.h"

#define CLUSTER_BYTES ((uint64_t) GS_CLUSTER_SLOTS * GS_SLOT_SIZE)
#define ctr_add gs_ctr_add

/* gs_device_create - see device.h. */
int
gs_device_create (const struct gs_config *cfg, struct gs_device **devp)
{
  struct gs_device *dev;
  int r;

  if (cfg->size == 0 || cfg->size % GS_SLOT_SIZE != 0 || cfg->size > GS_MAX_SIZE
      || cfg->ram_limit < GS_MIN_RAM_LIMIT)
    return -EINVAL;
  dev = calloc (1, sizeof *dev);
  if (!dev)
    return -ENOMEM;
  dev->cfg = *cfg;
  dev->nslots = cfg->size / GS_SLOT_SIZE;
  r = gs_codec_init (&dev->codec, cfg->compression_level);
  if (r < 0) {
    free (dev);
    return r;
  }
  gs_patterns_init (&dev->patterns);
  pthread_mutex_init (&dev->bg_lock, NULL);
  pthread_cond_init (&dev->bg_cond, NULL);
  pthread_mutex_init (&dev->backing_lock, NULL);
  pthread_cond_init (&dev->backing_cond, NULL);
  pthread_mutex_init (&dev->writeback_lock, NULL);
  pthread_mutex_init (&dev->drain_lock, NULL);
  pthread_cond_init (&dev->drain_cond, NULL);
  r = gs_table_init (&dev->table,
                     (dev->nslots + GS_CLUSTER_SLOTS - 1) / GS_CLUSTER_SLOTS);
  if (r == 0)
    r = gs_pool_create (cfg->ram_limit, gs_frame_size, &dev->pool);
  if (r < 0) {
    gs_device_destroy (dev);
    return r;
  }
  /* One memory account for the device (stats: memory_bytes, its peak). */
  gs_table_set_limit (&dev->table, gs_config_metadata_limit (cfg));
  gs_pool_set_account (dev->pool, &dev->table.mem);
  gs_codec_set_account (&dev->codec, &dev->table.mem);
  r = gs_recompress_init (dev);
  if (r < 0) {
    gs_device_destroy (dev);
    return r;
  }
  *devp = dev;
  return 0;
}

/* gs_device_destroy - see device.h. */
void
gs_device_destroy (struct gs_device *dev)
{
  if (!dev)
    return;
  gs_background_stop (dev);
  gs_recompress_stop (dev);
  gs_drain_cancel (dev);
  gs_drain_wait (dev);
  gs_backings_close_all (dev);
  gs_writeback_free (dev);
  gs_table_destroy (&dev->table);
  gs_pool_destroy (dev->pool);
  gs_recompress_free (dev);
  gs_codec_destroy (&dev->codec);
  gs_patterns_destroy (&dev->patterns);
  pthread_cond_destroy (&dev->drain_cond);
  pthread_mutex_destroy (&dev->drain_lock);
  pthread_mutex_destroy (&dev->writeback_lock);
  pthread_cond_destroy (&dev->backing_cond);
  pthread_mutex_destroy (&dev->backing_lock);
  pthread_cond_destroy (&dev->bg_cond);
  pthread_mutex_destroy (&dev->bg_lock);
  free (dev);
}

/* gs_device_size - see device.h. */
uint64_t
gs_device_size (const struct gs_device *dev)
{
  return dev->cfg.size;
}

/* gs_device_set_integrity_report - see device.h. */
void
gs_device_set_integrity_report (struct gs_device *dev, gs_integrity_fn fn,
                                void *opaque)
{
  dev->integrity_fn = fn;
  dev->integrity_opaque = opaque;
}

/* gs_set_ram_limit - see device.h. */
int
gs_set_ram_limit (struct gs_device *dev, uint64_t bytes)
{
  if (bytes < GS_MIN_RAM_LIMIT)
    return -EINVAL;
  __atomic_store_n (&dev->cfg.ram_limit, bytes, __ATOMIC_RELAXED);
  gs_pool_set_limit (dev->pool, bytes);
  return 0;
}

/* --- one slot, under its cluster lock --- */

/* What a page becomes, worked out before taking the cluster lock. */
struct encoded {
  gs_entry same;        /* a SAME entry (holding a pattern reference if
                         * wide), or EMPTY if the page is data */
  bool raw;
  const void *data;     /* zstd frame or the page itself */
  size_t len;
};

static int
encode_page (struct gs_device *dev, const void *page, struct encoded *enc)
{
  uint64_t pattern;
  uint32_t index;
  int r;

  enc->same = GS_ENTRY_EMPTY;
  if (gs_page_same_filled (page, &pattern)) {
    if (pattern_fits_inline (pattern)) {
      enc->same = pattern_to_entry (pattern);
      return 0;
    }
    /* A full pattern table is no error: store the page as data. */
    if (gs_patterns_get (&dev->patterns, pattern, &index) == 0) {
      enc->same = pattern_index_to_entry (index);
      return 0;
    }
  }
  r = gs_compress (&dev->codec, page, &enc->data);
  if (r < 0)
    return r;
  enc->raw = r == 0;
  if (enc->raw)
    enc->data = page;
  enc->len = enc->raw ? GS_SLOT_SIZE : (size_t) r;
  return 0;
}

/* Undo encode_page for a page that was not stored. */
static void
encoded_drop (struct gs_device *dev, const struct encoded *enc)
{
  if (entry_is_same_wide (enc->same))
    gs_patterns_put (&dev->patterns, entry_to_pattern_index (enc->same));
}

/* Store the encoded page in slot @slot.  On error the slot keeps its old
 * contents and @enc's pattern reference is dropped. */
static int
__slot_store (struct gs_device *dev, struct gs_slot *s,
              const struct encoded *enc)
{
  gs_entry e = enc->same;
  int r;

  if (entry_is_empty (e)) {
    r = gs_pool_alloc (dev->pool, s->slot, enc->raw, enc->data, enc->len, &e);
    if (r < 0)
      return r;
  }
  r = __gs_slot_store (dev, s, e);
  if (r < 0) {
    if (entry_is_ram (e))
      gs_pool_free (dev->pool, e);
    else
      encoded_drop (dev, enc);
  }
  return r;
}

/* --- requests --- */

static int
check_range (struct gs_device *dev, uint32_t count, uint64_t offset)
{
  if (offset > dev->cfg.size || count > dev->cfg.size - offset)
    return -EINVAL;
  return 0;
}

static int
finish (struct gs_device *dev, int r)
{
  if (r < 0) {
    ctr_add (&dev->ctr.errors, 1);
    if (r == -ENOSPC)
      ctr_add (&dev->ctr.enospc, 1);
  }
  return r;
}

/* gs_pread - see device.h. */
int
gs_pread (struct gs_device *dev, void *buf, uint32_t count, uint64_t offset)
{
  unsigned char *out = buf;
  unsigned char page[GS_SLOT_SIZE];
  int r = check_range (dev, count, offset);

  if (r < 0)
    return finish (dev, r);
  ctr_add (&dev->ctr.reads, 1);
  ctr_add (&dev->ctr.bytes_read, count);
  while (count > 0) {
    uint64_t slot = offset / GS_SLOT_SIZE;
    uint32_t in = (uint32_t) (offset % GS_SLOT_SIZE);
    uint32_t n = GS_SLOT_SIZE - in < count ? GS_SLOT_SIZE - in : count;
    struct gs_slot s;

    if (gs_slot_find (dev, slot, false, &s) < 0)
      memset (out, 0, n);
    else {
      gs_slot_lock (&s);
      if (n == GS_SLOT_SIZE)
        r = __gs_slot_read (dev, &s, out);
      else {
        r = __gs_slot_read (dev, &s, page);
        memcpy (out, page + in, n);
      }
      gs_slot_unlock (&s);
      if (r < 0)
        return finish (dev, r);
    }
    out += n;
    offset += n;
    count -= n;
  }
  return 0;
}

static bool
all_zero (const unsigned char *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

/* Write @n bytes of @data at byte @in of slot @slot, or zeroes if @data is
 * NULL: then a slot that ends up all zero becomes @zero_fill: EMPTY when
 * trimming, the zero SAME entry when allocated zeroes are wanted.  Zeroes
 * (written as data or not) over a slot that reads as zero change nothing
 * and allocate nothing: an empty slot stays empty. */
static int
write_slot (struct gs_device *dev, uint64_t slot, uint32_t in, uint32_t n,
            const unsigned char *data, gs_entry zero_fill)
{
  unsigned char page[GS_SLOT_SIZE];
  struct encoded enc;
  struct gs_slot s;
  uint64_t pattern;
  gs_entry old;
  int r;

  if (data && all_zero (data, n)) {
    data = NULL;
    zero_fill = pattern_to_entry (0);
  }
  r = gs_slot_find (dev, slot, data != NULL, &s);
  if (r < 0)
    return r == -ENOENT ? 0 : r;
  if (n == GS_SLOT_SIZE && data) {
    /* A whole page: compress before taking the lock. */
    r = encode_page (dev, data, &enc);
    if (r < 0) {
      gs_slot_release (&s);
      return r;
    }
    gs_slot_lock (&s);
    r = __slot_store (dev, &s, &enc);
    gs_slot_unlock (&s);
    return r;
  }
  /* Part of a page: read, modify and write it under the lock, so that
   * concurrent partial writes to one slot do not lose each other. */
  gs_slot_lock (&s);
  old = __gs_slot_entry (&s);
  if (!data && (entry_is_empty (old) || old == zero_fill)) {
    gs_slot_unlock (&s);
    return 0;
  }
  if (!data && n == GS_SLOT_SIZE) {
    r = __gs_slot_store (dev, &s, zero_fill);
    gs_slot_unlock (&s);
    return r;
  }
  r = __gs_slot_read (dev, &s, page);
  if (r == 0) {
    if (data)
      memcpy (page + in, data, n);
    else
      memset (page + in, 0, n);
    if (!data && gs_page_same_filled (page, &pattern) && pattern == 0)
      r = __gs_slot_store (dev, &s, zero_fill);
    else {
      r = encode_page (dev, page, &enc);
      if (r == 0)
        r = __slot_store (dev, &s, &enc);
    }
  }
  gs_slot_unlock (&s);
  return r;
}

/* Write one slot.  When the pool is full: write cold pages back to
 * backing (waiting for any writeback under way; it frees whole segments),
 * or else compact the pool if it holds garbage, and try again.  When this
 * writer's own reclaim frees nothing but a backing has room, others are
 * reclaiming (the background thread, other writers): wait a little for
 * them; while a backing is unreachable for now, wait up to remote-timeout
 * for it.  ENOSPC only when nothing frees room. */
static int
write_slot_retry (struct gs_device *dev, uint64_t slot, uint32_t in,
                  uint32_t n, const unsigned char *data, gs_entry zero_fill)
{
  int r = write_slot (dev, slot, in, n, data, zero_fill);
  unsigned tries;

  for (tries = 0; r == -ENOSPC; tries++) {
    /* When nothing frees room, a last try: another thread may have freed
     * some meanwhile. */
    bool again = gs_reclaim_for_write (dev, tries);
    r = write_slot (dev, slot, in, n, data, zero_fill);
    if (!again)
      break;
  }
  if (r == 0)
    gs_after_write (dev);
  return r == -GS_ENOSPC_METADATA ? -ENOSPC : r;
}

/* gs_pwrite - see device.h. */
int
gs_pwrite (struct gs_device *dev, const void *buf, uint32_t count,
           uint64_t offset)
{
  const unsigned char *in = buf;
  int r = check_range (dev, count, offset);

  if (r < 0)
    return finish (dev, r);
  ctr_add (&dev->ctr.writes, 1);
  ctr_add (&dev->ctr.bytes_written, count);
  while (count > 0) {
    uint32_t at = (uint32_t) (offset % GS_SLOT_SIZE);
    uint32_t n = GS_SLOT_SIZE - at < count ? GS_SLOT_SIZE - at : count;

    r = write_slot_retry (dev, offset / GS_SLOT_SIZE, at, n, in,
                          GS_ENTRY_EMPTY);
    if (r < 0)
      return finish (dev, r);
    in += n;
    offset += n;
    count -= n;
  }
  return 0;
}

/* Set whole slots [@first, @end) to @fill (EMPTY or the zero SAME entry),
 * one cluster at a time.  A slot that is empty stays so (it reads as
 * zero already), so this never allocates: absent clusters are skipped. */
static int
fill_slots (struct gs_device *dev, uint64_t first, uint64_t end, gs_entry fill)
{
  while (first < end) {
    uint64_t cidx = first / GS_CLUSTER_SLOTS;
    uint64_t stop = (cidx + 1) * GS_CLUSTER_SLOTS < end
      ? (cidx + 1) * GS_CLUSTER_SLOTS : end;
    struct gs_slot s;
    int r = gs_slot_find (dev, first, false, &s);

    if (r < 0) {
      /* Nothing up to the next cluster that holds anything. */
      uint64_t next;
      if (!gs_table_next (&dev->table, cidx + 1,
                          (end + GS_CLUSTER_SLOTS - 1) / GS_CLUSTER_SLOTS,
                          &next))
        return 0;
      first = next * GS_CLUSTER_SLOTS;
      continue;
    }
    {
      gs_slot_lock (&s);
      for (; s.slot < stop && r == 0; s.slot++, s.i++) {
        gs_entry old = __gs_slot_entry (&s);
        if (old == fill || entry_is_empty (old))
          continue;
        /* A freed backing slot is wiped (punched) before it is reused:
         * gs_backing_scrub. */
        r = __gs_slot_store (dev, &s, fill);
      }
      gs_slot_unlock (&s);
      if (r < 0)
        return r;
    }
    first = stop;
  }
  return 0;
}

/* Zero @count bytes at @offset: whole slots become @fill, partial ones are
 * rewritten with zeroes in the range. */
static int
zero_range (struct gs_device *dev, uint32_t count, uint64_t offset,
            gs_entry fill)
{
  uint64_t end = offset + count;
  uint64_t first = (offset + GS_SLOT_SIZE - 1) / GS_SLOT_SIZE;
  uint64_t last = end / GS_SLOT_SIZE;     /* whole slots: [first, last) */
  int r;

  if (first >= last) {
    /* Inside one slot, or across one boundary with no whole slot. */
    while (offset < end) {
      uint32_t at = (uint32_t) (offset % GS_SLOT_SIZE);
      uint32_t n = GS_SLOT_SIZE - at < end - offset
        ? GS_SLOT_SIZE - at : (uint32_t) (end - offset);
      r = n == GS_SLOT_SIZE
        ? fill_slots (dev, offset / GS_SLOT_SIZE, offset / GS_SLOT_SIZE + 1, fill)
        : write_slot_retry (dev, offset / GS_SLOT_SIZE, at, n, NULL, fill);
      if (r < 0)
        return r;
      offset += n;
    }
    return 0;
  }
  if (offset % GS_SLOT_SIZE != 0) {
    r = write_slot_retry (dev, offset / GS_SLOT_SIZE,
                          (uint32_t) (offset % GS_SLOT_SIZE),
                          (uint32_t) (first * GS_SLOT_SIZE - offset), NULL,
                          fill);
    if (r < 0)
      return r;
  }
  r = fill_slots (dev, first, last, fill);
  if (r < 0)
    return r;
  if (end % GS_SLOT_SIZE != 0)
    r = write_slot_retry (dev, last, 0, (uint32_t) (end % GS_SLOT_SIZE), NULL,
                          fill);
  return r;
}

/* After a trim or zero: have the background thread wipe (punch) the
 * backing slots it freed soon, in batches, rather than a system call per
 * request under the request's latency. */
static void
scrub_freed (struct gs_device *dev)
{
  if (__atomic_load_n (&dev->backing_count, __ATOMIC_RELAXED) > 0)
    gs_background_kick (dev);
}

/* gs_zero - see device.h. */
int
gs_zero (struct gs_device *dev, uint32_t count, uint64_t offset, unsigned flags)
{
  int r = check_range (dev, count, offset);

  if (r < 0)
    return finish (dev, r);
  ctr_add (&dev->ctr.zeroes, 1);
  r = zero_range (dev, count, offset, (flags & GS_ZERO_MAY_TRIM)
                  ? GS_ENTRY_EMPTY : pattern_to_entry (0));
  scrub_freed (dev);
  return finish (dev, r);
}

/* gs_trim - see device.h. */
int
gs_trim (struct gs_device *dev, uint32_t count, uint64_t offset)
{
  int r = check_range (dev, count, offset);

  if (r < 0)
    return finish (dev, r);
  ctr_add (&dev->ctr.trims, 1);
  r = zero_range (dev, count, offset, GS_ENTRY_EMPTY);
  scrub_freed (dev);
  return finish (dev, r);
}

/* gs_flush - see device.h. */
int
gs_flush (struct gs_device *dev)
{
  ctr_add (&dev->ctr.flushes, 1);
  return 0;
}

/* gs_cache - see device.h. */
int
gs_cache (struct gs_device *dev, uint32_t count, uint64_t offset)
{
  int r = check_range (dev, count, offset);

  if (r < 0)
    return finish (dev, r);
  ctr_add (&dev->ctr.caches, 1);
  return 0;
}

/* Runs being gathered by gs_extents. */
struct runs {
  gs_extent_fn fn;
  void *opaque;
  unsigned max, done;
  uint64_t start, len;  /* the run being gathered */
  uint32_t type;
  int err;              /* the callback's non-zero answer */
  bool stop;            /* max runs reported, or err */
};

static void
run_add (struct runs *rs, uint64_t offset, uint64_t len, uint32_t type)
{
  if (rs->stop)
    return;
  if (rs->len > 0 && rs->type == type && rs->start + rs->len == offset) {
    rs->len += len;
    return;
  }
  if (rs->len > 0) {
    rs->err = rs->fn (rs->opaque, rs->start, rs->len, rs->type);
    rs->len = 0;
    if (rs->err != 0 || ++rs->done == rs->max) {
      rs->stop = true;
      return;
    }
  }
  rs->start = offset;
  rs->len = len;
  rs->type = type;
}

static uint32_t
entry_extent_type (gs_entry e)
{
  if (entry_is_empty (e))
    return GS_EXTENT_HOLE | GS_EXTENT_ZERO;
  if (entry_is_zero (e))
    return GS_EXTENT_ZERO;
  return 0;
}

/* gs_extents - see device.h. */
int
gs_extents (struct gs_device *dev, uint32_t count, uint64_t offset,
            unsigned max_runs, gs_extent_fn fn, void *opaque)
{
  struct runs rs = { .fn = fn, .opaque = opaque, .max = max_runs ? max_runs : 1 };
  uint64_t end;
  int r = check_range (dev, count, offset);

  if (r < 0)
    return finish (dev, r);
  ctr_add (&dev->ctr.extents, 1);
  end = offset + count;
  while (offset < end && !rs.stop) {
    uint64_t cidx = offset / CLUSTER_BYTES, next;
    uint64_t cend = (cidx + 1) * CLUSTER_BYTES < end
      ? (cidx + 1) * CLUSTER_BYTES : end;
    struct gs_cluster *c = gs_table_get (&dev->table, cidx, false);

    if (!c || !__atomic_load_n (&c->entries, __ATOMIC_ACQUIRE)) {
      /* A hole up to the next cluster that holds anything. */
      uint64_t hole_end = end;
      gs_table_put (&dev->table, c);
      if (gs_table_next (&dev->table, cidx + 1,
                         (end + CLUSTER_BYTES - 1) / CLUSTER_BYTES, &next)
          && next * CLUSTER_BYTES < end)
        hole_end = next * CLUSTER_BYTES;
      run_add (&rs, offset, hole_end - offset, GS_EXTENT_HOLE | GS_EXTENT_ZERO);
      offset = hole_end;
      continue;
    }
    gs_cluster_lock (c);
    while (offset < cend && !rs.stop) {
      uint64_t slot_end = (offset / GS_SLOT_SIZE + 1) * GS_SLOT_SIZE;
      unsigned i = (unsigned) (offset / GS_SLOT_SIZE % GS_CLUSTER_SLOTS);
      if (slot_end > cend)
        slot_end = cend;
      run_add (&rs, offset, slot_end - offset,
               entry_extent_type (__gs_slot_entry_at (c, i)));
      offset = slot_end;
    }
    gs_cluster_unlock (c);
    gs_table_put (&dev->table, c);
  }
  if (!rs.stop && rs.len > 0)
    rs.err = fn (opaque, rs.start, rs.len, rs.type);
  return finish (dev, rs.err);
}
