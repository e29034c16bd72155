/* ghostswap: page codec. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

/* For the static-context API (ZSTD_initStaticCCtx and the size
 * estimates), which libzstd 1.5 exports from the shared library. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

#include "codec.h"

/* A thread's contexts.  The compression mapping holds the output buffer
 * then the zstd workspace; the decompression mapping the zstd DCtx. */
struct gs_codec_ctx {
  struct gs_codec_ctx *prev, *next;   /* in codec->ctxs (codec->lock) */
  struct gs_codec *codec;
  void *cmap, *dmap;                  /* the mappings, or NULL */
  unsigned char *out;                 /* GS_MAX_COMPRESSED bytes in cmap */
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
};

#define OUT_BYTES 4096u               /* GS_MAX_COMPRESSED, page-rounded */
_Static_assert (GS_MAX_COMPRESSED <= OUT_BYTES, "output buffer");

/* The parameters of every compression: one 4 KiB source. */
static ZSTD_compressionParameters
page_params (int level)
{
  ZSTD_compressionParameters cp = ZSTD_getCParams (level, GS_SLOT_SIZE, 0);

  if (cp.strategy == ZSTD_fast && cp.hashLog > 11)
    cp.hashLog = 11;
  return cp;
}

static size_t
page_round (size_t n)
{
  return (n + 4095) & ~(size_t) 4095;
}

static void *
map (struct gs_codec *codec, size_t bytes)
{
  void *p = mmap (NULL, bytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

  if (p == MAP_FAILED)
    return NULL;
  __atomic_add_fetch (&codec->ctx_bytes, bytes, __ATOMIC_RELAXED);
  gs_mem_add (codec->mem, (int64_t) bytes);
  return p;
}

static void
unmap (struct gs_codec *codec, void *p, size_t bytes)
{
  if (!p)
    return;
  munmap (p, bytes);
  __atomic_sub_fetch (&codec->ctx_bytes, bytes, __ATOMIC_RELAXED);
  gs_mem_add (codec->mem, -(int64_t) bytes);
}

static void
ctx_free (struct gs_codec_ctx *ctx)
{
  unmap (ctx->codec, ctx->cmap, ctx->codec->cctx_bytes);
  unmap (ctx->codec, ctx->dmap, ctx->codec->dctx_bytes);
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

/* gs_codec_release_thread - see codec.h. */
void
gs_codec_release_thread (struct gs_codec *codec)
{
  struct gs_codec_ctx *ctx = pthread_getspecific (codec->key);

  if (!ctx)
    return;
  pthread_setspecific (codec->key, NULL);
  ctx_destructor (ctx);
}

/* gs_codec_init - see codec.h. */
int
gs_codec_init (struct gs_codec *codec, int level)
{
  int r;

  codec->level = level;
  codec->ctxs = NULL;
  codec->ctx_bytes = 0;
  codec->mem = NULL;
  codec->cctx_bytes = OUT_BYTES + page_round (
    ZSTD_estimateCCtxSize_usingCParams (page_params (level)));
  codec->dctx_bytes = page_round (ZSTD_estimateDCtxSize ());
  r = pthread_key_create (&codec->key, ctx_destructor);
  if (r != 0)
    return -r;
  pthread_mutex_init (&codec->lock, NULL);
  return 0;
}

/* gs_codec_set_account - see codec.h. */
void
gs_codec_set_account (struct gs_codec *codec, struct gs_memacct *mem)
{
  codec->mem = mem;
}

/* gs_codec_bytes - see codec.h. */
uint64_t
gs_codec_bytes (struct gs_codec *codec)
{
  return __atomic_load_n (&codec->ctx_bytes, __ATOMIC_RELAXED);
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

/* This thread's context record, made on first use. */
static struct gs_codec_ctx *
get_ctx (struct gs_codec *codec)
{
  struct gs_codec_ctx *ctx = pthread_getspecific (codec->key);

  if (ctx)
    return ctx;
  ctx = calloc (1, sizeof *ctx);
  if (!ctx)
    return NULL;
  ctx->codec = codec;
  if (pthread_setspecific (codec->key, ctx) != 0) {
    free (ctx);
    return NULL;
  }
  pthread_mutex_lock (&codec->lock);
  ctx->next = codec->ctxs;
  if (codec->ctxs)
    codec->ctxs->prev = ctx;
  codec->ctxs = ctx;
  pthread_mutex_unlock (&codec->lock);
  return ctx;
}

/* This thread's compression context, made on first use. */
static struct gs_codec_ctx *
get_cctx (struct gs_codec *codec)
{
  struct gs_codec_ctx *ctx = get_ctx (codec);
  ZSTD_compressionParameters cp;
  size_t r;

  if (!ctx || ctx->cctx)
    return ctx;
  ctx->cmap = map (codec, codec->cctx_bytes);
  if (!ctx->cmap)
    return NULL;
  ctx->out = ctx->cmap;
  ctx->cctx = ZSTD_initStaticCCtx ((unsigned char *) ctx->cmap + OUT_BYTES,
                                   codec->cctx_bytes - OUT_BYTES);
  if (!ctx->cctx)
    goto fail;
  /* Every frame holds one 4 KiB page: leave out what the page size makes
   * redundant, and size the tables for it (page_params). */
  cp = page_params (codec->level);
  r = ZSTD_CCtx_setParameter (ctx->cctx, ZSTD_c_compressionLevel, codec->level);
  if (ZSTD_isError (r)) goto fail;
  r = ZSTD_CCtx_setParameter (ctx->cctx, ZSTD_c_hashLog, (int) cp.hashLog);
  if (ZSTD_isError (r)) goto fail;
  r = ZSTD_CCtx_setParameter (ctx->cctx, ZSTD_c_contentSizeFlag, 0);
  if (ZSTD_isError (r)) goto fail;
  r = ZSTD_CCtx_setParameter (ctx->cctx, ZSTD_c_checksumFlag, 0);
  if (ZSTD_isError (r)) goto fail;
  r = ZSTD_CCtx_setParameter (ctx->cctx, ZSTD_c_dictIDFlag, 0);
  if (ZSTD_isError (r)) goto fail;
  return ctx;

 fail:
  unmap (codec, ctx->cmap, codec->cctx_bytes);
  ctx->cmap = NULL;
  ctx->cctx = NULL;
  return NULL;
}

/* This thread's decompression context, made on first use. */
static struct gs_codec_ctx *
get_dctx (struct gs_codec *codec)
{
  struct gs_codec_ctx *ctx = get_ctx (codec);

  if (!ctx || ctx->dctx)
    return ctx;
  ctx->dmap = map (codec, codec->dctx_bytes);
  if (!ctx->dmap)
    return NULL;
  ctx->dctx = ZSTD_initStaticDCtx (ctx->dmap, codec->dctx_bytes);
  if (!ctx->dctx) {
    unmap (codec, ctx->dmap, codec->dctx_bytes);
    ctx->dmap = NULL;
    return NULL;
  }
  return ctx;
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
  struct gs_codec_ctx *ctx = get_cctx (codec);
  size_t r;

  if (!ctx)
    return -ENOMEM;
  r = ZSTD_compress2 (ctx->cctx, ctx->out, GS_MAX_COMPRESSED, page,
                      GS_SLOT_SIZE);
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
  struct gs_codec_ctx *ctx = get_dctx (codec);
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
