/* swap-fill - the workload of bench-swapoff.sh: allocate SIZE bytes of
 * anonymous memory, write every 4 KiB page with fio-like 60 %-compressible
 * data (in each 512-byte chunk, 40 % random bytes and 60 % zeroes, every
 * page different), then sleep, keeping the memory, so that whatever the
 * memory cgroup it runs in cannot hold stays in swap.
 *
 *   swap-fill SIZE READY_FILE
 *
 * SIZE takes a K/M/G suffix (powers of 1024).  When every page has been
 * written, READY_FILE is created.  Then:
 *   SIGUSR1  check every page against what was written (reading them all,
 *            so faulting back any still in swap), print "verify ok N" or
 *            "verify BAD N" on stdout, and go on sleeping;
 *   SIGTERM  exit.
 * Transparent huge pages are turned off for the area (MADV_NOHUGEPAGE) so
 * that the kernel swaps it 4 KiB page by page.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096u

static volatile sig_atomic_t verify_wanted, stop_wanted;

static void
on_signal (int sig)
{
  if (sig == SIGUSR1)
    verify_wanted = 1;
  else
    stop_wanted = 1;
}

static uint64_t
xorshift (uint64_t *s)
{
  uint64_t x = *s;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* Page @i's contents into @p. */
static void
fill_page (unsigned char *p, uint64_t i)
{
  uint64_t s = (i + 1) * 0x9e3779b97f4a7c15ull;
  size_t c, k;

  for (c = 0; c < PAGE; c += 512) {
    for (k = 0; k < 205; k += 8) {
      uint64_t v = xorshift (&s);
      memcpy (p + c + k, &v, k + 8 <= 205 ? 8 : 205 - k);
    }
    memset (p + c + 205, 0, 512 - 205);
  }
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
  return *end ? 0 : v;
}

int
main (int argc, char **argv)
{
  unsigned char *mem, page[PAGE];
  uint64_t size, n, i, bad;
  struct sigaction sa;
  sigset_t block, old;
  FILE *fp;

  if (argc != 3 || (size = parse_size (argv[1])) < PAGE) {
    fprintf (stderr, "usage: swap-fill SIZE READY_FILE\n");
    return 1;
  }
  n = size / PAGE;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction (SIGUSR1, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);

  mem = mmap (NULL, n * PAGE, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    perror ("swap-fill: mmap");
    return 1;
  }
  madvise (mem, n * PAGE, MADV_NOHUGEPAGE);
  for (i = 0; i < n && !stop_wanted; i++)
    fill_page (mem + i * PAGE, i);
  if (stop_wanted)
    return 0;
  fp = fopen (argv[2], "we");
  if (!fp) {
    perror (argv[2]);
    return 1;
  }
  fprintf (fp, "%llu\n", (unsigned long long) n);
  fclose (fp);

  sigemptyset (&block);
  sigaddset (&block, SIGUSR1);
  sigaddset (&block, SIGTERM);
  sigaddset (&block, SIGINT);
  sigprocmask (SIG_BLOCK, &block, &old);
  for (;;) {
    while (!verify_wanted && !stop_wanted)
      sigsuspend (&old);
    if (stop_wanted)
      return 0;
    verify_wanted = 0;
    sigprocmask (SIG_SETMASK, &old, NULL);
    for (bad = 0, i = 0; i < n; i++) {
      fill_page (page, i);
      if (memcmp (page, mem + i * PAGE, PAGE) != 0)
        bad++;
    }
    printf ("verify %s %llu\n", bad ? "BAD" : "ok", (unsigned long long) n);
    fflush (stdout);
    sigprocmask (SIG_BLOCK, &block, NULL);
  }
}
