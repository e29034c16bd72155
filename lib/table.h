/* ghostswap: the cluster table maps a cluster index (ghost slot / 512) to
 * its cluster: a lock, a count of used slots and, while any slot is used,
 * an array of 512 entries (entry.h).
 *
 * The table is a radix tree built on demand: interior nodes of 512
 * pointers, leaves of 64 clusters.  Every node, leaf and entry array is a
 * 4 KiB block of the table's own metadata arena (arena.c), counted in
 * metadata_bytes() and capped by gs_table_set_limit: past the cap, what
 * needs a new block fails with ENOSPC.  An empty device of any size costs
 * one root node (4 KiB).
 *
 * Lookups take no lock.  Memory is kept bounded under any request pattern
 * by freeing what becomes empty:
 *
 *  - a cluster's entry array is freed, under the cluster lock, when its
 *    last slot becomes empty (as before);
 *  - a leaf is freed when none of its clusters has an entry array and no
 *    thread holds one of them, and an interior node when its last child
 *    goes.
 *
 * How that is safe for lock-free lookups (see table.c for the proof):
 * gs_table_get returns a *held* cluster: the leaf's hold count (one
 * atomic word with its live-cluster count and a dead flag) keeps it from
 * being freed until gs_table_put.  A leaf dies only by a compare-and-swap
 * of that word from exactly 0 (no holders, no live clusters) to DEAD,
 * under the table's shape lock, and is unlinked in the same critical
 * section; a lookup that finds a DEAD leaf treats it as absent.  The
 * short lock-free descent itself (loading node pointers, then taking the
 * hold) runs inside a read section counted per thread shard, and an
 * unlinked node or leaf is freed only after a grace period in which every
 * section that could have seen it has ended (two-phase epoch flip, as
 * SRCU).  Sections never block, so a grace period takes microseconds.
 *
 * Every gs_table_get must be paired with a gs_table_put.  A missing put
 * only keeps its leaf alive for a while, but the hold count has 24 bits:
 * about 16 million leaked holds on one leaf would overflow it into the
 * live count and, past 2^31, into the DEAD flag (debug builds assert
 * long before).
 *
 * Lock order: cluster lock -> shape lock -> arena lock.
 */
#ifndef GHOSTSWAP_TABLE_H
#define GHOSTSWAP_TABLE_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "entry.h"
#include "memacct.h"

#define GS_CLUSTER_SHIFT 9
#define GS_CLUSTER_SLOTS (1u << GS_CLUSTER_SHIFT)   /* 512 slots, 2 MiB */
#define GS_NODE_SHIFT    9                          /* 512 children */
#define GS_LEAF_SHIFT    6                          /* 64 clusters */
#define GS_TABLE_BLOCK   4096u                      /* node, leaf, entry array */
#define GS_TABLE_SHARDS  16u                        /* read-section counters */

struct gs_cluster {
  /* The cluster lock: protects used, entries[] and every RAM object or
   * pattern reference that an entry of this cluster points to.  Functions
   * named __* expect the caller to hold it. */
  pthread_mutex_t lock;
#ifndef NDEBUG
  pthread_t owner;            /* holder, for lock assertions */
#endif
  uint32_t used;              /* non-empty entries */
  uint32_t leaf_word;         /* table.c's, for the leaf as a whole: the
                               * first cluster's holds its state, the next
                               * two its first cluster index */
  gs_entry *entries;          /* GS_CLUSTER_SLOTS entries, or NULL if none used */
};

struct gs_table_shard {
  uint64_t readers[2];        /* atomic: sections open, by epoch parity */
  char pad[48];               /* one shard's counters per cache line (no
                               * alignment attribute: the table lives in
                               * calloc'd memory) */
};

