/* Clusters are allocated on the first write and freed with their last
 * used slot; the table skips absent clusters (lib/table.c). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "ghostswap/device.h"
#include "table.h"
#include "test.h"

#define CLUSTER_BYTES ((uint64_t) GS_CLUSTER_SLOTS * PAGE)

static struct gs_stats
stats (struct gs_device *dev)
{
  struct gs_stats st;
  gs_get_stats (dev, &st);
  return st;
}

static void
check_zero (struct gs_device *dev, uint64_t offset, uint32_t count)
{
  static unsigned char buf[4 * CLUSTER_BYTES];
  uint32_t i;

  CHECK (count <= sizeof buf);
  memset (buf, 0xcc, count);
  CHECK_OK (gs_pread (dev, buf, count, offset));
  for (i = 0; i < count; i++)
    CHECKF (buf[i] == 0, "byte %" PRIu64 " is %#x", offset + i, buf[i]);
}

/* The table on its own: a huge index space, a few scattered clusters. */
static void
table_direct (uint64_t *s)
{
  struct gs_table t;
  uint64_t idx[64], n = 0, i, got, from;
  const uint64_t nclusters = 1ull << 41;

  CHECK_OK (gs_table_init (&t, nclusters));
  CHECKF (t.node_bytes <= 8192, "empty table %" PRIu64 " bytes", t.node_bytes);
  CHECK (!gs_table_next (&t, 0, nclusters, &got));
  CHECK (gs_table_get (&t, 12345, false) == NULL);
  CHECK (gs_table_get (&t, nclusters - 1, false) == NULL);

  /* Edges, neighbours across leaf and node boundaries, and random. */
  idx[n++] = 0;
  idx[n++] = 1;
  idx[n++] = 63;
  idx[n++] = 64;
  idx[n++] = 512 * 64 - 1;
  idx[n++] = 512 * 64;
  idx[n++] = 1ull << 30;
  idx[n++] = (1ull << 30) + 1;
  idx[n++] = nclusters - 1;
  idx[n++] = nclusters - 64;
  while (n < 40) {
    uint64_t x = rnd_below (s, nclusters), j;
    for (j = 0; j < n && idx[j] != x; j++)
      ;
    if (j == n)
      idx[n++] = x;
  }
  /* Sort. */
  for (i = 1; i < n; i++) {
    uint64_t x = idx[i], j = i;
    for (; j > 0 && idx[j - 1] > x; j--)
      idx[j] = idx[j - 1];
    idx[j] = x;
  }

  for (i = 0; i < n; i++) {
    struct gs_cluster *c = gs_table_get (&t, idx[i], true);
    CHECK (c != NULL);
    CHECK (gs_table_get (&t, idx[i], false) == c);
    CHECK (gs_table_get (&t, idx[i], true) == c);
    /* A path without an entry array is not found by next. */
    CHECK (!gs_table_next (&t, idx[i], idx[i] + 1, &got));
    gs_cluster_lock (c);
    CHECK (__gs_cluster_entry (c, 7) == GS_ENTRY_EMPTY);
    CHECK_OK (__gs_cluster_set (&t, c, (unsigned) (idx[i] % GS_CLUSTER_SLOTS),
                                pattern_to_entry (idx[i])));
    CHECK (__gs_cluster_entry (c, (unsigned) (idx[i] % GS_CLUSTER_SLOTS))
           == pattern_to_entry (idx[i]));
    gs_cluster_unlock (c);
  }
  CHECK (t.clusters_live == n);
  /* Cost: a path per cluster, not per index. */
  CHECKF (t.node_bytes < n * 5 * 8192, "%" PRIu64 " node bytes",
          t.node_bytes);

  /* Walk: exactly the clusters set, in order. */
  from = 0;
  for (i = 0; i < n; i++) {
    CHECKF (gs_table_next (&t, from, nclusters, &got), "missing %" PRIu64,
            idx[i]);
    CHECKF (got == idx[i], "next from %" PRIu64 " = %" PRIu64 ", want %" PRIu64,
            from, got, idx[i]);
    from = got + 1;
  }
  CHECK (!gs_table_next (&t, from, nclusters, &got));
  /* From each index and just past it; with an end that stops short. */
  for (i = 0; i < n; i++) {
    CHECK (gs_table_next (&t, idx[i], nclusters, &got) && got == idx[i]);
    if (i + 1 < n) {
      CHECK (gs_table_next (&t, idx[i] + 1, nclusters, &got)
             && got == idx[i + 1]);
      CHECK (!gs_table_next (&t, idx[i] + 1, idx[i + 1], &got));
      CHECK (gs_table_next (&t, idx[i] + 1, idx[i + 1] + 1, &got)
             && got == idx[i + 1]);
    }
  }
  /* An end past the table is clamped. */
  CHECK (!gs_table_next (&t, nclusters, UINT64_MAX, &got));
  CHECK (gs_table_next (&t, nclusters - 1, UINT64_MAX, &got)
         && got == nclusters - 1);

  /* Emptying a cluster frees its entries: next skips it. */
  for (i = 0; i < n; i += 2) {
    struct gs_cluster *c = gs_table_get (&t, idx[i], false);
    gs_cluster_lock (c);
    CHECK_OK (__gs_cluster_set (&t, c, (unsigned) (idx[i] % GS_CLUSTER_SLOTS),
                                GS_ENTRY_EMPTY));
    CHECK (c->entries == NULL && c->used == 0);
    CHECK (__gs_cluster_entry (c, 0) == GS_ENTRY_EMPTY);
    gs_cluster_unlock (c);
  }
  CHECK (t.clusters_live == n / 2);
  from = 0;
  for (i = 1; i < n; i += 2) {
    CHECK (gs_table_next (&t, from, nclusters, &got));
    CHECKF (got == idx[i], "got %" PRIu64 " want %" PRIu64, got, idx[i]);
    from = got + 1;
  }
  CHECK (!gs_table_next (&t, from, nclusters, &got));
  gs_table_destroy (&t);

  /* Small tables: a single leaf, and just past one leaf. */
  {
    static const uint64_t sizes[] = { 1, 2, 63, 64, 65, 512 * 64, 512 * 64 + 1 };
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      uint64_t nc = sizes[i], last = nc - 1;
      struct gs_cluster *c;
      CHECK_OK (gs_table_init (&t, nc));
      CHECK (!gs_table_next (&t, 0, nc, &got));
      c = gs_table_get (&t, last, true);
      CHECK (c != NULL);
      gs_cluster_lock (c);
      CHECK_OK (__gs_cluster_set (&t, c, 511, pattern_to_entry (5)));
      gs_cluster_unlock (c);
      CHECK (gs_table_next (&t, 0, nc, &got) && got == last);
      CHECK (!gs_table_next (&t, 0, last, &got));
      gs_table_destroy (&t);
    }
  }
}

