/* ghostswap: the cluster table (see table.h).
 *
 * Why freeing leaves and nodes is safe for lock-free lookups.
 *
 * A lookup descends from the root loading child pointers with no lock,
 * inside a read section: section_enter adds one to its shard's counter of
 * the current epoch parity, section_exit takes it off.  A leaf or node is
 * first unlinked (its parent's pointer set to NULL, under the shape lock),
 * then a grace period runs: wait until no section of the other parity is
 * open, flip the epoch, wait until none of the old parity is.  Any section
 * that loaded the unlinked pointer began (its counter increment, a
 * sequentially consistent read-modify-write) before the unlinking store
 * (sequentially consistent too): otherwise its later load would have
 * seen NULL.  Such a section counts under the parity it read, which is the
 * current or the previous one; the grace period waits for both, and each
 * wait can only be held up by sections already open (new ones count under
 * the new parity), which never block.  So when the grace period ends no
 * thread can still reach the freed memory through a load.
 *
 * A lookup does not keep its section open while it uses the cluster: it
 * takes a hold on the leaf instead (before leaving the section, so the
 * leaf is still there).  Dropping the hold is done in a section too: the
 * moment the count reaches 0 another thread may free the leaf, and this
 * one still looks at it to try to free it itself.  The leaf's state word counts holders and live
 * clusters (with an entry array) and has a DEAD flag.  A leaf dies only
 * when its word goes from exactly 0 to DEAD by compare-and-swap, under the
 * shape lock, which also unlinks it; a lookup whose hold finds DEAD drops
 * it and treats the cluster as absent (it was empty when it died).  Since
 * every change to a cluster's entries happens under a hold, a leaf with a
 * live cluster or a holder never dies.
 *
 * Creating a path takes the shape lock and descends again from the root:
 * everything reachable from the root under that lock is alive, so nothing
 * is ever installed into a node being unlinked.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "table.h"

/* Under AddressSanitizer a freed block is poisoned, so that a lookup
 * reaching one (the thing the grace period prevents) is reported even
 * though the arena keeps the page mapped. */
#if defined (__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define block_poison(p) ASAN_POISON_MEMORY_REGION ((p), GS_TABLE_BLOCK)
#define block_unpoison(p) ASAN_UNPOISON_MEMORY_REGION ((p), GS_TABLE_BLOCK)
#else
#define block_poison(p) ((void) (p))
#define block_unpoison(p) ((void) (p))
#endif

#define NODE_FANOUT (1u << GS_NODE_SHIFT)
#define LEAF_FANOUT (1u << GS_LEAF_SHIFT)

struct node {
  void *child[NODE_FANOUT];   /* struct node * or struct leaf * */
};

struct leaf {
  struct gs_cluster cluster[LEAF_FANOUT];
};

_Static_assert (sizeof (struct node) == GS_TABLE_BLOCK, "a node is a block");
_Static_assert (sizeof (struct leaf) <= GS_TABLE_BLOCK, "a leaf fits a block");
_Static_assert (GS_CLUSTER_SLOTS * sizeof (gs_entry) == GS_TABLE_BLOCK,
                "an entry array is a block");

/* The leaf state word (cluster[0].leaf_word). */
#define HOLD_ONE   1u
#define HOLD_MASK  ((1u << 24) - 1)
#define LIVE_ONE   (1u << 24)         /* 7 bits: 0..64 live clusters */
#define LEAF_DEAD  (1u << 31)

static uint32_t *
leaf_state (struct leaf *l)
{
  return &l->cluster[0].leaf_word;
}

static uint64_t
leaf_base (const struct leaf *l)
{
  return l->cluster[1].leaf_word | (uint64_t) l->cluster[2].leaf_word << 32;
}

static struct leaf *
leaf_of (struct gs_cluster *c)
{
  return (struct leaf *) ((uintptr_t) c & ~(uintptr_t) (GS_TABLE_BLOCK - 1));
}

/* --- blocks of the metadata arena --- */

