/* ghostswap: the device's backings: find, reference, pick and reserve
 * (lib/backing_list.c); above the slot module, below the movers. */
#ifndef GHOSTSWAP_BACKING_LIST_H
#define GHOSTSWAP_BACKING_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

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

/* gs_backing_any_offline - is there a healthy backing that cannot be
 * reached for now (a remote reconnecting), for less than remote-timeout,
 * but would take pages?
 * Context: any.  Return: true or false.
 */
bool gs_backing_any_offline (struct gs_device *dev);

/* gs_backing_reserve - pick a backing (other than @exclude, or only @only
 * if it is not NULL) and reserve up to @n contiguous physical slots for
 * @owners, whose stored forms have checksums @crcs and forms @zstd.
 * Context: takes backing_lock.
 * Return: the backing and *@first, *@got (> 0), or NULL if none has room.
 */
struct gs_backing *gs_backing_reserve (struct gs_device *dev,
                                       const struct gs_backing *exclude,
                                       struct gs_backing *only,
                                       const uint64_t *owners,
                                       const uint32_t *crcs, const bool *zstd,
                                       uint64_t n, uint64_t *first,
                                       uint64_t *got);

/* gs_backings_scrub - wipe the slots freed on every backing since the
 * last scrub (gs_backing_scrub), so that they can be reused.
 * Context: takes backing_lock (not across the I/O); may sleep.
 * Return: slots made free.
 */
uint64_t gs_backings_scrub (struct gs_device *dev);

/* gs_backings_close_all - close every backing.
 * Context: no request, mover or drain may be running.  Return: nothing.
 */
void gs_backings_close_all (struct gs_device *dev);

#endif /* GHOSTSWAP_BACKING_LIST_H */
