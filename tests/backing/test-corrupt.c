/* ghostswap backing test: a backing file corrupted under a running device.
 *
 * size=128M ram-limit=2M backing=b0: 32 MiB of mixed pages pushed to b0.
 * Raw (incompressible) pages found in the file tell which physical slot
 * holds which ghost slot.  One byte of every fourth known page is flipped
 * in the file behind the server's back (the page's checksum no longer
 * matches).  Then:
 *   - reading each corrupted slot fails with EIO, and never returns data;
 *     every other slot of the device reads back exactly as written;
 *   - integrity_errors counts the failed reads;
 *   - "backing drain b0" (into RAM) fails with EIO, its message names b0
 *     and the checksum; every good page moved (b0 keeps exactly the
 *     corrupted ones), b0 stays attached;
 *   - the corrupted slots still fail; the client rewrites half of them and
 *     trims the other half: those read right, a second drain empties b0,
 *     and b0 can be removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bk.h"

#define DEV_SIZE (128ull * MiB)
#define NSLOTS (DEV_SIZE / SLOT)
#define FILL_SLOTS (32ull * MiB / SLOT)

static struct server srv;
static struct nbd_handle *h;
static struct shadow sh;
static struct rng r;
static const char *b0;
static uint64_t map[NSLOTS];
static bool bad[NSLOTS];
static uint64_t nbad;

static uint64_t
integrity_errors (void)
{
  char *a = ctl_ok ("stats");
  uint64_t v = json_u64 (a, "integrity_errors");

  free (a);
  return v;
}

/* Flip one byte of physical slot @pslot in the file. */
static void
corrupt (uint64_t pslot, unsigned at)
{
  int fd = open (b0, O_RDWR | O_CLOEXEC);
  unsigned char c;

  if (fd < 0)
    test_fail ("open %s: %s", b0, strerror (errno));
  if (pread (fd, &c, 1, (off_t) (pslot * SLOT + at)) != 1)
    test_fail ("pread %s: %s", b0, strerror (errno));
  c ^= 0x5a;
  if (pwrite (fd, &c, 1, (off_t) (pslot * SLOT + at)) != 1
      || fsync (fd) < 0)
    test_fail ("pwrite %s: %s", b0, strerror (errno));
  close (fd);
}

/* Every slot alone: the corrupted ones fail with EIO, the rest are right. */
static void
check_every_slot (const char *what)
{
  uint64_t failed = 0;

  for (uint64_t s = 0; s < NSLOTS; s++) {
    int e = sh_read_slot (&sh, h, s, bad[s] ? "a corrupted page" : what);
    if (bad[s] && e != EIO)
      test_fail ("%s: corrupted slot %" PRIu64 " (physical slot %" PRIu64
                 "): read gave %s, expected EIO", what, s, map[s] - 1,
                 e ? strerror (e) : "success");
    if (!bad[s] && e != 0)
      test_fail ("%s: slot %" PRIu64 " failed: %s", what, s, strerror (e));
    failed += e != 0;
  }
  printf ("%s: %s: %" PRIu64 " corrupted slots failed with EIO, every other "
          "slot read right\n", test_name, what, failed);
}

static char *
run_drain (void)
{
  free (ctl_ok ("backing drain %s", b0));
  return bk_drain_finish (120, NULL);
}

int
main (int argc, char **argv)
{
  unsigned char buf[16 * SLOT];
  char barg[200], msg[1024], *a;
  struct bk_backing b;
  uint64_t nknown, k = 0, e0, e1, used0;
  const char *d;

  bk_init (argc, argv);
  rng_seed (&r, test_seed ());
  b0 = bk_path ("b0");
  snprintf (barg, sizeof barg, "backing=%s", b0);
  bk_start (&srv, "size=128M", "ram-limit=2M", barg, "backing-size=128M",
            NULL);
  h = server_connect (&srv);
  shadow_init (&sh, DEV_SIZE);

  for (uint64_t s = 0; s < FILL_SLOTS; s += 16) {
    for (int j = 0; j < 16; j++)
      gen_slot (&r, buf + j * SLOT, s + (uint64_t) j, -1);
    sh_write (&sh, h, buf, sizeof buf, s * SLOT);
  }
  free (ctl_ok ("writeback"));
  if (!bk_backing (b0, &b) || b.used == 0)
    test_fail ("nothing was written back to %s", b0);
  used0 = b.used;
  nknown = scan_raw_pages (&sh, b0, NSLOTS, map);
  for (uint64_t s = 0; s < NSLOTS; s++)
    if (map[s] && k++ % 4 == 0) {
      corrupt (map[s] - 1, (unsigned) rng_below (&r, SLOT));
      bad[s] = true;
      nbad++;
    }
  printf ("%s: b0 holds %" PRIu64 " pages; %" PRIu64 " known, %" PRIu64
          " of them corrupted\n", test_name, used0, nknown, nbad);
  if (nbad < 8)
    test_fail ("only %" PRIu64 " known pages to corrupt", nbad);

  e0 = integrity_errors ();
  check_every_slot ("after the corruption");
  e1 = integrity_errors ();
  if (e1 - e0 != nbad)
    test_fail ("integrity_errors grew by %" PRIu64 ", expected %" PRIu64,
               e1 - e0, nbad);

  /* A drain into RAM moves every good page and leaves the bad ones. */
  free (ctl_ok ("ram-limit 512M"));
  a = run_drain ();
  d = json_at (a, "drain");
  json_str (d, "message", msg, sizeof msg);
  printf ("%s: drain: result %" PRId64 ", %" PRIu64 " moved: %s\n", test_name,
          json_i64 (d, "result"), json_u64 (d, "done"), msg);
  if (json_i64 (d, "result") != -EIO || !strstr (msg, b0)
      || !strstr (msg, "checksum"))
    test_fail ("drain over corrupted pages: %s", a);
  if (json_u64 (d, "done") != used0 - nbad)
    test_fail ("the drain moved %" PRIu64 " pages, expected %" PRIu64,
               json_u64 (d, "done"), used0 - nbad);
  free (a);
  if (!bk_backing (b0, &b) || b.used != nbad || b.draining)
    test_fail ("after the drain b0 is gone or holds %" PRIu64 " pages "
               "(expected the %" PRIu64 " corrupted ones)", b.used, nbad);
  a = ctl ("backing remove %s", b0);
  if (ans_ok (a))
    test_fail ("b0 was removed while it holds corrupted pages");
  free (a);
  check_every_slot ("after the drain");

  /* The client resolves them: rewrite or trim. */
  k = 0;
  for (uint64_t s = 0; s < NSLOTS; s++) {
    if (!bad[s])
      continue;
    if (k++ % 2 == 0) {
      gen_slot (&r, buf, s, 2);
      sh_write (&sh, h, buf, SLOT, s * SLOT);
    }
    else
      sh_trim (&sh, h, SLOT, s * SLOT, false);
    bad[s] = false;
  }
  check_every_slot ("after rewriting and trimming them");
  a = run_drain ();
  d = json_at (a, "drain");
  if (json_i64 (d, "result") != 0)
    test_fail ("second drain: %s", a);
  free (a);
  free (ctl_ok ("backing remove %s", b0));
  sh_verify_all (&sh, h, "at the end");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (sh.data);
  return 0;
}