/* Threads building the same paths at once get the same clusters. */
#define RACERS 4
#define RACE_IDX 300

static struct gs_table race_table;
static uint64_t race_idx[RACE_IDX];
static struct gs_cluster *race_got[RACERS][RACE_IDX];

static void *
racer (void *arg)
{
  unsigned t = (unsigned) (uintptr_t) arg, k;

  for (k = 0; k < RACE_IDX; k++) {
    /* Each thread in its own order. */
    unsigned j = t % 2 ? k : RACE_IDX - 1 - k;
    struct gs_cluster *c = gs_table_get (&race_table, race_idx[j], true);
    CHECK (c != NULL);
    race_got[t][j] = c;
    /* Set and clear an entry: the cluster lock works across threads. */
    gs_cluster_lock (c);
    CHECK_OK (__gs_cluster_set (&race_table, c, t, pattern_to_entry (t + 1)));
    CHECK (__gs_cluster_entry (c, t) == pattern_to_entry (t + 1));
    CHECK_OK (__gs_cluster_set (&race_table, c, t, GS_ENTRY_EMPTY));
    gs_cluster_unlock (c);
  }
  return NULL;
}

static void
table_race (uint64_t *s)
{
  pthread_t th[RACERS];
  unsigned t, k;
  uint64_t bytes, got;

  CHECK_OK (gs_table_init (&race_table, 1ull << 40));
  for (k = 0; k < RACE_IDX; k++)
    race_idx[k] = k < RACE_IDX / 2 ? rnd_below (s, 1ull << 40)
      : rnd_below (s, 4096);            /* dense: shared leaves */
  for (t = 0; t < RACERS; t++)
    CHECK_OK (pthread_create (&th[t], NULL, racer, (void *) (uintptr_t) t));
  for (t = 0; t < RACERS; t++)
    CHECK_OK (pthread_join (th[t], NULL));
  for (k = 0; k < RACE_IDX; k++) {
    for (t = 1; t < RACERS; t++)
      CHECKF (race_got[t][k] == race_got[0][k], "index %" PRIu64
              ": threads got different clusters", race_idx[k]);
    CHECK (gs_table_get (&race_table, race_idx[k], false) == race_got[0][k]);
  }
  CHECK (race_table.clusters_live == 0);
  CHECK (!gs_table_next (&race_table, 0, 1ull << 40, &got));
  /* The byte count matches the nodes that exist: building them again
   * single-threaded adds nothing. */
  bytes = race_table.node_bytes;
  for (k = 0; k < RACE_IDX; k++)
    CHECK (gs_table_get (&race_table, race_idx[k], true) == race_got[0][k]);
  CHECK (race_table.node_bytes == bytes);
  gs_table_destroy (&race_table);
}

