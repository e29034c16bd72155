/* Fuzz sequences of engine operations against a byte-exact shadow.
 *
 * The input is decoded into up to MAX_OPS operations on a 4 MiB device
 * through the public API (include/ghostswap/device.h, backing.h):
 * pwrite, pread, trim and zero at any offset and length (past the end
 * too), extents, compaction, ram-limit changes, writeback, backing files
 * added and removed, drains and migrations (left running while the next
 * operations go on), cancels, relocations.  The background thread runs
 * as in a real device.  Checked:
 *   - every read returns exactly the shadow's bytes, and at the end the
 *     whole device does (after the drain in flight, if any, has ended);
 *   - requests that do not fit the device fail with -EINVAL and change
 *     nothing; others succeed, or fail with -ENOSPC/-ENOMEM leaving a
 *     prefix of their slots new and the rest old, never a torn slot;
 *   - extents are in order, without gaps, merged, and a run said to read
 *     as zeroes does;
 *   - a failed backing or drain call leaves an error message.
 *
 * GHOSTSWAP_FUZZ_VERBOSE=1 prints what each input did (statistics).
 * Backing files go to a fresh directory under $GHOSTSWAP_FUZZ_TMPDIR
 * (default /var/tmp: O_DIRECT must work there), removed at exit.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "ghostswap/backing.h"
#include "ghostswap/device.h"

#define PAGE GS_SLOT_SIZE
#define DEV_SLOTS 1024u
#define DEV_SIZE ((uint64_t) DEV_SLOTS * PAGE)
#define MAX_LEN (8 * PAGE + 100)
#define MAX_OPS 96
#define NBACKINGS 3

static char dir[PATH_MAX];
static unsigned char shadow[DEV_SIZE];
/* The slots [dirty_lo, dirty_hi) (bytes) may have been written: the rest
 * of the device must read as zeroes without being checked byte by byte
 * at the end of every input (speed). */
static uint64_t dirty_lo, dirty_hi;
static bool verbose;            /* $GHOSTSWAP_FUZZ_VERBOSE: trace the ops */

static const char *const op_names[] = {
  "pwrite", "pread", "trim", "zero", "extents", "compact", "ram-limit",
  "writeback", "backing-add", "backing-remove", "drain", "drain-wait",
  "drain-cancel", "relocate", "check", "pwrite",
};
static unsigned char buf[MAX_LEN], back[MAX_LEN];

enum op {
  OP_WRITE, OP_READ, OP_TRIM, OP_ZERO, OP_EXTENTS, OP_COMPACT,
  OP_RAM_LIMIT, OP_WRITEBACK, OP_BACKING_ADD, OP_BACKING_REMOVE,
  OP_DRAIN, OP_DRAIN_WAIT, OP_DRAIN_CANCEL, OP_RELOCATE, OP_CHECK,
  OP_WRITE2,                    /* writes twice as likely as the rest */
  OP_COUNT
};

struct input {
  const uint8_t *data;
  size_t size, at;
};

static uint64_t
take (struct input *in, unsigned bytes)
{
  uint64_t v = 0;
  unsigned i;

  for (i = 0; i < bytes && in->at < in->size; i++)
    v |= (uint64_t) in->data[in->at++] << (8 * i);
  return v;
}

static void
backing_path (char *path, size_t len, unsigned i)
{
  snprintf (path, len, "%s/bk%u", dir, i);
}

static void
remove_files (void)
{
  char path[PATH_MAX + 8];
  unsigned i;

  for (i = 0; i < NBACKINGS; i++) {
    backing_path (path, sizeof path, i);
    unlink (path);
  }
}

static void
remove_dir (void)
{
  if (dir[0]) {
    remove_files ();
    rmdir (dir);
  }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *base = getenv ("GHOSTSWAP_FUZZ_TMPDIR");

  snprintf (dir, sizeof dir, "%s/ghostswap-fuzz-engine-XXXXXX",
            base && *base ? base : "/var/tmp");
  if (mkdtemp (dir) == NULL) {
    perror (dir);
    exit (1);
  }
  atexit (remove_dir);
  return 0;
}

