/* ghostswap: statistics: a snapshot, and its text form. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "core.h"
#include "recompress.h"
#include "uring.h"

static uint64_t
get (const uint64_t *counter)
{
  return __atomic_load_n (counter, __ATOMIC_RELAXED);
}

static void
backing_stats (struct gs_device *dev, struct gs_stats *st)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&dev->backing_lock);
  unsigned i;

  for (i = 0; i < GS_MAX_BACKINGS; i++) {
    struct gs_backing *b = dev->backing[i];
    if (!b)
      continue;
    st->backings++;
    st->backing_slots += b->nslots;
    st->backing_used += __atomic_load_n (&b->used, __ATOMIC_RELAXED);
  }
  st->rmap_bytes = st->backing_slots * (GS_RMAP_BYTES + GS_CRC_BYTES);
  st->metadata_bytes += st->rmap_bytes;
}

/* gs_get_stats - see device.h. */
void
gs_get_stats (struct gs_device *dev, struct gs_stats *st)
{
  struct gs_pool_stats ps;
  uint64_t used_slots, segment_desc, table_bytes, ram_bytes, codec_bytes;

  memset (st, 0, sizeof *st);
  gs_pool_get_stats (dev->pool, &ps);

  st->size = dev->cfg.size;
  st->slots = dev->nslots;
  st->ram_limit = __atomic_load_n (&dev->cfg.ram_limit, __ATOMIC_RELAXED);

  st->slots_same = get (&dev->ctr.slots_same);
  st->slots_same_zero = get (&dev->ctr.slots_same_zero);
  st->slots_ram = get (&dev->ctr.slots_ram);
  st->slots_ram_raw = get (&dev->ctr.slots_ram_raw);
  st->slots_backing = get (&dev->ctr.slots_backing);
  used_slots = st->slots_same + st->slots_ram + st->slots_backing;
  st->slots_empty = st->slots - used_slots;

  st->stored_bytes = st->slots_ram * GS_SLOT_SIZE;
  st->compressed_bytes = ps.live_bytes - ps.header_bytes;
  st->pool_bytes = ps.segment_bytes;
  st->pool_live_bytes = ps.live_bytes;
  st->pool_garbage_bytes = ps.garbage_bytes;
  st->segments = ps.segments;
  st->compactions = ps.compactions;
  st->objects_moved = ps.moved;
  st->recompress_level = (uint64_t) dev->cfg.recompress_level;
  st->recompressed_pages = get (&dev->ctr.recompress_pages);
  st->recompress_kept_pages = get (&dev->ctr.recompress_kept);
  st->recompress_saved_bytes = get (&dev->ctr.recompress_saved_bytes);
  st->recompress_cpu_seconds = (double) get (&dev->ctr.recompress_cpu_ns) / 1e9;

  /* Metadata: what is not page data.  Segment descriptors are the part of
   * each segment that is not object space. */
  segment_desc = ps.segment_bytes - ps.segments * GS_SEGMENT_DATA;
  st->clusters = __atomic_load_n (&dev->table.clusters_live, __ATOMIC_RELAXED);
  /* The table (nodes, cluster records, entry arrays) serves every used
   * slot; object headers and segment descriptors only RAM slots; the
   * reverse maps only backing slots.  Each per-slot figure is its own
   * part plus an equal share of the table. */
  table_bytes = __atomic_load_n (&dev->table.node_bytes, __ATOMIC_RELAXED)
    + st->clusters * GS_CLUSTER_SLOTS * sizeof (gs_entry);
  ram_bytes = ps.header_bytes + segment_desc
    + gs_patterns_bytes (&dev->patterns);
  st->metadata_bytes = table_bytes + ram_bytes;

  backing_stats (dev, st);
  if (st->slots_backing > 0)
    st->metadata_per_backing_slot =
      (double) table_bytes / (double) used_slots
      + (double) st->rmap_bytes / (double) st->slots_backing;
  st->writeback_pages = get (&dev->ctr.writeback_pages);
  st->writeback_batches = get (&dev->ctr.writeback_batches);
  st->writeback_second_chance = get (&dev->ctr.writeback_second_chance);
  st->backing_read_errors = get (&dev->ctr.backing_read_errors);
  st->backing_write_errors = get (&dev->ctr.backing_write_errors);
  st->integrity_errors = get (&dev->ctr.integrity_errors);
  {
    struct gs_uring_status us;
    gs_uring_get_status (&us);
    st->io_uring_rings = us.rings;
    st->io_uring_failures = us.failures;
    st->io_uring_fallback_batches = us.fallback_batches;
    st->io_uring_last_error = (uint64_t) us.last_error;
  }

  /* The memory account (memacct.h) holds pool segments, table blocks and
   * codec contexts; the rest is added at its size now. */
  codec_bytes = gs_codec_bytes (&dev->codec) + gs_recompress_codec_bytes (dev);
  st->fixed_bytes = codec_bytes + sizeof *dev + gs_recompress_fixed_bytes (dev)
    + gs_pool_fixed_bytes (dev->pool);
  st->memory_bytes = st->pool_bytes + gs_table_metadata_bytes (&dev->table)
    + gs_patterns_bytes (&dev->patterns) + st->rmap_bytes + st->fixed_bytes;
  st->memory_peak_bytes =
    __atomic_load_n (&dev->table.mem.peak, __ATOMIC_RELAXED)
    + gs_patterns_bytes (&dev->patterns) + st->rmap_bytes
    + st->fixed_bytes - codec_bytes;
  if (st->memory_peak_bytes < st->memory_bytes)
    st->memory_peak_bytes = st->memory_bytes;
  st->metadata_limit = __atomic_load_n (&dev->table.limit, __ATOMIC_RELAXED);

  if (st->pool_bytes > 0)
    st->pool_fragmentation =
      1.0 - (double) st->pool_live_bytes / (double) st->pool_bytes;
  if (st->compressed_bytes > 0)
    st->compression_ratio =
      (double) st->stored_bytes / (double) st->compressed_bytes;
  if (used_slots > st->slots_backing)
    st->memory_ratio = (double) ((used_slots - st->slots_backing) * GS_SLOT_SIZE)
      / (double) (st->memory_bytes - st->rmap_bytes);
  if (st->slots_ram > 0)
    st->metadata_per_ram_slot = (double) table_bytes / (double) used_slots
      + (double) ram_bytes / (double) st->slots_ram;

  st->reads = get (&dev->ctr.reads);
  st->writes = get (&dev->ctr.writes);
  st->trims = get (&dev->ctr.trims);
  st->zeroes = get (&dev->ctr.zeroes);
  st->flushes = get (&dev->ctr.flushes);
  st->caches = get (&dev->ctr.caches);
  st->extents = get (&dev->ctr.extents);
  st->bytes_read = get (&dev->ctr.bytes_read);
  st->bytes_written = get (&dev->ctr.bytes_written);
  st->errors = get (&dev->ctr.errors);
  st->enospc = get (&dev->ctr.enospc);
}

