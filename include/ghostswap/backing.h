/* ghostswap: backing devices (files or block devices) behind the RAM tier,
 * writeback, drain and migration.
 *
 * Each backing has its own physical slot allocator and a reverse map from
 * physical slot to ghost slot, so a page can be moved in O(1) and a backing
 * emptied with sequential reads.  Backings are named by their path.
 *
 * Functions that take @err write a one-line message naming the thing at
 * fault there on error (at most @errlen bytes, NUL-terminated).
 */
#ifndef GHOSTSWAP_BACKING_H
#define GHOSTSWAP_BACKING_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gs_device;

#define GS_MAX_BACKINGS 255

/* The figures of one backing, written once: each row
 *
 *   X (TYPE, FIELD, METRIC, KIND, HELP)
 *
 * feeds struct gs_backing_info, the control socket's JSON and the
 * metrics (ghostswap_backing_METRIC{path=...}), as GS_STATS_FIELDS does
 * for the device (ghostswap/stats.h): TYPE is U (uint64_t), I (unsigned),
 * B (bool) or S (a constant string, never a metric); KIND GAUGE, COUNTER or NONE (not a metric).  Adding a
 * figure is one row here plus the line of gs_backing_list that fills it.
 */
#define GS_BACKING_FIELDS(X)                                                  \
  X (I, id, "", NONE, "The backing's number in slot entries.")                \
  X (U, size, "size_bytes", GAUGE, "Size of the backing.")                    \
  X (U, slots, "slots", GAUGE, "Physical slots of the backing.")              \
  X (U, used, "used_slots", GAUGE, "Live physical slots of the backing.")     \
  X (B, healthy, "healthy", GAUGE,                                            \
     "1 unless a write to the backing failed (then it takes no new pages).")  \
  X (B, draining, "draining", GAUGE,                                          \
     "1 while a drain or migration empties the backing.")                     \
  X (B, block_device, "", NONE, "A block device, not a file.")                \
  X (U, reads, "read_pages_total", COUNTER, "Pages read from the backing.")   \
  X (U, writes, "written_pages_total", COUNTER,                               \
     "Pages written to the backing.")                                         \
  X (U, read_errors, "read_errors_total", COUNTER,                            \
     "Reads from the backing that failed.")                                   \
  X (U, write_errors, "write_errors_total", COUNTER,                          \
     "Writes to the backing that failed.")                                    \
  X (B, remote, "", NONE, "A remote NBD export, not a file.")                \
  X (B, remote_insecure, "", NONE,                                            \
     "A remote export reached over TCP without TLS.")                         \
  X (S, remote_state, "", NONE,                                               \
     "connected, reconnecting or down for a remote backing; none for a "      \
     "file.")                                                                 \
  X (B, remote_connected, "remote_connected", GAUGE,                          \
     "1 while a remote backing is connected (0 for files).")                  \
  X (U, reconnects, "remote_reconnects_total", COUNTER,                       \
     "New connections made to the remote after one was lost.")               \
  X (U, inflight, "remote_inflight_requests", GAUGE,                          \
     "Requests sent to the remote and not yet answered.")                     \
  X (U, read_count, "remote_reads_total", COUNTER,                            \
     "Read requests the remote answered.")                                    \
  X (U, read_usec_sum, "remote_read_microseconds_total", COUNTER,             \
     "Time the remote took to answer them, summed (microseconds).")           \
  X (U, read_usec_p50, "remote_read_p50_microseconds", GAUGE,                 \
     "Median remote read latency since attach (microseconds, +-10%).")       \
  X (U, read_usec_p99, "remote_read_p99_microseconds", GAUGE,                 \
     "99th percentile remote read latency since attach (microseconds).")

#define GS_BACKING_TYPE_U uint64_t
#define GS_BACKING_TYPE_I unsigned
#define GS_BACKING_TYPE_B bool
#define GS_BACKING_TYPE_S const char *

struct gs_backing_info {
  char path[PATH_MAX];
#define GS_BACKING_MEMBER(type, field, metric, kind, help) \
  GS_BACKING_TYPE_##type field;
  GS_BACKING_FIELDS (GS_BACKING_MEMBER)
#undef GS_BACKING_MEMBER
};

struct gs_drain_status {
  bool running;
  bool migrate;               /* migrate: source is removed at the end */
  char source[PATH_MAX];
  char target[PATH_MAX];      /* empty: anywhere (RAM first) */
  uint64_t total;             /* live slots on the source at the start */
  uint64_t done;              /* slots moved so far */
  uint64_t skipped;           /* slots that changed under the drain */
  double bytes_per_sec;
  double seconds;
  int result;                 /* 0, or -errno of the last finished drain */
  char message[2 * PATH_MAX + 256];  /* its error message, if any */
};

