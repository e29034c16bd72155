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
 * remove URI" detaches it; an nbd:// remote (TCP on loopback, no TLS) is
 * attached with a "warning" in the answer and marked remote_insecure, a
 * Unix socket one without.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bk.h"

static int failures;
static pid_t tcp_pid;

static void
tcp_stop (void)
{
  if (tcp_pid > 0) {
    kill (tcp_pid, SIGKILL);
    waitpid (tcp_pid, NULL, 0);
    tcp_pid = 0;
  }
}

/* A remote on TCP, on loopback only: nbdkit -i 127.0.0.1 -p PORT (ports
 * tried from a random one on until one binds).  Return: the port. */
static unsigned
tcp_start (void)
{
  const char *nbdkit = getenv ("NBDKIT");
  const char *pidfile = bk_path ("tcp.pid");
  struct rng r;

  if (!nbdkit || !*nbdkit)
    nbdkit = "nbdkit";
  rng_seed (&r, test_seed ());
  for (int attempt = 0; attempt < 20; attempt++) {
    unsigned port = 20000 + (unsigned) rng_below (&r, 30000);
    char parg[16];

    snprintf (parg, sizeof parg, "%u", port);
    unlink (pidfile);
    tcp_pid = fork ();
    if (tcp_pid < 0)
      test_fail ("fork: %s", strerror (errno));
    if (tcp_pid == 0) {
      execlp (nbdkit, nbdkit, "-f", "--exit-with-parent", "-i", "127.0.0.1",
              "-p", parg, "-P", pidfile, "memory", "size=64M", (char *) NULL);
      _exit (127);
    }
    for (int tries = 0; tries < 1000; tries++) {
      struct stat st;
      int status;

      if (waitpid (tcp_pid, &status, WNOHANG) == tcp_pid) {
        tcp_pid = 0;
        break;                  /* the port was taken: another */
      }
      if (stat (pidfile, &st) == 0 && st.st_size > 0)
        return port;
      msleep (10);
    }
    tcp_stop ();
  }
  test_fail ("no loopback port for the TCP remote");
}

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

  /* nbd:// (TCP, no TLS): attached, with a warning in the answer. */
  {
    char tcp_uri[64];
    atexit (tcp_stop);
    snprintf (tcp_uri, sizeof tcp_uri, "nbd://127.0.0.1:%u/", tcp_start ());
    a = ctl_ok ("backing add %s", tcp_uri);
    printf ("%s: backing add %s: %s\n", test_name, tcp_uri, a);
    if (!json_at (a, "warning") || !strstr (a, "TLS"))
      test_fail ("no warning for a remote over TCP without TLS: %s", a);
    free (a);
    a = ctl_ok ("backing list");
    b = json_backing (a, tcp_uri);
    if (!b || !json_bool (b, "remote_insecure"))
      test_fail ("the TCP remote is not marked remote_insecure: %s", a);
    free (a);
    a = ctl_ok ("backing add %s", uri);
    if (json_at (a, "warning"))
      test_fail ("a warning for a remote on a Unix socket: %s", a);
    free (a);
    free (ctl_ok ("backing remove %s", tcp_uri));
    free (ctl_ok ("backing remove %s", uri));
    tcp_stop ();
  }
  server_stop_check (&srv);
  server_stop (&remote);
  if (failures)
    test_fail ("%d of the refusal checks failed (see above)", failures);
  return 0;
}
