/* The cluster table frees empty leaves and nodes while lookups run with
 * no lock: threads create, fill, empty and look up clusters of a few
 * leaves (so that leaves die and are rebuilt all the time), each checking
 * under the cluster lock that the entries are exactly what a shadow says.
 * A store into a leaf that was freed, or a lookup that lost a live leaf,
 * shows as a mismatch; a use after free as a crash (or an ASan report in
 * the sanitizer build).  At the end the table is back to its root. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "table.h"
#include "test.h"

#define THREADS 4
#define ITERS 200000
#define LEAVES 3
#define SLOTS 2                 /* slots used per cluster */
#define USED 2                  /* clusters used per leaf */

static struct gs_table table;
static uint64_t base;           /* first cluster index used */
static gs_entry shadow[LEAVES * USED][SLOTS];   /* under each cluster's lock */
static uint64_t seed;

static void *
worker (void *arg)
{
  uint64_t s = seed + (uint64_t) (uintptr_t) arg * 0x9e3779b97f4a7c15ull;
  unsigned n;

  for (n = 0; n < ITERS; n++) {
    unsigned k = (unsigned) rnd_below (&s, LEAVES * USED);
    unsigned op = (unsigned) rnd_below (&s, 10);
    uint64_t cidx = base + (uint64_t) (k / USED) * (1u << 15) + k % USED;
    struct gs_cluster *c;
    unsigned i;

    if (op == 0) {
      uint64_t got;
      if (gs_table_next (&table, base, base + LEAVES * (1u << 15), &got))
        CHECK (got >= base);
      continue;
    }
    c = gs_table_get (&table, cidx, op >= 4);
    if (!c) {
      /* Absent: it must be empty in the shadow too... unless another
       * thread is filling it right now; only check when creating. */
      CHECK (op < 4);
      continue;
    }
    gs_cluster_lock (c);
    for (i = 0; i < SLOTS; i++)
      CHECKF (__gs_cluster_entry (c, i) == shadow[k][i],
              "cluster %u slot %u: entry %#" PRIx64 ", shadow %#" PRIx64,
              k, i, __gs_cluster_entry (c, i), shadow[k][i]);
    if (op >= 4) {
      gs_entry e = op >= 6 ? GS_ENTRY_EMPTY
        : pattern_to_entry (1 + rnd_below (&s, 1000));
      i = (unsigned) rnd_below (&s, SLOTS);
      CHECK_OK (__gs_cluster_set (&table, c, i, e));
      shadow[k][i] = e;
    }
    gs_cluster_unlock (c);
    gs_table_put (&table, c);
  }
  return NULL;
}

int
main (int argc, char **argv)
{
  pthread_t th[THREADS];
  uint64_t k, i;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  /* 2^40 clusters: three interior levels.  Leaves 2^15 clusters apart so
   * that each has interior nodes of its own, freed with it. */
  CHECK_OK (gs_table_init (&table, UINT64_C (1) << 40));
  base = (seed % 1000) << 24;
  for (k = 0; k < THREADS; k++)
    CHECK (pthread_create (&th[k], NULL, worker, (void *) (uintptr_t) k) == 0);
  for (k = 0; k < THREADS; k++)
    pthread_join (th[k], NULL);

  /* Empty what is left. */
  for (k = 0; k < LEAVES * USED; k++) {
    uint64_t cidx = base + (k / USED) * (1u << 15) + k % USED;
    struct gs_cluster *c = gs_table_get (&table, cidx, false);
    if (!c)
      continue;
    gs_cluster_lock (c);
    for (i = 0; i < SLOTS; i++) {
      CHECK (__gs_cluster_entry (c, (unsigned) i) == shadow[k][i]);
      CHECK_OK (__gs_cluster_set (&table, c, (unsigned) i, GS_ENTRY_EMPTY));
    }
    gs_cluster_unlock (c);
    gs_table_put (&table, c);
  }
  CHECKF (table.node_bytes == 4096 && table.clusters_live == 0,
          "left: %" PRIu64 " node bytes, %" PRIu64 " clusters",
          table.node_bytes, table.clusters_live);
  CHECKF (table.leaves_freed > 100, "only %" PRIu64 " leaves and nodes freed",
          table.leaves_freed);
  CHECK (table.mem.bytes == 4096);
  fprintf (stderr, "%s: %" PRIu64 " leaves and nodes freed and rebuilt\n",
           test_argv0, table.leaves_freed);
  gs_table_destroy (&table);
  return 0;
}
