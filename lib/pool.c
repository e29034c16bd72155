/* ghostswap: log-structured RAM pool with back-pointers (see pool.h). */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "cleanup.h"
#include "pool.h"

/* A segment's state word: live bytes in the low 32 bits, and two flags.
 * Once SEALED, live only falls; the thread that brings a sealed segment's
 * live bytes to zero frees it, unless it is COMPACTING, in which case the
 * compactor does. */
#define SEG_LIVE_MASK   0xffffffffull
#define SEG_SEALED      (1ull << 32)
#define SEG_COMPACTING  (1ull << 33)

struct gs_segment {
  struct gs_segment *prev, *next;   /* in the sealed list (pool lock) */
  uint64_t state;                   /* atomic: live bytes | flags */
  uint32_t used;                    /* atomic: append point; fixed once sealed */
  uint32_t gen;                     /* atomic: the pool's generation at the
                                     * last append, | SEG_GEN_COLD */
  unsigned char data[];             /* objects: 7-byte header + payload */
};

/* In gs_segment.gen: recompression has nothing more to do here (a
 * segment of the recompression stream, or one it walked). */
#define SEG_GEN_COLD    (1u << 31)
#define SEG_GEN_MASK    (SEG_GEN_COLD - 1)

_Static_assert (sizeof (struct gs_segment) == GS_SEGMENT_HEADER,
                "segment header size");

#define SEGMENT_BYTES GS_SEGMENT_BYTES

/* Object header: bits 0..51 owner slot, bit 52 raw, bit 53 final (stored
 * by recompression: not to be recompressed again). */
#define HDR_OWNER_MASK  ((1ull << 52) - 1)
#define HDR_RAW         (1ull << 52)
#define HDR_FINAL       (1ull << 53)

struct stream {
  pthread_mutex_t lock;             /* protects open and appends to it */
  struct gs_segment *open;
} __attribute__ ((aligned (64)));

struct gs_pool {
  pthread_mutex_t lock;             /* protects the sealed list, segments,
                                     * the arena, and frees of segments */
  struct gs_arena arena;
  struct gs_segment *oldest, *newest;  /* the sealed list, in sealing order */
  uint64_t segments;
  uint64_t limit_segments;          /* atomic */
  uint64_t live_bytes;              /* atomic */
  uint64_t objects;                 /* atomic */
  uint64_t compactions, moved;      /* atomic */
  uint32_t generation;              /* atomic: gs_pool_next_generation */
  unsigned nstreams;                /* writers' streams used: one per CPU,
                                     * at most GS_POOL_STREAMS */
  gs_object_size_fn size_fn;
  struct gs_memacct *mem;           /* where segments are accounted, or NULL */
  pthread_mutex_t compact_lock;     /* one compaction at a time */
  /* Writers' streams, then compaction's, then recompression's. */
  struct stream stream[GS_POOL_STREAMS + 2];
};

#define COMPACT_STREAM GS_POOL_STREAMS
#define COLD_STREAM (GS_POOL_STREAMS + 1)
#define NSTREAMS (GS_POOL_STREAMS + 2)

static void
put_header (unsigned char *p, uint64_t owner, uint64_t flags)
{
  uint64_t h = (owner & HDR_OWNER_MASK) | flags;
  unsigned i;

  for (i = 0; i < GS_OBJ_HEADER; i++)
    p[i] = (unsigned char) (h >> (8 * i));
}

static uint64_t
get_header (const unsigned char *p)
{
  uint64_t h = 0;
  unsigned i;

  for (i = 0; i < GS_OBJ_HEADER; i++)
    h |= (uint64_t) p[i] << (8 * i);
  return h;
}

/* gs_pool_create - see pool.h. */
int
gs_pool_create (uint64_t limit, gs_object_size_fn size_fn,
                struct gs_pool **poolp)
{
  struct gs_pool *pool = calloc (1, sizeof *pool);
  unsigned i;

  if (!pool)
    return -ENOMEM;
  pthread_mutex_init (&pool->lock, NULL);
  pthread_mutex_init (&pool->compact_lock, NULL);
  for (i = 0; i < NSTREAMS; i++)
    pthread_mutex_init (&pool->stream[i].lock, NULL);
  pool->size_fn = size_fn;
  {
    long cpus = sysconf (_SC_NPROCESSORS_CONF);
    pool->nstreams = cpus < 1 ? 1
      : cpus > (long) GS_POOL_STREAMS ? GS_POOL_STREAMS : (unsigned) cpus;
  }
  gs_arena_init (&pool->arena, SEGMENT_BYTES);
  gs_pool_set_limit (pool, limit);
  *poolp = pool;
  return 0;
}

