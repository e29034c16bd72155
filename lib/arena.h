/* ghostswap: the memory under the RAM pool: fixed-size, page-aligned
 * blocks carved from large anonymous mappings ("chunks").
 *
 * Each chunk is marked MADV_DONTDUMP once (unless the arena's dump flag
 * is set: the table's metadata arena, which a core dump should show) (it holds other processes'
 * swapped-out pages: they have no place in our core dumps), so there is
 * one mapping per chunk however many blocks come and go.  A freed block's
 * pages go back to the kernel with MADV_DONTNEED (under mlockall, which
 * refuses that, the block is unlocked for it and locked again on fault);
 * a chunk whose blocks are all free is unmapped.
 * Blocks are handed out lowest address first, so that free blocks gather
 * in the chunks at the top and those chunks empty out.
 *
 * Not thread-safe: the pool calls it under its pool lock.
 */
#ifndef GHOSTSWAP_ARENA_H
#define GHOSTSWAP_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GS_ARENA_CHUNK_BLOCKS 64u

struct gs_arena_chunk;

struct gs_arena {
  size_t block_bytes;               /* a multiple of the page size */
  struct gs_arena_chunk **chunk;    /* by address */
  size_t nchunks, capacity;
  size_t hint;                      /* no chunk below this has a free block */
  uint64_t mapped_bytes;
  uint64_t used_blocks;             /* blocks handed out */
  bool dump;                        /* leave chunks in core dumps (metadata) */
};

/* gs_arena_init - an arena of @block_bytes blocks (a page multiple),
 * not dumped; set a->dump after this to keep it in core dumps.
 * Context: any.  Return: nothing.
 */
void gs_arena_init (struct gs_arena *a, size_t block_bytes);

/* gs_arena_destroy - unmap every chunk.
 * Context: no block may be in use.  Return: nothing.
 */
void gs_arena_destroy (struct gs_arena *a);

/* gs_arena_alloc - a zeroed (fresh) or reused block.
 * Context: caller serialises arena calls.
 * Return: the block, or NULL with errno ENOMEM.
 */
void *gs_arena_alloc (struct gs_arena *a);

/* gs_arena_free - give @p back.
 * Context: caller serialises arena calls.  Return: nothing.
 */
void gs_arena_free (struct gs_arena *a, void *p);

#endif /* GHOSTSWAP_ARENA_H */
