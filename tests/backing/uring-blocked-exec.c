/* uring-blocked-exec ARGS...: run nbdkit (the one on $PATH, or
 * $GHOSTSWAP_REAL_NBDKIT) with ARGS under a seccomp filter that makes
 * io_uring_setup fail with ENOSYS, as a container runtime's default
 * profile does.  The backing tests start it through the harness's
 * $NBDKIT (tests/backing/meson.build, the backing-*-seccomp tests): the
 * plugin must then do all its backing I/O with the pread/pwrite fallback.
 * Exits 77 (skip) where the filter cannot be installed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uring-seccomp.h"

int
main (int argc, char **argv)
{
  const char *nbdkit = getenv ("GHOSTSWAP_REAL_NBDKIT");
  int r = uring_seccomp_block (ENOSYS, false, false);

  if (r < 0) {
    fprintf (stderr, "uring-blocked-exec: cannot block io_uring: %s\n",
             r == -EPROTO ? "io_uring_setup still works"
             : r == -ENOTSUP ? "unknown architecture" : strerror (-r));
    return 77;
  }
  if (!nbdkit || !*nbdkit)
    nbdkit = "nbdkit";
  argv[0] = (char *) nbdkit;
  execvp (nbdkit, argv);
  fprintf (stderr, "uring-blocked-exec: exec %s: %s\n", nbdkit,
           strerror (errno));
  return 127;
}
