/* ghostswapctl: the device list (see ctl_devices.h). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ghostswap/config.h"

#include "ctl_conn.h"
#include "ctl_devices.h"
#include "ctl_output.h"
#include "mountinfo.h"
#include "swap_use.h"

/* The columns, in the order -o may not change: the default ones first. */
#define COLUMNS(X)                                                      \
  X (NAME, "NAME", "name", true, true)                                  \
  X (FRONTEND, "FRONTEND", "frontend", true, true)                      \
  X (SWAPDEV, "SWAP-DEVICE", "swap-device", true, true)                 \
  X (SIZE, "SIZE", "size", false, true)                                 \
  X (STORED, "STORED", "stored", false, true)                           \
  X (COMPRESSED, "COMPRESSED", "compressed", false, true)               \
  X (RAM, "RAM", "ram", false, true)                                    \
  X (RATIO, "RATIO", "ratio", false, true)                              \
  X (BACKINGS, "BACKINGS", "backings", false, true)                     \
  X (RAMLIMIT, "RAM-LIMIT", "ram-limit", false, false)                  \
  X (BACKINGSIZE, "BACKING-SIZE", "backing-size", false, false)         \
  X (BACKINGUSED, "BACKING-USED", "backing-used", false, false)         \
  X (PID, "PID", "pid", false, false)                                   \
  X (SOCKET, "SOCKET", "socket", true, false)

enum column {
#define X(id, head, key, left, dflt) COL_##id,
  COLUMNS (X)
#undef X
  NCOLUMNS
};

static const struct {
  const char *head, *key;
  bool left, dflt;
} columns[NCOLUMNS] = {
#define X(id, head, key, left, dflt) { head, key, left, dflt },
  COLUMNS (X)
#undef X
};

/* find_column - the column named @name (@len bytes); also without its
 * dashes ("SWAPDEVICE"). */
static int
find_column (const char *name, size_t len)
{
  char want[32], have[32];
  size_t i, k, m;

  for (k = m = 0; k < len && m + 1 < sizeof want; k++)
    if (name[k] != '-')
      want[m++] = name[k];
  want[m] = '\0';
  for (i = 0; i < NCOLUMNS; i++) {
    for (k = m = 0; columns[i].head[k]; k++)
      if (columns[i].head[k] != '-')
        have[m++] = columns[i].head[k];
    have[m] = '\0';
    if (strcasecmp (want, have) == 0)
      return (int) i;
  }
  return -1;
}

/* parse_columns - the columns to show, in order, into @cols.
 * Return: how many, or -1 with a message. */
static int
parse_columns (const char *list, enum column *cols, char *err, size_t errlen)
{
  int n = 0, c;
  size_t i;

  if (list == NULL || list[0] == '+') {
    for (i = 0; i < NCOLUMNS; i++)
      if (columns[i].dflt)
        cols[n++] = (enum column) i;
    if (list == NULL)
      return n;
    list++;
  }
  while (*list) {
    size_t len = strcspn (list, ",");

    c = len ? find_column (list, len) : -1;
    if (c < 0) {
      snprintf (err, errlen, "-o: unknown column '%.*s' (columns: NAME, "
                "FRONTEND, SWAP-DEVICE, SIZE, STORED, COMPRESSED, RAM, "
                "RATIO, BACKINGS, RAM-LIMIT, BACKING-SIZE, BACKING-USED, "
                "PID, SOCKET)", (int) len, list);
      return -1;
    }
    if (n == 64) {
      snprintf (err, errlen, "-o: too many columns");
      return -1;
    }
    cols[n++] = (enum column) c;
    list += len;
    if (*list == ',')
      list++;
  }
  return n;
}

/* ctl_check_columns - see ctl_devices.h. */
int
ctl_check_columns (const char *list, char *err, size_t errlen)
{
  enum column cols[64];

  return parse_columns (list, cols, err, errlen) < 0 ? -1 : 0;
}

struct device {
  char name[NAME_MAX + 1];
  const char *socket;
  long pid;
  char frontend[32];
  char swapdev[PATH_MAX];
  json_object *answer;          /* the "stats" answer */
};

/* read_file - the first @len - 1 bytes of @path, NUL-terminated.
 * Return: the number of bytes, or -1. */
static ssize_t
read_file (const char *path, char *buf, size_t len)
{
  FILE *fp = fopen (path, "re");
  size_t n;

  if (fp == NULL)
    return -1;
  n = fread (buf, 1, len - 1, fp);
  fclose (fp);
  buf[n] = '\0';
  return (ssize_t) n;
}

