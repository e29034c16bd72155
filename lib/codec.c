/* ghostswap: page codec. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "codec.h"

struct gs_codec_ctx {
  struct gs_codec_ctx *prev, *next;   /* in codec->ctxs (codec->lock) */
  struct gs_codec *codec;
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
  unsigned char out[GS_MAX_COMPRESSED];
};

static void
ctx_free (struct gs_codec_ctx *ctx)
{
  ZSTD_freeCCtx (ctx->cctx);
  ZSTD_freeDCtx (ctx->dctx);
  free (ctx);
}

/* Thread exit: unlink and free this thread's context. */
static void
ctx_destructor (void *p)
{
  struct gs_codec_ctx *ctx = p;
  struct gs_codec *codec = ctx->codec;

  pthread_mutex_lock (&codec->lock);
  if (ctx->prev)
    ctx->prev->next = ctx->next;
  else
    codec->ctxs = ctx->next;
  if (ctx->next)
    ctx->next->prev = ctx->prev;
  pthread_mutex_unlock (&codec->lock);
  ctx_free (ctx);
}

/* gs_codec_init - see codec.h. */
int
gs_codec_init (struct gs_codec *codec, int level)
{
  int r;

  codec->level = level;
  codec->ctxs = NULL;
  r = pthread_key_create (&codec->key, ctx_destructor);
  if (r != 0)
    return -r;
  pthread_mutex_init (&codec->lock, NULL);
  return 0;
}

/* gs_codec_destroy - see codec.h. */
void
gs_codec_destroy (struct gs_codec *codec)
{
  struct gs_codec_ctx *ctx, *next;

  pthread_key_delete (codec->key);
  for (ctx = codec->ctxs; ctx; ctx = next) {
    next = ctx->next;
    ctx_free (ctx);
  }
  codec->ctxs = NULL;
  pthread_mutex_destroy (&codec->lock);
}

static struct gs_codec_ctx *
get_ctx (struct gs_codec *codec)
{
  struct gs_codec_ctx *ctx = pthread_getspecific (codec->key);
  size_t r;

  if (ctx)
    return ctx;
  ctx = calloc (1, sizeof *ctx);
  if (!ctx)
    return NULL;
  ctx->codec = codec;
  ctx->cctx = ZSTD_createCCtx ();
  ctx->dctx = ZSTD_createDCtx ();
  if (!ctx->cctx || !ctx->dctx)
    goto fail;
  /* Every frame holds one 4 KiB page: leave out what the page size makes
   * redundant (one-shot ZSTD_compress2 already sizes its tables for it). */
  r = ZSTD_CCtx_setParameter (ctx->cctx, ZSTD_c_compressionLevel, codec->level);
  if (ZSTD_isError (r)) goto fail;
  r = ZSTD_CCtx_setParameter (ctx->cctx, ZSTD_c_contentSizeFlag, 0);
  if (ZSTD_isError (r)) goto fail;
  r = ZSTD_CCtx_setParameter (ctx->cctx, ZSTD_c_checksumFlag, 0);
  if (ZSTD_isError (r)) goto fail;
  r = ZSTD_CCtx_setParameter (ctx->cctx, ZSTD_c_dictIDFlag, 0);
  if (ZSTD_isError (r)) goto fail;
  if (pthread_setspecific (codec->key, ctx) != 0)
    goto fail;

  pthread_mutex_lock (&codec->lock);
  ctx->next = codec->ctxs;
  if (codec->ctxs)
    codec->ctxs->prev = ctx;
  codec->ctxs = ctx;
  pthread_mutex_unlock (&codec->lock);
  return ctx;

 fail:
  ctx_free (ctx);
  return NULL;
}

/* Pages come from callers' buffers at any alignment: load and store
 * words with memcpy, which compiles to plain moves. */
static inline uint64_t
load_word (const unsigned char *p)
{
  uint64_t w;
  memcpy (&w, p, sizeof w);
  return w;
}

/* gs_page_same_filled - see codec.h. */
bool
gs_page_same_filled (const void *page, uint64_t *pattern)
{
  const unsigned char *p = page;
  uint64_t v = load_word (p);
  size_t i;

  /* Most pages differ early or at the end: check the last word first. */
  if (load_word (p + GS_SLOT_SIZE - sizeof v) != v)
    return false;
  for (i = sizeof v; i < GS_SLOT_SIZE - sizeof v; i += sizeof v)
    if (load_word (p + i) != v)
      return false;
  *pattern = v;
  return true;
}

/* gs_fill_pattern - see codec.h. */
void
gs_fill_pattern (void *page, uint64_t pattern)
{
  unsigned char *p = page;
  size_t i;

  if (pattern == 0) {
    memset (page, 0, GS_SLOT_SIZE);
    return;
  }
  for (i = 0; i < GS_SLOT_SIZE; i += sizeof pattern)
    memcpy (p + i, &pattern, sizeof pattern);
}

/* gs_compress - see codec.h. */
int
gs_compress (struct gs_codec *codec, const void *page, const void **out)
{
  struct gs_codec_ctx *ctx = get_ctx (codec);
  size_t r;

  if (!ctx)
    return -ENOMEM;
  r = ZSTD_compress2 (ctx->cctx, ctx->out, sizeof ctx->out, page, GS_SLOT_SIZE);
  if (ZSTD_isError (r)) {
    if (ZSTD_getErrorCode (r) == ZSTD_error_dstSize_tooSmall)
      return 0;
    return -EIO;
  }
  *out = ctx->out;
  return (int) r;
}

/* gs_frame_size - see codec.h. */
size_t
gs_frame_size (const void *src, size_t cap)
{
  size_t r = ZSTD_findFrameCompressedSize (src, cap);

  return ZSTD_isError (r) ? 0 : r;
}

/* gs_decompress - see codec.h. */
int
gs_decompress (struct gs_codec *codec, void *page, const void *src, size_t cap)
{
  struct gs_codec_ctx *ctx = get_ctx (codec);
  size_t len, r;

  if (!ctx)
    return -ENOMEM;
  len = gs_frame_size (src, cap);
  if (len == 0)
    return -EIO;
  r = ZSTD_decompressDCtx (ctx->dctx, page, GS_SLOT_SIZE, src, len);
  if (ZSTD_isError (r) || r != GS_SLOT_SIZE)
    return -EIO;
  return 0;
}