/* gs_table_metadata_bytes - see table.h. */
uint64_t
gs_table_metadata_bytes (struct gs_table *t)
{
  return __atomic_load_n (&t->node_bytes, __ATOMIC_RELAXED)
    + __atomic_load_n (&t->clusters_live, __ATOMIC_RELAXED) * GS_TABLE_BLOCK;
}

/* gs_table_set_limit - see table.h. */
void
gs_table_set_limit (struct gs_table *t, uint64_t bytes)
{
  __atomic_store_n (&t->limit, bytes, __ATOMIC_RELAXED);
}

/* A zeroed block, counted as node bytes (@node) or as an entry array.
 * @n blocks must fit under the limit (the rest of a path being built).
 * Return: the block, or NULL with errno ENOSPC / ENOMEM. */
static void *
block_alloc (struct gs_table *t, bool node, unsigned n)
{
  uint64_t limit = __atomic_load_n (&t->limit, __ATOMIC_RELAXED);
  void *p;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&t->arena_lock);
    if (limit
        && gs_table_metadata_bytes (t) + (uint64_t) n * GS_TABLE_BLOCK > limit) {
      errno = ENOSPC;
      return NULL;
    }
    p = gs_arena_alloc (&t->arena);
    if (!p)
      return NULL;
    if (node)
      __atomic_add_fetch (&t->node_bytes, GS_TABLE_BLOCK, __ATOMIC_RELAXED);
    else
      __atomic_add_fetch (&t->clusters_live, 1, __ATOMIC_RELAXED);
  }
  gs_mem_add (&t->mem, GS_TABLE_BLOCK);
  block_unpoison (p);
  /* A reused block is zero only if MADV_DONTNEED was allowed. */
  memset (p, 0, GS_TABLE_BLOCK);
  return p;
}

static void
block_free (struct gs_table *t, void *p, bool node)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&t->arena_lock);
    block_poison (p);
    gs_arena_free (&t->arena, p);
    if (node)
      __atomic_sub_fetch (&t->node_bytes, GS_TABLE_BLOCK, __ATOMIC_RELAXED);
    else
      __atomic_sub_fetch (&t->clusters_live, 1, __ATOMIC_RELAXED);
  }
  gs_mem_add (&t->mem, -(int64_t) GS_TABLE_BLOCK);
}

static struct leaf *
leaf_new (struct gs_table *t, uint64_t base, unsigned n)
{
  struct leaf *l = block_alloc (t, true, n);
  unsigned i;

  if (!l)
    return NULL;
  for (i = 0; i < LEAF_FANOUT; i++)
    pthread_mutex_init (&l->cluster[i].lock, NULL);
  l->cluster[1].leaf_word = (uint32_t) base;
  l->cluster[2].leaf_word = (uint32_t) (base >> 32);
  return l;
}

static void
leaf_free (struct gs_table *t, struct leaf *l)
{
  unsigned i;

  for (i = 0; i < LEAF_FANOUT; i++)
    pthread_mutex_destroy (&l->cluster[i].lock);
  block_free (t, l, true);
}

/* --- read sections and grace periods --- */

static unsigned
my_shard (void)
{
  static unsigned next;
  static __thread unsigned shard = UINT_MAX;

  if (shard == UINT_MAX)
    shard = __atomic_fetch_add (&next, 1, __ATOMIC_RELAXED) % GS_TABLE_SHARDS;
  return shard;
}

static uint64_t *
section_enter (struct gs_table *t)
{
  unsigned parity = __atomic_load_n (&t->epoch, __ATOMIC_RELAXED) & 1;
  uint64_t *counter = &t->shard[my_shard ()].readers[parity];

  __atomic_add_fetch (counter, 1, __ATOMIC_SEQ_CST);
  return counter;
}

static void
section_exit (uint64_t *counter)
{
  __atomic_sub_fetch (counter, 1, __ATOMIC_RELEASE);
}

static void
wait_readers (struct gs_table *t, unsigned parity)
{
  for (;;) {
    uint64_t open = 0;
    unsigned i;

    for (i = 0; i < GS_TABLE_SHARDS; i++)
      open += __atomic_load_n (&t->shard[i].readers[parity], __ATOMIC_SEQ_CST);
    if (open == 0)
      return;
    sched_yield ();
  }
}

