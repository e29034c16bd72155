/* AES-256-XTS for backing pages (lib/crypt.c), against an independent
 * expectation:
 *  - a reference XTS written here (the IEEE 1619 construction over single
 *    AES-256 block encryptions, with its own GF(2^128) doubling), checked
 *    first against the published IEEE 1619-2007 vector 10;
 *  - gs_crypt_encrypt of random 4 KiB pages at several physical slots
 *    (0, 1, 255, 2^32 + 5, 2^51 - 1) equals the reference with the tweak
 *    le64(slot) || 0^8 (dm-crypt plain64), and decrypts back;
 *  - the same page at two slots differs, at one slot twice is equal;
 *  - two random keys encrypt differently; equal key halves are refused;
 *  - the key lives in a mapping the kernel reports locked and excluded
 *    from core dumps (/proc/self/smaps VmFlags "lo" and "dd"; VmLck), gone
 *    after gs_crypt_destroy (under AddressSanitizer, whose mlock does
 *    nothing, only "dd");
 *  - four threads with their own contexts get the single-thread answers.
 * Random pages from the seed printed ($GS_TEST_SEED replays).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include <openssl/evp.h>

#include "crypt.h"
#include "test.h"

/* ---- the reference ---- */

static void
aes256_block (const unsigned char key[32], const unsigned char in[16],
              unsigned char out[16])
{
  EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new ();
  int len = 0;

  CHECK (e != NULL);
  CHECK (EVP_EncryptInit_ex (e, EVP_aes_256_ecb (), NULL, key, NULL) == 1);
  EVP_CIPHER_CTX_set_padding (e, 0);
  CHECK (EVP_EncryptUpdate (e, out, &len, in, 16) == 1 && len == 16);
  EVP_CIPHER_CTX_free (e);
}

/* T := T * alpha in GF(2^128), T little-endian (IEEE 1619 5.2). */
static void
gf_double (unsigned char t[16])
{
  unsigned carry = 0, i;

  for (i = 0; i < 16; i++) {
    unsigned next = t[i] >> 7;
    t[i] = (unsigned char) ((t[i] << 1) | carry);
    carry = next;
  }
  if (carry)
    t[0] ^= 0x87;
}

/* XTS-AES-256 encryption of @len bytes (a multiple of 16) with data unit
 * number @unit (16 bytes, little-endian). */
static void
ref_xts (const unsigned char key[64], const unsigned char unit[16],
         const unsigned char *in, unsigned char *out, size_t len)
{
  unsigned char t[16], x[16];
  size_t j, k;

  aes256_block (key + 32, unit, t);
  for (j = 0; j < len; j += 16) {
    for (k = 0; k < 16; k++)
      x[k] = in[j + k] ^ t[k];
    aes256_block (key, x, out + j);
    for (k = 0; k < 16; k++)
      out[j + k] ^= t[k];
    gf_double (t);
  }
}

static void
hex (const char *h, unsigned char *out, size_t n)
{
  for (size_t i = 0; i < n; i++)
    CHECK (sscanf (h + 2 * i, "%2hhx", &out[i]) == 1);
}

/* IEEE 1619-2007, XTS-AES-256 vector 10: the first 32 bytes of the
 * ciphertext of the 512-byte unit 0xff. */
static void
check_reference (void)
{
  unsigned char key[64], unit[16] = { 0xff }, p[512], c[512], want[32];
  unsigned i;

  hex ("2718281828459045235360287471352662497757247093699959574966967627"
       "3141592653589793238462643383279502884197169399375105820974944592",
       key, 64);
  hex ("1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b",
       want, 32);
  for (i = 0; i < 512; i++)
    p[i] = (unsigned char) i;
  ref_xts (key, unit, p, c, sizeof p);
  CHECKF (memcmp (c, want, 32) == 0, "the reference XTS fails IEEE 1619 "
          "vector 10");
}

/* ---- the module ---- */

static unsigned char vkey[64];

