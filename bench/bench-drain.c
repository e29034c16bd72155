/* bench-drain - drain, migrate and O(1) relocation of ghostswap's backing
 * tier, driving libghostswap directly (no nbdkit, no kernel in the way).
 *
 * Not a test: run by hand, normally through bench/bench-backing.sh, which
 * passes a --hook that runs fio on the filled backing file and compares.
 *
 *   bench-drain drain    [OPTIONS]   fill a backing, then drain it into RAM
 *   bench-drain migrate  [OPTIONS]   fill a backing A, then migrate A -> B
 *   bench-drain relocate [OPTIONS]   fill a backing, then time
 *                                    gs_relocate_slot on random live
 *                                    physical slots, into a second backing
 *                                    and into RAM
 *
 * The fill, the same for every mode: a device of --device-size (drain and
 * migrate: 64G; relocate: the data size) with ram-limit --ram-limit
 * (64M) and one backing file sized to the data exactly; --data bytes of
 * page data (2G) are written, 4 KiB at a time with gs_pwrite, by
 * --threads writers (2) to distinct pseudo-random ghost slots: anywhere in
 * the device (--layout scattered, the default for drain and migrate, so
 * that a backing's physical order has nothing to do with ghost order and
 * clusters are sparse), or a random permutation of the first data-size
 * slots (--layout dense, the default for relocate: every cluster full).
 * The page data is the real-memory corpus (--corpus, cycled, without its
 * same-filled pages, which the engine would keep inline and never write
 * back) or, with --fio60, fio-like pages (in each 512-byte chunk, 40 %
 * random bytes and 60 % zeroes).  Writeback (the background thread, and
 * writers reclaiming directly) puts the pages on the backing; then
 * gs_writeback is called until RAM holds nothing, so that the backing's
 * reverse map is full.
 *
 * Then --hook CMD, if given, runs through /bin/sh with GS_BACKING (the
 * filled file) and GS_BACKING_BYTES (its live bytes) in the environment:
 * the place to measure the file with fio.  Then the timed part:
 *
 *   drain     ram-limit raised to hold everything, then
 *             gs_drain_start (A, NULL, false) + gs_drain_wait; every page
 *             is read back and compared afterwards;
 *   migrate   gs_backing_add (B) + gs_drain_start (A, B, true) +
 *             gs_drain_wait; 20000 pages are read back and compared;
 *   relocate  a second backing B is added and ram-limit set to its
 *             minimum, then gs_relocate_slot on random physical slots of A
 *             until --relocations of them have gone to B (calls that find
 *             a free slot, or whose page still fitted in RAM, are not
 *             counted); then ram-limit raised and the same into RAM.  Each
 *             call is timed (wall clock, and the calling thread's CPU
 *             time: the call does its I/O synchronously in this thread).
 *
 * Then --after-hook CMD, the same way (a drain leaves the file's contents
 * as they were, so fio can read it again).  The files are removed at the
 * end.
 *
 * Output: "key value" lines; bench-backing.sh picks them up.
 *
 * Exit status: 0 when it ran to the end, 1 on any error (including a page
 * that reads back wrong).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ghostswap/backing.h"
#include "ghostswap/config.h"
#include "ghostswap/device.h"
#include "ghostswap/stats.h"

#define PAGE GS_SLOT_SIZE

enum mode { MODE_DRAIN, MODE_MIGRATE, MODE_RELOCATE };

static struct {
  enum mode mode;
  const char *dir;
  uint64_t data;              /* bytes of page data */
  uint64_t device_size;       /* 0: per mode */
  uint64_t ram_limit;
  int dense;                  /* -1: per mode */
  const char *corpus;
  bool fio60;
  unsigned threads;
  const char *hook;
  const char *after_hook;
  uint64_t relocations;
  uint64_t verify;            /* pages to verify after; UINT64_MAX: all */
  bool verify_set;
  bool background;            /* start the background thread */
  bool plain;                 /* --no-encrypt: encrypt=false */
} opt = {
  .dir = "/var/tmp",
  .data = 2ull << 30,
  .ram_limit = 64ull << 20,
  .dense = -1,
  .threads = 2,
  .relocations = 20000,
};

