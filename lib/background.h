/* ghostswap: policy: when the movers run (lib/background.c). */
#ifndef GHOSTSWAP_BACKGROUND_H
#define GHOSTSWAP_BACKGROUND_H

#include <stdbool.h>

#include "core.h"

/* gs_background_kick - wake the background thread now.
 * Context: any.  Return: nothing.
 */
void gs_background_kick (struct gs_device *dev);

/* gs_background_stop - stop and join the background thread if it runs.
 * Context: may sleep.  Return: nothing.
 */
void gs_background_stop (struct gs_device *dev);

/* gs_reclaim_for_write - a writer found the pool full (attempt @tries,
 * from 0): write cold pages back (waiting for any writeback under way),
 * or else compact the pool if it holds garbage, or else, while a backing
 * has room, wait a little for others' reclaim (GS_RECLAIM_TRIES times in
 * all), or while a backing cannot be reached for now (a remote
 * reconnecting) for less than remote-timeout, wait for it (as long).
 * Context: takes writeback and cluster locks; may sleep.
 * Return: true if the write is worth trying again, false when nothing can
 * free room or the waits are over (the caller makes one last try and
 * gives up).
 */
bool gs_reclaim_for_write (struct gs_device *dev, unsigned tries);

/* gs_after_write - kick the background thread when a write took the pool
 * past writeback-high.
 * Context: any.  Return: nothing.
 */
void gs_after_write (struct gs_device *dev);

/* How often a writer short of RAM reclaims and tries again: with the
 * sleeps of gs_reclaim_for_write, about 3.5 s in all. */
#define GS_RECLAIM_TRIES 40

#endif /* GHOSTSWAP_BACKGROUND_H */
