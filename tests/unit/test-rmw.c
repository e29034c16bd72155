/* Unaligned I/O: read-modify-write of partial slots against a shadow
 * copy, single-threaded; then threads writing disjoint byte ranges of the
 * same slots at once must not lose each other's updates. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ghostswap/device.h"
#include "test.h"

static unsigned char *shadow;
static unsigned char buf[8 * PAGE], got[8 * PAGE + 64];   /* reads: a few bytes around */

/* Fill @len bytes with data of a random kind. */
static void
random_data (unsigned char *p, size_t len, uint64_t *s)
{
  switch (rnd_below (s, 5)) {
  case 0: memset (p, 0, len); break;
  case 1: fill_words (p, len, inline_word (s)); break;
  case 2: fill_words (p, len, wide_word (s)); break;
  case 3: fill_text (p, len, s); break;
  default: fill_random (p, len, s); break;
  }
}

/* A random length favouring the interesting ones. */
static uint32_t
random_len (uint64_t *s)
{
  switch (rnd_below (s, 6)) {
  case 0: return 1;
  case 1: return 1 + (uint32_t) rnd_below (s, 16);
  case 2: return 1 + (uint32_t) rnd_below (s, PAGE);
  case 3: return PAGE;
  case 4: return PAGE - 1 + (uint32_t) rnd_below (s, 3);
  default: return 1 + (uint32_t) rnd_below (s, sizeof buf);
  }
}

static uint64_t
random_offset (uint64_t *s, uint64_t size, uint32_t len)
{
  uint64_t off;

  switch (rnd_below (s, 4)) {
  case 0:   /* slot aligned */
    off = rnd_below (s, size / PAGE) * PAGE;
    break;
  case 1:   /* just before a slot boundary */
    off = rnd_below (s, size / PAGE) * PAGE + PAGE - 1 - rnd_below (s, 8);
    break;
  case 2:   /* near the end */
    off = size - len - rnd_below (s, 3 * PAGE);
    break;
  default:
    off = rnd_below (s, size);
  }
  if (off > size - len)
    off = size - len;
  return off;
}

static void
check_all (struct gs_device *dev, uint64_t size)
{
  uint64_t off;

  for (off = 0; off < size; off += sizeof got) {
    uint32_t n = size - off < sizeof got ? (uint32_t) (size - off)
      : (uint32_t) sizeof got;
    long d;
    CHECK_OK (gs_pread (dev, got, n, off));
    d = first_diff (got, shadow + off, n);
    CHECKF (d < 0, "byte %" PRIu64 ": %#x, shadow %#x", off + (uint64_t) d,
            got[d], shadow[off + (uint64_t) d]);
  }
}

static void
single (uint64_t size, uint64_t *s, unsigned ops)
{
  struct gs_config cfg = test_config (size, 256 << 20);
  struct gs_device *dev;
  unsigned k;

  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK (gs_device_size (dev) == size);
  shadow = calloc (1, size);
  CHECK (shadow != NULL);

  for (k = 0; k < ops; k++) {
    uint32_t len = random_len (s);
    uint64_t off;
    unsigned op = (unsigned) rnd_below (s, 10);
    long d;

    if (len > size)
      len = (uint32_t) size;
    off = random_offset (s, size, len);
    if (op < 5) {
      random_data (buf, len, s);
      CHECKF (gs_pwrite (dev, buf, len, off) == 0, "op %u write %u@%" PRIu64,
              k, len, off);
      memcpy (shadow + off, buf, len);
    }
    else if (op < 6) {
      CHECK_OK (gs_trim (dev, len, off));
      memset (shadow + off, 0, len);
    }
    else if (op < 7) {
      CHECK_OK (gs_zero (dev, len, off, rnd_below (s, 2) ? GS_ZERO_MAY_TRIM : 0));
      memset (shadow + off, 0, len);
    }
    else {
      /* Read a range around it. */
      memset (got, 0xa5, len);
      CHECK_OK (gs_pread (dev, got, len, off));
      d = first_diff (got, shadow + off, len);
      CHECKF (d < 0, "op %u read %u@%" PRIu64 ": byte %" PRIu64 " is %#x, "
              "shadow %#x", k, len, off, off + (uint64_t) d, got[d],
              shadow[off + (uint64_t) d]);
    }
    /* Every few operations, a read of the bytes just around the range. */
    if (k % 7 == 0) {
      uint64_t a = off >= 3 ? off - 3 : 0;
      uint64_t b = off + len + 3 <= size ? off + len + 3 : size;
      CHECK_OK (gs_pread (dev, got, (uint32_t) (b - a), a));
      d = first_diff (got, shadow + a, b - a);
      CHECKF (d < 0, "op %u around %u@%" PRIu64 ": byte %" PRIu64, k, len, off,
              a + (uint64_t) d);
    }
  }
  check_all (dev, size);

  /* Out of range: refused, nothing changes. */
  memset (buf, 0x77, sizeof buf);
  CHECK (gs_pwrite (dev, buf, 2, size - 1) == -EINVAL);
  CHECK (gs_pwrite (dev, buf, 1, size) == -EINVAL);
  CHECK (gs_pwrite (dev, buf, PAGE, UINT64_MAX - 10) == -EINVAL);
  CHECK (gs_pread (dev, got, 2, size - 1) == -EINVAL);
  CHECK (gs_pread (dev, got, 1, UINT64_MAX) == -EINVAL);
  CHECK (gs_trim (dev, PAGE, size - PAGE + 1) == -EINVAL);
  CHECK (gs_zero (dev, PAGE, size, 0) == -EINVAL);
  CHECK_OK (gs_pread (dev, got, 0, size));
  CHECK_OK (gs_pwrite (dev, buf, 0, size));
  CHECK_OK (gs_pwrite (dev, buf, 1, size - 1));
  shadow[size - 1] = 0x77;
  check_all (dev, size);

  free (shadow);
  shadow = NULL;
  gs_device_destroy (dev);
}

