/* ghostswap: batched backing I/O through io_uring, one ring per thread,
 * with a synchronous fallback.
 *
 * io_uring is an optimisation, never a requirement: when a thread's ring
 * cannot be set up (ENOMEM, EMFILE, EPERM or ENOSYS from a seccomp
 * profile, kernel.io_uring_disabled) or the kernel refuses a submission,
 * the ops of that batch that did not complete through the ring are done
 * with pread/pwrite, with the same per-op results.  A broken or missing
 * ring is tried again after a back-off (1 s, doubling to 64 s, reset by a
 * batch that went through a ring), so a transient ENOMEM does not turn
 * io_uring off for good.
 *
 * Environment (read once, at the first batch):
 *   GHOSTSWAP_IO_URING=0            never use io_uring (the fallback only)
 *   GHOSTSWAP_IO_URING_FAIL_AFTER=N for tests: after N submissions through
 *                                   rings (process-wide), the next one
 *                                   fails with ENOMEM before reaching the
 *                                   kernel, and so does the next ring
 *                                   setup that follows it (any thread)
 */
#ifndef GHOSTSWAP_URING_H
#define GHOSTSWAP_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One read or write of @len bytes at @offset of @fd.  @res receives the
 * outcome: 0 when all @len bytes moved, else -errno (-EIO for a short
 * transfer).  An op whose @res is already non-zero before the call is
 * skipped (fault injection sets it). */
struct gs_io {
  int fd;
  bool write;
  void *buf;
  uint32_t len;
  uint64_t offset;
  int res;
};

/* gs_uring_run - perform @n ops, submitted together (up to the ring's
 * depth at a time), and wait for all of them.  Every op's @res is set:
 * through the calling thread's ring if it has one, else (or for what a
 * failed submission left undone) with pread/pwrite.  No op is left
 * unperformed for want of a ring.
 * Context: may sleep; uses the calling thread's ring, made on first use
 * and freed when the thread exits.
 * Return: 0 if every op succeeded, else the first op error (each op's own
 * result is in its res).
 */
int gs_uring_run (struct gs_io *ios, size_t n);

/* Process-wide figures of batched I/O (all threads, since start). */
struct gs_uring_status {
  uint64_t rings;             /* rings set up */
  uint64_t failures;          /* ring setups and submissions that failed */
  uint64_t fallback_batches;  /* batches done (in part) with pread/pwrite */
  int last_error;             /* errno of the last failure, 0 if none */
};

/* gs_uring_get_status - a snapshot of the figures.
 * Context: any.  Return: nothing.
 */
void gs_uring_get_status (struct gs_uring_status *st);

#endif /* GHOSTSWAP_URING_H */
