/* ghostswap: statistics kept by the engine. */
#ifndef GHOSTSWAP_STATS_H
#define GHOSTSWAP_STATS_H

#include <stddef.h>
#include <stdint.h>

/* The statistics, written once.  Each row
 *
 *   X (TYPE, FIELD, METRIC, KIND, LABEL, HELP)
 *
 * feeds the struct below, the text of gs_stats_format (lib/stats.c), the
 * control socket's JSON and the Prometheus metrics (service/):
 *
 *   TYPE    U (uint64_t) or D (double)
 *   FIELD   the struct member, the text's and the JSON's key
 *   METRIC  the metric's name after "ghostswap_" (a string); rows that
 *           share a METRIC are one family told apart by LABEL
 *   KIND    GAUGE, COUNTER, or NONE: not a metric of its own (derived
 *           from others, or exposed in another shape, as the backing
 *           errors are per backing)
 *   LABEL   "" or the row's label pair within its family, as `op="read"`
 *   HELP    the metric's help, one sentence (a family takes its first
 *           row's)
 *
 * Adding a statistic is one row here (in the group it belongs to) plus
 * the line of gs_get_stats (lib/stats.c) that fills it; nothing else
 * lists the fields (integrity_errors below is such a row).
 */
#define GS_STATS_FIELDS(X)                                                    \
  /* Geometry. */                                                             \
  X (U, size, "size_bytes", GAUGE, "",                                        \
     "Size of the device as its clients see it.")                             \
  X (U, slots, "", NONE, "", "Slots of the device: size / 4096.")             \
  X (U, ram_limit, "ram_limit_bytes", GAUGE, "", "Cap on the RAM pool.")      \
  /* Slots by state (empty = slots - same - ram - backing). */                \
  X (U, slots_empty, "slots", GAUGE, "state=\"empty\"",                       \
     "Slots of the device by tier.")                                          \
  X (U, slots_same, "slots", GAUGE, "state=\"same\"",                         \
     "Same-filled slots (inline or via the pattern table).")                  \
  X (U, slots_same_zero, "slots_same_zero", GAUGE, "",                        \
     "Same-filled slots whose pattern is zero.")                              \
  X (U, slots_ram, "slots", GAUGE, "state=\"ram\"",                           \
     "Slots held as objects in the RAM pool.")                                \
  X (U, slots_ram_raw, "slots_ram_raw", GAUGE, "",                            \
     "RAM slots stored uncompressed (incompressible pages).")                 \
  X (U, slots_backing, "slots", GAUGE, "state=\"backing\"",                   \
     "Slots held on backing devices.")                                        \
  /* Data. */                                                                 \
  X (U, stored_bytes, "stored_bytes", GAUGE, "",                              \
     "Bytes of the pages held in the RAM pool, uncompressed.")                \
  X (U, compressed_bytes, "compressed_bytes", GAUGE, "",                      \
     "Payload bytes of the objects in the RAM pool.")                         \
  X (U, pool_bytes, "pool_bytes", GAUGE, "",                                  \
     "Memory held by the RAM pool's segments.")                               \
  X (U, pool_live_bytes, "pool_live_bytes", GAUGE, "",                        \
     "Bytes of live objects in the RAM pool, headers included.")              \
  X (U, pool_garbage_bytes, "pool_garbage_bytes", GAUGE, "",                  \
     "Bytes of dead objects in the RAM pool, for compaction to reclaim.")     \
  X (D, pool_fragmentation, "pool_fragmentation_ratio", GAUGE, "",            \
     "Share of the RAM pool not held by live objects.")                       \
  X (D, compression_ratio, "compression_ratio", GAUGE, "",                    \
     "Stored bytes per compressed byte (the codec alone).")                   \
  X (D, memory_ratio, "memory_ratio", GAUGE, "",                              \
     "Bytes of non-empty slots in RAM per byte of memory_bytes.")             \
  /* Metadata: table nodes, cluster entry arrays, object headers (the     */  \
  /* reverse map), segment descriptors, the pattern table.                */  \
  X (U, metadata_bytes, "metadata_bytes", GAUGE, "",                          \
     "Memory held by the engine's metadata.")                                 \
  X (D, metadata_per_ram_slot, "metadata_bytes_per_ram_slot", GAUGE, "",      \
     "Metadata bytes per slot held in RAM (a share of the table included).")  \
  X (U, clusters, "clusters", GAUGE, "", "Clusters with an entry array.")     \
  X (U, rmap_bytes, "rmap_bytes", GAUGE, "",                                  \
     "Memory held by the backings' reverse maps.")                            \
  X (D, metadata_per_backing_slot, "metadata_bytes_per_backing_slot", GAUGE,  \
     "", "Metadata bytes per slot held on backing, reverse map included.")    \
  X (U, segments, "pool_segments", GAUGE, "", "Segments of the RAM pool.")    \
  /* Memory account: what the process holds for the engine, to compare   */  \
  /* with its RSS (issue 10).                                             */  \
  X (U, fixed_bytes, "fixed_bytes", GAUGE, "",                                \
     "Per-thread codec contexts and the device's own structures.")            \
  X (U, memory_bytes, "memory_bytes", GAUGE, "",                              \
     "Memory the engine holds: pool, table, patterns, reverse maps, fixed.")  \
  X (U, memory_peak_bytes, "", NONE, "",                                      \
     "Highest memory_bytes since start or gs_reset_peak (the service "        \
     "exports it as ghostswap_memory_peak_bytes).")                           \
  X (U, metadata_limit, "metadata_limit_bytes", GAUGE, "",                    \
     "Cap on the cluster table's metadata (0: none).")                        \
  X (U, compactions, "compactions_total", COUNTER, "",                        \
     "Compaction passes of the RAM pool that moved something.")               \
  X (U, objects_moved, "compaction_moved_objects_total", COUNTER, "",         \
     "Objects moved by compaction.")                                          \
  /* Recompression of cold pages (recompress-level). */                       \
  X (U, recompress_level, "recompress_level", GAUGE, "",                      \
     "zstd level of cold-page recompression (0: off).")                       \
  X (U, recompressed_pages, "recompressed_pages_total", COUNTER, "",          \
     "Cold RAM pages recompressed into smaller frames.")                      \
  X (U, recompress_kept_pages, "recompress_kept_pages_total", COUNTER, "",    \
     "Cold RAM pages recompression tried that did not come out smaller.")     \
  X (U, recompress_saved_bytes, "recompress_saved_bytes_total", COUNTER, "",  \
     "Bytes recompression took off the frames it replaced.")                  \
  X (D, recompress_cpu_seconds, "recompress_cpu_seconds_total", COUNTER, "",  \
     "CPU time spent recompressing.")                                         \
  /* Backing tier (per backing: struct gs_backing_info). */                   \
  X (U, backings, "backings", GAUGE, "", "Attached backings.")                \
  X (U, backing_slots, "", NONE, "",                                          \
     "Physical slots of every attached backing.")                             \
  X (U, backing_used, "", NONE, "",                                           \
     "Allocated physical slots of every attached backing.")                   \
  X (U, writeback_pages, "writeback_pages_total", COUNTER, "",                \
     "Pages moved from RAM to backing.")                                      \
  X (U, writeback_batches, "writeback_batches_total", COUNTER, "",            \
     "Batches of writeback.")                                                 \
  X (U, writeback_second_chance, "writeback_second_chances_total", COUNTER,   \
     "", "Recently used pages writeback passed over, keeping them in RAM.")   \
  X (U, backing_read_errors, "", NONE, "",                                    \
     "Failed backing reads, over every backing ever attached.")               \
  X (U, backing_write_errors, "", NONE, "",                                   \
     "Failed backing writes, over every backing ever attached.")              \
  X (U, integrity_errors, "integrity_errors_total", COUNTER, "",             \
     "Backing pages that failed their checksum (never returned as data).")    \
  /* Batched backing I/O, process-wide (every device, every thread):     */  \
  /* io_uring with a pread/pwrite fallback (see gs_backing_io_check).    */  \
  X (U, io_uring_rings, "io_uring_rings_total", COUNTER, "",                  \
     "io_uring rings set up for batched backing I/O.")                        \
  X (U, io_uring_failures, "io_uring_failures_total", COUNTER, "",            \
     "io_uring ring setups and submissions that failed.")                     \
  X (U, io_uring_fallback_batches, "io_uring_fallback_batches_total",         \
     COUNTER, "", "Batches of backing I/O done with pread/pwrite.")           \
  X (U, io_uring_last_error, "io_uring_last_errno", GAUGE, "",                \
     "errno of the last io_uring failure, 0 if none.")                        \
  /* Requests. */                                                             \
  X (U, reads, "requests_total", COUNTER, "op=\"read\"",                      \
     "Requests served, by type.")                                             \
  X (U, writes, "requests_total", COUNTER, "op=\"write\"", "")                \
  X (U, trims, "requests_total", COUNTER, "op=\"trim\"", "")                  \
  X (U, zeroes, "requests_total", COUNTER, "op=\"zero\"", "")                 \
  X (U, flushes, "requests_total", COUNTER, "op=\"flush\"", "")               \
  X (U, caches, "requests_total", COUNTER, "op=\"cache\"", "")                \
  X (U, extents, "requests_total", COUNTER, "op=\"extents\"", "")             \
  X (U, bytes_read, "read_bytes_total", COUNTER, "",                          \
     "Bytes read by clients.")                                                \
  X (U, bytes_written, "written_bytes_total", COUNTER, "",                    \
     "Bytes written by clients.")                                             \
  X (U, errors, "request_errors_total", COUNTER, "",                          \
     "Requests that failed.")                                                 \
  X (U, enospc, "enospc_errors_total", COUNTER, "",                           \
     "Requests that failed for want of space (RAM and backings full).")

/* The C type of a row's TYPE. */
#define GS_STATS_TYPE_U uint64_t
#define GS_STATS_TYPE_D double

struct gs_stats {
#define GS_STATS_MEMBER(type, field, metric, kind, label, help) \
  GS_STATS_TYPE_##type field;
  GS_STATS_FIELDS (GS_STATS_MEMBER)
#undef GS_STATS_MEMBER
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
