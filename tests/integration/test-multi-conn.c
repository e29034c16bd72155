/* ghostswap integration test: several connections at once.
 *
 * Usage: test-multi-conn [KEY=VALUE...]  (further plugin keys)
 *
 * Phase 1: 4 threads, each with its own connection to one nbdkit, do
 * random writes/reads/trims/zeroes on what they own, checked against a
 * shadow:
 *   region A [0, 16M): slot s belongs to thread s % 4 (neighbouring slots
 *     of one cluster are written by different threads at once);
 *   region B [16M, 16M+64K): 1000-byte chunks, chunk c belongs to thread
 *     c % 4, so several threads do read-modify-write on one slot at once
 *     (the region is small, to make that frequent): a lost update shows as
 *     a shadow mismatch.
 * After joining, one connection reads the whole device and compares.
 *
 * Phase 2 (slot atomicity): two writers keep writing two-slot pages of
 * distinct patterns A and B to the same two slots, a third patches a
 * sub-range C of the first slot, and a reader checks that each slot it
 * reads is entirely A, B, A+C or B+C, never a mix.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "harness.h"

#define SLOT 4096u
#define NTHREADS 4
#define MIB (1024u * 1024)
#define REGION_A 0
#define REGION_B (16 * MIB)
#define REGION_B_END (REGION_B + 64 * 1024)
#define REGION_C (32 * MIB)
#define DEV_SIZE (40 * MIB)
#define CHUNK 1000u

static struct server srv;
static unsigned char *shadow;
static uint64_t seed;
static unsigned ops_per_thread = 5000;

struct worker {
  int id;
  struct nbd_handle *h;
  pthread_t thread;
  size_t writes, reads, trims, zeroes;
};

static void
check_range (struct nbd_handle *h, int id, unsigned char *buf, uint64_t off,
             uint64_t len, const char *what)
{
  ssize_t d;

  if (nbd_pread (h, buf, len, off, 0) == -1)
    test_fail_nbd ("thread %d: pread offset=%" PRIu64 " count=%" PRIu64,
                   id, off, len);
  d = first_diff (buf, shadow + off, len);
  if (d >= 0)
    test_fail ("thread %d: %s offset=%" PRIu64 " count=%" PRIu64
               ": byte %" PRIu64 " (slot %" PRIu64 " +%" PRIu64 ") is 0x%02x,"
               " expected 0x%02x", id, what, off, len, off + (uint64_t) d,
               (off + (uint64_t) d) / SLOT, (off + (uint64_t) d) % SLOT,
               buf[d], shadow[off + (uint64_t) d]);
}

static void *
worker_main (void *arg)
{
  struct worker *w = arg;
  struct rng rng;
  unsigned char buf[SLOT];

  rng_seed (&rng, seed + 1000 * (uint64_t) (w->id + 1));
  for (unsigned i = 0; i < ops_per_thread; i++) {
    uint64_t lo, hi, off, len;
    unsigned k;

    /* Pick a unit this thread owns: [lo, hi). */
    if (rng_below (&rng, 2) == 0) {
      uint64_t s = (uint64_t) w->id
        + NTHREADS * rng_below (&rng, (REGION_B - REGION_A) / SLOT / NTHREADS);
      lo = REGION_A + s * SLOT;
      hi = lo + SLOT;
    }
    else {
      uint64_t nchunks = (REGION_B_END - REGION_B + CHUNK - 1) / CHUNK;
      uint64_t c = (uint64_t) w->id
        + NTHREADS * rng_below (&rng, nchunks / NTHREADS);
      lo = REGION_B + c * CHUNK;
      hi = lo + CHUNK;
      if (hi > REGION_B_END)
        hi = REGION_B_END;
    }
    /* A sub-range of it, or all of it. */
    if (rng_below (&rng, 3) == 0) {
      off = lo;
      len = hi - lo;
    }
    else {
      off = lo + rng_below (&rng, hi - lo);
      len = 1 + rng_below (&rng, hi - off);
    }

    k = (unsigned) rng_below (&rng, 10);
    if (k < 4) {
      fill_mixed (&rng, buf, len, off);
      if (nbd_pwrite (w->h, buf, len, off, 0) == -1)
        test_fail_nbd ("thread %d: pwrite offset=%" PRIu64 " count=%" PRIu64,
                       w->id, off, len);
      memcpy (shadow + off, buf, len);
      w->writes++;
    }
    else if (k < 7) {
      check_range (w->h, w->id, buf, off, len, "pread");
      w->reads++;
    }
    else if (k < 8) {
      if (nbd_trim (w->h, len, off, 0) == -1)
        test_fail_nbd ("thread %d: trim offset=%" PRIu64 " count=%" PRIu64,
                       w->id, off, len);
      memset (shadow + off, 0, len);
      w->trims++;
    }
    else if (k < 9) {
      uint32_t f = rng_below (&rng, 2) ? LIBNBD_CMD_FLAG_NO_HOLE : 0;
      if (nbd_zero (w->h, len, off, f) == -1)
        test_fail_nbd ("thread %d: zero flags=0x%x offset=%" PRIu64
                       " count=%" PRIu64, w->id, f, off, len);
      memset (shadow + off, 0, len);
      w->zeroes++;
    }
    else {
      /* Read back the whole owned unit. */
      check_range (w->h, w->id, buf, lo, hi - lo, "read of owned unit");
      w->reads++;
    }
  }
  return NULL;
}

