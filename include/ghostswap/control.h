/* ghostswap: the control socket, served by every front end.
 *
 * A Unix stream socket (mode 0600) that accepts peers whose uid is root or
 * the server's own (SO_PEERCRED).  Each request is one line of words;
 * each answer is one line of JSON: {"ok":true,...} or
 * {"ok":false,"error":"..."}.  See docs/ghostswapctl.pod for the commands.
 */
#ifndef GHOSTSWAP_CONTROL_H
#define GHOSTSWAP_CONTROL_H

#include <stddef.h>

struct gs_device;
struct gs_control;

/* Longest request line accepted, newline included. */
#define GS_CONTROL_MAX_REQUEST 4096

/* Default socket directory; the socket is "ghostswap-PID.sock" there
 * unless control=PATH names another. */
#define GS_CONTROL_DEFAULT_DIR "/run/ghostswap"

/* gs_control_start - create the socket at @path (replacing a stale one)
 * and serve it from a thread of its own.
 * Context: may sleep; starts a thread (call after any fork).
 * Return: 0 and *@ctlp set, or -errno with a message in @err.
 */
int gs_control_start (struct gs_device *dev, const char *path,
                      struct gs_control **ctlp, char *err, size_t errlen);

/* gs_control_stop - stop serving, close and unlink the socket.
 * Context: may sleep.  Return: nothing.
 */
void gs_control_stop (struct gs_control *ctl);

/* gs_control_handle - answer one request line (without its newline) into
 * @out as one JSON line (with its newline).  The socket thread uses it;
 * it is exported for tests.
 * Context: may sleep (drains, writeback).
 * Return: the length of the answer (truncated to @outlen - 1).
 */
size_t gs_control_handle (struct gs_device *dev, const char *line,
                          char *out, size_t outlen);

#endif /* GHOSTSWAP_CONTROL_H */
