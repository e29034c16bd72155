/* ghostswap: recompression of cold RAM pages (lib/recompress.c). */
#ifndef GHOSTSWAP_RECOMPRESS_H
#define GHOSTSWAP_RECOMPRESS_H

#include <stdint.h>

#include "core.h"

/* gs_recompress_init - set up recompression for @dev if its
 * recompress-level is not 0 (the codec at that level, the buffers).
 * Context: device creation.  Return: 0 or -ENOMEM.
 */
int gs_recompress_init (struct gs_device *dev);

/* gs_recompress_start - start the recompression thread if recompression
 * is on and the thread is not running.
 * Context: may sleep.  Return: 0 or -errno from pthread_create.
 */
int gs_recompress_start (struct gs_device *dev);

/* gs_recompress_stop - stop and join the thread if it runs.
 * Context: may sleep.  Return: nothing.
 */
void gs_recompress_stop (struct gs_device *dev);

/* gs_recompress_free - free what gs_recompress_init made.
 * Context: the thread stopped.  Return: nothing.
 */
void gs_recompress_free (struct gs_device *dev);

/* gs_recompress_codec_bytes - memory held by recompression's codec
 * contexts now (part of fixed_bytes).
 * Context: any.  Return: bytes.
 */
uint64_t gs_recompress_codec_bytes (struct gs_device *dev);

/* gs_recompress_fixed_bytes - recompression's own structure (buffers,
 * locks), 0 when off.
 * Context: any.  Return: bytes.
 */
uint64_t gs_recompress_fixed_bytes (struct gs_device *dev);

#endif /* GHOSTSWAP_RECOMPRESS_H */
