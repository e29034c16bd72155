/* bench-crypt: AES-256-XTS of 4 KiB slots through lib/crypt.c, in place,
 * one thread: encrypt and decrypt throughput over a 64 MiB buffer of
 * random pages (each page at its own physical slot), and memcpy of the
 * same pages as a same-run anchor.  Rates are per second of this
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID), as `openssl speed` reports
 * them, so that a busy machine slows both alike; compare with
 * `openssl speed -evp aes-256-xts -bytes 4096` (bench/bench-crypt.sh runs
 * both).
 *
 *   bench-crypt [SECONDS]     (default 3 per measurement)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypt.h"
#include "ghostswap/config.h"

#define PAGES 16384u

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run @what over every page until @secs of CPU time have passed; bytes
 * per CPU second. */
static double
measure (const char *what, struct gs_crypt_ctx *ctx, unsigned char *buf,
         unsigned char *copy, double secs)
{
  double t0 = now (), t;
  uint64_t pages = 0;
  unsigned i;

  do {
    for (i = 0; i < PAGES; i++) {
      unsigned char *p = buf + (size_t) i * GS_SLOT_SIZE;
      int r = 0;

      if (what[0] == 'e')
        r = gs_crypt_encrypt (ctx, i, p);
      else if (what[0] == 'd')
        r = gs_crypt_decrypt (ctx, i, p);
      else
        memcpy (copy + (size_t) i * GS_SLOT_SIZE, p, GS_SLOT_SIZE);
      if (r != 0) {
        fprintf (stderr, "bench-crypt: %s failed: %d\n", what, r);
        exit (1);
      }
    }
    pages += PAGES;
    t = now () - t0;
  } while (t < secs);
  return (double) pages * GS_SLOT_SIZE / t;
}

int
main (int argc, char **argv)
{
  double secs = argc > 1 ? atof (argv[1]) : 3.0, enc, dec, cpy;
  unsigned char *buf = aligned_alloc (GS_SLOT_SIZE, (size_t) PAGES * GS_SLOT_SIZE);
  unsigned char *copy = aligned_alloc (GS_SLOT_SIZE, (size_t) PAGES * GS_SLOT_SIZE);
  struct gs_crypt *c;
  struct gs_crypt_ctx *ctx;
  uint64_t s = 88172645463325252ull;
  size_t i;

  if (!buf || !copy || secs <= 0) {
    fprintf (stderr, "usage: bench-crypt [SECONDS]\n");
    return 1;
  }
  for (i = 0; i < (size_t) PAGES * GS_SLOT_SIZE; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    buf[i] = (unsigned char) s;
  }
  if (gs_crypt_create (&c) != 0 || gs_crypt_ctx_new (c, &ctx) != 0) {
    fprintf (stderr, "bench-crypt: no cipher\n");
    return 1;
  }
  cpy = measure ("memcpy", ctx, buf, copy, secs);
  enc = measure ("encrypt", ctx, buf, copy, secs);
  dec = measure ("decrypt", ctx, buf, copy, secs);
  printf ("memcpy  %.2f GB/s\n", cpy / 1e9);
  printf ("encrypt %.2f GB/s (%.0f ns per 4 KiB page)\n", enc / 1e9,
          GS_SLOT_SIZE / enc * 1e9);
  printf ("decrypt %.2f GB/s (%.0f ns per 4 KiB page)\n", dec / 1e9,
          GS_SLOT_SIZE / dec * 1e9);
  gs_crypt_ctx_free (ctx);
  gs_crypt_destroy (c);
  free (buf);
  free (copy);
  return 0;
}
