/* ghostswap: page-aligned block arena (see arena.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"

/* Users may poison freed blocks for AddressSanitizer (table.c does): the
 * shadow must be clean again before the address range is given back. */
#if defined (__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define chunk_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION ((p), (n))
#else
#define chunk_unpoison(p, n) ((void) (p), (void) (n))
#endif

struct gs_arena_chunk {
  unsigned char *base;
  unsigned nfree;
  uint64_t free_mask;               /* bit i: block i is free */
};

_Static_assert (GS_ARENA_CHUNK_BLOCKS == 64, "one mask word per chunk");

/* gs_arena_init - see arena.h. */
void
gs_arena_init (struct gs_arena *a, size_t block_bytes)
{
  memset (a, 0, sizeof *a);
  a->block_bytes = block_bytes;
}

static size_t
chunk_bytes (const struct gs_arena *a)
{
  return a->block_bytes * GS_ARENA_CHUNK_BLOCKS;
}

/* gs_arena_destroy - see arena.h. */
void
gs_arena_destroy (struct gs_arena *a)
{
  size_t i;

  for (i = 0; i < a->nchunks; i++) {
    chunk_unpoison (a->chunk[i]->base, chunk_bytes (a));
    munmap (a->chunk[i]->base, chunk_bytes (a));
    free (a->chunk[i]);
  }
  free (a->chunk);
  memset (a, 0, sizeof *a);
}

/* Map a new chunk and insert it in address order. */
static struct gs_arena_chunk *
chunk_new (struct gs_arena *a)
{
  struct gs_arena_chunk *c;
  size_t i;
  void *p;

  if (a->nchunks == a->capacity) {
    size_t cap = a->capacity ? a->capacity * 2 : 16;
    struct gs_arena_chunk **v = realloc (a->chunk, sizeof *v * cap);
    if (!v)
      return NULL;
    a->chunk = v;
    a->capacity = cap;
  }
  c = calloc (1, sizeof *c);
  if (!c)
    return NULL;
  p = mmap (NULL, chunk_bytes (a), PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    free (c);
    return NULL;
  }
  /* Not in core dumps: these are other processes' pages.  A failure only
   * means the chunk would be dumped. */
  if (!a->dump)
    madvise (p, chunk_bytes (a), MADV_DONTDUMP);
  c->base = p;
  c->nfree = GS_ARENA_CHUNK_BLOCKS;
  c->free_mask = ~UINT64_C (0);
  for (i = a->nchunks; i > 0 && a->chunk[i - 1]->base > c->base; i--)
    a->chunk[i] = a->chunk[i - 1];
  a->chunk[i] = c;
  if (i < a->hint)
    a->hint = i;
  a->nchunks++;
  a->mapped_bytes += chunk_bytes (a);
  return c;
}

/* gs_arena_alloc - see arena.h. */
void *
gs_arena_alloc (struct gs_arena *a)
{
  struct gs_arena_chunk *c = NULL;
  size_t i;
  int bit;

  for (i = a->hint; i < a->nchunks; i++)
    if (a->chunk[i]->nfree > 0) {
      c = a->chunk[i];
      break;
    }
  a->hint = i;
  if (!c) {
    c = chunk_new (a);
    if (!c) {
      errno = ENOMEM;
      return NULL;
    }
  }
  bit = __builtin_ctzll (c->free_mask);
  c->free_mask &= ~(UINT64_C (1) << bit);
  c->nfree--;
  a->used_blocks++;
  return c->base + (size_t) bit * a->block_bytes;
}

/* The index of the chunk holding @p (binary search by address). */
static size_t
chunk_of (const struct gs_arena *a, const unsigned char *p)
{
  size_t lo = 0, hi = a->nchunks;

  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (a->chunk[mid]->base <= p)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/* Give a free block's pages back to the kernel.  Under mlockall (the
 * service's hardening) MADV_DONTNEED is refused (EINVAL) for locked
 * pages, and a freed block would stay resident for good: lowest-address
 * allocation does not prefer it, so every pass that frees blocks while
 * others are taken (compaction, recompression) would leave RSS above the
 * pool.  So the block is unlocked, dropped and locked again on fault
 * (MLOCK_ONFAULT, as mlockall's MCL_ONFAULT: its mapping merges back into
 * the chunk's; where the kernel lacks it, so does MCL_ONFAULT, and plain
 * mlock matches a plain mlockall).  Should locking fail, the block stays
 * unlocked: swappable, but no less correct. */
static void
give_back (void *p, size_t len)
{
  if (madvise (p, len, MADV_DONTNEED) == 0 || errno != EINVAL)
    return;
  if (munlock (p, len) < 0)
    return;
  madvise (p, len, MADV_DONTNEED);
  if (mlock2 (p, len, MLOCK_ONFAULT) < 0 && errno == ENOSYS)
    mlock (p, len);
}

/* gs_arena_free - see arena.h. */
void
gs_arena_free (struct gs_arena *a, void *p)
{
  size_t i = chunk_of (a, p);
  struct gs_arena_chunk *c = a->chunk[i];
  size_t bit = (size_t) ((unsigned char *) p - c->base) / a->block_bytes;

  c->free_mask |= UINT64_C (1) << bit;
  c->nfree++;
  a->used_blocks--;
  if (i < a->hint)
    a->hint = i;
  if (c->nfree == GS_ARENA_CHUNK_BLOCKS) {
    chunk_unpoison (c->base, chunk_bytes (a));
    munmap (c->base, chunk_bytes (a));
    free (c);
    memmove (&a->chunk[i], &a->chunk[i + 1],
             sizeof *a->chunk * (a->nchunks - i - 1));
    a->nchunks--;
    a->mapped_bytes -= chunk_bytes (a);
    return;
  }
  give_back (p, a->block_bytes);
}