/* gs_pool_set_account - see pool.h. */
void
gs_pool_set_account (struct gs_pool *pool, struct gs_memacct *mem)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);

  pool->mem = mem;
  gs_mem_add (mem, (int64_t) (pool->segments * SEGMENT_BYTES));
}

/* gs_pool_destroy - see pool.h. */
void
gs_pool_destroy (struct gs_pool *pool)
{
  unsigned i;

  if (!pool)
    return;
  gs_mem_add (pool->mem, -(int64_t) (pool->segments * SEGMENT_BYTES));
  gs_arena_destroy (&pool->arena);  /* every segment at once */
  for (i = 0; i < NSTREAMS; i++)
    pthread_mutex_destroy (&pool->stream[i].lock);
  pthread_mutex_destroy (&pool->compact_lock);
  pthread_mutex_destroy (&pool->lock);
  free (pool);
}

/* gs_pool_set_limit - see pool.h. */
void
gs_pool_set_limit (struct gs_pool *pool, uint64_t limit)
{
  __atomic_store_n (&pool->limit_segments, limit / SEGMENT_BYTES,
                    __ATOMIC_RELAXED);
}

static void
sealed_unlink (struct gs_pool *pool, struct gs_segment *s)
{
  if (s->prev)
    s->prev->next = s->next;
  else
    pool->oldest = s->next;
  if (s->next)
    s->next->prev = s->prev;
  else
    pool->newest = s->prev;
  s->prev = s->next = NULL;
}

/* Append @s as the newest sealed segment. */
static void
sealed_link (struct gs_pool *pool, struct gs_segment *s)
{
  s->next = NULL;
  s->prev = pool->newest;
  if (pool->newest)
    pool->newest->next = s;
  else
    pool->oldest = s;
  pool->newest = s;
}

/* Free a segment that no list holds.  Context: pool lock held. */
static void
segment_free (struct gs_pool *pool, struct gs_segment *s)
{
  __atomic_sub_fetch (&pool->segments, 1, __ATOMIC_RELAXED);
  gs_mem_add (pool->mem, -(int64_t) SEGMENT_BYTES);
  gs_arena_free (&pool->arena, s);
}

static struct gs_segment *
segment_new (struct gs_pool *pool, bool reserve)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);
  uint64_t limit = __atomic_load_n (&pool->limit_segments, __ATOMIC_RELAXED);
  void *p;

  if (pool->segments >= limit + (reserve ? GS_POOL_RESERVE : 0)) {
    errno = ENOSPC;
    return NULL;
  }
  p = gs_arena_alloc (&pool->arena);
  if (!p)
    return NULL;
  if ((uintptr_t) p + SEGMENT_BYTES > GS_RAM_ADDRESS_LIMIT) {
    /* Cannot be encoded in an entry (5-level paging address space). */
    gs_arena_free (&pool->arena, p);
    errno = ENOMEM;
    return NULL;
  }
  memset (p, 0, sizeof (struct gs_segment));
  __atomic_add_fetch (&pool->segments, 1, __ATOMIC_RELAXED);
  gs_mem_add (pool->mem, SEGMENT_BYTES);
  return p;
}

/* Seal the stream's open segment: no more appends go there.
 * Context: stream lock held. */
static void
segment_seal (struct gs_pool *pool, struct gs_segment *s)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);
  uint64_t old = __atomic_fetch_or (&s->state, SEG_SEALED, __ATOMIC_ACQ_REL);

  if ((old & SEG_LIVE_MASK) == 0)
    segment_free (pool, s);     /* nothing live: nobody else will free it */
  else
    sealed_link (pool, s);
}

/* Append an object with header @flags (HDR_RAW, HDR_FINAL) to stream @si.
 * Context: takes the stream lock. */
