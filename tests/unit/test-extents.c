/* gs_extents: runs start at the requested offset, have no gaps, are
 * merged, match the slot states exactly (absent clusters folded into one
 * hole), respect max_runs, and skip the absent clusters of a huge device
 * quickly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghostswap/device.h"
#include "test.h"

#define CLUSTER_SLOTS 512u
#define CLUSTER_BYTES ((uint64_t) CLUSTER_SLOTS * PAGE)
#define HOLE (GS_EXTENT_HOLE | GS_EXTENT_ZERO)
#define ZERO GS_EXTENT_ZERO
#define DATA 0u

struct run {
  uint64_t offset, length;
  uint32_t type;
};

struct runs {
  struct run *r;
  size_t n, cap;
  int stop_after;           /* return non-zero after this many, if > 0 */
};

static int
collect (void *opaque, uint64_t offset, uint64_t length, uint32_t type)
{
  struct runs *rs = opaque;

  if (rs->n == rs->cap) {
    rs->cap = rs->cap ? 2 * rs->cap : 64;
    rs->r = realloc (rs->r, rs->cap * sizeof *rs->r);
    CHECK (rs->r != NULL);
  }
  rs->r[rs->n].offset = offset;
  rs->r[rs->n].length = length;
  rs->r[rs->n].type = type;
  rs->n++;
  if (rs->stop_after > 0 && rs->n == (size_t) rs->stop_after)
    return 42;
  return 0;
}

static uint32_t *slot_type;     /* the expected type of each slot */
static uint64_t nslots, size;

/* The runs that [offset, offset + count) should give. */
static void
expected_runs (uint64_t offset, uint32_t count, struct runs *want)
{
  uint64_t at = offset, end = offset + count;

  want->n = 0;
  while (at < end) {
    uint64_t slot = at / PAGE;
    uint64_t stop = (slot + 1) * PAGE < end ? (slot + 1) * PAGE : end;
    uint32_t type = slot_type[slot];
    if (want->n > 0 && want->r[want->n - 1].type == type)
      want->r[want->n - 1].length += stop - at;
    else
      collect (want, at, stop - at, type);
    at = stop;
  }
}

static void
check_query (struct gs_device *dev, uint64_t offset, uint32_t count,
             unsigned max_runs)
{
  static struct runs got, want;
  size_t i, n;
  int r;

  got.n = 0;
  got.stop_after = 0;
  want.stop_after = 0;
  r = gs_extents (dev, count, offset, max_runs, collect, &got);
  CHECKF (r == 0, "extents %u@%" PRIu64 ": %d", count, offset, r);
  expected_runs (offset, count, &want);
  n = want.n;
  if (max_runs > 0 && n > max_runs)
    n = max_runs;
  if (max_runs == 0 && n > 1)
    n = 1;
  if (count > 0)
    CHECK (got.n >= 1);
  CHECKF (got.n == n, "extents %u@%" PRIu64 " max %u: %zu runs, want %zu",
          count, offset, max_runs, got.n, n);
  for (i = 0; i < n; i++)
    CHECKF (got.r[i].offset == want.r[i].offset
            && got.r[i].length == want.r[i].length
            && got.r[i].type == want.r[i].type,
            "extents %u@%" PRIu64 " max %u: run %zu is %" PRIu64 "+%" PRIu64
            " type %u, want %" PRIu64 "+%" PRIu64 " type %u", count, offset,
            max_runs, i, got.r[i].offset, got.r[i].length, got.r[i].type,
            want.r[i].offset, want.r[i].length, want.r[i].type);
}

/* Set @n slots from @first to @type through the device. */
static void
make (struct gs_device *dev, uint64_t first, uint64_t n, uint32_t type,
      uint64_t *s)
{
  static unsigned char page[PAGE];
  uint64_t i;

  switch (type) {
  case HOLE:
    if (rnd_below (s, 2))
      CHECK_OK (gs_trim (dev, (uint32_t) (n * PAGE), first * PAGE));
    else
      CHECK_OK (gs_zero (dev, (uint32_t) (n * PAGE), first * PAGE,
                         GS_ZERO_MAY_TRIM));
    break;
  case ZERO:
    if (rnd_below (s, 2))
      CHECK_OK (gs_zero (dev, (uint32_t) (n * PAGE), first * PAGE, 0));
    else {
      memset (page, 0, PAGE);
      for (i = 0; i < n; i++)
        CHECK_OK (gs_pwrite (dev, page, PAGE, (first + i) * PAGE));
    }
    break;
  default:
    for (i = 0; i < n; i++) {
      switch (rnd_below (s, 4)) {
      case 0: fill_words (page, PAGE, inline_word (s) | 1); break;
      case 1: fill_words (page, PAGE, wide_word (s)); break;
      case 2: fill_random (page, PAGE, s); break;
      default: fill_text (page, PAGE, s);
      }
      CHECK_OK (gs_pwrite (dev, page, PAGE, (first + i) * PAGE));
    }
  }
  /* Zeroes over a slot that reads as zero change nothing: a hole stays
   * a hole (nothing is allocated for it). */
  for (i = 0; i < n; i++)
    if (!(type == ZERO && slot_type[first + i] == HOLE))
      slot_type[first + i] = type;
}