struct gs_table {
  void *root;                 /* interior node, or the only leaf */
  unsigned levels;            /* interior levels above the leaves */
  uint64_t nclusters;
  uint64_t node_bytes;        /* atomic: bytes of interior nodes and leaves */
  uint64_t clusters_live;     /* atomic: clusters with an entry array */
  uint64_t limit;             /* atomic: cap on metadata_bytes, 0 = none */
  uint64_t leaves_freed;      /* atomic: leaves and nodes given back */
  struct gs_memacct mem;      /* the device's memory account (memacct.h):
                               * the table's blocks, and whatever else the
                               * device points at it */
  pthread_mutex_t shape_lock; /* protects installing and unlinking nodes
                               * and leaves (not lookups) */
  pthread_mutex_t arena_lock; /* protects arena */
  pthread_mutex_t grace_lock; /* one grace period at a time; protects epoch
                               * changes */
  unsigned epoch;             /* atomic */
  struct gs_arena arena;      /* 4 KiB blocks: nodes, leaves, entry arrays */
  struct gs_table_shard shard[GS_TABLE_SHARDS];
};

/* gs_table_init - an empty table for @nclusters clusters, no limit.
 * Context: may allocate.  Return: 0 or -ENOMEM.
 */
int gs_table_init (struct gs_table *t, uint64_t nclusters);

/* gs_table_destroy - free nodes and entry arrays (not what entries point to).
 * Context: no other call running.  Return: nothing.
 */
void gs_table_destroy (struct gs_table *t);

/* gs_table_set_limit - cap the table's metadata at @bytes (0: no cap).
 * Blocks already held stay; new ones past the cap fail with ENOSPC.
 * Context: any.  Return: nothing.
 */
void gs_table_set_limit (struct gs_table *t, uint64_t bytes);

/* gs_table_metadata_bytes - bytes of nodes, leaves and entry arrays.
 * Context: any.  Return: bytes.
 */
uint64_t gs_table_metadata_bytes (struct gs_table *t);

/* gs_table_get - the cluster with index @cidx, held until gs_table_put;
 * with @create, build the path to it if missing.
 * Context: lock-free unless it creates (then takes the shape lock; may
 * allocate).
 * Return: the held cluster, or NULL: absent (errno 0), or, when creating,
 * errno ENOSPC (past the metadata limit) or ENOMEM.
 */
struct gs_cluster *gs_table_get (struct gs_table *t, uint64_t cidx, bool create);

/* gs_table_put - drop the hold gs_table_get took on @c (NULL is fine); a
 * leaf left with no holder and no entry array is freed.
 * Context: after @c's lock is released (the leaf may be freed here); may
 * hold other cluster locks;
 * may take the shape lock and wait for a grace period (microseconds).
 * Return: nothing.
 */
void gs_table_put (struct gs_table *t, struct gs_cluster *c);

/* gs_table_next - the first cluster index >= @from and < @end whose entry
 * array exists, skipping absent subtrees without visiting them.  The answer
 * is a hint: get and lock the cluster and look again.
 * Context: lock-free.
 * Return: true and *@cidx set, or false if there is none.
 */
bool gs_table_next (struct gs_table *t, uint64_t from, uint64_t end,
                    uint64_t *cidx);

/* gs_cluster_lock - take @c's lock.  Context: may sleep.  Return: nothing. */
void gs_cluster_lock (struct gs_cluster *c);

/* gs_cluster_unlock - release @c's lock.  Context: holds it.  Return: nothing. */
void gs_cluster_unlock (struct gs_cluster *c);

#ifndef NDEBUG
#define assert_cluster_locked(c) \
  assert (pthread_equal (__atomic_load_n (&(c)->owner, __ATOMIC_RELAXED), \
                         pthread_self ()))
#else
#define assert_cluster_locked(c) ((void) (c))
#endif

/* __gs_cluster_set - set entry @i of @c to @e, keeping used and the entry
 * array (allocated on the first non-empty entry, freed with the last).  The
 * caller has released what the old entry pointed to.
 * Context: caller holds c->lock and a hold on @c (gs_table_get).
 * Return: 0, or -ENOSPC (past the metadata limit) / -ENOMEM: entry
 * unchanged.
 */
int __gs_cluster_set (struct gs_table *t, struct gs_cluster *c, unsigned i,
                      gs_entry e);

/* __gs_cluster_entry - entry @i of @c.
 * Context: caller holds c->lock.  Return: the entry.
 */
static inline gs_entry
__gs_cluster_entry (struct gs_cluster *c, unsigned i)
{
  assert_cluster_locked (c);
  return c->entries ? c->entries[i] : GS_ENTRY_EMPTY;
}

#endif /* GHOSTSWAP_TABLE_H */
