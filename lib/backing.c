/* ghostswap: one backing device (see backing_impl.h). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include "backing_impl.h"
#include "cleanup.h"
#include "errmsg.h"
#include "ghostswap/config.h"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif
#ifndef CIFS_SUPER_MAGIC
#define CIFS_SUPER_MAGIC 0xff534d42
#endif
#ifndef SMB2_SUPER_MAGIC
#define SMB2_SUPER_MAGIC 0xfe534d42
#endif

/* Why a file system cannot hold swap pages, or NULL if it can.  Swapping to
 * a file served by a user-space process (FUSE: perhaps ghostswapd itself)
 * or over the network (NFS, SMB) can deadlock under reclaim; tmpfs and
 * ramfs hold their data in the very RAM that swap is meant to free. */
static const char *
unsafe_fs (long type)
{
  switch ((unsigned long) type) {
  case FUSE_SUPER_MAGIC: return "FUSE (a user-space file system, perhaps a ghostswap device)";
  case NFS_SUPER_MAGIC: return "NFS";
  case CIFS_SUPER_MAGIC: case SMB2_SUPER_MAGIC: case SMB_SUPER_MAGIC: return "SMB/CIFS";
  case TMPFS_MAGIC: return "tmpfs (RAM)";
  case RAMFS_MAGIC: return "ramfs (RAM)";
  default: return NULL;
  }
}

/* A loop device's backing file must pass the same test. */
static const char *
unsafe_loop (dev_t rdev)
{
  char sys[128], file[PATH_MAX];
  struct statfs sfs;
  FILE *fp;
  size_t len;

  snprintf (sys, sizeof sys, "/sys/dev/block/%u:%u/loop/backing_file",
            major (rdev), minor (rdev));
  fp = fopen (sys, "re");
  if (!fp)
    return NULL;
  len = fread (file, 1, sizeof file - 1, fp);
  fclose (fp);
  file[len] = '\0';
  file[strcspn (file, "\n")] = '\0';
  if (statfs (file, &sfs) == 0)
    return unsafe_fs (sfs.f_type);
  return NULL;
}

/* gs_backing_open - see backing_impl.h. */
int
gs_backing_open (const char *path, uint64_t size, unsigned id, bool punch,
                 struct gs_backing **bp, char *err, size_t errlen)
{
  struct gs_backing *b;
  struct stat st;
  struct statfs sfs;
  const char *why;
  uint64_t bytes;
  int fd, r;

