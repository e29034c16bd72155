/* ghostswap backing test: nothing freed stays readable in a backing file.
 *
 * size=64M ram-limit=1M backing=b0 (scrubbing of freed slots on, as with
 * encrypt=false).  Every slot written holds an incompressible page (so it
 * is stored raw) with a marker naming the slot and its generation.
 *   1. 2048 marked pages written and pushed to b0: the markers are found
 *      in the file (the scan works).
 *   2. A third of them rewritten (new generation), a third trimmed: within
 *      a few seconds no old marker of those is left anywhere in b0 (the
 *      freed slots were wiped), the live ones still are.
 *   3. migrate b0 b1: b0 is detached and holds no marker at all; b1 holds
 *      exactly the live ones.
 *   4. backing drain b1 into RAM: b1 holds no marker.
 * Every step ends with the device checked against the shadow.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bk.h"

#define DEV_SIZE (64ull * MiB)
#define MARKED 2048u
#define MARK "GHOSTSWAP-SCRUB-MARKER slot %06u gen %u;"

static struct server srv;
static struct nbd_handle *h;
static struct shadow sh;
static struct rng r;
static const char *b0, *b1;
static unsigned gen[MARKED];        /* current generation; 0: trimmed */
static unsigned char *seen;         /* [MARKED][8]: generations seen */

static void
marked_page (unsigned char *p, unsigned slot, unsigned g)
{
  char m[64];
  int n = snprintf (m, sizeof m, MARK, slot, g);

  for (unsigned i = 0; i < SLOT; i += 8) {
    uint64_t v = rng_next (&r);
    memcpy (p + i, &v, 8);
  }
  memcpy (p + 100, m, (size_t) n);
}

/* Which markers appear in @path: seen[slot * 8 + gen] = 1. */
static uint64_t
scan (const char *path)
{
  int fd = open (path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  size_t chunk = 1 * MiB;
  unsigned char *buf;
  uint64_t found = 0;
  ssize_t n;
  off_t off = 0;

  if (fd < 0)
    test_fail ("open %s: %s", path, strerror (errno));
  if (posix_memalign ((void **) &buf, SLOT, chunk) != 0)
    test_fail ("out of memory");
  memset (seen, 0, MARKED * 8);
  while ((n = pread (fd, buf, chunk, off)) > 0) {
    for (ssize_t p = 0; p + SLOT <= n; p += SLOT) {
      unsigned s, g;
      if (memcmp (buf + p + 100, "GHOSTSWAP-SCRUB-MARKER", 22) == 0
          && sscanf ((char *) buf + p + 100, MARK, &s, &g) == 2
          && s < MARKED && g < 8) {
        seen[s * 8 + g] = 1;
        found++;
      }
    }
    off += n;
  }
  if (n < 0)
    test_fail ("read %s: %s", path, strerror (errno));
  close (fd);
  free (buf);
  return found;
}

/* @path holds no marker but live ones (@live_allowed) and, if @all_live,
 * every live one. */
static bool
clean (const char *path, bool live_allowed, bool all_live, bool fail)
{
  scan (path);
  for (unsigned s = 0; s < MARKED; s++)
    for (unsigned g = 1; g < 8; g++) {
      bool live = gen[s] == g;
      if (seen[s * 8 + g] && !(live && live_allowed)) {
        if (fail)
          test_fail ("%s still holds the marker of slot %u generation %u "
                     "(%s)", path, s, g, live ? "live" : "freed");
        return false;
      }
      if (all_live && live && !seen[s * 8 + g]) {
        if (fail)
          test_fail ("%s lacks the live page of slot %u generation %u",
                     path, s, g);
        return false;
      }
    }
  return true;
}

int
main (int argc, char **argv)
{
  unsigned char page[SLOT];
  char barg[200], *a;
  struct bk_backing b;
  unsigned rewritten = 0, trimmed = 0;

  bk_init (argc, argv);
  rng_seed (&r, test_seed ());
  seen = malloc (MARKED * 8);
  b0 = bk_path ("b0");
  b1 = bk_path ("b1");
  snprintf (barg, sizeof barg, "backing=%s", b0);
  bk_start (&srv, "size=64M", "ram-limit=1M", barg, "backing-size=64M",
            NULL);
  h = server_connect (&srv);
  shadow_init (&sh, DEV_SIZE);

  for (unsigned s = 0; s < MARKED; s++) {
    gen[s] = 1;
    marked_page (page, s, 1);
    sh_write (&sh, h, page, SLOT, (uint64_t) s * SLOT);
  }
  free (ctl_ok ("writeback"));
  if (!bk_backing (b0, &b) || b.used < MARKED / 2)
    test_fail ("b0 holds only %" PRIu64 " pages", b.used);
  printf ("%s: 1. %" PRIu64 " markers found in b0 (%" PRIu64 " pages "
          "there)\n", test_name, scan (b0), b.used);
  if (scan (b0) < b.used / 2)
    test_fail ("the scan finds too few markers: it does not work");

  for (unsigned s = 0; s < MARKED; s++) {
    unsigned k = (unsigned) rng_below (&r, 3);
    if (k == 0) {
      gen[s] = 2;
      marked_page (page, s, 2);
      sh_write (&sh, h, page, SLOT, (uint64_t) s * SLOT);
      rewritten++;
    }
    else if (k == 1) {
      gen[s] = 0;
      sh_trim (&sh, h, SLOT, (uint64_t) s * SLOT, false);
      trimmed++;
    }
  }
  /* Freed slots are wiped by the background thread (every 0.5 s) or by
   * the next trim: allow a few seconds. */
  for (int t = 0; t < 50 && !clean (b0, true, false, false); t++)
    msleep (100);
  clean (b0, true, false, true);
  printf ("%s: 2. %u rewritten, %u trimmed: no freed marker left in b0\n",
          test_name, rewritten, trimmed);
  sh_verify_all (&sh, h, "after rewrites and trims");

  free (ctl_ok ("writeback"));
  free (ctl_ok ("migrate %s %s 64M", b0, b1));
  a = bk_drain_finish (120, NULL);
  if (json_i64 (json_at (a, "drain"), "result") != 0)
    test_fail ("migrate: %s", a);
  free (a);
  if (bk_backing (b0, &b))
    test_fail ("b0 still attached after the migration");
  clean (b0, false, false, true);
  clean (b1, true, false, true);
  printf ("%s: 3. migrated: b0 holds no marker, b1 only live ones (%" PRIu64
          ")\n", test_name, scan (b1));
  sh_verify_all (&sh, h, "after the migration");

  free (ctl_ok ("ram-limit 512M"));
  free (ctl_ok ("backing drain %s", b1));
  a = bk_drain_finish (120, NULL);
  if (json_i64 (json_at (a, "drain"), "result") != 0)
    test_fail ("drain: %s", a);
  free (a);
  clean (b1, false, false, true);
  printf ("%s: 4. drained: b1 holds no marker\n", test_name);
  sh_verify_all (&sh, h, "at the end");

  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (sh.data);
  free (seen);
  return 0;
}
