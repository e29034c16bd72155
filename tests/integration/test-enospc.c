/* ghostswap integration test: running out of RAM.
 *
 * size=1G ram-limit=4M: incompressible 4 KiB pages are written at
 * increasing offsets until a write fails; the error must be ENOSPC.  Then:
 * every earlier page reads back intact, the refused page reads as zero, a
 * partial overwrite at the limit either succeeds or changes nothing,
 * zero-page and same-filled writes, zero and trim still succeed, trimming
 * pages frees room for new ones, and the server keeps serving.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "harness.h"

#define SLOT 4096u
#define RAM_LIMIT (4u * 1024 * 1024)
#define DEV_SIZE (1024u * 1024 * 1024)
#define MAX_PAGES (64u * 1024 * 1024 / SLOT)   /* give up after 64 MiB */
#define TRIMMED 64u

static uint64_t seed;
static unsigned char page5[SLOT];   /* page 5 after the partial overwrite */
static bool have_page5;

/* The contents of page @i (incompressible), from the seed. */
static void
page_data (uint64_t i, unsigned char *buf)
{
  struct rng r;

  if (i == 5 && have_page5) {
    memcpy (buf, page5, SLOT);
    return;
  }
  rng_seed (&r, seed ^ (i * UINT64_C (0x9e3779b97f4a7c15)));
  fill_kind (&r, buf, SLOT, i * SLOT, 3);
}

/* Write page @i; return 0 or the errno. */
static int
write_page (struct nbd_handle *h, uint64_t i)
{
  unsigned char buf[SLOT];

  page_data (i, buf);
  if (nbd_pwrite (h, buf, SLOT, i * SLOT, 0) == -1)
    return nbd_get_errno () ? nbd_get_errno () : -1;
  return 0;
}

static void
expect_page (struct nbd_handle *h, uint64_t i, bool zero, const char *what)
{
  unsigned char want[SLOT], got[SLOT];

  if (zero)
    memset (want, 0, SLOT);
  else
    page_data (i, want);
  if (nbd_pread (h, got, SLOT, i * SLOT, 0) == -1)
    test_fail_nbd ("%s: pread of page %" PRIu64, what, i);
  if (memcmp (got, want, SLOT) != 0)
    test_fail ("%s: page %" PRIu64 " (offset %" PRIu64 ") %s (first "
               "difference at +%zd)", what, i, i * SLOT,
               zero ? "is not zero" : "does not read back as written",
               first_diff (got, want, SLOT));
}

/* Fill pages from @first on until the RAM tier is full; return how many
 * fit.  The engine appends through several streams (one per server thread,
 * each with an open segment), so one ENOSPC does not mean that every
 * stream is full: a page counts as refused only after RETRIES refusals in
 * a row, and it is then retried no more. */
#define RETRIES 64
static uint64_t
fill (struct nbd_handle *h, uint64_t first, const char *what)
{
  uint64_t i;
  unsigned refusals = 0, total_refusals = 0;
  int err;

  for (i = first; i < first + MAX_PAGES; ) {
    err = write_page (h, i);
    if (err == 0) {
      refusals = 0;
      i++;
      continue;
    }
    if (err != ENOSPC)
      test_fail ("%s: write of page %" PRIu64 " failed with errno %d (%s): "
                 "%s; expected ENOSPC", what, i, err, strerror (err),
                 nbd_get_error ());
    total_refusals++;
    if (++refusals == RETRIES) {
      printf ("%s: %s: %" PRIu64 " pages fit; %u ENOSPC in all, the last "
              "%u on page %" PRIu64 "\n", test_name, what, i - first,
              total_refusals, RETRIES, i);
      return i - first;
    }
  }
  test_fail ("%s: no ENOSPC after writing %u MiB of incompressible pages "
             "with ram-limit=%u MiB", what, MAX_PAGES * SLOT >> 20,
             RAM_LIMIT >> 20);
}