/* Wait until no lookup can still see what was unlinked before the call. */
static void
grace_period (struct gs_table *t)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&t->grace_lock);
  unsigned epoch = __atomic_load_n (&t->epoch, __ATOMIC_SEQ_CST);

  wait_readers (t, (epoch & 1) ^ 1);
  __atomic_store_n (&t->epoch, epoch + 1, __ATOMIC_SEQ_CST);
  wait_readers (t, epoch & 1);
}

/* --- the tree --- */

/* gs_table_init - see table.h. */
int
gs_table_init (struct gs_table *t, uint64_t nclusters)
{
  unsigned bits = GS_LEAF_SHIFT;

  memset (t, 0, sizeof *t);
  t->nclusters = nclusters;
  while (bits < 64 && (nclusters - 1) >> bits != 0) {
    bits += GS_NODE_SHIFT;
    t->levels++;
  }
  pthread_mutex_init (&t->shape_lock, NULL);
  pthread_mutex_init (&t->arena_lock, NULL);
  pthread_mutex_init (&t->grace_lock, NULL);
  gs_arena_init (&t->arena, GS_TABLE_BLOCK);
  t->arena.dump = true;       /* metadata belongs in a core dump */
  t->root = t->levels ? block_alloc (t, true, 1) : (void *) leaf_new (t, 0, 1);
  if (!t->root) {
    gs_table_destroy (t);
    return -ENOMEM;
  }
  return 0;
}

static void
destroy_subtree (void *p, unsigned level)
{
  unsigned i;

  if (!p)
    return;
  if (level == 0) {
    struct leaf *l = p;
    for (i = 0; i < LEAF_FANOUT; i++)
      pthread_mutex_destroy (&l->cluster[i].lock);
  }
  else {
    struct node *n = p;
    for (i = 0; i < NODE_FANOUT; i++)
      destroy_subtree (n->child[i], level - 1);
  }
}

/* gs_table_destroy - see table.h. */
void
gs_table_destroy (struct gs_table *t)
{
  destroy_subtree (t->root, t->levels);
  t->root = NULL;
  gs_mem_add (&t->mem, -(int64_t) gs_table_metadata_bytes (t));
  gs_arena_destroy (&t->arena);     /* every block at once */
  pthread_mutex_destroy (&t->grace_lock);
  pthread_mutex_destroy (&t->arena_lock);
  pthread_mutex_destroy (&t->shape_lock);
}

static unsigned
child_index (uint64_t cidx, unsigned level)
{
  return (unsigned) (cidx >> (GS_LEAF_SHIFT + GS_NODE_SHIFT * (level - 1)))
    & (NODE_FANOUT - 1);
}

/* Take a hold on @l unless it is dead.  Context: in a read section or
 * under the shape lock. */
static bool
leaf_hold (struct leaf *l)
{
  uint32_t old = __atomic_fetch_add (leaf_state (l), HOLD_ONE, __ATOMIC_ACQ_REL);

  /* Eight million holds on one leaf mean gets without puts: they would
   * overflow into the live count (and in the end the DEAD flag). */
  assert ((old & HOLD_MASK) < HOLD_MASK / 2);
  if (old & LEAF_DEAD) {
    __atomic_sub_fetch (leaf_state (l), HOLD_ONE, __ATOMIC_RELEASE);
    return false;
  }
  return true;
}

static bool
node_empty (const struct node *n)
{
  unsigned i;

  for (i = 0; i < NODE_FANOUT; i++)
    if (n->child[i])
      return false;
  return true;
}

/* Unlink the empty node or leaf at @level on the path to @cidx, then any
 * node above it left empty (never the root); put what was unlinked in
 * @gone (at most t->levels blocks), leaves first.  Context: shape lock.
 * Return: how many. */
