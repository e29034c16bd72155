/* ghostswap: statistics kept by the engine. */
#ifndef GHOSTSWAP_STATS_H
#define GHOSTSWAP_STATS_H

#include <stddef.h>
#include <stdint.h>

struct gs_stats {
  /* Geometry. */
  uint64_t size;                /* device size in bytes */
  uint64_t slots;               /* size / 4096 */
  uint64_t ram_limit;           /* bytes */

  /* Slots by state (empty = slots - same - ram - backing). */
  uint64_t slots_empty;
  uint64_t slots_same;          /* same-filled, inline or via the pattern table */
  uint64_t slots_same_zero;     /* of which the pattern is zero */
  uint64_t slots_ram;           /* compressed or raw objects in the RAM pool */
  uint64_t slots_ram_raw;       /* of which stored raw (incompressible) */
  uint64_t slots_backing;       /* pages on backing devices */

  /* Data. */
  uint64_t stored_bytes;        /* logical bytes held in RAM objects: slots_ram * 4096 */
  uint64_t compressed_bytes;    /* exact object payload bytes (zstd frames, raw pages) */
  uint64_t pool_bytes;          /* memory held by the RAM pool's segments */
  uint64_t pool_live_bytes;     /* of which live objects, headers included */
  uint64_t pool_garbage_bytes;  /* dead objects in sealed segments, for compaction */
  double pool_fragmentation;    /* 1 - pool_live_bytes / pool_bytes (0 when empty) */
  double compression_ratio;     /* stored_bytes / compressed_bytes (the codec alone) */
  double memory_ratio;          /* bytes of non-empty slots not on backing /
                                 * (memory_bytes - rmap_bytes): what RAM
                                 * really buys */

  /* Metadata: table nodes, cluster entry arrays, object headers (the
   * reverse map), segment descriptors, the pattern table. */
  uint64_t metadata_bytes;
  double metadata_per_ram_slot; /* an equal share of the table per used slot,
                                 * plus headers, segment descriptors and
                                 * patterns per RAM slot (0 when none) */
  uint64_t clusters;            /* clusters with an entry array */
  uint64_t rmap_bytes;          /* backing reverse maps (7 bytes per physical slot) */
  double metadata_per_backing_slot; /* an equal share of the table per used
                                     * slot, plus rmap_bytes / slots_backing */
  uint64_t segments;            /* pool segments */
  uint64_t compactions;         /* compaction passes that moved something */
  uint64_t objects_moved;       /* objects relocated by compaction */

  /* Backing tier. */
  uint64_t backings;            /* attached */
  uint64_t backing_slots;       /* physical slots in all of them */
  uint64_t backing_used;        /* allocated physical slots */
  uint64_t writeback_pages;     /* pages moved RAM -> backing */
  uint64_t writeback_batches;
  uint64_t writeback_second_chance;  /* young pages kept in RAM */
  uint64_t backing_read_errors, backing_write_errors;

  /* Memory account: what the process holds for the engine, to compare
   * with its RSS. */
  uint64_t fixed_bytes;         /* per-thread codec contexts (made on a
                                 * thread's first use, unmapped at its exit)
                                 * and the device's own structures */
  uint64_t memory_bytes;        /* pool_bytes + table blocks (nodes, leaves,
                                 * entry arrays) + pattern table + reverse
                                 * maps + fixed_bytes */
  uint64_t memory_peak_bytes;   /* highest memory_bytes since the device was
                                 * made or gs_reset_peak (zram's mem_used_max);
                                 * the pattern table and reverse maps count
                                 * at their size now */
  uint64_t metadata_limit;      /* cap on table blocks, 0 = none */

  /* Request counters. */
  uint64_t reads, writes, trims, zeroes, flushes, caches, extents;
  uint64_t bytes_read, bytes_written;
  uint64_t errors;              /* requests that returned an error */
  uint64_t enospc;              /* of which for want of RAM */
};

/* gs_stats_format - write @st as "key value" lines, one per figure, in a
 * fixed order (the format the plugin logs and the control socket builds
 * on).
 *
 * Context: any.
 * Return: the number of bytes needed (as snprintf).
 */
int gs_stats_format (const struct gs_stats *st, char *buf, size_t buflen);

#endif /* GHOSTSWAP_STATS_H */
