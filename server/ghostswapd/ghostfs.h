/* ghostswapd: the FUSE file system: a root directory holding `swap` (the
 * device, mode 0600) and `stats` (read-only text), served with libfuse's
 * low-level API.
 *
 * The low-level API and not the high-level one: the namespace is fixed
 * (three inodes, no paths to resolve, no inode table to keep), the
 * operations need the per-open fuse_file_info (direct_io) and fallocate
 * modes as the kernel sends them, and the high-level layer would add a
 * path lookup and a global lock on its node table to every request on
 * the I/O path.
 *
 * The stats file holds the engine's statistics followed by the FUSE
 * transport's (fuse_transport_format): which transport serves, and the
 * requests of each kind it has carried.
 *
 * The page cache is never a write-back cache here: FUSE_CAP_WRITEBACK_CACHE
 * is always refused, so a write the kernel swaps out has reached the
 * engine when it completes. */
#ifndef GHOSTSWAPD_GHOSTFS_H
#define GHOSTSWAPD_GHOSTFS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "ghostswap/device.h"
#include "ghostswap/service/latency.h"

struct fuse_transport;

#define GHOSTFS_INO_ROOT  FUSE_ROOT_ID
#define GHOSTFS_INO_SWAP  2
#define GHOSTFS_INO_STATS 3

#define GHOSTFS_SWAP_NAME  "swap"
#define GHOSTFS_STATS_NAME "stats"

struct ghostfs {
  struct gs_device *dev;
  uint64_t size;              /* the device size, fixed */
  uid_t uid;                  /* owner of every file: the daemon's user */
  gid_t gid;
  struct timespec started;    /* the files' times */
  bool direct_io_always;      /* all opens of swap bypass the page cache,
                               * else only O_DIRECT ones */
  unsigned max_background;    /* for the kernel's async queue; 0: default */
  unsigned swap_opens;        /* atomic: open handles of swap */
  struct gs_latency *latency; /* request latency (NULL: not recorded) */
  struct fuse_transport *transport; /* its counters follow the engine's
                                     * in stats; NULL: none */
};

/* ghostfs_init - fill @fs for serving @dev.
 * Context: any.  Return: nothing.
 */
void ghostfs_init (struct ghostfs *fs, struct gs_device *dev,
                   bool direct_io_always, unsigned max_background);

/* ghostfs_swap_opens - how many open handles the swap file has now (a
 * loop device attached to it holds one).
 * Context: any.  Return: the count.
 */
unsigned ghostfs_swap_opens (struct ghostfs *fs);

/* The operations; the session's userdata is the struct ghostfs. */
extern const struct fuse_lowlevel_ops ghostfs_ops;

#endif /* GHOSTSWAPD_GHOSTFS_H */
