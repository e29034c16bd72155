/* ghostswap backing test: detaching a backing.
 *
 * size=64M ram-limit=2M backing=b0 backing-size=64M.  32 MiB of pages are
 * written and pushed to b0.  Then:
 *  - "backing remove b0" is refused (ok:false, the error says it holds
 *    live pages and to drain it) and b0 stays attached with its pages;
 *  - removing a path that is not attached fails cleanly (ok:false, "not
 *    attached"), as does removing a near miss of b0's path;
 *  - after "ram-limit 512M" and "backing drain b0" (result 0) the removal
 *    is accepted: "backing list" is empty, no slot is on backing;
 *  - the data is intact, and b0 can be attached again ("backing add",
 *    existing file, no size) and takes pages again ("writeback").
 *
 * With the argument "during-migrate": 16 MiB pushed to b0, then
 * "migrate b0 b1 64M" and, on the same connection right behind it,
 * "backing remove b1" and "backing remove b0": both must be refused while
 * the migration runs (b1 is its target, b0 its source), the migration
 * must succeed into b1, and the data must verify.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk.h"

#define DEV_SIZE (64ull * MiB)
#define NSLOTS (DEV_SIZE / SLOT)

static void
expect_refused (const char *ans, const char *what, const char *needle1,
                const char *needle2)
{
  char err[1024];

  if (ans_ok (ans))
    test_fail ("%s was accepted: %s", what, ans);
  json_str (ans, "error", err, sizeof err);
  if (!strstr (err, needle1) || (needle2 && !strstr (err, needle2)))
    test_fail ("%s: error '%s' does not mention '%s'%s%s", what, err, needle1,
               needle2 ? " and " : "", needle2 ? needle2 : "");
  printf ("%s: %s refused: %s\n", test_name, what, err);
}

static int
during_migrate (uint64_t seed)
{
  struct server srv;
  struct nbd_handle *h;
  struct shadow sh;
  struct bk_backing b;
  struct rng r;
  char barg[200], l0[400], l1[400], l2[400];
  const char *b0 = bk_path ("b0"), *b1 = bk_path ("b1"), *d;
  const char *lines[3] = { l0, l1, l2 };
  unsigned char buf[16 * SLOT];
  uint64_t used;
  char *ans[3], *a;

  rng_seed (&r, seed);
  snprintf (barg, sizeof barg, "backing=%s", b0);
  bk_start (&srv, "size=64M", "ram-limit=2M", barg, "backing-size=64M", NULL);
  h = server_connect (&srv);
  shadow_init (&sh, DEV_SIZE);
  for (uint64_t s = 0; s < NSLOTS / 4; s += 16) {
    for (int k = 0; k < 16; k++)
      gen_slot (&r, buf + k * SLOT, s + (uint64_t) k, -1);
    sh_write (&sh, h, buf, sizeof buf, s * SLOT);
  }
  free (ctl_ok ("writeback"));
  if (!bk_backing (b0, &b) || b.used == 0)
    test_fail ("no page on b0 after writeback");
  used = b.used;

  snprintf (l0, sizeof l0, "migrate %s %s 64M", b0, b1);
  snprintf (l1, sizeof l1, "backing remove %s", b1);
  snprintf (l2, sizeof l2, "backing remove %s", b0);
  ctl_multi (3, lines, ans);
  if (!ans_ok (ans[0]))
    test_fail ("%s: %s", l0, ans[0]);
  a = ctl ("drain wait");        /* ok:false if the migration failed */
  d = json_at (a, "drain");
  printf ("%s: %s -> %s; %s -> %s; migration result %" PRId64 ": %s\n",
          test_name, l1, ans[1], l2, ans[2], json_i64 (d, "result"), a);
  if (ans_ok (ans[1]))
    test_fail ("the target of a running migration was detached ('%s' "
               "answered %s); the migration then ended with: %s", l1, ans[1],
               a);
  if (ans_ok (ans[2]))
    test_fail ("the source of a running migration was detached: %s", ans[2]);
  if (json_i64 (d, "result") != 0 || json_u64 (d, "done") != used)
    test_fail ("the migration did not move all %" PRIu64 " pages: %s", used,
               a);
  if (bk_backing (b0, &b) || !bk_backing (b1, &b) || b.used != used)
    test_fail ("after the migration b0 is still attached or b1 does not hold "
               "the %" PRIu64 " pages", used);
  free (a);
  for (int i = 0; i < 3; i++)
    free (ans[i]);
  sh_verify_all (&sh, h, "after the migration");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (sh.data);
  return 0;
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
  char barg[200], near[200];
  const char *b0, *d;
  unsigned char buf[16 * SLOT];
  uint64_t used;
  char *a;

  bk_init (argc, argv);
  if (argc > 1 && strcmp (argv[1], "during-migrate") == 0)
    return during_migrate (test_seed ());
  rng_seed (&r, test_seed ());
  b0 = bk_path ("b0");
  snprintf (barg, sizeof barg, "backing=%s", b0);
  bk_start (&srv, "size=64M", "ram-limit=2M", barg, "backing-size=64M", NULL);
  h = server_connect (&srv);
  shadow_init (&sh, DEV_SIZE);

  for (uint64_t s = 0; s < NSLOTS / 2; s += 16) {
    for (int k = 0; k < 16; k++)
      gen_slot (&r, buf + k * SLOT, s + (uint64_t) k, -1);
    sh_write (&sh, h, buf, sizeof buf, s * SLOT);
  }
  free (ctl_ok ("writeback"));
  if (!bk_backing (b0, &b) || b.used == 0)
    test_fail ("no page on b0 after writeback");
  used = b.used;
  printf ("%s: b0 holds %" PRIu64 " pages\n", test_name, used);

  /* Refused while it holds pages. */
  a = ctl ("backing remove %s", b0);
  expect_refused (a, "removing a backing with live pages", "live pages",
                  "drain");
  free (a);
  if (!bk_backing (b0, &b) || b.used != used)
    test_fail ("a refused remove changed b0 (used %" PRIu64 " -> %" PRIu64
               ")", used, b.used);

  /* Unknown paths. */
  a = ctl ("backing remove %s/not-a-backing", bk_dir);
  expect_refused (a, "removing an unknown path", "not attached", NULL);
  free (a);
  snprintf (near, sizeof near, "%s/", b0);
  a = ctl ("backing remove %s", near);
  expect_refused (a, "removing b0's path with a trailing slash",
                  "not attached", NULL);
  free (a);
  a = ctl ("backing remove relative-name");
  expect_refused (a, "removing a relative name", "not attached", NULL);
  free (a);
  sh_verify_all (&sh, h, "after refused removals");

  /* Accepted after a drain. */
  free (ctl_ok ("ram-limit 512M"));
  free (ctl_ok ("backing drain %s", b0));
  a = bk_drain_finish (120, NULL);
  d = json_at (a, "drain");
  if (json_i64 (d, "result") != 0 || json_u64 (d, "done") != used)
    test_fail ("drain of b0: %s", a);
  free (a);
  free (ctl_ok ("backing remove %s", b0));
  a = ctl_ok ("backing list");
  if (json_backing (a, b0) || !strstr (a, "\"backings\":[]"))
    test_fail ("after removing b0, backing list says: %s", a);
  free (a);
  bk_stats (&st);
  if (st.backings != 0 || st.slots_backing != 0 || st.backing_used != 0)
    test_fail ("after removing b0: backings %" PRIu64 ", slots_backing %"
               PRIu64, st.backings, st.slots_backing);
  sh_verify_all (&sh, h, "after draining and removing b0");

  /* Removing it twice fails cleanly. */
  a = ctl ("backing remove %s", b0);
  expect_refused (a, "removing b0 again", "not attached", NULL);
  free (a);

  /* Attach it again (existing file: its own size) and use it. */
  free (ctl_ok ("backing add %s", b0));
  if (!bk_backing (b0, &b) || b.size != DEV_SIZE || b.used != 0 || !b.healthy)
    test_fail ("b0 attached again: size %" PRIu64 " used %" PRIu64, b.size,
               b.used);
  free (ctl_ok ("ram-limit 2M"));
  a = ctl_ok ("writeback");
  if (json_i64 (a, "pages") <= 0)
    test_fail ("writeback to the re-attached b0: %s", a);
  free (a);
  if (!bk_backing (b0, &b) || b.used == 0)
    test_fail ("no page on the re-attached b0");
  bk_stats (&st);
  if (st.errors || st.backing_read_errors || st.backing_write_errors)
    test_fail ("errors counted");
  sh_verify_all (&sh, h, "at the end");

  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  free (sh.data);
  return 0;
}
