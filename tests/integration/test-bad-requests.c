/* ghostswap integration test: bad NBD input.
 *
 * A client with libnbd's client-side checks off (nbd_set_strict_mode 0)
 * sends requests past the end, of zero length, larger than the
 * advertised maximum payload, with unknown or inapplicable flags, and
 * unaligned ones; raw-socket clients (NBD requests written by hand) send
 * what libnbd cannot: payloads above its own 64 MiB limit, an unknown
 * command, a bad magic, and disconnects in the middle of the handshake,
 * of a request header, of a write's payload and before a read's reply.
 * Each gets the error the NBD protocol (doc/proto.md, "Error values")
 * asks for, as nbdkit enforces it before the plugin sees the request:
 *
 *   write or write-zeroes past the end          ENOSPC
 *   read, trim, cache, block status past it     EINVAL
 *   an unknown flag, a flag that does not apply EINVAL
 *   an unknown command                          EINVAL
 *   length 0 (unspecified by the protocol)      EINVAL (ENOSPC for write
 *                                               and zero, as nbdkit's
 *                                               range check), or success
 *                                               changing nothing
 *   read/write payload above the maximum        an error reply (nbdkit
 *                                               answers ENOMEM) after
 *                                               which the stream goes on
 *   trim/zero above the maximum payload         success (the protocol
 *                                               allows effect lengths
 *                                               above it)
 *   FUA on a read, cache or flush               accepted (the protocol
 *                                               says servers MUST)
 *   unaligned (minimum block size is 1)         success, byte-exact
 *
 * and nothing stored changes.  Throughout, a second connection keeps
 * writing and reading a region of its own against a shadow, and after
 * every case it must have made progress: a bad request fails only
 * itself.  At the end nbdkit must exit cleanly on SIGTERM.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <endian.h>

#include <libnbd.h>

#include "harness.h"

#define SLOT 4096u
#define MiB (1024u * 1024)
#define GiB (UINT64_C (1024) * MiB)
#define DEV_SIZE (6 * GiB)
/* nbdkit's own limit on read and write payloads (MAX_REQUEST_SIZE in its
 * server/internal.h), which the plugin advertises as its maximum. */
#define MAX_PAYLOAD (64 * MiB)

/* Regions: the good connection's, the bad connection's near the end,
 * and one for the large trims and zeroes. */
#define GOOD_OFF (16 * MiB)
#define GOOD_LEN (8 * MiB)
#define BAD_OFF (DEV_SIZE - 2 * MiB)
#define BIG_OFF GiB
#define BIG_LEN (UINT32_C (0xffffffff) - SLOT + 1)   /* 4 GiB - 4 KiB */
#define OVERSIZE_OFF (5 * GiB)          /* never written */

static struct server srv;
static uint64_t seed;

/* ---- the good connection ---- */

static unsigned char *good_shadow;      /* GOOD_LEN bytes */
static uint64_t good_ops;               /* atomic */
static int good_stop;                   /* atomic */

