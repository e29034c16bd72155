/* ghostswap unit tests: a backing file for engine tests.
 *
 * Backing files need a local file system with O_DIRECT (the engine refuses
 * tmpfs, FUSE and NFS): they go to a fresh directory under
 * $GHOSTSWAP_BACKING_TMPDIR, else /var/tmp.  test_backing_cleanup removes
 * the directory and everything in it.
 */
#ifndef GHOSTSWAP_TEST_BACKING_H
#define GHOSTSWAP_TEST_BACKING_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char test_backing_dir[PATH_MAX];

/* A path for backing file @name in this test's directory (made on first
 * use). */
static inline void
test_backing_path (char *path, size_t len, const char *name)
{
  if (!test_backing_dir[0]) {
    const char *base = getenv ("GHOSTSWAP_BACKING_TMPDIR");
    snprintf (test_backing_dir, sizeof test_backing_dir,
              "%s/ghostswap-unit-XXXXXX", base && *base ? base : "/var/tmp");
    CHECKF (mkdtemp (test_backing_dir) != NULL, "mkdtemp %s",
            test_backing_dir);
  }
  CHECKF ((size_t) snprintf (path, len, "%s/%s", test_backing_dir, name)
          < len, "backing path too long");
}

static inline void
test_backing_cleanup (void)
{
  DIR *d;
  struct dirent *de;
  char p[PATH_MAX + 256];

  if (!test_backing_dir[0])
    return;
  d = opendir (test_backing_dir);
  if (d) {
    while ((de = readdir (d)) != NULL) {
      if (de->d_name[0] == '.')
        continue;
      snprintf (p, sizeof p, "%s/%s", test_backing_dir, de->d_name);
      unlink (p);
    }
    closedir (d);
  }
  rmdir (test_backing_dir);
  test_backing_dir[0] = '\0';
}

#endif /* GHOSTSWAP_TEST_BACKING_H */
