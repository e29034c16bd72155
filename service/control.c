/* ghostswap service: the control socket (see ghostswap/service/control.h
 * and docs/ghostswapctl.pod).
 *
 * Two halves: the commands, which turn one request line into one JSON
 * answer through the engine's calls (gs_control_handle), and the server,
 * which accepts clients on a Unix socket and feeds their lines to the
 * commands.
 *
 * The server is one thread polling the listening socket and an eventfd
 * (written by gs_control_stop), plus one thread per client, at most
 * GS_CONTROL_MAX_CLIENTS at once.  A client is served line by line; every
 * socket has receive and send timeouts, so a client that sends nothing, or
 * stops in the middle of a line, or does not read its answers, only ever
 * holds its own thread, and only for a while.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json.h>

#include "cleanup.h"
#include "errmsg.h"
#include "ghostswap/backing.h"
#include "ghostswap/config.h"
#include "ghostswap/device.h"
#include "ghostswap/service/control.h"
#include "ghostswap/service/metrics.h"
#include "ghostswap/stats.h"
#include "json_value.h"
#include "remote_warn.h"

/* Clients served at once; more are told so and closed. */
#define GS_CONTROL_MAX_CLIENTS 16

/* Seconds a client may take to send a request (counted from the previous
 * answer) or to read an answer. */
#define GS_CONTROL_TIMEOUT 30

/* After an error that ends a connection, how long (ms) and how much we
 * read and discard before closing, so that closing with unread data (which
 * resets the connection) does not destroy the answer. */
#define GS_CONTROL_LINGER_MS 1000
#define GS_CONTROL_LINGER_BYTES (1024 * 1024)

/* Words looked at in a request; a request with more is refused. */
#define GS_CONTROL_MAX_WORDS 8

/* Longest piece of a request quoted back in an error message. */
#define GS_CONTROL_QUOTE 64

/* The list of commands for errors, in the order of docs/ghostswapctl.pod. */
#define GS_CONTROL_COMMANDS \
  "stats, metrics, reset-peak, backing, migrate, drain, ram-limit, " \
  "writeback"

/* ---- Answers ---- */

struct request {
  struct gs_device *dev;
  struct gs_metrics_source *metrics;  /* may be NULL */
  int fd;                       /* the client's socket, or -1 */
  struct json_object *answer;   /* reply_ok or reply_error made it */
  bool enomem;                  /* a value could not be made */
};

/* add - set @key of the answer to @v (NULL: a JSON null, which is also
 * what an out-of-memory constructor returns: @ok false says which). */
static void
add (struct request *rq, const char *key, struct json_object *v, bool ok)
{
  if (!ok || json_object_object_add (rq->answer, key, v) < 0) {
    json_object_put (v);
    rq->enomem = true;
  }
}

static void
add_bool (struct request *rq, const char *key, bool v)
{
  struct json_object *o = json_object_new_boolean (v);
  add (rq, key, o, o != NULL);
}

static void
add_int (struct request *rq, const char *key, int64_t v)
{
  struct json_object *o = json_object_new_int64 (v);
  add (rq, key, o, o != NULL);
}

static void
add_uint (struct request *rq, const char *key, uint64_t v)
{
  struct json_object *o = json_object_new_uint64 (v);
  add (rq, key, o, o != NULL);
}

static void
add_string (struct request *rq, const char *key, const char *s, size_t len)
{
  struct json_object *o = gs_json_string (s, len);
  add (rq, key, o, o != NULL);
}

/* new_answer - start the answer {"ok":@ok}, dropping any earlier one. */
static void
new_answer (struct request *rq, bool ok)
{
  json_object_put (rq->answer);
  rq->answer = json_object_new_object ();
  if (rq->answer == NULL) {
    rq->enomem = true;
    return;
  }
  add_bool (rq, "ok", ok);
}

/* reply_ok - open the answer {"ok":true, ...: a command adds its fields. */
static void
reply_ok (struct request *rq)
{
  new_answer (rq, true);
}

/* reply_error - open the answer {"ok":false,"error":"...", ...; a command
 * may add fields that explain more. */
static void __attribute__ ((format (printf, 2, 3)))
reply_error (struct request *rq, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  new_answer (rq, false);
  if (rq->answer != NULL)
    add_string (rq, "error", msg, strlen (msg));
}

/* The text of errno @r (either sign); strerrordesc_np: see common/errmsg.h. */
static const char *
errstr (int r, char *buf, size_t len)
{
  const char *desc = strerrordesc_np (r < 0 ? -r : r);

  if (desc)
    return desc;
  snprintf (buf, len, "error %d", r < 0 ? -r : r);
  return buf;
}

/* reply_engine_error - an engine call for @cmd failed with @r; its message
 * is in @err if it gave one. */
static void
reply_engine_error (struct request *rq, const char *cmd, int r,
                    const char *err)
{
  char buf[128];

  if (err != NULL && err[0] != '\0')
    reply_error (rq, "%s: %s", cmd, err);
  else
    reply_error (rq, "%s: %s", cmd, errstr (r, buf, sizeof buf));
}

/* quote - @s, cut to GS_CONTROL_QUOTE bytes ("..." marks a cut), for
 * quoting a client's word back. */
static const char *
quote (const char *s, char *buf, size_t len)
{
  if (strlen (s) <= GS_CONTROL_QUOTE)
    return s;
  snprintf (buf, len, "%.*s...", GS_CONTROL_QUOTE, s);
  return buf;
}

/* ---- The engine's figures as JSON ---- */

/* obj_add - add @v (made by a json-c constructor: NULL is out of
 * memory, except from gs_json_double, where it is a null) to @o. */
static bool
obj_add (struct json_object *o, const char *key, struct json_object *v)
{
  if (json_object_object_add (o, key, v) < 0) {
    json_object_put (v);
    return false;
  }
  return true;
}

/* stats_json - @st as an object, one key per statistic (GS_STATS_FIELDS).
 * Return: the object, or NULL (out of memory). */
