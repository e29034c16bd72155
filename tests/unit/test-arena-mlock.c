/* Freed arena blocks go back to the kernel under mlockall too.
 *
 * The service locks the process (mlockall with MCL_ONFAULT), and then
 * MADV_DONTNEED is refused for locked pages: the arena used to keep every
 * freed block resident, so what compaction and recompression freed never
 * left RSS.  Here the test locks itself the same way, fills two chunks of
 * 68 KiB blocks, frees all but one block of each, and checks that RSS fell
 * by most of what was freed, that the freed ranges are locked again
 * (VmLck unchanged) and come back when reused, and that the mapping count stayed small (the
 * unlocked and relocked ranges merge back into their chunk).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "test.h"

#define BLOCK (17u * 4096u)
#define N (2 * GS_ARENA_CHUNK_BLOCKS)

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

/* A field of /proc/self/status in KiB. */
static long
status_kib (const char *field)
{
  char line[256];
  long v = -1;
  size_t n = strlen (field);
  FILE *f = fopen ("/proc/self/status", "r");

  CHECK (f != NULL);
  while (fgets (line, sizeof line, f))
    if (strncmp (line, field, n) == 0 && line[n] == ':')
      v = atol (line + n + 1);
  fclose (f);
  return v;
}

static long
mappings (void)
{
  char line[512];
  long n = 0;
  FILE *f = fopen ("/proc/self/maps", "r");

  CHECK (f != NULL);
  while (fgets (line, sizeof line, f))
    n++;
  fclose (f);
  return n;
}

int
main (int argc, char **argv)
{
  static void *block[N];
  struct gs_arena a;
  long rss0, rss1, rss2, lck1, lck2, maps1, maps2;  /* KiB, lines */
  const long freed_kib = (long) (N - 2) * BLOCK / 1024;
  unsigned i;

  TEST_INIT (argc, argv);
#if defined (__SANITIZE_ADDRESS__) || defined (__SANITIZE_THREAD__)
  SKIP ("a sanitizer's shadow memory makes RSS meaningless here");
#endif
  if (getenv ("GHOSTSWAP_SANITIZE"))
    SKIP ("GHOSTSWAP_SANITIZE is set: RSS is not this process's own");
  if (mlockall (MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0)
    SKIP ("mlockall: %s (RLIMIT_MEMLOCK?)", strerror (errno));

  gs_arena_init (&a, BLOCK);
  for (i = 0; i < N; i++) {
    block[i] = gs_arena_alloc (&a);
    CHECK (block[i] != NULL);
    memset (block[i], 0x5a, BLOCK);
  }
  rss1 = status_kib ("VmRSS");
  lck1 = status_kib ("VmLck");
  maps1 = mappings ();
  /* All but the first block of each chunk (the chunks stay mapped). */
  for (i = 0; i < N; i++)
    if (i % GS_ARENA_CHUNK_BLOCKS != 0)
      gs_arena_free (&a, block[i]);
  rss2 = status_kib ("VmRSS");
  lck2 = status_kib ("VmLck");
  maps2 = mappings ();
  fprintf (stderr, "%s: freed %ld KiB: RSS %ld -> %ld KiB, locked %ld -> "
           "%ld KiB, mappings %ld -> %ld\n", test_argv0, freed_kib, rss1,
           rss2, lck1, lck2, maps1, maps2);
  CHECKF (rss1 - rss2 >= freed_kib * 9 / 10, "RSS fell by %ld KiB of %ld",
          rss1 - rss2, freed_kib);
  CHECKF (maps2 <= maps1 + 4, "mappings %ld -> %ld", maps1, maps2);
  /* The freed ranges are locked again (VmLck counts locked mappings,
   * resident or not): reused, they cannot be swapped out. */
  CHECKF (lck2 == lck1, "locked %ld -> %ld KiB", lck1, lck2);

  /* Reused blocks come back. */
  for (i = 0; i < N; i++)
    if (i % GS_ARENA_CHUNK_BLOCKS != 0) {
      block[i] = gs_arena_alloc (&a);
      CHECK (block[i] != NULL);
      memset (block[i], 0xa5, BLOCK);
    }
  rss0 = status_kib ("VmRSS");
  CHECKF (rss0 - rss2 >= freed_kib * 9 / 10, "RSS %ld -> %ld KiB after "
          "reuse", rss2, rss0);
  CHECK (status_kib ("VmLck") == lck1);
  CHECKF (mappings () <= maps1 + 4, "mappings %ld -> %ld after reuse", maps1,
          mappings ());
  gs_arena_destroy (&a);
  munlockall ();
  return 0;
}
