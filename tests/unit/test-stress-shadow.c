/* Multi-threaded stress against shadow copies.
 *
 * Phase 1: four threads, each owning every fourth block of 8 slots, do
 * random writes (whole and partial, single and multi-slot, every kind of
 * data), trims, zeroes with and without may-trim, and extents; after
 * every step the block reads back as its shadow and extents agree with it.
 * Phase 2: the same with a small ram-limit, so that writes fail with
 * -ENOSPC: a failed request leaves a prefix of its slots new and the rest
 * old (per-slot atomicity), never a torn slot.
 * Phase 3: writers race on a few shared slots with whole pages of many
 * kinds while readers check that every read is exactly one written page.
 *
 * GS_STRESS_SECONDS sets the time per phase (default 2).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ghostswap/device.h"
#include "pool.h"
#include "test.h"

#define THREADS 4
#define BLOCK_SLOTS 8
#define BLOCK_BYTES (BLOCK_SLOTS * PAGE)
#define BLOCKS_PER_THREAD 120

enum { ST_EMPTY, ST_ALLOC, ST_UNKNOWN };

static struct gs_device *dev;
static unsigned char *shadow;       /* the device's expected contents */
static unsigned char *state;        /* per slot: ST_* */
static uint64_t nslots;
static double seconds = 2.0;
static uint64_t seed;
static bool small_limit;
static uint64_t enospc_seen;        /* atomic */

struct run {
  uint64_t offset, length;
  uint32_t type;
};

struct runs {
  struct run r[BLOCK_SLOTS * 2 + 2];
  unsigned n;
};

static int
collect (void *opaque, uint64_t offset, uint64_t length, uint32_t type)
{
  struct runs *rs = opaque;

  CHECK (rs->n < sizeof rs->r / sizeof rs->r[0]);
  rs->r[rs->n].offset = offset;
  rs->r[rs->n].length = length;
  rs->r[rs->n].type = type;
  rs->n++;
  return 0;
}

static bool
all_zero (const unsigned char *p, size_t len)
{
  size_t i;
  for (i = 0; i < len; i++)
    if (p[i])
      return false;
  return true;
}

static void
check_block (unsigned t, uint64_t block, const char *after)
{
  unsigned char got[BLOCK_BYTES];
  uint64_t off = block * BLOCK_BYTES;
  long d;

  CHECK_OK (gs_pread (dev, got, BLOCK_BYTES, off));
  d = first_diff (got, shadow + off, BLOCK_BYTES);
  CHECKF (d < 0, "thread %u after %s: slot %" PRIu64 " byte %ld: %#x, shadow "
          "%#x", t, after, (off + (uint64_t) d) / PAGE, d % PAGE, got[d],
          shadow[off + (uint64_t) d]);
}

/* Extents over the block: contiguous, merged, and true to the shadow. */
static void
check_extents (unsigned t, uint64_t block)
{
  struct runs rs = { .n = 0 };
  uint64_t off = block * BLOCK_BYTES, at = off, x;
  unsigned i;

  CHECK_OK (gs_extents (dev, BLOCK_BYTES, off, 1000, collect, &rs));
  CHECK (rs.n >= 1);
  for (i = 0; i < rs.n; i++) {
    struct run *r = &rs.r[i];
    CHECKF (r->offset == at, "thread %u: run %u at %" PRIu64 ", expected %"
            PRIu64, t, i, r->offset, at);
    CHECK (r->length > 0 && r->length % PAGE == 0);
    CHECK (r->type == 0 || r->type == GS_EXTENT_ZERO
           || r->type == (GS_EXTENT_HOLE | GS_EXTENT_ZERO));
    if (i > 0)
      CHECKF (r->type != rs.r[i - 1].type, "runs %u and %u not merged", i - 1, i);
    for (x = r->offset; x < r->offset + r->length; x += PAGE) {
      uint64_t slot = x / PAGE;
      bool zero = all_zero (shadow + x, PAGE);
      if (r->type & GS_EXTENT_ZERO)
        CHECKF (zero, "thread %u: slot %" PRIu64 " reported zero (type %u)",
                t, slot, r->type);
      else
        /* Non-zero data, or a slot whose pattern is not zero: a zero page
         * is always stored as a zero slot. */
        CHECKF (!zero, "thread %u: zero slot %" PRIu64 " reported as data",
                t, slot);
      if (r->type & GS_EXTENT_HOLE)
        CHECKF (state[slot] != ST_ALLOC, "thread %u: allocated slot %" PRIu64
                " reported as a hole", t, slot);
      else
        CHECKF (state[slot] != ST_EMPTY, "thread %u: empty slot %" PRIu64
                " reported as allocated (type %u)", t, slot, r->type);
    }
    at += r->length;
  }
  CHECK (at == off + BLOCK_BYTES);
}