static int
alloc_in (struct gs_pool *pool, unsigned si, uint64_t owner, uint64_t flags,
          const void *data, size_t len, gs_entry *entry)
{
  struct stream *st = &pool->stream[si];
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&st->lock);
  size_t need = GS_OBJ_HEADER + len;
  struct gs_segment *s = st->open;
  uint32_t off, cold;

  if (!s || s->used + need > GS_SEGMENT_DATA) {
    struct gs_segment *fresh = segment_new (pool, si == COMPACT_STREAM);
    if (!fresh)
      return -errno;
    if (s)
      segment_seal (pool, s);
    if (si == COLD_STREAM)
      __atomic_store_n (&fresh->gen, SEG_GEN_COLD, __ATOMIC_RELAXED);
    st->open = s = fresh;
  }
  cold = __atomic_load_n (&s->gen, __ATOMIC_RELAXED) & SEG_GEN_COLD;
  __atomic_store_n (&s->gen, cold
                    | (__atomic_load_n (&pool->generation, __ATOMIC_RELAXED)
                       & SEG_GEN_MASK), __ATOMIC_RELAXED);
  off = s->used;
  put_header (s->data + off, owner, flags);
  memcpy (s->data + off + GS_OBJ_HEADER, data, len);
  __atomic_store_n (&s->used, off + (uint32_t) need, __ATOMIC_RELEASE);
  __atomic_add_fetch (&s->state, need, __ATOMIC_ACQ_REL);
  __atomic_add_fetch (&pool->live_bytes, need, __ATOMIC_RELAXED);
  __atomic_add_fetch (&pool->objects, 1, __ATOMIC_RELAXED);
  *entry = ram_to_entry (s, off);
  return 0;
}

/* The stream of the CPU this thread runs on: as many open segments as
 * CPUs (each one partly filled is memory the pool holds for nothing:
 * nbdkit runs 16 threads per connection, and one stream per thread made
 * eight open segments on a two-core machine), and threads on different
 * CPUs still never share a stream lock.  A thread moved between CPUs
 * merely picks another stream. */
static unsigned
my_stream (struct gs_pool *pool)
{
  int cpu = sched_getcpu ();

  return cpu < 0 ? 0 : (unsigned) cpu % pool->nstreams;
}

/* gs_pool_alloc - see pool.h. */
int
gs_pool_alloc (struct gs_pool *pool, uint64_t owner, bool raw,
               const void *data, size_t len, gs_entry *entry)
{
  return alloc_in (pool, my_stream (pool), owner, raw ? HDR_RAW : 0, data,
                   len, entry);
}

/* gs_pool_alloc_final - see pool.h. */
int
gs_pool_alloc_final (struct gs_pool *pool, uint64_t owner, bool raw,
                     const void *data, size_t len, gs_entry *entry)
{
  return alloc_in (pool, COLD_STREAM, owner, HDR_FINAL | (raw ? HDR_RAW : 0),
                   data, len, entry);
}

/* The payload length of the object at @off in @s. */
static size_t
object_len (struct gs_pool *pool, struct gs_segment *s, uint32_t off,
            bool *raw)
{
  uint32_t used = __atomic_load_n (&s->used, __ATOMIC_ACQUIRE);
  uint64_t h = get_header (s->data + off);

  *raw = (h & HDR_RAW) != 0;
  if (*raw)
    return GS_SLOT_SIZE;
  return pool->size_fn (s->data + off + GS_OBJ_HEADER,
                        used - off - GS_OBJ_HEADER);
}

/* gs_pool_free - see pool.h. */
void
gs_pool_free (struct gs_pool *pool, gs_entry entry)
{
  struct gs_segment *s = entry_to_segment (entry);
  uint32_t off = entry_to_offset (entry);
  bool raw;
  uint64_t size = GS_OBJ_HEADER + object_len (pool, s, off, &raw);
  uint64_t now;

  __atomic_sub_fetch (&pool->live_bytes, size, __ATOMIC_RELAXED);
  __atomic_sub_fetch (&pool->objects, 1, __ATOMIC_RELAXED);
  now = __atomic_sub_fetch (&s->state, size, __ATOMIC_ACQ_REL);
  if (now == SEG_SEALED) {
    /* The last live object of a sealed segment: this thread frees it. */
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);
    sealed_unlink (pool, s);
    segment_free (pool, s);
  }
}

/* gs_pool_object - see pool.h. */
const void *
gs_pool_object (gs_entry entry, size_t *cap, bool *raw)
{
  struct gs_segment *s = entry_to_segment (entry);
  uint32_t off = entry_to_offset (entry);
  uint32_t used = __atomic_load_n (&s->used, __ATOMIC_ACQUIRE);

  *raw = (get_header (s->data + off) & HDR_RAW) != 0;
  *cap = *raw ? GS_SLOT_SIZE : used - off - GS_OBJ_HEADER;
  return s->data + off + GS_OBJ_HEADER;
}

/* gs_pool_object_final - see pool.h. */
bool
gs_pool_object_final (gs_entry entry)
{
  struct gs_segment *s = entry_to_segment (entry);

  return (get_header (s->data + entry_to_offset (entry)) & HDR_FINAL) != 0;
}

/* gs_pool_object_owner - see pool.h. */
uint64_t
gs_pool_object_owner (gs_entry entry)
{
  struct gs_segment *s = entry_to_segment (entry);

  return get_header (s->data + entry_to_offset (entry)) & HDR_OWNER_MASK;
}

