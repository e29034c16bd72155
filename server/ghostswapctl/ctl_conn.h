/* ghostswapctl: a connection to a control socket, and where the sockets
 * are.
 *
 * A device's control socket is RUNDIR/NAME.sock, RUNDIR being
 * $GHOSTSWAP_RUNDIR or /run/ghostswap: the systemd units and the
 * generator name it after the device, and a server started by hand
 * without control=PATH names it after its process.
 */
#ifndef GHOSTSWAPCTL_CONN_H
#define GHOSTSWAPCTL_CONN_H

#include <stddef.h>
#include <sys/types.h>

#include "ctl_json.h"

struct ctl_conn {
  const char *path;
  int fd;
  pid_t peer;                   /* the server's PID (SO_PEERCRED), or 0 */
  char *buf;                    /* bytes read, not yet returned */
  size_t len, cap;
};

/* ctl_rundir - the directory of the control sockets.
 * Context: any.  Return: it (static or from the environment).
 */
const char *ctl_rundir (void);

/* ctl_list_sockets - the NAME.sock files of ctl_rundir, sorted, as
 * malloc'd paths in *@pathsp (free each and the array).
 * Context: any.
 * Return: how many (0 if the directory is missing), or -errno.
 */
int ctl_list_sockets (char ***pathsp);

/* ctl_socket_name - the device name of a socket path: its file name
 * without ".sock" (into @buf).
 * Context: any.  Return: @buf.
 */
const char *ctl_socket_name (const char *path, char *buf, size_t len);

/* ctl_conn_open - connect to the socket @path.
 * Context: may sleep.
 * Return: 0, or -errno (the connection is then closed).
 */
int ctl_conn_open (struct ctl_conn *c, const char *path);

/* ctl_conn_close - close it and free its buffer.
 * Context: any.  Return: nothing.
 */
void ctl_conn_close (struct ctl_conn *c);

/* ctl_conn_request - send @line (with its newline) and read one answer.
 * The raw line goes into *@rawp (malloc'd) if @rawp is not NULL.
 * Context: may sleep; a signal that sets *@stop interrupts the wait.
 * Return: the answer, an object with "ok" (json_object_put it), or NULL
 * with a message in @err.
 */
json_object *ctl_conn_request (struct ctl_conn *c, const char *line,
                               char **rawp, const volatile int *stop,
                               char *err, size_t errlen);

#endif /* GHOSTSWAPCTL_CONN_H */
