/* ghostswap: one backing device (see backing_impl.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backing_impl.h"
#include "backing_open.h"
#include "cleanup.h"
#include "errmsg.h"
#include "ghostswap/config.h"

/* gs_backing_open - see backing_impl.h. */
int
gs_backing_open (const char *path, uint64_t size, unsigned id, bool punch,
                 struct gs_backing **bp, char *err, size_t errlen)
{
  struct gs_backing_file f;
  struct gs_backing *b;
  struct stat st;
  uint64_t bytes;
  int fd, r;

  r = gs_backing_file_open (path, size, &f, err, errlen);
  if (r < 0)
    return r;
  fd = f.fd;
  st = f.st;
  bytes = f.bytes;

  b = calloc (1, sizeof *b);
  if (b)
    b->rmap = calloc (bytes / GS_SLOT_SIZE, GS_RMAP_BYTES);
  if (!b || !b->rmap) {
    free (b);
    close (fd);
    if (f.created)
      gs_backing_file_remove (path, st.st_dev, st.st_ino);
    return gs_errmsg (err, errlen, -ENOMEM, "backing: %s: out of memory", path);
  }
  b->id = id;
  strcpy (b->path, path);
  b->fd = fd;
  b->block_device = S_ISBLK (st.st_mode);
  b->st_dev = st.st_dev;
  b->st_ino = st.st_ino;
  b->st_rdev = st.st_rdev;
  b->punch = punch && !b->block_device;
  b->created = f.created;
  b->nslots = bytes / GS_SLOT_SIZE;
  b->healthy = true;
  pthread_mutex_init (&b->lock, NULL);
  *bp = b;
  return 0;
}

/* gs_backing_same - see backing_impl.h. */
bool
gs_backing_same (const struct gs_backing *a, const struct gs_backing *b)
{
  if (a->block_device || b->block_device)
    return a->block_device && b->block_device && a->st_rdev == b->st_rdev;
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* gs_backing_close - see backing_impl.h. */
void
gs_backing_close (struct gs_backing *b)
{
  if (!b)
    return;
  close (b->fd);
  free (b->rmap);
  pthread_mutex_destroy (&b->lock);
  free (b);
}

static uint64_t
rmap_get (const struct gs_backing *b, uint64_t pslot)
{
  const unsigned char *p = b->rmap + pslot * GS_RMAP_BYTES;
  uint64_t v = 0;
  unsigned i;

  for (i = 0; i < GS_RMAP_BYTES; i++)
    v |= (uint64_t) p[i] << (8 * i);
  return v;
}

static void
rmap_set (struct gs_backing *b, uint64_t pslot, uint64_t v)
{
  unsigned char *p = b->rmap + pslot * GS_RMAP_BYTES;
  unsigned i;

  for (i = 0; i < GS_RMAP_BYTES; i++)
    p[i] = (unsigned char) (v >> (8 * i));
}

/* gs_backing_alloc - see backing_impl.h. */
uint64_t
gs_backing_alloc (struct gs_backing *b, const uint64_t *owners, uint64_t n,
                  uint64_t *first)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t p, scanned, run;

  if (__atomic_load_n (&b->draining, __ATOMIC_RELAXED)
      || !__atomic_load_n (&b->healthy, __ATOMIC_RELAXED)
      || __atomic_load_n (&b->used, __ATOMIC_RELAXED) >= b->nslots)
    return 0;
  /* Next fit: the first free slot from the cursor on, wrapping once. */
  p = b->cursor < b->nslots ? b->cursor : 0;
  for (scanned = 0; scanned < b->nslots; scanned++) {
    if (rmap_get (b, p) == GS_RMAP_FREE)
      break;
    if (++p == b->nslots)
      p = 0;
  }
  if (scanned == b->nslots)
    return 0;
  for (run = 0; run < n && p + run < b->nslots
         && rmap_get (b, p + run) == GS_RMAP_FREE; run++)
    rmap_set (b, p + run, owners[run] + 1);
  b->cursor = p + run;
  __atomic_add_fetch (&b->used, run, __ATOMIC_RELAXED);
  *first = p;
  return run;
}

