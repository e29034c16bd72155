/* ghostswapd, ghostswapctl: what is mounted on a directory, from
 * /proc/self/mountinfo (the mount table of our own namespace). */
#ifndef GHOSTSWAP_MOUNTINFO_H
#define GHOSTSWAP_MOUNTINFO_H

#include <stddef.h>

/* The file system type of ghostswapd's mounts. */
#define MOUNTINFO_GHOSTSWAP "fuse.ghostswap"

/* mountinfo_fstype - is @dir (an absolute path without symlinks) a mount
 * point?  The type of the topmost mount on it goes into @fstype.
 * Context: any; reads /proc.
 * Return: 1 mounted, 0 not, -errno if the table cannot be read.
 */
int mountinfo_fstype (const char *dir, char *fstype, size_t len);

#endif /* GHOSTSWAP_MOUNTINFO_H */