/* An offset: mostly on or near the slots of a few clusters, sometimes at
 * the end of the device or past it. */
static uint64_t
take_offset (struct input *in)
{
  uint64_t v = take (in, 2);

  switch (v & 3) {
  case 0: return (v >> 2) % DEV_SLOTS * PAGE;
  case 1: return (v >> 2) % DEV_SLOTS * PAGE + take (in, 2) % PAGE;
  case 2: return DEV_SIZE - (v >> 2) % (4 * PAGE);
  default: return DEV_SIZE - 2 * PAGE + take (in, 2) % (4 * PAGE);
  }
}

static uint32_t
take_length (struct input *in)
{
  uint64_t v = take (in, 2);

  switch (v & 3) {
  case 0: return PAGE;
  case 1: return (uint32_t) ((v >> 2) % (3 * PAGE + 1));
  case 2: return (uint32_t) ((v >> 2) % 64);
  default: return (uint32_t) ((v >> 2) % 8 + 1) * PAGE;
  }
}

/* @len bytes of data of a kind chosen by the input. */
static void
take_data (struct input *in, unsigned char *p, uint32_t len)
{
  uint64_t kind = take (in, 1), word, s;
  uint32_t i;

  switch (kind % 6) {
  case 0:                       /* zeroes: same-filled */
    memset (p, 0, len);
    break;
  case 1:                       /* a repeated byte */
    memset (p, (int) take (in, 1), len);
    break;
  case 2:                       /* a repeated 8-byte word */
    word = take (in, 8);
    for (i = 0; i < len; i++)
      p[i] = (unsigned char) (word >> (8 * ((i + (kind >> 3)) % 8)));
    break;
  case 3:                       /* incompressible: stored raw */
    s = take (in, 4) * 0x9e3779b97f4a7c15ull + 1;
    for (i = 0; i < len; i++) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      p[i] = (unsigned char) s;
    }
    break;
  case 4:                       /* compressible text */
    s = take (in, 4) + 1;
    for (i = 0; i < len; i++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      p[i] = (unsigned char) ("ghost swap page \n"[(s >> 60) % 17]);
    }
    break;
  default:                      /* the input's own bytes, cycled */
    for (i = 0; i < len; i++)
      p[i] = in->size ? in->data[(in->at + i) % in->size] : 0;
  }
}

static bool
fits (uint64_t offset, uint32_t len)
{
  return offset <= DEV_SIZE && len <= DEV_SIZE - offset;
}

static void
check_read (struct gs_device *dev, uint64_t offset, uint32_t len)
{
  int r = gs_pread (dev, back, len, offset);
  uint32_t i;

  if (verbose)
    fprintf (stderr, "fuzz-engine:   pread %u at %llu: %d\n", len,
             (unsigned long long) offset, r);
  if (!fits (offset, len)) {
    FUZZ_CHECK (r == -EINVAL, "pread %u at %llu past the end: %d", len,
                (unsigned long long) offset, r);
    return;
  }
  FUZZ_CHECK (r == 0, "pread %u at %llu: %d", len,
              (unsigned long long) offset, r);
  if (memcmp (back, shadow + offset, len) == 0)
    return;
  for (i = 0; back[i] == shadow[offset + i]; i++)
    ;
  FUZZ_FAIL ("pread %u at %llu: byte %llu (slot %llu) is 0x%02x, the "
             "shadow has 0x%02x", len, (unsigned long long) offset,
             (unsigned long long) (offset + i),
             (unsigned long long) ((offset + i) / PAGE), back[i],
             shadow[offset + i]);
}

/* A write-like request (@newdata at @offset, @len bytes) returned @r:
 * check it against the shadow and bring the shadow up to date. */
