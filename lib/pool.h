/* ghostswap: the RAM pool, a log-structured store of page objects.
 *
 * Objects (a zstd frame or a raw page) are appended to 68 KiB segments
 * (page-aligned blocks of lib/arena.c), each
 * behind a 7-byte header that holds the owner: the ghost slot whose entry
 * points at it (the reverse map) and a raw flag.  There are no size
 * classes, so there is no rounding and no half-empty slab per class; the
 * price is that freed objects leave holes, which compaction reclaims: it
 * walks a sparse segment, asks the owner of each object (through the
 * header, O(1)) whether the object is still live, copies the live ones to a
 * fresh segment and frees the old one.
 *
 * Writers append through one of several streams (each with its own open
 * segment and lock) so that no lock is global on the write path;
 * compaction and recompression have a stream each.
 *
 * Age, for recompression (lib/recompress.c): the pool keeps a generation
 * number, which recompression advances at the start of each of its
 * passes, and each segment records the generation of its last append.  A
 * segment whose generation is two behind has had nothing appended for at
 * least one whole period between passes: its pages are cold.  Segments of
 * the recompression stream, and those recompression has walked, are
 * marked cold and not taken again.
 *
 * Lock order: cluster lock -> stream lock -> pool lock.
 */
#ifndef GHOSTSWAP_POOL_H
#define GHOSTSWAP_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "entry.h"
#include "ghostswap/config.h"
#include "memacct.h"

#define GS_OBJ_HEADER     7u                          /* owner (52 bits) + flags */
#define GS_OBJ_MAX        (GS_OBJ_HEADER + GS_SLOT_SIZE)
#define GS_SEGMENT_BYTES  (17u * 4096u)               /* 68 KiB, page-aligned */
#define GS_SEGMENT_HEADER 32u
#define GS_SEGMENT_DATA   (GS_SEGMENT_BYTES - GS_SEGMENT_HEADER)
#define GS_POOL_STREAMS   8u
#define GS_COMPACT_BATCH  128u                        /* segments sorted at once */
#define GS_POOL_RESERVE   2u                          /* segments compaction may use past the limit */

_Static_assert (GS_SEGMENT_DATA <= GS_RAM_OFFSET_MASK + 1,
                "an object offset fits in a RAM entry");
_Static_assert (GS_SEGMENT_DATA >= 16 * GS_OBJ_MAX,
                "a segment holds 16 raw pages");

/* Returns the length of the (non-raw) object payload at @p, at most @cap
 * bytes long, or 0 if it is not valid. */
typedef size_t (*gs_object_size_fn) (const void *p, size_t cap);

struct gs_segment;
struct gs_pool;

struct gs_pool_stats {
  uint64_t segments;          /* segments allocated */
  uint64_t segment_bytes;     /* memory they take, descriptors included */
  uint64_t live_bytes;        /* bytes of live objects, headers included */
  uint64_t header_bytes;      /* of which object headers (the reverse map) */
  uint64_t objects;           /* live objects */
  uint64_t garbage_bytes;     /* dead bytes in sealed segments */
  uint64_t compactions;       /* compaction passes that moved or freed */
  uint64_t moved;             /* objects moved by compaction */
};

/* gs_pool_create - a pool capped at @limit bytes of segments.
 * Context: may allocate.  Return: 0 or -ENOMEM.
 */
int gs_pool_create (uint64_t limit, gs_object_size_fn size_fn,
                    struct gs_pool **poolp);

/* gs_pool_set_account - account segments in @mem (those held now too).
 * Context: before concurrent use.  Return: nothing.
 */
void gs_pool_set_account (struct gs_pool *pool, struct gs_memacct *mem);

/* gs_pool_destroy - free every segment.
 * Context: no other call running.  Return: nothing.
 */
void gs_pool_destroy (struct gs_pool *pool);

/* gs_pool_set_limit - change the cap (bytes).
 * Context: any.  Return: nothing.
 */
void gs_pool_set_limit (struct gs_pool *pool, uint64_t limit);

/* gs_pool_alloc - store @len bytes of @data owned by ghost slot @owner
 * (@raw: a whole uncompressed page) and make the entry that points at it.
 * The caller must publish *@entry only under the owner's cluster lock,
 * which it holds.
 * Context: caller holds the owner's cluster lock; takes a stream lock and
 * maybe the pool lock.
 * Return: 0, or -ENOSPC at the limit, -ENOMEM.
 */
int gs_pool_alloc (struct gs_pool *pool, uint64_t owner, bool raw,
                   const void *data, size_t len, gs_entry *entry);

/* gs_pool_alloc_final - as gs_pool_alloc, for recompression: the object
 * goes to the recompression stream, whose segments are marked cold, and
 * is flagged final (gs_pool_object_final), also when compaction moves it.
 * Never uses compaction's reserve.
 * Context: caller holds the owner's cluster lock; takes the stream lock
 * and maybe the pool lock.
 * Return: 0, or -ENOSPC at the limit, -ENOMEM.
 */
int gs_pool_alloc_final (struct gs_pool *pool, uint64_t owner, bool raw,
                         const void *data, size_t len, gs_entry *entry);

/* gs_pool_object_final - was the object @entry points at stored by
 * gs_pool_alloc_final?
 * Context: caller holds the owner's cluster lock.  Return: true if so.
 */
