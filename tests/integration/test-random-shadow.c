/* ghostswap integration test: random operations against a shadow copy.
 *
 * Usage: test-random-shadow SIZE [KEY=VALUE...]
 *
 * Starts nbdkit with the plugin (size=SIZE ram-limit=1G and any further
 * keys), then runs $GHOSTSWAP_OPS (default 20000) random operations —
 * unaligned writes of mixed data, reads, trims, zeroes with and without
 * NO_HOLE / FAST_ZERO, flushes, caches, block status — checking every read
 * and every block status reply against a byte-for-byte shadow of the
 * device; at the end the whole device is read and compared.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "harness.h"

#define SLOT 4096u
#define MAX_WRITE (3 * SLOT + 17)
#define BS_MAX_REQ (UINT32_C (0xffffffff) - SLOT + 1) /* 4 GiB - 4 KiB */

enum op_kind { OP_WRITE, OP_READ, OP_TRIM, OP_ZERO, OP_FLUSH, OP_CACHE,
               OP_BLOCK_STATUS };
static const char *const op_names[] = {
  "pwrite", "pread", "trim", "zero", "flush", "cache", "block_status"
};

struct op_log {
  uint8_t kind;
  uint8_t flags;
  uint64_t offset;
  uint32_t count;
};

static struct op_log *oplog;
static size_t nr_ops_done, nr_ops_logged;
static unsigned char *shadow;
static uint64_t dev_size;

/* Print the logged operations that touched [off, off+len). */
static void
dump_history (uint64_t off, uint64_t len)
{
  size_t shown = 0;

  fprintf (stderr, "%s: operations that touched [%" PRIu64 ", +%" PRIu64
           "), oldest first:\n", test_name, off, len);
  /* Include the operation being checked (it is logged before it runs). */
  for (size_t i = 0; i <= nr_ops_done && i < nr_ops_logged; i++) {
    const struct op_log *o = &oplog[i];
    if (o->kind == OP_READ || o->kind == OP_FLUSH || o->kind == OP_CACHE
        || o->kind == OP_BLOCK_STATUS)
      continue;
    if (o->offset < off + len && off < o->offset + o->count) {
      fprintf (stderr, "  op %zu: %s offset=%" PRIu64 " count=%" PRIu32
               " flags=0x%x\n", i, op_names[o->kind], o->offset, o->count,
               o->flags);
      shown++;
    }
  }
  if (shown == 0)
    fprintf (stderr, "  (none: never written)\n");
}

static void
check_read (struct nbd_handle *h, unsigned char *buf, uint64_t off,
            uint64_t len, const char *why)
{
  ssize_t d;

  xpread (h, buf, len, off);
  d = first_diff (buf, shadow + off, len);
  if (d >= 0) {
    uint64_t at = off + (uint64_t) d;
    size_t nbad = 0;
    for (uint64_t i = (uint64_t) d; i < len; i++)
      nbad += buf[i] != shadow[off + i];
    dump_history (at, 1);
    test_fail ("op %zu (%s): read offset=%" PRIu64 " count=%" PRIu64
               ": byte at offset %" PRIu64 " (slot %" PRIu64 " +%" PRIu64
               ") is 0x%02x, expected 0x%02x (%zu bytes differ)",
               nr_ops_done, why, off, len, at, at / SLOT, at % SLOT,
               buf[d], shadow[at], nbad);
  }
}

/* Block status. */
struct bs_ctx {
  uint64_t req_off, req_len;
  uint64_t covered;     /* bytes from req_off described so far */
  unsigned calls;
  uint32_t want_set, want_clear; /* required flags on [lo, hi) */
  uint64_t lo, hi;
  char err[512];
};

