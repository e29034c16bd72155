/* ghostswap: encryption at rest of backing pages, AES-256-XTS.
 *
 * One key per device, made from getrandom at start and kept only in a
 * page of its own that is locked (mlock), left out of core dumps
 * (MADV_DONTDUMP) and of a forked child (MADV_WIPEONFORK), and wiped
 * when the key is destroyed: pages written to a backing are noise once
 * the process is gone.  Every 4 KiB physical slot is one XTS data unit
 * whose tweak is the physical slot number, little-endian, zero-padded to
 * 16 bytes (dm-crypt's "plain64" IV with 4096-byte sectors and
 * iv_large_sectors): the same page in another slot gives other
 * ciphertext, so a page moved to another slot or backing is re-encrypted
 * for its new slot.  XTS gives no integrity (the page checksum does) and,
 * as with dm-crypt, equal plaintext written to one slot twice gives equal
 * ciphertext.
 *
 * The cipher is OpenSSL's libcrypto (EVP, AES-NI).  A struct
 * gs_crypt_ctx holds the OpenSSL contexts of one thread: they carry the
 * expanded round keys in OpenSSL's own heap memory (locked when the
 * process's mlockall succeeded; OpenSSL wipes it when the context is
 * freed; it is not excluded from core dumps).
 *
 * Not yet wired into the I/O path (that comes with the slot module).
 */
#ifndef GHOSTSWAP_CRYPT_H
#define GHOSTSWAP_CRYPT_H

#include <stdint.h>

/* The XTS key: two AES-256 keys, 64 bytes. */
#define GS_CRYPT_KEY_BYTES 64u

struct gs_crypt;
struct gs_crypt_ctx;

/* gs_crypt_create - make a new random key in locked memory.
 * Context: may sleep (getrandom at early boot).
 * Return: 0 and *@cp, -ENOMEM, or -errno from mmap, mlock or getrandom
 * (no key is ever held in memory that could not be locked).
 */
int gs_crypt_create (struct gs_crypt **cp);

/* gs_crypt_create_with_key - as gs_crypt_create, with the key @key
 * (copied into locked memory; the caller wipes its own copy).  For known
 * answer tests.
 * Context: any.  Return: as gs_crypt_create, or -EINVAL if the two
 * halves of @key are equal (XTS forbids it).
 */
int gs_crypt_create_with_key (const unsigned char key[GS_CRYPT_KEY_BYTES],
                              struct gs_crypt **cp);

/* gs_crypt_destroy - wipe, unlock and free the key.  Every context made
 * from it must be freed first.
 * Context: any.  Return: nothing.
 */
void gs_crypt_destroy (struct gs_crypt *c);

/* gs_crypt_ctx_new - the cipher contexts for one thread, keyed with @c.
 * Context: any.  Return: 0 and *@ctxp, or -ENOMEM / -EIO (OpenSSL has
 * no AES-256-XTS).
 */
int gs_crypt_ctx_new (const struct gs_crypt *c, struct gs_crypt_ctx **ctxp);

/* gs_crypt_ctx_free - free @ctx (OpenSSL wipes the round keys).
 * Context: any.  Return: nothing.
 */
void gs_crypt_ctx_free (struct gs_crypt_ctx *ctx);

/* gs_crypt_encrypt - encrypt the 4096 bytes at @buf in place as the data
 * of physical slot @pslot.
 * Context: @ctx used by one thread at a time.  Return: 0 or -EIO.
 */
int gs_crypt_encrypt (struct gs_crypt_ctx *ctx, uint64_t pslot, void *buf);

/* gs_crypt_decrypt - decrypt the 4096 bytes at @buf in place, read from
 * physical slot @pslot.
 * Context: @ctx used by one thread at a time.  Return: 0 or -EIO.
 */
int gs_crypt_decrypt (struct gs_crypt_ctx *ctx, uint64_t pslot, void *buf);

#endif /* GHOSTSWAP_CRYPT_H */
