/* ghostswap: the 64-bit slot entry.
 *
 * Every slot of the device is one 64-bit word in its cluster's entry array.
 * The low three bits are a tag; bit 3 is the clock's accessed bit; the rest
 * is the payload of the tag.
 *
 *  63                                                    5   4   3  2   0
 * +-----------------------------------------------------------+---+--+-----+
 * |                      0                                            |0 0 0| EMPTY
 * +-----------------------------------------------------------+---+--+-----+
 * |            pattern bits 0..58 (sign-extended to 64)       | 0 |A | 001 | SAME, inline
 * +-----------------------------------------------------------+---+--+-----+
 * |      0       |   pattern table index (32 bits)            | 1 |A | 001 | SAME, wide
 * +-----------------------------------------------------------+---+--+-----+
 *  63                                22 21                5   4   3  2   0
 * +-----------------------------------+--------------------+---+--+-----+
 * |  pool segment address >> 6 (42)   | object offset (17) | W |A | 010 | RAM
 * +-----------------------------------+--------------------+---+--+-----+
 *  63                                13 12            5   4   3  2   0
 * +------------------------------------+---------------+---+--+-----+
 * |     physical slot (51 bits)        | backing (8)   | Z |A | 011 | BACKING
 * +------------------------------------+---------------+---+--+-----+
 *
 * EMPTY is the all-zero word, so a fresh (zeroed) entry array is all empty.
 * A page of one repeated 8-byte word whose value survives sign extension
 * from 59 bits (zero, all-ones, small numbers, most byte patterns) is held
 * inline; any other such page keeps its word in the device's pattern table
 * (lib/pattern.c) and the entry holds its index.  RAM objects live in the
 * pool (lib/pool.c): a 64-byte aligned segment below 2^48 (x86-64 and
 * arm64 user space; the pool refuses others) and the object's byte offset
 * in it.  W marks a RAM page that writeback has copied and is about to
 * move: any write replaces the entry and so clears it, which is how a
 * racing write wins.  A BACKING page lives in one 4 KiB physical slot of a
 * backing device; Z says that slot holds the page's zstd frame (padded)
 * rather than the raw page, so pages move between tiers without being
 * recompressed.
 */
#ifndef GHOSTSWAP_ENTRY_H
#define GHOSTSWAP_ENTRY_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t gs_entry;

#define GS_ENTRY_TAG_MASK        0x7ull
#define GS_ENTRY_EMPTY           0x0ull
#define GS_ENTRY_TAG_SAME        0x1ull
#define GS_ENTRY_TAG_RAM         0x2ull
#define GS_ENTRY_TAG_BACKING     0x3ull

#define GS_ENTRY_ACCESSED        (1ull << 3)

#define GS_SAME_WIDE             (1ull << 4)
#define GS_SAME_PATTERN_SHIFT    5
#define GS_SAME_PATTERN_BITS     59
#define GS_SAME_INDEX_SHIFT      5
#define GS_SAME_INDEX_MASK       0xffffffffull

#define GS_RAM_WRITEBACK         (1ull << 4)
#define GS_RAM_OFFSET_SHIFT      5
#define GS_RAM_OFFSET_BITS       17
#define GS_RAM_OFFSET_MASK       ((1ull << GS_RAM_OFFSET_BITS) - 1)
#define GS_RAM_SEGMENT_SHIFT     22
#define GS_RAM_SEGMENT_ALIGN     64
#define GS_RAM_SEGMENT_ALIGN_SHIFT 6
#define GS_RAM_ADDRESS_LIMIT     (1ull << 48)

#define GS_BACKING_ZSTD          (1ull << 4)
#define GS_BACKING_ID_SHIFT      5
#define GS_BACKING_ID_MASK       0xffull
#define GS_BACKING_PSLOT_SHIFT   13
#define GS_BACKING_PSLOT_BITS    51

_Static_assert (GS_SAME_PATTERN_SHIFT + GS_SAME_PATTERN_BITS == 64,
                "inline pattern fills the entry");
_Static_assert (GS_SAME_INDEX_SHIFT + 32 <= 64, "pattern index fits");
_Static_assert (GS_RAM_OFFSET_SHIFT + GS_RAM_OFFSET_BITS == GS_RAM_SEGMENT_SHIFT,
                "RAM fields are contiguous");
_Static_assert ((1u << GS_RAM_SEGMENT_ALIGN_SHIFT) == GS_RAM_SEGMENT_ALIGN,
                "segment alignment");
_Static_assert (64 - GS_RAM_SEGMENT_SHIFT + GS_RAM_SEGMENT_ALIGN_SHIFT == 48,
                "segment addresses below 2^48 fit");
_Static_assert (GS_BACKING_PSLOT_SHIFT + GS_BACKING_PSLOT_BITS == 64,
                "physical slot fills the entry");
_Static_assert (sizeof (gs_entry) == 8, "one word per slot");

static inline uint64_t
entry_tag (gs_entry e)
{
  return e & GS_ENTRY_TAG_MASK;
}

static inline bool
entry_is_empty (gs_entry e)
{
  return e == GS_ENTRY_EMPTY;
}

