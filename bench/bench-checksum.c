/* bench-checksum - what the integrity checks cost per 4 KiB page, over
 * the real-memory corpus (docs/architecture.md, "End-to-end integrity").
 *
 * Not a test: run by hand, on an otherwise idle machine:
 *
 *   BUILD/bench/bench-checksum ../shared/data/memory-corpus.bin
 *
 * For every page of the corpus (same-filled ones too: they cost the same
 * to checksum): the crc32c that every backing page carries (ISA-L's
 * crc32_iscsi, as lib/backing.c), and, for comparison, zstd level 1
 * compression and decompression of the page as the engine does it, with
 * and without zstd's own frame checksum (what checking RAM objects
 * would cost in time and in bytes).  Prints microseconds per page, the
 * average frame size, and the crc's throughput.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <isa-l/crc.h>
#include <zstd.h>

#define PAGE 4096
#define REPEAT 4

static double
now (void)
{
  struct timespec t;

  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

int
main (int argc, char **argv)
{
  unsigned char out[2 * PAGE], back[PAGE], *buf;
  size_t n, pages, i;
  unsigned sum = 0;
  double t, crc_s;
  ZSTD_CCtx *c;
  ZSTD_DCtx *d;
  FILE *f;

  if (argc != 2) {
    fprintf (stderr, "usage: %s CORPUS\n", argv[0]);
    return 2;
  }
  f = fopen (argv[1], "rb");
  buf = malloc (64u << 20);
  if (!f || !buf) {
    perror (argv[1]);
    return 1;
  }
  n = fread (buf, 1, 64u << 20, f);
  fclose (f);
  pages = n / PAGE;
  if (pages == 0) {
    fprintf (stderr, "%s: no whole page\n", argv[1]);
    return 1;
  }
  t = now ();
  for (int r = 0; r < REPEAT; r++)
    for (i = 0; i < pages; i++)
      sum += crc32_iscsi (buf + i * PAGE, PAGE, 0xffffffffu);
  crc_s = (now () - t) / (REPEAT * (double) pages);

  c = ZSTD_createCCtx ();
  d = ZSTD_createDCtx ();
  if (!c || !d)
    return 1;
  for (int ck = 0; ck < 2; ck++) {
    double tc = 0, td = 0;
    size_t total = 0;

    ZSTD_CCtx_reset (c, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter (c, ZSTD_c_compressionLevel, 1);
    ZSTD_CCtx_setParameter (c, ZSTD_c_checksumFlag, ck);
    ZSTD_CCtx_setParameter (c, ZSTD_c_contentSizeFlag, 0);
    for (i = 0; i < pages; i++) {
      double a = now (), b, e;
      size_t r = ZSTD_compress2 (c, out, sizeof out, buf + i * PAGE, PAGE);
      b = now ();
      if (ZSTD_isError (r)) {
        fprintf (stderr, "compress: %s\n", ZSTD_getErrorName (r));
        return 1;
      }
      total += r;
      r = ZSTD_decompressDCtx (d, back, PAGE, out, r);
      e = now ();
      if (ZSTD_isError (r)) {
        fprintf (stderr, "decompress: %s\n", ZSTD_getErrorName (r));
        return 1;
      }
      tc += b - a;
      td += e - b;
    }
    printf ("zstd -1 frame checksum %s: compress %.2f us/page, decompress "
            "%.2f us/page, frame %.1f bytes/page\n", ck ? "on " : "off",
            tc / (double) pages * 1e6, td / (double) pages * 1e6,
            (double) total / (double) pages);
  }
  printf ("crc32c (ISA-L): %.3f us/page, %.1f GB/s (%zu pages x %d; %u)\n",
          crc_s * 1e6, PAGE / crc_s / 1e9, pages, REPEAT, sum & 1);
  ZSTD_freeCCtx (c);
  ZSTD_freeDCtx (d);
  free (buf);
  return 0;
}