/* After a request on [off, off + len) returned @r: with 0 the device holds
 * @want; with an error a prefix of the slots hold @want, the rest @old.
 * Updates the shadow (and slot states) to what the device holds. */
static void
settle (unsigned t, const char *what, int r, uint64_t off, uint32_t len,
        const unsigned char *want, const unsigned char *old,
        const unsigned char *new_state)
{
  uint64_t first = off / PAGE, last = (off + len + PAGE - 1) / PAGE, s;
  unsigned char got[PAGE];
  bool prefix = true;

  if (r == 0) {
    for (s = first; s < last; s++) {
      memcpy (shadow + s * PAGE, want + (s - first) * PAGE, PAGE);
      state[s] = new_state[s - first];
    }
    return;
  }
  CHECKF (r == -ENOSPC && small_limit, "thread %u: %s %u@%" PRIu64
          " returned %d", t, what, len, off, r);
  __atomic_add_fetch (&enospc_seen, 1, __ATOMIC_RELAXED);
  for (s = first; s < last; s++) {
    const unsigned char *w = want + (s - first) * PAGE;
    const unsigned char *o = old + (s - first) * PAGE;
    CHECK_OK (gs_pread (dev, got, PAGE, s * PAGE));
    if (prefix && memcmp (got, w, PAGE) == 0 && memcmp (w, o, PAGE) != 0) {
      state[s] = new_state[s - first];
      memcpy (shadow + s * PAGE, w, PAGE);
      continue;
    }
    if (prefix && memcmp (got, w, PAGE) == 0) {
      /* Same bytes either way: whether it was done is unknown. */
      if (state[s] != new_state[s - first])
        state[s] = ST_UNKNOWN;
      continue;
    }
    prefix = false;
    CHECKF (memcmp (got, o, PAGE) == 0,
            "thread %u: %s %u@%" PRIu64 " failed with %d but slot %" PRIu64
            " is neither old nor new (or new after an old one)", t, what, len,
            off, r, s);
  }
}

