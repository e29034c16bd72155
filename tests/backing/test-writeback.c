/* ghostswap backing test: writeback under a small ram-limit.
 *
 * size=256M ram-limit=4M backing=b0 backing-size=256M.  About 64 MiB of
 * mixed pages (zero, repeated words, text, random, mixes) are written at
 * random offsets, mostly whole slots, some unaligned, with a few trims, and
 * every byte is checked against a shadow.  Then:
 *  - the stats show pages on backing (slots_backing, writeback_pages) and
 *    the RAM pool never held more than ram-limit plus the compaction
 *    reserve (see SLACK below), sampled during the run too;
 *  - "writeback 100" moves pages RAM -> backing and nothing else changes
 *    (slots_ram falls by what slots_backing and writeback_pages gain);
 *  - the backing file is scanned for raw (incompressible) pages: each one
 *    found there is a page known to live on backing; each is read back
 *    alone, then some are overwritten (whole and partial: read-modify-
 *    write of a backing page) and some trimmed (whole and partial), and
 *    the whole device is verified again;
 *  - b0's live slots in "backing list" equal slots_backing, no backing
 *    I/O error was counted, and nbdkit exits cleanly.
 *
 * With the argument "concurrent": size=128M ram-limit=1M, b0 of 128M; four
 * connections write 96 MiB (mostly incompressible) with 16 requests of up
 * to 256 KiB in flight each, as nbdcopy does.  With a healthy backing that
 * has room, no write may fail (the RAM tier waits for writeback); the pool
 * stays within its bound throughout; every byte verifies.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk.h"
#include "pool.h"

#define DEV_SIZE (256ull * MiB)
#define NSLOTS (DEV_SIZE / SLOT)
#define RAM_LIMIT (4ull * MiB)
#define WRITE_TOTAL (64ull * MiB)

/* The pool refuses a new segment once it holds floor(ram-limit /
 * GS_SEGMENT_BYTES) of them, except for the compaction stream (also used
 * by writeback's second-chance moves), which may go GS_POOL_RESERVE
 * segments past the limit (lib/pool.c segment_new); pool_bytes counts
 * whole segments.  So pool_bytes <= ram-limit + GS_POOL_RESERVE segments. */
#ifdef GS_SEGMENT_BYTES
#define SLACK ((uint64_t) GS_POOL_RESERVE * GS_SEGMENT_BYTES)
#else
#define SLACK ((uint64_t) GS_POOL_RESERVE * (GS_SEGMENT_DATA + 64))
#endif

static uint64_t max_pool;

static void
check_pool (const struct bk_stats *st, const char *when)
{
  if (st->pool_bytes > max_pool)
    max_pool = st->pool_bytes;
  if (st->pool_bytes > st->ram_limit + SLACK)
    test_fail ("%s: pool_bytes %" PRIu64 " > ram_limit %" PRIu64
               " + slack %" PRIu64, when, st->pool_bytes, st->ram_limit,
               (uint64_t) SLACK);
}

/* Stats once background writeback has stopped moving pages. */
static void
settled_stats (struct bk_stats *st)
{
  struct bk_stats prev;

  bk_stats (&prev);
  for (int i = 0; i < 50; i++) {
    msleep (700);           /* longer than the background period (500 ms) */
    bk_stats (st);
    if (st->writeback_pages == prev.writeback_pages
        && st->slots_backing == prev.slots_backing
        && st->slots_ram == prev.slots_ram)
      return;
    prev = *st;
  }
  test_fail ("background writeback did not settle in 35 s");
}

/* ---- concurrent writers ---- */

#define CC_SIZE (128ull * MiB)
#define CC_WRITE (96ull * MiB)
#define CC_CONNS 4
#define CC_INFLIGHT 16
#define CC_REQ (256u * 1024)

static struct shadow cc_sh;
static struct server cc_srv;
static unsigned cc_finished;          /* writers done (atomic) */

struct cc_writer {
  pthread_t thread;
  unsigned t;
  struct rng r;
  uint64_t start, end;
};

