/* ghostswap backing test: injected backing faults.
 *
 * Usage: test-faults read|write|enospc|drain
 *
 * size=128M ram-limit=2M backing=b0 backing-size=128M fault-injection=true;
 * faults are set with the control socket's "fault PATH KIND FIRST LAST"
 * (physical slots).  After every case the whole device is checked against
 * the shadow: no acknowledged write is ever lost, no read returns wrong
 * data.
 *
 * read:   32 MiB of mixed pages, pushed to b0.  Raw pages found in the
 *         backing file tell where some pages live (ghost slot -> physical
 *         slot).  A read fault on the lower half of the physical slots
 *         fails exactly the known pages there (EIO), the others read
 *         right.  A fault on all of b0: every slot is read alone; the
 *         failures are all EIO, there are exactly slots_backing of them
 *         (every known backing page among them, no same-filled page), the
 *         counters count them, every other read is right, a multi-slot
 *         read over a backing page fails, and the server goes on serving
 *         writes and reads.  "fault b0 off", then everything verifies.
 * write,
 * enospc: the fault is set on all of b0 before any write; incompressible
 *         pages are written one slot each until RAM is full: the first
 *         ones succeed, then writes fail with ENOSPC only; b0 is reported
 *         healthy:false with write errors counted, no page reached it, and
 *         every acknowledged page reads back (refused ones read as zero).
 *         Same-filled writes and trims still work.  "fault b0 off": b0 is
 *         healthy again, "writeback 100" moves pages, and 8 MiB more of
 *         incompressible pages are written without error.
 * drain:  32 MiB pushed to b0, ram-limit raised.  A read fault on the lower
 *         half of b0 during "backing drain b0": the drain's result is -EIO
 *         and its message (and "drain wait"'s error) names b0; the pages
 *         there stay on b0 (the known ones fail to read under a full read
 *         fault, the others moved to RAM and read right).  A full read
 *         fault: nothing moves.  A write fault on the migration target b1
 *         during "migrate b0 b1": the migration fails, b1 is unhealthy and
 *         holds nothing, b0 keeps its pages and stays attached.  With the
 *         faults off the migration completes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk.h"

#define DEV_SIZE (128ull * MiB)
#define NSLOTS (DEV_SIZE / SLOT)
#define FILL_SLOTS (32ull * MiB / SLOT)
#define DRAIN_RUN 128           /* largest read of a drain (lib/drain.c) */

static struct server srv;
static struct nbd_handle *h;
static struct shadow sh;
static struct rng r;
static const char *b0, *b1;
static uint64_t map[NSLOTS];
static uint64_t nknown;

static void
fill_and_push (void)
{
  unsigned char buf[16 * SLOT];
  struct bk_backing b;
  struct bk_stats st;

  for (uint64_t s = 0; s < FILL_SLOTS; s += 16) {
    for (int k = 0; k < 16; k++)
      gen_slot (&r, buf + k * SLOT, s + (uint64_t) k, -1);
    sh_write (&sh, h, buf, sizeof buf, s * SLOT);
  }
  free (ctl_ok ("writeback"));
  bk_stats (&st);
  if (!bk_backing (b0, &b) || b.used == 0 || b.used != st.slots_backing)
    test_fail ("after writeback: b0 used %" PRIu64 ", slots_backing %" PRIu64,
               b.used, st.slots_backing);
  nknown = scan_raw_pages (&sh, b0, NSLOTS, map);
  printf ("%s: b0 holds %" PRIu64 " pages, %" PRIu64 " of them known "
          "(raw pages found in the file)\n", test_name, b.used, nknown);
  if (nknown < 16)
    test_fail ("only %" PRIu64 " raw pages found in %s", nknown, b0);
}

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

/* The median physical slot of the known pages. */
static uint64_t
median_pslot (void)
{
  uint64_t *v = malloc (nknown * sizeof *v), n = 0, m;

  if (!v)
    test_fail ("out of memory");
  for (uint64_t s = 0; s < NSLOTS; s++)
    if (map[s])
      v[n++] = map[s] - 1;
  qsort (v, n, sizeof *v, cmp_u64);
  m = v[n / 2];
  free (v);
  return m;
}

/* With a read fault on physical slots [0, @last]: known pages there fail
 * with EIO, the other known pages beyond @last + @slack read right (a
 * drain reads runs of up to 128 slots at once, and a run that touches the
 * fault fails whole: its pages just past @last may have stayed too). */