/* One random operation on one block of thread @t. */
static void
random_op (unsigned t, uint64_t *s)
{
  uint64_t block = rnd_below (s, BLOCKS_PER_THREAD) * THREADS + t;
  uint64_t boff = block * BLOCK_BYTES;
  unsigned op = (unsigned) rnd_below (s, 20);
  uint32_t len;
  uint64_t off, first, nsl, i;
  unsigned char want[BLOCK_BYTES + PAGE], old[BLOCK_BYTES + PAGE];
  unsigned char nst[BLOCK_SLOTS + 1], data[BLOCK_BYTES];
  const char *what;
  int r;

  /* A range in the block: whole slots or any bytes. */
  if (rnd_below (s, 2)) {
    uint64_t a = rnd_below (s, BLOCK_SLOTS);
    uint64_t n = 1 + rnd_below (s, rnd_below (s, 4) ? 1 : BLOCK_SLOTS - a);
    off = boff + a * PAGE;
    len = (uint32_t) (n * PAGE);
  }
  else {
    uint64_t a = rnd_below (s, BLOCK_BYTES);
    uint64_t n = 1 + rnd_below (s, rnd_below (s, 3) ? PAGE : BLOCK_BYTES - a);
    if (n > BLOCK_BYTES - a)
      n = BLOCK_BYTES - a;
    off = boff + a;
    len = (uint32_t) n;
  }
  first = off / PAGE;
  nsl = (off + len + PAGE - 1) / PAGE - first;
  memcpy (old, shadow + first * PAGE, nsl * PAGE);
  memcpy (want, old, nsl * PAGE);
  memcpy (nst, state + first, nsl);

  if (op < 10) {
    /* Write: every slot of the data gets its own kind. */
    for (i = 0; i < len; i += PAGE) {
      uint32_t n = len - i < PAGE ? len - (uint32_t) i : PAGE;
      unsigned char page[PAGE];
      enum page_kind k = (enum page_kind) rnd_below (s, KIND_COUNT);
      if (small_limit && rnd_below (s, 2))
        k = KIND_RANDOM;
      fill_kind (page, k, s);
      memcpy (data + i, page, n);
    }
    memcpy (want + (off - first * PAGE), data, len);
    /* A slot whose written bytes are all zero keeps its state (zeroes
     * over a slot that reads as zero allocate nothing); others are
     * allocated. */
    for (i = 0; i < nsl; i++) {
      uint64_t ss = (first + i) * PAGE;
      uint64_t a = ss > off ? ss : off;
      uint64_t b = ss + PAGE < off + len ? ss + PAGE : off + len;
      size_t z;
      for (z = a; z < b && data[z - off] == 0; z++)
        ;
      if (z < b)
        nst[i] = ST_ALLOC;
    }
    what = "pwrite";
    r = gs_pwrite (dev, data, len, off);
  }
  else if (op < 16) {
    bool trim = op < 12, may_trim = trim || op < 14;
    uint64_t a = off, b = off + len;
    memset (want + (off - first * PAGE), 0, len);
    for (i = 0; i < nsl; i++) {
      uint64_t ss = (first + i) * PAGE;
      bool whole = ss >= a && ss + PAGE <= b;
      if (!may_trim)
        ;                       /* zeroes over zero: the state stays */
      else if (whole)
        nst[i] = ST_EMPTY;
      else
        nst[i] = ST_UNKNOWN;    /* partial: zero or empty, either is fine */
    }
    if (trim) {
      what = "trim";
      r = gs_trim (dev, len, off);
    }
    else {
      what = may_trim ? "zero(may-trim)" : "zero";
      r = gs_zero (dev, len, off, may_trim ? GS_ZERO_MAY_TRIM : 0);
    }
  }
  else if (op < 18) {
    check_extents (t, block);
    return;
  }
  else {
    unsigned char got[BLOCK_BYTES];
    long d;
    CHECK_OK (gs_pread (dev, got, len, off));
    d = first_diff (got, shadow + off, len);
    CHECKF (d < 0, "thread %u: read %u@%" PRIu64 " byte %ld", t, len, off, d);
    return;
  }
  settle (t, what, r, off, len, want, old, nst);
  check_block (t, block, what);
}

static volatile int stop;

static void *
owner_thread (void *arg)
{
  unsigned t = (unsigned) (uintptr_t) arg;
  uint64_t s = seed * 1000003 + t, ops = 0;

  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED)) {
    random_op (t, &s);
    ops++;
  }
  return (void *) (uintptr_t) ops;
}

