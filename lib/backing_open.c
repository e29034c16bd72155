/* ghostswap: opening a backing file or block device safely (see
 * backing_open.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "backing_open.h"
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

#define ERR(r, ...) gs_errmsg (err, errlen, (r), __VA_ARGS__)

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

/* Read the first line of the small (sysfs or procfs) file @file into
 * @buf, without its newline.  Return: true if it could be read. */
static bool
read_line (const char *file, char *buf, size_t len)
{
  FILE *fp = fopen (file, "re");
  bool ok;

  if (!fp)
    return false;
  ok = fgets (buf, (int) len, fp) != NULL;
  fclose (fp);
  if (ok)
    buf[strcspn (buf, "\n")] = '\0';
  return ok;
}

/* A loop device's backing file must pass the same test. */
static const char *
unsafe_loop (dev_t rdev)
{
  char sys[128], file[PATH_MAX];
  struct statfs sfs;

  snprintf (sys, sizeof sys, "/sys/dev/block/%u:%u/loop/backing_file",
            major (rdev), minor (rdev));
  if (!read_line (sys, file, sizeof file))
    return NULL;
  if (statfs (file, &sfs) == 0)
    return unsafe_fs (sfs.f_type);
  return NULL;
}

/* Undo the octal escapes (\040 for a space...) of /proc/self/mountinfo and
 * /proc/swaps, in place. */
