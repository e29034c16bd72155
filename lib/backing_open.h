/* ghostswap: opening a backing file or block device safely.
 *
 * The server runs as root and writes swapped memory (keys, passwords,
 * anyone's data) to its backings, so a backing is opened only when it is
 * certainly what the administrator meant:
 *  - no symbolic link anywhere in the path (openat2 RESOLVE_NO_SYMLINKS,
 *    else a component-by-component O_NOFOLLOW walk);
 *  - identity (device, inode, type, size) from fstat of the descriptor
 *    used for I/O, which is the one and only open of it;
 *  - an existing regular file is owned by root or the server's user, has
 *    no group or other permission bits and one name (no hard links);
 *  - a new file is created O_EXCL | O_NOFOLLOW, mode 0600, and removed
 *    again if anything later fails;
 *  - a block device is not mounted, not active swap, not held by a
 *    device-mapper, RAID or other stacked device, and is opened O_EXCL
 *    (so nobody else can claim it while we hold it); a regular file is
 *    locked (flock LOCK_EX) against another ghostswap using it;
 *  - a size given for an existing file or device must be its size;
 *  - no file system that cannot back swap (FUSE, NFS, SMB, tmpfs, ramfs),
 *    directly or under a loop device.
 */
#ifndef GHOSTSWAP_BACKING_OPEN_H
#define GHOSTSWAP_BACKING_OPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct gs_backing_file {
  int fd;                     /* O_RDWR | O_DIRECT | O_CLOEXEC */
  struct stat st;             /* fstat of fd */
  uint64_t bytes;             /* the file's or the device's size */
  bool created;               /* this open created the file */
};

/* gs_backing_file_open - open @path as a backing, or create it with @size
 * bytes if it is missing and @size is not 0, refusing anything listed
 * above.
 * Context: may sleep.
 * Return: 0 and *@f, or -errno with a one-line message naming @path and
 * the reason in @err (nothing created is left behind).
 */
int gs_backing_file_open (const char *path, uint64_t size,
                          struct gs_backing_file *f, char *err, size_t errlen);

/* gs_backing_file_remove - remove the file that gs_backing_file_open
 * created at @path, if @path (resolved without symbolic links) is still
 * that file (@dev, @ino).
 * Context: may sleep.
 * Return: 0, or -errno (-ESTALE: @path is now another file, left alone).
 */
int gs_backing_file_remove (const char *path, dev_t dev, ino_t ino);

#endif /* GHOSTSWAP_BACKING_OPEN_H */