/* gs_pool_move - see pool.h. */
int
gs_pool_move (struct gs_pool *pool, gs_entry entry, gs_entry *moved)
{
  struct gs_segment *s = entry_to_segment (entry);
  uint32_t off = entry_to_offset (entry);
  bool raw;
  size_t len = object_len (pool, s, off, &raw);
  uint64_t h = get_header (s->data + off);
  gs_entry fresh;
  int r;

  /* The flags go with the object: raw, and final (a recompressed page
   * moved by compaction is not recompressed again). */
  r = alloc_in (pool, COMPACT_STREAM, h & HDR_OWNER_MASK, h & ~HDR_OWNER_MASK,
                s->data + off + GS_OBJ_HEADER, len, &fresh);
  if (r < 0)
    return r;
  gs_pool_free (pool, entry);
  *moved = fresh | (entry & GS_ENTRY_ACCESSED);
  __atomic_add_fetch (&pool->moved, 1, __ATOMIC_RELAXED);
  return 0;
}

/* Claim @s for a walk: mark it COMPACTING unless it is empty (its last
 * free is about to unlink and free it) or at least @max_live_percent live.
 * Context: pool lock. */
static bool
claim (struct gs_pool *pool, struct gs_segment *s, unsigned max_live_percent)
{
  uint64_t st = __atomic_load_n (&s->state, __ATOMIC_ACQUIRE);

  for (;;) {
    uint64_t live = st & SEG_LIVE_MASK;

    if (live == 0 || live * 100 >= (uint64_t) s->used * max_live_percent)
      return false;
    if (__atomic_compare_exchange_n (&s->state, &st, st | SEG_COMPACTING,
                                     false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
      sealed_unlink (pool, s);
      return true;
    }
  }
}

/* gs_pool_take - see pool.h. */
size_t
gs_pool_take (struct gs_pool *pool, unsigned max_live_percent,
              struct gs_segment **v, size_t max)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);
  struct gs_segment *s, *next;
  size_t n = 0;

  for (s = pool->oldest; s && n < max; s = next) {
    next = s->next;
    if (claim (pool, s, max_live_percent))
      v[n++] = s;
  }
  return n;
}

/* gs_pool_take_cold - see pool.h. */
size_t
gs_pool_take_cold (struct gs_pool *pool, uint32_t max_gen,
                   struct gs_segment **v, size_t max)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);
  struct gs_segment *s, *next;
  size_t n = 0;

  for (s = pool->oldest; s && n < max; s = next) {
    uint32_t gen = __atomic_load_n (&s->gen, __ATOMIC_RELAXED);

    next = s->next;
    if (!(gen & SEG_GEN_COLD) && (gen & SEG_GEN_MASK) <= max_gen
        && claim (pool, s, 101))
      v[n++] = s;
  }
  return n;
}

/* gs_pool_mark_cold - see pool.h. */
void
gs_pool_mark_cold (struct gs_segment *s)
{
  __atomic_or_fetch (&s->gen, SEG_GEN_COLD, __ATOMIC_RELAXED);
}

/* gs_pool_next_generation - see pool.h. */
uint32_t
gs_pool_next_generation (struct gs_pool *pool)
{
  return __atomic_add_fetch (&pool->generation, 1, __ATOMIC_RELAXED)
    & SEG_GEN_MASK;
}

/* gs_pool_seal_idle - see pool.h. */
void
gs_pool_seal_idle (struct gs_pool *pool, uint32_t max_gen)
{
  unsigned i;

  for (i = 0; i < NSTREAMS; i++) {
    struct stream *st = &pool->stream[i];
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&st->lock);

    if (st->open
        && (__atomic_load_n (&st->open->gen, __ATOMIC_RELAXED) & SEG_GEN_MASK)
           <= max_gen) {
      segment_seal (pool, st->open);
      st->open = NULL;
    }
  }
}

/* gs_pool_give_back - see pool.h. */
void
gs_pool_give_back (struct gs_pool *pool, struct gs_segment *s)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);
  uint64_t st = __atomic_load_n (&s->state, __ATOMIC_ACQUIRE);

  for (;;) {
    if ((st & SEG_LIVE_MASK) == 0) {
      segment_free (pool, s);
      return;
    }
    if (__atomic_compare_exchange_n (&s->state, &st, st & ~SEG_COMPACTING,
                                     false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
      sealed_link (pool, s);
      return;
    }
  }
}