/* gs_metadata_full - see device.h.  A write in a far corner of the
 * largest device needs at most an entry array, a leaf and four nodes. */
bool
gs_metadata_full (struct gs_device *dev)
{
  uint64_t limit = __atomic_load_n (&dev->table.limit, __ATOMIC_RELAXED);

  return limit != 0
    && gs_table_metadata_bytes (&dev->table) + 6 * GS_TABLE_BLOCK > limit;
}

/* gs_reset_peak - see device.h. */
void
gs_reset_peak (struct gs_device *dev)
{
  gs_mem_reset_peak (&dev->table.mem);
}

/* gs_stats_format - see stats.h. */
int
gs_stats_format (const struct gs_stats *st, char *buf, size_t buflen)
{
  size_t used = 0;
  int n;

  /* Each line at the end of what is written so far; past @buflen only
   * counted, as snprintf does. */
#define GS_STATS_FMT_U PRIu64
#define GS_STATS_FMT_D ".3f"
#define GS_STATS_LINE(type, field, metric, kind, label, help)           \
  n = snprintf (used < buflen ? buf + used : NULL,                      \
                used < buflen ? buflen - used : 0,                      \
                #field " %" GS_STATS_FMT_##type "\n", st->field);       \
  if (n < 0)                                                            \
    return n;                                                           \
  used += (size_t) n;
  GS_STATS_FIELDS (GS_STATS_LINE)
#undef GS_STATS_LINE
#undef GS_STATS_FMT_U
#undef GS_STATS_FMT_D
  if (buflen > 0 && used == 0)
    buf[0] = '\0';
  return (int) used;
}