static unsigned
unlink_empty (struct gs_table *t, uint64_t cidx, unsigned level, void **gone)
{
  void *path[16];
  void *p = t->root;
  unsigned l, n = 0;

  for (l = t->levels; l > level; l--) {
    path[l] = p;
    p = ((struct node *) p)->child[child_index (cidx, l)];
  }
  /* p is the block at @level; path[l] its ancestors. */
  for (l = level + 1; l <= t->levels; l++) {
    __atomic_store_n (&((struct node *) path[l])->child[child_index (cidx, l)],
                      NULL, __ATOMIC_SEQ_CST);
    gone[n++] = p;
    p = path[l];
    if (l == t->levels || !node_empty (p))
      break;
  }
  return n;
}

/* Free what unlink_empty gave, the first @leaves of it leaves, after a
 * grace period.  Context: no shape lock. */
static void
free_unlinked (struct gs_table *t, void **gone, unsigned n, unsigned leaves)
{
  unsigned i;

  if (n == 0)
    return;
  grace_period (t);
  for (i = 0; i < n; i++) {
    if (i < leaves)
      leaf_free (t, gone[i]);
    else
      block_free (t, gone[i], true);
    __atomic_add_fetch (&t->leaves_freed, 1, __ATOMIC_RELAXED);
  }
}

/* Build the path to @cidx and hold its leaf.  Context: shape lock.
 * Return: the leaf, or NULL with errno set; *@gone / *@ngone: empty nodes
 * this call installed and had to unlink again on a failure. */
static struct leaf *
build_path (struct gs_table *t, uint64_t cidx, void **gone, unsigned *ngone)
{
  void *p = t->root;
  unsigned level, missing = 0;
  int err;

  *ngone = 0;
  /* How many blocks the path lacks: all of them must fit the limit. */
  for (level = t->levels; level > 0 && p; level--) {
    p = ((struct node *) p)->child[child_index (cidx, level)];
    if (!p)
      missing = level;
  }
  p = t->root;
  for (level = t->levels; level > 0; level--) {
    void **slot = &((struct node *) p)->child[child_index (cidx, level)];
    void *child = *slot;

    if (!child) {
      child = level > 1
        ? block_alloc (t, true, missing)
        : (void *) leaf_new (t, cidx & ~(uint64_t) (LEAF_FANOUT - 1), missing);
      if (!child)
        goto fail;
      missing--;
      __atomic_store_n (slot, child, __ATOMIC_SEQ_CST);
    }
    p = child;
  }
  leaf_hold (p);              /* alive: reachable under the shape lock */
  return p;

 fail:
  err = errno;
  /* A node this call installed is still empty: unlink it again (a node
   * that was there before has a child). */
  if (level < t->levels && node_empty (p))
    *ngone = unlink_empty (t, cidx, level, gone);
  errno = err;
  return NULL;
}

/* gs_table_get - see table.h. */
struct gs_cluster *
gs_table_get (struct gs_table *t, uint64_t cidx, bool create)
{
  struct leaf *l;
  void *gone[16];
  unsigned ngone;
  int err;

  if (t->levels == 0)         /* the root leaf, never freed */
    return &((struct leaf *) t->root)->cluster[cidx];
  {
    uint64_t *section = section_enter (t);
    void *p = t->root;
    unsigned level;

    for (level = t->levels; level > 0 && p; level--)
      p = __atomic_load_n (&((struct node *) p)->child[child_index (cidx, level)],
                           __ATOMIC_SEQ_CST);
    l = p;
    if (l && !leaf_hold (l))
      l = NULL;               /* dead: it was empty */
    section_exit (section);
  }
  if (!l && create) {
    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&t->shape_lock);
      l = build_path (t, cidx, gone, &ngone);
      err = errno;
    }
    if (!l) {
      free_unlinked (t, gone, ngone, 0);
      errno = err;
      return NULL;
    }
  }
  if (!l) {
    errno = 0;
    return NULL;
  }
  return &l->cluster[cidx & (LEAF_FANOUT - 1)];
}

