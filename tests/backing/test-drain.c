/* ghostswap backing test: drain and migrate online.
 *
 * size=256M ram-limit=4M backing=b0 backing-size=256M.  64 MiB of mixed
 * pages are written and pushed to b0 ("writeback"), then three client
 * threads, each on its own connection and its own slots (slot % 4 == t;
 * slots with slot % 4 == 3 are left alone), keep writing (whole and
 * partial slots), reading (checked against the shadow at once) and
 * trimming, while:
 *
 *  1. "migrate b0 b1 256M" attaches b1 and drains b0 into it; "drain
 *     status" is polled until running=false; its result must be 0, b0 gone
 *     from "backing list", b1 healthy.  "backing remove b0" during the
 *     migration must be refused.
 *  2. "ram-limit 512M", then "backing drain b1" empties b1 into RAM; result
 *     0, b1 still attached with no live slot, no slot on backing.
 *  The threads stop, and the whole device is verified.
 *  3. With no I/O: ram-limit 4M and "writeback" refill b1; ram-limit 512M,
 *     "backing drain b1" and at once "drain cancel": the drain ends with
 *     -ECANCELED, b1 stays attached and not draining, it holds exactly the
 *     pages not moved (total - done), and every byte is intact.  (Retried
 *     if the drain finished before the cancel reached it.)  Finally b1 is
 *     drained to the end, removed, and the device verified again.
 *  A drain of 1 or 2 that ends with -EAGAIN (pages a writeback racing its
 *  start put on the source: documented as "drain it again") is started
 *  again, at most three times.
 *
 * With the argument "back-to-back": size=64M ram-limit=2M, 16 MiB pushed
 * to b0, then 60 migrations b0 -> b1 -> b0 -> ..., each next "migrate"
 * sent on the same connection right behind the "drain wait" that ends the
 * previous one (as a script running "ghostswapctl migrate" twice does),
 * while a client keeps writing and reading another 16 MiB.
 * Every request must be answered within 30 s (a stuck control socket
 * means a deadlock in the engine), every migration must succeed and leave
 * one backing, the data must verify, and nbdkit must exit cleanly.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk.h"

#define DEV_SIZE (256ull * MiB)
#define NSLOTS (DEV_SIZE / SLOT)
#define AREA_SLOTS 16384ull             /* 64 MiB used by the test */
#define NTHREADS 3

static struct shadow sh;
static struct server srv;
static bool stop;

struct worker {
  unsigned t;
  pthread_t thread;
  struct nbd_handle *h;
  struct rng r;
  uint64_t ops;                         /* atomic */
  uint64_t writes, reads, trims;
};

static struct worker workers[NTHREADS];