static void
settle (struct gs_device *dev, const char *what, int r, uint64_t offset,
        uint32_t len, const unsigned char *newdata)
{
  uint64_t first, last, s;
  bool old_seen = false;

  if (verbose)
    fprintf (stderr, "fuzz-engine:   %s %u at %llu: %d\n", what, len,
             (unsigned long long) offset, r);
  if (!fits (offset, len)) {
    FUZZ_CHECK (r == -EINVAL, "%s %u at %llu past the end: %d", what, len,
                (unsigned long long) offset, r);
    return;
  }
  if (len > 0) {                /* whole slots: a partial one is data */
    uint64_t lo = offset / PAGE * PAGE;
    uint64_t hi = (offset + len + PAGE - 1) / PAGE * PAGE;

    dirty_lo = lo < dirty_lo ? lo : dirty_lo;
    dirty_hi = hi > dirty_hi ? hi : dirty_hi;
  }
  if (r == 0) {
    memcpy (shadow + offset, newdata, len);
    return;
  }
  FUZZ_CHECK (r == -ENOSPC || r == -ENOMEM, "%s %u at %llu: %d", what, len,
              (unsigned long long) offset, r);
  if (len == 0)
    return;
  /* Per-slot atomicity: a prefix of the slots is new, the rest old. */
  first = offset / PAGE;
  last = (offset + len - 1) / PAGE;
  for (s = first; s <= last; s++) {
    unsigned char want[PAGE], got[PAGE];
    uint64_t lo = s * PAGE > offset ? s * PAGE : offset;
    uint64_t hi = (s + 1) * PAGE < offset + len ? (s + 1) * PAGE
                                                  : offset + len;
    bool is_old, is_new;

    FUZZ_CHECK (gs_pread (dev, got, PAGE, s * PAGE) == 0, "pread slot %llu",
                (unsigned long long) s);
    memcpy (want, shadow + s * PAGE, PAGE);
    is_old = memcmp (got, want, PAGE) == 0;
    memcpy (want + (lo - s * PAGE), newdata + (lo - offset), hi - lo);
    is_new = memcmp (got, want, PAGE) == 0;
    FUZZ_CHECK (is_old || is_new, "%s %u at %llu failed (%d) and left slot "
                "%llu torn", what, len, (unsigned long long) offset, r,
                (unsigned long long) s);
    FUZZ_CHECK (is_old || !old_seen, "%s %u at %llu failed (%d): slot %llu "
                "is new after an old one", what, len,
                (unsigned long long) offset, r, (unsigned long long) s);
    if (!is_new)
      old_seen = true;
    memcpy (shadow + s * PAGE, got, PAGE);
  }
}

static bool
all_zero (const unsigned char *p, uint64_t n)
{
  return n == 0 || (p[0] == 0 && memcmp (p, p + 1, n - 1) == 0);
}

struct extents_check {
  uint64_t next;                /* where the next run must start */
  uint32_t last_type;
  unsigned runs;
};

static int
extent_cb (void *opaque, uint64_t offset, uint64_t length, uint32_t type)
{
  struct extents_check *x = opaque;
  uint64_t i;

  FUZZ_CHECK (offset == x->next, "extent at %llu, expected at %llu",
              (unsigned long long) offset, (unsigned long long) x->next);
  FUZZ_CHECK (length > 0 && offset + length <= DEV_SIZE,
              "extent %llu+%llu", (unsigned long long) offset,
              (unsigned long long) length);
  FUZZ_CHECK (x->runs == 0 || type != x->last_type,
              "extents at %llu not merged (type %u)",
              (unsigned long long) offset, type);
  FUZZ_CHECK ((type & ~(GS_EXTENT_HOLE | GS_EXTENT_ZERO)) == 0
              && (type != GS_EXTENT_HOLE), "extent type %u", type);
  if ((type & GS_EXTENT_ZERO) && !all_zero (shadow + offset, length))
    for (i = offset; i < offset + length; i++)
      FUZZ_CHECK (shadow[i] == 0, "extent %llu+%llu said zero, byte %llu "
                  "is 0x%02x", (unsigned long long) offset,
                  (unsigned long long) length, (unsigned long long) i,
                  shadow[i]);
  x->next = offset + length;
  x->last_type = type;
  x->runs++;
  return 0;
}

