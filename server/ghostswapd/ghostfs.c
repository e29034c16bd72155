/* ghostswapd: the FUSE file system over the engine (see ghostfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fuse_transport.h"
#include "ghostfs.h"
#include "ghostswap/stats.h"

/* Names and attributes never change: the kernel may cache entries and the
 * root's and swap's attributes for long.  Only stats changes size, and
 * swap's st_blocks (what it stores); those are cached for a second. */
#define TIMEOUT_FIXED   3600.0
#define TIMEOUT_CHANGES 1.0

/* Largest range handed to the engine at once (its counts are 32-bit). */
#define CHUNK (1u << 30)

/* ---- Per-thread read buffers ----
 *
 * A read needs a buffer for the engine to fill.  Each FUSE worker thread
 * keeps one, grown to the largest read it has served (at most max_read,
 * 1 MiB), so a warm daemon allocates nothing per request.  The key's
 * destructor frees it when the thread exits or is cancelled. */

struct rbuf {
  size_t cap;
  char data[];
};

static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;

static void
rbuf_key_create (void)
{
  pthread_key_create (&rbuf_key, free);
}

/* rbuf_get - this thread's buffer of at least @size bytes, or NULL. */
static char *
rbuf_get (size_t size)
{
  struct rbuf *b;
  size_t cap = 128 * 1024;

  pthread_once (&rbuf_once, rbuf_key_create);
  b = pthread_getspecific (rbuf_key);
  if (b != NULL && b->cap >= size)
    return b->data;
  while (cap < size)
    cap *= 2;
  free (b);
  b = malloc (sizeof *b + cap);
  pthread_setspecific (rbuf_key, b);
  if (b == NULL)
    return NULL;
  b->cap = cap;
  return b->data;
}

/* ---- Attributes ---- */

static struct ghostfs *
fs_of (fuse_req_t req)
{
  return fuse_req_userdata (req);
}

/* stats_text - the statistics (the engine's, then the transport's) as
 * text in a malloc'd string (*@len bytes), or NULL. */
static char *
stats_text (struct ghostfs *fs, size_t *len)
{
  struct gs_stats st;
  char *text;
  size_t cap;
  int n, m = 0;

  gs_get_stats (fs->dev, &st);
  n = gs_stats_format (&st, NULL, 0);
  if (n < 0)
    return NULL;
  if (fs->transport != NULL)
    m = fuse_transport_format (fs->transport, NULL, 0);
  if (m < 0)
    return NULL;
  /* Room for counters that grow between the two calls. */
  cap = (size_t) n + (size_t) m + 256;
  text = malloc (cap);
  if (text == NULL)
    return NULL;
  n = gs_stats_format (&st, text, (size_t) n + 1);
  text[n] = '\0';
  if (fs->transport != NULL)
    m = fuse_transport_format (fs->transport, text + n, cap - (size_t) n);
  if (m < 0)
    m = 0;
  *len = (size_t) n + (size_t) m < cap ? (size_t) n + (size_t) m : cap - 1;
  return text;
}

/* fill_attr - the attributes of inode @ino into @st.
 * Return: 0 or -ENOENT. */
