/* ghostswap: the file or block device kind of backing (backing_file.h).
 *
 * A batch goes through the calling thread's io_uring (lib/uring.h, with
 * pread/pwrite as fallback); a single read (a client waiting for one page)
 * is a plain pread.  Freed ranges are punched out of a file (or zeroed in
 * place without punch-holes) and zeroed on a block device.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backing_file.h"
#include "backing_open.h"
#include "errmsg.h"
#include "ghostswap/backing.h"
#include "ghostswap/config.h"

static int
file_run (struct gs_backing *b, struct gs_io *ios, size_t n)
{
  ssize_t r;

  if (n == 1 && !ios[0].write) {
    if (ios[0].res != 0)
      return ios[0].res;
    r = pread (b->fd, ios[0].buf, ios[0].len, (off_t) ios[0].offset);
    if (r != (ssize_t) ios[0].len)
      ios[0].res = r < 0 ? -errno : -EIO;
    return ios[0].res;
  }
  return gs_uring_run (ios, n);
}

static int
file_wipe (struct gs_backing *b, uint64_t first, uint64_t n)
{
  uint64_t range[2] = { first * GS_SLOT_SIZE, n * GS_SLOT_SIZE };
  int mode = b->punch ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

  if (b->block_device)
    return ioctl (b->fd, BLKZEROOUT, range) < 0 ? -errno : 0;
  return fallocate (b->fd, mode, (off_t) range[0], (off_t) range[1]) < 0
    ? -errno : 0;
}

static bool
file_same (const struct gs_backing *a, const struct gs_backing *b)
{
  if (a->block_device || b->block_device)
    return a->block_device && b->block_device && a->st_rdev == b->st_rdev;
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static void
file_info (struct gs_backing *b, struct gs_backing_info *o)
{
  (void) b;
  o->remote_state = "none";
}

static void
file_close (struct gs_backing *b)
{
  if (b->fd >= 0)
    close (b->fd);
}

static const struct gs_backing_ops file_ops = {
  .run = file_run,
  .wipe = file_wipe,
  .same = file_same,
  .info = file_info,
  .close = file_close,
};

/* gs_backing_file_attach - see backing_file.h. */
int
gs_backing_file_attach (const char *path, uint64_t size, unsigned id,
                        const struct gs_backing_params *pm,
                        struct gs_backing **bp, char *err, size_t errlen)
{
  struct gs_backing_file f;
  struct gs_backing *b;
  int r;

  r = gs_backing_file_open (path, size, &f, err, errlen);
  if (r < 0)
    return r;
  b = gs_backing_new (path, f.bytes / GS_SLOT_SIZE, id, &file_ops, NULL);
  if (!b) {
    close (f.fd);
    if (f.created)
      gs_backing_file_remove (path, f.st.st_dev, f.st.st_ino);
    return gs_errmsg (err, errlen, -ENOMEM, "backing: %s: out of memory", path);
  }
  b->fd = f.fd;
  b->block_device = S_ISBLK (f.st.st_mode);
  b->st_dev = f.st.st_dev;
  b->st_ino = f.st.st_ino;
  b->st_rdev = f.st.st_rdev;
  b->punch = pm->punch && !b->block_device;
  b->created = f.created;
  *bp = b;
  return 0;
}