bool gs_pool_object_final (gs_entry entry);

/* gs_pool_free - drop the object @entry points at.
 * Context: caller holds the owner's cluster lock.  Return: nothing.
 */
void gs_pool_free (struct gs_pool *pool, gs_entry entry);

/* gs_pool_object - where the object @entry points at lives.
 * Context: caller holds the owner's cluster lock (the object cannot move).
 * Return: the payload; *@cap is how many bytes may be read there (the exact
 * length for raw objects), *@raw its flag.
 */
const void *gs_pool_object (gs_entry entry, size_t *cap, bool *raw);

/* gs_pool_object_owner - the owner slot recorded in @entry's object header.
 * Context: caller holds the owner's cluster lock.  Return: the slot.
 */
uint64_t gs_pool_object_owner (gs_entry entry);

/* Called by compaction for every object of a segment being emptied, with
 * the owner from its header and the entry that would point at it if it is
 * live.  It must take the owner's cluster lock, and if the slot's entry
 * still points there, call gs_pool_move and store the new entry. */
typedef void (*gs_relocate_fn) (void *opaque, uint64_t owner, gs_entry entry);

/* gs_pool_move - copy the live object @entry points at into a fresh place
 * and free the old one.
 * Context: caller holds the owner's cluster lock.
 * Return: 0 and *@moved set (accessed bit kept), or -ENOSPC / -ENOMEM (the
 * object stays where it was).
 */
int gs_pool_move (struct gs_pool *pool, gs_entry entry, gs_entry *moved);

/* gs_pool_take - claim up to @max sealed segments whose live share is
 * below @max_live_percent (101: any with a live object), oldest first,
 * for a walk; they leave the sealed list until gs_pool_give_back.
 * Context: takes the pool lock.
 * Return: how many were put in @v.
 */
size_t gs_pool_take (struct gs_pool *pool, unsigned max_live_percent,
                     struct gs_segment **v, size_t max);

/* gs_pool_take_cold - as gs_pool_take with 101, for recompression:
 * claim up to @max sealed segments not marked cold whose last append was
 * in generation @max_gen or before, oldest first.
 * Context: takes the pool lock.  Return: how many were put in @v.
 */
size_t gs_pool_take_cold (struct gs_pool *pool, uint32_t max_gen,
                          struct gs_segment **v, size_t max);

/* gs_pool_mark_cold - mark the claimed segment @s cold: gs_pool_take_cold
 * passes it over from now on.
 * Context: @s claimed by the caller.  Return: nothing.
 */
void gs_pool_mark_cold (struct gs_segment *s);

/* gs_pool_next_generation - advance the pool's generation.
 * Context: any.  Return: the new generation (31 bits).
 */
uint32_t gs_pool_next_generation (struct gs_pool *pool);

/* gs_pool_seal_idle - seal every stream's open segment whose last append
 * was in generation @max_gen or before, so that its objects can be walked.
 * Context: takes stream locks and the pool lock.  Return: nothing.
 */
void gs_pool_seal_idle (struct gs_pool *pool, uint32_t max_gen);

/* gs_pool_walk - call @visit with the owner and entry of every object in
 * the claimed segment @s, dead or alive (the visitor checks the owner's
 * entry under its cluster lock).
 * Context: no lock held by the caller.  Return: nothing.
 */
void gs_pool_walk (struct gs_pool *pool, struct gs_segment *s,
                   gs_relocate_fn visit, void *opaque);

/* gs_pool_give_back - end a walk of @s: free it if nothing in it is live,
 * else return it to the sealed list as the newest.
 * Context: takes the pool lock.  Return: nothing.
 */
void gs_pool_give_back (struct gs_pool *pool, struct gs_segment *s);

/* gs_pool_seal_open - seal every stream's open segment so that all
 * objects can be walked.
 * Context: takes stream locks and the pool lock.  Return: nothing.
 */
void gs_pool_seal_open (struct gs_pool *pool);

/* gs_pool_bytes - memory held by segments now.
 * Context: any.  Return: bytes.
 */
uint64_t gs_pool_bytes (struct gs_pool *pool);

/* gs_pool_fixed_bytes - the pool's own structures (streams, locks, the
 * arena's chunk table).
 * Context: any.  Return: bytes.
 */
uint64_t gs_pool_fixed_bytes (struct gs_pool *pool);

/* gs_pool_limit - the cap in bytes, rounded down to whole segments.
 * Context: any.  Return: bytes.
 */
uint64_t gs_pool_limit (struct gs_pool *pool);

/* gs_pool_compact - empty every sealed segment whose live share is below
 * @max_live_percent (all sealed segments with some garbage when 100),
 * emptiest first within batches of GS_COMPACT_BATCH (oldest batch
 * first), moving live objects through @relocate.  Allocates nothing.
 * Context: takes cluster locks (through @relocate), stream and pool locks;
 * may sleep.  Only one compaction runs at a time.
 * Return: the number of objects moved.
 */
uint64_t gs_pool_compact (struct gs_pool *pool, unsigned max_live_percent,
                          gs_relocate_fn relocate, void *opaque);

/* gs_pool_get_stats - a snapshot.
 * Context: takes the pool lock.  Return: nothing.
 */
void gs_pool_get_stats (struct gs_pool *pool, struct gs_pool_stats *st);

#endif /* GHOSTSWAP_POOL_H */
