/* The page codec (lib/codec.c): zstd round trips, raw for incompressible
 * pages, corrupt frames fail with -EIO, gs_frame_size, and per-thread
 * contexts under concurrency. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <zstd.h>

#include "codec.h"
#include "test.h"

#define THREADS 8
#define PER_THREAD 3000

static struct gs_codec codec;
static uint64_t seed;

/* Compress @page; when it compresses, check the frame and that it
 * decompresses to @page.  Return the compressed length (0: raw). */
static int
round_trip (const unsigned char *page)
{
  unsigned char out[PAGE], copy[GS_MAX_COMPRESSED];
  const void *frame = NULL;
  int r = gs_compress (&codec, page, &frame);

  CHECKF (r >= 0 && r <= (int) GS_MAX_COMPRESSED, "gs_compress = %d", r);
  if (r == 0)
    return 0;
  CHECK (frame != NULL);
  CHECK (gs_frame_size (frame, (size_t) r) == (size_t) r);
  memcpy (copy, frame, (size_t) r);
  memset (out, 0xa5, sizeof out);
  CHECK_OK (gs_decompress (&codec, out, copy, (size_t) r));
  CHECK (memcmp (out, page, PAGE) == 0);
  return r;
}

static void *
worker (void *arg)
{
  uintptr_t id = (uintptr_t) arg;
  uint64_t s = seed + id * 7919;
  unsigned char page[PAGE], out[PAGE];
  unsigned i;

  for (i = 0; i < PER_THREAD; i++) {
    const void *frame;
    int r;

    if (i % 4 == 3)
      fill_random (page, PAGE, &s);
    else
      fill_text (page, PAGE, &s);
    /* Tag the page with the thread and iteration, so that a shared
     * scratch buffer would show. */
    memcpy (page, &id, sizeof id);
    memcpy (page + 64, &i, sizeof i);
    r = gs_compress (&codec, page, &frame);
    CHECKF (r >= 0 && r <= (int) GS_MAX_COMPRESSED, "thread %u: %d",
            (unsigned) id, r);
    if (i % 4 == 3) {
      CHECKF (r == 0, "random page compressed to %d", r);
      continue;
    }
    CHECKF (r > 0, "text page did not compress");
    /* Decompress straight from this thread's scratch buffer, which no
     * other thread may touch. */
    CHECK_OK (gs_decompress (&codec, out, frame, (size_t) r));
    CHECKF (memcmp (out, page, PAGE) == 0, "thread %u iteration %u",
            (unsigned) id, i);
  }
  return NULL;
}