int
main (int argc, char *argv[])
{
  static unsigned char page[PAGE];
  struct gs_config cfg;
  struct gs_device *dev;
  struct gs_stats st;
  uint64_t seed, s, empty_meta;
  const uint64_t size = 10 * CLUSTER_BYTES + 3 * PAGE;   /* 11 clusters */

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;

  table_direct (&s);
  table_race (&s);

  cfg = test_config (size, 64 << 20);
  CHECK_OK (gs_device_create (&cfg, &dev));

  /* Fresh device. */
  st = stats (dev);
  CHECK (st.clusters == 0);
  CHECK (st.slots_empty == size / PAGE);
  CHECK (st.pool_bytes == 0 && st.segments == 0);
  CHECKF (st.metadata_bytes < 64 * 1024, "fresh metadata %" PRIu64,
          st.metadata_bytes);
  empty_meta = st.metadata_bytes;
  /* Reads, extents, trims and may-trim zeroes of nothing allocate nothing. */
  check_zero (dev, 0, PAGE);
  check_zero (dev, 5 * CLUSTER_BYTES - 100, 200);
  check_zero (dev, size - PAGE, PAGE);
  CHECK_OK (gs_trim (dev, PAGE, 3 * PAGE));
  CHECK_OK (gs_zero (dev, 2 * CLUSTER_BYTES, CLUSTER_BYTES, GS_ZERO_MAY_TRIM));
  CHECKF (stats (dev).clusters == 0, "clusters %" PRIu64, stats (dev).clusters);

  /* One byte in slot N: exactly one cluster. */
  page[0] = 0x42;
  CHECK_OK (gs_pwrite (dev, page, 1, 3 * CLUSTER_BYTES + 17 * PAGE + 5));
  st = stats (dev);
  CHECKF (st.clusters == 1, "clusters %" PRIu64, st.clusters);
  CHECK (st.slots_empty == size / PAGE - 1);
  CHECK (st.metadata_bytes >= empty_meta + GS_CLUSTER_SLOTS * sizeof (gs_entry));
  {
    unsigned char b[3];
    CHECK_OK (gs_pread (dev, b, 3, 3 * CLUSTER_BYTES + 17 * PAGE + 4));
    CHECK (b[0] == 0 && b[1] == 0x42 && b[2] == 0);
  }
  /* Reads of other slots of that cluster and of its leaf neighbours. */
  check_zero (dev, 3 * CLUSTER_BYTES, 17 * PAGE);
  check_zero (dev, 2 * CLUSTER_BYTES, CLUSTER_BYTES);
  check_zero (dev, 4 * CLUSTER_BYTES, CLUSTER_BYTES);

  /* Two more clusters: 3. */
  fill_text (page, PAGE, &s);
  CHECK_OK (gs_pwrite (dev, page, PAGE, 0));
  CHECK_OK (gs_pwrite (dev, page, PAGE, 10 * CLUSTER_BYTES + 2 * PAGE));
  st = stats (dev);
  CHECKF (st.clusters == 3, "clusters %" PRIu64, st.clusters);
  CHECK (st.slots_ram == 3 && st.pool_live_bytes > 0);   /* with the 1-byte one */
  /* Another slot of an allocated cluster: still 3. */
  CHECK_OK (gs_pwrite (dev, page, PAGE, 511 * PAGE));
  CHECK (stats (dev).clusters == 3);

  /* Trim back to empty: 0 clusters, no live pool bytes. */
  CHECK_OK (gs_trim (dev, (uint32_t) size, 0));
  st = stats (dev);
  CHECKF (st.clusters == 0, "clusters %" PRIu64, st.clusters);
  CHECK (st.slots_empty == size / PAGE);
  CHECK (st.slots_ram == 0 && st.slots_same == 0);
  CHECKF (st.pool_live_bytes == 0, "live %" PRIu64, st.pool_live_bytes);
  check_zero (dev, 0, 4 * CLUSTER_BYTES);
  check_zero (dev, 10 * CLUSTER_BYTES, 3 * PAGE);

  /* Zero without may-trim keeps (allocates) the clusters with zero
   * same-filled slots; with may-trim they go. */
  fill_text (page, PAGE, &s);
  CHECK_OK (gs_pwrite (dev, page, PAGE, CLUSTER_BYTES + 9 * PAGE));
  CHECK_OK (gs_zero (dev, 2 * PAGE, CLUSTER_BYTES + 8 * PAGE, 0));
  st = stats (dev);
  CHECK (st.clusters == 1);
  CHECK (st.slots_same_zero == 2 && st.slots_ram == 0);
  CHECK (st.pool_live_bytes == 0);
  check_zero (dev, CLUSTER_BYTES, CLUSTER_BYTES);
  CHECK_OK (gs_zero (dev, PAGE, 7 * CLUSTER_BYTES, 0));   /* absent cluster */
  CHECK (stats (dev).clusters == 2);
  CHECK (stats (dev).slots_same_zero == 3);
  check_zero (dev, 7 * CLUSTER_BYTES, PAGE);
  CHECK_OK (gs_zero (dev, (uint32_t) size, 0, GS_ZERO_MAY_TRIM));
  st = stats (dev);
  CHECKF (st.clusters == 0, "clusters %" PRIu64, st.clusters);
  CHECK (st.slots_same == 0 && st.slots_empty == size / PAGE);

  /* Partial trims and may-trim zeroes of empty slots read zero and
   * need no cluster. */
  CHECK_OK (gs_trim (dev, 100, 6 * CLUSTER_BYTES + 10));
  CHECK_OK (gs_zero (dev, PAGE, 6 * CLUSTER_BYTES + PAGE / 2, GS_ZERO_MAY_TRIM));
  check_zero (dev, 6 * CLUSTER_BYTES, 2 * PAGE);
  st = stats (dev);
  CHECKF (st.clusters == 0, "a partial trim of empty slots allocated %"
          PRIu64 " cluster(s) (%" PRIu64 " zero slots)", st.clusters,
          st.slots_same_zero);

  /* A partial trim that leaves a page all zero empties the slot. */
  CHECK_OK (gs_trim (dev, (uint32_t) size, 0));
  memset (page, 0, PAGE);
  page[100] = 1;
  CHECK_OK (gs_pwrite (dev, page, PAGE, 4 * CLUSTER_BYTES));
  CHECK (stats (dev).clusters == 1);
  CHECK_OK (gs_trim (dev, 10, 4 * CLUSTER_BYTES + 95));
  check_zero (dev, 4 * CLUSTER_BYTES, PAGE);
  st = stats (dev);
  CHECK (st.slots_ram == 0);
  /* Not required: the slot may stay allocated as a zero slot. */
  if (st.clusters != 0)
    fprintf (stderr, "%s: note: a partial trim that left a slot all zero "
             "kept it allocated (%" PRIu64 " zero slot(s))\n", test_argv0,
             st.slots_same_zero);

  gs_device_destroy (dev);
  return 0;
}
