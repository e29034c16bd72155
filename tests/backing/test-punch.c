/* ghostswap backing test: punch-holes.
 *
 * Usage: test-punch true|false
 *
 * size=128M ram-limit=2M backing=b0 backing-size=128M punch-holes=ARG.
 * The backing file is created sparse.  64 MiB of incompressible pages are
 * written and pushed to b0 ("writeback"): the file's allocated blocks
 * (st_blocks) grow by about what b0 holds.  Then the first quarter of the
 * device is zeroed (NBD_CMD_WRITE_ZEROES: whole slots become zero slots,
 * freeing their backing slots) and then the whole device is trimmed
 * (NBD_CMD_TRIM), and the device reads as zero.  With punch-holes=true
 * st_blocks falls after each step, finally below 10 % of its peak; with
 * punch-holes=false it does not fall at all.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk.h"

#define DEV_SIZE (128ull * MiB)
#define NSLOTS (DEV_SIZE / SLOT)
#define FILL_SLOTS (64ull * MiB / SLOT)

/* st_blocks of @path once it is below @target (polling for up to 5 s),
 * or after those 5 s; without @punch, just after 1 s. */
static uint64_t
settled_blocks (const char *path, uint64_t target, bool punch)
{
  uint64_t v = file_blocks (path);

  for (int t = 0; t < (punch ? 50 : 10) && (!punch || v >= target); t++) {
    msleep (100);
    v = file_blocks (path);
  }
  return v;
}

int
main (int argc, char **argv)
{
  struct server srv;
  struct nbd_handle *h;
  struct shadow sh;
  struct bk_stats st;
  struct bk_backing b;
  struct rng r;
  char barg[200], parg[40];
  const char *b0;
  unsigned char buf[16 * SLOT];
  uint64_t blocks0, blocks1, blocks2, blocks3, used;
  bool punch;

  bk_init (argc, argv);
  if (argc != 2 || (strcmp (argv[1], "true") && strcmp (argv[1], "false")))
    test_fail ("usage: %s true|false", argv[0]);
  punch = strcmp (argv[1], "true") == 0;
  rng_seed (&r, test_seed ());
  b0 = bk_path ("b0");
  snprintf (barg, sizeof barg, "backing=%s", b0);
  snprintf (parg, sizeof parg, "punch-holes=%s", argv[1]);
  bk_start (&srv, "size=128M", "ram-limit=2M", barg, "backing-size=128M",
            parg, NULL);
  h = server_connect (&srv);
  shadow_init (&sh, DEV_SIZE);

  blocks0 = file_blocks (b0);
  for (uint64_t s = 0; s < FILL_SLOTS; s += 16) {
    for (int k = 0; k < 16; k++)
      gen_slot (&r, buf + k * SLOT, s * 2 + (uint64_t) k, 3);
    /* Spread over both halves of the device. */
    sh_write (&sh, h, buf, sizeof buf, (s * 2) * SLOT);
  }
  free (ctl_ok ("writeback"));
  if (!bk_backing (b0, &b))
    test_fail ("b0 is not attached");
  used = b.used;
  blocks1 = file_blocks (b0);
  printf ("%s: b0 holds %" PRIu64 " pages; st_blocks %" PRIu64 " -> %" PRIu64
          " (%" PRIu64 " KiB)\n", test_name, used, blocks0, blocks1,
          blocks1 / 2);
  if (used < FILL_SLOTS / 2)
    test_fail ("only %" PRIu64 " pages on b0", used);
  if (blocks1 < blocks0 + used * (SLOT / 512) * 9 / 10)
    test_fail ("st_blocks grew by %" PRIu64 " for %" PRIu64 " pages written",
               blocks1 - blocks0, used);
  sh_verify_all (&sh, h, "after writeback");

  /* Freed slots are punched by the background thread, which a trim
   * wakes: allow it a few seconds (and, with punch-holes=false, watch as
   * long for a fall that must not come). */
  sh_trim (&sh, h, DEV_SIZE / 4, 0, true);
  blocks2 = settled_blocks (b0, blocks1 - (blocks1 - blocks0) / 8, punch);
  sh_trim (&sh, h, DEV_SIZE, 0, false);
  blocks3 = settled_blocks (b0, blocks1 / 10, punch);
  printf ("%s: punch-holes=%s: st_blocks after zeroing a quarter %" PRIu64
          ", after trimming everything %" PRIu64 "\n", test_name, argv[1],
          blocks2, blocks3);
  sh_verify_all (&sh, h, "after zero and trim");
  bk_stats (&st);
  if (!bk_backing (b0, &b) || b.used != 0 || st.slots_backing != 0)
    test_fail ("after trimming everything: b0 used %" PRIu64
               ", slots_backing %" PRIu64, b.used, st.slots_backing);

  if (punch) {
    uint64_t grown = blocks1 - blocks0;
    if (blocks2 >= blocks1 - grown / 8)
      test_fail ("zeroing a quarter of the device left st_blocks at %" PRIu64
                 " of %" PRIu64, blocks2, blocks1);
    if (blocks3 * 10 > blocks1)
      test_fail ("trimming the device left st_blocks at %" PRIu64 " of %"
                 PRIu64 " (the file grew from %" PRIu64 ")", blocks3, blocks1,
                 blocks0);
  }
  else if (blocks2 < blocks1 || blocks3 < blocks1)
    test_fail ("punch-holes=false, but st_blocks fell from %" PRIu64 " to %"
               PRIu64 " / %" PRIu64, blocks1, blocks2, blocks3);

  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (sh.data);
  return 0;
}