  if (strlen (path) >= PATH_MAX)
    return gs_errmsg (err, errlen, -ENAMETOOLONG, "backing: path too long");
  if (stat (path, &st) < 0) {
    char dir[PATH_MAX];
    const char *slash;

    if (errno != ENOENT)
      return gs_errmsg (err, errlen, -errno, "backing: %s: %s", path, strerrordesc_np (errno));
    /* Check the file system before creating anything on it. */
    slash = strrchr (path, '/');
    if (!slash)
      strcpy (dir, ".");
    else if (slash == path)
      strcpy (dir, "/");
    else
      snprintf (dir, sizeof dir, "%.*s", (int) (slash - path), path);
    if (statfs (dir, &sfs) == 0 && (why = unsafe_fs (sfs.f_type)) != NULL)
      return gs_errmsg (err, errlen, -EINVAL,
                        "backing: %s would be on %s, which cannot back swap "
                        "safely", path, why);
    if (size == 0)
      return gs_errmsg (err, errlen, -ENOENT,
                   "backing: %s does not exist (give a size, e.g. "
                   "backing-size=, to create it)", path);
    fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
      return gs_errmsg (err, errlen, -errno, "backing: %s: create: %s", path,
                   strerrordesc_np (errno));
    if (ftruncate (fd, (off_t) size) < 0) {
      r = -errno;
      close (fd);
      unlink (path);
      return gs_errmsg (err, errlen, r, "backing: %s: cannot size it to %" PRIu64
                   " bytes: %s", path, size, strerrordesc_np (-r));
    }
    close (fd);
    if (stat (path, &st) < 0)
      return gs_errmsg (err, errlen, -errno, "backing: %s: %s", path, strerrordesc_np (errno));
  }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode))
    return gs_errmsg (err, errlen, -EINVAL,
                 "backing: %s is neither a regular file nor a block device",
                 path);
  if (S_ISREG (st.st_mode)) {
    if (statfs (path, &sfs) < 0)
      return gs_errmsg (err, errlen, -errno, "backing: %s: %s", path, strerrordesc_np (errno));
    why = unsafe_fs (sfs.f_type);
  }
  else
    why = unsafe_loop (st.st_rdev);
  if (why)
    return gs_errmsg (err, errlen, -EINVAL,
                 "backing: %s is on %s, which cannot back swap safely",
                 path, why);

  fd = open (path, O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd < 0)
    return gs_errmsg (err, errlen, -errno, "backing: %s: open with O_DIRECT: %s",
                 path, strerrordesc_np (errno));
  if (S_ISBLK (st.st_mode)) {
    if (ioctl (fd, BLKGETSIZE64, &bytes) < 0) {
      r = -errno;
      close (fd);
      return gs_errmsg (err, errlen, r, "backing: %s: BLKGETSIZE64: %s", path,
                   strerrordesc_np (-r));
    }
  }
  else
    bytes = (uint64_t) st.st_size;
  if (bytes / GS_SLOT_SIZE == 0) {
    close (fd);
    return gs_errmsg (err, errlen, -EINVAL,
                 "backing: %s is smaller than one 4096-byte slot", path);
  }

  b = calloc (1, sizeof *b);
  if (b) {
    b->rmap = calloc (bytes / GS_SLOT_SIZE, GS_RMAP_BYTES);
    b->crc = calloc (bytes / GS_SLOT_SIZE, GS_CRC_BYTES);
  }
  if (!b || !b->rmap || !b->crc) {
    if (b) {
      free (b->rmap);
      free (b->crc);
    }
    free (b);
    close (fd);
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
  b->nslots = bytes / GS_SLOT_SIZE;
  b->healthy = true;
  pthread_mutex_init (&b->lock, NULL);
  pthread_mutex_init (&b->scrub_lock, NULL);
  pthread_cond_init (&b->settled, NULL);
  b->scrub = true;
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
  free (b->crc);
  free (b->dirty_q);
  pthread_cond_destroy (&b->settled);
  pthread_mutex_destroy (&b->scrub_lock);
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

static uint64_t
rmap_state (uint64_t v)
{
  return v & GS_RMAP_STATE_MASK;
}

/* gs_backing_alloc - see backing_impl.h. */
uint64_t
gs_backing_alloc (struct gs_backing *b, const uint64_t *owners,
                  const uint32_t *crcs, const bool *zstd, uint64_t n,
                  uint64_t *first)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t p, scanned, run;

  if (__atomic_load_n (&b->draining, __ATOMIC_RELAXED)
      || !__atomic_load_n (&b->healthy, __ATOMIC_RELAXED)
      || __atomic_load_n (&b->used, __ATOMIC_RELAXED) + b->dirty >= b->nslots)
    return 0;               /* full, or only slots waiting for a scrub */
  /* Next fit: the first free slot from the cursor on, wrapping once.  A
   * pinned slot is not free, even if nothing points at it any more. */
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
         && rmap_get (b, p + run) == GS_RMAP_FREE; run++) {
    assert (owners[run] <= GS_RMAP_OWNER_MASK);
    rmap_set (b, p + run, owners[run] | GS_RMAP_RESERVED
              | (zstd[run] ? GS_RMAP_ZSTD : 0));
    b->crc[p + run] = crcs[run];
  }
  b->cursor = p + run;
  b->reserved += run;
  __atomic_add_fetch (&b->used, run, __ATOMIC_RELAXED);
  *first = p;
  return run;
}

#define DIRTY_QUEUE 8192u      /* where freed slots are, for the scrub */

/* A freed slot: DIRTY until scrubbed (keeping @pin), or FREE when
 * scrubbing is off.  Context: b->lock held. */
static void
__to_dirty (struct gs_backing *b, uint64_t pslot, uint64_t pin)
{
  b->crc[pslot] = 0;
  if (!b->scrub) {
    rmap_set (b, pslot, GS_RMAP_FREE | pin);
    return;
  }
  rmap_set (b, pslot, GS_RMAP_DIRTY | pin);
  __atomic_store_n (&b->dirty, b->dirty + 1, __ATOMIC_RELAXED);
  if (!b->dirty_q)
    b->dirty_q = malloc (DIRTY_QUEUE * sizeof *b->dirty_q);
  if (b->dirty_q && b->dirty_n < DIRTY_QUEUE)
    b->dirty_q[b->dirty_n++] = pslot;
  else
    b->dirty_lost = true;
}