int
main (int argc, char **argv)
{
  const char *args[] = { "size=1G", "ram-limit=4M", NULL };
  /* Page indexes of the areas used besides [0, n). */
  const uint64_t Z = 100000, R = 200000;
  struct server srv;
  struct nbd_handle *h;
  uint64_t n, extra, refill, i;
  unsigned char buf[SLOT], patch[100], want[SLOT];
  int err;

  harness_init (argc, argv);
  seed = test_seed ();

  if (server_start (&srv, args) != 0)
    test_fail ("nbdkit exited at start (status 0x%x)", srv.exit_status);
  h = server_connect (&srv);
  if (nbd_get_size (h) != DEV_SIZE)
    test_fail ("nbd_get_size = %" PRId64, nbd_get_size (h));

  /* 1. Fill the RAM tier: pages [0, n) hold data, page n was refused. */
  n = fill (h, 0, "fill");
  if (n * SLOT < RAM_LIMIT / 4)
    test_fail ("ENOSPC after only %" PRIu64 " pages (%" PRIu64 " KiB) with "
               "ram-limit=%u KiB", n, n * SLOT / 1024, RAM_LIMIT / 1024);
  if (n * SLOT > RAM_LIMIT + RAM_LIMIT / 4)
    test_fail ("%" PRIu64 " incompressible pages (%" PRIu64 " KiB) were "
               "stored with ram-limit=%u KiB", n, n * SLOT / 1024,
               RAM_LIMIT / 1024);

  /* The refused writes did not change the page. */
  expect_page (h, n, true, "refused page");

  /* 2. Everything written before reads back. */
  for (i = 0; i < n; i++)
    expect_page (h, i, false, "after ENOSPC");

  /* 3. A partial overwrite at the limit: done or nothing. */
  page_data (5, want);
  memset (patch, 0x5a, sizeof patch);
  if (nbd_pwrite (h, patch, sizeof patch, 5 * SLOT + 1000, 0) == 0) {
    memcpy (want + 1000, patch, sizeof patch);
    printf ("%s: partial overwrite at the limit succeeded\n", test_name);
  }
  else if (nbd_get_errno () != ENOSPC)
    test_fail_nbd ("partial overwrite at the limit: expected success or "
                   "ENOSPC");
  else
    printf ("%s: partial overwrite at the limit: ENOSPC\n", test_name);
  if (nbd_pread (h, buf, SLOT, 5 * SLOT, 0) == -1)
    test_fail_nbd ("pread of page 5");
  if (memcmp (buf, want, SLOT) != 0)
    test_fail ("page 5 after the partial overwrite at the limit is neither "
               "the old nor the new contents (first difference at +%zd)",
               first_diff (buf, want, SLOT));
  /* From now on page 5 is expected to hold @want. */
  memcpy (page5, want, SLOT);
  have_page5 = true;

  /* 4. Writes that need no RAM data still work at the limit. */
  memset (buf, 0, SLOT);
  if (nbd_pwrite (h, buf, SLOT, Z * SLOT, 0) == -1)
    test_fail_nbd ("zero-page pwrite at the limit");
  expect_page (h, Z, true, "zero-page write at the limit");
  {
    const uint64_t w = UINT64_C (0xdeadbeefcafef00d);
    unsigned char got[SLOT];
    for (unsigned k = 0; k < SLOT; k += 8)
      memcpy (buf + k, &w, 8);
    if (nbd_pwrite (h, buf, SLOT, (Z + 1) * SLOT, 0) == -1)
      test_fail_nbd ("same-filled (0xdeadbeefcafef00d) pwrite at the limit");
    if (nbd_pread (h, got, SLOT, (Z + 1) * SLOT, 0) == -1)
      test_fail_nbd ("pread of the same-filled page");
    if (memcmp (got, buf, SLOT) != 0)
      test_fail ("same-filled page written at the limit reads back wrong");
  }
  if (nbd_zero (h, 64 * SLOT, (Z + 100) * SLOT, 0) == -1)
    test_fail_nbd ("zero (may trim) of 64 slots at the limit");
  if (nbd_zero (h, 64 * SLOT, (Z + 200) * SLOT,
                LIBNBD_CMD_FLAG_NO_HOLE) == -1)
    test_fail_nbd ("zero NO_HOLE of 64 slots at the limit");
  if (nbd_zero (h, 64 * SLOT, (Z + 300) * SLOT,
                LIBNBD_CMD_FLAG_FAST_ZERO) == -1)
    test_fail_nbd ("fast zero of 64 slots at the limit");
  if (nbd_trim (h, 64 * SLOT, (Z + 400) * SLOT, 0) == -1)
    test_fail_nbd ("trim of 64 never-written slots at the limit");
  expect_page (h, Z + 250, true, "zeroed page");
  /* Zeroes in a partial slot at the limit (read-modify-write to zeroes):
   * done or nothing, like the partial overwrite. */
  memcpy (want, page5, SLOT);
  if (nbd_zero (h, 100, 5 * SLOT + 7, LIBNBD_CMD_FLAG_NO_HOLE) == 0)
    memset (want + 7, 0, 100);
  else if (nbd_get_errno () != ENOSPC)
    test_fail_nbd ("zero of 100 bytes inside data page 5 at the limit: "
                   "expected success or ENOSPC");
  else
    printf ("%s: partial zero at the limit: ENOSPC\n", test_name);
  if (nbd_pread (h, buf, SLOT, 5 * SLOT, 0) == -1)
    test_fail_nbd ("pread of page 5");
  if (memcmp (buf, want, SLOT) != 0)
    test_fail ("page 5 after zeroing 100 bytes at the limit is neither the "
               "old nor the new contents (first difference at +%zd)",
               first_diff (buf, want, SLOT));
  memcpy (page5, want, SLOT);

  /* That freed (almost) nothing: at most what the streams' open segments
   * still hold fits. */
  extra = fill (h, n, "after zero/trim of empty slots");
  if (extra > 8 * 16)
    test_fail ("%" PRIu64 " more data pages fit after zeroing and trimming "
               "only empty slots", extra);
  n += extra;

  /* 5. Trimming data frees room. */
  if (nbd_trim (h, TRIMMED * SLOT, 0, 0) == -1)
    test_fail_nbd ("trim of pages 0..%u at the limit", TRIMMED - 1);
  err = write_page (h, n);
  if (err != 0)
    test_fail ("after trimming %u data pages, writing page %" PRIu64
               " still fails with errno %d (%s)", TRIMMED, n, err,
               strerror (err));
  n++;
  for (i = 0; i < TRIMMED; i++)
    expect_page (h, i, true, "trimmed page");
  for (i = TRIMMED; i < n; i++)
    expect_page (h, i, false, "data page after the trim");

  /* Zeroing data pages (NO_HOLE: same-filled, no RAM) frees room too. */
  if (nbd_zero (h, TRIMMED * SLOT, TRIMMED * SLOT, LIBNBD_CMD_FLAG_NO_HOLE)
      == -1)
    test_fail_nbd ("zero NO_HOLE of %u data pages", TRIMMED);

  /* Fill the freed room again, elsewhere. */
  refill = fill (h, R, "refill");
  if (refill == 0)
    test_fail ("no page fits after freeing %u pages", 2 * TRIMMED);
  for (i = 0; i < refill; i++)
    expect_page (h, R + i, false, "refilled page");
  for (i = 0; i < 2 * TRIMMED; i++)
    expect_page (h, i, true, "freed page after the refill");
  for (i = 2 * TRIMMED; i < n; i++)
    expect_page (h, i, false, "old page after the refill");

  /* 6. Still serving: a read on a fresh connection. */
  nbd_shutdown (h, 0);
  nbd_close (h);
  h = server_connect (&srv);
  expect_page (h, n - 1, false, "last page, new connection");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  printf ("%s: ok\n", test_name);
  return 0;
}
