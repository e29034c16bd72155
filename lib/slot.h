/* ghostswap: the slot state machine.
 *
 * Every read and every store of a slot entry goes through this module:
 * it finds and locks the slot's cluster, replaces entries (releasing what
 * the old one held and keeping the counters), commits a mover's result
 * against the entry it expected, and sets and clears the A (accessed) and
 * W (writeback) bits.  Functions named __gs_slot_* expect the caller to
 * hold the slot's cluster lock (asserted in debug builds).
 *
 * The states of one entry (entry.h has the bit layout) and who may move
 * it between them, always under the slot's cluster lock:
 *
 *                    client write / trim / zero (__gs_slot_store)
 *        +------------------------------------------------------------+
 *        v                                                            |
 *   EMPTY <----> SAME <----> RAM ----mark (writeback)----> RAM+W      |
 *        any of these three, from any state, by a client  |  |        |
 *                             ^  ^                        |  | commit |
 *                 move (pool: |  | clear W (the write     |  v        |
 *        compaction, second   |  +--- failed) -------------+ BACKING -+
 *        chance: __gs_slot_   |                              |  ^
 *        moved; recompress:   |                              |  |
 *        __gs_slot_recompr.)  +--- commit (drain, migrate,   |  | commit (drain /
 *                                  relocate: to RAM) --------+  | migrate / relocate
 *                                                               +-- to another backing)
 *
 *   EMPTY    the all-zero word; never written, trimmed or zeroed with trim
 *   SAME     one 8-byte word repeated (inline, or a pattern-table index)
 *   RAM      an object in the pool; its header names this slot (rmap)
 *   RAM+W    the same, copied into a writeback batch being written
 *   BACKING  one LIVE physical slot of a backing (backing_impl.h's rmap)
 *   A bit    on any non-empty state: read since writeback last looked;
 *            set by reads, cleared by writeback's second chance
 *
 * The movers' rule.  A mover (writeback, drain, migrate, relocate,
 * compaction, recompression) that copied a page commits it only through
 * gs_slot_lock_expect + __gs_slot_commit, that is only if the entry is
 * still exactly the one it copied from (but for A).  That is sufficient
 * because an entry's bits cannot repeat while a mover holds its copy:
 *   - RAM: a segment is claimed by the mover walking it (gs_pool_take)
 *     and is not freed, so its address is not reused, until
 *     gs_pool_give_back; objects are only appended, so (segment, offset)
 *     names one object for the segment's whole life.
 *   - BACKING: a physical slot is LIVE only once its write completed and
 *     the entry pointing at it was stored (gs_backing_commit_slot, called
 *     here); a RESERVED slot is invisible to scans.  A drain stops
 *     allocations on its source and waits until no reservation is left
 *     there before it scans (gs_backing_set_draining), so no slot of the
 *     source is reused while it runs; relocate pins the slot it reads
 *     (gs_backing_pin), so it is not reallocated until unpinned.
 * And the bytes are right: each page read from a backing is checked
 * against the crc32c taken when its stored form was made.
 */
#ifndef GHOSTSWAP_SLOT_H
#define GHOSTSWAP_SLOT_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"

/* One slot: its cluster and index in it. */
struct gs_slot {
  struct gs_table *t;
  struct gs_cluster *c;         /* held (table.h) from find to unlock */
  unsigned i;
  uint64_t slot;
};

/* Past metadata-limit: what gs_slot_find and __gs_slot_store return when
 * a table block is refused.  Reclaiming RAM cannot help it, so the write
 * path does not retry it; callers turn it into ENOSPC. */
#define GS_ENOSPC_METADATA EDQUOT

/* gs_slot_find - the cluster of ghost slot @slot, held until
 * gs_slot_unlock (or gs_slot_release if it is never locked); with
 * @create, build it.
 * Context: lock-free; may allocate with @create.
 * Return: 0 and *@s, -ENOENT (absent and not created), -ENOMEM,
 * -GS_ENOSPC_METADATA.
 */
int gs_slot_find (struct gs_device *dev, uint64_t slot, bool create,
                  struct gs_slot *s);

/* gs_slot_lock, gs_slot_unlock - take or release @s's cluster lock;
 * unlock also ends the find (drops the table hold: @s is done).
 * Context: may sleep.  Return: nothing.
 */
void gs_slot_lock (struct gs_slot *s);
void gs_slot_unlock (struct gs_slot *s);

