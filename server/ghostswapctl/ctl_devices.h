/* ghostswapctl: the running devices, listed like zramctl does.
 *
 * A device is found by its control socket (see ctl_conn.h).  What the
 * socket does not say is found from the server process (SO_PEERCRED):
 * its program (ghostswapd: frontend "fuse", nbdkit: "nbd") and, for
 * ghostswapd, the FUSE mount among its arguments, whose file `swap` is
 * looked for in /proc/swaps and behind loop devices.
 */
#ifndef GHOSTSWAPCTL_DEVICES_H
#define GHOSTSWAPCTL_DEVICES_H

#include <stdbool.h>

struct ctl_list_opts {
  bool exact;                   /* --bytes */
  bool noheadings;
  bool json;
  const char *columns;          /* -o LIST, or NULL for the default */
};

/* ctl_check_columns - check a -o LIST (comma-separated column names,
 * case-insensitive; a leading '+' adds to the default columns).
 * Context: any.
 * Return: 0, or -1 with a message naming the bad column in @err.
 */
int ctl_check_columns (const char *list, char *err, size_t errlen);

/* ctl_list_devices - print one line per device: the sockets in @paths
 * (@n of them).  A socket nobody answers on is reported on standard
 * error and skipped.
 * Context: may sleep (one request per device).
 * Return: the exit status: 0, or 3 if no socket answered although some
 * were given.
 */
int ctl_list_devices (char **paths, int n, const struct ctl_list_opts *o);

#endif /* GHOSTSWAPCTL_DEVICES_H */