/* Phase 2. */
struct race {
  struct nbd_handle *h[NTHREADS];
  uint64_t off;                 /* two slots at off */
  unsigned char a[2 * SLOT], b[2 * SLOT];
  unsigned char ac[SLOT], bc[SLOT];   /* slot 0 of a / b patched with c */
  unsigned char c[256];
  unsigned c_at;
  unsigned iters;
  volatile int writers_left;
  size_t seen[5];               /* A, B, A+C, B+C (slot 0 only) */
  const char *name;
};

struct race_arg {
  struct race *r;
  int who;
};

static void *
race_writer (void *arg)
{
  struct race_arg *ra = arg;
  struct race *r = ra->r;
  const unsigned char *page = ra->who == 0 ? r->a : r->b;

  for (unsigned i = 0; i < r->iters; i++) {
    if (nbd_pwrite (r->h[ra->who], page, 2 * SLOT, r->off, 0) == -1)
      test_fail_nbd ("race %s: writer %c: pwrite", r->name, 'A' + ra->who);
  }
  __atomic_sub_fetch (&r->writers_left, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void *
race_patcher (void *arg)
{
  struct race_arg *ra = arg;
  struct race *r = ra->r;

  while (__atomic_load_n (&r->writers_left, __ATOMIC_SEQ_CST) > 0) {
    if (nbd_pwrite (r->h[3], r->c, sizeof r->c, r->off + r->c_at, 0) == -1)
      test_fail_nbd ("race %s: patcher: pwrite", r->name);
  }
  return NULL;
}

/* Which of A, B, A+C, B+C slot @s of @got (SLOT bytes) is; -1 if none. */
static int
classify (const struct race *r, const unsigned char *got, int s)
{
  if (memcmp (got, r->a + s * SLOT, SLOT) == 0)
    return 0;
  if (memcmp (got, r->b + s * SLOT, SLOT) == 0)
    return 1;
  if (s == 0 && memcmp (got, r->ac, SLOT) == 0)
    return 2;
  if (s == 0 && memcmp (got, r->bc, SLOT) == 0)
    return 3;
  return -1;
}

static void describe_mix (const struct race *r, const unsigned char *got,
                          int s) __attribute__ ((noreturn));

static void
describe_mix (const struct race *r, const unsigned char *got, int s)
{
  size_t from_a = 0, from_b = 0, other = 0;

  for (unsigned i = 0; i < SLOT; i++) {
    bool in_c = s == 0 && i >= r->c_at && i < r->c_at + sizeof r->c;
    if (in_c && got[i] == r->c[i - r->c_at])
      continue;
    if (got[i] == r->a[s * SLOT + i])
      from_a++;
    else if (got[i] == r->b[s * SLOT + i])
      from_b++;
    else
      other++;
  }
  test_fail ("race %s: slot %d read back a mix: %zu bytes match A only or "
             "both, %zu match B only, %zu match neither", r->name, s,
             from_a, from_b, other);
}

static void
race_reader (struct race *r, struct rng *rng)
{
  unsigned char got[2 * SLOT];

  for (;;) {
    int done = __atomic_load_n (&r->writers_left, __ATOMIC_SEQ_CST) == 0;
    if (rng_below (rng, 2) == 0) {
      /* Both slots. */
      if (nbd_pread (r->h[2], got, 2 * SLOT, r->off, 0) == -1)
        test_fail_nbd ("race %s: reader: pread", r->name);
      for (int s = 0; s < 2; s++) {
        int c = classify (r, got + s * SLOT, s);
        if (c < 0)
          describe_mix (r, got + s * SLOT, s);
        r->seen[c]++;
      }
    }
    else {
      /* An unaligned read inside slot 1: one of A or B. */
      unsigned at = (unsigned) rng_below (rng, SLOT);
      unsigned len = 1 + (unsigned) rng_below (rng, SLOT - at);
      const unsigned char *pa = r->a + SLOT + at, *pb = r->b + SLOT + at;
      if (nbd_pread (r->h[2], got, len, r->off + SLOT + at, 0) == -1)
        test_fail_nbd ("race %s: reader: pread", r->name);
      if (memcmp (got, pa, len) != 0 && memcmp (got, pb, len) != 0)
        test_fail ("race %s: unaligned read of slot 1 [+%u, %u bytes) is "
                   "neither all A nor all B", r->name, at, len);
    }
    if (done)
      break;
  }
}

static void
run_race (struct worker *w, const char *name, int kind_a, int kind_b,
          uint64_t off, struct rng *rng)
{
  struct race *r = calloc (1, sizeof *r);
  struct race_arg args[4];
  pthread_t t[3];
  int err;

  if (r == NULL)
    test_fail ("out of memory");
  r->name = name;
  r->off = off;
  r->iters = 1500;
  for (int i = 0; i < NTHREADS; i++)
    r->h[i] = w[i].h;
  do {
    fill_kind (rng, r->a, sizeof r->a, off, kind_a);
    fill_kind (rng, r->b, sizeof r->b, off, kind_b);
  } while (memcmp (r->a, r->b, SLOT) == 0
           || memcmp (r->a + SLOT, r->b + SLOT, SLOT) == 0);
  fill_kind (rng, r->c, sizeof r->c, 0, 3);
  r->c_at = 100 + (unsigned) rng_below (rng, SLOT - 200 - sizeof r->c);
  memcpy (r->ac, r->a, SLOT);
  memcpy (r->ac + r->c_at, r->c, sizeof r->c);
  memcpy (r->bc, r->b, SLOT);
  memcpy (r->bc + r->c_at, r->c, sizeof r->c);

  /* Start from A. */
  if (nbd_pwrite (r->h[0], r->a, 2 * SLOT, off, 0) == -1)
    test_fail_nbd ("race %s: initial pwrite", name);
  r->writers_left = 2;
  for (int i = 0; i < 3; i++) {
    args[i].r = r;
    args[i].who = i;
    err = pthread_create (&t[i], NULL, i < 2 ? race_writer : race_patcher,
                          &args[i]);
    if (err)
      test_fail ("pthread_create: %s", strerror (err));
  }
  race_reader (r, rng);
  for (int i = 0; i < 3; i++)
    pthread_join (t[i], NULL);
  /* The final state is one of them too. */
  r->writers_left = 0;
  race_reader (r, rng);
  printf ("%s: race %s: slot reads seen: A %zu, B %zu, A+C %zu, B+C %zu\n",
          test_name, name, r->seen[0], r->seen[1], r->seen[2], r->seen[3]);
  free (r);
}

int
main (int argc, char **argv)
{
  struct worker w[NTHREADS];
  const char *args[16] = { "size=40M", "ram-limit=1G" };
  struct nbd_handle *h;
  unsigned char *buf;
  struct rng rng;
  const char *s;
  int err;

  harness_init (argc, argv);
  /* Further plugin keys from the command line. */
  for (int i = 1, n = 2; i < argc && n < 15; i++)
    args[n++] = argv[i];
  s = getenv ("GHOSTSWAP_OPS");
  if (s && *s)
    ops_per_thread = (unsigned) strtoul (s, NULL, 10);
  seed = test_seed ();
  rng_seed (&rng, seed);

  shadow = calloc (1, DEV_SIZE);
  buf = malloc (DEV_SIZE);
  if (shadow == NULL || buf == NULL)
    test_fail ("out of memory");

  if (server_start (&srv, args) != 0)
    test_fail ("nbdkit exited at start (status 0x%x)", srv.exit_status);

  memset (w, 0, sizeof w);
  for (int i = 0; i < NTHREADS; i++) {
    w[i].id = i;
    w[i].h = server_connect (&srv);
    if (nbd_get_size (w[i].h) != DEV_SIZE)
      test_fail ("connection %d: size %" PRId64, i, nbd_get_size (w[i].h));
    if (nbd_can_multi_conn (w[i].h) != 1)
      test_fail ("connection %d: can_multi_conn = %d", i,
                 nbd_can_multi_conn (w[i].h));
  }

  /* Phase 1. */
  for (int i = 0; i < NTHREADS; i++) {
    err = pthread_create (&w[i].thread, NULL, worker_main, &w[i]);
    if (err)
      test_fail ("pthread_create: %s", strerror (err));
  }
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join (w[i].thread, NULL);
    printf ("%s: thread %d: %zu writes, %zu reads, %zu trims, %zu zeroes\n",
            test_name, i, w[i].writes, w[i].reads, w[i].trims, w[i].zeroes);
  }

  /* Everything, through a fresh connection. */
  h = server_connect (&srv);
  xpread (h, buf, DEV_SIZE, 0);
  {
    ssize_t d = first_diff (buf, shadow, DEV_SIZE);
    if (d >= 0)
      test_fail ("final read: byte %zd (slot %zd +%zd) is 0x%02x, expected "
                 "0x%02x", d, d / SLOT, d % SLOT, buf[d], shadow[d]);
  }
  printf ("%s: phase 1 ok: the merged shadow matches\n", test_name);

  /* Phase 2: slot atomicity, for each kind of page (0 zero, 1 same-filled
   * word, 2 compressible, 3 incompressible).  Two slots, in the middle of
   * a cluster and across a cluster boundary. */
  run_race (w, "word/word", 1, 1, REGION_C + 8 * SLOT, &rng);
  run_race (w, "text/random", 2, 3, REGION_C + 16 * SLOT, &rng);
  run_race (w, "random/random", 3, 3, REGION_C + 511 * SLOT, &rng);
  run_race (w, "zero/text", 0, 2, REGION_C + 1023 * SLOT, &rng);

  for (int i = 0; i < NTHREADS; i++) {
    if (nbd_shutdown (w[i].h, 0) == -1)
      test_fail_nbd ("nbd_shutdown");
    nbd_close (w[i].h);
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (shadow);
  free (buf);
  printf ("%s: ok\n", test_name);
  return 0;
}
