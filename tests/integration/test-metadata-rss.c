/* ghostswap integration test: nbdkit's RSS stays bounded under hostile
 * request patterns, as a new user would try them, on size=4E ram-limit=1M:
 *
 *  - 20000 zero pages written at random offsets;
 *  - 16 WRITE_ZEROES of 4 GiB - 4 KiB with NO_HOLE, 16 without;
 *  - 2000 same-filled pages at random offsets (metadata grows: each has a
 *    cluster, a leaf and interior nodes of its own), then a trim of each:
 *    RSS comes back.
 *
 * Each step's RSS growth (from /proc/PID/status) is checked against a
 * bound; every page written is read back.  Skipped under sanitizers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "harness.h"

#define SLOT UINT64_C (4096)
#define EIB (UINT64_C (1) << 60)
#define RANGE (UINT64_C (0x100000000) - SLOT)
#define NZEROPAGES 20000
#define NDATA 2000
#include <stddef.h>

static void
check_growth (const struct server *srv, const char *what, uint64_t base,
              uint64_t bound_kib)
{
  uint64_t now = server_rss_kib (srv);

  fprintf (stderr, "test-metadata-rss: %s: RSS %+" PRId64 " KiB\n", what,
           (int64_t) (now - base));
  if (now > base + bound_kib)
    test_fail ("%s grew nbdkit's RSS by %" PRIu64 " KiB (bound %" PRIu64
               " KiB)", what, now - base, bound_kib);
}

int
main (int argc, char **argv)
{
  static const char *const args[] = { "size=4E", "ram-limit=1M", "control=none", NULL };
  static uint64_t off[NDATA];
  static unsigned char page[SLOT], back[SLOT];
  struct server srv;
  struct nbd_handle *h;
  struct rng rng;
  uint64_t base, peak, i, slots = 4 * EIB / SLOT;

  harness_init (argc, argv);
  if (getenv ("GHOSTSWAP_SANITIZE"))
    test_skip ("RSS bounds mean nothing under sanitizers (GHOSTSWAP_SANITIZE is set)");
  rng_seed (&rng, test_seed ());
  if (server_start (&srv, args) != 0)
    test_fail ("nbdkit ghostswap size=4E did not start");
  h = server_connect (&srv);
  /* Warm the connection's threads and the codec. */
  fill_mixed (&rng, page, SLOT, 0);
  xpwrite (h, page, SLOT, 0);
  xpread (h, back, SLOT, 0);
  if (nbd_trim (h, SLOT, 0, 0) == -1)
    test_fail_nbd ("trim");
  base = server_rss_kib (&srv);

  memset (page, 0, SLOT);
  for (i = 0; i < NZEROPAGES; i++)
    xpwrite (h, page, SLOT, rng_below (&rng, slots) * SLOT);
  check_growth (&srv, "20000 zero pages at random offsets", base, 2048);

  for (i = 0; i < 32; i++) {
    uint64_t o = rng_below (&rng, (4 * EIB - RANGE) / SLOT) * SLOT;
    if (nbd_zero (h, RANGE, o, i < 16 ? LIBNBD_CMD_FLAG_NO_HOLE : 0) == -1)
      test_fail_nbd ("zero %" PRIu64 "@%" PRIu64, RANGE, o);
  }
  check_growth (&srv, "32 WRITE_ZEROES of 4 GiB (16 with NO_HOLE)", base, 2048);

  /* Same-filled pages (the 8-byte word i + 1): no pool space, so that
   * what grows is the table alone and ram-limit=1M does not refuse them. */
  for (i = 0; i < NDATA; i++) {
    uint64_t w = i + 1;
    off[i] = rng_below (&rng, slots) * SLOT;
    for (size_t k = 0; k < SLOT; k += 8)
      memcpy (page + k, &w, 8);
    xpwrite (h, page, SLOT, off[i]);
  }
  peak = server_rss_kib (&srv);
  fprintf (stderr, "test-metadata-rss: %d data pages at random offsets: "
           "RSS %+" PRId64 " KiB\n", NDATA, (int64_t) (peak - base));
  if (peak - base < NDATA * 8)
    test_fail ("2000 scattered pages grew RSS by only %" PRIu64 " KiB: "
               "is the test measuring the right process?", peak - base);
  for (i = 0; i < NDATA; i++) {
    uint64_t w = i + 1, got;
    xpread (h, back, SLOT, off[i]);
    memcpy (&got, back + SLOT - 8, 8);
    if (memcmp (back, &w, 8) != 0 || got != w)
      test_fail ("page %" PRIu64 " at %" PRIu64 " did not read back", i, off[i]);
    if (nbd_trim (h, SLOT, off[i], 0) == -1)
      test_fail_nbd ("trim %" PRIu64, off[i]);
  }
  check_growth (&srv, "the 2000 pages trimmed", base, 2048);

  nbd_close (h);
  server_stop_check (&srv);
  return 0;
}
