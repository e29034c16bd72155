/* ghostswap: the file or block device kind of backing (backing_impl.h's
 * struct gs_backing_ops): direct I/O, batched through io_uring. */
#ifndef GHOSTSWAP_BACKING_FILE_H
#define GHOSTSWAP_BACKING_FILE_H

#include "backing_impl.h"

/* gs_backing_file_attach - open (or create with @size bytes, mode 0600)
 * @path for direct I/O as backing number @id, refusing what
 * backing_open.h lists (symbolic links, others' files, busy devices, file
 * systems that cannot back swap, a size that is not the file's).
 * Context: may sleep.
 * Return: 0 and *@bp, or -errno with a message in @err.
 */
int gs_backing_file_attach (const char *path, uint64_t size, unsigned id,
                            const struct gs_backing_params *pm,
                            struct gs_backing **bp, char *err, size_t errlen);

#endif /* GHOSTSWAP_BACKING_FILE_H */