/* gs_table_put - see table.h. */
void
gs_table_put (struct gs_table *t, struct gs_cluster *c)
{
  struct leaf *l;
  void *gone[16];
  unsigned n = 0;
  uint64_t *section;

  if (!c || t->levels == 0)
    return;
  l = leaf_of (c);
  /* Once the hold is dropped another thread may free the leaf: a read
   * section keeps its memory until this thread is done with it. */
  section = section_enter (t);
  if (__atomic_sub_fetch (leaf_state (l), HOLD_ONE, __ATOMIC_ACQ_REL) == 0) {
    /* No holder and no live cluster: free the leaf unless someone takes
     * a hold first (their hold makes the swap fail) or another thread
     * freed it already (it is DEAD). */
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&t->shape_lock);
    uint32_t expected = 0;

    if (__atomic_compare_exchange_n (leaf_state (l), &expected, LEAF_DEAD,
                                     false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
      n = unlink_empty (t, leaf_base (l), 0, gone);
  }
  section_exit (section);
  free_unlinked (t, gone, n, 1);
}

/* Search the subtree @p at @level, which covers cluster indexes from
 * @base, for the first present cluster in [@from, @end). */
static bool
next_in (void *p, unsigned level, uint64_t base, uint64_t from, uint64_t end,
         uint64_t *cidx)
{
  unsigned i;

  if (level == 0) {
    struct leaf *l = p;
    i = from > base ? (unsigned) (from - base) : 0;
    for (; i < LEAF_FANOUT && base + i < end; i++)
      if (__atomic_load_n (&l->cluster[i].entries, __ATOMIC_RELAXED)) {
        *cidx = base + i;
        return true;
      }
    return false;
  }
  else {
    struct node *n = p;
    unsigned shift = GS_LEAF_SHIFT + GS_NODE_SHIFT * (level - 1);
    uint64_t span = UINT64_C (1) << shift;

    i = from > base ? (unsigned) ((from - base) >> shift) : 0;
    for (; i < NODE_FANOUT && base + i * span < end; i++) {
      void *child = __atomic_load_n (&n->child[i], __ATOMIC_SEQ_CST);
      if (child && next_in (child, level - 1, base + i * span, from, end, cidx))
        return true;
    }
    return false;
  }
}

/* gs_table_next - see table.h. */
bool
gs_table_next (struct gs_table *t, uint64_t from, uint64_t end, uint64_t *cidx)
{
  uint64_t *section;
  bool found;

  if (end > t->nclusters)
    end = t->nclusters;
  if (from >= end)
    return false;
  section = section_enter (t);
  found = next_in (t->root, t->levels, 0, from, end, cidx);
  section_exit (section);
  return found;
}

/* gs_cluster_lock - see table.h. */
void
gs_cluster_lock (struct gs_cluster *c)
{
  pthread_mutex_lock (&c->lock);
#ifndef NDEBUG
  __atomic_store_n (&c->owner, pthread_self (), __ATOMIC_RELAXED);
#endif
}

/* gs_cluster_unlock - see table.h. */
void
gs_cluster_unlock (struct gs_cluster *c)
{
  assert_cluster_locked (c);
#ifndef NDEBUG
  __atomic_store_n (&c->owner, (pthread_t) 0, __ATOMIC_RELAXED);
#endif
  pthread_mutex_unlock (&c->lock);
}

/* __gs_cluster_set - see table.h. */
int
__gs_cluster_set (struct gs_table *t, struct gs_cluster *c, unsigned i,
                  gs_entry e)
{
  gs_entry old;

  assert_cluster_locked (c);
  if (!c->entries) {
    gs_entry *entries;
    if (entry_is_empty (e))
      return 0;
    entries = block_alloc (t, false, 1);
    if (!entries)
      return -errno;
    __atomic_add_fetch (leaf_state (leaf_of (c)), LIVE_ONE, __ATOMIC_RELAXED);
    __atomic_store_n (&c->entries, entries, __ATOMIC_RELEASE);
  }
  old = c->entries[i];
  c->entries[i] = e;
  if (entry_is_empty (old) && !entry_is_empty (e))
    c->used++;
  else if (!entry_is_empty (old) && entry_is_empty (e) && --c->used == 0) {
    gs_entry *entries = c->entries;
    __atomic_store_n (&c->entries, NULL, __ATOMIC_RELEASE);
    block_free (t, entries, false);
    __atomic_sub_fetch (leaf_state (leaf_of (c)), LIVE_ONE, __ATOMIC_RELAXED);
  }
  return 0;
}
