/* ghostswap: the remote NBD kind of backing (backing_impl.h's struct
 * gs_backing_ops), a client of any NBD server through libnbd. */
#ifndef GHOSTSWAP_BACKING_NBD_H
#define GHOSTSWAP_BACKING_NBD_H

#include "backing_impl.h"

/* gs_backing_is_remote - does @path name a remote export, a libnbd URI
 * (nbd://, nbds://, nbd+unix://, nbds+unix://, nbd+vsock://, ...)?
 * Context: any.  Return: true or false.
 */
bool gs_backing_is_remote (const char *path);

/* gs_backing_nbd_attach - connect to the export @uri names (TLS settings
 * and remote-timeout in @pm) as backing number @id: its size is the
 * export's, rounded down to 4 KiB.  Refused: an export that is read-only,
 * smaller than one page, or whose minimum block size does not divide
 * 4096.  Several connections are made when the server allows
 * multi-conn; a thread of the backing's own makes new ones when one is
 * lost (with back-off), and the threads doing I/O drive the connections.
 * Context: may sleep (up to remote-timeout to connect); starts a thread.
 * Return: 0 and *@bp, or -errno with a message in @err.
 */
int gs_backing_nbd_attach (const char *uri, unsigned id,
                           const struct gs_backing_params *pm,
                           struct gs_backing **bp, char *err, size_t errlen);

#endif /* GHOSTSWAP_BACKING_NBD_H */