int
main (int argc, char *argv[])
{
  static unsigned char page[PAGE], out[PAGE], buf[2 * PAGE], big[2 * PAGE];
  pthread_t th[THREADS];
  uint64_t s;
  unsigned i, k;
  int r, len;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;
  CHECK_OK (gs_codec_init (&codec, 1));

  /* Compressible pages of varied ratio round-trip. */
  for (i = 0; i < 500; i++) {
    fill_text (page, PAGE, &s);
    r = round_trip (page);
    CHECKF (r > 0, "text page %u did not compress", i);
  }
  /* Pages with a few distinct bytes compress very well. */
  memset (page, 0, PAGE);
  page[100] = 1;
  page[4000] = 2;
  r = round_trip (page);
  CHECKF (r > 0 && r < 100, "sparse page: %d", r);

  /* Incompressible pages: 0, store raw. */
  for (i = 0; i < 50; i++) {
    fill_random (page, PAGE, &s);
    CHECK (round_trip (page) == 0);
  }
  /* Around the 2990-byte limit: a random prefix of varied length and
   * zeroes after it.  Whatever compresses is at most GS_MAX_COMPRESSED
   * and exact; what is refused really does not fit (checked with a plain
   * zstd frame, which is at most a few bytes longer than ours). */
  for (len = 2800; len <= 3200; len += 7) {
    memset (page, 0, PAGE);
    fill_random (page, (size_t) len, &s);
    r = round_trip (page);
    if (r == 0) {
      size_t plain = ZSTD_compress (big, sizeof big, page, PAGE, 1);
      CHECK (!ZSTD_isError (plain));
      CHECKF (plain + 16 > GS_MAX_COMPRESSED,
              "%d random bytes refused but zstd gives %zu", len, plain);
    }
    if (len <= 2900)
      CHECKF (r > 0, "%d random bytes + zeroes should compress", len);
    if (len >= 3000)
      CHECKF (r == 0, "%d random bytes + zeroes cannot fit", len);
  }

  /* gs_frame_size with trailing garbage: the exact frame length. */
  for (i = 0; i < 100; i++) {
    const void *frame;
    fill_text (page, PAGE, &s);
    r = gs_compress (&codec, page, &frame);
    CHECK (r > 0);
    memcpy (buf, frame, (size_t) r);
    fill_random (buf + r, sizeof buf - (size_t) r, &s);
    CHECKF (gs_frame_size (buf, sizeof buf) == (size_t) r, "frame %d", r);
    /* Decompressing with a generous cap works too. */
    CHECK_OK (gs_decompress (&codec, out, buf, sizeof buf));
    CHECK (memcmp (out, page, PAGE) == 0);
    /* A cap shorter than the frame: no frame there. */
    CHECK (gs_frame_size (buf, (size_t) r - 1) == 0);
    CHECK (gs_decompress (&codec, out, buf, (size_t) r - 1) == -EIO);
    CHECK (gs_frame_size (buf, 0) == 0);
    CHECK (gs_decompress (&codec, out, buf, 0) == -EIO);
  }

  /* Corruption never crashes (run under ASan too).  Garbage, a broken
   * magic number, truncation and a frame of the wrong size are -EIO.
   * Random bit flips are -EIO or decode (frames carry no checksum: a flip
   * in a literal may decode to other bytes); never anything else. */
  {
    const void *frame;
    unsigned eio = 0, decoded = 0, wrong = 0;

    for (i = 0; i < 100; i++) {
      fill_random (buf, sizeof buf, &s);
      CHECK (gs_frame_size (buf, PAGE) == 0);
      CHECK (gs_decompress (&codec, out, buf, PAGE) == -EIO);
    }
    fill_text (page, PAGE, &s);
    r = gs_compress (&codec, page, &frame);
    CHECK (r > 0);
    memcpy (buf, frame, (size_t) r);
    buf[0] ^= 0xff;
    CHECK (gs_decompress (&codec, out, buf, (size_t) r) == -EIO);
    for (k = 1; k < (unsigned) r; k++)
      CHECK (gs_decompress (&codec, out, frame, k) == -EIO);

    for (i = 0; i < 20000; i++) {
      unsigned flips = 1 + (unsigned) rnd_below (&s, 4), f;
      memcpy (buf, frame, (size_t) r);
      for (f = 0; f < flips; f++) {
        size_t at = (size_t) rnd_below (&s, (uint64_t) r);
        buf[at] ^= (unsigned char) (1u << rnd_below (&s, 8));
      }
      k = (unsigned) gs_decompress (&codec, out, buf, (size_t) r);
      CHECKF ((int) k == 0 || (int) k == -EIO, "gs_decompress = %d", (int) k);
      if ((int) k == 0) {
        decoded++;
        wrong += memcmp (out, page, PAGE) != 0;
      }
      else
        eio++;
      /* The same with the frame followed by garbage. */
      fill_random (buf + r, sizeof buf - (size_t) r, &s);
      k = (unsigned) gs_decompress (&codec, out, buf, sizeof buf);
      CHECKF ((int) k == 0 || (int) k == -EIO, "gs_decompress = %d", (int) k);
    }
    CHECK (eio > 0);
    fprintf (stderr, "%s: bit flips: %u -EIO, %u decoded, of which %u to "
             "other bytes (frames carry no checksum)\n", test_argv0, eio,
             decoded, wrong);

    /* Frames that are valid zstd but not one 4 KiB page. */
    {
      size_t n = ZSTD_compress (buf, sizeof buf, page, PAGE / 2, 1);
      CHECK (!ZSTD_isError (n));
      CHECK (gs_frame_size (buf, sizeof buf) == n);
      CHECK (gs_decompress (&codec, out, buf, n) == -EIO);
      fill_text (big, sizeof big, &s);
      n = ZSTD_compress (buf, sizeof buf, big, sizeof big, 1);
      CHECK (!ZSTD_isError (n));
      CHECK (gs_decompress (&codec, out, buf, n) == -EIO);
      n = ZSTD_compress (buf, sizeof buf, big, PAGE + 1, 1);
      CHECK (!ZSTD_isError (n));
      CHECK (gs_decompress (&codec, out, buf, n) == -EIO);
      /* Exactly one page from plain zstd (with a content size) is fine. */
      n = ZSTD_compress (buf, sizeof buf, big, PAGE, 1);
      CHECK (!ZSTD_isError (n));
      CHECK_OK (gs_decompress (&codec, out, buf, n));
      CHECK (memcmp (out, big, PAGE) == 0);
    }
  }

  /* Per-thread contexts: 8 threads at once, every result verified. */
  for (i = 0; i < THREADS; i++)
    CHECK_OK (pthread_create (&th[i], NULL, worker, (void *) (uintptr_t) i));
  for (i = 0; i < THREADS; i++)
    CHECK_OK (pthread_join (th[i], NULL));
  /* The main thread's context still works after the others exited. */
  fill_text (page, PAGE, &s);
  CHECK (round_trip (page) > 0);
  gs_codec_destroy (&codec);

  /* Other levels. */
  {
    static const int levels[] = { -5, 3, 9, 19 };
    for (k = 0; k < sizeof levels / sizeof levels[0]; k++) {
      CHECK_OK (gs_codec_init (&codec, levels[k]));
      for (i = 0; i < 20; i++) {
        fill_text (page, PAGE, &s);
        round_trip (page);      /* fast levels may not fit it: then raw */
        memset (page, 'x', PAGE);
        fill_text (page, 1000, &s);
        CHECKF (round_trip (page) > 0, "level %d", levels[k]);
        fill_random (page, PAGE, &s);
        CHECK (round_trip (page) == 0);
      }
      gs_codec_destroy (&codec);
    }
  }
  return 0;
}