static void
expect_ref (struct gs_crypt_ctx *ctx, uint64_t pslot, const unsigned char *p)
{
  unsigned char unit[16] = { 0 }, want[PAGE];
  unsigned char *buf = aligned_alloc (PAGE, PAGE);
  unsigned i;

  CHECK (buf != NULL);
  for (i = 0; i < 8; i++)
    unit[i] = (unsigned char) (pslot >> (8 * i));
  ref_xts (vkey, unit, p, want, PAGE);
  memcpy (buf, p, PAGE);
  CHECK_OK (gs_crypt_encrypt (ctx, pslot, buf));
  CHECKF (memcmp (buf, want, PAGE) == 0, "slot %" PRIu64 ": ciphertext "
          "differs from the reference", pslot);
  CHECK_OK (gs_crypt_decrypt (ctx, pslot, buf));
  CHECKF (memcmp (buf, p, PAGE) == 0, "slot %" PRIu64 ": does not decrypt "
          "back", pslot);
  free (buf);
}

/* AddressSanitizer and ThreadSanitizer (sanitizer_common's interceptor)
 * turn mlock into a no-op that reports success. */
#if defined (__SANITIZE_ADDRESS__) || defined (__SANITIZE_THREAD__)
#define MLOCK_WORKS false
#else
#define MLOCK_WORKS true
#endif

/* Mappings whose VmFlags have "dd" (not dumped) and, if MLOCK_WORKS,
 * "lo" (locked). */
static unsigned
locked_nodump_maps (void)
{
  FILE *fp = fopen ("/proc/self/smaps", "re");
  char line[512];
  unsigned n = 0;

  CHECK (fp != NULL);
  while (fgets (line, sizeof line, fp))
    if (strncmp (line, "VmFlags:", 8) == 0 && strstr (line, " dd")
        && (!MLOCK_WORKS || strstr (line, " lo")))
      n++;
  fclose (fp);
  return n;
}

static uint64_t
vmlck_kib (void)
{
  FILE *fp = fopen ("/proc/self/status", "re");
  char line[256];
  unsigned long long k = 0;

  CHECK (fp != NULL);
  while (fgets (line, sizeof line, fp))
    if (sscanf (line, "VmLck: %llu kB", &k) == 1)
      break;
  fclose (fp);
  return k;
}

#define THREADS 4
#define PER_THREAD 64

struct job {
  struct gs_crypt *c;
  const unsigned char *pages;     /* PER_THREAD pages */
  unsigned char *out;             /* their ciphertexts */
  uint64_t first;                 /* slot of pages[0] */
};

static void *
worker (void *arg)
{
  struct job *j = arg;
  struct gs_crypt_ctx *ctx;
  unsigned round, i;

  CHECK_OK (gs_crypt_ctx_new (j->c, &ctx));
  for (round = 0; round < 20; round++)
    for (i = 0; i < PER_THREAD; i++) {
      unsigned char *b = j->out + (size_t) i * PAGE;
      memcpy (b, j->pages + (size_t) i * PAGE, PAGE);
      CHECK_OK (gs_crypt_encrypt (ctx, j->first + i, b));
      if (round + 1 < 20) {
        CHECK_OK (gs_crypt_decrypt (ctx, j->first + i, b));
        CHECK (memcmp (b, j->pages + (size_t) i * PAGE, PAGE) == 0);
      }
    }
  gs_crypt_ctx_free (ctx);
  return NULL;
}

