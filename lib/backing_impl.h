/* ghostswap: one backing device: physical slot allocator, reverse map,
 * I/O and injected faults. */
#ifndef GHOSTSWAP_BACKING_IMPL_H
#define GHOSTSWAP_BACKING_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ghostswap/backing.h"
#include "uring.h"

/* The reverse map holds 7 bytes per physical slot: the owning ghost slot
 * plus one (0: the physical slot is free).  Ghost slots need 51 bits; the
 * other 5 are spare, for a write generation or a short checksum later. */
#define GS_RMAP_BYTES 7u
#define GS_RMAP_FREE  0ull

enum gs_fault_kind { GS_FAULT_READ, GS_FAULT_WRITE, GS_FAULT_ENOSPC,
                     GS_FAULT_KINDS };

struct gs_backing {
  unsigned id;                /* index in the device's backing table, 0..254 */
  char path[PATH_MAX];
  int fd;                     /* O_DIRECT */
  bool block_device;
  dev_t st_dev;               /* identity: (st_dev, st_ino), or st_rdev */
  ino_t st_ino;               /* for a block device; the same file under */
  dev_t st_rdev;              /* two names is one backing */
  bool punch;                 /* punch freed ranges out of the file */
  bool created;               /* gs_backing_open created the file */
  uint64_t nslots;

  pthread_mutex_t lock;       /* protects rmap, cursor and faults */
  unsigned char *rmap;        /* nslots * GS_RMAP_BYTES */
  uint64_t cursor;            /* next-fit allocation cursor */
  struct { bool on; uint64_t first, last; } fault[GS_FAULT_KINDS];

  unsigned refs;              /* holders of a pointer found by path, who
                               * may not see it removed (device's
                               * backing_lock) */
  uint64_t used;              /* atomic: allocated physical slots */
  bool healthy;               /* atomic: false after a write error */
  bool draining;              /* atomic: no new allocations */
  uint64_t reads, writes, read_errors, write_errors;  /* atomic */
};

/* gs_backing_open - open (or create with @size bytes, mode 0600) @path for
 * direct I/O as backing number @id, refusing what backing_open.h lists
 * (symbolic links, others' files, busy devices, file systems that cannot
 * back swap, a size that is not the file's).
 * Context: may sleep.
 * Return: 0 and *@bp, or -errno with a message in @err.
 */
int gs_backing_open (const char *path, uint64_t size, unsigned id, bool punch,
                     struct gs_backing **bp, char *err, size_t errlen);

/* gs_backing_same - are @a and @b the same file or device?
 * Context: any.  Return: true or false.
 */
bool gs_backing_same (const struct gs_backing *a, const struct gs_backing *b);

/* gs_backing_close - close and free @b.
 * Context: no entry may point into @b.  Return: nothing.
 */
void gs_backing_close (struct gs_backing *b);

/* gs_backing_alloc - reserve a run of free physical slots, at most @n
 * long, for the ghost slots @owners[0..], recording them in the reverse
 * map.
 * Context: takes b->lock.
 * Return: the run's length (0 if @b is full) and *@first.
 */
uint64_t gs_backing_alloc (struct gs_backing *b, const uint64_t *owners,
                           uint64_t n, uint64_t *first);

/* gs_backing_free - release physical slot @pslot.
 * Context: takes b->lock.  Return: nothing.
 */
void gs_backing_free (struct gs_backing *b, uint64_t pslot);

/* gs_backing_punch - give [@pslot, @pslot + @n) back to the file system
 * (before freeing them), when punch-holes is on.
 * Context: may sleep.  Return: nothing (a failure only keeps the space).
 */
void gs_backing_punch (struct gs_backing *b, uint64_t pslot, uint64_t n);

/* gs_backing_owner - the ghost slot owning @pslot.
 * Context: takes b->lock.
 * Return: true and *@slot, or false if @pslot is free.
 */
bool gs_backing_owner (struct gs_backing *b, uint64_t pslot, uint64_t *slot);

/* gs_backing_next_used - the owners of up to @max allocated physical slots
 * from @from on, in physical order.
 * Context: takes b->lock.
 * Return: how many were found (pslots in @pslots, owners in @owners).
 */
size_t gs_backing_next_used (struct gs_backing *b, uint64_t from,
                             uint64_t *pslots, uint64_t *owners, size_t max);

/* gs_backing_prep - fill @io for @n pages at @pslot, @buf 4 KiB aligned;
 * an injected fault sets io->res so that the op is not submitted.
 * Context: takes b->lock.  Return: nothing.
 */
void gs_backing_prep (struct gs_backing *b, struct gs_io *io, bool write,
                      void *buf, uint64_t pslot, uint32_t n);

/* gs_backing_account - count a finished op, marking @b unhealthy after a
 * failed write.
 * Context: any.  Return: nothing.
 */
void gs_backing_account (struct gs_backing *b, const struct gs_io *io);

/* gs_backing_read_page - read physical slot @pslot into the 4 KiB-aligned
 * @buf.
 * Context: may sleep.  Return: 0 or -EIO.
 */
int gs_backing_read_page (struct gs_backing *b, uint64_t pslot, void *buf);

#endif /* GHOSTSWAP_BACKING_IMPL_H */