/* gs_backing_add - attach the file or block device @path, or the remote
 * NBD export that the libnbd URI @path names (nbd://HOST[:PORT]/EXPORT,
 * nbds://... with TLS, nbd+unix:///EXPORT?socket=PATH, nbds+unix://...):
 * its size is the export's (@size must be 0), TLS settings and
 * remote-timeout come from the device's configuration.  A missing
 * regular file is created (mode 0600, O_EXCL) with @size bytes; @size 0
 * uses an existing file's or device's size, and another size is refused.
 * Refused: a path with a symbolic link in it; an existing file not owned
 * by root or this process's user, or with group or other permission bits,
 * or with other hard links; a block device that is mounted, active swap,
 * held by a stacked device or opened exclusively elsewhere; file systems
 * that cannot back swap safely (FUSE, NFS, tmpfs, ramfs), also under a
 * loop device.  A file this call created is removed if it fails.
 * Context: may sleep.
 * Return: 0, -EEXIST (already attached), -EINVAL, -ENOSPC (too many),
 * or -errno from opening it.
 */
int gs_backing_add (struct gs_device *dev, const char *path, uint64_t size,
                    char *err, size_t errlen);

/* gs_backing_remove - detach @path; refused with -EBUSY while it holds live
 * slots or is being drained.
 * Context: may sleep.  Return: 0, -ENOENT, -EBUSY.
 */
int gs_backing_remove (struct gs_device *dev, const char *path,
                       char *err, size_t errlen);

/* gs_backing_withdraw - undo a gs_backing_add for a command that failed
 * after it: detach @path as gs_backing_remove does and, if that
 * gs_backing_add created its file and no page was ever written to it,
 * remove the file too.
 * Context: may sleep.  Return: 0, -ENOENT, -EBUSY.
 */
int gs_backing_withdraw (struct gs_device *dev, const char *path,
                         char *err, size_t errlen);

/* gs_backing_list - describe up to @max backings into @out.
 * Context: takes the backing list lock.  Return: the number of backings.
 */
unsigned gs_backing_list (struct gs_device *dev, struct gs_backing_info *out,
                          unsigned max);

/* gs_drain_start - start emptying @source in the background: live pages
 * are read in physical order and re-homed into RAM (while under its limit)
 * or other healthy backings, or only into @target if it is not NULL.  With
 * @migrate, @source is removed at the end if it is empty.
 * Context: starts a thread.
 * Return: 0, -EBUSY (a drain is running), -ENOENT, -EINVAL.
 */
int gs_drain_start (struct gs_device *dev, const char *source,
                    const char *target, bool migrate,
                    char *err, size_t errlen);

/* gs_drain_wait - wait for the running drain (if any) to end.
 * Context: may sleep.  Return: its result (0 or -errno).
 */
int gs_drain_wait (struct gs_device *dev);

/* gs_drain_cancel - ask the running drain to stop after its current batch.
 * Context: any.  Return: 0, or -ENOENT if none runs.
 */
int gs_drain_cancel (struct gs_device *dev);

/* gs_drain_get_status - progress of the running or last drain.
 * Context: any.  Return: nothing.
 */
void gs_drain_get_status (struct gs_device *dev, struct gs_drain_status *st);

/* gs_writeback - move up to @pages of the coldest RAM pages to backing now
 * (0: down to the low watermark).
 * Context: may sleep; runs in the caller's thread.
 * Return: pages written back, or -ENOSPC (no healthy backing with room).
 */
int64_t gs_writeback (struct gs_device *dev, uint64_t pages);

/* gs_relocate_slot - move the page in physical slot @pslot of @source to
 * another place (RAM, or another backing if RAM is full) in O(1), using
 * the reverse map.
 * Context: may sleep.
 * Return: 0, -ENOENT (no live page there), -ENOSPC, -EIO.
 */
int gs_relocate_slot (struct gs_device *dev, const char *source,
                      uint64_t pslot);

/* gs_backing_io_check - whether backing I/O can use io_uring in this
 * process: sets a ring up and frees it at once.  Without io_uring every
 * batch of backing reads and writes is done with pread/pwrite instead
 * (correct, slower); front ends call this once at start to say so.  Rings
 * are per thread and made on first use, so a later failure (ENOMEM,
 * EMFILE) is not seen here but in the statistics (io_uring_failures,
 * io_uring_fallback_batches, io_uring_last_error).
 * Context: may sleep.
 * Return: 0; -ENOTSUP when GHOSTSWAP_IO_URING=0 turns io_uring off; else
 * the -errno of io_uring_setup (-ENOSYS or -EPERM: a seccomp profile or
 * kernel.io_uring_disabled; -ENOMEM, -EMFILE).
 */
int gs_backing_io_check (void);

/* Fault injection, for tests: make I/O to physical slots [@first, @last] of
 * @path fail.  Kinds: "read" (EIO), "write" (EIO), "enospc" (writes fail
 * with ENOSPC), "off" (clear all faults on @path).  Only allowed when the
 * device was configured with fault-injection=true.
 * Context: any.  Return: 0, -EPERM, -ENOENT, -EINVAL.
 */
int gs_fault_set (struct gs_device *dev, const char *path, const char *kind,
                  uint64_t first, uint64_t last);

#endif /* GHOSTSWAP_BACKING_H */
