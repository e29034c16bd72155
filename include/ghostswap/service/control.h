/* ghostswap service: the control socket server (the protocol:
 * ghostswap/control.h; the commands: docs/ghostswapctl.pod).
 */
#ifndef GHOSTSWAP_SERVICE_CONTROL_H
#define GHOSTSWAP_SERVICE_CONTROL_H

#include <stddef.h>

#include "ghostswap/control.h"

struct gs_device;
struct gs_control;
struct gs_metrics_source;

/* gs_control_start - create the socket at @path (replacing a stale one)
 * and serve @dev from a thread of its own.  @metrics (may be NULL: the
 * device's figures alone, no name label) describes the device for the
 * metrics command; it must outlive the server.
 * Context: may sleep; starts a thread (call after any fork).
 * Return: 0 and *@ctlp set, or -errno with a message in @err.
 */
int gs_control_start (struct gs_device *dev, const char *path,
                      struct gs_metrics_source *metrics,
                      struct gs_control **ctlp, char *err, size_t errlen);

/* gs_control_stop - stop serving, close and unlink the socket.
 * Context: may sleep.  Return: nothing.
 */
void gs_control_stop (struct gs_control *ctl);

/* gs_control_handle - answer one request line (without its newline) into
 * @out as one JSON line (with its newline).  The socket thread uses it;
 * it is exported for tests.  @metrics as for gs_control_start.
 * Context: may sleep (drains, writeback).
 * Return: the length of the answer (truncated to @outlen - 1).
 */
size_t gs_control_handle (struct gs_device *dev,
                          struct gs_metrics_source *metrics,
                          const char *line, char *out, size_t outlen);

#endif /* GHOSTSWAP_SERVICE_CONTROL_H */