static void
unescape (char *s)
{
  char *o = s;

  for (; *s; s++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0'
        && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *o++ = (char) ((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    }
    else
      *o++ = *s;
  }
  *o = '\0';
}

/* Whether the block device @dev is mounted here (as the file system's
 * device number, or named as the mount's source): *@where gets the mount
 * point. */
static bool
mounted (dev_t dev, char *where, size_t len)
{
  FILE *fp = fopen ("/proc/self/mountinfo", "re");
  char *line = NULL, *save, *f[10], *sep, *source;
  size_t cap = 0;
  unsigned maj, min;
  bool hit = false;

  if (!fp)
    return false;
  while (!hit && getline (&line, &cap, fp) > 0) {
    int n;

    line[strcspn (line, "\n")] = '\0';
    /* id parent MAJ:MIN root mount-point options [optional...] - type
     * source super-options */
    sep = strstr (line, " - ");
    if (!sep)
      continue;
    *sep = '\0';
    n = 0;
    for (char *t = strtok_r (line, " ", &save); t && n < 5;
         t = strtok_r (NULL, " ", &save))
      f[n++] = t;
    if (n < 5)
      continue;
    if (sscanf (f[2], "%u:%u", &maj, &min) == 2 && makedev (maj, min) == dev)
      hit = true;
    else {
      /* "type source ...": a source in /dev may be our device (btrfs and
       * others report an anonymous device number of their own). */
      strtok_r (sep + 3, " ", &save);
      source = strtok_r (NULL, " ", &save);
      if (source && strncmp (source, "/dev/", 5) == 0) {
        struct stat st;

        unescape (source);
        hit = stat (source, &st) == 0 && S_ISBLK (st.st_mode)
          && st.st_rdev == dev;
      }
    }
    if (hit) {
      unescape (f[4]);
      snprintf (where, len, "%s", f[4]);
    }
  }
  free (line);
  fclose (fp);
  return hit;
}

/* Whether @st (a block device, or a regular file) is active swap. */
static bool
active_swap (const struct stat *st)
{
  FILE *fp = fopen ("/proc/swaps", "re");
  char *line = NULL;
  size_t cap = 0;
  bool hit = false;

  if (!fp)
    return false;
  /* "Filename Type Size Used Priority", then one line per swap area. */
  while (!hit && getline (&line, &cap, fp) > 0) {
    char *name = line, *end;
    struct stat s;

    if (line[0] != '/')
      continue;
    end = strpbrk (name, " \t");
    if (end)
      *end = '\0';
    unescape (name);
    if (stat (name, &s) != 0)
      continue;
    if (S_ISBLK (st->st_mode))
      hit = S_ISBLK (s.st_mode) && s.st_rdev == st->st_rdev;
    else
      hit = S_ISREG (s.st_mode) && s.st_dev == st->st_dev
        && s.st_ino == st->st_ino;
  }
  free (line);
  fclose (fp);
  return hit;
}

/* The first holder of block device @dev (device-mapper, md, bcache...
 * stacked on it) into @who.  Return: whether it has one. */
static bool
held (dev_t dev, char *who, size_t len)
{
  char dir[128];
  DIR *d;
  struct dirent *e;
  bool hit = false;

  snprintf (dir, sizeof dir, "/sys/dev/block/%u:%u/holders", major (dev),
            minor (dev));
  d = opendir (dir);
  if (!d)
    return false;
  while (!hit && (e = readdir (d)) != NULL)
    if (e->d_name[0] != '.') {
      snprintf (who, len, "%s", e->d_name);
      hit = true;
    }
  closedir (d);
  return hit;
}

/* Refuse a block device that something else uses: mounted, active swap, or
 * held by a stacked device, or any of its partitions so.  (O_EXCL at open
 * refuses whatever this cannot see, such as a mount in another mount
 * namespace, with a less precise reason.) */
static int
check_device_free (const char *path, const struct stat *st, char *err,
                   size_t errlen)
{
  char dir[128], file[400], line[64], where[PATH_MAX], what[80];
  dev_t devs[65];
  unsigned ndevs = 0, maj, min, i;
  DIR *d;
  struct dirent *e;

  devs[ndevs++] = st->st_rdev;
  /* A whole disk's partitions are directories of its sysfs directory with
   * a "partition" file. */
  snprintf (dir, sizeof dir, "/sys/dev/block/%u:%u", major (st->st_rdev),
            minor (st->st_rdev));
  d = opendir (dir);
  while (d && ndevs < sizeof devs / sizeof devs[0]
         && (e = readdir (d)) != NULL) {
    snprintf (file, sizeof file, "%s/%s/partition", dir, e->d_name);
    if (e->d_name[0] == '.' || access (file, F_OK) != 0)
      continue;
    snprintf (file, sizeof file, "%s/%s/dev", dir, e->d_name);
    if (read_line (file, line, sizeof line)
        && sscanf (line, "%u:%u", &maj, &min) == 2)
      devs[ndevs++] = makedev (maj, min);
  }
  if (d)
    closedir (d);

  for (i = 0; i < ndevs; i++) {
    struct stat part = *st;

    if (i == 0)
      what[0] = '\0';
    else
      snprintf (what, sizeof what, " (its partition %u:%u)",
                major (devs[i]), minor (devs[i]));
    part.st_rdev = devs[i];
    if (mounted (devs[i], where, sizeof where))
      return ERR (-EBUSY, "backing: %s is a mounted block device%s "
                  "(mounted on %s): refused", path, what, where);
    if (active_swap (&part))
      return ERR (-EBUSY, "backing: %s is an active swap device%s "
                  "(swapoff it first): refused", path, what);
    if (held (devs[i], where, sizeof where))
      return ERR (-EBUSY, "backing: %s is held by %s%s (a device-mapper, "
                  "RAID or other device stacked on it): refused", path,
                  where, what);
  }
  return 0;
}

/* Where the symbolic link @name in @dirfd points, for a message. */
static const char *
link_target (int dirfd, const char *name, char *buf, size_t len)
{
  ssize_t n = readlinkat (dirfd, name, buf, len - 1);

  buf[n > 0 ? n : 0] = '\0';
  return n > 0 ? buf : "?";
}

/* Open directory @dir (the part of @path before its last '/') without
 * following a symbolic link in any component, one component at a time.
 * Return: an O_PATH descriptor, or -errno with a message naming the
 * component at fault. */
static int
walk_dir (const char *path, const char *dir, char *err, size_t errlen)
{
  char prefix[PATH_MAX], comp[NAME_MAX + 1];
  const char *p = dir, *q;
  struct stat st;
  int cur, next, e;
  size_t plen;

  cur = open (dir[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (cur < 0)
    return ERR (-errno, "backing: %s: %s", path, strerrordesc_np (errno));
  plen = dir[0] == '/' ? 1 : 0;
  memcpy (prefix, dir, plen);
  prefix[plen] = '\0';
  for (;;) {
    while (*p == '/')
      p++;
    if (*p == '\0')
      return cur;
    q = strchrnul (p, '/');
    if ((size_t) (q - p) > NAME_MAX) {
      close (cur);
      return ERR (-ENAMETOOLONG, "backing: %s: a name in it is too long",
                  path);
    }
    memcpy (comp, p, (size_t) (q - p));
    comp[q - p] = '\0';
    plen = (size_t) (q - dir);
    memcpy (prefix, dir, plen);
    prefix[plen] = '\0';
    next = openat (cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      e = errno;
      if (fstatat (cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0
          && S_ISLNK (st.st_mode)) {
        char to[PATH_MAX];

        link_target (cur, comp, to, sizeof to);
        close (cur);
        return ERR (-ELOOP, "backing: %s: %s is a symbolic link (to %s): "
                    "refused, a path with a symbolic link in it may lead "
                    "anywhere; give the real path", path, prefix, to);
      }
      close (cur);
      if (e == ENOENT)
        return ERR (-ENOENT, "backing: %s: directory %s does not exist "
                    "(it is not created)", path, prefix);
      return ERR (-e, "backing: %s: %s: %s", path, prefix,
                  strerrordesc_np (e));
    }
    close (cur);
    cur = next;
    p = q;
  }
}

/* Open directory @dir of @path with no symbolic link in it: openat2's
 * RESOLVE_NO_SYMLINKS where the kernel has it (Linux 5.6), else (and to
 * name the link at fault) walk_dir. */
static int
open_dir (const char *path, const char *dir, char *err, size_t errlen)
{
  struct open_how how = {
    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
    .resolve = RESOLVE_NO_SYMLINKS,
  };
  long fd;
  int e;

  fd = syscall (SYS_openat2, AT_FDCWD, dir, &how, sizeof how);
  if (fd >= 0)
    return (int) fd;
  e = errno;
  if (e != ENOSYS && e != EPERM && e != E2BIG && e != ELOOP && e != ENOTDIR
      && e != ENOENT)
    return ERR (-e, "backing: %s: %s", path, strerrordesc_np (e));
  /* No openat2 (or a seccomp filter refusing it), or an error that the
   * walk describes better. */
  fd = walk_dir (path, dir, err, errlen);
  if (fd >= 0 && (e == ELOOP || e == ENOTDIR || e == ENOENT)) {
    /* The directory changed between the two: refuse rather than guess. */
    close ((int) fd);
    return ERR (-e, "backing: %s: the directories in it changed while it "
                "was being opened", path);
  }
  return (int) fd;
}

/* Remove @name in @dirfd if it is still (@dev, @ino). */
static int
remove_at (int dirfd, const char *name, dev_t dev, ino_t ino)
{
  struct stat st;

  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return -errno;
  if (st.st_dev != dev || st.st_ino != ino)
    return -ESTALE;
  return unlinkat (dirfd, name, 0) < 0 ? -errno : 0;
}

/* Split @path into its directory (into @dir) and its last component
 * (returned, inside @path).  Return: NULL if @path ends with '/'. */
static const char *
split (const char *path, char *dir, size_t len)
{
  const char *slash = strrchr (path, '/');

  if (!slash)
    snprintf (dir, len, ".");
  else if (slash == path)
    snprintf (dir, len, "/");
  else
    snprintf (dir, len, "%.*s", (int) (slash - path), path);
  return slash ? (slash[1] ? slash + 1 : NULL) : path;
}

/* Checks on an existing regular file: whose it is, who else may read it,
 * how many names it has. */
static int
check_file_ours (const char *path, const struct stat *st, char *err,
                 size_t errlen)
{
  uid_t me = geteuid ();

  if (st->st_uid != 0 && st->st_uid != me) {
    char buf[1024], name[300] = "";
    struct passwd pw, *res = NULL;

    if (getpwuid_r (st->st_uid, &pw, buf, sizeof buf, &res) == 0 && res)
      snprintf (name, sizeof name, " (%s)", pw.pw_name);
    return ERR (-EPERM, "backing: %s is owned by uid %u%s, neither root "
                "nor this server's user (uid %u): refused", path,
                (unsigned) st->st_uid, name, (unsigned) me);
  }
  if (st->st_mode & 077)
    return ERR (-EPERM, "backing: %s has mode %04o: group or others may "
                "read or write it (chmod 600 it): refused", path,
                (unsigned) (st->st_mode & 07777));
  if (st->st_nlink != 1)
    return ERR (-EPERM, "backing: %s has %ju hard links: another name of "
                "it may be a file that matters: refused", path,
                (uintmax_t) st->st_nlink);
  return 0;
}

/* Create @base in @dirfd with @size bytes.  Return: the descriptor or
 * -errno (nothing left behind). */
static int
create_file (const char *path, int dirfd, const char *base, uint64_t size,
             struct stat *st, char *err, size_t errlen)
{
  struct statfs sfs;
  const char *why;
  int fd, r;

  /* Check the file system before creating anything on it. */
  if (fstatfs (dirfd, &sfs) == 0 && (why = unsafe_fs (sfs.f_type)) != NULL)
    return ERR (-EINVAL, "backing: %s would be on %s, which cannot back "
                "swap safely", path, why);
  if (size == 0)
    return ERR (-ENOENT, "backing: %s does not exist (give a size, e.g. "
                "backing-size=, to create it)", path);
  if (size < GS_SLOT_SIZE)
    return ERR (-EINVAL, "backing: %s: a size of %" PRIu64 " bytes is "
                "smaller than one 4096-byte slot", path, size);
  fd = openat (dirfd, base, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW
               | O_CLOEXEC, 0600);
  if (fd < 0)
    return ERR (-errno, "backing: %s: create: %s", path,
                strerrordesc_np (errno));
  if (fstat (fd, st) < 0) {
    /* Made by the O_EXCL open just now. */
    r = -errno;
    unlinkat (dirfd, base, 0);
    close (fd);
    return ERR (r, "backing: %s: fstat: %s", path, strerrordesc_np (-r));
  }
  if (ftruncate (fd, (off_t) size) < 0) {
    r = -errno;
    remove_at (dirfd, base, st->st_dev, st->st_ino);
    close (fd);
    return ERR (r, "backing: %s: cannot size it to %" PRIu64 " bytes: %s",
                path, size, strerrordesc_np (-r));
  }
  return fd;
}

/* Open the existing @base in @dirfd (@st0: what fstatat saw) with no
 * symbolic link followed.  Return: the descriptor or -errno. */
static int
open_existing (const char *path, int dirfd, const char *base,
               const struct stat *st0, char *err, size_t errlen)
{
  int flags = O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, fd, e;

  if (S_ISLNK (st0->st_mode)) {
    char to[PATH_MAX];

    return ERR (-ELOOP, "backing: %s is a symbolic link (to %s): refused, "
                "it may lead anywhere; give the file or device itself",
                path, link_target (dirfd, base, to, sizeof to));
  }
  if (!S_ISREG (st0->st_mode) && !S_ISBLK (st0->st_mode))
    return ERR (-EINVAL, "backing: %s is neither a regular file nor a "
                "block device", path);
  if (S_ISBLK (st0->st_mode)) {
    e = check_device_free (path, st0, err, errlen);
    if (e < 0)
      return e;
    flags |= O_EXCL;            /* claim it: no mount or swapon meanwhile */
  }
  fd = openat (dirfd, base, flags);
  if (fd < 0) {
    e = errno;
    if (e == EBUSY)
      return ERR (-EBUSY, "backing: %s is in use (mounted, swap, or opened "
                  "exclusively by another program): refused", path);
    if (e == ELOOP)
      return ERR (-ELOOP, "backing: %s became a symbolic link while being "
                  "opened: refused", path);
    return ERR (-e, "backing: %s: %s", path, strerrordesc_np (e));
  }
  return fd;
}

/* gs_backing_file_open - see backing_open.h. */
int
gs_backing_file_open (const char *path, uint64_t size,
                      struct gs_backing_file *f, char *err, size_t errlen)
{
  char dir[PATH_MAX];
  const char *base, *why = NULL;
  struct stat st0;
  struct statfs sfs;
  int dirfd, fd, fl, r;

  memset (f, 0, sizeof *f);
  f->fd = -1;
  if (path[0] == '\0')
    return ERR (-EINVAL, "backing: an empty path");
  if (strlen (path) >= PATH_MAX)
    return ERR (-ENAMETOOLONG, "backing: path too long");
  base = split (path, dir, sizeof dir);
  if (!base)
    return ERR (-EINVAL, "backing: %s names a directory", path);
  dirfd = open_dir (path, dir, err, errlen);
  if (dirfd < 0)
    return dirfd;

  if (fstatat (dirfd, base, &st0, AT_SYMLINK_NOFOLLOW) < 0) {
    r = -errno;
    if (r != -ENOENT) {
      close (dirfd);
      return ERR (r, "backing: %s: %s", path, strerrordesc_np (-r));
    }
    fd = create_file (path, dirfd, base, size, &f->st, err, errlen);
    f->created = fd >= 0;
  }
  else
    fd = open_existing (path, dirfd, base, &st0, err, errlen);
  if (fd < 0) {
    close (dirfd);
    return fd;
  }

  /* From here on, only what the descriptor says counts. */
  if (fstat (fd, &f->st) < 0) {
    r = ERR (-errno, "backing: %s: fstat: %s", path, strerrordesc_np (errno));
    goto fail;
  }
  if (!f->created && (f->st.st_dev != st0.st_dev || f->st.st_ino != st0.st_ino
                      || (f->st.st_mode & S_IFMT) != (st0.st_mode & S_IFMT))) {
    r = ERR (-ESTALE, "backing: %s was replaced while being opened: "
             "refused", path);
    goto fail;
  }
  if (S_ISREG (f->st.st_mode)) {
    if (!f->created && (r = check_file_ours (path, &f->st, err, errlen)) < 0)
      goto fail;
    if (fstatfs (fd, &sfs) < 0) {
      r = ERR (-errno, "backing: %s: %s", path, strerrordesc_np (errno));
      goto fail;
    }
    why = unsafe_fs (sfs.f_type);
    f->bytes = (uint64_t) f->st.st_size;
  }
  else {
    why = unsafe_loop (f->st.st_rdev);
    if (ioctl (fd, BLKGETSIZE64, &f->bytes) < 0) {
      r = ERR (-errno, "backing: %s: BLKGETSIZE64: %s", path,
               strerrordesc_np (errno));
      goto fail;
    }
  }
  if (why) {
    r = ERR (-EINVAL, "backing: %s is on %s, which cannot back swap "
             "safely", path, why);
    goto fail;
  }
  if (!f->created && active_swap (&f->st)) {
    r = ERR (-EBUSY, "backing: %s is an active swap file (swapoff it "
             "first): refused", path);
    goto fail;
  }
  /* A file's counterpart of a block device's O_EXCL: two servers (or two
   * backings of one) writing one file would destroy each other's pages.
   * Advisory, so it keeps out other ghostswap processes and whoever else
   * asks for the lock; held until the descriptor is closed. */
  if (S_ISREG (f->st.st_mode) && flock (fd, LOCK_EX | LOCK_NB) < 0) {
    r = errno == EWOULDBLOCK
      ? ERR (-EBUSY, "backing: %s is in use (another program, perhaps "
             "another ghostswap, holds a lock on it): refused", path)
      : ERR (-errno, "backing: %s: flock: %s", path, strerrordesc_np (errno));
    goto fail;
  }
  if (!f->created && size != 0 && size != f->bytes) {
    r = ERR (-EINVAL, "backing: %s exists with %" PRIu64 " bytes, not the "
             "%" PRIu64 " bytes given (give no size, or its own, to use "
             "it as it is): refused", path, f->bytes, size);
    goto fail;
  }
  if (f->bytes / GS_SLOT_SIZE == 0) {
    r = ERR (-EINVAL, "backing: %s is smaller than one 4096-byte slot",
             path);
    goto fail;
  }
  /* Direct I/O on the same open file: no second open by name. */
  fl = fcntl (fd, F_GETFL);
  if (fl < 0 || fcntl (fd, F_SETFL, fl | O_DIRECT) < 0) {
    r = ERR (-errno, "backing: %s: cannot use direct I/O (O_DIRECT) on it: "
             "%s", path, strerrordesc_np (errno));
    goto fail;
  }
  close (dirfd);
  f->fd = fd;
  return 0;

 fail:
  if (f->created)
    remove_at (dirfd, base, f->st.st_dev, f->st.st_ino);
  close (fd);
  close (dirfd);
  return r;
}

/* gs_backing_file_remove - see backing_open.h. */
int
gs_backing_file_remove (const char *path, dev_t dev, ino_t ino)
{
  char dir[PATH_MAX], ignored[16];
  const char *base;
  int dirfd, r;

  if (strlen (path) >= PATH_MAX || !(base = split (path, dir, sizeof dir)))
    return -EINVAL;
  dirfd = open_dir (path, dir, ignored, sizeof ignored);
  if (dirfd < 0)
    return dirfd;
  r = remove_at (dirfd, base, dev, ino);
  close (dirfd);
  return r;
}
