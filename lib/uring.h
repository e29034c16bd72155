/* ghostswap: batched backing I/O through io_uring, one ring per thread. */
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
 * depth at a time), and wait for all of them.
 * Context: may sleep; uses the calling thread's ring, made on first use
 * and freed when the thread exits.
 * Return: 0 if every op succeeded, else the first op error (each op's own
 * result is in its res), or -errno if no ring could be set up.
 */
int gs_uring_run (struct gs_io *ios, size_t n);

#endif /* GHOSTSWAP_URING_H */