static void *
good_client (void *arg)
{
  struct nbd_handle *h = server_connect (&srv);
  unsigned char *buf = malloc (4 * SLOT);
  struct rng r;

  if (!buf)
    test_fail ("out of memory");
  rng_seed (&r, seed ^ 0x600d);
  while (!__atomic_load_n (&good_stop, __ATOMIC_ACQUIRE)) {
    uint64_t len = 1 + rng_below (&r, 3 * SLOT + 17);
    uint64_t off = rng_below (&r, GOOD_LEN - len + 1);
    unsigned op = (unsigned) rng_below (&r, 10);
    ssize_t d;

    if (op < 5) {
      fill_mixed (&r, buf, len, GOOD_OFF + off);
      if (nbd_pwrite (h, buf, len, GOOD_OFF + off, 0) == -1)
        test_fail_nbd ("good connection: pwrite %" PRIu64 " at %" PRIu64,
                       len, GOOD_OFF + off);
      memcpy (good_shadow + off, buf, len);
    }
    else if (op < 9) {
      if (nbd_pread (h, buf, len, GOOD_OFF + off, 0) == -1)
        test_fail_nbd ("good connection: pread %" PRIu64 " at %" PRIu64,
                       len, GOOD_OFF + off);
      d = first_diff (buf, good_shadow + off, len);
      if (d >= 0)
        test_fail ("good connection: byte %" PRIu64 " reads 0x%02x, "
                   "expected 0x%02x", GOOD_OFF + off + (uint64_t) d,
                   buf[d], good_shadow[off + (uint64_t) d]);
    }
    else {
      if (nbd_trim (h, len, GOOD_OFF + off, 0) == -1)
        test_fail_nbd ("good connection: trim %" PRIu64 " at %" PRIu64,
                       len, GOOD_OFF + off);
      memset (good_shadow + off, 0, len);
    }
    __atomic_add_fetch (&good_ops, 1, __ATOMIC_RELEASE);
  }
  /* The whole region, once more. */
  {
    unsigned char *all = malloc (GOOD_LEN);
    ssize_t d;

    if (!all)
      test_fail ("out of memory");
    xpread (h, all, GOOD_LEN, GOOD_OFF);
    d = first_diff (all, good_shadow, GOOD_LEN);
    if (d >= 0)
      test_fail ("good connection, final check: byte %" PRIu64
                 " reads 0x%02x, expected 0x%02x", GOOD_OFF + (uint64_t) d,
                 all[d], good_shadow[d]);
    free (all);
  }
  nbd_close (h);
  free (buf);
  return NULL;
}

/* The server still runs and the good connection has done a few more
 * requests since @what. */
static void
check_alive (const char *what)
{
  uint64_t start = __atomic_load_n (&good_ops, __ATOMIC_ACQUIRE);
  struct timespec ms = { 0, 1000 * 1000 };

  for (unsigned waited = 0; ; waited++) {
    if (kill (srv.pid, 0) != 0)
      test_fail ("after %s: nbdkit is gone", what);
    if (__atomic_load_n (&good_ops, __ATOMIC_ACQUIRE) >= start + 20)
      return;
    if (waited == 30000)
      test_fail ("after %s: the good connection made no progress for 30 s",
                 what);
    nanosleep (&ms, NULL);
  }
}

/* ---- the bad connection (libnbd, strict mode off) ---- */

static struct nbd_handle *bad;
static unsigned char *bad_shadow;       /* [BAD_OFF, DEV_SIZE) */
static unsigned cases;

/* Bytes [off, off + len) of the bad region read back as its shadow. */
static void
verify_bad (const char *what)
{
  unsigned char *buf = malloc (DEV_SIZE - BAD_OFF);
  ssize_t d;

  if (!buf)
    test_fail ("out of memory");
  xpread (bad, buf, DEV_SIZE - BAD_OFF, BAD_OFF);
  d = first_diff (buf, bad_shadow, DEV_SIZE - BAD_OFF);
  if (d >= 0)
    test_fail ("after %s: byte %" PRIu64 " reads 0x%02x, expected 0x%02x",
               what, BAD_OFF + (uint64_t) d, buf[d], bad_shadow[d]);
  free (buf);
}

/* A libnbd call @r (its return value) named @what must have failed with
 * @want (or @alt, if not 0); then nothing has changed and the server
 * serves. */
static void
expect_error (const char *what, int64_t r, int want, int alt)
{
  int e = nbd_get_errno ();

  cases++;
  if (r != -1)
    test_fail ("%s: succeeded, expected %s", what, strerror (want));
  if (e != want && (alt == 0 || e != alt))
    test_fail ("%s: failed with %s (%d: %s), expected %s%s%s", what,
               strerror (e), e, nbd_get_error (), strerror (want),
               alt ? " or " : "", alt ? strerror (alt) : "");
  printf ("%s: %s: %s, as expected\n", test_name, what, strerror (e));
  verify_bad (what);
  check_alive (what);
}

