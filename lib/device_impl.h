/* ghostswap: the device structure, shared by the engine's files. */
#ifndef GHOSTSWAP_DEVICE_IMPL_H
#define GHOSTSWAP_DEVICE_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backing_impl.h"
#include "codec.h"
#include "ghostswap/device.h"
#include "pattern.h"
#include "pool.h"
#include "table.h"

/* Counters, updated with relaxed atomics. */
struct gs_counters {
  uint64_t slots_same, slots_same_zero, slots_ram, slots_ram_raw;
  uint64_t slots_backing;
  uint64_t writeback_pages, writeback_batches, writeback_second_chance;
  uint64_t backing_read_errors, backing_write_errors;
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

  /* Backings by id.  A slot (or a reserved physical slot) pointing into a
   * backing keeps it from being removed, so code that found a backing
   * through an entry, under its cluster lock, may use it without locks.
   * backing_lock protects the table itself, and is held to pick a backing
   * and reserve slots in it (so removal cannot race a reservation). */
  pthread_mutex_t backing_lock;
  struct gs_backing *backing[GS_MAX_BACKINGS];
  unsigned next_backing;      /* round-robin start for writeback targets */
  unsigned backing_count;     /* atomic: attached backings */

  /* One writeback at a time (background or a writer short of RAM). */
  pthread_mutex_t writeback_lock;

  /* The drain thread: drain_lock protects drain_status and the flags. */
  pthread_mutex_t drain_lock;
  pthread_cond_t drain_cond;
  struct gs_drain_status drain_status;
  bool drain_thread_live, drain_cancel;
  pthread_t drain_thread;

  /* The background thread (compaction): bg_lock protects the flags. */
  pthread_mutex_t bg_lock;
  pthread_cond_t bg_cond;
  bool bg_running, bg_stop;
  bool bg_kicked;             /* atomic: a wake-up is pending */
  pthread_t bg_thread;
};

/* gs_over_high_watermark - is the pool above writeback-high?
 * Context: any.  Return: true or false.
 */
bool gs_over_high_watermark (struct gs_device *dev);

/* gs_background_kick - wake the background thread now.
 * Context: any.  Return: nothing.
 */
void gs_background_kick (struct gs_device *dev);

/* gs_backings_close - stop a drain and close every backing.
 * Context: no request may be running.  Return: nothing.
 */
void gs_backings_close (struct gs_device *dev);

/* gs_backing_get - the backing attached as @path, with a reference that
 * keeps it from being removed until gs_backing_put.
 * Context: takes backing_lock.  Return: the backing or NULL.
 */
struct gs_backing *gs_backing_get (struct gs_device *dev, const char *path);

/* gs_backing_put - drop a reference from gs_backing_get (NULL is fine).
 * Context: takes backing_lock.  Return: nothing.
 */
void gs_backing_put (struct gs_device *dev, struct gs_backing *b);

/* gs_backing_detach - remove @b as gs_backing_remove does (refused while
 * it holds pages, is being drained, or has references beyond the caller's
 * @own_refs; on success those are gone with it).
 * Context: takes backing_lock.  Return: 0 or -EBUSY with a message.
 */
int gs_backing_detach (struct gs_device *dev, struct gs_backing *b,
                       unsigned own_refs, char *err, size_t errlen);

/* gs_backing_any_room - is there a healthy backing to write pages to?
 * Context: any.  Return: true or false.
 */
bool gs_backing_any_room (struct gs_device *dev);

/* gs_backing_reserve - pick a backing (other than @exclude, or only @only
 * if it is not NULL) and reserve up to @n contiguous physical slots for
 * @owners.
 * Context: takes backing_lock.
 * Return: the backing and *@first, *@got (> 0), or NULL if none has room.
 */
struct gs_backing *gs_backing_reserve (struct gs_device *dev,
                                       const struct gs_backing *exclude,
                                       struct gs_backing *only,
                                       const uint64_t *owners, uint64_t n,
                                       uint64_t *first, uint64_t *got);

/* gs_writeback_run - write back cold pages: @pages of them (0: until the
 * pool is down to the low watermark); with @force, also pages whose
 * accessed bit is set (a writer short of RAM).
 * Context: takes writeback_lock, cluster locks; may sleep.
 * Return: pages written, or -ENOSPC if no backing has room.
 */
int64_t gs_writeback_run (struct gs_device *dev, uint64_t pages, bool force);

/* __gs_slot_replace - make entry @i of @c be @e, releasing what the old
 * entry held (a RAM object, a pattern reference or a physical slot) and
 * keeping the counters.  Fails only for a cluster with no entry array.
 * Context: caller holds c->lock.
 * Return: 0 or -ENOMEM.
 */
int __gs_slot_replace (struct gs_device *dev, struct gs_cluster *c,
                       unsigned i, gs_entry e);

/* gs_page_to_ram_object - store a page read from backing (@zstd: a frame
 * padded to 4 KiB, else raw) in the RAM pool for ghost slot @owner.
 * Context: caller holds the owner's cluster lock.
 * Return: 0 and *@e, or -ENOSPC / -ENOMEM / -EIO.
 */
int gs_page_to_ram_object (struct gs_device *dev, uint64_t owner,
                           const void *page, bool zstd, gs_entry *e);

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