static int
fill_attr (struct ghostfs *fs, fuse_ino_t ino, struct stat *st)
{
  memset (st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_uid = fs->uid;
  st->st_gid = fs->gid;
  st->st_atim = st->st_mtim = st->st_ctim = fs->started;
  st->st_blksize = GS_SLOT_SIZE;

  switch (ino) {
  case GHOSTFS_INO_ROOT:
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  case GHOSTFS_INO_SWAP: {
    struct gs_stats s;

    gs_get_stats (fs->dev, &s);
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_size = (off_t) fs->size;
    st->st_blocks = (blkcnt_t) ((s.slots - s.slots_empty) * (GS_SLOT_SIZE / 512));
    return 0;
  }
  case GHOSTFS_INO_STATS: {
    size_t len = 0;
    char *text = stats_text (fs, &len);

    free (text);
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = (off_t) len;
    return 0;
  }
  default:
    return -ENOENT;
  }
}

static double
attr_timeout (fuse_ino_t ino)
{
  return ino == GHOSTFS_INO_ROOT ? TIMEOUT_FIXED : TIMEOUT_CHANGES;
}

/* ---- Operations ---- */

/* op_init - negotiate the connection: never a write-back cache. */
static void
op_init (void *userdata, struct fuse_conn_info *conn)
{
  struct ghostfs *fs = userdata;

  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  if (conn->capable & FUSE_CAP_ASYNC_DIO)
    conn->want |= FUSE_CAP_ASYNC_DIO;
  if (fs->max_background > 0)
    conn->max_background = fs->max_background;
  conn->time_gran = 1;
}

static void
op_lookup (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct fuse_entry_param e;
  fuse_ino_t ino;

  if (parent != GHOSTFS_INO_ROOT) {
    fuse_reply_err (req, ENOTDIR);
    return;
  }
  if (strcmp (name, GHOSTFS_SWAP_NAME) == 0)
    ino = GHOSTFS_INO_SWAP;
  else if (strcmp (name, GHOSTFS_STATS_NAME) == 0)
    ino = GHOSTFS_INO_STATS;
  else {
    fuse_reply_err (req, ENOENT);
    return;
  }
  memset (&e, 0, sizeof e);
  e.ino = ino;
  e.generation = 1;
  e.entry_timeout = TIMEOUT_FIXED;
  e.attr_timeout = attr_timeout (ino);
  fill_attr (fs_of (req), ino, &e.attr);
  fuse_reply_entry (req, &e);
}

static void
op_getattr (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct stat st;
  int r = fill_attr (fs_of (req), ino, &st);

  if (r < 0)
    fuse_reply_err (req, -r);
  else
    fuse_reply_attr (req, &st, attr_timeout (ino));
}

/* op_setattr - the files have fixed sizes, owners and modes, like device
 * nodes: truncating to another size fails with EINVAL (as truncate(2) on
 * a block device), chmod and chown with EPERM; setting times is accepted
 * and ignored (touch works). */
static void
op_setattr (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
            struct fuse_file_info *fi)
{
  struct ghostfs *fs = fs_of (req);
  struct stat st;
  int r = fill_attr (fs, ino, &st);

  if (r < 0) {
    fuse_reply_err (req, -r);
    return;
  }
  if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    fuse_reply_err (req, EPERM);
    return;
  }
  if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != st.st_size) {
    fuse_reply_err (req, ino == GHOSTFS_INO_ROOT ? EISDIR : EINVAL);
    return;
  }
  fuse_reply_attr (req, &st, attr_timeout (ino));
}

static void
op_readdir (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
            struct fuse_file_info *fi)
{
  static const struct { const char *name; fuse_ino_t ino; mode_t mode; } ents[] = {
    { ".", GHOSTFS_INO_ROOT, S_IFDIR },
    { "..", GHOSTFS_INO_ROOT, S_IFDIR },
    { GHOSTFS_SWAP_NAME, GHOSTFS_INO_SWAP, S_IFREG },
    { GHOSTFS_STATS_NAME, GHOSTFS_INO_STATS, S_IFREG },
  };
  char buf[1024];
  size_t used = 0;
  off_t i;

  if (ino != GHOSTFS_INO_ROOT) {
    fuse_reply_err (req, ENOTDIR);
    return;
  }
  if (size > sizeof buf)
    size = sizeof buf;
  for (i = off; i >= 0 && (size_t) i < sizeof ents / sizeof ents[0]; i++) {
    struct stat st = { .st_ino = ents[i].ino, .st_mode = ents[i].mode };
    size_t n = fuse_add_direntry (req, buf + used, size - used,
                                  ents[i].name, &st, i + 1);
    if (n > size - used)
      break;
    used += n;
  }
  fuse_reply_buf (req, buf, used);
}

/* op_open - swap: any access mode; the page cache is bypassed
 * (direct_io) always, or for O_DIRECT opens only if so configured.
 * O_TRUNC is refused (EINVAL) like truncate: the size is the device's.
 * stats: read-only; each open takes a snapshot that its reads return. */