/* A call that must succeed. */
static void
expect_ok (const char *what, int64_t r)
{
  cases++;
  if (r == -1)
    test_fail_nbd ("%s", what);
  printf ("%s: %s: accepted, as expected\n", test_name, what);
  verify_bad (what);
  check_alive (what);
}

/* Length 0: any of the errors nbdkit's range check gives, or success
 * that changes nothing (the protocol leaves it unspecified). */
static void
expect_zero_len (const char *what, int64_t r, int want)
{
  if (r == -1)
    expect_error (what, r, want, EINVAL);
  else
    expect_ok (what, r);
}

static int
extent_cb (void *opaque, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  return 0;
}

static nbd_extent_callback no_extents (void)
{
  return (nbd_extent_callback) { .callback = extent_cb };
}

static void
bad_requests (void)
{
  unsigned char *buf = malloc (2 * MAX_PAYLOAD);
  struct rng r;
  int64_t max;

  if (!buf)
    test_fail ("out of memory");
  rng_seed (&r, seed ^ 0xbad);

  bad = server_connect (&srv);
  if (nbd_set_strict_mode (bad, 0) == -1)
    test_fail_nbd ("nbd_set_strict_mode 0");
  if (nbd_get_size (bad) != (int64_t) DEV_SIZE)
    test_fail ("size %" PRId64 ", expected %" PRIu64, nbd_get_size (bad),
               DEV_SIZE);

  /* The advertised block sizes: any alignment, and the payload nbdkit
   * really takes (it refuses more with ENOMEM before the plugin). */
  if (nbd_get_block_size (bad, LIBNBD_SIZE_MINIMUM) != 1)
    test_fail ("minimum block size %" PRId64 ", expected 1",
               nbd_get_block_size (bad, LIBNBD_SIZE_MINIMUM));
  max = nbd_get_block_size (bad, LIBNBD_SIZE_MAXIMUM);
  if (max != MAX_PAYLOAD)
    test_fail ("maximum block size %" PRId64 ", expected %u (nbdkit "
               "refuses reads and writes above it)", max, MAX_PAYLOAD);

  /* Something to protect near the end. */
  fill_mixed (&r, bad_shadow, DEV_SIZE - BAD_OFF, BAD_OFF);
  xpwrite (bad, bad_shadow, DEV_SIZE - BAD_OFF, BAD_OFF);
  fill_mixed (&r, buf, 2 * MAX_PAYLOAD, 0);

  /* Past the end. */
  expect_error ("pread across the end",
                nbd_pread (bad, buf, SLOT, DEV_SIZE - SLOT / 2, 0), EINVAL, 0);
  expect_error ("pread at the end",
                nbd_pread (bad, buf, 1, DEV_SIZE, 0), EINVAL, 0);
  expect_error ("pread at offset 2^64 - 4096",
                nbd_pread (bad, buf, SLOT, UINT64_MAX - SLOT + 1, 0),
                EINVAL, 0);
  expect_error ("pwrite across the end",
                nbd_pwrite (bad, buf, SLOT, DEV_SIZE - SLOT / 2, 0),
                ENOSPC, 0);
  expect_error ("pwrite at the end",
                nbd_pwrite (bad, buf, 512, DEV_SIZE, 0), ENOSPC, 0);
  expect_error ("pwrite wrapping around 2^64",
                nbd_pwrite (bad, buf, 2 * SLOT, UINT64_MAX - SLOT + 1, 0),
                ENOSPC, 0);
  expect_error ("trim across the end",
                nbd_trim (bad, 2 * MiB, DEV_SIZE - MiB, 0), EINVAL, 0);
  expect_error ("zero across the end",
                nbd_zero (bad, 2 * MiB, DEV_SIZE - MiB, 0), ENOSPC, 0);
  expect_error ("cache across the end",
                nbd_cache (bad, 2 * MiB, DEV_SIZE - MiB, 0), EINVAL, 0);
  expect_error ("block status across the end",
                nbd_block_status (bad, 2 * MiB, DEV_SIZE - MiB + 1,
                                  no_extents (), 0), EINVAL, 0);

  /* Length 0, inside the device and at its end. */
  for (int at_end = 0; at_end <= 1; at_end++) {
    uint64_t off = at_end ? DEV_SIZE : BAD_OFF + 100;
    char what[80];

#define ZL(name, call, want)                                            \
    snprintf (what, sizeof what, "%s of length 0 at %s", name,          \
              at_end ? "the end" : "an offset inside");                 \
    expect_zero_len (what, call, want)
    ZL ("pread", nbd_pread (bad, buf, 0, off, 0), EINVAL);
    ZL ("pwrite", nbd_pwrite (bad, buf, 0, off, 0), ENOSPC);
    ZL ("trim", nbd_trim (bad, 0, off, 0), EINVAL);
    ZL ("zero", nbd_zero (bad, 0, off, 0), ENOSPC);
    ZL ("cache", nbd_cache (bad, 0, off, 0), EINVAL);
    ZL ("block status", nbd_block_status (bad, 0, off, no_extents (), 0),
        EINVAL);
#undef ZL
  }

  /* Unknown flags, and flags that do not apply to the command. */
  expect_error ("pwrite with unknown flag 0x80",
                nbd_pwrite (bad, buf, SLOT, BAD_OFF, 0x80), EINVAL, 0);
  expect_error ("pread with unknown flag 0x100",
                nbd_pread (bad, buf, SLOT, BAD_OFF, 0x100), EINVAL, 0);
  expect_error ("trim with unknown flag 0x8000",
                nbd_trim (bad, SLOT, BAD_OFF, 0x8000), EINVAL, 0);
  expect_error ("zero with unknown flag 0x40",
                nbd_zero (bad, SLOT, BAD_OFF, 0x40), EINVAL, 0);
  expect_error ("cache with unknown flag 0x20",
                nbd_cache (bad, SLOT, BAD_OFF, 0x20), EINVAL, 0);
  expect_error ("flush with unknown flag 0x200",
                nbd_flush (bad, 0x200), EINVAL, 0);
  expect_error ("pwrite with NO_HOLE (write zeroes only)",
                nbd_pwrite (bad, buf, SLOT, BAD_OFF,
                            LIBNBD_CMD_FLAG_NO_HOLE), EINVAL, 0);
  expect_error ("trim with FAST_ZERO (write zeroes only)",
                nbd_trim (bad, SLOT, BAD_OFF, LIBNBD_CMD_FLAG_FAST_ZERO),
                EINVAL, 0);
  expect_error ("pwrite with REQ_ONE (block status only)",
                nbd_pwrite (bad, buf, SLOT, BAD_OFF,
                            LIBNBD_CMD_FLAG_REQ_ONE), EINVAL, 0);
  expect_error ("zero with DF (read only)",
                nbd_zero (bad, SLOT, BAD_OFF, LIBNBD_CMD_FLAG_DF), EINVAL, 0);
  /* FUA is valid on every command once advertised. */
  expect_ok ("pread with FUA",
             nbd_pread (bad, buf, SLOT, BAD_OFF, LIBNBD_CMD_FLAG_FUA));
  expect_ok ("cache with FUA",
             nbd_cache (bad, SLOT, BAD_OFF, LIBNBD_CMD_FLAG_FUA));
  expect_ok ("flush with FUA", nbd_flush (bad, LIBNBD_CMD_FLAG_FUA));

  /* Effect lengths above the maximum payload: allowed for trim and
   * zero.  Pages inside the range become zero, the next one stays. */
  {
    unsigned char page[SLOT], got[SLOT];
    const uint64_t inside[] = { BIG_OFF, BIG_OFF + 5 * MiB + 3,
                                BIG_OFF + BIG_LEN - SLOT };
    const uint64_t after = BIG_OFF + BIG_LEN;

    for (int zero = 0; zero <= 1; zero++) {
      for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        fill_kind (&r, page, SLOT, inside[i], 3);
        xpwrite (bad, page, SLOT, inside[i]);
      }
      fill_kind (&r, page, SLOT, after, 3);
      xpwrite (bad, page, SLOT, after);
      if (zero)
        expect_ok ("zero of 4 GiB - 4 KiB",
                   nbd_zero (bad, BIG_LEN, BIG_OFF, 0));
      else
        expect_ok ("trim of 4 GiB - 4 KiB", nbd_trim (bad, BIG_LEN, BIG_OFF, 0));
      for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        xpread (bad, got, SLOT, inside[i]);
        if (!is_zero (got, SLOT))
          test_fail ("%s of 4 GiB - 4 KiB: offset %" PRIu64 " not zero",
                     zero ? "zero" : "trim", inside[i]);
      }
      xpread (bad, got, SLOT, after);
      if (memcmp (got, page, SLOT) != 0)
        test_fail ("%s of 4 GiB - 4 KiB: the page after it changed",
                   zero ? "zero" : "trim");
    }
    expect_ok ("block status of 4 GiB - 4 KiB",
               nbd_block_status (bad, BIG_LEN, BIG_OFF, no_extents (), 0));
  }

  /* Payloads at the maximum work; above it libnbd refuses to send them
   * itself (ERANGE), so the raw client below sends those. */
  {
    unsigned char *back = malloc (MAX_PAYLOAD);
    uint64_t off = 2 * GiB + 1;         /* unaligned as well */

    if (!back)
      test_fail ("out of memory");
    expect_ok ("pwrite of the maximum payload, unaligned",
               nbd_pwrite (bad, buf, MAX_PAYLOAD, off, 0));
    expect_ok ("pread of the maximum payload, unaligned",
               nbd_pread (bad, back, MAX_PAYLOAD, off, 0));
    if (memcmp (back, buf, MAX_PAYLOAD) != 0)
      test_fail ("the maximum payload does not read back");
    free (back);
    if (nbd_pread (bad, buf, MAX_PAYLOAD + 1, 0, 0) != -1
        || nbd_get_errno () != ERANGE)
      test_fail ("libnbd sent a read above 64 MiB: the raw client's "
                 "cases would then belong here");
  }

  /* Unaligned requests: the minimum block size is 1, so all are valid. */
  for (unsigned i = 0; i < 200; i++) {
    uint64_t len = 1 + rng_below (&r, 3 * SLOT);
    uint64_t in = rng_below (&r, DEV_SIZE - BAD_OFF - len + 1);
    unsigned op = (unsigned) rng_below (&r, 3);

    if (op == 0) {
      fill_mixed (&r, buf, len, BAD_OFF + in);
      if (nbd_pwrite (bad, buf, len, BAD_OFF + in, 0) == -1)
        test_fail_nbd ("unaligned pwrite %" PRIu64 " at %" PRIu64, len,
                       BAD_OFF + in);
      memcpy (bad_shadow + in, buf, len);
    }
    else {
      int rr = op == 1 ? nbd_trim (bad, len, BAD_OFF + in, 0)
        : nbd_zero (bad, len, BAD_OFF + in, LIBNBD_CMD_FLAG_NO_HOLE);
      if (rr == -1)
        test_fail_nbd ("unaligned %s %" PRIu64 " at %" PRIu64,
                       op == 1 ? "trim" : "zero", len, BAD_OFF + in);
      memset (bad_shadow + in, 0, len);
    }
  }
  verify_bad ("unaligned requests");
  free (buf);
}

