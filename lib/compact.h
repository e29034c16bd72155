/* ghostswap: compaction, the mover inside the RAM pool (lib/compact.c). */
#ifndef GHOSTSWAP_COMPACT_H
#define GHOSTSWAP_COMPACT_H

#include <stdint.h>

#include "core.h"

/* gs_compact_segments - empty the pool segments whose live share is below
 * @max_live_percent (100: every segment with garbage), relocating their
 * live objects through the owners' entries.
 * Context: takes cluster and pool locks; may sleep.
 * Return: the number of objects moved.
 */
uint64_t gs_compact_segments (struct gs_device *dev, unsigned max_live_percent);

#endif /* GHOSTSWAP_COMPACT_H */