static void
check_known (uint64_t last, uint64_t slack, const char *what)
{
  uint64_t failed = 0, fine = 0;

  for (uint64_t s = 0; s < NSLOTS; s++) {
    int e;
    if (!map[s])
      continue;
    e = sh_read_slot (&sh, h, s, what);
    if (map[s] - 1 <= last) {
      if (e != EIO)
        test_fail ("%s: slot %" PRIu64 " on faulty physical slot %" PRIu64
                   ": read gave %s, expected EIO", what, s, map[s] - 1,
                   e ? strerror (e) : "success");
      failed++;
    }
    else if (map[s] - 1 > last + slack) {
      if (e != 0)
        test_fail ("%s: slot %" PRIu64 " (physical slot %" PRIu64
                   ", outside the fault) failed: %s", what, s, map[s] - 1,
                   strerror (e));
      fine++;
    }
  }
  printf ("%s: %s: %" PRIu64 " known pages failed with EIO, %" PRIu64
          " read right\n", test_name, what, failed, fine);
  if (failed == 0)
    test_fail ("%s: no known page was under the fault", what);
}

static void
case_read (void)
{
  struct bk_stats st0, st1;
  struct bk_backing b;
  unsigned char buf[16 * SLOT];
  uint64_t mid, failed = 0, ok = 0;

  fill_and_push ();
  bk_backing (b0, &b);
  mid = median_pslot ();

  /* Lower half. */
  free (ctl_ok ("fault %s read 0 %" PRIu64, b0, mid));
  check_known (mid, 0, "read fault on the lower half");

  /* All of it: read every slot alone. */
  free (ctl_ok ("fault %s read 0 %" PRIu64, b0, b.slots - 1));
  bk_stats (&st0);
  for (uint64_t s = 0; s < NSLOTS; s++) {
    int e = sh_read_slot (&sh, h, s, "read fault on all of b0");
    if (e == 0) {
      if (map[s])
        test_fail ("slot %" PRIu64 " on physical slot %" PRIu64
                   " read fine under a read fault", s, map[s] - 1);
      ok++;
    }
    else if (e != EIO)
      test_fail ("slot %" PRIu64 ": read failed with %s, expected EIO", s,
                 strerror (e));
    else if (page_same_filled (sh.data + s * SLOT))
      test_fail ("slot %" PRIu64 " holds a same-filled page, which never "
                 "goes to backing, but its read failed", s);
    else
      failed++;
  }
  bk_stats (&st1);
  printf ("%s: read fault on all of b0: %" PRIu64 " reads failed (EIO), %"
          PRIu64 " right; slots_backing %" PRIu64 "\n", test_name, failed,
          ok, st1.slots_backing);
  if (failed != st1.slots_backing || st1.slots_backing != st0.slots_backing)
    test_fail ("%" PRIu64 " reads failed, but %" PRIu64 " slots are on backing",
               failed, st1.slots_backing);
  if (st1.backing_read_errors - st0.backing_read_errors != failed)
    test_fail ("backing_read_errors grew by %" PRIu64 " for %" PRIu64
               " failed reads",
               st1.backing_read_errors - st0.backing_read_errors, failed);

  /* A read of many slots over a backing page fails as a whole. */
  for (uint64_t s = 0; s < NSLOTS; s++) {
    if (!map[s])
      continue;
    uint64_t first = s >= 8 ? s - 8 : 0;
    if (nbd_pread (h, buf, sizeof buf, first * SLOT, 0) != -1
        || nbd_get_errno () != EIO)
      test_fail ("a 16-slot read over backing slot %" PRIu64
                 " did not fail with EIO", s);
    break;
  }

  /* The server goes on serving. */
  for (int k = 0; k < 16; k++)
    gen_slot (&r, buf + k * SLOT, FILL_SLOTS + 100 + (uint64_t) k, 3);
  sh_write (&sh, h, buf, sizeof buf, (FILL_SLOTS + 100) * SLOT);
  sh_verify (&sh, h, (FILL_SLOTS + 100) * SLOT, sizeof buf,
             "new pages under a read fault");
  if (!bk_backing (b0, &b) || !b.healthy)
    test_fail ("a read fault made b0 unhealthy");

  free (ctl_ok ("fault %s off 0 0", b0));
  bk_stats (&st0);
  sh_verify_all (&sh, h, "after clearing the read fault");
  bk_stats (&st1);
  if (st1.backing_read_errors != st0.backing_read_errors)
    test_fail ("read errors after clearing the fault");
}