/* ---- raw clients: NBD written by hand ---- */

#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_OPT_MAGIC UINT64_C (0x49484156454F5054)  /* "IHAVEOPT" */
#define NBD_OPT_EXPORT_NAME 1u
#define NBD_FLAG_C_FIXED_NEWSTYLE 1u
#define NBD_FLAG_C_NO_ZEROES 2u
#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u

struct __attribute__ ((packed)) nbd_request {
  uint32_t magic;
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint32_t count;
};

struct __attribute__ ((packed)) nbd_simple_reply {
  uint32_t magic;
  uint32_t error;
  uint64_t cookie;
};

static void
send_all (int fd, const void *p, size_t len, const char *what)
{
  const char *c = p;

  while (len > 0) {
    ssize_t w = send (fd, c, len, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      test_fail ("raw client: %s: send: %s", what, strerror (errno));
    c += w;
    len -= (size_t) w;
  }
}

/* Read @len bytes; return false on EOF before any byte. */
static bool
recv_all (int fd, void *p, size_t len, const char *what)
{
  char *c = p;
  size_t got = 0;

  while (got < len) {
    ssize_t r = recv (fd, c + got, len - got, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      test_fail ("raw client: %s: recv: %s", what, strerror (errno));
    if (r == 0) {
      if (got == 0)
        return false;
      test_fail ("raw client: %s: EOF after %zu of %zu bytes", what, got,
                 len);
    }
    got += (size_t) r;
  }
  return true;
}

static int
raw_socket (void)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  struct timeval tv = { .tv_sec = 60 };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    test_fail ("socket: %s", strerror (errno));
  if (strlen (srv.sock) >= sizeof sa.sun_path)
    test_fail ("socket path too long: %s", srv.sock);
  memcpy (sa.sun_path, srv.sock, strlen (srv.sock) + 1);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) != 0)
    test_fail ("connect %s: %s", srv.sock, strerror (errno));
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/* Fixed newstyle handshake with NBD_OPT_EXPORT_NAME "": returns a socket
 * in the transmission phase. */