int
main (int argc, char **argv)
{
  static const uint64_t slots[] = { 0, 1, 255, (1ull << 32) + 5,
                                    (1ull << 51) - 1 };
  uint64_t seed, rs;
  unsigned char *p, *a, *b, same[64];
  struct gs_crypt *c, *c2;
  struct gs_crypt_ctx *ctx, *ctx2;
  unsigned maps0, i;
  uint64_t lck0;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  rs = seed;
  p = aligned_alloc (PAGE, PAGE);
  a = aligned_alloc (PAGE, PAGE);
  b = aligned_alloc (PAGE, PAGE);
  CHECK (p && a && b);
  for (i = 0; i < PAGE; i += 8) {
    uint64_t v = rnd_next (&rs);
    memcpy (p + i, &v, 8);
  }

  check_reference ();

  /* Known key: the module against the reference. */
  hex ("2718281828459045235360287471352662497757247093699959574966967627"
       "3141592653589793238462643383279502884197169399375105820974944592",
       vkey, 64);
  CHECK_OK (gs_crypt_create_with_key (vkey, &c));
  CHECK_OK (gs_crypt_ctx_new (c, &ctx));
  for (i = 0; i < sizeof slots / sizeof slots[0]; i++)
    expect_ref (ctx, slots[i], p);

  /* One page, two slots: different; one slot, twice: equal. */
  memcpy (a, p, PAGE);
  memcpy (b, p, PAGE);
  CHECK_OK (gs_crypt_encrypt (ctx, 7, a));
  CHECK_OK (gs_crypt_encrypt (ctx, 8, b));
  CHECK (memcmp (a, b, PAGE) != 0);
  memcpy (b, p, PAGE);
  CHECK_OK (gs_crypt_encrypt (ctx, 7, b));
  CHECK (memcmp (a, b, PAGE) == 0);
  CHECK (memcmp (a, p, PAGE) != 0);
  gs_crypt_ctx_free (ctx);

  /* Threads, each with its own context, against one context here. */
  {
    pthread_t th[THREADS];
    struct job jobs[THREADS];
    unsigned char *pages = aligned_alloc (PAGE, (size_t) THREADS * PER_THREAD * PAGE);
    unsigned char *out = aligned_alloc (PAGE, (size_t) THREADS * PER_THREAD * PAGE);
    unsigned t;

    CHECK (pages && out);
    for (i = 0; i < THREADS * PER_THREAD * PAGE; i += 8) {
      uint64_t v = rnd_next (&rs);
      memcpy (pages + i, &v, 8);
    }
    for (t = 0; t < THREADS; t++) {
      jobs[t] = (struct job) { c, pages + (size_t) t * PER_THREAD * PAGE,
                               out + (size_t) t * PER_THREAD * PAGE,
                               1000 + (uint64_t) t * PER_THREAD };
      CHECK (pthread_create (&th[t], NULL, worker, &jobs[t]) == 0);
    }
    for (t = 0; t < THREADS; t++)
      pthread_join (th[t], NULL);
    CHECK_OK (gs_crypt_ctx_new (c, &ctx));
    for (i = 0; i < THREADS * PER_THREAD; i++) {
      memcpy (a, pages + (size_t) i * PAGE, PAGE);
      CHECK_OK (gs_crypt_encrypt (ctx, 1000 + i, a));
      CHECKF (memcmp (a, out + (size_t) i * PAGE, PAGE) == 0,
              "thread result for slot %u differs", 1000 + i);
    }
    gs_crypt_ctx_free (ctx);
    free (pages);
    free (out);
  }
  gs_crypt_destroy (c);

  /* Equal halves are not an XTS key. */
  memset (same, 0x5a, sizeof same);
  CHECK (gs_crypt_create_with_key (same, &c) == -EINVAL);

  /* Random keys: locked, not dumped, different from each other. */
  maps0 = locked_nodump_maps ();
  lck0 = vmlck_kib ();
  CHECK_OK (gs_crypt_create (&c));
  CHECK_OK (gs_crypt_create (&c2));
  CHECKF (locked_nodump_maps () >= maps0 + 1, "no new locked, undumped "
          "mapping for the keys (%u before, %u after)", maps0,
          locked_nodump_maps ());
  if (MLOCK_WORKS)
    CHECKF (vmlck_kib () >= lck0 + 4, "VmLck %" PRIu64 " kB -> %" PRIu64
            " kB", lck0, vmlck_kib ());
  else
    fprintf (stderr, "%s: built with a sanitizer whose mlock does "
             "nothing: locking not checked\n", test_argv0);
  CHECK_OK (gs_crypt_ctx_new (c, &ctx));
  CHECK_OK (gs_crypt_ctx_new (c2, &ctx2));
  memcpy (a, p, PAGE);
  memcpy (b, p, PAGE);
  CHECK_OK (gs_crypt_encrypt (ctx, 42, a));
  CHECK_OK (gs_crypt_encrypt (ctx2, 42, b));
  CHECK (memcmp (a, b, PAGE) != 0 && memcmp (a, p, PAGE) != 0);
  CHECK_OK (gs_crypt_decrypt (ctx, 42, a));
  CHECK (memcmp (a, p, PAGE) == 0);
  gs_crypt_ctx_free (ctx);
  gs_crypt_ctx_free (ctx2);
  gs_crypt_destroy (c);
  gs_crypt_destroy (c2);
  CHECKF (locked_nodump_maps () == maps0, "the keys' mappings outlive "
          "gs_crypt_destroy");
  CHECKF (vmlck_kib () == lck0, "VmLck %" PRIu64 " kB after destroy, %"
          PRIu64 " kB before", vmlck_kib (), lck0);

  free (p);
  free (a);
  free (b);
  printf ("%s: ok\n", test_argv0);
  return 0;
}