/* One reservation fewer.  Context: b->lock held. */
static void
unreserve (struct gs_backing *b)
{
  assert (b->reserved > 0);
  if (--b->reserved == 0)
    pthread_cond_broadcast (&b->settled);
}

/* gs_backing_commit_slot - see backing_impl.h. */
void
gs_backing_commit_slot (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v = rmap_get (b, pslot);

  assert (rmap_state (v) == GS_RMAP_RESERVED);
  rmap_set (b, pslot, (v & ~GS_RMAP_STATE_MASK) | GS_RMAP_LIVE);
  unreserve (b);
}

/* gs_backing_release - see backing_impl.h. */
void
gs_backing_release (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);

  assert (rmap_state (rmap_get (b, pslot)) == GS_RMAP_RESERVED);
  __to_dirty (b, pslot, 0);
  unreserve (b);
  __atomic_sub_fetch (&b->used, 1, __ATOMIC_RELAXED);
}

/* gs_backing_free - see backing_impl.h. */
void
gs_backing_free (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v = rmap_get (b, pslot);

  assert (rmap_state (v) == GS_RMAP_LIVE);
  __to_dirty (b, pslot, v & GS_RMAP_PIN);
  __atomic_sub_fetch (&b->used, 1, __ATOMIC_RELAXED);
}

/* gs_backing_pin - see backing_impl.h. */
bool
gs_backing_pin (struct gs_backing *b, uint64_t pslot, uint64_t *owner,
                uint32_t *crc, bool *zstd)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v;

  if (pslot >= b->nslots)
    return false;
  v = rmap_get (b, pslot);
  if (rmap_state (v) != GS_RMAP_LIVE || (v & GS_RMAP_PIN))
    return false;
  rmap_set (b, pslot, v | GS_RMAP_PIN);
  *owner = v & GS_RMAP_OWNER_MASK;
  *crc = b->crc[pslot];
  *zstd = (v & GS_RMAP_ZSTD) != 0;
  return true;
}

/* gs_backing_unpin - see backing_impl.h. */
void
gs_backing_unpin (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v = rmap_get (b, pslot);

  assert (v & GS_RMAP_PIN);
  rmap_set (b, pslot, v & ~GS_RMAP_PIN);
}

/* gs_backing_set_draining - see backing_impl.h. */
void
gs_backing_set_draining (struct gs_backing *b, bool draining)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);

  __atomic_store_n (&b->draining, draining, __ATOMIC_RELAXED);
  while (draining && b->reserved > 0)
    pthread_cond_wait (&b->settled, &b->lock);
}

/* Wipe [@first, @first + @n): punch a file's range out (or zero it in
 * place when punch-holes is off), zero a block device's. */
static int
wipe (struct gs_backing *b, uint64_t first, uint64_t n)
{
  uint64_t range[2] = { first * GS_SLOT_SIZE, n * GS_SLOT_SIZE };
  int mode = b->punch ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

  if (b->block_device)
    return ioctl (b->fd, BLKZEROOUT, range) < 0 ? -errno : 0;
  return fallocate (b->fd, mode, (off_t) range[0], (off_t) range[1]) < 0
    ? -errno : 0;
}

static int
cmp_u64 (const void *a, const void *c)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) c;
  return x < y ? -1 : x > y;
}

