/* ghostswap: page codec: same-filled detection and zstd, with one
 * compression and one decompression context per thread.
 *
 * Each context is made on the thread's first compression (or
 * decompression), sized exactly for 4 KiB inputs (a static zstd context
 * in its own anonymous mapping: ZSTD_estimateCCtxSize_usingCParams for a
 * 4 KiB source, ZSTD_estimateDCtxSize), counted in the device's memory
 * account, and unmapped when the thread exits, so that nbdkit's
 * connection threads leave nothing behind in malloc's per-thread arenas.
 * At level 1 (zstd's "fast" strategy) the hash table is cut to 2^11
 * entries: for a 4 KiB page that compresses the corpus as well (3.830x
 * against 3.829x) and makes the context 48 KiB instead of 72 KiB. */
#ifndef GHOSTSWAP_CODEC_H
#define GHOSTSWAP_CODEC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ghostswap/config.h"
#include "memacct.h"

/* A page that compresses to more than this is stored raw: past ~2990 bytes
 * compression saves too little to pay for decompressing on every read. */
#define GS_MAX_COMPRESSED 2990u

struct gs_codec_ctx;

struct gs_codec {
  int level;
  pthread_key_t key;          /* this thread's struct gs_codec_ctx */
  pthread_mutex_t lock;       /* protects ctxs */
  struct gs_codec_ctx *ctxs;  /* every thread's context, freed at destroy */
  size_t cctx_bytes;          /* one compression context's mapping */
  size_t dctx_bytes;          /* one decompression context's mapping */
  uint64_t ctx_bytes;         /* atomic: all threads' contexts now */
  struct gs_memacct *mem;     /* where contexts are accounted, or NULL */
};

/* gs_codec_init - set up per-thread contexts for zstd @level.
 * Context: any.  Return: 0 or -errno.
 */
int gs_codec_init (struct gs_codec *codec, int level);

/* gs_codec_set_account - account contexts made from now on in @mem.
 * Context: before the first codec call.  Return: nothing.
 */
void gs_codec_set_account (struct gs_codec *codec, struct gs_memacct *mem);

/* gs_codec_bytes - memory held by every thread's contexts now.
 * Context: any.  Return: bytes.
 */
uint64_t gs_codec_bytes (struct gs_codec *codec);

/* gs_codec_destroy - free every thread's contexts.
 * Context: no codec call may be running.  Return: nothing.
 */
void gs_codec_destroy (struct gs_codec *codec);

/* gs_codec_release_thread - free the calling thread's contexts now (a
 * thread that compresses only now and then: recompression between
 * passes); the next codec call makes them again.
 * Context: the calling thread makes no codec call meanwhile.  Return:
 * nothing.
 */
void gs_codec_release_thread (struct gs_codec *codec);

/* gs_page_same_filled - is @page one 8-byte word repeated?
 * Context: any.  Return: true and *@pattern set, or false.
 */
bool gs_page_same_filled (const void *page, uint64_t *pattern);

/* gs_fill_pattern - fill @page with the 8-byte @pattern.
 * Context: any.  Return: nothing.
 */
void gs_fill_pattern (void *page, uint64_t pattern);

/* gs_compress - compress one 4 KiB @page into this thread's scratch buffer.
 * Context: any thread; the result stays valid until this thread's next
 * gs_compress.
 * Return: the compressed length (1..GS_MAX_COMPRESSED) with *@out set, 0 if
 * the page does not compress to GS_MAX_COMPRESSED bytes (store it raw), or
 * -ENOMEM / -EIO.
 */
int gs_compress (struct gs_codec *codec, const void *page, const void **out);

/* gs_decompress - decompress the zstd frame at @src (at most @cap bytes
 * long) into the 4 KiB @page.
 * Context: any thread.
 * Return: 0, -EIO if the frame is corrupt or not one whole page, -ENOMEM.
 */
int gs_decompress (struct gs_codec *codec, void *page, const void *src,
                   size_t cap);

/* gs_frame_size - the length of the zstd frame at @src (at most @cap bytes).
 * Context: any.  Return: the length, or 0 if no valid frame is there.
 */
size_t gs_frame_size (const void *src, size_t cap);

#endif /* GHOSTSWAP_CODEC_H */
