/* ghostswap unit tests: an engine device with one backing file, a shadow
 * of its contents, and a seccomp filter that makes the kernel refuse
 * io_uring (tests/unit/test-uring-*.c).
 *
 *  - bw_dir_make / bw_dir_remove: a directory for the backing file on a
 *    file system the engine accepts ($GHOSTSWAP_BACKING_TMPDIR, else
 *    /var/tmp, else the current directory); skip (77) if none works;
 *  - bw_block_uring: tests/common/uring-seccomp.h's filter, which makes
 *    io_uring_setup (and, if asked, io_uring_enter) fail with an errno,
 *    as container runtimes' default profiles and kernel.io_uring_disabled
 *    do; with @all_threads it is applied to every thread of the process
 *    at once (SECCOMP_FILTER_FLAG_TSYNC);
 *  - bw_write_round / bw_verify: writes of whole and partial pages of
 *    every kind through a small ram-limit (so that the writers' direct
 *    reclaim and gs_writeback push pages to the backing), checked
 *    byte for byte against the shadow.
 */
#ifndef GHOSTSWAP_TEST_BACKING_WORKLOAD_H
#define GHOSTSWAP_TEST_BACKING_WORKLOAD_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "ghostswap/backing.h"
#include "ghostswap/device.h"
#include "test.h"
#include "uring-seccomp.h"

static char bw_dir[PATH_MAX];
static char bw_file[PATH_MAX];

static void
bw_dir_remove (void)
{
  if (bw_file[0])
    unlink (bw_file);
  if (bw_dir[0])
    rmdir (bw_dir);
  bw_file[0] = bw_dir[0] = '\0';
}

/* Make the directory and name the backing file in it (not created: the
 * engine makes it). */
static inline void
bw_dir_make (void)
{
  const char *env = getenv ("GHOSTSWAP_BACKING_TMPDIR");
  const char *cands[3];
  char cwd[PATH_MAX];
  int n = 0;

  if (env && *env)
    cands[n++] = env;
  cands[n++] = "/var/tmp";
  if (getcwd (cwd, sizeof cwd))
    cands[n++] = cwd;
  for (int i = 0; i < n; i++) {
    snprintf (bw_dir, sizeof bw_dir, "%s/gs-uring-XXXXXX", cands[i]);
    if (mkdtemp (bw_dir)) {
      snprintf (bw_file, sizeof bw_file, "%s/backing", bw_dir);
      atexit (bw_dir_remove);
      return;
    }
  }
  bw_dir[0] = '\0';
  SKIP ("no writable directory for a backing file");
}

/* Attach the backing file (@size bytes) to @dev; skip if the engine
 * refuses the file system (tmpfs, FUSE, NFS: it names it). */
static inline void
bw_backing_add (struct gs_device *dev, uint64_t size)
{
  char err[512];
  int r = gs_backing_add (dev, bw_file, size, err, sizeof err);

  if (r == -EINVAL && strstr (err, "file system"))
    SKIP ("backing file refused: %s (set GHOSTSWAP_BACKING_TMPDIR)", err);
  CHECKF (r == 0, "gs_backing_add %s: %d: %s", bw_file, r, err);
}

/* Make io_uring_setup (and io_uring_enter with @enter_too) fail with
 * @err (see uring-seccomp.h).  Skips on an architecture the filter does
 * not know; fails the test if the kernel does not take the filter or
 * io_uring_setup still works. */
static inline void
bw_block_uring (int err, bool enter_too, bool all_threads)
{
  int r = uring_seccomp_block (err, enter_too, all_threads);

  if (r == -ENOTSUP)
    SKIP ("no seccomp architecture constant for this machine");
  CHECKF (r == 0, "seccomp filter for io_uring: %s",
          r == -EPROTO ? "io_uring_setup still works" : strerror (-r));
  fprintf (stderr, "%s: seccomp: io_uring_setup%s now fail with %s%s\n",
           test_argv0, enter_too ? " and io_uring_enter" : "",
           strerror (err), all_threads ? " in every thread" : "");
}

/* ---- the shadow ---- */

struct bw {
  struct gs_device *dev;
  unsigned char *shadow;
  uint64_t nslots;
  uint64_t seed;
};

static inline void
bw_create (struct bw *w, uint64_t size, uint64_t ram_limit)
{
  struct gs_config cfg = test_config (size, ram_limit);

  CHECK_OK (gs_device_create (&cfg, &w->dev));
  w->nslots = size / PAGE;
  w->shadow = calloc (1, size);
  CHECK (w->shadow != NULL);
}

/* Write @count random pages (every kind; a quarter of them partial, at
 * an unaligned offset) into [@first, @first + @span) slots. */
static inline void
bw_write_round (struct bw *w, uint64_t first, uint64_t span, uint64_t count)
{
  unsigned char page[PAGE];

  for (uint64_t k = 0; k < count; k++) {
    uint64_t slot = first + rnd_below (&w->seed, span);
    uint64_t off = slot * PAGE;
    uint32_t len = PAGE;
    int r;

    /* Half incompressible (stored raw, written back first), the rest of
     * every other kind. */
    fill_kind (page, rnd_below (&w->seed, 2) ? KIND_RANDOM
               : (enum page_kind) rnd_below (&w->seed, KIND_COUNT), &w->seed);
    if (rnd_below (&w->seed, 4) == 0) {
      uint32_t in = (uint32_t) rnd_below (&w->seed, PAGE - 1) + 1;
      len = (uint32_t) rnd_below (&w->seed, PAGE - in) + 1;
      off += in;
    }
    r = gs_pwrite (w->dev, page, len, off);
    CHECKF (r == 0, "gs_pwrite slot %" PRIu64 " len %u: %d", slot, len, r);
    memcpy (w->shadow + off, page, len);
  }
}

/* Every slot reads back as the shadow. */
static inline void
bw_verify (struct bw *w, const char *what)
{
  unsigned char *buf = malloc (64 * PAGE);

  CHECK (buf != NULL);
  for (uint64_t s = 0; s < w->nslots; s += 64) {
    uint64_t n = w->nslots - s < 64 ? w->nslots - s : 64;
    long d;
    int r = gs_pread (w->dev, buf, (uint32_t) (n * PAGE), s * PAGE);

    CHECKF (r == 0, "%s: gs_pread at slot %" PRIu64 ": %d", what, s, r);
    d = first_diff (buf, w->shadow + s * PAGE, n * PAGE);
    CHECKF (d < 0, "%s: slot %" PRIu64 " byte %ld reads %#x, expected %#x",
            what, s + (uint64_t) d / PAGE, d % (long) PAGE, buf[d],
            w->shadow[s * PAGE + (uint64_t) d]);
  }
  free (buf);
}

static inline struct gs_stats
bw_stats (struct bw *w)
{
  struct gs_stats st;
  gs_get_stats (w->dev, &st);
  return st;
}

/* Drain the backing into RAM (raising ram-limit to make room) and wait. */
static inline void
bw_drain_to_ram (struct bw *w)
{
  char err[512];
  struct gs_drain_status ds;
  int r;

  CHECK_OK (gs_set_ram_limit (w->dev, w->nslots * PAGE * 2));
  r = gs_drain_start (w->dev, bw_file, NULL, false, err, sizeof err);
  CHECKF (r == 0, "gs_drain_start: %d: %s", r, err);
  r = gs_drain_wait (w->dev);
  gs_drain_get_status (w->dev, &ds);
  CHECKF (r == 0, "drain: %d: %s", r, ds.message);
}

#endif /* GHOSTSWAP_TEST_BACKING_WORKLOAD_H */