static void *
work (void *arg)
{
  struct worker *w = arg;
  unsigned char buf[SLOT];

  while (!__atomic_load_n (&stop, __ATOMIC_ACQUIRE)) {
    uint64_t s = rng_below (&w->r, AREA_SLOTS / 4) * 4 + w->t;
    uint64_t in = rng_below (&w->r, SLOT), len = 1 + rng_below (&w->r, SLOT - in);
    unsigned op = (unsigned) rng_below (&w->r, 100);

    if (op < 40) {
      gen_slot (&w->r, buf, s, -1);
      sh_write (&sh, w->h, buf, SLOT, s * SLOT);
      w->writes++;
    }
    else if (op < 50) {
      fill_mixed (&w->r, buf, len, s * SLOT + in);
      sh_write (&sh, w->h, buf, len, s * SLOT + in);
      w->writes++;
    }
    else if (op < 80) {
      sh_verify (&sh, w->h, s * SLOT, SLOT, "reading during a drain");
      w->reads++;
    }
    else if (op < 85) {
      sh_verify (&sh, w->h, s * SLOT + in, len, "partial read during a drain");
      w->reads++;
    }
    else if (op < 95) {
      sh_trim (&sh, w->h, SLOT, s * SLOT, false);
      w->trims++;
    }
    else {
      sh_trim (&sh, w->h, len, s * SLOT + in, rng_below (&w->r, 2) == 0);
      w->trims++;
    }
    __atomic_add_fetch (&w->ops, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static uint64_t
total_ops (void)
{
  uint64_t n = 0;

  for (int t = 0; t < NTHREADS; t++)
    n += __atomic_load_n (&workers[t].ops, __ATOMIC_ACQUIRE);
  return n;
}

/* Wait until every worker has done @more operations more. */
static void
let_run (uint64_t more)
{
  uint64_t start[NTHREADS];

  for (int t = 0; t < NTHREADS; t++)
    start[t] = __atomic_load_n (&workers[t].ops, __ATOMIC_ACQUIRE);
  for (int t = 0; t < NTHREADS; t++)
    for (int tries = 0;
         __atomic_load_n (&workers[t].ops, __ATOMIC_ACQUIRE) < start[t] + more;
         tries++) {
      if (tries > 120 * 100)
        test_fail ("worker %d made no progress in 120 s", t);
      msleep (10);
    }
}

/* Wait for the running drain; while it ends with -EAGAIN (pages that a
 * writeback racing its start put on the source: documented, "drain it
 * again"), start it again with the printf-style @fmt.  Return the last
 * status answer. */
static char * __attribute__ ((format (printf, 3, 4)))
finish_again (unsigned timeout_s, uint64_t *maxdone, const char *fmt, ...)
{
  char cmd[800];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (cmd, sizeof cmd, fmt, ap);
  va_end (ap);
  for (int i = 0; ; i++) {
    char *a = bk_drain_finish (timeout_s, maxdone);
    if (json_i64 (json_at (a, "drain"), "result") != -EAGAIN || i == 3)
      return a;
    printf ("%s: note: drain ended with EAGAIN (%s); again: %s\n", test_name,
            a, cmd);
    free (a);
    free (ctl_ok ("%s", cmd));
  }
}

/* Check a finished drain's status answer. */
static const char *
check_drain (const char *ans, const char *src, const char *tgt, bool migrate,
             bool moved)
{
  const char *d = json_at (ans, "drain");
  char got[300], msg[600];

  json_str (d, "message", msg, sizeof msg);
  if (json_i64 (d, "result") != 0)
    test_fail ("%s of %s failed: result %" PRId64 ": %s",
               migrate ? "migration" : "drain", src, json_i64 (d, "result"),
               msg);
  if (json_bool (d, "migrate") != migrate)
    test_fail ("drain status: migrate is %d", !migrate);
  json_str (d, "source", got, sizeof got);
  if (strcmp (got, src) != 0)
    test_fail ("drain status: source %s, expected %s", got, src);
  json_str (d, "target", got, sizeof got);
  if (strcmp (got, tgt) != 0)
    test_fail ("drain status: target '%s', expected '%s'", got, tgt);
  if (moved && (json_u64 (d, "done") == 0 || json_u64 (d, "total") == 0))
    test_fail ("drain of %s moved nothing: %s", src, ans);
  if (json_u64 (d, "done") + json_u64 (d, "skipped") > json_u64 (d, "total"))
    test_fail ("drain status: done + skipped > total: %s", ans);
  return d;
}

#define B2B_ROUNDS 60

/* Keeps writing (and reading back) slots of [32M, 48M) until stop. */
static void *
b2b_writer (void *arg)
{
  struct worker *w = arg;
  unsigned char buf[4 * SLOT];

  while (!__atomic_load_n (&stop, __ATOMIC_ACQUIRE)) {
    uint64_t s = 8192 + rng_below (&w->r, 4096 - 4);
    for (int k = 0; k < 4; k++)
      gen_slot (&w->r, buf + k * SLOT, s + (uint64_t) k,
                rng_below (&w->r, 2) ? 3 : -1);
    sh_write (&sh, w->h, buf, sizeof buf, s * SLOT);
    s = 8192 + rng_below (&w->r, 4096);
    sh_verify (&sh, w->h, s * SLOT, SLOT, "reading during migrations");
    __atomic_add_fetch (&w->ops, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static int
back_to_back (uint64_t seed)
{
  struct nbd_handle *h;
  struct bk_backing b;
  struct bk_stats st;
  struct rng r;
  unsigned char buf[16 * SLOT];
  char barg[200], line[2][600];
  const char *src, *dst, *t;
  uint64_t used;

  rng_seed (&r, seed);
  src = bk_path ("b0");
  dst = bk_path ("b1");
  snprintf (barg, sizeof barg, "backing=%s", src);
  bk_start (&srv, "size=64M", "ram-limit=2M", barg, "backing-size=64M", NULL);
  h = server_connect (&srv);
  shadow_init (&sh, 64 * MiB);
  for (uint64_t s = 0; s < 16 * MiB / SLOT; s += 16) {
    for (int k = 0; k < 16; k++)
      gen_slot (&r, buf + k * SLOT, s + (uint64_t) k, -1);
    sh_write (&sh, h, buf, sizeof buf, s * SLOT);
  }
  free (ctl_ok ("writeback"));
  if (!bk_backing (src, &b) || b.used == 0)
    test_fail ("nothing on b0 after writeback");
  used = b.used;
  printf ("%s: b0 holds %" PRIu64 " pages\n", test_name, used);

  ctl_timeout_s = 30;
  workers[0].h = server_connect (&srv);
  rng_seed (&workers[0].r, seed + 1);
  if (pthread_create (&workers[0].thread, NULL, b2b_writer, &workers[0]))
    test_fail ("pthread_create");
  free (ctl_ok ("migrate %s %s 64M", src, dst));
  for (int i = 1; i <= B2B_ROUNDS; i++) {
    const char *lines[2] = { "drain wait", line[1] };
    char *ans[2];

    snprintf (line[1], sizeof line[1], "migrate %s %s 64M", dst, src);
    ctl_multi (2, lines, ans);
    if (!ans_ok (ans[0]))
      test_fail ("round %d: drain wait: %s", i, ans[0]);
    if (!ans_ok (ans[1]))
      test_fail ("round %d: %s: %s", i, line[1], ans[1]);
    free (ans[0]);
    free (ans[1]);
    t = src;
    src = dst;
    dst = t;
    if (i % 20 == 0)            /* not the writer's region */
      sh_verify (&sh, h, 0, 32 * MiB, "between migrations");
  }
  free (ctl_ok ("drain wait"));
  __atomic_store_n (&stop, true, __ATOMIC_RELEASE);
  pthread_join (workers[0].thread, NULL);
  nbd_shutdown (workers[0].h, 0);
  nbd_close (workers[0].h);
  printf ("%s: %" PRIu64 " client writes during the migrations\n", test_name,
          workers[0].ops);
  /* The background thread may still be writing back what the writer
   * left above writeback-high: its reservations count in "used" before
   * their entries count in slots_backing.  Wait for it to settle. */
  for (int tries = 0; ; tries++) {
    bk_stats (&st);
    if (!bk_backing (dst, &b) || b.used == st.slots_backing || tries == 100)
      break;
    msleep (100);
  }
  if (bk_backing (src, &b) || !bk_backing (dst, &b) || st.backings != 1
      || b.used != st.slots_backing || b.used < used / 2)
    test_fail ("after the migrations: %" PRIu64 " backings, %s holds %"
               PRIu64 " pages, slots_backing %" PRIu64, st.backings, dst,
               b.used, st.slots_backing);
  printf ("%s: %d migrations done\n", test_name, B2B_ROUNDS + 1);
  sh_verify_all (&sh, h, "after the migrations");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (sh.data);
  return 0;
}

int
main (int argc, char **argv)
{
  struct nbd_handle *h;
  struct bk_stats st;
  struct bk_backing b;
  struct rng r;
  char barg[200];
  const char *b0, *b1, *d;
  unsigned char *buf;
  uint64_t seed, ops0, maxdone, used;
  char *a;
  bool cancelled = false;

  bk_init (argc, argv);
  seed = test_seed ();
  if (argc > 1 && strcmp (argv[1], "back-to-back") == 0)
    return back_to_back (seed);
  rng_seed (&r, seed);
  b0 = bk_path ("b0");
  b1 = bk_path ("b1");
  snprintf (barg, sizeof barg, "backing=%s", b0);
  bk_start (&srv, "size=256M", "ram-limit=4M", barg, "backing-size=256M",
            NULL);
  h = server_connect (&srv);
  shadow_init (&sh, DEV_SIZE);
  buf = malloc (16 * SLOT);
  if (!buf)
    test_fail ("out of memory");

  /* Fill the area and push what is in RAM to b0. */
  for (uint64_t s = 0; s < AREA_SLOTS; s += 16) {
    for (int k = 0; k < 16; k++)
      gen_slot (&r, buf + k * SLOT, s + (uint64_t) k, -1);
    sh_write (&sh, h, buf, 16 * SLOT, s * SLOT);
  }
  free (ctl_ok ("writeback"));
  if (!bk_backing (b0, &b))
    test_fail ("b0 is not attached");
  bk_stats (&st);
  printf ("%s: b0 holds %" PRIu64 " pages; %" PRIu64 " in RAM, %" PRIu64
          " same-filled\n", test_name, b.used, st.slots_ram, st.slots_same);
  if (b.used < AREA_SLOTS / 2)
    test_fail ("only %" PRIu64 " pages on b0 after writeback", b.used);
  sh_verify_all (&sh, h, "after filling");

  for (int t = 0; t < NTHREADS; t++) {
    workers[t].t = (unsigned) t;
    workers[t].h = server_connect (&srv);
    rng_seed (&workers[t].r, seed + 1000 + (uint64_t) t);
    if (pthread_create (&workers[t].thread, NULL, work, &workers[t]) != 0)
      test_fail ("pthread_create");
  }
  let_run (200);

  /* 1. Migrate b0 -> b1 under I/O. */
  ops0 = total_ops ();
  a = ctl_ok ("migrate %s %s 256M", b0, b1);
  if (!json_bool (a, "attached"))
    test_fail ("migrate did not attach %s: %s", b1, a);
  free (a);
  a = ctl ("backing remove %s", b0);
  if (ans_ok (a))
    test_fail ("backing remove of the migration's source succeeded: %s", a);
  free (a);
  a = finish_again (300, &maxdone, "migrate %s %s", b0, b1);
  d = check_drain (a, b0, b1, true, true);
  printf ("%s: migrate: %" PRIu64 " of %" PRIu64 " pages moved, %" PRIu64
          " skipped, in %.3f s (%.0f MB/s); %" PRIu64 " client requests "
          "meanwhile; progress seen at %" PRIu64 "\n", test_name,
          json_u64 (d, "done"), json_u64 (d, "total"), json_u64 (d, "skipped"),
          strtod (json_at (d, "seconds"), NULL),
          strtod (json_at (d, "bytes_per_sec"), NULL) / 1e6,
          total_ops () - ops0, maxdone);
  free (a);
  if (bk_backing (b0, &b))
    test_fail ("after the migration %s is still attached (%" PRIu64
               " live pages, draining %d)", b0, b.used, b.draining);
  if (!bk_backing (b1, &b) || !b.healthy || b.draining)
    test_fail ("after the migration %s is missing or unhealthy or draining",
               b1);
  bk_stats (&st);
  if (st.backings != 1)
    test_fail ("%" PRIu64 " backings after the migration", st.backings);
  let_run (200);

  /* 2. Drain b1 into RAM under I/O. */
  free (ctl_ok ("ram-limit 512M"));
  if (!bk_backing (b1, &b) || b.used == 0)
    test_fail ("b1 holds no page before its drain");
  printf ("%s: b1 holds %" PRIu64 " pages\n", test_name, b.used);
  ops0 = total_ops ();
  free (ctl_ok ("backing drain %s", b1));
  a = finish_again (300, &maxdone, "backing drain %s", b1);
  d = check_drain (a, b1, "", false, true);
  printf ("%s: drain to RAM: %" PRIu64 " of %" PRIu64 " pages moved, %"
          PRIu64 " skipped, %" PRIu64 " client requests meanwhile\n",
          test_name, json_u64 (d, "done"), json_u64 (d, "total"),
          json_u64 (d, "skipped"), total_ops () - ops0);
  free (a);
  if (!bk_backing (b1, &b))
    test_fail ("b1 was detached by a drain");
  bk_stats (&st);
  if (b.used != 0 || b.draining || st.slots_backing != 0)
    test_fail ("after draining b1: used %" PRIu64 ", draining %d, "
               "slots_backing %" PRIu64, b.used, b.draining, st.slots_backing);
  let_run (100);

  __atomic_store_n (&stop, true, __ATOMIC_RELEASE);
  for (int t = 0; t < NTHREADS; t++) {
    pthread_join (workers[t].thread, NULL);
    printf ("%s: worker %d: %" PRIu64 " writes, %" PRIu64 " reads, %" PRIu64
            " trims\n", test_name, t, workers[t].writes, workers[t].reads,
            workers[t].trims);
    nbd_shutdown (workers[t].h, 0);
    nbd_close (workers[t].h);
  }
  sh_verify_all (&sh, h, "after migrate and drain");

  /* 3. Cancel a drain half-way. */
  for (int attempt = 0; attempt < 5 && !cancelled; attempt++) {
    uint64_t total, done;
    int64_t res;
    char msg[600];
    char *c;

    free (ctl_ok ("ram-limit 4M"));
    free (ctl_ok ("writeback"));
    free (ctl_ok ("ram-limit 512M"));
    if (!bk_backing (b1, &b) || b.used < AREA_SLOTS / 4)
      test_fail ("b1 holds only %" PRIu64 " pages before the drain to cancel",
                 b.used);
    used = b.used;
    free (ctl_ok ("backing drain %s", b1));
    c = ctl ("drain cancel");
    a = bk_drain_finish (300, NULL);
    d = json_at (a, "drain");
    total = json_u64 (d, "total");
    done = json_u64 (d, "done");
    res = json_i64 (d, "result");
    json_str (d, "message", msg, sizeof msg);
    if (!ans_ok (c)) {
      printf ("%s: the drain ended before the cancel (%s); again\n",
              test_name, c);
      if (res != 0 || done != total)
        test_fail ("uncancelled drain: result %" PRId64 ", %" PRIu64
                   " of %" PRIu64 " moved", res, done, total);
    }
    else {
      if (res != -ECANCELED || !strstr (msg, "cancel"))
        test_fail ("cancelled drain: result %" PRId64 " (expected %d), "
                   "message '%s'", res, -ECANCELED, msg);
      if (total != used)
        test_fail ("drain status total %" PRIu64 " != %" PRIu64
                   " live pages at its start", total, used);
      if (!bk_backing (b1, &b))
        test_fail ("a cancelled drain detached b1");
      if (b.draining || !b.healthy)
        test_fail ("after a cancelled drain b1 is draining %d healthy %d",
                   b.draining, b.healthy);
      if (b.used != total - done || json_u64 (d, "skipped") != 0)
        test_fail ("after a cancelled drain b1 holds %" PRIu64 " pages; "
                   "expected %" PRIu64 " - %" PRIu64 " moved", b.used, total,
                   done);
      printf ("%s: cancelled drain moved %" PRIu64 " of %" PRIu64
              " pages\n", test_name, done, total);
      cancelled = done < total;
    }
    free (a);
    free (c);
    sh_verify_all (&sh, h, "after a cancelled drain");
  }
  if (!cancelled)
    printf ("%s: note: every drain finished before its cancel arrived; "
            "cancellation half-way not exercised\n", test_name);

  /* Empty and detach b1. */
  free (ctl_ok ("backing drain %s", b1));
  a = bk_drain_finish (300, NULL);
  check_drain (a, b1, "", false, false);
  free (a);
  free (ctl_ok ("backing remove %s", b1));
  bk_stats (&st);
  if (st.backings != 0 || st.slots_backing != 0)
    test_fail ("after removing b1: %" PRIu64 " backings, %" PRIu64
               " slots on backing", st.backings, st.slots_backing);
  if (st.backing_read_errors || st.backing_write_errors || st.errors)
    test_fail ("errors counted: backing read %" PRIu64 " write %" PRIu64
               ", requests %" PRIu64, st.backing_read_errors,
               st.backing_write_errors, st.errors);
  sh_verify_all (&sh, h, "at the end");

  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (buf);
  free (sh.data);
  return 0;
}