static void *
cc_write (void *arg)
{
  struct cc_writer *w = arg;
  struct nbd_handle *h = server_connect (&cc_srv);
  int64_t cookie[CC_INFLIGHT];
  uint64_t coff[CC_INFLIGHT], clen[CC_INFLIGHT];
  unsigned n = 0;
  uint64_t off = w->start;

  while (off < w->end || n > 0) {
    while (n < CC_INFLIGHT && off < w->end) {
      uint64_t len = (1 + rng_below (&w->r, CC_REQ / SLOT)) * SLOT;
      if (len > w->end - off)
        len = w->end - off;
      for (uint64_t s = off / SLOT; s < (off + len) / SLOT; s++)
        gen_slot (&w->r, cc_sh.data + s * SLOT, s,
                  rng_below (&w->r, 4) ? 3 : -1);
      cookie[n] = nbd_aio_pwrite (h, cc_sh.data + off, len, off,
                                  NBD_NULL_COMPLETION, 0);
      if (cookie[n] == -1)
        test_fail_nbd ("aio_pwrite");
      coff[n] = off;
      clen[n] = len;
      n++;
      off += len;
    }
    if (nbd_poll (h, -1) == -1)
      test_fail_nbd ("poll");
    for (unsigned i = 0; i < n; ) {
      int r = nbd_aio_command_completed (h, cookie[i]);
      if (r == 0) {
        i++;
        continue;
      }
      if (r == -1) {
        int e = nbd_get_errno ();
        struct bk_stats st;
        bk_stats (&st);
        test_fail ("connection %u: write of %" PRIu64 " bytes at %" PRIu64
                   " failed: %s (%s); the backing has %" PRIu64 " of %"
                   PRIu64 " slots free, RAM pool %" PRIu64 " of %" PRIu64
                   " bytes, enospc %" PRIu64, w->t, clen[i], coff[i],
                   strerror (e), nbd_get_error (),
                   st.backing_slots - st.backing_used, st.backing_slots,
                   st.pool_bytes, st.ram_limit, st.enospc);
      }
      cookie[i] = cookie[n - 1];
      coff[i] = coff[n - 1];
      clen[i] = clen[n - 1];
      n--;
    }
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
  __atomic_add_fetch (&cc_finished, 1, __ATOMIC_RELEASE);
  return NULL;
}

static int
concurrent (uint64_t seed)
{
  struct cc_writer w[CC_CONNS];
  struct bk_stats st;
  struct nbd_handle *h;
  char barg[200];

  snprintf (barg, sizeof barg, "backing=%s", bk_path ("b0"));
  bk_start (&cc_srv, "size=128M", "ram-limit=1M", barg, "backing-size=128M",
            NULL);
  shadow_init (&cc_sh, CC_SIZE);
  for (unsigned t = 0; t < CC_CONNS; t++) {
    w[t].t = t;
    rng_seed (&w[t].r, seed + t);
    w[t].start = CC_WRITE / CC_CONNS * t;
    w[t].end = CC_WRITE / CC_CONNS * (t + 1);
    if (pthread_create (&w[t].thread, NULL, cc_write, &w[t]) != 0)
      test_fail ("pthread_create");
  }
  /* Sample the pool while they write. */
  while (__atomic_load_n (&cc_finished, __ATOMIC_ACQUIRE) < CC_CONNS) {
    bk_stats (&st);
    check_pool (&st, "during concurrent writes");
    msleep (20);
  }
  for (unsigned t = 0; t < CC_CONNS; t++)
    pthread_join (w[t].thread, NULL);
  bk_stats (&st);
  check_pool (&st, "after concurrent writes");
  printf ("%s: concurrent: slots_backing %" PRIu64 ", slots_ram %" PRIu64
          ", max pool %" PRIu64 " (limit %" PRIu64 " + slack %" PRIu64
          "), enospc %" PRIu64 "\n", test_name, st.slots_backing,
          st.slots_ram, max_pool, st.ram_limit, (uint64_t) SLACK, st.enospc);
  if (st.errors || st.enospc)
    test_fail ("request errors counted: %" PRIu64 " (enospc %" PRIu64 ")",
               st.errors, st.enospc);
  h = server_connect (&cc_srv);
  sh_verify_all (&cc_sh, h, "after concurrent writes");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&cc_srv);
  free (cc_sh.data);
  return 0;
}