static struct json_object *
stats_json (const struct gs_stats *st)
{
  struct json_object *o = json_object_new_object ();
  bool ok = o != NULL;

#define GS_STATS_JSON_U(v) json_object_new_uint64 (v)
#define GS_STATS_JSON_D(v) gs_json_double (v)
#define GS_STATS_KEY(type, field, metric, kind, label, help)            \
  if (ok) {                                                             \
    struct json_object *v = GS_STATS_JSON_##type (st->field);           \
    ok = (v != NULL || #type[0] == 'D') && obj_add (o, #field, v);      \
  }
  GS_STATS_FIELDS (GS_STATS_KEY)
#undef GS_STATS_KEY
#undef GS_STATS_JSON_U
#undef GS_STATS_JSON_D
  if (!ok) {
    json_object_put (o);
    return NULL;
  }
  return o;
}

/* backings_json - the @n backings at @b as an array of objects.
 * Return: the array, or NULL (out of memory). */
static struct json_object *
backings_json (const struct gs_backing_info *b, unsigned n)
{
  struct json_object *a = json_object_new_array_ext ((int) n);
  unsigned i;

  for (i = 0; a != NULL && i < n; i++) {
    struct json_object *o = json_object_new_object ();
    bool ok = o != NULL;

    ok = ok && obj_add (o, "path",
                        gs_json_string (b[i].path,
                                        strnlen (b[i].path, sizeof b[i].path)));
#define GS_BACKING_JSON_U(v) json_object_new_uint64 (v)
#define GS_BACKING_JSON_I(v) json_object_new_uint64 (v)
#define GS_BACKING_JSON_B(v) json_object_new_boolean (v)
#define GS_BACKING_JSON_S(v) json_object_new_string ((v) ? (v) : "none")
#define GS_BACKING_KEY(type, field, metric, kind, help)                 \
    ok = ok && obj_add (o, #field, GS_BACKING_JSON_##type (b[i].field));
    GS_BACKING_FIELDS (GS_BACKING_KEY)
#undef GS_BACKING_KEY
#undef GS_BACKING_JSON_U
#undef GS_BACKING_JSON_I
#undef GS_BACKING_JSON_B
#undef GS_BACKING_JSON_S
    if (!ok || json_object_array_add (a, o) < 0) {
      json_object_put (o);
      json_object_put (a);
      a = NULL;
    }
  }
  return a;
}

/* drain_message - the drain's error message: the engine's, else the
 * text of its errno. */
static const char *
drain_message (const struct gs_drain_status *d, char *buf, size_t len)
{
  size_t n = strnlen (d->message, sizeof d->message);

  if (n > 0) {
    snprintf (buf, len, "%.*s", (int) n, d->message);
    return buf;
  }
  if (d->result != 0)
    return errstr (d->result, buf, len);
  return "";
}

/* drain_json - @d as an object.  Return: it, or NULL (out of memory). */
static struct json_object *
drain_json (const struct gs_drain_status *d)
{
  struct json_object *o = json_object_new_object ();
  const char *msg;
  char buf[256];
  bool ok = o != NULL;

  msg = drain_message (d, buf, sizeof buf);
#define D(key, v) ok = ok && obj_add (o, key, v)
  D ("running", json_object_new_boolean (d->running));
  D ("migrate", json_object_new_boolean (d->migrate));
  D ("source", gs_json_string (d->source, strnlen (d->source,
                                                   sizeof d->source)));
  D ("target", gs_json_string (d->target, strnlen (d->target,
                                                   sizeof d->target)));
  D ("total", json_object_new_uint64 (d->total));
  D ("done", json_object_new_uint64 (d->done));
  D ("skipped", json_object_new_uint64 (d->skipped));
  D ("bytes_per_sec", gs_json_double (d->bytes_per_sec));
  D ("seconds", gs_json_double (d->seconds));
  D ("result", json_object_new_int (d->result));
  D ("message", gs_json_string (msg, strlen (msg)));
#undef D
  if (!ok) {
    json_object_put (o);
    return NULL;
  }
  return o;
}

/* add_stats, add_backings, add_drain - the figures into the answer. */
static void
add_stats (struct request *rq, const struct gs_stats *st)
{
  struct json_object *o = stats_json (st);
  add (rq, "stats", o, o != NULL);
}

static void
add_backings (struct request *rq, const struct gs_backing_info *b, unsigned n)
{
  struct json_object *o = backings_json (b, n);
  add (rq, "backings", o, o != NULL);
}

static void
add_drain (struct request *rq, const struct gs_drain_status *d)
{
  struct json_object *o = drain_json (d);
  add (rq, "drain", o, o != NULL);
}

/* info_json - what serves the device (@src: gs_metrics_get_info, the
 * labels of ghostswap_info).  Return: the object, or NULL (out of
 * memory). */
static struct json_object *
info_json (const struct gs_metrics_source *src)
{
  struct json_object *o = json_object_new_object ();
  struct gs_metrics_info in;
  size_t n;
  bool ok = o != NULL;

  gs_metrics_get_info (src, &in);
  n = strlen (in.transport_reason);
#define I(key, s) ok = ok && obj_add (o, key, gs_json_string (s, strlen (s)))
  I ("version", in.version);
  I ("frontend", in.frontend);
  I ("transport", in.transport);
#undef I
  if (n > 0)
    ok = ok && obj_add (o, "transport_reason",
                        gs_json_string (in.transport_reason, n));
  if (!ok) {
    json_object_put (o);
    return NULL;
  }
  return o;
}

/* source - the metrics source of @rq's device, else @anon made one
 * without a name, front end or transport (gs_control_handle with
 * none). */
static struct gs_metrics_source *
source (struct request *rq, struct gs_metrics_source *anon)
{
  if (rq->metrics != NULL)
    return rq->metrics;
  *anon = (struct gs_metrics_source) { .dev = rq->dev, .name = "",
                                       .frontend = "", .transport = "" };
  return anon;
}

static void
add_info (struct request *rq)
{
  struct gs_metrics_source anon;
  struct json_object *o = info_json (source (rq, &anon));
  add (rq, "info", o, o != NULL);
}

/* list_backings - every backing into a malloc'd array (*@bp, free it).
 * Return: the count, or -ENOMEM. */
static int
list_backings (struct gs_device *dev, struct gs_backing_info **bp)
{
  struct gs_backing_info *b = malloc (GS_MAX_BACKINGS * sizeof *b);
  unsigned n;

  *bp = b;
  if (b == NULL)
    return -ENOMEM;
  n = gs_backing_list (dev, b, GS_MAX_BACKINGS);
  return (int) (n < GS_MAX_BACKINGS ? n : GS_MAX_BACKINGS);
}

/* ---- Arguments ---- */

/* parse_count - a decimal number without sign or suffix. */
static bool
parse_count (const char *s, uint64_t *out)
{
  uint64_t v = 0;

  if (*s == '\0')
    return false;
  for (; *s; s++) {
    unsigned d;

    if (*s < '0' || *s > '9')
      return false;
    d = (unsigned) (*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

/* parse_size_arg - a size for @cmd, or an error answer. */
static bool
parse_size_arg (struct request *rq, const char *cmd, const char *s,
                uint64_t *out)
{
  char q[GS_CONTROL_QUOTE + 4];
  int r = gs_parse_size (s, out);

  if (r == -ERANGE)
    reply_error (rq, "%s: '%s' is too large", cmd, quote (s, q, sizeof q));
  else if (r < 0)
    reply_error (rq, "%s: '%s' is not a size (use e.g. 1G)", cmd,
                 quote (s, q, sizeof q));
  return r == 0;
}

/* ---- Commands ---- */

struct command {
  const char *word;             /* first word */
  const char *sub;              /* second word, or NULL */
  unsigned min_args, max_args;  /* words after these */
  const char *usage;
  void (*run) (struct request *rq, char **args, unsigned nargs);
  bool test_only;               /* left out of help (fault injection) */
};

static void
cmd_stats (struct request *rq, char **args, unsigned nargs)
{
  CLEANUP_FREE struct gs_backing_info *b = NULL;
  struct gs_stats st;
  struct gs_drain_status d;
  int n;

  gs_get_stats (rq->dev, &st);
  n = list_backings (rq->dev, &b);
  if (n < 0) {
    reply_error (rq, "stats: out of memory");
    return;
  }
  gs_drain_get_status (rq->dev, &d);
  reply_ok (rq);
  add_info (rq);
  add_stats (rq, &st);
  add_backings (rq, b, (unsigned) n);
  add_drain (rq, &d);
}

static void
cmd_metrics (struct request *rq, char **args, unsigned nargs)
{
  struct gs_metrics_source anon;
  CLEANUP_FREE char *text = NULL;
  size_t len;

  if (gs_metrics_collect (source (rq, &anon), &text, &len) < 0) {
    reply_error (rq, "metrics: out of memory");
    return;
  }
  reply_ok (rq);
  add_string (rq, "text", text, len);
}

/* reset-peak: memory_peak_bytes starts again from memory_bytes now (as
 * writing to zram's mem_used_max does); the answer carries both figures
 * as they are right after. */
static void
cmd_reset_peak (struct request *rq, char **args, unsigned nargs)
{
  struct gs_stats st;

  gs_reset_peak (rq->dev);
  gs_get_stats (rq->dev, &st);
  reply_ok (rq);
  add_uint (rq, "memory_bytes", st.memory_bytes);
  add_uint (rq, "memory_peak_bytes", st.memory_peak_bytes);
}

/* warn_insecure - after attaching @path: if it is a remote reached over
 * TCP without TLS, say so in the answer's "warning". */
static void
warn_insecure (struct request *rq, const char *path)
{
  char msg[GS_INSECURE_WARNING_MAX];

  if (gs_service_insecure_warning (rq->dev, path, msg, sizeof msg))
    add_string (rq, "warning", msg, strlen (msg));
}

static void
cmd_backing_add (struct request *rq, char **args, unsigned nargs)
{
  char err[512] = "";
  uint64_t size = 0;
  int r;

  if (nargs == 2 && !parse_size_arg (rq, "backing add", args[1], &size))
    return;
  r = gs_backing_add (rq->dev, args[0], size, err, sizeof err);
  if (r < 0) {
    reply_engine_error (rq, "backing add", r, err);
    return;
  }
  reply_ok (rq);
  warn_insecure (rq, args[0]);
}

static void
cmd_backing_remove (struct request *rq, char **args, unsigned nargs)
{
  char err[512] = "";
  int r = gs_backing_remove (rq->dev, args[0], err, sizeof err);

  if (r < 0) {
    reply_engine_error (rq, "backing remove", r, err);
    return;
  }
  reply_ok (rq);
}

static void
cmd_backing_drain (struct request *rq, char **args, unsigned nargs)
{
  char err[512] = "";
  int r = gs_drain_start (rq->dev, args[0], NULL, false, err, sizeof err);

  if (r < 0) {
    reply_engine_error (rq, "backing drain", r, err);
    return;
  }
  reply_ok (rq);
  add_bool (rq, "started", true);
}

static void
cmd_backing_list (struct request *rq, char **args, unsigned nargs)
{
  CLEANUP_FREE struct gs_backing_info *b = NULL;
  int n = list_backings (rq->dev, &b);

  if (n < 0) {
    reply_error (rq, "backing list: out of memory");
    return;
  }
  reply_ok (rq);
  add_backings (rq, b, (unsigned) n);
}

/* Whether @path is attached (by that name). */
static bool
attached_as (struct gs_device *dev, const char *path)
{
  CLEANUP_FREE struct gs_backing_info *b = NULL;
  int i, n = list_backings (dev, &b);

  for (i = 0; i < n; i++)
    if (strcmp (b[i].path, path) == 0)
      return true;
  return false;
}

/* migrate A B [SIZE]: attach B (already attached is fine), then drain A
 * into B only, removing A at the end.  What can be checked first is (A
 * attached, no drain running), so that a migration refused creates
 * nothing; if the drain still cannot start, a B attached here is
 * withdrawn again (and its file removed if this command created it). */
static void
cmd_migrate (struct request *rq, char **args, unsigned nargs)
{
  char err[512] = "";
  struct gs_drain_status d;
  uint64_t size = 0;
  bool attached = false;
  int r;

  if (strcmp (args[0], args[1]) == 0) {
    reply_error (rq, "migrate: the source and the target are the same");
    return;
  }
  if (nargs == 3 && !parse_size_arg (rq, "migrate", args[2], &size))
    return;
  if (!attached_as (rq->dev, args[0])) {
    reply_error (rq, "migrate: %s is not attached", args[0]);
    return;
  }
  gs_drain_get_status (rq->dev, &d);
  if (d.running) {
    reply_error (rq, "migrate: a %s of %s is already running",
                 d.migrate ? "migration" : "drain", d.source);
    return;
  }
  r = gs_backing_add (rq->dev, args[1], size, err, sizeof err);
  if (r < 0 && r != -EEXIST) {
    reply_engine_error (rq, "migrate", r, err);
    return;
  }
  attached = r == 0;
  err[0] = '\0';
  r = gs_drain_start (rq->dev, args[0], args[1], true, err, sizeof err);
  if (r < 0) {
    char ignored[64];

    if (attached)
      gs_backing_withdraw (rq->dev, args[1], ignored, sizeof ignored);
    reply_engine_error (rq, "migrate", r, err);
    return;
  }
  reply_ok (rq);
  add_bool (rq, "started", true);
  add_bool (rq, "attached", attached);
  warn_insecure (rq, args[1]);
}

static void
cmd_drain_status (struct request *rq, char **args, unsigned nargs)
{
  struct gs_drain_status d;

  gs_drain_get_status (rq->dev, &d);
  reply_ok (rq);
  add_drain (rq, &d);
}

static void
cmd_drain_cancel (struct request *rq, char **args, unsigned nargs)
{
  int r = gs_drain_cancel (rq->dev);

  if (r == -ENOENT)
    reply_error (rq, "drain cancel: no drain is running");
  else if (r < 0)
    reply_engine_error (rq, "drain cancel", r, NULL);
  else
    reply_ok (rq);
}

/* wait_drain - wait for the running drain to end.  On a socket, waiting
 * stops when the client hangs up (or the server stops, which shuts the
 * socket down): there is no one to answer then.
 * Return: 0, or -ECONNRESET if the client went away. */
static int
wait_drain (struct request *rq)
{
  struct gs_drain_status d;

  if (rq->fd < 0) {
    gs_drain_wait (rq->dev);
    return 0;
  }
  for (;;) {
    struct pollfd p = { .fd = rq->fd, .events = POLLRDHUP };

    gs_drain_get_status (rq->dev, &d);
    if (!d.running)
      return 0;
    if (poll (&p, 1, 100) > 0
        && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
      return -ECONNRESET;
  }
}

static void
cmd_drain_wait (struct request *rq, char **args, unsigned nargs)
{
  struct gs_drain_status d;
  char msg[256];

  if (wait_drain (rq) < 0) {
    reply_error (rq, "drain wait: interrupted");
    return;
  }
  gs_drain_get_status (rq->dev, &d);
  if (d.result == 0)
    reply_ok (rq);
  else
    reply_error (rq, "%s of %.*s failed: %s",
                 d.migrate ? "migration" : "drain",
                 (int) strnlen (d.source, sizeof d.source), d.source,
                 drain_message (&d, msg, sizeof msg));
  add_drain (rq, &d);
}

static void
cmd_ram_limit (struct request *rq, char **args, unsigned nargs)
{
  uint64_t bytes;
  int r;

  if (!parse_size_arg (rq, "ram-limit", args[0], &bytes))
    return;
  if (bytes < GS_MIN_RAM_LIMIT) {
    reply_error (rq, "ram-limit: must be at least %uK", GS_MIN_RAM_LIMIT / 1024);
    return;
  }
  r = gs_set_ram_limit (rq->dev, bytes);
  if (r < 0) {
    reply_engine_error (rq, "ram-limit", r, NULL);
    return;
  }
  reply_ok (rq);
  add_uint (rq, "ram_limit", bytes);
}

static void
cmd_writeback (struct request *rq, char **args, unsigned nargs)
{
  char q[GS_CONTROL_QUOTE + 4];
  uint64_t pages = 0;
  int64_t r;

  if (nargs == 1 && !parse_count (args[0], &pages)) {
    reply_error (rq, "writeback: '%s' is not a number of pages",
                 quote (args[0], q, sizeof q));
    return;
  }
  r = gs_writeback (rq->dev, pages);
  if (r == -ENOSPC) {
    reply_error (rq, "writeback: no healthy backing with free slots");
    return;
  }
  if (r < 0) {
    reply_engine_error (rq, "writeback", (int) r, NULL);
    return;
  }
  reply_ok (rq);
  add_int (rq, "pages", r);
}

static void
cmd_fault (struct request *rq, char **args, unsigned nargs)
{
  char q[GS_CONTROL_QUOTE + 4], q2[GS_CONTROL_QUOTE + 4];
  uint64_t first = 0, last = UINT64_MAX;
  int r;

  /* Without a range: every physical slot (and "off" needs none). */
  if (nargs == 3 || (nargs == 4 && (!parse_count (args[2], &first)
                                    || !parse_count (args[3], &last)
                                    || first > last))) {
    reply_error (rq, "fault: '%s' '%s' is not a range of physical slots "
                 "(usage: fault PATH KIND [FIRST LAST], FIRST <= LAST)",
                 quote (args[2], q, sizeof q),
                 quote (nargs == 4 ? args[3] : "", q2, sizeof q2));
    return;
  }
  r = gs_fault_set (rq->dev, args[0], args[1], first, last);
  if (r == -EPERM)
    reply_error (rq, "fault: fault injection is off "
                 "(the device needs fault-injection=true)");
  else if (r == -ENOENT)
    reply_error (rq, "fault: '%s' is not an attached backing",
                 quote (args[0], q, sizeof q));
  else if (r == -EINVAL)
    reply_error (rq, "fault: '%s' is not a fault kind "
                 "(read, write, enospc, off)", quote (args[1], q, sizeof q));
  else if (r < 0)
    reply_engine_error (rq, "fault", r, NULL);
  else
    reply_ok (rq);
}

static void cmd_help (struct request *rq, char **args, unsigned nargs);

static const struct command commands[] = {
  { "stats", NULL, 0, 0, "stats", cmd_stats, false },
  { "metrics", NULL, 0, 0, "metrics", cmd_metrics, false },
  { "reset-peak", NULL, 0, 0, "reset-peak", cmd_reset_peak, false },
  { "backing", "add", 1, 2, "backing add PATH [SIZE]", cmd_backing_add, false },
  { "backing", "remove", 1, 1, "backing remove PATH", cmd_backing_remove, false },
  { "backing", "drain", 1, 1, "backing drain PATH", cmd_backing_drain, false },
  { "backing", "list", 0, 0, "backing list", cmd_backing_list, false },
  { "migrate", NULL, 2, 3, "migrate A B [SIZE]", cmd_migrate, false },
  { "drain", "status", 0, 0, "drain status", cmd_drain_status, false },
  { "drain", "cancel", 0, 0, "drain cancel", cmd_drain_cancel, false },
  { "drain", "wait", 0, 0, "drain wait", cmd_drain_wait, false },
  { "ram-limit", NULL, 1, 1, "ram-limit SIZE", cmd_ram_limit, false },
  { "writeback", NULL, 0, 1, "writeback [PAGES]", cmd_writeback, false },
  { "fault", NULL, 2, 4, "fault PATH KIND [FIRST LAST]", cmd_fault, true },
  { "help", NULL, 0, 0, "help", cmd_help, false },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void
cmd_help (struct request *rq, char **args, unsigned nargs)
{
  struct json_object *a = json_object_new_array_ext ((int) NCOMMANDS);
  bool ok = a != NULL;
  size_t i;

  reply_ok (rq);
  for (i = 0; ok && i < NCOMMANDS; i++) {
    struct json_object *u;
    if (commands[i].test_only)
      continue;
    u = json_object_new_string (commands[i].usage);
    ok = u != NULL && json_object_array_add (a, u) == 0;
    if (!ok)
      json_object_put (u);
  }
  add (rq, "commands", a, ok);
}

/* usages - "U1 | U2 | ..." for the commands starting with @word. */
static void
usages (const char *word, char *buf, size_t len)
{
  size_t i, used = 0;

  buf[0] = '\0';
  for (i = 0; i < NCOMMANDS && used < len; i++)
    if (strcmp (commands[i].word, word) == 0)
      used += (size_t) snprintf (buf + used, len - used, "%s%s",
                                 used ? " | " : "", commands[i].usage);
}

/* well_formed - printable UTF-8: no control characters but tabs. */
static bool
well_formed (const char *line, size_t len)
{
  size_t i;

  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char) line[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return false;
  }
  return gs_utf8_valid (line, len);
}

/* dispatch - split @line (modified) into words and run its command. */
static void
dispatch (struct request *rq, char *line)
{
  char *words[GS_CONTROL_MAX_WORDS];
  char *save = NULL, *w;
  char q[GS_CONTROL_QUOTE + 4], use[512];
  unsigned nwords = 0, skip;
  bool known = false;
  size_t i;

  for (w = strtok_r (line, " \t", &save); w != NULL;
       w = strtok_r (NULL, " \t", &save)) {
    if (nwords < GS_CONTROL_MAX_WORDS)
      words[nwords] = w;
    nwords++;
  }
  if (nwords == 0) {
    reply_error (rq, "empty request (try: " GS_CONTROL_COMMANDS ")");
    return;
  }

  for (i = 0; i < NCOMMANDS; i++) {
    const struct command *c = &commands[i];

    if (strcmp (c->word, words[0]) != 0)
      continue;
    known = true;
    if (c->sub != NULL && (nwords < 2 || strcmp (c->sub, words[1]) != 0))
      continue;
    skip = c->sub ? 2 : 1;
    if (nwords - skip < c->min_args || nwords - skip > c->max_args) {
      reply_error (rq, "%s%s%s: wrong number of arguments (usage: %s)",
                   c->word, c->sub ? " " : "", c->sub ? c->sub : "",
                   c->usage);
      return;
    }
    c->run (rq, words + skip, nwords - skip);
    return;
  }

  if (!known) {
    reply_error (rq, "unknown command '%s' (try: " GS_CONTROL_COMMANDS ")",
                 quote (words[0], q, sizeof q));
    return;
  }
  usages (words[0], use, sizeof use);
  if (nwords < 2)
    reply_error (rq, "%s: missing subcommand (usage: %s)", words[0], use);
  else
    reply_error (rq, "%s: unknown subcommand '%s' (usage: %s)", words[0],
                 quote (words[1], q, sizeof q), use);
}

static const char answer_enomem[] =
  "{\"ok\":false,\"error\":\"out of memory\"}\n";

/* finish - the text of @answer (NULL: out of memory) as a malloc'd JSON
 * line, newline included, or NULL for out of memory. */
static char *
finish (struct json_object *answer, size_t *lenp)
{
  const char *text;
  size_t n;
  char *p;

  if (answer == NULL || (text = gs_json_text (answer, &n)) == NULL)
    return NULL;
  p = malloc (n + 2);
  if (p == NULL)
    return NULL;
  memcpy (p, text, n);
  p[n] = '\n';
  p[n + 1] = '\0';
  *lenp = n + 1;
  return p;
}

/* answer - the answer to @line (@len bytes, no newline) as a malloc'd
 * JSON line, newline included, or NULL for out of memory.  @fd is the
 * client's socket, or -1. */
static char *
answer (struct gs_device *dev, struct gs_metrics_source *metrics,
        int fd, const char *line, size_t len, size_t *lenp)
{
  struct request rq = { .dev = dev, .metrics = metrics, .fd = fd };
  CLEANUP_FREE char *copy = NULL;
  char *text;

  if (len >= GS_CONTROL_MAX_REQUEST)
    reply_error (&rq, "request too long (max %d bytes)",
                 GS_CONTROL_MAX_REQUEST);
  else if (memchr (line, '\0', len) != NULL || !well_formed (line, len))
    reply_error (&rq, "malformed request (control characters, NUL bytes "
                 "or invalid UTF-8)");
  else if ((copy = strndup (line, len)) == NULL)
    reply_error (&rq, "out of memory");
  else
    dispatch (&rq, copy);
  if (rq.answer == NULL && !rq.enomem)  /* a command forgot to answer */
    reply_error (&rq, "internal error: no answer");

  text = rq.enomem ? NULL : finish (rq.answer, lenp);
  json_object_put (rq.answer);
  return text;
}

/* gs_control_handle - see control.h. */
size_t
gs_control_handle (struct gs_device *dev,
                   struct gs_metrics_source *metrics,
                   const char *line, char *out, size_t outlen)
{
  CLEANUP_FREE char *text = NULL;
  const char *a;
  size_t len = 0;

  text = answer (dev, metrics, -1, line, strlen (line), &len);
  a = text ? text : answer_enomem;
  if (text == NULL)
    len = strlen (answer_enomem);
  if (outlen == 0)
    return 0;
  if (len > outlen - 1)
    len = outlen - 1;
  memcpy (out, a, len);
  out[len] = '\0';
  return len;
}

/* ---- The server ---- */

struct client {
  struct gs_control *ctl;
  pthread_t thread;
  int fd;                       /* -1 once closed */
  bool used;                    /* a thread is running or not yet joined */
  bool done;                    /* the thread has ended: join it */
};

struct gs_control {
  struct gs_device *dev;
  struct gs_metrics_source *metrics;  /* may be NULL */
  char path[sizeof ((struct sockaddr_un *) NULL)->sun_path];
  dev_t sock_dev;               /* the socket file we made, to unlink it */
  ino_t sock_ino;
  int listen_fd;
  int wake_fd;                  /* eventfd: written to stop */
  pthread_t thread;
  pthread_mutex_t lock;         /* protects clients[] */
  struct client clients[GS_CONTROL_MAX_CLIENTS];
};

/* send_all - write all of @buf; false if the client is gone or stuck. */
static bool
send_all (int fd, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    buf += n;
    len -= (size_t) n;
  }
  return true;
}

/* send_error - send {"ok":false,"error":@msg}. */
static void
send_error (int fd, const char *msg)
{
  struct request rq = { .fd = fd };
  CLEANUP_FREE char *text = NULL;
  size_t len;

  reply_error (&rq, "%s", msg);
  text = rq.enomem ? NULL : finish (rq.answer, &len);
  json_object_put (rq.answer);
  if (text != NULL)
    send_all (fd, text, len);
  else
    send_all (fd, answer_enomem, strlen (answer_enomem));
}

static void
set_timeout (int fd, int option, long ms)
{
  struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

  setsockopt (fd, SOL_SOCKET, option, &tv, sizeof tv);
}

static int64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* recv_by - recv() that gives up at @deadline (now_ms).
 * Return: as recv, or -1 with errno ETIMEDOUT. */
static ssize_t
recv_by (int fd, void *buf, size_t len, int64_t deadline)
{
  for (;;) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int64_t left = deadline - now_ms ();
    int r;

    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    r = poll (&p, 1, left > INT_MAX ? INT_MAX : (int) left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      continue;                 /* the deadline check above ends it */
    return recv (fd, buf, len, MSG_DONTWAIT);
  }
}

/* linger - end a connection after an error: stop sending, then read and
 * drop what the client still sends, for a while, so that the close does
 * not reset the connection before the client reads our answer. */
static void
linger (int fd)
{
  int64_t deadline = now_ms () + GS_CONTROL_LINGER_MS;
  char sink[4096];
  size_t total = 0;
  ssize_t n;

  shutdown (fd, SHUT_WR);
  while (total < GS_CONTROL_LINGER_BYTES) {
    n = recv_by (fd, sink, sizeof sink, deadline);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      break;
    total += (size_t) n;
  }
}

/* peer_allowed - whether the peer on @fd is root or our own user. */
static bool
peer_allowed (int fd, unsigned *uidp)
{
  struct ucred cred;
  socklen_t len = sizeof cred;

  *uidp = UINT_MAX;
  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0
      || len != sizeof cred)
    return false;
  *uidp = (unsigned) cred.uid;
  return cred.uid == 0 || cred.uid == geteuid ();
}

/* serve_line - answer the @len bytes at @line (no newline).
 * Return: false if the answer could not be sent. */
static bool
serve_line (struct gs_control *ctl, int fd, const char *line, size_t len)
{
  CLEANUP_FREE char *text = NULL;
  size_t n;

  if (len > 0 && line[len - 1] == '\r')
    len--;
  text = answer (ctl->dev, ctl->metrics, fd, line, len, &n);
  if (text == NULL)
    return send_all (fd, answer_enomem, strlen (answer_enomem));
  return send_all (fd, text, n);
}

/* serve_client - serve the client on @fd until it leaves, errs or idles:
 * each request must arrive whole within GS_CONTROL_TIMEOUT of the
 * previous answer (or of the connection), however it trickles in. */
static void
serve_client (struct gs_control *ctl, int fd)
{
  char buf[GS_CONTROL_MAX_REQUEST];
  char msg[64];
  size_t have = 0;
  int64_t deadline = now_ms () + GS_CONTROL_TIMEOUT * 1000;
  unsigned uid;
  ssize_t n;
  char *nl;

  if (!peer_allowed (fd, &uid)) {
    snprintf (msg, sizeof msg, "permission denied: uid %u", uid);
    send_error (fd, msg);
    linger (fd);
    return;
  }
  for (;;) {
    nl = memchr (buf, '\n', have);
    if (nl != NULL) {
      size_t len = (size_t) (nl - buf);

      if (!serve_line (ctl, fd, buf, len))
        return;
      have -= len + 1;
      memmove (buf, nl + 1, have);
      deadline = now_ms () + GS_CONTROL_TIMEOUT * 1000;
      continue;
    }
    if (have == sizeof buf) {
      snprintf (msg, sizeof msg, "request too long (max %d bytes)",
                GS_CONTROL_MAX_REQUEST);
      send_error (fd, msg);
      linger (fd);
      return;
    }
    n = recv_by (fd, buf + have, sizeof buf - have, deadline);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      return;                   /* gone, timed out, or a partial line */
    have += (size_t) n;
  }
}

static void *
client_thread (void *arg)
{
  struct client *c = arg;
  struct gs_control *ctl = c->ctl;

  serve_client (ctl, c->fd);

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ctl->lock);
  close (c->fd);
  c->fd = -1;
  c->done = true;
  return NULL;
}

/* start_thread - pthread_create with every signal blocked in the new
 * thread: signals are the front end's business, on its own threads. */
static int
start_thread (pthread_t *thread, void *(*fn) (void *), void *arg)
{
  sigset_t all, old;
  int r;

  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  r = pthread_create (thread, NULL, fn, arg);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  return -r;
}

/* reap - join the client threads that have ended.  Called with the lock
 * held; the threads no longer need it. */
static void
reap (struct gs_control *ctl)
{
  unsigned i;

  for (i = 0; i < GS_CONTROL_MAX_CLIENTS; i++) {
    struct client *c = &ctl->clients[i];

    if (c->used && c->done) {
      pthread_join (c->thread, NULL);
      c->used = c->done = false;
    }
  }
}

/* start_client - serve the new connection @fd in a thread of its own. */
static void
start_client (struct gs_control *ctl, int fd)
{
  struct client *c = NULL;
  char msg[64];
  unsigned i;

  /* Receiving is bounded by serve_client's deadlines. */
  set_timeout (fd, SO_SNDTIMEO, GS_CONTROL_TIMEOUT * 1000L);

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ctl->lock);
    reap (ctl);
    for (i = 0; i < GS_CONTROL_MAX_CLIENTS && c == NULL; i++)
      if (!ctl->clients[i].used)
        c = &ctl->clients[i];
    if (c != NULL) {
      c->ctl = ctl;
      c->fd = fd;
      c->used = true;
      c->done = false;
      if (start_thread (&c->thread, client_thread, c) == 0)
        return;
      c->used = false;
      c->fd = -1;
    }
  }

  if (c == NULL)
    snprintf (msg, sizeof msg, "too many clients (max %d)",
              GS_CONTROL_MAX_CLIENTS);
  else
    snprintf (msg, sizeof msg, "cannot serve another client now");
  send_error (fd, msg);
  shutdown (fd, SHUT_WR);
  close (fd);
}

static void *
accept_thread (void *arg)
{
  struct gs_control *ctl = arg;

  for (;;) {
    struct pollfd p[2] = {
      { .fd = ctl->listen_fd, .events = POLLIN },
      { .fd = ctl->wake_fd, .events = POLLIN },
    };
    int fd;

    if (poll (p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      poll (NULL, 0, 100);      /* should not happen: do not spin */
      continue;
    }
    if (p[1].revents != 0)
      return NULL;
    if (p[0].revents == 0)
      continue;
    fd = accept4 (ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      /* Out of descriptors or memory: wait a little for some. */
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
          || errno == ENOMEM)
        poll (NULL, 0, 100);
      continue;
    }
    start_client (ctl, fd);
  }
}

/* check_parent - the directory of @path must exist; only the default
 * one, GS_CONTROL_DEFAULT_DIR, is created (mode 0700, one level) if it is
 * missing.  Nothing else is created: a typing error in control= must not
 * leave directories behind. */
static int
check_parent (const char *path, char *err, size_t errlen)
{
  char dir[sizeof ((struct sockaddr_un *) NULL)->sun_path];
  char buf[128];
  struct stat sb;
  char *p;

  snprintf (dir, sizeof dir, "%s", path);
  p = strrchr (dir, '/');
  if (p == NULL || p == dir)
    return 0;                   /* in the current directory, or in / */
  *p = '\0';
  if (strcmp (dir, GS_CONTROL_DEFAULT_DIR) == 0 && mkdir (dir, 0700) == 0)
    return 0;
  if (stat (dir, &sb) < 0) {
    int e = errno;
    if (e == ENOENT)
      return gs_errmsg (err, errlen, -e,
                        "control socket %s: directory %s does not exist "
                        "(it is not created)", path, dir);
    return gs_errmsg (err, errlen, -e, "control socket %s: %s: %s", path, dir,
                      errstr (e, buf, sizeof buf));
  }
  if (!S_ISDIR (sb.st_mode))
    return gs_errmsg (err, errlen, -ENOTDIR,
                      "control socket %s: %s is not a directory", path, dir);
  return 0;
}

/* remove_stale - remove a socket left at @path by a server that is gone;
 * refuse to touch a live one or anything that is not a socket. */
static int
remove_stale (const struct sockaddr_un *addr, char *err, size_t errlen)
{
  const char *path = addr->sun_path;
  struct stat sb;
  char buf[128];
  int fd, r, e;

  if (lstat (path, &sb) < 0) {
    e = errno;
    if (e == ENOENT)
      return 0;
    return gs_errmsg (err, errlen, -e, "control socket %s: %s", path,
                      errstr (e, buf, sizeof buf));
  }
  if (!S_ISSOCK (sb.st_mode))
    return gs_errmsg (err, errlen, -EEXIST,
                      "control socket %s: exists and is not a socket", path);

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    e = errno;
    return gs_errmsg (err, errlen, -e, "control socket: socket: %s",
                      errstr (e, buf, sizeof buf));
  }
  r = connect (fd, (const struct sockaddr *) addr, sizeof *addr);
  e = errno;
  close (fd);
  if (r == 0 || e == EAGAIN || e == EINPROGRESS)
    return gs_errmsg (err, errlen, -EADDRINUSE,
                      "control socket %s: another server is listening on it",
                      path);
  if (e != ECONNREFUSED)
    return gs_errmsg (err, errlen, -e, "control socket %s: %s", path,
                      errstr (e, buf, sizeof buf));
  if (unlink (path) < 0 && (e = errno) != ENOENT)
    return gs_errmsg (err, errlen, -e,
                      "control socket %s: cannot remove the stale socket: %s",
                      path, errstr (e, buf, sizeof buf));
  return 0;
}

