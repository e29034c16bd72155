/* ghostswapd: is our file in use by the kernel?
 *
 * The kernel cannot swap to a file on FUSE directly; it swaps to a loop
 * device whose backing file is ours.  Stopping the daemon under an active
 * swap device would fail every later swap-in: the processes owning those
 * pages would be killed.  These functions find such users by reading
 * /proc/swaps and the loop devices' backing_file in sysfs.  A loop device
 * is matched by the path the kernel reports for its backing file, which
 * is the path it was set up with (as seen from the root directory). */
#ifndef GHOSTSWAPD_SWAP_USE_H
#define GHOSTSWAPD_SWAP_USE_H

#include <stddef.h>

/* swap_use_active - is @file (an absolute path without symlinks) in use
 * as swap, itself or through a loop device?  The name of the first swap
 * area found (as /proc/swaps gives it, e.g. "/dev/loop0") goes into @what.
 * Context: any; reads /proc and /sys.
 * Return: 1 in use, 0 not, -errno if /proc/swaps cannot be read.
 */
int swap_use_active (const char *file, char *what, size_t whatlen);

/* swap_use_loops - list the loop devices attached to @file, as
 * "/dev/loop0 /dev/loop3", into @list.
 * Context: any; reads /sys.
 * Return: how many (0 if none or sysfs is missing).
 */
int swap_use_loops (const char *file, char *list, size_t listlen);

#endif /* GHOSTSWAPD_SWAP_USE_H */
