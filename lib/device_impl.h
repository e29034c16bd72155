/* ghostswap: the device structure, shared by the engine's files. */
#ifndef GHOSTSWAP_DEVICE_IMPL_H
#define GHOSTSWAP_DEVICE_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "codec.h"
#include "ghostswap/device.h"
#include "pattern.h"
#include "pool.h"
#include "table.h"

/* Counters, updated with relaxed atomics. */
struct gs_counters {
  uint64_t slots_same, slots_same_zero, slots_ram, slots_ram_raw;
  uint64_t reads, writes, trims, zeroes, flushes, caches, extents;
  uint64_t bytes_read, bytes_written;
  uint64_t errors, enospc;
};

struct gs_device {
  struct gs_config cfg;       /* ram_limit may change (atomic) */
  uint64_t nslots;
  struct gs_table table;
  struct gs_pool *pool;
  struct gs_codec codec;
  struct gs_patterns patterns;
  struct gs_counters ctr;

  /* The background thread (compaction): bg_lock protects the flags. */
  pthread_mutex_t bg_lock;
  pthread_cond_t bg_cond;
  bool bg_running, bg_stop;
  pthread_t bg_thread;
};

/* gs_background_stop - stop and join the background thread if it runs.
 * Context: may sleep.  Return: nothing.
 */
void gs_background_stop (struct gs_device *dev);

/* gs_compact_segments - empty the pool segments whose live share is below
 * @max_live_percent (100: every segment with garbage), relocating their
 * live objects through the owners' entries.
 * Context: takes cluster and pool locks; may sleep.
 * Return: the number of objects moved.
 */
uint64_t gs_compact_segments (struct gs_device *dev, unsigned max_live_percent);

/* gs_compact_if_fragmented - compact when the garbage in the pool passes
 * the configured threshold.
 * Context: takes cluster and pool locks; may sleep.
 * Return: the number of objects moved.
 */
uint64_t gs_compact_if_fragmented (struct gs_device *dev);

#endif /* GHOSTSWAP_DEVICE_IMPL_H */