/* is_ghostswap_mount - is @dir a ghostswapd mount point? */
static bool
is_ghostswap_mount (const char *dir)
{
  char type[64];

  return mountinfo_fstype (dir, type, sizeof type) == 1
    && strcmp (type, MOUNTINFO_GHOSTSWAP) == 0;
}

/* fuse_swap_device - for ghostswapd @pid: its mount (the argument that
 * is a fuse.ghostswap mount point), and what swaps to its file. */
static void
fuse_swap_device (struct device *d)
{
  char path[64], args[8192], cwd[PATH_MAX], dir[2 * PATH_MAX];
  char file[PATH_MAX + 8], real[PATH_MAX];
  ssize_t n, k;
  ssize_t cwdlen;

  snprintf (path, sizeof path, "/proc/%ld/cmdline", d->pid);
  n = read_file (path, args, sizeof args);
  snprintf (path, sizeof path, "/proc/%ld/cwd", d->pid);
  cwdlen = readlink (path, cwd, sizeof cwd - 1);
  cwd[cwdlen > 0 ? cwdlen : 0] = '\0';
  for (k = 0; n > 0 && k < n; k += (ssize_t) strlen (args + k) + 1) {
    const char *a = args + k;

    if (a[0] == '-' || strchr (a, '=') != NULL || k == 0)
      continue;
    if (a[0] == '/')
      snprintf (dir, sizeof dir, "%s", a);
    else if (cwd[0])
      snprintf (dir, sizeof dir, "%s/%s", cwd, a);
    else
      continue;
    if (realpath (dir, real) == NULL || !is_ghostswap_mount (real))
      continue;
    snprintf (file, sizeof file, "%s/swap", strcmp (real, "/") ? real : "");
    if (swap_use_active (file, d->swapdev, sizeof d->swapdev) <= 0)
      snprintf (d->swapdev, sizeof d->swapdev, "-");
    return;
  }
}

/* identify - fill in the frontend and the swap device of @d. */
static void
identify (struct device *d)
{
  json_object *info = ctl_json_get (d->answer, "info");
  const char *fe = ctl_json_str (info, "frontend");
  char path[64], comm[sizeof d->frontend];

  snprintf (d->swapdev, sizeof d->swapdev, "-");
  snprintf (d->frontend, sizeof d->frontend, "-");
  if (fe == NULL)
    fe = ctl_json_str (d->answer, "frontend");
  if (fe == NULL && d->pid > 0) {
    snprintf (path, sizeof path, "/proc/%ld/comm", d->pid);
    if (read_file (path, comm, sizeof comm) > 0) {
      comm[strcspn (comm, "\n")] = '\0';
      fe = strcmp (comm, "ghostswapd") == 0 ? "fuse"
        : strcmp (comm, "nbdkit") == 0 ? "nbd" : comm;
    }
  }
  if (fe != NULL)
    snprintf (d->frontend, sizeof d->frontend, "%s", fe);
  if (strcmp (d->frontend, "fuse") == 0 && d->pid > 0)
    fuse_swap_device (d);
}

/* cell - the text of column @c for @d (in @buf). */
static const char *
cell (const struct device *d, enum column c, bool exact, char *buf,
      size_t len)
{
  json_object *st = ctl_json_get (d->answer, "stats");
  uint64_t slots = ctl_json_u64 (st, "slots");
  uint64_t empty = ctl_json_u64 (st, "slots_empty");

  switch (c) {
  case COL_NAME: return d->name;
  case COL_FRONTEND: return d->frontend;
  case COL_SWAPDEV: return d->swapdev;
  case COL_SOCKET: return d->socket;
  case COL_SIZE:
    return ctl_size_short (ctl_json_u64 (st, "size"), exact, buf, len);
  case COL_STORED:
    return ctl_size_short ((slots > empty ? slots - empty : 0) * GS_SLOT_SIZE,
                           exact, buf, len);
  case COL_COMPRESSED:
    return ctl_size_short (ctl_json_u64 (st, "compressed_bytes"), exact,
                           buf, len);
  case COL_RAM:
    return ctl_size_short (ctl_json_u64 (st, "pool_bytes")
                           + ctl_json_u64 (st, "metadata_bytes"),
                           exact, buf, len);
  case COL_RATIO:
    snprintf (buf, len, "%.2f", ctl_json_num (st, "memory_ratio", 0));
    return buf;
  case COL_BACKINGS:
    snprintf (buf, len, "%" PRIu64, ctl_json_u64 (st, "backings"));
    return buf;
  case COL_RAMLIMIT:
    return ctl_size_short (ctl_json_u64 (st, "ram_limit"), exact, buf, len);
  case COL_BACKINGSIZE:
    return ctl_size_short (ctl_json_u64 (st, "backing_slots") * GS_SLOT_SIZE,
                           exact, buf, len);
  case COL_BACKINGUSED:
    return ctl_size_short (ctl_json_u64 (st, "backing_used") * GS_SLOT_SIZE,
                           exact, buf, len);
  case COL_PID:
    snprintf (buf, len, "%ld", d->pid);
    return buf;
  default:
    return "?";
  }
}