static int
raw_connect (void)
{
  int fd = raw_socket ();
  unsigned char greet[18], info[10];
  uint32_t cflags = htobe32 (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  struct __attribute__ ((packed)) {
    uint64_t magic;
    uint32_t option, len;
  } opt = { htobe64 (NBD_OPT_MAGIC), htobe32 (NBD_OPT_EXPORT_NAME), 0 };
  uint64_t size;

  if (!recv_all (fd, greet, sizeof greet, "greeting")
      || memcmp (greet, "NBDMAGICIHAVEOPT", 16) != 0)
    test_fail ("raw client: not a newstyle NBD greeting");
  if ((greet[17] & (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
      != (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
    test_fail ("raw client: the server lacks FIXED_NEWSTYLE or NO_ZEROES "
               "(handshake flags 0x%02x%02x)", greet[16], greet[17]);
  send_all (fd, &cflags, sizeof cflags, "client flags");
  send_all (fd, &opt, sizeof opt, "NBD_OPT_EXPORT_NAME");
  if (!recv_all (fd, info, sizeof info, "export info"))
    test_fail ("raw client: the server closed at NBD_OPT_EXPORT_NAME");
  memcpy (&size, info, 8);
  if (be64toh (size) != DEV_SIZE)
    test_fail ("raw client: export size %" PRIu64, be64toh (size));
  return fd;
}

static void
raw_request (int fd, uint16_t type, uint16_t flags, uint64_t cookie,
             uint64_t offset, uint32_t count)
{
  struct nbd_request rq = {
    .magic = htobe32 (NBD_REQUEST_MAGIC), .flags = htobe16 (flags),
    .type = htobe16 (type), .cookie = htobe64 (cookie),
    .offset = htobe64 (offset), .count = htobe32 (count),
  };

  send_all (fd, &rq, sizeof rq, "request");
}

/* Read a simple reply to @cookie; return its error (host errno values
 * are NBD's for those the protocol defines). */
static uint32_t
raw_reply (int fd, uint64_t cookie, const char *what)
{
  struct nbd_simple_reply rp;

  if (!recv_all (fd, &rp, sizeof rp, what))
    test_fail ("raw client: %s: the server closed the connection", what);
  if (be32toh (rp.magic) != NBD_SIMPLE_REPLY_MAGIC)
    test_fail ("raw client: %s: reply magic 0x%x", what, be32toh (rp.magic));
  if (be64toh (rp.cookie) != cookie)
    test_fail ("raw client: %s: reply to cookie %" PRIu64 ", expected %"
               PRIu64, what, be64toh (rp.cookie), cookie);
  return be32toh (rp.error);
}

/* A read of one slot of the bad region through @fd must still work and
 * match the shadow: the stream is in step. */
static void
raw_check_in_step (int fd, uint64_t cookie, const char *what)
{
  unsigned char got[SLOT];
  uint32_t e;

  raw_request (fd, NBD_CMD_READ, 0, cookie, BAD_OFF + SLOT, SLOT);
  e = raw_reply (fd, cookie, what);
  if (e != 0)
    test_fail ("raw client: read after %s: error %u", what, e);
  if (!recv_all (fd, got, SLOT, what))
    test_fail ("raw client: read after %s: no data", what);
  if (memcmp (got, bad_shadow + SLOT, SLOT) != 0)
    test_fail ("raw client: read after %s: wrong data", what);
}

/* The server closes @fd (after a protocol violation). */
static void
raw_expect_close (int fd, const char *what)
{
  char c;

  if (recv_all (fd, &c, 1, what))
    test_fail ("raw client: %s: the server answered instead of closing",
               what);
}

/* [OVERSIZE_OFF, + MAX_PAYLOAD + SLOT) was never written: every MiB of
 * it (and its last slot) still reads as zeroes after @what. */
static void
check_never_written (const char *what)
{
  unsigned char got[SLOT];

  for (uint64_t off = OVERSIZE_OFF; off <= OVERSIZE_OFF + MAX_PAYLOAD;
       off += MiB) {
    xpread (bad, got, SLOT, off);
    if (!is_zero (got, SLOT))
      test_fail ("%s: data landed at %" PRIu64, what, off);
  }
}

static void
raw_cases (void)
{
  unsigned char *payload = malloc (MAX_PAYLOAD + SLOT);
  uint32_t e;
  int fd;

  if (!payload)
    test_fail ("out of memory");
  memset (payload, 0xa5, MAX_PAYLOAD + SLOT);

  /* Above the maximum payload: an error reply, the write's payload
   * skipped, and the connection goes on in step. */
  fd = raw_connect ();
  raw_request (fd, NBD_CMD_WRITE, 0, 1, OVERSIZE_OFF, MAX_PAYLOAD + SLOT);
  send_all (fd, payload, MAX_PAYLOAD + SLOT, "oversize write payload");
  e = raw_reply (fd, 1, "write above the maximum payload");
  if (e != ENOMEM && e != EINVAL && e != EOVERFLOW)
    test_fail ("write above the maximum payload: error %u, expected "
               "ENOMEM (nbdkit), EINVAL or EOVERFLOW", e);
  printf ("%s: write above the maximum payload: %s\n", test_name,
          strerror ((int) e));
  raw_check_in_step (fd, 2, "a write above the maximum payload");
  raw_request (fd, NBD_CMD_READ, 0, 3, OVERSIZE_OFF, MAX_PAYLOAD + SLOT);
  e = raw_reply (fd, 3, "read above the maximum payload");
  if (e != ENOMEM && e != EINVAL && e != EOVERFLOW)
    test_fail ("read above the maximum payload: error %u", e);
  printf ("%s: read above the maximum payload: %s\n", test_name,
          strerror ((int) e));
  raw_check_in_step (fd, 4, "a read above the maximum payload");

  /* An unknown command. */
  raw_request (fd, 77, 0, 5, BAD_OFF, SLOT);
  e = raw_reply (fd, 5, "unknown command 77");
  if (e != EINVAL)
    test_fail ("unknown command 77: error %u, expected EINVAL", e);
  printf ("%s: unknown command 77: %s, as expected\n", test_name,
          strerror ((int) e));
  raw_check_in_step (fd, 6, "an unknown command");
  close (fd);
  cases += 3;
  check_never_written ("the refused oversize write");
  verify_bad ("oversize and unknown requests");
  check_alive ("oversize and unknown requests");

  /* A bad request magic: the server may only close. */
  fd = raw_connect ();
  {
    struct nbd_request rq = { .magic = htobe32 (0xdeadbeef),
                              .type = htobe16 (NBD_CMD_READ),
                              .count = htobe32 (SLOT) };
    send_all (fd, &rq, sizeof rq, "bad magic");
  }
  raw_expect_close (fd, "a bad request magic");
  close (fd);
  cases++;
  check_alive ("a bad request magic");

  /* Disconnects: in the handshake, in a header, in a write's payload
   * (nothing of it may land), before a read's reply, with requests
   * queued. */
  fd = raw_socket ();
  close (fd);
  check_alive ("a disconnect before the greeting was read");
  fd = raw_socket ();
  {
    unsigned char greet[18];
    recv_all (fd, greet, sizeof greet, "greeting");
    send_all (fd, "\0\0", 2, "half the client flags");
  }
  close (fd);
  check_alive ("a disconnect in the handshake");

  fd = raw_connect ();
  send_all (fd, "\x25\x60\x95\x13\0\0\0\x01\0\0\0", 11, "half a header");
  close (fd);
  check_alive ("a disconnect in a request header");

  /* Nothing of a write whose payload is cut short may land: 8 slots in
   * the bad region, 32 MiB in the never-written one. */
  fd = raw_connect ();
  raw_request (fd, NBD_CMD_WRITE, 0, 7, BAD_OFF, 8 * SLOT);
  send_all (fd, payload, 4 * SLOT + 1, "half a write payload");
  close (fd);
  check_alive ("a disconnect in a write's payload");
  verify_bad ("a disconnect in a write's payload");
  fd = raw_connect ();
  raw_request (fd, NBD_CMD_WRITE, 0, 7, OVERSIZE_OFF, 32 * MiB);
  send_all (fd, payload, 16 * MiB, "half a 32 MiB write payload");
  close (fd);
  check_alive ("a disconnect in a 32 MiB write's payload");
  check_never_written ("a disconnect in a 32 MiB write's payload");

  fd = raw_connect ();
  raw_request (fd, NBD_CMD_READ, 0, 8, OVERSIZE_OFF, 16 * MiB);
  for (uint64_t c = 9; c < 40; c++)
    raw_request (fd, NBD_CMD_READ, 0, c, BAD_OFF, 64 * SLOT);
  close (fd);
  check_alive ("a disconnect with reads in flight");
  cases += 7;
  verify_bad ("disconnects");
  free (payload);
}

int
main (int argc, char **argv)
{
  const char *args[] = { "size=6G", "ram-limit=256M", "control=none", NULL };
  pthread_t good;

  harness_init (argc, argv);
  seed = test_seed ();
  good_shadow = calloc (1, GOOD_LEN);
  bad_shadow = calloc (1, DEV_SIZE - BAD_OFF);
  if (!good_shadow || !bad_shadow)
    test_fail ("out of memory");
  if (server_start (&srv, args) < 0)
    test_fail ("nbdkit did not start (wait status 0x%x)", srv.exit_status);
  if (pthread_create (&good, NULL, good_client, NULL) != 0)
    test_fail ("pthread_create");

  bad_requests ();
  raw_cases ();

  /* The bad connection itself is still usable. */
  verify_bad ("every case");
  nbd_close (bad);
  __atomic_store_n (&good_stop, 1, __ATOMIC_RELEASE);
  pthread_join (good, NULL);
  printf ("%s: %u bad cases; the good connection did %" PRIu64
          " requests meanwhile\n", test_name, cases, good_ops);
  server_stop_check (&srv);
  return 0;
}
