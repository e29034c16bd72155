/* ghostswap: the ghost swap device engine.
 *
 * A device is a thin-provisioned array of 4 KiB slots.  Every request may
 * start at any byte offset and have any length; the engine does the
 * read-modify-write of partial slots.  All functions are safe to call from
 * many threads at once: locking is per cluster of 512 slots.
 *
 * Errors are returned as negative errno values; the engine never logs.
 */
#ifndef GHOSTSWAP_DEVICE_H
#define GHOSTSWAP_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ghostswap/config.h"
#include "ghostswap/stats.h"

struct gs_device;

/* Flags for gs_zero. */
#define GS_ZERO_MAY_TRIM  0x1u   /* the range may become a hole */

/* Extent types reported by gs_extents (same bits as NBD's). */
#define GS_EXTENT_HOLE    0x1u
#define GS_EXTENT_ZERO    0x2u

/* gs_device_create - make a device as @cfg describes.  No cluster is
 * allocated until the first write.
 *
 * Context: may sleep (allocates).
 * Return: 0 and *@devp set, or -ENOMEM / -EINVAL.
 */
int gs_device_create (const struct gs_config *cfg, struct gs_device **devp);

/* gs_device_destroy - stop background work and free everything.
 *
 * Context: no other call on @dev may be running or follow.
 * Return: nothing.
 */
void gs_device_destroy (struct gs_device *dev);

/* gs_device_start - start the background thread (writeback, compaction)
 * and, with recompress-level set, the recompression thread.  Front
 * ends call it after any fork (nbdkit's .after_fork).
 *
 * Context: may sleep.
 * Return: 0 or -errno from pthread_create.
 */
int gs_device_start (struct gs_device *dev);

/* gs_device_size - the device size in bytes.
 * Context: any.  Return: the size.
 */
uint64_t gs_device_size (const struct gs_device *dev);

/* gs_pread - read @count bytes at @offset into @buf.
 *
 * Context: takes cluster locks; may sleep.
 * Return: 0, -EINVAL outside the device, -EIO on corrupt stored data.
 */
int gs_pread (struct gs_device *dev, void *buf, uint32_t count, uint64_t offset);

/* gs_pwrite - write @count bytes from @buf at @offset.
 *
 * Each slot is replaced atomically: a concurrent reader sees the old or the
 * new contents of a slot, never a mix.  On error, slots before the failing
 * one hold the new data and the others keep the old; nothing outside the
 * range changes.
 *
 * Context: takes cluster locks; may sleep.
 * Return: 0, -EINVAL outside the device, -ENOSPC when the RAM pool has
 * reached ram-limit, -ENOMEM.
 */
int gs_pwrite (struct gs_device *dev, const void *buf, uint32_t count,
               uint64_t offset);

/* gs_zero - make @count bytes at @offset read as zeroes.  Whole slots cost
 * no data storage either way; with GS_ZERO_MAY_TRIM they become holes
 * (empty), without it they become allocated zero (same-filled) slots.
 *
 * Context: takes cluster locks; may sleep.
 * Return: 0, -EINVAL outside the device, -ENOSPC/-ENOMEM (only possible
 * for the partial slots at either end).
 */
int gs_zero (struct gs_device *dev, uint32_t count, uint64_t offset,
             unsigned flags);

/* gs_trim - discard @count bytes at @offset: whole slots become empty and
 * their storage is freed; the partial slots at either end are zeroed in
 * that range.  Reads of a trimmed range return zeroes.
 *
 * Context: takes cluster locks; may sleep.
 * Return: as gs_zero.
 */
int gs_trim (struct gs_device *dev, uint32_t count, uint64_t offset);

/* gs_flush - make completed writes durable (nothing to do for RAM).
 * Context: may sleep.  Return: 0 or -errno.
 */
int gs_flush (struct gs_device *dev);

