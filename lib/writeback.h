/* ghostswap: writeback, the mover from RAM to backing (lib/writeback.c). */
#ifndef GHOSTSWAP_WRITEBACK_H
#define GHOSTSWAP_WRITEBACK_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"

/* gs_writeback_run - write back cold pages: @pages of them (0: until the
 * pool is down to the low watermark); with @force, also pages whose
 * accessed bit is set (a writer short of RAM).
 * Context: takes writeback_lock, cluster locks; may sleep.
 * Return: pages written, or -ENOSPC if no backing has room, -ENOMEM.
 */
int64_t gs_writeback_run (struct gs_device *dev, uint64_t pages, bool force);

/* gs_writeback_free - free writeback's batch buffer.
 * Context: no writeback running.  Return: nothing.
 */
void gs_writeback_free (struct gs_device *dev);

#endif /* GHOSTSWAP_WRITEBACK_H */
