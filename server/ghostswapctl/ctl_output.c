/* ghostswapctl: printing answers for people (see ctl_output.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghostswap/config.h"

#include "ctl_output.h"

/* ctl_size_long - see ctl_output.h. */
const char *
ctl_size_long (uint64_t bytes, char *buf, size_t len)
{
  static const char *const units[] = {
    "KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
  };
  double v = (double) bytes;
  int u = -1;

  if (bytes < 1024) {
    snprintf (buf, len, "%" PRIu64 " B", bytes);
    return buf;
  }
  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  snprintf (buf, len, "%.1f %s", v, units[u]);
  return buf;
}

/* ctl_size_short - see ctl_output.h. */
const char *
ctl_size_short (uint64_t bytes, bool exact, char *buf, size_t len)
{
  static const char units[] = "KMGTPE";
  double v = (double) bytes;
  int u = -1;

  if (exact || bytes < 1024) {
    snprintf (buf, len, exact ? "%" PRIu64 : "%" PRIu64 "B", bytes);
    return buf;
  }
  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  /* One decimal, as zramctl: "1.5G", but "64M" rather than "64.0M". */
  snprintf (buf, len, "%.1f", v);
  if (strcmp (buf + strlen (buf) - 2, ".0") == 0)
    buf[strlen (buf) - 2] = '\0';
  snprintf (buf + strlen (buf), len - strlen (buf), "%c", units[u]);
  return buf;
}

static void __attribute__ ((noreturn))
out_of_memory (void)
{
  fprintf (stderr, "ghostswapctl: out of memory\n");
  exit (1);
}

/* ctl_table_add - see ctl_output.h. */
void
ctl_table_add (struct ctl_table *t, const char *const *row)
{
  char **cells = realloc (t->cells,
                          (t->nrows + 1) * t->ncols * sizeof *cells);
  size_t k;

  if (cells == NULL)
    out_of_memory ();
  t->cells = cells;
  for (k = 0; k < t->ncols; k++) {
    cells[t->nrows * t->ncols + k] = strdup (row[k] ? row[k] : "-");
    if (cells[t->nrows * t->ncols + k] == NULL)
      out_of_memory ();
  }
  t->nrows++;
}

static void
print_row (const struct ctl_table *t, const size_t *width,
           const char *const *row)
{
  size_t k;

  for (k = 0; k < t->ncols; k++) {
    bool last = k + 1 == t->ncols;

    if (k > 0)
      putchar (' ');
    if (t->left[k] && last)
      fputs (row[k], stdout);   /* no trailing blanks */
    else
      printf (t->left[k] ? "%-*s" : "%*s", (int) width[k], row[k]);
  }
  putchar ('\n');
}

/* ctl_table_print - see ctl_output.h. */
void
ctl_table_print (struct ctl_table *t, bool noheadings)
{
  size_t *width = calloc (t->ncols, sizeof *width);
  size_t i, k;

  if (width == NULL)
    out_of_memory ();
  for (k = 0; k < t->ncols; k++)
    width[k] = noheadings ? 0 : strlen (t->head[k]);
  for (i = 0; i < t->nrows; i++)
    for (k = 0; k < t->ncols; k++)
      if (strlen (t->cells[i * t->ncols + k]) > width[k])
        width[k] = strlen (t->cells[i * t->ncols + k]);
  if (!noheadings)
    print_row (t, width, t->head);
  for (i = 0; i < t->nrows; i++)
    print_row (t, width, (const char *const *) t->cells + i * t->ncols);
  for (i = 0; i < t->nrows * t->ncols; i++)
    free (t->cells[i]);
  free (t->cells);
  t->cells = NULL;
  t->nrows = 0;
  free (width);
}

static bool
ends_with (const char *s, const char *tail)
{
  size_t n = strlen (s), m = strlen (tail);

  return n >= m && strcmp (s + n - m, tail) == 0;
}

