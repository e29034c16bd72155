/* ghostswap: compaction: live objects out of sparse pool segments, each
 * moved in O(1) through the owner named in its header.  The segment being
 * emptied is claimed, so the entries that point into it cannot repeat
 * while it is walked (slot.h's movers' rule). */
#include "compact.h"
#include "slot.h"

/* Move one object if its owner's entry still points at it. */
static void
relocate (void *opaque, uint64_t owner, gs_entry entry)
{
  struct gs_device *dev = opaque;
  struct gs_slot s;
  gs_entry moved;

  if (gs_slot_lock_expect (dev, owner, entry, &s) < 0)
    return;                     /* dead object */
  if (gs_pool_move (dev->pool, __gs_slot_entry (&s), &moved) == 0)
    __gs_slot_moved (&s, moved);
  gs_slot_unlock (&s);
}

/* gs_compact_segments - see compact.h. */
uint64_t
gs_compact_segments (struct gs_device *dev, unsigned max_live_percent)
{
  return gs_pool_compact (dev->pool, max_live_percent, relocate, dev);
}

/* gs_compact - see device.h. */
uint64_t
gs_compact (struct gs_device *dev)
{
  return gs_compact_segments (dev, 100);
}
