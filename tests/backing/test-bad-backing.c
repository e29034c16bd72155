/* ghostswap backing test: backings that must be refused, and the file the
 * plugin creates.
 *
 * nbdkit must refuse to start, with exactly one error line that names
 * "backing" and the path, for:
 *  - an existing file on tmpfs (/dev/shm);
 *  - a missing file on tmpfs with backing-size= (and it must not leave a
 *    file behind there);
 *  - a missing file without backing-size=;
 *  - a directory;
 *  - a file smaller than one slot;
 *  - the same file given twice, by the same name and by another name for
 *    it ("DIR//b0", "DIR/./b0").
 * And a backing file that is created (missing, backing-size=24M) is a
 * sparse regular file of exactly that size with mode 0600, even under
 * umask 000; with it the server starts and serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

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
  char shm[] = "/dev/shm/gs-backing-test-XXXXXX";
  char shm_missing[64], a_back[300], a_back2[300], a_size[64];
  const char *dir, *missing, *tiny, *b0, *created;
  struct statfs sfs;
  struct stat st;
  struct server srv;
  struct nbd_handle *h;
  unsigned char buf[SLOT];
  int fd;

  bk_init (argc, argv);
  dir = bk_path ("dir");
  missing = bk_path ("missing");
  tiny = bk_path ("tiny");
  b0 = bk_path ("b0");
  created = bk_path ("created");
  if (mkdir (dir, 0700) != 0)
    test_fail ("mkdir %s: %s", dir, strerror (errno));

  /* tmpfs */
  if (statfs ("/dev/shm", &sfs) == 0 && sfs.f_type == TMPFS_MAGIC
      && (fd = mkstemp (shm)) >= 0) {
    bool ok;
    if (ftruncate (fd, 16 * MiB) != 0)
      test_fail ("ftruncate %s: %s", shm, strerror (errno));
    close (fd);
    snprintf (a_back, sizeof a_back, "backing=%s", shm);
    ok = bk_expect_refusal ("existing file on tmpfs", shm, (const char *[]) {
        "size=16M", "ram-limit=1M", a_back, NULL });
    unlink (shm);
    check (ok);

    snprintf (shm_missing, sizeof shm_missing, "%s.new", shm);
    snprintf (a_back, sizeof a_back, "backing=%s", shm_missing);
    ok = bk_expect_refusal ("missing file on tmpfs", shm_missing,
                         (const char *[]) { "size=16M", "ram-limit=1M", a_back,
                             "backing-size=16M", NULL });
    if (access (shm_missing, F_OK) == 0) {
      fprintf (stderr, "%s: FAIL: refusing %s left the file it created "
               "behind\n", test_name, shm_missing);
      unlink (shm_missing);
      ok = false;
    }
    check (ok);
  }
  else
    printf ("%s: /dev/shm is not tmpfs here: tmpfs cases not run\n",
            test_name);

  /* A missing file without a size. */
  snprintf (a_back, sizeof a_back, "backing=%s", missing);
  check (bk_expect_refusal ("missing file without backing-size", missing,
                         (const char *[]) { "size=16M", "ram-limit=1M",
                             a_back, NULL }));
  if (access (missing, F_OK) == 0) {
    fprintf (stderr, "%s: FAIL: %s was created without a size\n", test_name,
             missing);
    failures++;
  }

  /* A directory. */
  snprintf (a_back, sizeof a_back, "backing=%s", dir);
  check (bk_expect_refusal ("a directory", dir, (const char *[]) {
        "size=16M", "ram-limit=1M", a_back, "backing-size=16M", NULL }));

  /* Smaller than a slot. */
  fd = open (tiny, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate (fd, 100) != 0)
    test_fail ("%s: %s", tiny, strerror (errno));
  close (fd);
  snprintf (a_back, sizeof a_back, "backing=%s", tiny);
  check (bk_expect_refusal ("a 100-byte file", tiny, (const char *[]) {
        "size=16M", "ram-limit=1M", a_back, NULL }));

  /* The same file twice. */
  fd = open (b0, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate (fd, 16 * MiB) != 0)
    test_fail ("%s: %s", b0, strerror (errno));
  close (fd);
  snprintf (a_back, sizeof a_back, "backing=%s", b0);
  check (bk_expect_refusal ("the same backing twice", b0, (const char *[]) {
        "size=16M", "ram-limit=1M", a_back, a_back, NULL }));
  snprintf (a_back2, sizeof a_back2, "backing=%s//b0", bk_dir);
  check (bk_expect_refusal ("one file under two names (DIR//b0)", "b0",
                         (const char *[]) { "size=16M", "ram-limit=1M",
                             a_back, a_back2, NULL }));
  snprintf (a_back2, sizeof a_back2, "backing=%s/./b0", bk_dir);
  check (bk_expect_refusal ("one file under two names (DIR/./b0)", "b0",
                         (const char *[]) { "size=16M", "ram-limit=1M",
                             a_back, a_back2, NULL }));

  /* A created file: 0600 whatever the umask, the size asked for, sparse. */
  umask (0);
  snprintf (a_back, sizeof a_back, "backing=%s", created);
  snprintf (a_size, sizeof a_size, "backing-size=%u", 24 * MiB);
  bk_start (&srv, "size=16M", "ram-limit=1M", a_back, a_size, NULL);
  umask (022);
  if (stat (created, &st) != 0)
    test_fail ("%s was not created: %s", created, strerror (errno));
  printf ("%s: created %s: mode %04o, size %jd, %jd blocks\n", test_name,
          created, (unsigned) (st.st_mode & 07777), (intmax_t) st.st_size,
          (intmax_t) st.st_blocks);
  if (!S_ISREG (st.st_mode) || (st.st_mode & 07777) != 0600)
    test_fail ("created backing file has mode %04o, expected 0600",
               (unsigned) (st.st_mode & 07777));
  if (st.st_size != 24 * MiB)
    test_fail ("created backing file has %jd bytes, expected %u",
               (intmax_t) st.st_size, 24 * MiB);
  if (st.st_blocks > 1024)
    test_fail ("created backing file is not sparse: %jd blocks",
               (intmax_t) st.st_blocks);
  h = server_connect (&srv);
  memset (buf, 0x3c, sizeof buf);
  buf[17] = 1;
  xpwrite (h, buf, sizeof buf, 0);
  {
    unsigned char got[SLOT];
    xpread (h, got, sizeof got, 0);
    if (memcmp (got, buf, sizeof buf) != 0)
      test_fail ("the server with a created backing does not serve");
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);

  rmdir (dir);
  if (failures)
    test_fail ("%d of the refusal checks failed (see above)", failures);
  return 0;
}