/* stat_value - one figure of "stats", humanised by its name. */
static const char *
stat_value (const char *key, json_object *v, bool exact, char *buf,
            size_t len)
{
  if (json_object_is_type (v, json_type_string))
    return json_object_get_string (v);
  if (!json_object_is_type (v, json_type_int)
      && !json_object_is_type (v, json_type_double))
    return json_object_to_json_string_ext (v, JSON_C_TO_STRING_PLAIN);
  if (strcmp (key, "size") == 0 || strcmp (key, "ram_limit") == 0
      || ends_with (key, "_bytes") || strncmp (key, "bytes_", 6) == 0)
    return exact ? (snprintf (buf, len, "%" PRIu64, ctl_json_value_u64 (v)),
                    buf)
      : ctl_size_long (ctl_json_value_u64 (v), buf, len);
  if (ends_with (key, "_ratio"))
    snprintf (buf, len, "%.2fx", json_object_get_double (v));
  else if (strcmp (key, "pool_fragmentation") == 0)
    snprintf (buf, len, "%.1f %%", json_object_get_double (v) * 100);
  else if (strncmp (key, "metadata_per_", 13) == 0)
    snprintf (buf, len, "%.1f B", json_object_get_double (v));
  else if (json_object_is_type (v, json_type_int))
    snprintf (buf, len, "%" PRIu64, ctl_json_value_u64 (v));
  else
    snprintf (buf, len, "%.17g", json_object_get_double (v));
  return buf;
}

/* ctl_print_stats - see ctl_output.h. */
void
ctl_print_stats (json_object *stats, bool exact)
{
  size_t width = 0;
  char buf[64];

  if (stats == NULL || !json_object_is_type (stats, json_type_object))
    return;
  {
    json_object_object_foreach (stats, key, val) {
      (void) val;
      if (strlen (key) > width)
        width = strlen (key);
    }
  }
  {
    json_object_object_foreach (stats, key, val)
      printf ("%-*s  %s\n", (int) width, key,
              stat_value (key, val, exact, buf, sizeof buf));
  }
}

/* ctl_print_backings - see ctl_output.h.  Every size column in the same
 * unit (bytes), READS and WRITES count pages. */
void
ctl_print_backings (json_object *list, bool exact, bool noheadings)
{
  static const char *const head[] = {
    "PATH", "SIZE", "USED", "USE%", "STATE", "READS", "WRITES", "ERRORS",
  };
  static const bool left[] = {
    true, false, false, false, true, false, false, false,
  };
  struct ctl_table t = { .ncols = 8, .head = head, .left = left };
  size_t i, n;

  if (list == NULL || !json_object_is_type (list, json_type_array)
      || json_object_array_length (list) == 0) {
    if (!noheadings)
      printf ("no backing attached\n");
    return;
  }
  n = json_object_array_length (list);
  for (i = 0; i < n; i++) {
    json_object *b = json_object_array_get_idx (list, i);
    uint64_t slots = ctl_json_u64 (b, "slots"), used = ctl_json_u64 (b, "used");
    char size[32], usedb[32], pct[16], reads[24], writes[24], errs[48];
    const char *row[8], *rstate;

    snprintf (pct, sizeof pct, "%.1f%%",
              slots ? 100.0 * (double) used / (double) slots : 0.0);
    snprintf (reads, sizeof reads, "%" PRIu64, ctl_json_u64 (b, "reads"));
    snprintf (writes, sizeof writes, "%" PRIu64, ctl_json_u64 (b, "writes"));
    snprintf (errs, sizeof errs, "%" PRIu64 "/%" PRIu64,
              ctl_json_u64 (b, "read_errors"), ctl_json_u64 (b, "write_errors"));
    row[0] = ctl_json_str (b, "path");
    row[1] = ctl_size_short (ctl_json_u64 (b, "size"), exact, size, sizeof size);
    row[2] = ctl_size_short (used * GS_SLOT_SIZE, exact, usedb, sizeof usedb);
    row[3] = pct;
    /* A remote's connection state when it is not simply connected. */
    rstate = ctl_json_str (b, "remote_state");
    row[4] = ctl_json_bool (b, "draining", false) ? "draining"
      : !ctl_json_bool (b, "healthy", true) ? "unhealthy"
      : rstate && strcmp (rstate, "none") != 0
        && strcmp (rstate, "connected") != 0 ? rstate : "ok";
    row[5] = reads;
    row[6] = writes;
    row[7] = errs;
    ctl_table_add (&t, row);
  }
  ctl_table_print (&t, noheadings);
}