/* gs_cache - hint that @count bytes at @offset will be read soon.  Every
 * page is in RAM, so there is nothing to do yet beyond checking the range.
 * Context: any.  Return: 0 or -EINVAL outside the device.
 */
int gs_cache (struct gs_device *dev, uint32_t count, uint64_t offset);

/* Called by gs_extents for each run, in order, with no gaps.
 * Return 0 to go on, non-zero to stop (gs_extents then returns it). */
typedef int (*gs_extent_fn) (void *opaque, uint64_t offset, uint64_t length,
                             uint32_t type);

/* gs_extents - describe @count bytes at @offset as runs of holes
 * (GS_EXTENT_HOLE | GS_EXTENT_ZERO: empty slots), zeroes (GS_EXTENT_ZERO:
 * same-filled zero slots) and data (0).  Runs of absent clusters are
 * skipped without visiting their slots.  Adjacent runs of one type are
 * merged.  At most @max_runs runs are reported (at least one); the last may
 * end before offset + count.
 *
 * Context: takes cluster locks; may sleep.
 * Return: 0, -EINVAL outside the device, or the callback's non-zero value.
 */
int gs_extents (struct gs_device *dev, uint32_t count, uint64_t offset,
                unsigned max_runs, gs_extent_fn fn, void *opaque);

/* gs_get_stats - a snapshot of the device's statistics.
 * Context: takes pool locks briefly; may sleep.  Return: nothing.
 */
void gs_get_stats (struct gs_device *dev, struct gs_stats *st);

/* gs_metadata_full - is the slot table at metadata-limit (too close to
 * it for a write that needs a new entry array, leaf and nodes)?  Front
 * ends use it to say which limit an ENOSPC came from.
 * Context: any.  Return: true or false.
 */
bool gs_metadata_full (struct gs_device *dev);

/* gs_reset_peak - restart memory_peak_bytes from memory_bytes now.
 * Context: any.  Return: nothing.
 */
void gs_reset_peak (struct gs_device *dev);

/* gs_recompress - recompress now, at recompress-level, every RAM page
 * stored before this call and not recompressed yet, whatever its age and
 * without the CPU bound (the background thread does the same for cold
 * pages only, within recompress-cpu).  A page that does not come out
 * smaller is kept as it is.
 * Context: takes cluster, stream and pool locks; may sleep; uses CPU for
 * about 1 ms a page at level 19.
 * Return: the number of pages made smaller (a pool full meanwhile ends
 * the pass early), -EINVAL when recompress-level is 0, -ENOMEM.
 */
int64_t gs_recompress (struct gs_device *dev);

/* gs_compact - compact the RAM pool now, whatever its fragmentation.
 * Context: takes cluster and pool locks; may sleep.
 * Return: the number of objects moved.
 */
uint64_t gs_compact (struct gs_device *dev);

/* gs_set_ram_limit - change the RAM tier's cap.  Lowering it below what is
 * stored only stops new RAM allocations; nothing is dropped.
 * Context: any.  Return: 0 or -EINVAL below GS_MIN_RAM_LIMIT.
 */
int gs_set_ram_limit (struct gs_device *dev, uint64_t bytes);

/* Called once for each page found corrupt on a backing (its checksum
 * does not match): the ghost slot, the backing's path and the physical
 * slot.  The request (or drain) that met it fails with -EIO, and the page
 * is never returned or moved until a write or trim replaces it. */
typedef void (*gs_integrity_fn) (void *opaque, uint64_t slot,
                                 const char *backing, uint64_t pslot);

/* gs_device_set_integrity_report - have @fn called (from the thread that
 * met the error, with no engine lock held beyond the slot's cluster lock:
 * it must not call back into the engine) for each corrupt page.
 * Context: before requests start.  Return: nothing.
 */
void gs_device_set_integrity_report (struct gs_device *dev, gs_integrity_fn fn,
                                     void *opaque);

#endif /* GHOSTSWAP_DEVICE_H */