/* gs_pool_walk - see pool.h. */
void
gs_pool_walk (struct gs_pool *pool, struct gs_segment *s,
              gs_relocate_fn visit, void *opaque)
{
  uint32_t off = 0, used = s->used;

  while (off < used) {
    bool raw;
    size_t len = object_len (pool, s, off, &raw);
    uint64_t owner = get_header (s->data + off) & HDR_OWNER_MASK;

    if (len == 0)
      break;                    /* unreadable: leave the rest where it is */
    visit (opaque, owner, ram_to_entry (s, off));
    off += GS_OBJ_HEADER + (uint32_t) len;
  }
}

/* gs_pool_seal_open - see pool.h. */
void
gs_pool_seal_open (struct gs_pool *pool)
{
  unsigned i;

  for (i = 0; i < NSTREAMS; i++) {
    struct stream *st = &pool->stream[i];
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&st->lock);

    if (st->open) {
      segment_seal (pool, st->open);
      st->open = NULL;
    }
  }
}

/* gs_pool_bytes - see pool.h. */
uint64_t
gs_pool_bytes (struct gs_pool *pool)
{
  return __atomic_load_n (&pool->segments, __ATOMIC_RELAXED) * SEGMENT_BYTES;
}

/* gs_pool_fixed_bytes - see pool.h. */
uint64_t
gs_pool_fixed_bytes (struct gs_pool *pool)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);

  return sizeof *pool + pool->arena.capacity * sizeof *pool->arena.chunk
    + pool->arena.nchunks * 32;   /* chunk records */
}

/* gs_pool_limit - see pool.h. */
uint64_t
gs_pool_limit (struct gs_pool *pool)
{
  return __atomic_load_n (&pool->limit_segments, __ATOMIC_RELAXED)
    * SEGMENT_BYTES;
}

static int
by_live (const void *a, const void *b)
{
  const struct gs_segment *x = *(struct gs_segment *const *) a;
  const struct gs_segment *y = *(struct gs_segment *const *) b;
  uint64_t lx = __atomic_load_n (&x->state, __ATOMIC_RELAXED) & SEG_LIVE_MASK;
  uint64_t ly = __atomic_load_n (&y->state, __ATOMIC_RELAXED) & SEG_LIVE_MASK;

  return lx < ly ? -1 : lx > ly;
}

/* gs_pool_compact - see pool.h. */
uint64_t
gs_pool_compact (struct gs_pool *pool, unsigned max_live_percent,
                 gs_relocate_fn relocate, void *opaque)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->compact_lock);
  uint64_t before = __atomic_load_n (&pool->moved, __ATOMIC_RELAXED);
  struct gs_segment *v[GS_COMPACT_BATCH];
  uint64_t batches;
  size_t n, i;
  bool any = false;

  /* Batches on the stack: the reclaim path of a writer short of RAM must
   * not allocate.  A segment given back still live goes to the end of the
   * list, so the number of batches is bounded by what was there. */
  batches = __atomic_load_n (&pool->segments, __ATOMIC_RELAXED)
    / GS_COMPACT_BATCH + 1;
  while (batches-- > 0) {
    n = gs_pool_take (pool, max_live_percent, v, GS_COMPACT_BATCH);
    if (n == 0)
      break;
    any = true;
    qsort (v, n, sizeof *v, by_live);
    for (i = 0; i < n; i++) {
      gs_pool_walk (pool, v[i], relocate, opaque);
      gs_pool_give_back (pool, v[i]);
    }
  }
  if (any)
    __atomic_add_fetch (&pool->compactions, 1, __ATOMIC_RELAXED);
  return __atomic_load_n (&pool->moved, __ATOMIC_RELAXED) - before;
}

/* gs_pool_get_stats - see pool.h. */
void
gs_pool_get_stats (struct gs_pool *pool, struct gs_pool_stats *st)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool->lock);
  struct gs_segment *s;

  memset (st, 0, sizeof *st);
  st->segments = pool->segments;
  st->segment_bytes = pool->segments * SEGMENT_BYTES;
  st->live_bytes = __atomic_load_n (&pool->live_bytes, __ATOMIC_RELAXED);
  st->objects = __atomic_load_n (&pool->objects, __ATOMIC_RELAXED);
  st->header_bytes = st->objects * GS_OBJ_HEADER;
  for (s = pool->oldest; s; s = s->next)
    st->garbage_bytes += s->used
      - (__atomic_load_n (&s->state, __ATOMIC_RELAXED) & SEG_LIVE_MASK);
  st->compactions = __atomic_load_n (&pool->compactions, __ATOMIC_RELAXED);
  st->moved = __atomic_load_n (&pool->moved, __ATOMIC_RELAXED);
}