static void
shadowed (uint64_t *s)
{
  const uint64_t nclusters = 40;
  struct gs_config cfg;
  struct gs_device *dev;
  uint64_t c, k;

  nslots = nclusters * CLUSTER_SLOTS + 100;   /* a partial last cluster */
  size = nslots * PAGE;
  cfg = test_config (size, 256 << 20);
  CHECK_OK (gs_device_create (&cfg, &dev));
  slot_type = malloc (nslots * sizeof *slot_type);
  CHECK (slot_type != NULL);
  for (k = 0; k < nslots; k++)
    slot_type[k] = HOLE;

  /* An empty device: one hole, whatever the range. */
  check_query (dev, 0, (uint32_t) size, 1000);
  check_query (dev, 12345, 67890, 1);
  check_query (dev, size - 1, 1, 1);

  /* Some clusters get runs of each state; the others stay absent.  Some
   * are filled and then emptied again (entry array freed). */
  for (c = 0; c <= nclusters; c++) {
    uint64_t first = c * CLUSTER_SLOTS;
    uint64_t end = first + CLUSTER_SLOTS < nslots ? first + CLUSTER_SLOTS : nslots;
    unsigned what = (unsigned) rnd_below (s, 10);

    if (what < 4)
      continue;                             /* absent */
    if (what == 4) {                        /* present, then empty */
      make (dev, first + rnd_below (s, end - first), 1, DATA, s);
      make (dev, first, end - first, HOLE, s);
      continue;
    }
    while (first < end) {
      uint64_t n = 1 + rnd_below (s, rnd_below (s, 2) ? 8 : end - first);
      uint32_t type = rnd_below (s, 3) == 0 ? HOLE
        : rnd_below (s, 2) ? ZERO : DATA;
      if (n > end - first)
        n = end - first;
      make (dev, first, n, type, s);
      first += n;
    }
  }

  /* The whole device, by slots and at odd offsets, with every max_runs. */
  check_query (dev, 0, (uint32_t) size, 1u << 30);
  for (k = 0; k < 3000; k++) {
    uint64_t off, len;
    unsigned max;
    switch (rnd_below (s, 4)) {
    case 0:
      off = rnd_below (s, nslots) * PAGE;
      len = (1 + rnd_below (s, 3 * CLUSTER_SLOTS)) * PAGE;
      break;
    case 1:
      off = rnd_below (s, nclusters + 1) * CLUSTER_BYTES;
      len = rnd_below (s, 5) * CLUSTER_BYTES + 1;
      break;
    default:
      off = rnd_below (s, size);
      len = 1 + rnd_below (s, size);
    }
    if (off >= size)
      off = size - 1;
    if (len > size - off)
      len = size - off;
    max = rnd_below (s, 3) == 0 ? 1 : (unsigned) rnd_below (s, 20);
    if (rnd_below (s, 4) == 0)
      max = 1u << 30;
    check_query (dev, off, (uint32_t) len, max);
  }

  /* The callback stops the walk: its value is returned. */
  {
    struct runs got = { .stop_after = 2 };
    struct runs want = { .stop_after = 0 };
    int r = gs_extents (dev, (uint32_t) size, 0, 1000, collect, &got);
    expected_runs (0, (uint32_t) size, &want);
    if (want.n >= 2) {
      CHECKF (r == 42, "callback stop: %d", r);
      CHECK (got.n == 2);
    }
    free (got.r);
    free (want.r);
  }

  /* Out of range. */
  {
    struct runs got = { .stop_after = 0 };
    CHECK (gs_extents (dev, 1, size, 10, collect, &got) == -EINVAL);
    CHECK (gs_extents (dev, 2, size - 1, 10, collect, &got) == -EINVAL);
    CHECK (gs_extents (dev, PAGE, UINT64_MAX - 100, 10, collect, &got) == -EINVAL);
    CHECK (got.n == 0);
    free (got.r);
  }

  gs_device_destroy (dev);
  free (slot_type);
  slot_type = NULL;
}