static void
case_write (const char *kind)
{
  unsigned char buf[SLOT];
  struct bk_stats st;
  struct bk_backing b;
  uint64_t s, acked = 0, refused = 0, run = 0;
  int64_t pages;
  char *a;

  bk_backing (b0, &b);
  free (ctl_ok ("fault %s %s 0 %" PRIu64, b0, kind, b.slots - 1));

  for (s = 0; s < FILL_SLOTS && run < 64; s++) {
    int e;
    gen_slot (&r, buf, s, 3);
    e = sh_try_write (&sh, h, buf, SLOT, s * SLOT);
    if (e == 0) {
      acked++;
      run = 0;
    }
    else if (e == ENOSPC) {
      refused++;
      run++;
    }
    else
      test_fail ("write of slot %" PRIu64 " failed with %s, expected ENOSPC",
                 s, strerror (e));
  }
  bk_stats (&st);
  bk_backing (b0, &b);
  printf ("%s: %s fault: %" PRIu64 " writes acknowledged, %" PRIu64
          " refused; b0 healthy %d, write errors %" PRIu64 " (device %" PRIu64
          "), slots_backing %" PRIu64 ", enospc %" PRIu64 "\n", test_name,
          kind, acked, refused, b.healthy, b.write_errors,
          st.backing_write_errors, st.slots_backing, st.enospc);
  if (acked == 0 || refused == 0)
    test_fail ("expected some writes to succeed and then ENOSPC");
  if (b.healthy)
    test_fail ("b0 is still healthy after %s faults", kind);
  if (b.write_errors == 0 || st.backing_write_errors == 0)
    test_fail ("no backing write error counted");
  if (b.used != 0 || st.slots_backing != 0)
    test_fail ("pages reached b0 through a %s fault: used %" PRIu64, kind,
               b.used);
  if (st.enospc < refused)
    test_fail ("enospc counter %" PRIu64 " < %" PRIu64 " refusals", st.enospc,
               refused);
  sh_verify_all (&sh, h, "with RAM full and b0 failing");

  /* What needs no RAM still works. */
  memset (buf, 0xa5, SLOT);
  sh_write (&sh, h, buf, SLOT, s * SLOT);
  memset (buf, 0, SLOT);
  sh_write (&sh, h, buf, SLOT, (s + 1) * SLOT);
  sh_trim (&sh, h, 4 * SLOT, 0, false);
  sh_verify (&sh, h, 0, (s + 2) * SLOT, "same-filled writes and trims");

  /* Clear the fault: healthy again, writeback works, writes succeed. */
  free (ctl_ok ("fault %s off 0 0", b0));
  if (!bk_backing (b0, &b) || !b.healthy)
    test_fail ("b0 is not healthy after 'fault off'");
  a = ctl_ok ("writeback 100");
  pages = json_i64 (a, "pages");
  free (a);
  if (pages <= 0)
    test_fail ("writeback after clearing the fault moved %" PRId64 " pages",
               pages);
  for (uint64_t k = 0; k < 2048; k++) {
    uint64_t t = FILL_SLOTS + k;
    gen_slot (&r, buf, t, 3);
    sh_write (&sh, h, buf, SLOT, t * SLOT);
  }
  bk_stats (&st);
  bk_backing (b0, &b);
  printf ("%s: after 'fault off': writeback moved %" PRId64 " pages; "
          "slots_backing %" PRIu64 ", b0 used %" PRIu64 "\n", test_name,
          pages, st.slots_backing, b.used);
  if (st.slots_backing == 0 || b.used == 0)
    test_fail ("no page on b0 after clearing the fault");
  sh_verify_all (&sh, h, "after clearing the fault");
}

/* Run a drain or migration to its end; return its status answer. */
static char *
run_drain (const char *cmd)
{
  free (ctl_ok ("%s", cmd));
  return bk_drain_finish (120, NULL);
}