/* json_cell - column @c of @d as a JSON value: numbers for sizes. */
static json_object *
json_cell (const struct device *d, enum column c)
{
  char buf[64];

  switch (c) {
  case COL_NAME: case COL_FRONTEND: case COL_SWAPDEV: case COL_SOCKET:
    if (strcmp (cell (d, c, true, buf, sizeof buf), "-") == 0)
      return NULL;
    return json_object_new_string (cell (d, c, true, buf, sizeof buf));
  case COL_RATIO:
    return json_object_new_double (ctl_json_num (ctl_json_get (d->answer,
                                                               "stats"),
                                                 "memory_ratio", 0));
  default:
    return json_object_new_uint64 (strtoull (cell (d, c, true, buf,
                                                   sizeof buf), NULL, 10));
  }
}

/* ctl_list_devices - see ctl_devices.h. */
int
ctl_list_devices (char **paths, int n, const struct ctl_list_opts *o)
{
  enum column cols[64];
  const char *head[64];
  bool left[64];
  struct ctl_table t = { .head = head, .left = left };
  json_object *top = NULL, *arr = NULL;
  char err[1024];
  int ncols, i, k, answered = 0;

  ncols = parse_columns (o->columns, cols, err, sizeof err);
  if (ncols < 0) {
    fprintf (stderr, "ghostswapctl: %s\n", err);
    return 2;
  }
  for (k = 0; k < ncols; k++) {
    head[k] = columns[cols[k]].head;
    left[k] = columns[cols[k]].left;
  }
  t.ncols = (size_t) ncols;
  if (o->json) {
    top = json_object_new_object ();
    arr = json_object_new_array ();
    json_object_object_add (top, "devices", arr);
  }

  for (i = 0; i < n; i++) {
    struct device d = { .socket = paths[i] };
    struct ctl_conn c;
    int r = ctl_conn_open (&c, paths[i]);

    ctl_socket_name (paths[i], d.name, sizeof d.name);
    if (r < 0) {
      fprintf (stderr, "ghostswapctl: %s: no server on %s (%s): skipped\n",
               d.name, paths[i], strerror (-r));
      continue;
    }
    d.pid = c.peer;
    d.answer = ctl_conn_request (&c, "stats\n", NULL, NULL, err, sizeof err);
    ctl_conn_close (&c);
    if (d.answer == NULL || !ctl_json_bool (d.answer, "ok", false)) {
      fprintf (stderr, "ghostswapctl: %s: %s: skipped\n", d.name,
               d.answer ? ctl_json_str (d.answer, "error") : err);
      json_object_put (d.answer);
      continue;
    }
    answered++;
    identify (&d);
    if (o->json) {
      json_object *dev = json_object_new_object ();

      for (k = 0; k < ncols; k++)
        json_object_object_add (dev, columns[cols[k]].key,
                                json_cell (&d, cols[k]));
      json_object_array_add (arr, dev);
    }
    else {
      char bufs[64][64];
      const char *row[64];

      for (k = 0; k < ncols; k++)
        row[k] = cell (&d, cols[k], o->exact, bufs[k], sizeof bufs[k]);
      ctl_table_add (&t, row);
    }
    json_object_put (d.answer);
  }

  if (o->json) {
    puts (json_object_to_json_string_ext (top, JSON_C_TO_STRING_PRETTY
                                          | JSON_C_TO_STRING_SPACED
                                          | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put (top);
  }
  else if (t.nrows > 0)
    ctl_table_print (&t, o->noheadings);
  return n > 0 && answered == 0 ? 3 : 0;
}