static uint64_t npages;         /* pages written */
static uint64_t ndomain;        /* ghost slots the pages are spread over */
static unsigned domain_bits;
static unsigned char *corpus;   /* non-same-filled corpus pages */
static uint64_t corpus_pages;
static char path_a[PATH_MAX], path_b[PATH_MAX];
static struct gs_device *dev;

static void __attribute__ ((noreturn, format (printf, 1, 2)))
die (const char *fmt, ...)
{
  va_list ap;

  fprintf (stderr, "bench-drain: ");
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "\n");
  if (path_a[0])
    unlink (path_a);
  if (path_b[0])
    unlink (path_b);
  exit (1);
}

static double
clock_seconds (clockid_t id)
{
  struct timespec ts;

  clock_gettime (id, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double
now (void)
{
  return clock_seconds (CLOCK_MONOTONIC);
}

/* Resident set size in bytes, after giving free heap pages back. */
static uint64_t
rss_bytes (void)
{
  unsigned long size, resident;
  FILE *fp;

  malloc_trim (0);
  fp = fopen ("/proc/self/statm", "re");
  if (!fp || fscanf (fp, "%lu %lu", &size, &resident) != 2)
    die ("cannot read /proc/self/statm");
  fclose (fp);
  return (uint64_t) resident * (uint64_t) sysconf (_SC_PAGESIZE);
}

/* --- which ghost slot page i goes to --- */

/* A bijection of [0, 2^bits): odd multiplications and additions (mod
 * 2^bits) and right xorshifts are each invertible. */
static uint64_t
mix (uint64_t x, unsigned bits, uint64_t seed)
{
  uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
  unsigned shift = bits / 2 ? bits / 2 : 1;
  unsigned r;

  for (r = 0; r < 4; r++) {
    x = (x * (0x9e3779b97f4a7c15ull ^ (seed << 1)) + seed + r) & mask;
    if (bits > 1)
      x ^= x >> shift;
  }
  return x;
}

/* A permutation of [0, n) (cycle walking over the bijection of the next
 * power of two). */
static uint64_t
permute (uint64_t i, uint64_t n, unsigned bits, uint64_t seed)
{
  uint64_t x = i;

  do
    x = mix (x, bits, seed);
  while (x >= n);
  return x;
}

static unsigned
bits_for (uint64_t n)
{
  unsigned b = 1;

  while (b < 64 && (1ull << b) < n)
    b++;
  return b;
}

static uint64_t
slot_of (uint64_t i)
{
  return permute (i, ndomain, domain_bits, 0x5eed);
}

/* --- page data --- */

static uint64_t
xorshift (uint64_t *s)
{
  uint64_t x = *s;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* The contents of page i: a pointer into the corpus, or generated into
 * @buf. */
static const unsigned char *
page_data (uint64_t i, unsigned char *buf)
{
  uint64_t s;
  size_t c, k;

  if (!opt.fio60)
    return corpus + (i % corpus_pages) * PAGE;
  s = (i + 1) * 0x9e3779b97f4a7c15ull;
  for (c = 0; c < PAGE; c += 512) {
    for (k = 0; k < 205; k += 8) {
      uint64_t v = xorshift (&s);
      memcpy (buf + c + k, &v, k + 8 <= 205 ? 8 : 205 - k);
    }
    memset (buf + c + 205, 0, 512 - 205);
  }
  return buf;
}

/* Is @p one repeated 8-byte word (the engine keeps those inline)? */
static bool
same_filled (const unsigned char *p)
{
  uint64_t w0, w;
  size_t k;

  memcpy (&w0, p, 8);
  for (k = 8; k < PAGE; k += 8) {
    memcpy (&w, p + k, 8);
    if (w != w0)
      return false;
  }
  return true;
}

static void
load_corpus (void)
{
  struct stat st;
  unsigned char *all;
  uint64_t n, k, same = 0;
  int fd;

  fd = open (opt.corpus, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0)
    die ("%s: %s (give --corpus PATH, or --fio60)", opt.corpus,
         strerror (errno));
  n = (uint64_t) st.st_size / PAGE;
  if (n == 0)
    die ("%s: smaller than one page", opt.corpus);
  all = malloc (n * PAGE);
  corpus = malloc (n * PAGE);
  if (!all || !corpus)
    die ("out of memory");
  for (k = 0; k < n * PAGE; ) {
    ssize_t r = read (fd, all + k, n * PAGE - k);
    if (r <= 0)
      die ("%s: short read", opt.corpus);
    k += (uint64_t) r;
  }
  close (fd);
  for (k = 0; k < n; k++) {
    if (same_filled (all + k * PAGE))
      same++;
    else
      memcpy (corpus + corpus_pages++ * PAGE, all + k * PAGE, PAGE);
  }
  free (all);
  printf ("corpus_pages %" PRIu64 "\ncorpus_same_filled_skipped %" PRIu64 "\n",
          corpus_pages, same);
}

/* --- the fill --- */

struct writer {
  pthread_t tid;
  unsigned t;
  int err;
  uint64_t at;
};

static void *
writer (void *arg)
{
  struct writer *w = arg;
  unsigned char *buf = aligned_alloc (PAGE, PAGE);
  uint64_t i;

  if (!buf) {
    w->err = -ENOMEM;
    return NULL;
  }
  for (i = w->t; i < npages; i += opt.threads) {
    int r = gs_pwrite (dev, page_data (i, buf), PAGE, slot_of (i) * PAGE);
    if (r < 0) {
      w->err = r;
      w->at = i;
      break;
    }
  }
  free (buf);
  return NULL;
}

static void
print_stats (const char *prefix)
{
  struct gs_stats st;

  gs_get_stats (dev, &st);
  printf ("%sslots_ram %" PRIu64 "\n%sslots_backing %" PRIu64 "\n"
          "%spool_bytes %" PRIu64 "\n%smetadata_bytes %" PRIu64 "\n"
          "%srmap_bytes %" PRIu64 "\n%sclusters %" PRIu64 "\n"
          "%smetadata_per_backing_slot %.3f\n%scompression_ratio %.3f\n"
          "%swriteback_pages %" PRIu64 "\n",
          prefix, st.slots_ram, prefix, st.slots_backing,
          prefix, st.pool_bytes, prefix, st.metadata_bytes,
          prefix, st.rmap_bytes, prefix, st.clusters,
          prefix, st.metadata_per_backing_slot, prefix, st.compression_ratio,
          prefix, st.writeback_pages);
}

static void
fill (void)
{
  struct gs_config cfg;
  struct writer *w;
  struct gs_stats st;
  char err[512], sz[32];
  uint64_t rss0, rss1;
  double t0, t1, t2;
  int64_t r;
  unsigned t;

  gs_config_init (&cfg);
  cfg.size = opt.device_size;
  cfg.ram_limit = opt.ram_limit;
  cfg.encrypt = !opt.plain;
  if (gs_config_check (&cfg, err, sizeof err) < 0)
    die ("%s", err);
  rss0 = rss_bytes ();
  if (gs_device_create (&cfg, &dev) < 0)
    die ("gs_device_create failed");
  gs_config_free (&cfg);
  if (gs_backing_add (dev, path_a, npages * PAGE, err, sizeof err) < 0)
    die ("%s", err);
  if (opt.background && gs_device_start (dev) < 0)
    die ("gs_device_start failed");
  printf ("encrypt %d\n", !opt.plain);
  printf ("device_size %" PRIu64 "\nram_limit %" PRIu64 "\n"
          "data_pages %" PRIu64 "\nlayout %s\ndata %s\nbacking_a %s\n"
          "background_thread %d\n",
          opt.device_size, opt.ram_limit, npages,
          opt.dense ? "dense" : "scattered",
          opt.fio60 ? "fio60" : "corpus", path_a, opt.background);
  fprintf (stderr, "bench-drain: writing %s of pages (%" PRIu64 ") to %s "
           "ghost slots, %u writers...\n",
           gs_format_size (npages * PAGE, sz, sizeof sz), npages,
           opt.dense ? "dense" : "scattered", opt.threads);

  w = calloc (opt.threads, sizeof *w);
  if (!w)
    die ("out of memory");
  t0 = now ();
  for (t = 0; t < opt.threads; t++) {
    w[t].t = t;
    if (pthread_create (&w[t].tid, NULL, writer, &w[t]) != 0)
      die ("pthread_create failed");
  }
  for (t = 0; t < opt.threads; t++)
    pthread_join (w[t].tid, NULL);
  for (t = 0; t < opt.threads; t++)
    if (w[t].err)
      die ("gs_pwrite of page %" PRIu64 " failed: %s", w[t].at,
           strerror (-w[t].err));
  free (w);
  t1 = now ();
  /* Everything still in RAM goes to the backing too. */
  do
    r = gs_writeback (dev, npages);
  while (r > 0);
  t2 = now ();
  gs_get_stats (dev, &st);
  if (r < 0 && st.slots_ram > 0)
    fprintf (stderr, "bench-drain: gs_writeback: %s (%" PRIu64 " pages "
             "left in RAM)\n", strerror ((int) -r), st.slots_ram);
  rss1 = rss_bytes ();
  printf ("fill_seconds %.3f\nfill_MBps %.1f\nwriteback_rest_seconds %.3f\n",
          t1 - t0, (double) npages * PAGE / 1e6 / (t1 - t0), t2 - t1);
  print_stats ("fill_");
  /* The cross-check of metadata_per_backing_slot: what the process grew
   * by, less the pool's segments, per page on backing. */
  printf ("rss_growth %" PRIu64 "\n", rss1 - rss0);
  if (st.slots_backing > 0)
    printf ("rss_per_backing_slot %.3f\n",
            ((double) rss1 - (double) rss0 - (double) st.pool_bytes)
            / (double) st.slots_backing);
  fflush (stdout);
}

/* Run @cmd with GS_BACKING and GS_BACKING_BYTES set (the bytes the fill
 * left on it: a drain does not change the file's contents). */
static void
run_hook (const char *cmd)
{
  static char bytes[32];
  int r;

  if (!cmd)
    return;
  if (!bytes[0]) {
    struct gs_backing_info bi[2];
    if (gs_backing_list (dev, bi, 2) < 1)
      die ("no backing attached");
    snprintf (bytes, sizeof bytes, "%" PRIu64, bi[0].used * PAGE);
  }
  setenv ("GS_BACKING", path_a, 1);
  setenv ("GS_BACKING_BYTES", bytes, 1);
  fflush (stdout);
  fprintf (stderr, "bench-drain: hook: %s\n", cmd);
  r = system (cmd);
  if (r != 0)
    die ("hook failed (status %d): %s", r, cmd);
}

/* Read back @count pages (spread over all of them) and compare. */
static void
verify (uint64_t count)
{
  unsigned char *got = aligned_alloc (PAGE, PAGE);
  unsigned char *want = aligned_alloc (PAGE, PAGE);
  uint64_t k, i, step, bad = 0;
  double t0 = now ();

  if (!got || !want)
    die ("out of memory");
  if (count > npages)
    count = npages;
  if (count == 0)
    return;
  step = npages / count;
  for (k = 0; k < count; k++) {
    i = k * step;
    if (gs_pread (dev, got, PAGE, slot_of (i) * PAGE) < 0
        || memcmp (got, page_data (i, want), PAGE) != 0)
      bad++;
  }
  printf ("verified_pages %" PRIu64 "\nverify_bad %" PRIu64 "\n"
          "verify_seconds %.3f\n", count, bad, now () - t0);
  free (got);
  free (want);
  if (bad)
    die ("%" PRIu64 " of %" PRIu64 " pages read back wrong", bad, count);
}

static void
print_drain (const char *prefix, double seconds)
{
  struct gs_drain_status ds;

  gs_drain_get_status (dev, &ds);
  printf ("%s_result %d\n%s_total %" PRIu64 "\n%s_done %" PRIu64 "\n"
          "%s_skipped %" PRIu64 "\n%s_seconds %.3f\n"
          "%s_engine_seconds %.3f\n%s_MBps %.1f\n%s_engine_MBps %.1f\n",
          prefix, ds.result, prefix, ds.total, prefix, ds.done,
          prefix, ds.skipped, prefix, seconds, prefix, ds.seconds,
          prefix, (double) ds.done * PAGE / 1e6 / seconds,
          prefix, ds.bytes_per_sec / 1e6);
  if (ds.result != 0)
    die ("%s failed: %s", prefix, ds.message);
  if (ds.done != ds.total)
    die ("%s moved %" PRIu64 " of %" PRIu64 " pages", prefix, ds.done,
         ds.total);
}

static void
do_drain (void)
{
  char err[2 * PATH_MAX];
  double t0, t1;

  /* Room for everything, even if it were all stored raw. */
  if (gs_set_ram_limit (dev, npages * (PAGE + PAGE / 4) + (64ull << 20)) < 0)
    die ("gs_set_ram_limit failed");
  fprintf (stderr, "bench-drain: draining %s into RAM...\n", path_a);
  t0 = now ();
  if (gs_drain_start (dev, path_a, NULL, false, err, sizeof err) < 0)
    die ("%s", err);
  gs_drain_wait (dev);
  t1 = now ();
  print_drain ("drain", t1 - t0);
  print_stats ("after_");
  verify (opt.verify_set ? opt.verify : UINT64_MAX);
}

static void
do_migrate (void)
{
  char err[2 * PATH_MAX];
  double t0, t1, t2;
  struct gs_backing_info bi[2];

  fprintf (stderr, "bench-drain: migrating %s to %s...\n", path_a, path_b);
  t0 = now ();
  if (gs_backing_add (dev, path_b, npages * PAGE, err, sizeof err) < 0)
    die ("%s", err);
  t1 = now ();
  if (gs_drain_start (dev, path_a, path_b, true, err, sizeof err) < 0)
    die ("%s", err);
  gs_drain_wait (dev);
  t2 = now ();
  printf ("backing_add_seconds %.3f\n", t1 - t0);
  print_drain ("migrate", t2 - t0);
  if (gs_backing_list (dev, bi, 2) != 1 || strcmp (bi[0].path, path_b) != 0)
    die ("after the migration, %s should be the only backing", path_b);
  print_stats ("after_");
  verify (opt.verify_set ? opt.verify : 20000);
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static uint64_t
backing_used (const char *path)
{
  struct gs_backing_info bi[4];
  unsigned n = gs_backing_list (dev, bi, 4), k;

  for (k = 0; k < n && k < 4; k++)
    if (strcmp (bi[k].path, path) == 0)
      return bi[k].used;
  return 0;
}

/* Relocate opt.relocations live pages of A (random physical slots) and
 * time each call; report the ones that went where @target says. */
static void
relocate_run (const char *target, uint64_t *next, uint64_t nslots)
{
  double *lat = malloc (opt.relocations * sizeof *lat);
  uint64_t ok = 0, enoent = 0, elsewhere = 0, tries = 0;
  unsigned bits = bits_for (nslots);
  double sum = 0, cpu = 0, t0 = now ();

  if (!lat)
    die ("out of memory");
  while (ok < opt.relocations && *next < nslots) {
    uint64_t p = permute ((*next)++, nslots, bits, 0xabcdef);
    uint64_t before = backing_used (path_b);
    double ca = clock_seconds (CLOCK_THREAD_CPUTIME_ID), a = now (), b, cb;
    int r = gs_relocate_slot (dev, path_a, p);

    b = now ();
    cb = clock_seconds (CLOCK_THREAD_CPUTIME_ID);
    tries++;
    if (r == -ENOENT) {
      enoent++;
      continue;
    }
    if (r < 0)
      die ("gs_relocate_slot (%" PRIu64 "): %s", p, strerror (-r));
    /* Where did it go? */
    if ((backing_used (path_b) > before) != (strcmp (target, "backing") == 0)) {
      elsewhere++;
      continue;
    }
    lat[ok++] = (b - a) * 1e6;
    sum += (b - a) * 1e6;
    cpu += (cb - ca) * 1e6;
  }
  if (ok == 0)
    die ("no relocation into %s succeeded", target);
  qsort (lat, ok, sizeof *lat, cmp_double);
  printf ("reloc_%s_count %" PRIu64 "\nreloc_%s_tries %" PRIu64 "\n"
          "reloc_%s_enoent %" PRIu64 "\nreloc_%s_other_target %" PRIu64 "\n"
          "reloc_%s_mean_us %.2f\nreloc_%s_p50_us %.2f\n"
          "reloc_%s_p99_us %.2f\nreloc_%s_cpu_us %.2f\n"
          "reloc_%s_wall_seconds %.3f\n",
          target, ok, target, tries, target, enoent, target, elsewhere,
          target, sum / (double) ok, target, lat[ok / 2],
          target, lat[ok * 99 / 100], target, cpu / (double) ok,
          target, now () - t0);
  free (lat);
}

static void
do_relocate (void)
{
  char err[2 * PATH_MAX];
  struct gs_backing_info bi[1];
  uint64_t next = 0, nslots;

  if (gs_backing_list (dev, bi, 1) != 1)
    die ("no backing");
  nslots = bi[0].slots;
  if (gs_backing_add (dev, path_b, (opt.relocations + 1024) * PAGE, err,
                      sizeof err) < 0)
    die ("%s", err);
  /* Into the second backing: RAM has no room (the smallest limit; the few
   * pages that still fit under it are counted apart). */
  if (gs_set_ram_limit (dev, GS_MIN_RAM_LIMIT) < 0)
    die ("gs_set_ram_limit failed");
  fprintf (stderr, "bench-drain: %" PRIu64 " relocations into %s...\n",
           opt.relocations, path_b);
  relocate_run ("backing", &next, nslots);
  /* Into RAM: room for all of them. */
  if (gs_set_ram_limit (dev, opt.relocations * (PAGE + PAGE / 4)
                        + (64ull << 20)) < 0)
    die ("gs_set_ram_limit failed");
  fprintf (stderr, "bench-drain: %" PRIu64 " relocations into RAM...\n",
           opt.relocations);
  relocate_run ("ram", &next, nslots);
  print_stats ("after_");
  verify (opt.verify_set ? opt.verify : 20000);
}

static void __attribute__ ((noreturn))
usage (int status)
{
  fprintf (status ? stderr : stdout,
"usage: bench-drain drain|migrate|relocate [OPTIONS]\n"
"  --dir DIR            backing files go here (default /var/tmp; not tmpfs)\n"
"  --data SIZE          page data to write (default 2G)\n"
"  --device-size SIZE   ghost device size (default: 64G; relocate: --data)\n"
"  --layout scattered|dense  ghost slots anywhere / a permutation of the\n"
"                       first --data bytes (default: scattered; relocate: dense)\n"
"  --ram-limit SIZE     RAM tier cap during the fill (default 64M)\n"
"  --corpus PATH        page data: this file's pages, cycled, same-filled\n"
"                       ones skipped (this or --fio60 is needed)\n"
"  --fio60              page data: fio-like, 60 %% compressible\n"
"  --threads N          writers during the fill (default 2)\n"
"  --hook CMD           run after the fill (env GS_BACKING, GS_BACKING_BYTES)\n"
"  --after-hook CMD     the same, after the timed part (the first backing\n"
"                       file still holds what the fill wrote)\n"
"  --relocations N      relocate: successful relocations per target (20000)\n"
"  --verify N           pages to read back and compare afterwards\n"
"                       (default: drain all, others 20000)\n"
"  --no-background      no background thread (writers reclaim directly)\n"
"  --no-encrypt         backings without encryption at rest (encrypt=false)\n");
  exit (status);
}

static uint64_t
size_arg (const char *name, const char *s)
{
  uint64_t v;

  if (gs_parse_size (s, &v) < 0)
    die ("%s: bad size '%s'", name, s);
  return v;
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "dir", required_argument, NULL, 'd' },
    { "data", required_argument, NULL, 'n' },
    { "device-size", required_argument, NULL, 's' },
    { "layout", required_argument, NULL, 'l' },
    { "ram-limit", required_argument, NULL, 'r' },
    { "corpus", required_argument, NULL, 'c' },
    { "fio60", no_argument, NULL, 'f' },
    { "threads", required_argument, NULL, 't' },
    { "hook", required_argument, NULL, 'k' },
    { "after-hook", required_argument, NULL, 'K' },
    { "relocations", required_argument, NULL, 'R' },
    { "verify", required_argument, NULL, 'v' },
    { "no-background", no_argument, NULL, 'B' },
    { "no-encrypt", no_argument, NULL, 'E' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int c;

  if (argc < 2)
    usage (1);
  if (strcmp (argv[1], "drain") == 0)
    opt.mode = MODE_DRAIN;
  else if (strcmp (argv[1], "migrate") == 0)
    opt.mode = MODE_MIGRATE;
  else if (strcmp (argv[1], "relocate") == 0)
    opt.mode = MODE_RELOCATE;
  else if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    usage (0);
  else
    usage (1);
  opt.background = opt.mode != MODE_RELOCATE;
  optind = 2;
  while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'd': opt.dir = optarg; break;
    case 'n': opt.data = size_arg ("--data", optarg); break;
    case 's': opt.device_size = size_arg ("--device-size", optarg); break;
    case 'l':
      if (strcmp (optarg, "dense") == 0)
        opt.dense = 1;
      else if (strcmp (optarg, "scattered") == 0)
        opt.dense = 0;
      else
        die ("--layout: dense or scattered");
      break;
    case 'r': opt.ram_limit = size_arg ("--ram-limit", optarg); break;
    case 'c': opt.corpus = optarg; break;
    case 'f': opt.fio60 = true; break;
    case 't': opt.threads = (unsigned) atoi (optarg); break;
    case 'k': opt.hook = optarg; break;
    case 'K': opt.after_hook = optarg; break;
    case 'R': opt.relocations = strtoull (optarg, NULL, 0); break;
    case 'v': opt.verify = strtoull (optarg, NULL, 0); opt.verify_set = true; break;
    case 'B': opt.background = false; break;
    case 'E': opt.plain = true; break;
    case 'h': usage (0);
    default: usage (1);
    }
  }
  if (optind != argc || opt.threads == 0 || opt.relocations == 0)
    usage (1);
  npages = opt.data / PAGE;
  if (npages == 0)
    die ("--data: at least one page");
  if (opt.dense < 0)
    opt.dense = opt.mode == MODE_RELOCATE;
  if (opt.device_size == 0)
    opt.device_size = opt.mode == MODE_RELOCATE ? npages * PAGE : 64ull << 30;
  if (opt.device_size / PAGE < npages)
    die ("--device-size is smaller than --data");
  ndomain = opt.dense ? npages : opt.device_size / PAGE;
  domain_bits = bits_for (ndomain);
  if (!opt.fio60) {
    if (!opt.corpus)
      die ("give --corpus PATH (e.g. ../shared/data/memory-corpus.bin) "
           "or --fio60");
    load_corpus ();
  }
  snprintf (path_a, sizeof path_a, "%s/bench-drain-%ld-a.img", opt.dir,
            (long) getpid ());
  snprintf (path_b, sizeof path_b, "%s/bench-drain-%ld-b.img", opt.dir,
            (long) getpid ());
  unlink (path_a);
  unlink (path_b);
  printf ("mode %s\n", argv[1]);

  fill ();
  run_hook (opt.hook);
  switch (opt.mode) {
  case MODE_DRAIN: do_drain (); break;
  case MODE_MIGRATE: do_migrate (); break;
  case MODE_RELOCATE: do_relocate (); break;
  }
  run_hook (opt.after_hook);
  gs_device_destroy (dev);
  unlink (path_a);
  unlink (path_b);
  free (corpus);
  printf ("ok 1\n");
  return 0;
}
