/* ghostswapd: how FUSE requests reach the daemon: read(2)/writev(2) on
 * /dev/fuse, or io_uring command rings (fuse_ring.h).
 *
 * libfuse 3.14 mounts, negotiates INIT and dispatches every request to
 * the ghostfs operations on both transports; this module puts its own
 * read and writev under the session (fuse_session_custom_io) to count
 * requests, to see what the kernel offers at INIT, to add
 * FUSE_OVER_IO_URING to the INIT reply (libfuse 3.14 cannot: its
 * capability words are 32-bit) and to divert the replies of ring
 * requests into their ring entries.  See docs/architecture.md.
 *
 * The choice (transport=auto|uring|dev):
 *   dev    always /dev/fuse;
 *   auto   io_uring if the kernel offers it (the fuse module's
 *          enable_uring parameter is on) and the queues start, else
 *          /dev/fuse, with the reason at -v;
 *   uring  the same, but not getting it is a warning.
 * Whatever fails on the way (no parameter, off, io_uring_setup refused,
 * the kernel not offering the flag at INIT, a REGISTER refused) leaves
 * the connection on /dev/fuse with the reason logged: the kernel itself
 * falls back when a registration fails. */
#ifndef GHOSTSWAPD_FUSE_TRANSPORT_H
#define GHOSTSWAPD_FUSE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "fuse_ring.h"

struct fuse_session;
struct fuse_transport;

enum fuse_transport_kind {
  FUSE_TRANSPORT_AUTO,
  FUSE_TRANSPORT_URING,
  FUSE_TRANSPORT_DEV,
};

/* fuse_transport_parse - "auto", "uring" or "dev" into *@kind.
 * Context: any.  Return: 0, or -EINVAL.
 */
int fuse_transport_parse (const char *s, enum fuse_transport_kind *kind);

/* fuse_transport_start - take over the I/O of the mounted session @se
 * and, unless @asked is dev, prepare the io_uring queues (@opts); they
 * are registered once INIT has been answered.
 * Context: may sleep; after fuse_session_mount, before the loop.
 * Return: 0 and *@trp, or -errno (the session is then as it was).
 */
int fuse_transport_start (struct fuse_session *se,
                          enum fuse_transport_kind asked,
                          const struct fuse_ring_options *opts,
                          struct fuse_transport **trp);

/* fuse_transport_name - the transport serving now: "uring" or "dev".
 * Context: any.  Return: a static string.
 */
const char *fuse_transport_name (struct fuse_transport *tr);

/* fuse_transport_describe - the transport serving now, as
 * fuse_transport_name, and why it serves (a ring's failure, what made
 * /dev/fuse the choice, or that io_uring was offered) into @why (@len
 * bytes; @len 0: not asked).
 * Context: any; takes the transport's lock.  Return: a static string.
 */
const char *fuse_transport_describe (struct fuse_transport *tr, char *why,
                                     size_t len);

/* fuse_transport_format - the transport's statistics as "name value"
 * lines (the format of the engine's stats) into @buf.
 * Context: any.  Return: the length snprintf would have written.
 */
int fuse_transport_format (struct fuse_transport *tr, char *buf, size_t len);

/* fuse_transport_stop - stop the io_uring queues; call it once the file
 * system is unmounted and before the session is destroyed.
 * Context: may sleep.  Return: nothing.
 */
void fuse_transport_stop (struct fuse_transport *tr);

/* fuse_transport_free - free @tr (after fuse_transport_stop and
 * fuse_session_destroy, which no longer calls its hooks).
 * Context: any.  Return: nothing.
 */
void fuse_transport_free (struct fuse_transport *tr);

#endif /* GHOSTSWAPD_FUSE_TRANSPORT_H */