static int
extent_cb (void *opaque, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  struct bs_ctx *c = opaque;
  uint64_t pos = offset;

  if (c->err[0])
    return 0;
  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) {
    snprintf (c->err, sizeof c->err, "unexpected meta context %s",
              metacontext);
    return 0;
  }
  c->calls++;
  if (offset != c->req_off) {
    snprintf (c->err, sizeof c->err, "extents start at %" PRIu64
              ", requested %" PRIu64, offset, c->req_off);
    return 0;
  }
  if (nr_entries == 0 || nr_entries % 2 != 0) {
    snprintf (c->err, sizeof c->err, "%zu entries (not a positive even "
              "number)", nr_entries);
    return 0;
  }
  for (size_t i = 0; i < nr_entries; i += 2) {
    uint64_t len = entries[i];
    uint32_t flags = entries[i + 1];

    if (len == 0) {
      snprintf (c->err, sizeof c->err, "extent %zu at %" PRIu64
                " has length 0", i / 2, pos);
      return 0;
    }
    if (pos >= c->req_off + c->req_len) {
      snprintf (c->err, sizeof c->err, "extent %zu at %" PRIu64
                " starts after the requested range [%" PRIu64 ", +%" PRIu64
                ")", i / 2, pos, c->req_off, c->req_len);
      return 0;
    }
    if (len > dev_size - pos) {
      snprintf (c->err, sizeof c->err, "extent %zu at %" PRIu64
                " length %" PRIu64 " goes past the device end %" PRIu64,
                i / 2, pos, len, dev_size);
      return 0;
    }
    if (flags & ~(uint32_t) (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO)) {
      snprintf (c->err, sizeof c->err, "extent at %" PRIu64
                " has unknown flags 0x%" PRIx32, pos, flags);
      return 0;
    }
    if (flags & (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO)) {
      uint64_t chk = len;
      if (!is_zero (shadow + pos, chk)) {
        ssize_t d = -1;
        for (uint64_t k = 0; k < chk; k++) {
          if (shadow[pos + k]) { d = (ssize_t) k; break; }
        }
        snprintf (c->err, sizeof c->err, "extent [%" PRIu64 ", +%" PRIu64
                  ") reported %s but byte %" PRIu64 " holds 0x%02x",
                  pos, len,
                  (flags & LIBNBD_STATE_HOLE) ? "hole" : "zero",
                  pos + (uint64_t) d, shadow[pos + (uint64_t) d]);
        return 0;
      }
    }
    /* Required flags on [lo, hi) (after trim/zero of whole slots). */
    if (c->hi > c->lo && pos < c->hi && c->lo < pos + len) {
      if ((flags & c->want_set) != c->want_set || (flags & c->want_clear)) {
        snprintf (c->err, sizeof c->err, "extent [%" PRIu64 ", +%" PRIu64
                  ") has flags 0x%" PRIx32 " (want set 0x%" PRIx32
                  ", clear 0x%" PRIx32 ") inside [%" PRIu64 ", %" PRIu64
                  ")", pos, len, flags, c->want_set, c->want_clear,
                  c->lo, c->hi);
        return 0;
      }
    }
    pos += len;
  }
  if (pos - offset > c->covered)
    c->covered = pos - offset;
  return 0;
}

/* Run block status on [off, off+len) and check the reply; if want_set or
 * want_clear, every extent meeting [lo, hi) must have those flags.
 * Return the number of bytes described from off. */
static uint64_t
block_status (struct nbd_handle *h, uint64_t off, uint64_t len,
              uint64_t lo, uint64_t hi, uint32_t want_set,
              uint32_t want_clear)
{
  struct bs_ctx c;
  nbd_extent_callback cb = { .callback = extent_cb, .user_data = &c };

  memset (&c, 0, sizeof c);
  c.req_off = off;
  c.req_len = len;
  c.lo = lo;
  c.hi = hi;
  c.want_set = want_set;
  c.want_clear = want_clear;
  if (nbd_block_status (h, len, off, cb, 0) == -1)
    test_fail_nbd ("op %zu: block_status offset=%" PRIu64 " count=%" PRIu64,
                   nr_ops_done, off, len);
  if (c.err[0]) {
    dump_history (off, len < 65536 ? len : 65536);
    test_fail ("op %zu: block_status offset=%" PRIu64 " count=%" PRIu64
               ": %s", nr_ops_done, off, len, c.err);
  }
  if (c.calls == 0)
    test_fail ("op %zu: block_status offset=%" PRIu64 " count=%" PRIu64
               ": no base:allocation extents", nr_ops_done, off, len);
  return c.covered;
}

