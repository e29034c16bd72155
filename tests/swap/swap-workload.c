/* swap-workload - the workload of the end-to-end swap tests and of
 * bench/bench-swap.sh: allocate anonymous memory, fill every page with a
 * verifiable mix of contents, then read every page back several times, in
 * a different order each pass, checking every byte against what it
 * regenerates.  Run in a memory cgroup whose limit is below --size, most
 * of it has to go through swap and come back.
 *
 *   swap-workload --size BYTES [--passes N] [--seed S]
 *                 [--hold] [--ready-file PATH]
 *
 * BYTES takes a K, M or G suffix (powers of 1024).  Page I (of the area's
 * 4 KiB pages) gets, by a hash of the seed and I (so that the kinds are
 * spread over the area, not in stripes):
 *
 *   1/8  zero                the kernel keeps these in its swap zeromap
 *                            (Linux >= 6.12): they reach no device
 *   1/8  same-filled         one non-zero 8-byte word repeated (the
 *                            engine's same-filled tier)
 *   1/2  compressible        text-like: words from a small vocabulary,
 *                            chosen by a PRNG seeded from the seed and I
 *                            (zstd makes about 3x of it)
 *   1/4  incompressible      PRNG bytes from the seed and I
 *
 * Every page starts (except zero and same-filled ones) with its own index
 * and the seed, so that a page returned in the place of another is caught
 * even if both have the same kind.
 *
 * Passes: 1 goes forward, 2 in a random order, 3 backward, then random
 * orders again (each from another seed).  The first wrong byte ends the
 * program with status 1 and a message naming the page, its kind, the
 * offset, the byte expected and the byte found.
 *
 * --hold: after the fill, create --ready-file (if given), print "filled",
 * and wait for SIGUSR1 or a line on standard input (end of file on
 * standard input is ignored: with </dev/null only the signal releases
 * it) before verifying.  So a test can look at the swap device while the
 * pages sit there.  Without --hold, --ready-file is still created after
 * the fill.  SIGTERM/SIGINT end it (status 2 if it is waiting).
 *
 * Output on standard output, "key value" lines for scripts:
 *
 *   pages N  zero N  same N  text N  random N
 *   fill_seconds S
 *   verify_pass P ORDER S
 *   verify_seconds S          (all passes)
 *   pages_checked N           (pages * passes)
 *   result ok
 *
 * Transparent huge pages are turned off for the area (MADV_NOHUGEPAGE),
 * so that the kernel swaps it 4 KiB page by page.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

enum kind { K_ZERO, K_SAME, K_TEXT, K_RANDOM };
static const char *const kind_name[] = { "zero", "same-filled", "text", "random" };

static volatile sig_atomic_t release_wanted, stop_wanted;

static void
on_signal (int sig)
{
  if (sig == SIGUSR1)
    release_wanted = 1;
  else
    stop_wanted = 1;
}

/* splitmix64: a good 64-bit mix, used both as a hash and as a PRNG. */
static inline uint64_t
mix64 (uint64_t x)
{
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static inline uint64_t
next64 (uint64_t *s)
{
  *s += 0x9e3779b97f4a7c15ull;
  uint64_t x = *s;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t seed = 1;

static inline uint64_t
page_hash (uint64_t i)
{
  return mix64 (mix64 (seed) ^ (i * 0xd6e8feb86659fd93ull));
}

static enum kind
page_kind (uint64_t i)
{
  switch (page_hash (i) >> 61) {          /* 0..7 */
  case 0: return K_ZERO;
  case 1: return K_SAME;
  case 2: case 3: case 4: case 5: return K_TEXT;
  default: return K_RANDOM;
  }
}

/* Text-like pages are made of 8-byte tokens, 64 of them, chosen 6 bits
 * at a time: cheap to make (one store a token), and zstd -1 makes about
 * 3x of a page of them, near what it makes of real memory. */
static const char *const words[64] = {
  "the", "of", "and", "to", "in", "is", "page", "swap", "memory", "kernel",
  "slot", "cluster", "device", "ghost", "backing", "write", "read", "zero",
  "compress", "table", "entry", "reverse", "map", "drain", "migrate",
  "cgroup", "limit", "process", "thread", "lock", "queue", "request",
  "{", "}", "(", ")", ";", "=", "0", "1", "NULL", "return", "if", "else",
  "int", "char", "struct", "static", "void", "uint64_t", "size_t", "for",
  "while", "break", "\n", "\n\t", "->", ".", ",", "i", "n", "p", "\"",
  "x",
};
static char tokens[64][8];

static void
make_tokens (void)
{
  size_t j, len;

  for (j = 0; j < 64; j++) {
    len = strlen (words[j]);
    if (len > 7)
      len = 7;
    memset (tokens[j], ' ', 8);
    memcpy (tokens[j], words[j], len);
  }
}

/* Page @i's contents into @p. */
static void
make_page (unsigned char *p, uint64_t i)
{
  uint64_t h = page_hash (i), s = h, w;
  size_t off;

  switch (page_kind (i)) {
  case K_ZERO:
    memset (p, 0, PAGE);
    return;
  case K_SAME:
    w = h | 1;                  /* never zero */
    for (off = 0; off < PAGE; off += 8)
      memcpy (p + off, &w, 8);
    return;
  case K_TEXT:
    memcpy (p, &i, 8);
    memcpy (p + 8, &seed, 8);
    for (off = 16; off < PAGE; ) {
      uint64_t r = next64 (&s);
      int k;
      /* Ten tokens from each 64-bit draw. */
      for (k = 0; k < 10 && off < PAGE; k++, r >>= 6, off += 8)
        memcpy (p + off, tokens[r & 63], 8);
    }
    return;
  case K_RANDOM:
    memcpy (p, &i, 8);
    memcpy (p + 8, &seed, 8);
    for (off = 16; off < PAGE; off += 8) {
      w = next64 (&s);
      memcpy (p + off, &w, 8);
    }
    return;
  }
}

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t
parse_size (const char *s)
{
  char *end;
  uint64_t v;

  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno || end == s)
    return 0;
  switch (*end) {
  case 'k': case 'K': v <<= 10; end++; break;
  case 'm': case 'M': v <<= 20; end++; break;
  case 'g': case 'G': v <<= 30; end++; break;
  case '\0': break;
  default: return 0;
  }
  if (*end == 'b' || *end == 'B')
    end++;
  return *end ? 0 : v;
}

static void
usage (FILE *fp)
{
  fprintf (fp,
           "usage: swap-workload --size BYTES [--passes N] [--seed S]\n"
           "                     [--hold] [--ready-file PATH]\n");
}

/* Wait for SIGUSR1 or a line on stdin.  Returns 0, or -1 if stopped. */
static int
hold (void)
{
  sigset_t block, old;
  int stdin_open = 1;
  char buf[256];

  sigemptyset (&block);
  sigaddset (&block, SIGUSR1);
  sigaddset (&block, SIGTERM);
  sigaddset (&block, SIGINT);
  sigprocmask (SIG_BLOCK, &block, &old);
  for (;;) {
    struct pollfd pfd = { .fd = 0, .events = POLLIN };
    struct timespec ts = { .tv_sec = 1 };
    int r;

    if (stop_wanted) {
      sigprocmask (SIG_SETMASK, &old, NULL);
      return -1;
    }
    if (release_wanted)
      break;
    /* ppoll unblocks the signals only while it waits: no lost wake-up. */
    r = ppoll (&pfd, stdin_open ? 1 : 0, &ts, &old);
    if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read (0, buf, sizeof buf);
      if (n > 0 && memchr (buf, '\n', n))
        break;
      if (n <= 0)
        stdin_open = 0;         /* EOF: only the signal releases us */
    }
  }
  sigprocmask (SIG_SETMASK, &old, NULL);
  return 0;
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "size", required_argument, NULL, 's' },
    { "passes", required_argument, NULL, 'p' },
    { "seed", required_argument, NULL, 'S' },
    { "hold", no_argument, NULL, 'H' },
    { "ready-file", required_argument, NULL, 'r' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  uint64_t size = 0, n, i, count[4] = { 0 }, *order;
  unsigned passes = 2, pass;
  int c, do_hold = 0;
  const char *ready_file = NULL;
  unsigned char *mem, *expect;
  struct sigaction sa;
  double t0, t_fill, t_verify = 0;
  char *end;

  while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 's':
      size = parse_size (optarg);
      if (size < PAGE) {
        fprintf (stderr, "swap-workload: --size: '%s' is not a size of at least 4K\n", optarg);
        return 1;
      }
      break;
    case 'p':
      errno = 0;
      passes = strtoul (optarg, &end, 10);
      if (errno || *end || end == optarg || passes > 1000) {
        fprintf (stderr, "swap-workload: --passes: '%s' is not a number of passes\n", optarg);
        return 1;
      }
      break;
    case 'S':
      errno = 0;
      seed = strtoull (optarg, &end, 0);
      if (errno || *end || end == optarg) {
        fprintf (stderr, "swap-workload: --seed: '%s' is not a number\n", optarg);
        return 1;
      }
      break;
    case 'H': do_hold = 1; break;
    case 'r': ready_file = optarg; break;
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 1;
    }
  }
  if (optind != argc || size == 0) {
    usage (stderr);
    return 1;
  }
  make_tokens ();
  n = size / PAGE;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction (SIGUSR1, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);

  mem = mmap (NULL, n * PAGE, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    perror ("swap-workload: mmap");
    return 1;
  }
  madvise (mem, n * PAGE, MADV_NOHUGEPAGE);
  expect = aligned_alloc (PAGE, PAGE);
  order = malloc (n * sizeof *order);
  if (!expect || !order) {
    perror ("swap-workload: malloc");
    return 1;
  }

  /* Fill. */
  t0 = now ();
  for (i = 0; i < n; i++) {
    if (stop_wanted)
      return 2;
    make_page (mem + i * PAGE, i);
    count[page_kind (i)]++;
  }
  t_fill = now () - t0;
  printf ("pages %" PRIu64 " zero %" PRIu64 " same %" PRIu64
          " text %" PRIu64 " random %" PRIu64 "\n",
          n, count[K_ZERO], count[K_SAME], count[K_TEXT], count[K_RANDOM]);
  printf ("fill_seconds %.3f\n", t_fill);
  fflush (stdout);

  if (ready_file) {
    FILE *fp = fopen (ready_file, "we");
    if (!fp || fprintf (fp, "%" PRIu64 "\n", n) < 0 || fclose (fp) != 0) {
      perror (ready_file);
      return 1;
    }
  }
  if (do_hold) {
    printf ("filled\n");
    fflush (stdout);
    if (hold () < 0)
      return 2;
  }

  /* Verify. */
  for (pass = 1; pass <= passes; pass++) {
    const char *name;
    double tp;

    if (pass == 1 || pass == 3) {
      name = pass == 1 ? "forward" : "backward";
      for (i = 0; i < n; i++)
        order[i] = pass == 1 ? i : n - 1 - i;
    }
    else {
      /* Fisher-Yates, from its own seed (not timed). */
      uint64_t s = mix64 (seed ^ (0x5bd1e995ull * pass));
      name = "random";
      for (i = 0; i < n; i++)
        order[i] = i;
      for (i = n - 1; i > 0; i--) {
        uint64_t j = next64 (&s) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }

    tp = now ();
    for (i = 0; i < n; i++) {
      uint64_t pg = order[i];
      const unsigned char *got = mem + pg * PAGE;

      if (stop_wanted)
        return 2;
      make_page (expect, pg);
      if (memcmp (expect, got, PAGE) != 0) {
        size_t off = 0;
        while (expect[off] == got[off])
          off++;
        fprintf (stderr,
                 "swap-workload: verify pass %u (%s): page %" PRIu64
                 " (%s) byte %zu: expected 0x%02x, found 0x%02x\n",
                 pass, name, pg, kind_name[page_kind (pg)], off,
                 expect[off], got[off]);
        printf ("result bad\n");
        return 1;
      }
    }
    tp = now () - tp;
    t_verify += tp;
    printf ("verify_pass %u %s %.3f\n", pass, name, tp);
    fflush (stdout);
  }
  printf ("verify_seconds %.3f\n", t_verify);
  printf ("pages_checked %" PRIu64 "\n", n * passes);
  printf ("result ok\n");
  free (order);
  free (expect);
  munmap (mem, n * PAGE);
  return 0;
}