static void
owned_phase (uint64_t ram_limit)
{
  struct gs_config cfg;
  pthread_t th[THREADS];
  uint64_t ops = 0, b;
  double start;
  unsigned t;
  void *ret;

  nslots = (uint64_t) THREADS * BLOCKS_PER_THREAD * BLOCK_SLOTS + 3;
  cfg = test_config (nslots * PAGE, ram_limit);
  CHECK_OK (gs_device_create (&cfg, &dev));
  shadow = calloc (nslots, PAGE);
  state = calloc (nslots, 1);
  CHECK (shadow && state);
  small_limit = ram_limit < (8 << 20);
  enospc_seen = 0;
  stop = 0;

  for (t = 0; t < THREADS; t++)
    CHECK_OK (pthread_create (&th[t], NULL, owner_thread, (void *) (uintptr_t) t));
  start = now_seconds ();
  /* With the small limit, go on (up to 10 times as long, for slow
   * sanitizer builds) until ENOSPC has been met. */
  while (now_seconds () - start < seconds
         || (small_limit && __atomic_load_n (&enospc_seen, __ATOMIC_RELAXED) < 10
             && now_seconds () - start < 10 * seconds))
    usleep (20000);
  __atomic_store_n (&stop, 1, __ATOMIC_RELAXED);
  for (t = 0; t < THREADS; t++) {
    CHECK_OK (pthread_join (th[t], &ret));
    ops += (uint64_t) (uintptr_t) ret;
  }
  fprintf (stderr, "%s: ram-limit %" PRIu64 ": %" PRIu64 " operations, %"
           PRIu64 " ENOSPC\n", test_argv0, ram_limit, ops, enospc_seen);
  if (small_limit)
    CHECKF (enospc_seen > 0, "no ENOSPC with a ram-limit of %" PRIu64,
            ram_limit);

  /* Everything, including the unowned tail. */
  for (b = 0; b < (uint64_t) THREADS * BLOCKS_PER_THREAD; b++) {
    check_block (0, b, "the end");
    check_extents (0, b);
  }
  {
    struct gs_stats st;
    uint64_t used = 0, i;
    gs_get_stats (dev, &st);
    for (i = 0; i < nslots; i++)
      used += state[i] == ST_ALLOC;
    CHECK (st.slots_same + st.slots_ram >= used);
    CHECK (st.slots_empty + st.slots_same + st.slots_ram == nslots);
    if (small_limit) {
      CHECK (st.enospc > 0 && st.enospc <= st.errors);
      /* The limit holds, but for compaction's reserve. */
      CHECKF (st.pool_bytes <= ram_limit
              + GS_POOL_RESERVE * (GS_SEGMENT_DATA + 4096),
              "pool %" PRIu64 " bytes, limit %" PRIu64, st.pool_bytes,
              ram_limit);
    }
    else
      CHECK (st.errors == 0);
  }
  gs_device_destroy (dev);
  free (shadow);
  free (state);
}

/* --- phase 3: races on shared slots --- */

#define RACE_WRITERS 3
#define RACE_READERS 2
#define RACE_SLOTS 3
#define MAGIC 0x67686f7374ull   /* "ghost" */

static uint64_t race_seq[RACE_WRITERS];    /* atomic: highest seq started */
static uint64_t race_reads, race_kinds[KIND_COUNT];

/* The page writer @w writes as its @seq'th. */
static enum page_kind
gen_page (unsigned char *p, unsigned w, uint64_t seq)
{
  uint64_t s = (seq << 8) ^ w ^ 0x5eed;
  enum page_kind k = (enum page_kind) ((seq + w) % KIND_COUNT);
  uint64_t hdr[3] = { MAGIC, w, seq };

  switch (k) {
  case KIND_ZERO: memset (p, 0, PAGE); break;
  case KIND_PATTERN: fill_words (p, PAGE, ((uint64_t) w << 40) | seq); break;
  case KIND_WIDE:
    fill_words (p, PAGE, (1ull << 63) | ((uint64_t) w << 40) | seq);
    break;
  case KIND_TEXT:
    fill_text (p, PAGE, &s);
    memcpy (p, hdr, sizeof hdr);
    break;
  default:
    fill_random (p, PAGE, &s);
    memcpy (p, hdr, sizeof hdr);
  }
  return k;
}

/* Is @p a page that some writer wrote (or the initial zero page)? */
static void
check_written (const unsigned char *p)
{
  unsigned char want[PAGE];
  uint64_t word, hdr[3], w, seq;

  if (all_zero (p, PAGE))
    return;
  memcpy (&word, p, 8);
  {
    size_t i;
    bool same = true;
    for (i = 8; i < PAGE && same; i += 8)
      same = memcmp (p, p + i, 8) == 0;
    if (same) {
      word &= ~(1ull << 63);
      w = word >> 40;
      seq = word & ((1ull << 40) - 1);
      CHECKF (w < RACE_WRITERS, "pattern page of no writer: %#" PRIx64, word);
      CHECKF (seq <= __atomic_load_n (&race_seq[w], __ATOMIC_ACQUIRE),
              "pattern page from the future");
      gen_page (want, (unsigned) w, seq);
      CHECKF (memcmp (want, p, PAGE) == 0, "pattern page %u/%" PRIu64
              " is not what was written", (unsigned) w, seq);
      return;
    }
  }
  memcpy (hdr, p, sizeof hdr);
  CHECKF (hdr[0] == MAGIC, "torn or foreign page (header %#" PRIx64 ")", hdr[0]);
  w = hdr[1];
  seq = hdr[2];
  CHECK (w < RACE_WRITERS);
  CHECK (seq <= __atomic_load_n (&race_seq[w], __ATOMIC_ACQUIRE));
  gen_page (want, (unsigned) w, seq);
  CHECKF (memcmp (want, p, PAGE) == 0, "page %u/%" PRIu64 " torn at byte %ld",
          (unsigned) w, seq, first_diff (want, p, PAGE));
}

