/* ghostswap: AES-256-XTS for backing pages (see crypt.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypt.h"
#include "ghostswap/config.h"

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/* The key, alone in a locked page. */
struct gs_crypt {
  unsigned char *key;         /* GS_CRYPT_KEY_BYTES in the page */
  size_t page;                /* the mapping's length */
};

struct gs_crypt_ctx {
  EVP_CIPHER *cipher;         /* AES-256-XTS, fetched once */
  EVP_CIPHER_CTX *enc, *dec;  /* keyed; the IV is set per slot */
};

/* A locked page for the key, out of core dumps and forked children. */
static int
key_page (struct gs_crypt **cp)
{
  struct gs_crypt *c = calloc (1, sizeof *c);
  long ps = sysconf (_SC_PAGESIZE);
  void *p;
  int r;

  if (!c)
    return -ENOMEM;
  c->page = ps > 0 ? (size_t) ps : 4096;
  p = mmap (NULL, c->page, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    r = -errno;
    free (c);
    return r;
  }
  if (mlock (p, c->page) < 0) {
    r = -errno;
    munmap (p, c->page);
    free (c);
    return r;
  }
  /* Best effort on kernels without them (before 3.4 and 4.14). */
  madvise (p, c->page, MADV_DONTDUMP);
  madvise (p, c->page, MADV_WIPEONFORK);
  c->key = p;
  *cp = c;
  return 0;
}

/* gs_crypt_create_with_key - see crypt.h. */
int
gs_crypt_create_with_key (const unsigned char key[GS_CRYPT_KEY_BYTES],
                          struct gs_crypt **cp)
{
  struct gs_crypt *c;
  int r;

  if (CRYPTO_memcmp (key, key + GS_CRYPT_KEY_BYTES / 2,
                     GS_CRYPT_KEY_BYTES / 2) == 0)
    return -EINVAL;
  r = key_page (&c);
  if (r < 0)
    return r;
  memcpy (c->key, key, GS_CRYPT_KEY_BYTES);
  *cp = c;
  return 0;
}

/* gs_crypt_create - see crypt.h. */
int
gs_crypt_create (struct gs_crypt **cp)
{
  struct gs_crypt *c;
  size_t got;
  ssize_t n;
  int r;

  r = key_page (&c);
  if (r < 0)
    return r;
  /* Straight into the locked page; again in the (2^-256) case of equal
   * halves. */
  do {
    for (got = 0; got < GS_CRYPT_KEY_BYTES; got += (size_t) n) {
      n = getrandom (c->key + got, GS_CRYPT_KEY_BYTES - got, 0);
      if (n < 0) {
        if (errno == EINTR) {
          n = 0;
          continue;
        }
        r = -errno;
        gs_crypt_destroy (c);
        return r;
      }
    }
  } while (CRYPTO_memcmp (c->key, c->key + GS_CRYPT_KEY_BYTES / 2,
                          GS_CRYPT_KEY_BYTES / 2) == 0);
  *cp = c;
  return 0;
}

/* gs_crypt_destroy - see crypt.h. */
void
gs_crypt_destroy (struct gs_crypt *c)
{
  if (!c)
    return;
  OPENSSL_cleanse (c->key, c->page);
  munlock (c->key, c->page);
  munmap (c->key, c->page);
  free (c);
}

/* gs_crypt_ctx_new - see crypt.h. */
int
gs_crypt_ctx_new (const struct gs_crypt *c, struct gs_crypt_ctx **ctxp)
{
  struct gs_crypt_ctx *ctx = calloc (1, sizeof *ctx);

  if (!ctx)
    return -ENOMEM;
  ctx->cipher = EVP_CIPHER_fetch (NULL, "AES-256-XTS", NULL);
  ctx->enc = EVP_CIPHER_CTX_new ();
  ctx->dec = EVP_CIPHER_CTX_new ();
  if (!ctx->cipher || !ctx->enc || !ctx->dec
      || EVP_CIPHER_get_key_length (ctx->cipher) != (int) GS_CRYPT_KEY_BYTES
      || EVP_EncryptInit_ex2 (ctx->enc, ctx->cipher, c->key, NULL, NULL) != 1
      || EVP_DecryptInit_ex2 (ctx->dec, ctx->cipher, c->key, NULL, NULL) != 1) {
    int r = ctx->cipher && ctx->enc && ctx->dec ? -EIO : -ENOMEM;

    gs_crypt_ctx_free (ctx);
    return r;
  }
  *ctxp = ctx;
  return 0;
}

/* gs_crypt_ctx_free - see crypt.h. */
void
gs_crypt_ctx_free (struct gs_crypt_ctx *ctx)
{
  if (!ctx)
    return;
  EVP_CIPHER_CTX_free (ctx->enc);
  EVP_CIPHER_CTX_free (ctx->dec);
  EVP_CIPHER_free (ctx->cipher);
  free (ctx);
}

/* One data unit through @e (keyed for one direction), in place. */
static int
xts (EVP_CIPHER_CTX *e, bool enc, uint64_t pslot, void *buf)
{
  unsigned char iv[16] = { 0 };
  int len = 0, fin = 0, i;

  for (i = 0; i < 8; i++)
    iv[i] = (unsigned char) (pslot >> (8 * i));
  if ((enc ? EVP_EncryptInit_ex2 (e, NULL, NULL, iv, NULL)
           : EVP_DecryptInit_ex2 (e, NULL, NULL, iv, NULL)) != 1)
    return -EIO;
  if ((enc ? EVP_EncryptUpdate (e, buf, &len, buf, GS_SLOT_SIZE)
           : EVP_DecryptUpdate (e, buf, &len, buf, GS_SLOT_SIZE)) != 1
      || len != GS_SLOT_SIZE)
    return -EIO;
  if ((enc ? EVP_EncryptFinal_ex (e, (unsigned char *) buf + len, &fin)
           : EVP_DecryptFinal_ex (e, (unsigned char *) buf + len, &fin)) != 1
      || fin != 0)
    return -EIO;
  return 0;
}

/* gs_crypt_encrypt - see crypt.h. */
int
gs_crypt_encrypt (struct gs_crypt_ctx *ctx, uint64_t pslot, void *buf)
{
  return xts (ctx->enc, true, pslot, buf);
}

/* gs_crypt_decrypt - see crypt.h. */
int
gs_crypt_decrypt (struct gs_crypt_ctx *ctx, uint64_t pslot, void *buf)
{
  return xts (ctx->dec, false, pslot, buf);
}
