/* ghostswap: the device's state, shared by the engine's layers.
 *
 * This header holds data only: which layer owns which part is said at
 * each field, and each layer's functions are declared in that layer's own
 * header.  The layers, bottom-up (a file calls only into layers below it):
 *
 *   entry.h table pool codec pattern backing uring   storage primitives
 *   backing_file backing_nbd                          kinds of backing
 *   slot                                              the slot state machine
 *   backing_list                                      the device's backings
 *   writeback compact drain recompress                the movers
 *   background                                        policy: when movers run
 *   device                                            requests, create/destroy
 *
 * Lock order: drain_lock -> writeback_lock -> cluster lock -> backing_lock
 * -> a backing's lock; cluster lock -> pool stream lock -> pool lock;
 * recompression lock -> cluster lock (recompress.c); cluster lock,
 * writeback_lock, a backing's scrub_lock -> a remote backing's connection
 * lock -> its rlock (lib/backing_nbd.c; never with a backing's lock).
 * bg_lock and recompression's thread lock are taken alone.
 */
#ifndef GHOSTSWAP_CORE_H
#define GHOSTSWAP_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backing_impl.h"
#include "codec.h"
#include "ghostswap/device.h"
#include "pattern.h"
#include "pool.h"
#include "table.h"

/* Counters, updated with relaxed atomics (gs_ctr_add). */
struct gs_counters {
  uint64_t slots_same, slots_same_zero, slots_ram, slots_ram_raw;
  uint64_t slots_backing;
  uint64_t writeback_pages, writeback_batches, writeback_second_chance;
  uint64_t backing_read_errors, backing_write_errors, integrity_errors;
  uint64_t reads, writes, trims, zeroes, flushes, caches, extents;
  uint64_t bytes_read, bytes_written;
  uint64_t errors, enospc;
  uint64_t recompress_pages, recompress_kept, recompress_saved_bytes;
  uint64_t recompress_cpu_ns;
};

struct gs_device {
  struct gs_config cfg;       /* ram_limit may change (atomic) */
  uint64_t nslots;
  struct gs_table table;
  struct gs_pool *pool;
  struct gs_codec codec;
  struct gs_patterns patterns;
  struct gs_counters ctr;

  /* Integrity reports (slot): called once per bad page; may be NULL. */
  gs_integrity_fn integrity_fn;
  void *integrity_opaque;

  /* Backings by id (backing_list).  A slot (or a reserved physical slot)
   * pointing into a backing keeps it from being removed, so code that
   * found a backing through an entry, under its cluster lock, may use it
   * without locks.  backing_lock protects the table itself, and is held to
   * pick a backing and reserve slots in it (so removal cannot race a
   * reservation). */
  pthread_mutex_t backing_lock;
  pthread_cond_t backing_cond;  /* a backing's scrub_refs fell to 0 */
  struct gs_backing *backing[GS_MAX_BACKINGS];
  unsigned next_backing;      /* round-robin start for writeback targets */
  unsigned backing_count;     /* atomic: attached backings */

  /* One writeback at a time (background or a writer short of RAM);
   * writeback_lock also protects wb, writeback's batch, made on first use
   * and kept, so that reclaim allocates nothing once warm. */
  pthread_mutex_t writeback_lock;
  struct gs_wb_batch *wb;

  /* The drain thread (drain): drain_lock protects drain_status and the
   * flags. */
  pthread_mutex_t drain_lock;
  pthread_cond_t drain_cond;
  struct gs_drain_status drain_status;
  bool drain_thread_live, drain_cancel;
  pthread_t drain_thread;

  /* Recompression of cold pages (recompress): NULL when
   * recompress-level is 0. */
  struct gs_recompress *rc;

  /* The background thread (background): bg_lock protects the flags. */
  pthread_mutex_t bg_lock;
  pthread_cond_t bg_cond;
  bool bg_running, bg_stop;
  bool bg_kicked;             /* atomic: a wake-up is pending */
  pthread_t bg_thread;
};

static inline void
gs_ctr_add (uint64_t *counter, int64_t delta)
{
  __atomic_add_fetch (counter, (uint64_t) delta, __ATOMIC_RELAXED);
}

/* The pool's watermarks, in one place: writeback starts above
 * writeback-high and stops at writeback-low; a drain moves pages into RAM
 * only below writeback-high. */
static inline bool
gs_pool_above_high (struct gs_device *dev)
{
  return gs_pool_bytes (dev->pool)
    > gs_pool_limit (dev->pool) / 100 * dev->cfg.writeback_high;
}

static inline bool
gs_pool_at_low (struct gs_device *dev)
{
  return gs_pool_bytes (dev->pool)
    <= gs_pool_limit (dev->pool) / 100 * dev->cfg.writeback_low;
}

#endif /* GHOSTSWAP_CORE_H */