static void
format_eta (double seconds, char *buf, size_t len)
{
  long s;

  if (!(seconds >= 0) || seconds > 360000) {
    snprintf (buf, len, "--:--");
    return;
  }
  s = (long) (seconds + 0.5);
  if (s >= 3600)
    snprintf (buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    snprintf (buf, len, "%ld:%02ld", s / 60, s % 60);
}

/* drain_progress - slots dealt with (moved or skipped), at most total. */
static uint64_t
drain_progress (json_object *d)
{
  uint64_t total = ctl_json_u64 (d, "total");
  uint64_t n = ctl_json_u64 (d, "done") + ctl_json_u64 (d, "skipped");

  return n < total ? n : total;
}

/* ctl_drain_line - see ctl_output.h. */
int
ctl_drain_line (json_object *d, char *buf, size_t len)
{
  const char *source = ctl_json_str (d, "source");
  const char *target = ctl_json_str (d, "target");
  const char *message = ctl_json_str (d, "message");
  bool migrate = ctl_json_bool (d, "migrate", false);
  int n;

  if (source == NULL || source[0] == '\0') {
    snprintf (buf, len, "none has run");
    return 0;
  }
  if (ctl_json_num (d, "result", 0) != 0) {
    snprintf (buf, len, "%s of %s failed: %s",
              migrate ? "migration" : "drain", source,
              message && message[0] ? message : "unknown error");
    return 1;
  }
  if (migrate)
    n = snprintf (buf, len, "migrated %s to %s", source, target ? target : "?");
  else
    n = snprintf (buf, len, "drained %s", source);
  if (n >= 0 && (size_t) n < len)
    snprintf (buf + n, len - (size_t) n,
              ": %" PRIu64 " slots moved, %" PRIu64 " skipped, in %.1f s "
              "(%.1f MB/s)",
              ctl_json_u64 (d, "done"), ctl_json_u64 (d, "skipped"),
              ctl_json_num (d, "seconds", 0),
              ctl_json_num (d, "bytes_per_sec", 0) / 1e6);
  return 0;
}

/* ctl_print_drain_status - see ctl_output.h. */
int
ctl_print_drain_status (json_object *d)
{
  const char *source = ctl_json_str (d, "source");
  const char *target = ctl_json_str (d, "target");
  uint64_t total = ctl_json_u64 (d, "total"), done = drain_progress (d);
  double bps = ctl_json_num (d, "bytes_per_sec", 0);
  char eta[32], line[8192];
  int status;

  if (d == NULL)
    return 0;
  if (!ctl_json_bool (d, "running", false)) {
    if (source == NULL || source[0] == '\0') {
      printf ("drain: none has run\n");
      return 0;
    }
    status = ctl_drain_line (d, line, sizeof line);
    printf ("drain: last one: %s\n", line);
    return status;
  }
  format_eta (bps > 0 ? (double) (total - done) * GS_SLOT_SIZE / bps : -1,
              eta, sizeof eta);
  printf ("drain: %s %s -> %s: %" PRIu64 "/%" PRIu64 " slots (%.1f %%), "
          "%.1f MB/s, ETA %s\n",
          ctl_json_bool (d, "migrate", false) ? "migrating" : "draining",
          source ? source : "?",
          target && target[0] ? target : "anywhere",
          done, total, total ? 100.0 * (double) done / (double) total : 100.0,
          bps / 1e6, eta);
  return 0;
}

/* ctl_draw_bar - see ctl_output.h. */
void
ctl_draw_bar (json_object *d)
{
  enum { WIDTH = 30 };
  uint64_t total = ctl_json_u64 (d, "total"), done = drain_progress (d);
  double bps = ctl_json_num (d, "bytes_per_sec", 0);
  double frac = total ? (double) done / (double) total : 1.0;
  char bar[WIDTH + 1], eta[32];
  int i, fill = (int) (frac * WIDTH);

  for (i = 0; i < WIDTH; i++)
    bar[i] = i < fill ? '#' : '-';
  bar[WIDTH] = '\0';
  format_eta (bps > 0 ? (double) (total - done) * GS_SLOT_SIZE / bps : -1,
              eta, sizeof eta);
  printf ("\r[%s] %5.1f%%  %" PRIu64 "/%" PRIu64 " slots  %.1f MB/s  ETA %s"
          "\033[K", bar, frac * 100, done, total, bps / 1e6, eta);
  fflush (stdout);
}
