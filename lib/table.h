/* ghostswap: the cluster table maps a cluster index (ghost slot / 512) to
 * its cluster: a lock, a count of used slots and, while any slot is used,
 * an array of 512 entries (entry.h).
 *
 * The table is a radix tree built on demand: interior nodes of 512
 * pointers, leaves of 64 clusters.  Nodes are installed with a
 * compare-and-swap and live until the table is destroyed, so lookups take
 * no lock; a cluster's entry array is allocated on the first write to it
 * and freed when its last slot becomes empty, under the cluster lock.  An
 * empty device of any size costs one root node (4 KiB).
 */
#ifndef GHOSTSWAP_TABLE_H
#define GHOSTSWAP_TABLE_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "entry.h"

#define GS_CLUSTER_SHIFT 9
#define GS_CLUSTER_SLOTS (1u << GS_CLUSTER_SHIFT)   /* 512 slots, 2 MiB */
#define GS_NODE_SHIFT    9                          /* 512 children */
#define GS_LEAF_SHIFT    6                          /* 64 clusters */

struct gs_cluster {
  /* The cluster lock: protects used, entries[] and every RAM object or
   * pattern reference that an entry of this cluster points to.  Functions
   * named __* expect the caller to hold it. */
  pthread_mutex_t lock;
#ifndef NDEBUG
  pthread_t owner;            /* holder, for lock assertions */
#endif
  uint32_t used;              /* non-empty entries */
  gs_entry *entries;          /* GS_CLUSTER_SLOTS entries, or NULL if none used */
};

struct gs_table {
  void *root;                 /* interior node, or the only leaf */
  unsigned levels;            /* interior levels above the leaves */
  uint64_t nclusters;
  uint64_t node_bytes;        /* atomic: bytes of interior nodes and leaves */
  uint64_t clusters_live;     /* atomic: clusters with an entry array */
};

/* gs_table_init - an empty table for @nclusters clusters.
 * Context: may allocate.  Return: 0 or -ENOMEM.
 */
int gs_table_init (struct gs_table *t, uint64_t nclusters);

/* gs_table_destroy - free nodes and entry arrays (not what entries point to).
 * Context: no other call running.  Return: nothing.
 */
void gs_table_destroy (struct gs_table *t);

/* gs_table_get - the cluster with index @cidx; with @create, build the path
 * to it if missing.
 * Context: lock-free; may allocate with @create.
 * Return: the cluster, or NULL if absent (or -ENOMEM when creating).
 */
struct gs_cluster *gs_table_get (struct gs_table *t, uint64_t cidx, bool create);

/* gs_table_next - the first cluster index >= @from and < @end whose entry
 * array exists, skipping absent subtrees without visiting them.  The answer
 * is a hint: lock the cluster and look again.
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
 * Context: caller holds c->lock.
 * Return: 0 or -ENOMEM (entry unchanged).
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