static inline gs_entry
entry_mkold (gs_entry e)
{
  return e & ~GS_ENTRY_ACCESSED;
}

static inline gs_entry
entry_mkyoung (gs_entry e)
{
  return entry_is_empty (e) ? e : e | GS_ENTRY_ACCESSED;
}

static inline bool
entry_is_young (gs_entry e)
{
  return (e & GS_ENTRY_ACCESSED) != 0;
}

/* Entries equal but for the accessed and writeback bits: the page is in
 * the same place. */
static inline bool
entry_same_place (gs_entry a, gs_entry b)
{
  gs_entry ignore = GS_ENTRY_ACCESSED;

  if ((a & GS_ENTRY_TAG_MASK) == GS_ENTRY_TAG_RAM)
    ignore |= GS_RAM_WRITEBACK;
  return (a & ~ignore) == (b & ~ignore);
}

/* --- same-filled --- */

static inline bool
pattern_fits_inline (uint64_t pattern)
{
  int64_t s = (int64_t) (pattern << (64 - GS_SAME_PATTERN_BITS));
  return (uint64_t) (s >> (64 - GS_SAME_PATTERN_BITS)) == pattern;
}

static inline gs_entry
pattern_to_entry (uint64_t pattern)
{
  return (pattern << GS_SAME_PATTERN_SHIFT) | GS_ENTRY_TAG_SAME;
}

static inline gs_entry
pattern_index_to_entry (uint32_t index)
{
  return ((uint64_t) index << GS_SAME_INDEX_SHIFT) | GS_SAME_WIDE
    | GS_ENTRY_TAG_SAME;
}

static inline bool
entry_is_same (gs_entry e)
{
  return entry_tag (e) == GS_ENTRY_TAG_SAME;
}

static inline bool
entry_is_same_wide (gs_entry e)
{
  return entry_is_same (e) && (e & GS_SAME_WIDE);
}

/* Only for entry_is_same() && !entry_is_same_wide(). */
static inline uint64_t
entry_to_pattern (gs_entry e)
{
  return (uint64_t) ((int64_t) e >> GS_SAME_PATTERN_SHIFT);
}

/* Only for entry_is_same_wide(). */
static inline uint32_t
entry_to_pattern_index (gs_entry e)
{
  return (uint32_t) ((e >> GS_SAME_INDEX_SHIFT) & GS_SAME_INDEX_MASK);
}

static inline bool
entry_is_zero (gs_entry e)
{
  return entry_is_same (e) && !entry_is_same_wide (e)
    && entry_to_pattern (e) == 0;
}

/* --- RAM --- */

struct gs_segment;

static inline gs_entry
ram_to_entry (const struct gs_segment *seg, uint32_t offset)
{
  uint64_t addr = (uint64_t) (uintptr_t) seg;
  return ((addr >> GS_RAM_SEGMENT_ALIGN_SHIFT) << GS_RAM_SEGMENT_SHIFT)
    | ((uint64_t) offset << GS_RAM_OFFSET_SHIFT) | GS_ENTRY_TAG_RAM;
}

static inline bool
entry_is_ram (gs_entry e)
{
  return entry_tag (e) == GS_ENTRY_TAG_RAM;
}

static inline struct gs_segment *
entry_to_segment (gs_entry e)
{
  return (struct gs_segment *) (uintptr_t)
    ((e >> GS_RAM_SEGMENT_SHIFT) << GS_RAM_SEGMENT_ALIGN_SHIFT);
}

static inline uint32_t
entry_to_offset (gs_entry e)
{
  return (uint32_t) ((e >> GS_RAM_OFFSET_SHIFT) & GS_RAM_OFFSET_MASK);
}

static inline bool
entry_is_writeback (gs_entry e)
{
  return entry_is_ram (e) && (e & GS_RAM_WRITEBACK);
}

static inline gs_entry
entry_mkwriteback (gs_entry e)
{
  return e | GS_RAM_WRITEBACK;
}

/* --- backing --- */

static inline gs_entry
backing_to_entry (unsigned id, uint64_t pslot, bool zstd)
{
  return (pslot << GS_BACKING_PSLOT_SHIFT)
    | (((uint64_t) id & GS_BACKING_ID_MASK) << GS_BACKING_ID_SHIFT)
    | (zstd ? GS_BACKING_ZSTD : 0) | GS_ENTRY_TAG_BACKING;
}

static inline bool
entry_is_backing (gs_entry e)
{
  return entry_tag (e) == GS_ENTRY_TAG_BACKING;
}

static inline unsigned
entry_to_backing_id (gs_entry e)
{
  return (unsigned) ((e >> GS_BACKING_ID_SHIFT) & GS_BACKING_ID_MASK);
}

static inline uint64_t
entry_to_pslot (gs_entry e)
{
  return e >> GS_BACKING_PSLOT_SHIFT;
}

static inline bool
entry_backing_is_zstd (gs_entry e)
{
  return (e & GS_BACKING_ZSTD) != 0;
}

#endif /* GHOSTSWAP_ENTRY_H */