static void
check_extents (struct gs_device *dev, uint64_t offset, uint32_t len,
               unsigned max_runs)
{
  struct extents_check x = { .next = offset };
  int r = gs_extents (dev, len, offset, max_runs, extent_cb, &x);

  if (!fits (offset, len)) {
    FUZZ_CHECK (r == -EINVAL, "extents past the end: %d", r);
    return;
  }
  FUZZ_CHECK (r == 0, "extents %u at %llu: %d", len,
              (unsigned long long) offset, r);
  FUZZ_CHECK (x.runs <= (max_runs ? max_runs : 1), "%u runs for at most %u",
              x.runs, max_runs);
  FUZZ_CHECK (x.next == offset + len || (x.runs == (max_runs ? max_runs : 1)
                                         && x.next < offset + len),
              "extents %u at %llu ended at %llu after %u runs", len,
              (unsigned long long) offset, (unsigned long long) x.next,
              x.runs);
}

/* [@lo, @hi), never written by this input, is one run of holes or
 * zeroes. */
static void
check_untouched (struct gs_device *dev, uint64_t lo, uint64_t hi)
{
  struct extents_check x = { .next = lo };
  int r;

  if (lo >= hi)
    return;
  r = gs_extents (dev, (uint32_t) (hi - lo), lo, 1, extent_cb, &x);
  FUZZ_CHECK (r == 0 && x.runs == 1 && x.next == hi
              && (x.last_type & GS_EXTENT_ZERO),
              "never written %llu..%llu: %d, %u runs to %llu, type %u",
              (unsigned long long) lo, (unsigned long long) hi, r, x.runs,
              (unsigned long long) x.next, x.last_type);
}

static void
check_all (struct gs_device *dev, uint64_t first, uint64_t end)
{
  uint64_t at;

  for (at = first; at < end; at += 8 * PAGE)
    check_read (dev, at, (uint32_t) (end - at < 8 * PAGE ? end - at
                                     : 8 * PAGE));
}

static void
check_err (const char *what, int r, const char *err)
{
  if (verbose)
    fprintf (stderr, "fuzz-engine:   %s: %d %s\n", what, r, err);
  if (r < 0)
    FUZZ_CHECK (err[0] != '\0' && strchr (err, '\n') == NULL,
                "%s failed (%d) with no one-line message: '%s'", what, r,
                err);
}