static void
case_drain (void)
{
  struct bk_backing b, bb;
  struct bk_stats st;
  uint64_t mid, used0, used1;
  const char *d;
  char msg[1024], cmd[400];
  int64_t res;
  char *a;

  fill_and_push ();
  bk_backing (b0, &b);
  used0 = b.used;
  mid = median_pslot ();
  free (ctl_ok ("ram-limit 512M"));

  /* Read fault on the lower half: the rest moves, that half stays. */
  free (ctl_ok ("fault %s read 0 %" PRIu64, b0, mid));
  snprintf (cmd, sizeof cmd, "backing drain %s", b0);
  a = run_drain (cmd);
  d = json_at (a, "drain");
  res = json_i64 (d, "result");
  json_str (d, "message", msg, sizeof msg);
  printf ("%s: drain with a read fault on physical slots 0-%" PRIu64
          ": result %" PRId64 ", %" PRIu64 " moved: %s\n", test_name, mid, res,
          json_u64 (d, "done"), msg);
  if (res != -EIO || !strstr (msg, b0))
    test_fail ("drain with a read fault: result %" PRId64 " (expected %d), "
               "message '%s' (should name %s)", res, -EIO, msg, b0);
  free (a);
  a = ctl ("drain wait");
  if (ans_ok (a) || !strstr (a, b0))
    test_fail ("drain wait after a failed drain: %s", a);
  free (a);
  bk_backing (b0, &b);
  bk_stats (&st);
  used1 = b.used;
  if (b.draining || used1 == 0 || used1 >= used0
      || st.slots_backing != used1)
    test_fail ("after a drain with faults on half of b0: draining %d, used %"
               PRIu64 " (was %" PRIu64 "), slots_backing %" PRIu64,
               b.draining, used1, used0, st.slots_backing);
  free (ctl_ok ("fault %s read 0 %" PRIu64, b0, b.slots - 1));
  check_known (mid, DRAIN_RUN, "after the half-failed drain, under a full fault");
  free (ctl_ok ("fault %s off 0 0", b0));
  sh_verify_all (&sh, h, "after a drain with read faults");

  /* Read fault on all of it: nothing moves. */
  free (ctl_ok ("fault %s read 0 %" PRIu64, b0, b.slots - 1));
  a = run_drain (cmd);
  d = json_at (a, "drain");
  if (json_i64 (d, "result") != -EIO || json_u64 (d, "done") != 0)
    test_fail ("drain under a full read fault: %s", a);
  free (a);
  bk_backing (b0, &b);
  if (b.used != used1)
    test_fail ("a drain that could read nothing changed b0's pages: %" PRIu64
               " -> %" PRIu64, used1, b.used);
  free (ctl_ok ("fault %s off 0 0", b0));
  sh_verify_all (&sh, h, "after a drain that read nothing");

  /* Write fault on the migration target. */
  free (ctl_ok ("backing add %s 64M", b1));
  free (ctl_ok ("fault %s write 0 %" PRIu64, b1, (uint64_t) (64 * MiB / SLOT - 1)));
  snprintf (cmd, sizeof cmd, "migrate %s %s", b0, b1);
  a = run_drain (cmd);
  d = json_at (a, "drain");
  res = json_i64 (d, "result");
  json_str (d, "message", msg, sizeof msg);
  printf ("%s: migration into a failing target: result %" PRId64 ": %s\n",
          test_name, res, msg);
  if (res == 0)
    test_fail ("migration into a target with write faults succeeded: %s", a);
  free (a);
  if (!bk_backing (b0, &b) || b.used != used1 || b.draining)
    test_fail ("after a failed migration b0 is gone or changed (used %"
               PRIu64 ", expected %" PRIu64 ")", b.used, used1);
  if (!bk_backing (b1, &bb) || bb.healthy || bb.used != 0
      || bb.write_errors == 0)
    test_fail ("after failed writes b1: healthy %d used %" PRIu64
               " write_errors %" PRIu64, bb.healthy, bb.used, bb.write_errors);
  sh_verify_all (&sh, h, "after a migration into a failing target");

  /* Without faults it completes. */
  free (ctl_ok ("fault %s off 0 0", b1));
  a = run_drain (cmd);
  d = json_at (a, "drain");
  if (json_i64 (d, "result") != 0 || json_u64 (d, "done") != used1)
    test_fail ("migration without faults: %s", a);
  free (a);
  if (bk_backing (b0, &b))
    test_fail ("b0 still attached after the migration");
  if (!bk_backing (b1, &bb) || bb.used != used1 || !bb.healthy)
    test_fail ("b1 after the migration: used %" PRIu64 " (expected %" PRIu64
               ")", bb.used, used1);
  sh_verify_all (&sh, h, "after the migration");
}

int
main (int argc, char **argv)
{
  struct bk_stats st;
  char barg[200];
  const char *mode;

  bk_init (argc, argv);
  if (argc != 2)
    test_fail ("usage: %s read|write|enospc|drain", argv[0]);
  mode = argv[1];
  rng_seed (&r, test_seed ());
  b0 = bk_path ("b0");
  b1 = bk_path ("b1");
  snprintf (barg, sizeof barg, "backing=%s", b0);
  bk_start (&srv, "size=128M", "ram-limit=2M", barg, "backing-size=128M",
            "fault-injection=true", NULL);
  h = server_connect (&srv);
  shadow_init (&sh, DEV_SIZE);

  if (strcmp (mode, "read") == 0)
    case_read ();
  else if (strcmp (mode, "write") == 0 || strcmp (mode, "enospc") == 0)
    case_write (mode);
  else if (strcmp (mode, "drain") == 0)
    case_drain ();
  else
    test_fail ("unknown mode %s", mode);

  bk_stats (&st);
  printf ("%s: at the end: slots_backing %" PRIu64 ", backing read errors %"
          PRIu64 ", write errors %" PRIu64 ", request errors %" PRIu64 "\n",
          test_name, st.slots_backing, st.backing_read_errors,
          st.backing_write_errors, st.errors);
  sh_verify_all (&sh, h, "at the end");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (sh.data);
  return 0;
}