/* Check that whole slots inside [off, off+len) carry the flags. */
static void
check_interior (struct nbd_handle *h, uint64_t off, uint64_t len,
                uint32_t want_set, uint32_t want_clear)
{
  uint64_t lo = (off + SLOT - 1) / SLOT * SLOT;
  uint64_t hi = (off + len) / SLOT * SLOT;
  uint64_t pos;

  if (hi <= lo)
    return;
  pos = lo;
  while (pos < hi) {
    uint64_t n = block_status (h, pos, hi - pos, lo, hi, want_set,
                               want_clear);
    pos += n;
  }
}

static uint64_t
pick_offset (struct rng *r)
{
  uint64_t off;
  uint64_t hot = dev_size < 1048576 ? dev_size : 1048576;

  switch (rng_below (r, 10)) {
  case 0: case 1: case 2: case 3:   /* hot region: many overwrites */
    off = rng_below (r, hot);
    break;
  case 4:                           /* near the end */
    off = dev_size - 1 - rng_below (r, hot);
    break;
  default:
    off = rng_below (r, dev_size);
    break;
  }
  if (rng_below (r, 3) == 0)
    off = off / SLOT * SLOT;
  return off;
}

static uint64_t
pick_len (struct rng *r, uint64_t off, uint64_t big)
{
  uint64_t len;

  if (big && rng_below (r, 20) == 0)
    len = 1 + rng_below (r, big);
  else if (rng_below (r, 3) == 0)
    len = SLOT * (1 + rng_below (r, 3));
  else
    len = 1 + rng_below (r, MAX_WRITE);
  if (len > dev_size - off)
    len = dev_size - off;
  return len;
}

static uint64_t
parse_size_arg (const char *s)
{
  char *end;
  uint64_t v;

  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno != 0 || end == s)
    test_fail ("bad size argument %s", s);
  switch (*end) {
  case '\0': return v;
  case 'K': case 'k': return v << 10;
  case 'M': case 'm': return v << 20;
  case 'G': case 'g': return v << 30;
  default: test_fail ("bad size argument %s", s);
  }
}

