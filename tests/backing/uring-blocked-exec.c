/* uring-blocked-exec PROGRAM ARGS...: run PROGRAM (nbdkit, or a script
 * that starts it, such as .ci/run's ASan wrapper) with ARGS under a
 * seccomp filter that makes io_uring_setup fail with ENOSYS, as a
 * container runtime's default profile does; the filter is inherited
 * across execve.  The backing-*-seccomp tests start nbdkit through it
 * ($GHOSTSWAP_NBDKIT_WRAPPER, see tests/integration/harness.h): the
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
  int r;

  if (argc < 2) {
    fprintf (stderr, "usage: uring-blocked-exec PROGRAM [ARGS...]\n");
    return 2;
  }
  r = uring_seccomp_block (ENOSYS, false, false);

  if (r < 0) {
    fprintf (stderr, "uring-blocked-exec: cannot block io_uring: %s\n",
             r == -EPROTO ? "io_uring_setup still works"
             : r == -ENOTSUP ? "unknown architecture" : strerror (-r));
    return 77;
  }
  execvp (argv[1], argv + 1);
  fprintf (stderr, "uring-blocked-exec: exec %s: %s\n", argv[1],
           strerror (errno));
  return 127;
}