static void
op_open (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct ghostfs *fs = fs_of (req);

  switch (ino) {
  case GHOSTFS_INO_SWAP:
    if (fi->flags & O_TRUNC) {
      fuse_reply_err (req, EINVAL);
      return;
    }
    fi->direct_io = fs->direct_io_always || (fi->flags & O_DIRECT) != 0;
    fi->keep_cache = 0;
    __atomic_add_fetch (&fs->swap_opens, 1, __ATOMIC_RELAXED);
    if (fuse_reply_open (req, fi) == -ENOENT)   /* interrupted: no release */
      __atomic_sub_fetch (&fs->swap_opens, 1, __ATOMIC_RELAXED);
    return;
  case GHOSTFS_INO_STATS: {
    size_t len = 0;
    char *text;

    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
      fuse_reply_err (req, EACCES);
      return;
    }
    text = stats_text (fs, &len);
    if (text == NULL) {
      fuse_reply_err (req, ENOMEM);
      return;
    }
    text[len] = '\0';
    fi->fh = (uint64_t) (uintptr_t) text;
    fi->direct_io = 1;          /* reads are not clipped to a stale size */
    if (fuse_reply_open (req, fi) == -ENOENT)
      free (text);
    return;
  }
  case GHOSTFS_INO_ROOT:
    fuse_reply_err (req, EISDIR);
    return;
  default:
    fuse_reply_err (req, ENOENT);
  }
}

static void
op_release (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct ghostfs *fs = fs_of (req);

  if (ino == GHOSTFS_INO_SWAP)
    __atomic_sub_fetch (&fs->swap_opens, 1, __ATOMIC_RELAXED);
  else if (ino == GHOSTFS_INO_STATS)
    free ((char *) (uintptr_t) fi->fh);
  fuse_reply_err (req, 0);
}

static void
op_read (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
         struct fuse_file_info *fi)
{
  struct ghostfs *fs = fs_of (req);
  uint64_t t0;
  char *buf;
  int r;

  if (ino == GHOSTFS_INO_STATS) {
    const char *text = (const char *) (uintptr_t) fi->fh;
    size_t len = strlen (text);

    if (off < 0 || (uint64_t) off >= len)
      fuse_reply_buf (req, NULL, 0);
    else
      fuse_reply_buf (req, text + off, size < len - (size_t) off
                      ? size : len - (size_t) off);
    return;
  }
  if (ino != GHOSTFS_INO_SWAP) {
    fuse_reply_err (req, EISDIR);
    return;
  }
  if (off < 0 || (uint64_t) off >= fs->size) {
    fuse_reply_buf (req, NULL, 0);             /* end of file */
    return;
  }
  if (size > fs->size - (uint64_t) off)
    size = (size_t) (fs->size - (uint64_t) off);
  buf = rbuf_get (size);
  if (buf == NULL) {
    fuse_reply_err (req, ENOMEM);
    return;
  }
  t0 = gs_latency_now ();
  r = gs_pread (fs->dev, buf, (uint32_t) size, (uint64_t) off);
  if (r < 0)
    fuse_reply_err (req, -r);
  else
    fuse_reply_buf (req, buf, size);
  gs_latency_record (fs->latency, GS_OP_READ, t0);
}

/* op_write - as on a block device: a write that starts at the end fails
 * with ENOSPC, one that crosses it is cut short there. */
static void
op_write (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
          off_t off, struct fuse_file_info *fi)
{
  struct ghostfs *fs = fs_of (req);
  uint64_t t0;
  int r;

  if (ino != GHOSTFS_INO_SWAP) {
    fuse_reply_err (req, EBADF);
    return;
  }
  if (size == 0) {
    fuse_reply_write (req, 0);
    return;
  }
  if (off < 0 || (uint64_t) off >= fs->size) {
    fuse_reply_err (req, ENOSPC);
    return;
  }
  if (size > fs->size - (uint64_t) off)
    size = (size_t) (fs->size - (uint64_t) off);
  t0 = gs_latency_now ();
  r = gs_pwrite (fs->dev, buf, (uint32_t) size, (uint64_t) off);
  if (r < 0)
    fuse_reply_err (req, -r);
  else
    fuse_reply_write (req, size);
  gs_latency_record (fs->latency, GS_OP_WRITE, t0);
}

/* op_fallocate - the loop driver turns discards into PUNCH_HOLE (the
 * slots become empty and their storage is freed: gs_trim) and write-zeroes
 * into ZERO_RANGE (slots read as zeroes and stay allocated: gs_zero), both
 * with KEEP_SIZE.  Plain allocation is not supported: the device is thin
 * and cannot reserve room (posix_fallocate then writes zeroes, which cost
 * nothing here).  Ranges are clipped to the device. */
