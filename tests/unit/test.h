/* ghostswap unit tests: tiny helpers shared by tests/unit/test-*.c.
 *
 * A test exits 0 when it passes, 1 when it fails and 77 when it is skipped.
 * A failure prints "ARGV0: test failed: WHAT (file:line)" on stderr.
 * Random tests take their seed from $GS_TEST_SEED (else the time) and
 * print it, so that a failure can be replayed.
 */
#ifndef GHOSTSWAP_TEST_H
#define GHOSTSWAP_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "entry.h"
#include "ghostswap/config.h"

static const char *test_argv0 = "test";

#define TEST_INIT(argc, argv) \
  do { if ((argc) > 0) test_argv0 = (argv)[0]; } while (0)

/* CHECK(cond): fail the test, naming the condition, unless @cond holds. */
#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s: test failed: %s (%s:%d)\n",                 \
               test_argv0, #cond, __FILE__, __LINE__);                  \
      exit (1);                                                         \
    }                                                                   \
  } while (0)

/* CHECKF(cond, fmt, ...): as CHECK, with a printf-style explanation. */
#define CHECKF(cond, ...)                                               \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s: test failed: %s (%s:%d): ",                 \
               test_argv0, #cond, __FILE__, __LINE__);                  \
      fprintf (stderr, __VA_ARGS__);                                    \
      fputc ('\n', stderr);                                             \
      exit (1);                                                         \
    }                                                                   \
  } while (0)

/* CHECK_OK(call): the call returns 0. */
#define CHECK_OK(call)                                                  \
  do {                                                                  \
    long long r_ = (long long) (call);                                  \
    CHECKF (r_ == 0, "%s returned %lld", #call, r_);                    \
  } while (0)

#define SKIP(...)                                                       \
  do {                                                                  \
    fprintf (stderr, "%s: skipped: ", test_argv0);                      \
    fprintf (stderr, __VA_ARGS__);                                      \
    fputc ('\n', stderr);                                               \
    exit (77);                                                          \
  } while (0)

#define PAGE GS_SLOT_SIZE

/* --- random numbers (xoshiro-like splitmix, per caller state) --- */

static inline uint64_t
rnd_next (uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. */
static inline uint64_t
rnd_below (uint64_t *s, uint64_t n)
{
  return rnd_next (s) % n;
}

/* The seed: $GS_TEST_SEED or the time; printed for replay. */
static inline uint64_t
test_seed (void)
{
  const char *env = getenv ("GS_TEST_SEED");
  uint64_t seed;

  if (env && *env)
    seed = strtoull (env, NULL, 0);
  else
    seed = (uint64_t) time (NULL) ^ ((uint64_t) clock () << 20);
  fprintf (stderr, "%s: seed %" PRIu64 " (set GS_TEST_SEED to replay)\n",
           test_argv0, seed);
  return seed;
}

/* --- page contents of several kinds --- */

enum page_kind {
  KIND_ZERO,        /* all zero: same-filled, inline */
  KIND_PATTERN,     /* a repeated word that fits inline */
  KIND_WIDE,        /* a repeated word that needs the pattern table */
  KIND_TEXT,        /* compressible, variable ratio */
  KIND_RANDOM,      /* incompressible: stored raw */
  KIND_COUNT
};

/* @len bytes of @word repeated, in native byte order (as the engine
 * reads a page's words). */
static inline void
fill_words (unsigned char *p, size_t len, uint64_t word)
{
  unsigned char w[8];
  size_t i;

  memcpy (w, &word, 8);
  for (i = 0; i < len; i++)
    p[i] = w[i % 8];
}

static inline void
fill_random (unsigned char *p, size_t len, uint64_t *s)
{
  size_t i;
  uint64_t v = 0;

  for (i = 0; i < len; i++) {
    if (i % 8 == 0)
      v = rnd_next (s);
    p[i] = (unsigned char) (v >> (8 * (i % 8)));
  }
}

/* Text-like bytes: words from a small vocabulary with random numbers
 * mixed in, so that pages compress by varied ratios. */
static inline void
fill_text (unsigned char *p, size_t len, uint64_t *s)
{
  static const char *const words[] = {
    "ghost", "swap", "slot", "cluster", "entry", "zstd", "page", "pool",
    "segment", "compaction", "the", "of", "and", "kernel", "memory", "\n",
  };
  unsigned noise = (unsigned) rnd_below (s, 5);   /* 0: very compressible */
  size_t i = 0;

  while (i < len) {
    const char *w = words[rnd_below (s, 16)];
    size_t n = strlen (w);
    if (noise > 0 && rnd_below (s, 6) < noise) {
      char num[24];
      n = (size_t) snprintf (num, sizeof num, "%" PRIu64 " ",
                             rnd_next (s) % 100000000);
      if (n > len - i) n = len - i;
      memcpy (p + i, num, n);
    }
    else {
      if (n > len - i) n = len - i;
      memcpy (p + i, w, n);
    }
    i += n;
    if (i < len)
      p[i++] = ' ';
  }
}

/* A wide pattern word: does not survive sign extension from 59 bits. */
static inline uint64_t
wide_word (uint64_t *s)
{
  uint64_t w = rnd_next (s);
  /* The bits above PATTERN_BITS - 1 must not all be equal. */
  w &= ~(1ull << (GS_SAME_PATTERN_BITS - 1));
  w |= 1ull << 63;
  return w;
}

/* An inline pattern word: sign-extended from PATTERN_BITS. */
static inline uint64_t
inline_word (uint64_t *s)
{
  const uint64_t high = ~0ull << (GS_SAME_PATTERN_BITS - 1);
  uint64_t w = rnd_next (s);

  if (w & (1ull << (GS_SAME_PATTERN_BITS - 1)))
    w |= high;
  else
    w &= ~high;
  return w;
}

static inline void
fill_kind (unsigned char *page, enum page_kind kind, uint64_t *s)
{
  switch (kind) {
  case KIND_ZERO: memset (page, 0, PAGE); break;
  case KIND_PATTERN: fill_words (page, PAGE, inline_word (s)); break;
  case KIND_WIDE: fill_words (page, PAGE, wide_word (s)); break;
  case KIND_TEXT: fill_text (page, PAGE, s); break;
  default: fill_random (page, PAGE, s); break;
  }
}

static inline double
now_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* First differing byte of two buffers, or -1. */
static inline long
first_diff (const void *a, const void *b, size_t len)
{
  const unsigned char *x = a, *y = b;
  size_t i;

  for (i = 0; i < len; i++)
    if (x[i] != y[i])
      return (long) i;
  return -1;
}

/* A config for a test device: @size bytes, @ram_limit bytes of pool. */
static inline struct gs_config
test_config (uint64_t size, uint64_t ram_limit)
{
  struct gs_config cfg;

  gs_config_init (&cfg);
  cfg.size = size;
  cfg.ram_limit = ram_limit;
  cfg.compression_level = 1;
  cfg.compact_threshold = 25;
  return cfg;
}

#endif /* GHOSTSWAP_TEST_H */