/* A 4 EiB device: extents over 1 TiB of absent clusters are one hole per
 * call, found without visiting each cluster. */
static void
huge (void)
{
  const uint64_t sz = 4ull << 60, tib = 1ull << 40;
  const uint32_t chunk = 0xfffff000u;        /* largest slot-multiple count */
  struct gs_config cfg = test_config (sz, 64 << 20);
  struct gs_device *dev;
  struct runs got = { .stop_after = 0 };
  static unsigned char page[PAGE];
  uint64_t off, calls = 0;
  double start, took;
  struct gs_stats st;

  CHECK_OK (gs_device_create (&cfg, &dev));

  /* Data in a few far places. */
  memset (page, 0xab, PAGE);
  CHECK_OK (gs_pwrite (dev, page, PAGE, 3 * tib + 5 * PAGE));
  CHECK_OK (gs_pwrite (dev, page, PAGE, sz - PAGE));
  CHECK_OK (gs_pwrite (dev, page, PAGE, (1ull << 61) + 7 * PAGE));

  start = now_seconds ();
  for (off = 0; off < tib; off += chunk) {
    uint32_t n = tib - off < chunk ? (uint32_t) (tib - off) : chunk;
    got.n = 0;
    CHECK_OK (gs_extents (dev, n, off, 64, collect, &got));
    CHECKF (got.n == 1 && got.r[0].offset == off && got.r[0].length == n
            && got.r[0].type == HOLE,
            "extents %u@%" PRIu64 ": %zu runs, first %" PRIu64 "+%" PRIu64
            " type %u", n, off, got.n, got.r[0].offset, got.r[0].length,
            got.r[0].type);
    calls++;
  }
  took = now_seconds () - start;
  fprintf (stderr, "%s: 1 TiB of holes in %" PRIu64 " calls: %.3f s\n",
           test_argv0, calls, took);
  CHECKF (took < 2.0, "extents over 1 TiB of absent clusters took %.3f s",
          took);

  /* A range ending just past the data: a hole up to it, then data. */
  off = 3 * tib + 5 * PAGE - (uint64_t) chunk + PAGE;
  got.n = 0;
  CHECK_OK (gs_extents (dev, chunk, off, 64, collect, &got));
  CHECKF (got.n == 2, "%zu runs", got.n);
  CHECK (got.r[0].offset == off && got.r[0].type == HOLE);
  CHECK (got.r[0].length == chunk - PAGE);
  CHECK (got.r[1].offset == 3 * tib + 5 * PAGE && got.r[1].length == PAGE);
  CHECK (got.r[1].type == DATA);
  /* Around the data: hole, data, hole; and with max_runs 1 just the hole. */
  off = 3 * tib;
  got.n = 0;
  CHECK_OK (gs_extents (dev, chunk, off, 64, collect, &got));
  CHECK (got.n == 3);
  CHECK (got.r[0].offset == off && got.r[0].length == 5 * PAGE
         && got.r[0].type == HOLE);
  CHECK (got.r[1].length == PAGE && got.r[1].type == DATA);
  CHECK (got.r[2].offset == off + 6 * PAGE
         && got.r[2].length == chunk - 6 * PAGE && got.r[2].type == HOLE);
  got.n = 0;
  CHECK_OK (gs_extents (dev, chunk, off, 1, collect, &got));
  CHECK (got.n == 1 && got.r[0].length == 5 * PAGE);
  /* The last slot of the device. */
  got.n = 0;
  CHECK_OK (gs_extents (dev, chunk, sz - chunk, 64, collect, &got));
  CHECK (got.n == 2 && got.r[1].offset == sz - PAGE && got.r[1].type == DATA);
  /* The device is as empty as it looks. */
  gs_get_stats (dev, &st);
  CHECK (st.clusters == 3);
  CHECKF (st.metadata_bytes < 1024 * 1024, "%" PRIu64, st.metadata_bytes);

  gs_device_destroy (dev);
  free (got.r);
}

int
main (int argc, char *argv[])
{
  uint64_t seed, s;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;

  shadowed (&s);
  huge ();
  return 0;
}