/* open_socket - the listening socket at @addr, mode 0600.  The socket
 * exists with the umask's mode between bind and chmod; that is safe as
 * every peer's uid is checked anyway. */
static int
open_socket (struct gs_control *ctl, const struct sockaddr_un *addr,
             char *err, size_t errlen)
{
  const char *path = addr->sun_path;
  struct stat sb;
  char buf[128];
  int fd, e;

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    e = errno;
    return gs_errmsg (err, errlen, -e, "control socket: socket: %s",
                      errstr (e, buf, sizeof buf));
  }
  if (bind (fd, (const struct sockaddr *) addr, sizeof *addr) < 0) {
    e = errno;
    close (fd);
    return gs_errmsg (err, errlen, -e, "control socket %s: bind: %s", path,
                      errstr (e, buf, sizeof buf));
  }
  if (chmod (path, 0600) < 0 || listen (fd, GS_CONTROL_MAX_CLIENTS) < 0
      || stat (path, &sb) < 0) {
    e = errno;
    close (fd);
    unlink (path);
    return gs_errmsg (err, errlen, -e, "control socket %s: %s", path,
                      errstr (e, buf, sizeof buf));
  }
  ctl->listen_fd = fd;
  ctl->sock_dev = sb.st_dev;
  ctl->sock_ino = sb.st_ino;
  return 0;
}