/* --- concurrent partial writes to the same slots --- */

#define THREADS 4
#define SHARED_SLOTS 3
#define ITERATIONS 3000

static struct gs_device *cdev;
static uint64_t cbase;      /* first shared slot's offset */

/* Thread @t owns the bytes at offsets o with (o / STRIPE) % THREADS == t
 * inside the shared slots; stripes of odd sizes cross slot boundaries. */
#define STRIPE 333u

static void *
striper (void *arg)
{
  unsigned t = (unsigned) (uintptr_t) arg;
  const uint32_t total = SHARED_SLOTS * PAGE;
  unsigned char mine[STRIPE], back[STRIPE];
  unsigned it;
  uint64_t s = 1000 + t;

  for (it = 0; it < ITERATIONS; it++) {
    uint32_t o;
    for (o = t * STRIPE; o < total; o += THREADS * STRIPE) {
      uint32_t n = total - o < STRIPE ? total - o : STRIPE;
      unsigned char v = (unsigned char) (it * THREADS + t + 1);
      if (it % 5 == 4)
        fill_random (mine, n, &s);      /* incompressible page mixes */
      else
        memset (mine, v, n);
      CHECK_OK (gs_pwrite (cdev, mine, n, cbase + o));
      /* Nobody else writes these bytes: they read back at once. */
      CHECK_OK (gs_pread (cdev, back, n, cbase + o));
      CHECKF (memcmp (back, mine, n) == 0,
              "thread %u iteration %u: lost update at +%u", t, it, o);
      if (it == ITERATIONS - 1)
        memcpy (shadow + o, mine, n);
    }
    /* Now and then zero (not trim) a whole stripe of ours. */
    if (it % 97 == 13 && it != ITERATIONS - 1) {
      o = t * STRIPE;
      CHECK_OK (gs_zero (cdev, STRIPE, cbase + o, 0));
      CHECK_OK (gs_pread (cdev, back, STRIPE, cbase + o));
      memset (mine, 0, STRIPE);
      CHECK (memcmp (back, mine, STRIPE) == 0);
    }
  }
  return NULL;
}

static void
concurrent (void)
{
  struct gs_config cfg = test_config (5 * 512 * PAGE + 3 * PAGE, 64 << 20);
  pthread_t th[THREADS];
  unsigned t;
  static unsigned char all[SHARED_SLOTS * PAGE];
  long d;

  CHECK_OK (gs_device_create (&cfg, &cdev));
  /* The shared slots straddle a cluster boundary. */
  cbase = 2 * 512 * PAGE - PAGE;
  shadow = calloc (1, SHARED_SLOTS * PAGE);
  CHECK (shadow != NULL);
  for (t = 0; t < THREADS; t++)
    CHECK_OK (pthread_create (&th[t], NULL, striper, (void *) (uintptr_t) t));
  for (t = 0; t < THREADS; t++)
    CHECK_OK (pthread_join (th[t], NULL));
  CHECK_OK (gs_pread (cdev, all, sizeof all, cbase));
  d = first_diff (all, shadow, sizeof all);
  CHECKF (d < 0, "byte +%ld (stripe of thread %ld): %#x, last written %#x",
          d, (d / (long) STRIPE) % THREADS, all[d], shadow[d]);
  free (shadow);
  shadow = NULL;
  gs_device_destroy (cdev);
}

int
main (int argc, char *argv[])
{
  uint64_t seed, s;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;

  single (3 * 512 * PAGE + 77 * PAGE, &s, 20000);   /* not a power of two */
  single (PAGE, &s, 2000);                          /* one slot */
  single (7 * PAGE, &s, 5000);                      /* part of one cluster */
  single (513 * PAGE, &s, 5000);                    /* one slot past a cluster */
  concurrent ();
  return 0;
}