/* gs_slot_release - end a find whose slot was never locked.
 * Context: any.  Return: nothing.
 */
void gs_slot_release (struct gs_slot *s);

/* gs_slot_lock_expect - find and lock slot @slot if its entry is still
 * @expected (ignoring the A bit): the "lock, re-read, still unchanged?"
 * step of every mover.
 * Context: takes the cluster lock (held on success).
 * Return: 0 (locked) or -ESTALE (changed or gone; not locked).
 */
int gs_slot_lock_expect (struct gs_device *dev, uint64_t slot,
                         gs_entry expected, struct gs_slot *s);

/* __gs_slot_entry - the entry of @s.
 * Context: caller holds the cluster lock.  Return: the entry.
 */
gs_entry __gs_slot_entry (struct gs_slot *s);

/* __gs_slot_entry_at - entry @i of the locked cluster @c (for walks over a
 * whole cluster).
 * Context: caller holds c's lock.  Return: the entry.
 */
gs_entry __gs_slot_entry_at (struct gs_cluster *c, unsigned i);

/* __gs_slot_store - a client's store: make @s hold @e (EMPTY, SAME or
 * RAM, never W or BACKING), releasing what the old entry held.
 * Context: caller holds the cluster lock.
 * Return: 0, -ENOMEM or -GS_ENOSPC_METADATA (no entry array; nothing
 * changed, @e still the caller's).
 */
int __gs_slot_store (struct gs_device *dev, struct gs_slot *s, gs_entry e);

/* __gs_slot_commit - a mover's commit after gs_slot_lock_expect: RAM+W ->
 * BACKING (writeback) or BACKING -> RAM / BACKING (drain, migrate,
 * relocate).  A new BACKING entry's physical slot becomes LIVE; the old
 * entry's object or physical slot is released.
 * Context: caller holds the cluster lock, and the entry is the one it
 * expected.  Return: nothing (cannot fail: the entry array exists).
 */
void __gs_slot_commit (struct gs_device *dev, struct gs_slot *s,
                       gs_entry e);

/* __gs_slot_moved - the pool moved @s's RAM object (compaction, second
 * chance); make the entry point at its new place @e.
 * Context: caller holds the cluster lock.  Return: nothing.
 */
void __gs_slot_moved (struct gs_slot *s, gs_entry e);

/* __gs_slot_recompressed - RAM -> RAM: @s's page, encoded anew
 * (recompression, lib/recompress.c), is now the object @e; the old object
 * is freed and the A bit kept.  The caller re-read the entry it encoded
 * with gs_slot_lock_expect, so the page is the same.
 * Context: caller holds the cluster lock.  Return: nothing.
 */
void __gs_slot_recompressed (struct gs_device *dev, struct gs_slot *s,
                             gs_entry e);

/* __gs_slot_mark_writeback - RAM -> RAM+W.  Return: the marked entry. */
gs_entry __gs_slot_mark_writeback (struct gs_slot *s);

/* __gs_slot_clear_writeback - RAM+W -> RAM (the write failed).
 * Context: caller holds the cluster lock.  Return: nothing.
 */
void __gs_slot_clear_writeback (struct gs_slot *s);

/* __gs_slot_read - the 4 KiB contents of @s into @page, setting A.  A
 * backing page is read and checked against its checksum; a mismatch is
 * counted and reported (gs_slot_report_integrity).
 * Context: caller holds the cluster lock; may sleep (backing I/O).
 * Return: 0 or -EIO.
 */
int __gs_slot_read (struct gs_device *dev, struct gs_slot *s, void *page);

/* gs_slot_report_integrity - count a checksum mismatch on physical slot
 * @pslot of @b (owned by ghost slot @slot) and report it once.
 * Context: any.  Return: nothing.
 */
void gs_slot_report_integrity (struct gs_device *dev, struct gs_backing *b,
                               uint64_t slot, uint64_t pslot);

/* gs_page_to_ram_object - store a page read from backing (@zstd: a frame
 * padded to 4 KiB, else raw) in the RAM pool for ghost slot @owner.
 * Context: caller holds the owner's cluster lock.
 * Return: 0 and *@e, or -ENOSPC / -ENOMEM / -EIO.
 */
int gs_page_to_ram_object (struct gs_device *dev, uint64_t owner,
                           const void *page, bool zstd, gs_entry *e);

#endif /* GHOSTSWAP_SLOT_H */