/* gs_backing_scrub - see backing_impl.h. */
uint64_t
gs_backing_scrub (struct gs_backing *b, bool all)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->scrub_lock);
  CLEANUP_FREE uint64_t *v = NULL;
  uint64_t n = 0, cap = DIRTY_QUEUE, k, done = 0;

  /* Take the batch: the queue, or (after it overflowed, or for @all)
   * every DIRTY slot of the map.  They stay DIRTY, so nothing allocates
   * them while they are wiped. */
  pthread_mutex_lock (&b->lock);
  if (b->dirty == 0) {
    pthread_mutex_unlock (&b->lock);
    return 0;
  }
  if (all || b->dirty_lost)
    cap = b->dirty;
  v = malloc (cap * sizeof *v);
  if (!v) {
    pthread_mutex_unlock (&b->lock);
    return 0;
  }
  if (all || b->dirty_lost) {
    for (uint64_t p = 0; p < b->nslots && n < cap; p++)
      if (rmap_state (rmap_get (b, p)) == GS_RMAP_DIRTY)
        v[n++] = p;
    b->dirty_lost = false;
  }
  else
    for (k = 0; k < b->dirty_n; k++)
      v[n++] = b->dirty_q[k];
  b->dirty_n = 0;
  pthread_mutex_unlock (&b->lock);

  /* Wipe contiguous runs, then make each slot of a wiped run FREE. */
  qsort (v, n, sizeof *v, cmp_u64);
  for (k = 0; k < n; ) {
    uint64_t run = 1;
    int r;

    while (k + run < n && v[k + run] == v[k] + run)
      run++;
    r = wipe (b, v[k], run);
    pthread_mutex_lock (&b->lock);
    for (uint64_t j = k; j < k + run; j++) {
      uint64_t x = rmap_get (b, v[j]);
      if (rmap_state (x) != GS_RMAP_DIRTY)
        continue;               /* queued twice: done already */
      if (r < 0) {
        /* Stays DIRTY (never reused); a later full scan tries again. */
        b->dirty_lost = true;
        continue;
      }
      rmap_set (b, v[j], GS_RMAP_FREE | (x & GS_RMAP_PIN));
      __atomic_store_n (&b->dirty, b->dirty - 1, __ATOMIC_RELAXED);
      done++;
    }
    pthread_mutex_unlock (&b->lock);
    k += run;
  }
  __atomic_add_fetch (&b->scrubbed, done, __ATOMIC_RELAXED);
  return done;
}

/* gs_backing_wipe_all - see backing_impl.h. */
int
gs_backing_wipe_all (struct gs_backing *b)
{
  return wipe (b, 0, b->nslots);
}

/* gs_backing_next_live - see backing_impl.h. */
size_t
gs_backing_next_live (struct gs_backing *b, uint64_t from, uint64_t *pslots,
                      uint64_t *owners, uint32_t *crcs, bool *zstd, size_t max)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  size_t n = 0;
  uint64_t p, v;

  for (p = from; p < b->nslots && n < max; p++) {
    v = rmap_get (b, p);
    if (rmap_state (v) == GS_RMAP_LIVE) {
      pslots[n] = p;
      owners[n] = v & GS_RMAP_OWNER_MASK;
      crcs[n] = b->crc[p];
      zstd[n] = (v & GS_RMAP_ZSTD) != 0;
      n++;
    }
  }
  return n;
}

/* gs_backing_slot_crc - see backing_impl.h. */
uint32_t
gs_backing_slot_crc (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);

  assert (rmap_state (rmap_get (b, pslot)) == GS_RMAP_LIVE);
  return b->crc[pslot];
}

/* gs_backing_mark_bad - see backing_impl.h. */
bool
gs_backing_mark_bad (struct gs_backing *b, uint64_t pslot)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  uint64_t v = rmap_get (b, pslot);

  if (v & GS_RMAP_BAD)
    return false;
  rmap_set (b, pslot, v | GS_RMAP_BAD);
  return true;
}

/* gs_page_crc - see backing_impl.h.  ISA-L's crc32_iscsi is CRC-32C
 * without the final inversion; with it, this is the standard crc32c. */
uint32_t
gs_page_crc (const void *page)
{
  return ~crc32_iscsi ((unsigned char *) page, GS_SLOT_SIZE, 0xffffffffu);
}

/* gs_backing_check_pages - see backing_impl.h. */
void
gs_backing_check_pages (const void *buf, const uint32_t *crcs, size_t n,
                        int *res)
{
  const unsigned char *p = buf;
  size_t k;

  for (k = 0; k < n; k++)
    if (res[k] == 0 && gs_page_crc (p + k * GS_SLOT_SIZE) != crcs[k])
      res[k] = -GS_EINTEGRITY;
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
gs_backing_read_page (struct gs_backing *b, uint64_t pslot, void *buf,
                      uint32_t crc)
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
  if (io.res != 0)
    return -EIO;
  return gs_page_crc (buf) == crc ? 0 : -GS_EINTEGRITY;
}