int
main (int argc, char **argv)
{
  struct server srv;
  struct nbd_handle *h;
  struct shadow sh;
  struct bk_stats st, st1, st2;
  struct bk_backing b;
  struct rng r;
  char barg[200];
  const char *b0;
  unsigned char *buf;
  uint64_t written = 0, ops = 0, *map, found, p;
  uint64_t n_whole = 0, n_part = 0, n_trim = 0, n_ptrim = 0;
  int64_t pages;
  char *a;

  bk_init (argc, argv);
  if (argc > 1 && strcmp (argv[1], "concurrent") == 0)
    return concurrent (test_seed ());
  rng_seed (&r, test_seed ());
  b0 = bk_path ("b0");
  snprintf (barg, sizeof barg, "backing=%s", b0);
  bk_start (&srv, "size=256M", "ram-limit=4M", barg, "backing-size=256M",
            "encrypt=false",      /* raw pages are found in the file */
            NULL);
  h = server_connect (&srv);
  shadow_init (&sh, DEV_SIZE);
  buf = malloc (16 * SLOT + 8192);
  map = calloc (NSLOTS, sizeof *map);
  if (!buf || !map)
    test_fail ("out of memory");

  /* Fill. */
  while (written < WRITE_TOTAL) {
    unsigned op = (unsigned) rng_below (&r, 100);

    if (op < 88) {
      uint64_t n = 1 + rng_below (&r, 16);
      uint64_t s = rng_below (&r, NSLOTS - n);
      for (uint64_t k = 0; k < n; k++)
        gen_slot (&r, buf + k * SLOT, s + k, -1);
      sh_write (&sh, h, buf, n * SLOT, s * SLOT);
      written += n * SLOT;
    }
    else if (op < 96) {
      uint64_t off = rng_below (&r, DEV_SIZE - 1);
      uint64_t len = 1 + rng_below (&r, 8192);
      if (len > DEV_SIZE - off)
        len = DEV_SIZE - off;
      fill_mixed (&r, buf, len, off);
      sh_write (&sh, h, buf, len, off);
      written += len;
    }
    else {
      uint64_t off = rng_below (&r, DEV_SIZE - 1);
      uint64_t len = 1 + rng_below (&r, 32768);
      if (len > DEV_SIZE - off)
        len = DEV_SIZE - off;
      sh_trim (&sh, h, len, off, rng_below (&r, 2) == 0);
    }
    if (++ops % 256 == 0) {
      bk_stats (&st);
      check_pool (&st, "while writing");
    }
  }
  printf ("%s: wrote %" PRIu64 " bytes in %" PRIu64 " requests\n", test_name,
          written, ops);

  sh_verify_all (&sh, h, "after writing");
  settled_stats (&st);
  check_pool (&st, "after writing");
  printf ("%s: slots_ram %" PRIu64 " (raw %" PRIu64 ") slots_same %" PRIu64
          " slots_backing %" PRIu64 " writeback_pages %" PRIu64
          " batches %" PRIu64 " pool_bytes %" PRIu64 " (max seen %" PRIu64
          ", limit %" PRIu64 " + slack %" PRIu64 ")\n", test_name,
          st.slots_ram, st.slots_ram_raw, st.slots_same, st.slots_backing,
          st.writeback_pages, st.writeback_batches, st.pool_bytes, max_pool,
          st.ram_limit, (uint64_t) SLACK);
  if (st.slots_backing == 0 || st.writeback_pages == 0)
    test_fail ("no page went to backing (slots_backing %" PRIu64
               ", writeback_pages %" PRIu64 ")", st.slots_backing,
               st.writeback_pages);
  if (st.ram_limit != RAM_LIMIT)
    test_fail ("ram_limit is %" PRIu64, st.ram_limit);
  if (!bk_backing (b0, &b))
    test_fail ("%s is not in backing list", b0);
  if (b.used != st.slots_backing || st.backing_used != st.slots_backing)
    test_fail ("b0 used %" PRIu64 ", backing_used %" PRIu64
               " != slots_backing %" PRIu64, b.used, st.backing_used,
               st.slots_backing);
  if (!b.healthy || b.draining || b.size != DEV_SIZE)
    test_fail ("b0: healthy %d draining %d size %" PRIu64, b.healthy,
               b.draining, b.size);

  /* An explicit writeback moves pages and nothing else. */
  bk_stats (&st1);
  a = ctl_ok ("writeback 100");
  pages = json_i64 (a, "pages");
  free (a);
  bk_stats (&st2);
  check_pool (&st2, "after writeback 100");
  printf ("%s: writeback 100 moved %" PRId64 " pages\n", test_name, pages);
  if (pages <= 0 || (uint64_t) pages > st1.slots_ram)
    test_fail ("writeback 100 answered pages=%" PRId64 " with %" PRIu64
               " pages in RAM", pages, st1.slots_ram);
  p = st2.writeback_pages - st1.writeback_pages;
  if (p < (uint64_t) pages)
    test_fail ("writeback_pages grew by %" PRIu64 " < %" PRId64, p, pages);
  if (st2.slots_backing - st1.slots_backing != p
      || st1.slots_ram - st2.slots_ram != p
      || st1.slots_same != st2.slots_same)
    test_fail ("writeback of %" PRIu64 " pages: slots_backing %" PRIu64
               " -> %" PRIu64 ", slots_ram %" PRIu64 " -> %" PRIu64
               ", slots_same %" PRIu64 " -> %" PRIu64, p, st1.slots_backing,
               st2.slots_backing, st1.slots_ram, st2.slots_ram,
               st1.slots_same, st2.slots_same);
  sh_verify_all (&sh, h, "after writeback 100");

  /* Pages known to be on backing: raw pages found in the file. */
  settled_stats (&st);
  found = scan_raw_pages (&sh, b0, NSLOTS, map);
  printf ("%s: %" PRIu64 " raw pages found in %s (of %" PRIu64
          " pages on backing)\n", test_name, found, b0, st.slots_backing);
  if (found == 0)
    test_fail ("no raw page found in the backing file");
  if (found > st.slots_backing)
    test_fail ("%" PRIu64 " pages found in the backing file, but only %"
               PRIu64 " slots on backing", found, st.slots_backing);
  for (uint64_t s = 0; s < NSLOTS; s++)
    if (map[s])
      sh_verify (&sh, h, s * SLOT, SLOT, "reading a backing page alone");

  /* Change them: whole and partial overwrites, whole and partial trims. */
  for (uint64_t s = 0; s < NSLOTS; s++) {
    if (!map[s])
      continue;
    switch (rng_below (&r, 6)) {
    case 0: case 1:
      gen_slot (&r, buf, s, -1);
      sh_write (&sh, h, buf, SLOT, s * SLOT);
      n_whole++;
      break;
    case 2: {
      uint64_t in = rng_below (&r, SLOT), len = 1 + rng_below (&r, SLOT - in);
      fill_mixed (&r, buf, len, s * SLOT + in);
      sh_write (&sh, h, buf, len, s * SLOT + in);
      n_part++;
      break;
    }
    case 3:
      sh_trim (&sh, h, SLOT, s * SLOT, false);
      n_trim++;
      break;
    case 4: {
      uint64_t in = rng_below (&r, SLOT), len = 1 + rng_below (&r, SLOT - in);
      sh_trim (&sh, h, len, s * SLOT + in, rng_below (&r, 2) == 0);
      n_ptrim++;
      break;
    }
    default:
      break;                /* left alone */
    }
  }
  printf ("%s: on backing pages: %" PRIu64 " overwritten, %" PRIu64
          " partly overwritten, %" PRIu64 " trimmed, %" PRIu64
          " partly trimmed\n", test_name, n_whole, n_part, n_trim, n_ptrim);
  sh_verify_all (&sh, h, "after changing backing pages");

  settled_stats (&st);
  check_pool (&st, "at the end");
  if (!bk_backing (b0, &b))
    test_fail ("%s is not in backing list", b0);
  if (b.used != st.slots_backing)
    test_fail ("at the end: b0 used %" PRIu64 " != slots_backing %" PRIu64,
               b.used, st.slots_backing);
  if (st.backing_read_errors || st.backing_write_errors || st.errors
      || b.read_errors || b.write_errors)
    test_fail ("errors counted: backing read %" PRIu64 " write %" PRIu64
               ", requests %" PRIu64, st.backing_read_errors,
               st.backing_write_errors, st.errors);
  sh_verify_all (&sh, h, "at the end");

  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (map);
  free (buf);
  free (sh.data);
  return 0;
}
