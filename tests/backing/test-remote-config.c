/* ghostswap backing test: remote backings that must be refused.
 *
 * nbdkit with the plugin must refuse to start, with exactly one error
 * line naming "backing" and the URI, for:
 *  - backing=URI with backing-size= (a remote has its export's size);
 *  - a URI whose socket does not exist;
 *  - a URI libnbd cannot parse;
 *  - an export whose minimum block size (8192, nbdkit's
 *    blocksize-policy filter) does not divide 4096;
 *  - a read-only export.
 * And on a running device, "backing add URI SIZE" is refused with one
 * line, "backing add URI" attaches it (listed as a remote), and "backing
 * remove URI" detaches it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bk.h"

static int failures;

static void
check (bool ok)
{
  if (!ok)
    failures++;
}

int
main (int argc, char **argv)
{
  struct server remote, ro, bs, srv;
  char uri[400], ro_uri[400], bs_uri[400], none_uri[400];
  char a_uri[500], a_ro[500], a_bs[500], a_none[500];
  const char *bad = "nbd+unix://[::1";
  char a_bad[100], *a;
  const char *b;
  bool have_policy;

  bk_init (argc, argv);
  if (server_start_cmd (&remote, (const char *[]) { "memory", "size=64M",
                                                     NULL }) < 0)
    test_fail ("the remote nbdkit did not start");
  snprintf (uri, sizeof uri, "nbd+unix:///?socket=%s", remote.sock);
  snprintf (a_uri, sizeof a_uri, "backing=%s", uri);
  if (server_start_cmd (&ro, (const char *[]) { "-r", "memory", "size=64M",
                                                 NULL }) < 0)
    test_fail ("the read-only remote nbdkit did not start");
  snprintf (ro_uri, sizeof ro_uri, "nbd+unix:///?socket=%s", ro.sock);
  snprintf (a_ro, sizeof a_ro, "backing=%s", ro_uri);
  snprintf (none_uri, sizeof none_uri, "nbd+unix:///?socket=%s/none", bk_dir);
  snprintf (a_none, sizeof a_none, "backing=%s", none_uri);
  snprintf (a_bad, sizeof a_bad, "backing=%s", bad);

  check (bk_expect_refusal ("backing-size with a URI", uri,
                            (const char *[]) { "size=64M", a_uri,
                                               "backing-size=64M", NULL }));
  check (bk_expect_refusal ("a socket that does not exist", none_uri,
                            (const char *[]) { "size=64M", a_none, NULL }));
  check (bk_expect_refusal ("a URI that does not parse", bad,
                            (const char *[]) { "size=64M", a_bad, NULL }));
  check (bk_expect_refusal ("a read-only export", ro_uri,
                            (const char *[]) { "size=64M", a_ro, NULL }));
  server_stop (&ro);

  have_policy = server_start_cmd (&bs, (const char *[]) {
      "--filter=blocksize-policy", "memory", "size=64M",
      "blocksize-minimum=8192", "blocksize-preferred=8192",
      "blocksize-maximum=65536", NULL }) == 0;
  if (have_policy) {
    snprintf (bs_uri, sizeof bs_uri, "nbd+unix:///?socket=%s", bs.sock);
    snprintf (a_bs, sizeof a_bs, "backing=%s", bs_uri);
    check (bk_expect_refusal ("minimum block size 8192", bs_uri,
                              (const char *[]) { "size=64M", a_bs, NULL }));
    server_stop (&bs);
  }
  else
    printf ("%s: note: nbdkit has no blocksize-policy filter: the block "
            "size check is not exercised\n", test_name);

  /* On a running device. */
  bk_start (&srv, "size=64M", "ram-limit=4M", NULL);
  a = ctl ("backing add %s 64M", uri);
  printf ("%s: backing add URI 64M: %s\n", test_name, a);
  if (ans_ok (a) || !strstr (a, "size"))
    test_fail ("backing add with a size and a URI: %s", a);
  free (a);
  a = ctl ("backing add %s", none_uri);
  printf ("%s: backing add (no socket): %s\n", test_name, a);
  if (ans_ok (a) || !strstr (a, "connect"))
    test_fail ("backing add of a URI with no server: %s", a);
  free (a);
  free (ctl_ok ("backing add %s", uri));
  a = ctl_ok ("backing list");
  b = json_backing (a, uri);
  if (!b || !json_bool (b, "remote") || json_u64 (b, "size") != 64 * MiB)
    test_fail ("the remote is not listed as a 64M remote: %s", a);
  free (a);
  free (ctl_ok ("backing remove %s", uri));
  server_stop_check (&srv);
  server_stop (&remote);
  if (failures)
    test_fail ("%d of the refusal checks failed (see above)", failures);
  return 0;
}
