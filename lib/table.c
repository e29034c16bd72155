/* ghostswap: the cluster table. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#define NODE_FANOUT (1u << GS_NODE_SHIFT)
#define LEAF_FANOUT (1u << GS_LEAF_SHIFT)

struct node {
  void *child[NODE_FANOUT];   /* struct node * or struct leaf * */
};

struct leaf {
  struct gs_cluster cluster[LEAF_FANOUT];
};

static void
count_bytes (struct gs_table *t, int64_t delta)
{
  __atomic_add_fetch (&t->node_bytes, (uint64_t) delta, __ATOMIC_RELAXED);
}

static struct leaf *
leaf_new (struct gs_table *t)
{
  struct leaf *l = calloc (1, sizeof *l);
  unsigned i;

  if (!l)
    return NULL;
  for (i = 0; i < LEAF_FANOUT; i++)
    pthread_mutex_init (&l->cluster[i].lock, NULL);
  count_bytes (t, sizeof *l);
  return l;
}

static struct node *
node_new (struct gs_table *t)
{
  struct node *n = calloc (1, sizeof *n);

  if (n)
    count_bytes (t, sizeof *n);
  return n;
}

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
  t->root = t->levels ? (void *) node_new (t) : (void *) leaf_new (t);
  return t->root ? 0 : -ENOMEM;
}

static void
free_subtree (void *p, unsigned level)
{
  unsigned i;

  if (!p)
    return;
  if (level == 0) {
    struct leaf *l = p;
    for (i = 0; i < LEAF_FANOUT; i++) {
      free (l->cluster[i].entries);
      pthread_mutex_destroy (&l->cluster[i].lock);
    }
  }
  else {
    struct node *n = p;
    for (i = 0; i < NODE_FANOUT; i++)
      free_subtree (n->child[i], level - 1);
  }
  free (p);
}

/* gs_table_destroy - see table.h. */
void
gs_table_destroy (struct gs_table *t)
{
  free_subtree (t->root, t->levels);
  t->root = NULL;
}

static unsigned
child_index (uint64_t cidx, unsigned level)
{
  return (unsigned) (cidx >> (GS_LEAF_SHIFT + GS_NODE_SHIFT * (level - 1)))
    & (NODE_FANOUT - 1);
}

/* gs_table_get - see table.h. */
struct gs_cluster *
gs_table_get (struct gs_table *t, uint64_t cidx, bool create)
{
  void *p = t->root;
  unsigned level;

  for (level = t->levels; level > 0; level--) {
    void **slot = &((struct node *) p)->child[child_index (cidx, level)];
    void *child = __atomic_load_n (slot, __ATOMIC_ACQUIRE);

    if (!child) {
      void *fresh, *expected = NULL;
      if (!create)
        return NULL;
      fresh = level > 1 ? (void *) node_new (t) : (void *) leaf_new (t);
      if (!fresh)
        return NULL;
      if (__atomic_compare_exchange_n (slot, &expected, fresh, false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        child = fresh;
      else {
        /* Another thread installed it first: use theirs. */
        if (level > 1)
          count_bytes (t, -(int64_t) sizeof (struct node));
        else {
          unsigned i;
          for (i = 0; i < LEAF_FANOUT; i++)
            pthread_mutex_destroy (&((struct leaf *) fresh)->cluster[i].lock);
          count_bytes (t, -(int64_t) sizeof (struct leaf));
        }
        free (fresh);
        child = expected;
      }
    }
    p = child;
  }
  return &((struct leaf *) p)->cluster[cidx & (LEAF_FANOUT - 1)];
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
      void *child = __atomic_load_n (&n->child[i], __ATOMIC_ACQUIRE);
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
  if (end > t->nclusters)
    end = t->nclusters;
  if (from >= end)
    return false;
  return next_in (t->root, t->levels, 0, from, end, cidx);
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
    entries = calloc (GS_CLUSTER_SLOTS, sizeof (gs_entry));
    if (!entries)
      return -ENOMEM;
    __atomic_store_n (&c->entries, entries, __ATOMIC_RELEASE);
    __atomic_add_fetch (&t->clusters_live, 1, __ATOMIC_RELAXED);
  }
  old = c->entries[i];
  c->entries[i] = e;
  if (entry_is_empty (old) && !entry_is_empty (e))
    c->used++;
  else if (!entry_is_empty (old) && entry_is_empty (e) && --c->used == 0) {
    gs_entry *entries = c->entries;
    __atomic_store_n (&c->entries, NULL, __ATOMIC_RELEASE);
    free (entries);
    __atomic_sub_fetch (&t->clusters_live, 1, __ATOMIC_RELAXED);
  }
  return 0;
}