int
main (int argc, char **argv)
{
  struct server srv;
  struct nbd_handle *h;
  struct rng rng;
  const char *args[32];
  char sizearg[64];
  size_t nargs = 0;
  uint64_t seed, expect_size, nops = 20000;
  unsigned char *buf;
  const size_t bufsize = 1u << 20;
  size_t counts[7] = { 0 };
  size_t fast_zero_refused = 0;
  const char *s;
  int64_t r;
  bool can_fua;

  harness_init (argc, argv);
  if (argc < 2)
    test_fail ("usage: %s SIZE [KEY=VALUE...]", argv[0]);
  expect_size = parse_size_arg (argv[1]);
  snprintf (sizearg, sizeof sizearg, "size=%s", argv[1]);
  args[nargs++] = sizearg;
  args[nargs++] = "ram-limit=1G";
  for (int i = 2; i < argc && nargs < 30; i++)
    args[nargs++] = argv[i];
  args[nargs] = NULL;
  s = getenv ("GHOSTSWAP_OPS");
  if (s && *s)
    nops = strtoull (s, NULL, 10);

  seed = test_seed ();
  rng_seed (&rng, seed);

  if (server_start (&srv, args) != 0)
    test_fail ("nbdkit exited at start (status 0x%x)", srv.exit_status);
  h = server_connect (&srv);

  /* Geometry and capabilities. */
  r = nbd_get_size (h);
  if (r == -1)
    test_fail_nbd ("nbd_get_size");
  if ((uint64_t) r != expect_size)
    test_fail ("nbd_get_size = %" PRId64 ", expected %" PRIu64, r,
               expect_size);
  dev_size = (uint64_t) r;
#define CHECK_CAN(fn) do {                                              \
    int v_ = fn (h);                                                    \
    if (v_ != 1)                                                        \
      test_fail (#fn " = %d, expected 1", v_);                          \
  } while (0)
  CHECK_CAN (nbd_can_multi_conn);
  CHECK_CAN (nbd_can_trim);
  CHECK_CAN (nbd_can_zero);
  CHECK_CAN (nbd_can_fast_zero);
  CHECK_CAN (nbd_can_cache);
  if (nbd_is_read_only (h) != 0)
    test_fail ("nbd_is_read_only = %d, expected 0", nbd_is_read_only (h));
  if (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1)
    test_fail ("server does not offer base:allocation");
  r = nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM);
  if (r != 1)
    test_fail ("minimum block size = %" PRId64 ", expected 1", r);
  r = nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED);
  if (r != 4096)
    test_fail ("preferred block size = %" PRId64 ", expected 4096", r);
  r = nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM);
  printf ("%s: size %" PRIu64 ", maximum block size %" PRId64
          ", can_flush %d, can_fua %d\n", test_name, dev_size, r,
          nbd_can_flush (h), nbd_can_fua (h));

  can_fua = nbd_can_fua (h) == 1;
  shadow = calloc (1, dev_size);
  buf = malloc (bufsize);
  oplog = calloc (nops + 1, sizeof *oplog);
  nr_ops_logged = nops;
  if (shadow == NULL || buf == NULL || oplog == NULL)
    test_fail ("out of memory");

  /* A fresh device reads as zeroes and is one big hole. */
  check_read (h, buf, 0, dev_size < bufsize ? dev_size : bufsize,
              "fresh device");
  check_interior (h, 0, dev_size, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO, 0);

  for (nr_ops_done = 0; nr_ops_done < nops; nr_ops_done++) {
    struct op_log *o = &oplog[nr_ops_done];
    unsigned k = (unsigned) rng_below (&rng, 100);
    uint64_t off = pick_offset (&rng), len;

    if (k < 35) {                       /* pwrite */
      len = pick_len (&rng, off, 256 * 1024);
      uint32_t f = can_fua && rng_below (&rng, 10) == 0
        ? LIBNBD_CMD_FLAG_FUA : 0;
      fill_mixed (&rng, buf, len, off);
      *o = (struct op_log) { OP_WRITE, (uint8_t) f, off, (uint32_t) len };
      if (nbd_pwrite (h, buf, len, off, f) == -1)
        test_fail_nbd ("op %zu: pwrite flags=0x%x offset=%" PRIu64
                       " count=%" PRIu64, nr_ops_done, f, off, len);
      memcpy (shadow + off, buf, len);
      /* Sometimes read right back. */
      if (rng_below (&rng, 4) == 0)
        check_read (h, buf, off, len, "read after write");
    }
    else if (k < 62) {                  /* pread */
      len = pick_len (&rng, off, 256 * 1024);
      *o = (struct op_log) { OP_READ, 0, off, (uint32_t) len };
      check_read (h, buf, off, len, "pread");
    }
    else if (k < 71) {                  /* trim */
      len = pick_len (&rng, off, 1024 * 1024);
      *o = (struct op_log) { OP_TRIM, 0, off, (uint32_t) len };
      if (nbd_trim (h, len, off, 0) == -1)
        test_fail_nbd ("op %zu: trim offset=%" PRIu64 " count=%" PRIu64,
                       nr_ops_done, off, len);
      memset (shadow + off, 0, len);
      check_read (h, buf, off, len, "read after trim");
      /* Whole slots of a trimmed range are holes (gs_trim). */
      check_interior (h, off, len, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO, 0);
    }
    else if (k < 80) {                  /* zero */
      static const uint32_t zflags[] = {
        0, LIBNBD_CMD_FLAG_NO_HOLE, LIBNBD_CMD_FLAG_FAST_ZERO,
        LIBNBD_CMD_FLAG_NO_HOLE | LIBNBD_CMD_FLAG_FAST_ZERO
      };
      uint32_t f = zflags[rng_below (&rng, 4)];
      len = pick_len (&rng, off, 1024 * 1024);
      *o = (struct op_log) { OP_ZERO, (uint8_t) f, off, (uint32_t) len };
      if (nbd_zero (h, len, off, f) == -1) {
        if ((f & LIBNBD_CMD_FLAG_FAST_ZERO) && nbd_get_errno () == ENOTSUP) {
          /* Allowed by the protocol: nothing must have changed. */
          fast_zero_refused++;
          check_read (h, buf, off, len, "read after refused fast zero");
          counts[OP_ZERO]++;
          continue;
        }
        test_fail_nbd ("op %zu: zero flags=0x%x offset=%" PRIu64
                       " count=%" PRIu64, nr_ops_done, f, off, len);
      }
      /* Which whole slots held data (a non-zero byte) before. */
      static bool had_data[1024 * 1024 / SLOT + 2];
      uint64_t lo = (off + SLOT - 1) / SLOT * SLOT, hi = (off + len) / SLOT * SLOT;
      for (uint64_t a = lo; a < hi; a += SLOT)
        had_data[(a - lo) / SLOT] = !is_zero (shadow + a, SLOT);
      memset (shadow + off, 0, len);
      check_read (h, buf, off, len, "read after zero");
      /* Whole slots read as zero.  With NO_HOLE, a slot that held data
       * must not become a hole; one that read as zero already may stay a
       * hole (zeroes over zero allocate nothing). */
      check_interior (h, off, len, LIBNBD_STATE_ZERO, 0);
      if (f & LIBNBD_CMD_FLAG_NO_HOLE)
        for (uint64_t a = lo; a < hi; a += SLOT) {
          uint64_t b = a;
          while (b < hi && had_data[(b - lo) / SLOT])
            b += SLOT;
          if (b > a) {
            check_interior (h, a, b - a, LIBNBD_STATE_ZERO, LIBNBD_STATE_HOLE);
            a = b;
          }
        }
    }
    else if (k < 83) {                  /* flush */
      *o = (struct op_log) { OP_FLUSH, 0, 0, 0 };
      if (nbd_can_flush (h) == 1 && nbd_flush (h, 0) == -1)
        test_fail_nbd ("op %zu: flush", nr_ops_done);
    }
    else if (k < 87) {                  /* cache */
      len = pick_len (&rng, off, 1024 * 1024);
      *o = (struct op_log) { OP_CACHE, 0, off, (uint32_t) len };
      if (nbd_cache (h, len, off, 0) == -1)
        test_fail_nbd ("op %zu: cache offset=%" PRIu64 " count=%" PRIu64,
                       nr_ops_done, off, len);
    }
    else {                              /* block status */
      if (rng_below (&rng, 10) == 0) {
        off = 0;
        len = dev_size;
      }
      else {
        len = 1 + rng_below (&rng, 4 * 1024 * 1024);
        if (len > dev_size - off)
          len = dev_size - off;
      }
      if (len > BS_MAX_REQ)
        len = BS_MAX_REQ;
      *o = (struct op_log) { OP_BLOCK_STATUS, 0, off, (uint32_t) len };
      block_status (h, off, len, 0, 0, 0, 0);
    }
    counts[o->kind]++;
  }

  /* Read everything back. */
  for (uint64_t off = 0; off < dev_size; off += bufsize) {
    uint64_t len = dev_size - off < bufsize ? dev_size - off : bufsize;
    check_read (h, buf, off, len, "final full read");
  }
  /* And walk the whole device's block status. */
  {
    uint64_t pos = 0, n = 0;
    while (pos < dev_size) {
      uint64_t len = dev_size - pos;
      if (len > BS_MAX_REQ)
        len = BS_MAX_REQ;
      pos += block_status (h, pos, len, 0, 0, 0, 0);
      n++;
    }
    printf ("%s: final block status walk: %" PRIu64 " requests\n",
            test_name, n);
  }

  if (nbd_shutdown (h, 0) == -1)
    test_fail_nbd ("nbd_shutdown");
  nbd_close (h);
  server_stop_check (&srv);

  printf ("%s: ok: %" PRIu64 " ops (pwrite %zu, pread %zu, trim %zu, "
          "zero %zu [fast zero refused %zu], flush %zu, cache %zu, "
          "block_status %zu)\n", test_name, nops, counts[OP_WRITE],
          counts[OP_READ], counts[OP_TRIM], counts[OP_ZERO],
          fast_zero_refused, counts[OP_FLUSH], counts[OP_CACHE],
          counts[OP_BLOCK_STATUS]);
  free (shadow);
  free (buf);
  free (oplog);
  return 0;
}