static void *
race_writer (void *arg)
{
  unsigned w = (unsigned) (uintptr_t) arg;
  uint64_t seq = 0, s = seed + w;
  unsigned char page[PAGE];

  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED)) {
    uint64_t slot = rnd_below (&s, RACE_SLOTS);
    seq++;
    __atomic_store_n (&race_seq[w], seq, __ATOMIC_RELEASE);
    if (seq % 50 == 0)
      CHECK_OK (gs_trim (dev, PAGE, slot * PAGE));
    else if (seq % 51 == 0)
      CHECK_OK (gs_zero (dev, PAGE, slot * PAGE, 0));
    else {
      __atomic_add_fetch (&race_kinds[gen_page (page, w, seq)], 1,
                          __ATOMIC_RELAXED);
      CHECK_OK (gs_pwrite (dev, page, PAGE, slot * PAGE));
    }
  }
  return NULL;
}

static void *
race_reader (void *arg)
{
  uint64_t s = seed ^ (uintptr_t) arg;
  unsigned char buf[RACE_SLOTS * PAGE];

  while (!__atomic_load_n (&stop, __ATOMIC_RELAXED)) {
    unsigned n = 1 + (unsigned) rnd_below (&s, RACE_SLOTS), i;
    uint64_t slot = rnd_below (&s, RACE_SLOTS - n + 1);
    CHECK_OK (gs_pread (dev, buf, n * PAGE, slot * PAGE));
    for (i = 0; i < n; i++)
      check_written (buf + i * PAGE);
    __atomic_add_fetch (&race_reads, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void
race_phase (void)
{
  struct gs_config cfg = test_config (RACE_SLOTS * PAGE, 64 << 20);
  pthread_t wt[RACE_WRITERS], rt[RACE_READERS];
  unsigned i;
  double start;

  CHECK_OK (gs_device_create (&cfg, &dev));
  stop = 0;
  for (i = 0; i < RACE_WRITERS; i++)
    CHECK_OK (pthread_create (&wt[i], NULL, race_writer, (void *) (uintptr_t) i));
  for (i = 0; i < RACE_READERS; i++)
    CHECK_OK (pthread_create (&rt[i], NULL, race_reader, (void *) (uintptr_t) i));
  start = now_seconds ();
  while (now_seconds () - start < seconds)
    usleep (20000);
  __atomic_store_n (&stop, 1, __ATOMIC_RELAXED);
  for (i = 0; i < RACE_WRITERS; i++)
    CHECK_OK (pthread_join (wt[i], NULL));
  for (i = 0; i < RACE_READERS; i++)
    CHECK_OK (pthread_join (rt[i], NULL));
  fprintf (stderr, "%s: race: %" PRIu64 " reads checked; pages written by kind:"
           " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
           test_argv0, race_reads, race_kinds[0], race_kinds[1], race_kinds[2],
           race_kinds[3], race_kinds[4]);
  CHECK (race_reads > 0);
  for (i = 0; i < KIND_COUNT; i++)
    CHECK (race_kinds[i] > 0);
  gs_device_destroy (dev);
}

int
main (int argc, char *argv[])
{
  const char *env = getenv ("GS_STRESS_SECONDS");

  TEST_INIT (argc, argv);
  seed = test_seed ();
  if (env && *env)
    seconds = atof (env);

  owned_phase (256 << 20);
  /* About 7 segments of 64 KiB, shared by four threads writing mostly
   * raw pages: ENOSPC comes soon, trims make room again. */
  owned_phase (512 << 10);
  race_phase ();
  return 0;
}