static void
op_fallocate (fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
              off_t length, struct fuse_file_info *fi)
{
  struct ghostfs *fs = fs_of (req);
  uint64_t off, end, t0 = gs_latency_now ();
  int r = 0;

  if (ino != GHOSTFS_INO_SWAP) {
    fuse_reply_err (req, EOPNOTSUPP);
    return;
  }
  if (offset < 0 || length <= 0) {
    fuse_reply_err (req, EINVAL);
    return;
  }
  if ((mode & ~FALLOC_FL_KEEP_SIZE) != FALLOC_FL_PUNCH_HOLE
      && (mode & ~FALLOC_FL_KEEP_SIZE) != FALLOC_FL_ZERO_RANGE) {
    fuse_reply_err (req, EOPNOTSUPP);
    return;
  }
  off = (uint64_t) offset;
  end = (uint64_t) length > fs->size - off ? fs->size : off + (uint64_t) length;
  if (off >= fs->size)
    end = off;
  while (r == 0 && off < end) {
    uint32_t n = end - off > CHUNK ? CHUNK : (uint32_t) (end - off);

    if (mode & FALLOC_FL_PUNCH_HOLE)
      r = gs_trim (fs->dev, n, off);
    else
      r = gs_zero (fs->dev, n, off, 0);
    off += n;
  }
  fuse_reply_err (req, -r);
  gs_latency_record (fs->latency, mode & FALLOC_FL_PUNCH_HOLE
                     ? GS_OP_TRIM : GS_OP_ZERO, t0);
}

static void
op_flush (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  fuse_reply_err (req, 0);      /* nothing is buffered per open file */
}

static void
op_fsync (fuse_req_t req, fuse_ino_t ino, int datasync,
          struct fuse_file_info *fi)
{
  struct ghostfs *fs = fs_of (req);     /* not after the reply frees req */
  uint64_t t0 = gs_latency_now ();
  int r = ino == GHOSTFS_INO_SWAP ? gs_flush (fs->dev) : 0;

  fuse_reply_err (req, -r);
  if (ino == GHOSTFS_INO_SWAP)
    gs_latency_record (fs->latency, GS_OP_FLUSH, t0);
}

/* op_statfs - blocks are slots: free ones are the empty slots. */
static void
op_statfs (fuse_req_t req, fuse_ino_t ino)
{
  struct ghostfs *fs = fs_of (req);
  struct statvfs sv;
  struct gs_stats s;

  gs_get_stats (fs->dev, &s);
  memset (&sv, 0, sizeof sv);
  sv.f_bsize = GS_SLOT_SIZE;
  sv.f_frsize = GS_SLOT_SIZE;
  sv.f_blocks = s.slots;
  sv.f_bfree = sv.f_bavail = s.slots_empty;
  sv.f_files = 3;
  sv.f_namemax = 255;
  fuse_reply_statfs (req, &sv);
}

const struct fuse_lowlevel_ops ghostfs_ops = {
  .init = op_init,
  .lookup = op_lookup,
  .getattr = op_getattr,
  .setattr = op_setattr,
  .readdir = op_readdir,
  .open = op_open,
  .release = op_release,
  .read = op_read,
  .write = op_write,
  .flush = op_flush,
  .fsync = op_fsync,
  .fallocate = op_fallocate,
  .statfs = op_statfs,
};

/* ghostfs_init - see ghostfs.h. */
void
ghostfs_init (struct ghostfs *fs, struct gs_device *dev,
              bool direct_io_always, unsigned max_background)
{
  memset (fs, 0, sizeof *fs);
  fs->dev = dev;
  fs->size = gs_device_size (dev);
  fs->uid = geteuid ();
  fs->gid = getegid ();
  clock_gettime (CLOCK_REALTIME, &fs->started);
  fs->direct_io_always = direct_io_always;
  fs->max_background = max_background;
}

/* ghostfs_swap_opens - see ghostfs.h. */
unsigned
ghostfs_swap_opens (struct ghostfs *fs)
{
  return __atomic_load_n (&fs->swap_opens, __ATOMIC_RELAXED);
}