/* gs_backing_free - see backing_impl.h. */
void
gs_backing_free (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);

  rmap_set (b, pslot, GS_RMAP_FREE);
  __atomic_sub_fetch (&b->used, 1, __ATOMIC_RELAXED);
}

/* gs_backing_punch - see backing_impl.h. */
void
gs_backing_punch (struct gs_backing *b, uint64_t pslot, uint64_t n)
{
  if (b->punch)
    fallocate (b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
               (off_t) (pslot * GS_SLOT_SIZE), (off_t) (n * GS_SLOT_SIZE));
}

/* gs_backing_owner - see backing_impl.h. */
bool
gs_backing_owner (struct gs_backing *b, uint64_t pslot, uint64_t *slot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v;

  if (pslot >= b->nslots)
    return false;
  v = rmap_get (b, pslot);
  if (v == GS_RMAP_FREE)
    return false;
  *slot = v - 1;
  return true;
}

/* gs_backing_next_used - see backing_impl.h. */
size_t
gs_backing_next_used (struct gs_backing *b, uint64_t from, uint64_t *pslots,
                      uint64_t *owners, size_t max)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  size_t n = 0;
  uint64_t p, v;

  for (p = from; p < b->nslots && n < max; p++) {
    v = rmap_get (b, p);
    if (v != GS_RMAP_FREE) {
      pslots[n] = p;
      owners[n] = v - 1;
      n++;
    }
  }
  return n;
}

static bool
fault_hits (struct gs_backing *b, enum gs_fault_kind k, uint64_t first,
            uint64_t n)
{
  return b->fault[k].on && first <= b->fault[k].last
    && first + n - 1 >= b->fault[k].first;
}

/* gs_backing_prep - see backing_impl.h. */
void
gs_backing_prep (struct gs_backing *b, struct gs_io *io, bool write,
                 void *buf, uint64_t pslot, uint32_t n)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);

  io->fd = b->fd;
  io->write = write;
  io->buf = buf;
  io->len = n * GS_SLOT_SIZE;
  io->offset = pslot * GS_SLOT_SIZE;
  io->res = 0;
  if (write && fault_hits (b, GS_FAULT_ENOSPC, pslot, n))
    io->res = -ENOSPC;
  else if (fault_hits (b, write ? GS_FAULT_WRITE : GS_FAULT_READ, pslot, n))
    io->res = -EIO;
}

/* gs_backing_account - see backing_impl.h. */
void
gs_backing_account (struct gs_backing *b, const struct gs_io *io)
{
  uint64_t pages = io->len / GS_SLOT_SIZE;

  if (io->write) {
    __atomic_add_fetch (&b->writes, pages, __ATOMIC_RELAXED);
    if (io->res != 0) {
      __atomic_add_fetch (&b->write_errors, 1, __ATOMIC_RELAXED);
      __atomic_store_n (&b->healthy, false, __ATOMIC_RELAXED);
    }
  }
  else {
    __atomic_add_fetch (&b->reads, pages, __ATOMIC_RELAXED);
    if (io->res != 0)
      __atomic_add_fetch (&b->read_errors, 1, __ATOMIC_RELAXED);
  }
}

/* gs_backing_read_page - see backing_impl.h. */
int
gs_backing_read_page (struct gs_backing *b, uint64_t pslot, void *buf)
{
  struct gs_io io;
  ssize_t r;

  gs_backing_prep (b, &io, false, buf, pslot, 1);
  if (io.res == 0) {
    r = pread (b->fd, buf, GS_SLOT_SIZE, (off_t) io.offset);
    if (r != GS_SLOT_SIZE)
      io.res = r < 0 ? -errno : -EIO;
  }
  gs_backing_account (b, &io);
  return io.res == 0 ? 0 : -EIO;
}