static void
run_op (struct gs_device *dev, struct input *in)
{
  unsigned op = (unsigned) (take (in, 1) % OP_COUNT);
  char path[PATH_MAX + 8], target[PATH_MAX + 8], err[2 * PATH_MAX];
  uint64_t offset, v;
  uint32_t len;
  unsigned flags;
  int r;

  err[0] = '\0';
  if (verbose)
    fprintf (stderr, "fuzz-engine: [input byte %zu] %s\n", in->at - 1,
             op_names[op]);
  switch (op) {
  case OP_WRITE:
  case OP_WRITE2:
    offset = take_offset (in);
    len = take_length (in);
    take_data (in, buf, len);
    settle (dev, "pwrite", gs_pwrite (dev, buf, len, offset), offset, len,
            buf);
    break;
  case OP_READ:
    offset = take_offset (in);
    check_read (dev, offset, take_length (in));
    break;
  case OP_TRIM:
    offset = take_offset (in);
    len = take_length (in);
    memset (buf, 0, len);
    settle (dev, "trim", gs_trim (dev, len, offset), offset, len, buf);
    break;
  case OP_ZERO:
    offset = take_offset (in);
    len = take_length (in);
    flags = take (in, 1) & 1 ? GS_ZERO_MAY_TRIM : 0;
    memset (buf, 0, len);
    settle (dev, "zero", gs_zero (dev, len, offset, flags), offset, len, buf);
    break;
  case OP_EXTENTS:
    offset = take_offset (in);
    len = take_length (in);
    check_extents (dev, offset, len, (unsigned) take (in, 1) % 8);
    break;
  case OP_COMPACT:
    gs_compact (dev);
    break;
  case OP_RAM_LIMIT:
    v = take (in, 1);
    r = gs_set_ram_limit (dev, GS_MIN_RAM_LIMIT + v * 64 * 1024);
    FUZZ_CHECK (r == 0, "ram-limit %llu: %d",
                (unsigned long long) (GS_MIN_RAM_LIMIT + v * 64 * 1024), r);
    break;
  case OP_WRITEBACK:
    gs_writeback (dev, take (in, 1));
    break;
  case OP_BACKING_ADD:
    backing_path (path, sizeof path, (unsigned) take (in, 1) % NBACKINGS);
    r = gs_backing_add (dev, path, (take (in, 1) % 16 + 1) * 64 * PAGE,
                        err, sizeof err);
    check_err ("backing add", r, err);
    break;
  case OP_BACKING_REMOVE:
    backing_path (path, sizeof path, (unsigned) take (in, 1) % NBACKINGS);
    r = gs_backing_remove (dev, path, err, sizeof err);
    check_err ("backing remove", r, err);
    break;
  case OP_DRAIN:
    v = take (in, 1);
    backing_path (path, sizeof path, (unsigned) (v & 3) % NBACKINGS);
    backing_path (target, sizeof target,
                  (unsigned) (v >> 2 & 3) % NBACKINGS);
    r = gs_drain_start (dev, path, v & 0x20 ? target : NULL, v & 0x40,
                        err, sizeof err);
    check_err ("drain", r, err);
    break;
  case OP_DRAIN_WAIT:
    gs_drain_wait (dev);
    break;
  case OP_DRAIN_CANCEL:
    gs_drain_cancel (dev);
    break;
  case OP_RELOCATE:
    backing_path (path, sizeof path, (unsigned) take (in, 1) % NBACKINGS);
    gs_relocate_slot (dev, path, take (in, 2) % (16 * 64));
    break;
  case OP_CHECK:
    offset = take (in, 1) % (DEV_SLOTS / 64) * 64 * PAGE;
    check_all (dev, offset, offset + 64 * PAGE);
    break;
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct input in = { .data = data, .size = size };
  struct gs_config cfg;
  struct gs_device *dev;
  unsigned ops;

  verbose = getenv ("GHOSTSWAP_FUZZ_VERBOSE") != NULL;
  gs_config_init (&cfg);
  cfg.size = DEV_SIZE;
  cfg.ram_limit = 1 << 20;
  if (gs_device_create (&cfg, &dev) < 0 || gs_device_start (dev) < 0)
    abort ();
  dirty_lo = DEV_SIZE;
  dirty_hi = 0;
  for (ops = 0; ops < MAX_OPS && in.at < in.size; ops++)
    run_op (dev, &in);
  gs_drain_wait (dev);
  /* Everything reads back as the shadow: the dirty range byte by byte,
   * the rest as zeroes (extents say so without reading every slot). */
  if (dirty_lo < dirty_hi) {
    check_all (dev, dirty_lo, dirty_hi);
    check_untouched (dev, 0, dirty_lo);
    check_untouched (dev, dirty_hi, DEV_SIZE);
  } else {
    check_untouched (dev, 0, DEV_SIZE);
  }
  if (getenv ("GHOSTSWAP_FUZZ_VERBOSE")) {
    struct gs_stats st;
    struct gs_drain_status ds;

    gs_get_stats (dev, &st);
    gs_drain_get_status (dev, &ds);
    fprintf (stderr, "fuzz-engine: %u ops: %llu ram, %llu same, %llu on "
             "backing; %llu written back, %llu compactions, %llu enospc; "
             "last drain: %llu moved, result %d\n", ops,
             (unsigned long long) st.slots_ram,
             (unsigned long long) st.slots_same,
             (unsigned long long) st.slots_backing,
             (unsigned long long) st.writeback_pages,
             (unsigned long long) st.compactions,
             (unsigned long long) st.enospc,
             (unsigned long long) ds.done, ds.result);
  }
  gs_device_destroy (dev);
  remove_files ();
  if (dirty_lo < dirty_hi)
    memset (shadow + dirty_lo, 0, dirty_hi - dirty_lo);
  return 0;
}