/* unlink_ours - unlink the socket file if it is still the one we made. */
static void
unlink_ours (struct gs_control *ctl)
{
  struct stat sb;

  if (stat (ctl->path, &sb) == 0 && sb.st_dev == ctl->sock_dev
      && sb.st_ino == ctl->sock_ino)
    unlink (ctl->path);
}

/* gs_control_start - see control.h. */
int
gs_control_start (struct gs_device *dev, const char *path,
                  struct gs_metrics_source *metrics,
                  struct gs_control **ctlp, char *err, size_t errlen)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct gs_control *ctl;
  char buf[128];
  int r;

  if (path == NULL || path[0] == '\0')
    return gs_errmsg (err, errlen, -EINVAL, "control socket: empty path");
  if (strlen (path) >= sizeof addr.sun_path)
    return gs_errmsg (err, errlen, -ENAMETOOLONG,
                      "control socket %s: path too long (at most %zu bytes)",
                      path, sizeof addr.sun_path - 1);
  memcpy (addr.sun_path, path, strlen (path) + 1);

  r = check_parent (path, err, errlen);
  if (r < 0)
    return r;
  r = remove_stale (&addr, err, errlen);
  if (r < 0)
    return r;

  ctl = calloc (1, sizeof *ctl);
  if (ctl == NULL)
    return gs_errmsg (err, errlen, -ENOMEM, "control socket: out of memory");
  ctl->dev = dev;
  ctl->metrics = metrics;
  memcpy (ctl->path, addr.sun_path, sizeof ctl->path);
  ctl->listen_fd = ctl->wake_fd = -1;
  pthread_mutex_init (&ctl->lock, NULL);

  r = open_socket (ctl, &addr, err, errlen);
  if (r < 0)
    goto out_free;
  ctl->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (ctl->wake_fd < 0) {
    int e = errno;
    r = gs_errmsg (err, errlen, -e, "control socket: eventfd: %s",
                   errstr (e, buf, sizeof buf));
    goto out_close;
  }
  r = start_thread (&ctl->thread, accept_thread, ctl);
  if (r < 0) {
    gs_errmsg (err, errlen, r, "control socket: cannot start its thread: %s",
               errstr (r, buf, sizeof buf));
    goto out_close;
  }
  *ctlp = ctl;
  return 0;

 out_close:
  if (ctl->wake_fd >= 0)
    close (ctl->wake_fd);
  close (ctl->listen_fd);
  unlink_ours (ctl);
 out_free:
  pthread_mutex_destroy (&ctl->lock);
  free (ctl);
  return r;
}

/* gs_control_stop - see control.h. */
void
gs_control_stop (struct gs_control *ctl)
{
  unsigned i;

  if (ctl == NULL)
    return;

  /* No new clients: stop the accepting thread. */
  eventfd_write (ctl->wake_fd, 1);
  pthread_join (ctl->thread, NULL);

  /* Wake every client thread (blocked reading, writing, lingering or
   * waiting for a drain) and wait for them. */
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&ctl->lock);
    for (i = 0; i < GS_CONTROL_MAX_CLIENTS; i++)
      if (ctl->clients[i].used && ctl->clients[i].fd >= 0)
        shutdown (ctl->clients[i].fd, SHUT_RDWR);
  }
  for (i = 0; i < GS_CONTROL_MAX_CLIENTS; i++)
    if (ctl->clients[i].used)
      pthread_join (ctl->clients[i].thread, NULL);

  close (ctl->listen_fd);
  close (ctl->wake_fd);
  unlink_ours (ctl);
  pthread_mutex_destroy (&ctl->lock);
  free (ctl);
}
