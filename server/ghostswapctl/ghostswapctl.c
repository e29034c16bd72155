/* ghostswapctl: the command line client of the ghostswap control socket.
 *
 *   ghostswapctl [OPTIONS] [COMMAND [ARGS...]]
 *
 * Without a command: one line per running device, like zramctl
 * (ctl_devices.c).  With one: the command is checked here (words, number
 * and form of its arguments, the options that apply to it) before any
 * connection, then its words, joined by spaces, are sent as one line and
 * one line of JSON comes back (read with json-c), printed as tables
 * (ctl_output.c) or as it is with --json.  `backing drain` and `migrate`
 * then follow the drain: a progress bar on a terminal, otherwise one line
 * when it ends.  `stats --watch` samples the figures and prints rates.
 * Options may come anywhere (before, among or after the command's words;
 * `--` ends them).  See docs/ghostswapctl.pod.
 *
 * Exit status: 0 ok, 1 the server answered an error (or the drain asked
 * about failed), 2 usage error, 3 no connection (or it broke before an
 * answer).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ghostswap/config.h"
#include "ghostswap/control.h"

#include "ctl_conn.h"
#include "ctl_devices.h"
#include "ctl_json.h"
#include "ctl_output.h"

#ifndef PACKAGE_VERSION
#error "PACKAGE_VERSION must be defined by the build (server/meson.build)"
#endif

#define EXIT_ANSWER_ERROR 1
#define EXIT_USAGE 2
#define EXIT_CONNECT 3

/* How often the progress bar asks for the drain's status (ms). */
#define POLL_MS 200

/* The longest --watch interval (seconds). */
#define WATCH_MAX 86400

#define ERRLEN 1024

static const char *prog = "ghostswapctl";
static volatile int interrupted;

static struct {
  const char *socket, *name, *columns;
  bool json, no_wait, exact, noheadings, watch;
  double interval;              /* --watch (seconds) */
  unsigned long count;          /* --count: samples to print, 0: forever */
} opt = { .interval = 1.0 };

/* ---- Messages and exits ---- */

static void __attribute__ ((format (printf, 2, 3), noreturn))
die (int status, const char *fmt, ...)
{
  va_list ap;

  fflush (stdout);
  fprintf (stderr, "%s: ", prog);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  exit (status);
}

/* ---- The commands, as this client knows them ---- */

enum arg { ARG_PATH, ARG_SIZE, ARG_COUNT, ARG_FAULT };

struct command {
  const char *word, *sub;
  unsigned min, max;            /* arguments after the command's words */
  enum arg args[4];
  const char *usage, *what;
  bool hidden;                  /* for tests only: not in `help` */
  bool follows;                 /* starts a drain that is then followed */
  bool local;                   /* answered without a server */
};

static const struct command commands[] = {
  { .word = "list", .usage = "list", .local = true,
    .what = "the running devices (also without a command)" },
  { .word = "stats", .max = 1, .args = { ARG_COUNT },
    .usage = "stats [--watch [SECONDS]]",
    .what = "figures of the device, backings and drain (--watch: rates)" },
  { .word = "metrics", .usage = "metrics",
    .what = "the same in Prometheus text format" },
  { .word = "reset-peak", .usage = "reset-peak",
    .what = "restart memory_peak_bytes from the memory used now" },
  { .word = "backing", .sub = "list", .usage = "backing list",
    .what = "the attached backings" },
  { .word = "backing", .sub = "add", .min = 1, .max = 2,
    .args = { ARG_PATH, ARG_SIZE }, .usage = "backing add PATH [SIZE]",
    .what = "attach a file or block device" },
  { .word = "backing", .sub = "remove", .min = 1, .max = 1,
    .args = { ARG_PATH }, .usage = "backing remove PATH",
    .what = "detach an empty backing" },
  { .word = "backing", .sub = "drain", .min = 1, .max = 1,
    .args = { ARG_PATH }, .usage = "backing drain PATH",
    .what = "move every page off a backing", .follows = true },
  { .word = "migrate", .min = 2, .max = 3,
    .args = { ARG_PATH, ARG_PATH, ARG_SIZE }, .usage = "migrate A B [SIZE]",
    .what = "attach B, drain A into B, detach A", .follows = true },
  { .word = "drain", .sub = "status", .usage = "drain status",
    .what = "the running or last drain" },
  { .word = "drain", .sub = "wait", .usage = "drain wait",
    .what = "wait for the running drain to end" },
  { .word = "drain", .sub = "cancel", .usage = "drain cancel",
    .what = "stop the running drain" },
  { .word = "ram-limit", .min = 1, .max = 1, .args = { ARG_SIZE },
    .usage = "ram-limit SIZE", .what = "change the cap on the RAM tier" },
  { .word = "writeback", .max = 1, .args = { ARG_COUNT },
    .usage = "writeback [PAGES]",
    .what = "move cold pages from RAM to backing now" },
  { .word = "fault", .min = 2, .max = 4,
    .args = { ARG_PATH, ARG_FAULT, ARG_COUNT, ARG_COUNT },
    .usage = "fault PATH KIND [FIRST LAST]",
    .what = "inject I/O faults (tests only)", .hidden = true },
  { .word = "help", .usage = "help", .what = "this list of commands",
    .local = true },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void
print_commands (FILE *f)
{
  size_t i;

  for (i = 0; i < NCOMMANDS; i++)
    if (!commands[i].hidden)
      fprintf (f, "  %-28s %s\n", commands[i].usage, commands[i].what);
}

static void __attribute__ ((noreturn))
usage (int status)
{
  FILE *f = status == 0 ? stdout : stderr;

  if (status != 0) {
    fprintf (f, "Try '%s --help'.\n", prog);
    exit (status);
  }
  fprintf (f, "Usage: %s [OPTIONS] [COMMAND [ARGS...]]\n"
           "\nWithout a command: the running devices, one per line.\n"
           "\nCommands:\n", prog);
  print_commands (f);
  fprintf (f,
"\n"
"Options (anywhere on the line; '--' ends them):\n"
"  -s, --socket PATH      the control socket (default: $GHOSTSWAP_SOCKET,\n"
"                         else the only one in " GS_CONTROL_DEFAULT_DIR ")\n"
"  -n, --name NAME        the device NAME (socket " GS_CONTROL_DEFAULT_DIR
                         "/NAME.sock)\n"
"  -j, --json             JSON: the server's answer as it is\n"
"      --no-wait          do not wait for a drain or migration to finish\n"
"  -b, --bytes            sizes in bytes\n"
"      --noheadings       tables without their header line\n"
"  -o, --output LIST      the list's columns (NAME,FRONTEND,SWAP-DEVICE,\n"
"                         SIZE,STORED,COMPRESSED,RAM,RATIO,BACKINGS,\n"
"                         RAM-LIMIT,BACKING-SIZE,BACKING-USED,PID,SOCKET;\n"
"                         +LIST adds to the default ones)\n"
"  -w, --watch[=SECONDS]  stats: sample every SECONDS (default 1), print rates\n"
"  -c, --count N          stats --watch: stop after N lines\n"
"  -h, --help             this text\n"
"  -V, --version          the version\n"
"\n"
"Exit status: 0 ok, 1 the server answered an error (or the drain failed),\n"
"2 usage error, 3 cannot connect to the socket.  See ghostswapctl(1).\n");
  exit (0);
}

/* check_word - a word sent to the server: not empty, no white space or
 * control characters (the protocol splits on blanks). */
static void
check_word (const char *w)
{
  const unsigned char *s;

  if (w[0] == '\0')
    die (EXIT_USAGE, "empty argument");
  for (s = (const unsigned char *) w; *s; s++)
    if (*s <= ' ' || *s == 0x7f)
      die (EXIT_USAGE, "arguments cannot hold spaces or control "
           "characters: '%s'", w);
}

static bool
parse_seconds (const char *s, double *out)
{
  char *end;
  double v;

  errno = 0;
  v = strtod (s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= 0.1)
      || v > WATCH_MAX)
    return false;
  *out = v;
  return true;
}

static bool
parse_count (const char *s, unsigned long *out)
{
  char *end;
  unsigned long long v;

  if (s[0] < '0' || s[0] > '9')
    return false;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno != 0 || *end != '\0' || v > UINT32_MAX)
    return false;
  *out = (unsigned long) v;
  return true;
}

/* check_arg - argument @i of @c, of kind @kind. */
static void
check_arg (const struct command *c, enum arg kind, const char *a)
{
  uint64_t bytes;
  unsigned long n;
  double secs;

  check_word (a);
  switch (kind) {
  case ARG_PATH:
    return;
  case ARG_SIZE:
    if (gs_parse_size (a, &bytes) < 0)
      die (EXIT_USAGE, "%s: '%s' is not a size (use e.g. 2G; usage: %s)",
           c->word, a, c->usage);
    return;
  case ARG_COUNT:
    if (strcmp (c->word, "stats") == 0) {
      if (!parse_seconds (a, &secs))
        die (EXIT_USAGE, "stats --watch: '%s' is not a number of seconds "
             "from 0.1 to %d", a, WATCH_MAX);
      opt.interval = secs;
      return;
    }
    if (!parse_count (a, &n))
      die (EXIT_USAGE, "%s: '%s' is not a count (usage: %s)", c->word, a,
           c->usage);
    return;
  case ARG_FAULT:
    if (strcmp (a, "read") && strcmp (a, "write") && strcmp (a, "enospc")
        && strcmp (a, "off"))
      die (EXIT_USAGE, "fault: '%s' is not a fault kind (read, write, "
           "enospc, off)", a);
    return;
  }
}

/* find_command - the command that @words name, checked, or exit 2. */
static const struct command *
find_command (char **words, unsigned n)
{
  const struct command *c = NULL;
  char subs[256] = "";
  unsigned i, skip;
  bool known = false;
  size_t used = 0;

  for (i = 0; i < NCOMMANDS; i++) {
    if (strcmp (commands[i].word, words[0]) != 0)
      continue;
    known = true;
    if (commands[i].sub == NULL
        || (n > 1 && strcmp (commands[i].sub, words[1]) == 0)) {
      c = &commands[i];
      break;
    }
    used += (size_t) snprintf (subs + used, sizeof subs - used, "%s%s",
                               used ? ", " : "", commands[i].sub);
  }
  if (!known)
    die (EXIT_USAGE, "unknown command '%s' (try '%s help')", words[0], prog);
  if (c == NULL && n < 2)
    die (EXIT_USAGE, "%s: missing subcommand (one of: %s)", words[0], subs);
  if (c == NULL)
    die (EXIT_USAGE, "%s: unknown subcommand '%s' (one of: %s)", words[0],
         words[1], subs);
  skip = c->sub ? 2 : 1;
  if (strcmp (c->word, "stats") == 0 && !opt.watch && n > skip)
    die (EXIT_USAGE, "stats: takes no argument (usage: %s)", c->usage);
  if (n - skip < c->min || n - skip > c->max)
    die (EXIT_USAGE, "%s%s%s: wrong number of arguments (usage: %s)",
         c->word, c->sub ? " " : "", c->sub ? c->sub : "", c->usage);
  for (i = skip; i < n; i++)
    check_arg (c, c->args[i - skip], words[i]);
  return c;
}

/* check_options - the options that only some commands take. */
static void
check_options (const struct command *c)
{
  bool list = c == NULL || strcmp (c->word, "list") == 0;
  bool table = list || (strcmp (c->word, "backing") == 0
                        && strcmp (c->sub, "list") == 0);
  char err[ERRLEN];

  if (opt.socket && opt.name)
    die (EXIT_USAGE, "--socket and --name: give one of them");
  if (opt.watch && (c == NULL || strcmp (c->word, "stats") != 0))
    die (EXIT_USAGE, "--watch: only for 'stats'");
  if (opt.count && !opt.watch)
    die (EXIT_USAGE, "--count: only with 'stats --watch'");
  if (opt.no_wait && (c == NULL || !c->follows))
    die (EXIT_USAGE, "--no-wait: only for 'backing drain' and 'migrate'");
  if (opt.columns && !list)
    die (EXIT_USAGE, "--output: only for the device list");
  if (opt.noheadings && !table && !opt.watch)
    die (EXIT_USAGE, "--noheadings: only for tables (the device list, "
         "backing list, stats --watch)");
  if (opt.columns && ctl_check_columns (opt.columns, err, sizeof err) < 0)
    die (EXIT_USAGE, "%s", err);
  if (opt.name && (opt.name[0] == '\0' || strchr (opt.name, '/')
                   || strcmp (opt.name, ".") == 0
                   || strcmp (opt.name, "..") == 0))
    die (EXIT_USAGE, "--name: '%s' is not a device name", opt.name);
}

/* join_words - the request line: words joined by spaces, and a newline. */
static char *
join_words (char **words, unsigned n)
{
  size_t len = 2;
  char *line, *p;
  unsigned i;

  for (i = 0; i < n; i++)
    len += strlen (words[i]) + 1;
  if (len > GS_CONTROL_MAX_REQUEST)
    die (EXIT_USAGE, "request too long (max %d bytes)",
         GS_CONTROL_MAX_REQUEST);
  line = p = malloc (len);
  if (line == NULL)
    die (EXIT_USAGE, "out of memory");
  for (i = 0; i < n; i++)
    p += sprintf (p, "%s%s", i ? " " : "", words[i]);
  strcpy (p, "\n");
  return line;
}

/* ---- Which socket ---- */

/* find_socket - --socket, --name, $GHOSTSWAP_SOCKET, else the only
 * socket in the directory (malloc'd). */
static char *
find_socket (void)
{
  const char *env = getenv ("GHOSTSWAP_SOCKET");
  char **paths, *path;
  char name[256];
  int n, i;

  if (opt.socket)
    return strdup (opt.socket);
  if (opt.name) {
    if (asprintf (&path, "%s/%s.sock", ctl_rundir (), opt.name) < 0)
      die (EXIT_USAGE, "out of memory");
    return path;
  }
  if (env != NULL && env[0] != '\0')
    return strdup (env);

  n = ctl_list_sockets (&paths);
  if (n < 0)
    die (EXIT_CONNECT, "cannot list %s: %s", ctl_rundir (), strerror (-n));
  if (n == 0)
    die (EXIT_CONNECT, "no control socket in %s (is a device running? "
         "name one with --name NAME or --socket PATH)", ctl_rundir ());
  if (n > 1) {
    fprintf (stderr, "%s: several devices; choose one with --name NAME:",
             prog);
    for (i = 0; i < n; i++)
      fprintf (stderr, " %s", ctl_socket_name (paths[i], name, sizeof name));
    fputc ('\n', stderr);
    exit (EXIT_USAGE);
  }
  path = paths[0];
  free (paths);
  return path;
}

static void
open_or_die (struct ctl_conn *c, const char *path)
{
  int r = ctl_conn_open (c, path);

  if (r == -ENAMETOOLONG)
    die (EXIT_USAGE, "socket path too long: %s", path);
  if (r < 0)
    die (EXIT_CONNECT, "cannot connect to %s: %s", path, strerror (-r));
}

static json_object *
request_or_die (struct ctl_conn *c, const char *line, char **rawp)
{
  char err[ERRLEN];
  json_object *v = ctl_conn_request (c, line, rawp, &interrupted, err,
                                     sizeof err);

  if (v == NULL)
    die (interrupted ? 130 : EXIT_CONNECT, "%s", err);
  return v;
}

/* ---- Following a drain ---- */

static void
on_interrupt (int sig)
{
  interrupted = 1;
}

/* drain_result - print the end of a drain.  Return: the exit status. */
static int
drain_result (json_object *d)
{
  char line[8192];
  int failed = ctl_drain_line (d, line, sizeof line);

  if (failed) {
    fflush (stdout);
    fprintf (stderr, "%s: %s\n", prog, line);
    return EXIT_ANSWER_ERROR;
  }
  printf ("%s\n", line);
  return 0;
}

/* follow_drain - after a drain or migration started: wait for it.
 * Return: the exit status. */
static int
follow_drain (struct ctl_conn *c)
{
  struct sigaction sa = { .sa_handler = on_interrupt };
  json_object *v, *d;
  char *raw;
  int status;

  /* No SA_RESTART: Ctrl-C interrupts the wait, the drain goes on. */
  sigaction (SIGINT, &sa, NULL);

  if (opt.json || !isatty (STDOUT_FILENO)) {
    v = request_or_die (c, "drain wait\n", &raw);
    if (opt.json) {
      printf ("%s\n", raw);
      status = ctl_json_bool (v, "ok", false) ? 0 : EXIT_ANSWER_ERROR;
    }
    else if (!ctl_json_bool (v, "ok", false)) {
      fprintf (stderr, "%s: %s\n", prog, ctl_json_str (v, "error"));
      status = EXIT_ANSWER_ERROR;
    }
    else
      status = drain_result (ctl_json_get (v, "drain"));
    free (raw);
    json_object_put (v);
    return status;
  }

  for (;;) {
    struct timespec ts = { .tv_sec = 0, .tv_nsec = POLL_MS * 1000000L };

    v = request_or_die (c, "drain status\n", NULL);
    d = ctl_json_get (v, "drain");
    if (!ctl_json_bool (v, "ok", false) || d == NULL) {
      json_object_put (v);
      die (EXIT_ANSWER_ERROR, "drain status: no answer");
    }
    ctl_draw_bar (d);
    if (!ctl_json_bool (d, "running", false)) {
      putchar ('\n');
      status = drain_result (d);
      json_object_put (v);
      return status;
    }
    json_object_put (v);
    nanosleep (&ts, NULL);
    if (interrupted) {
      printf ("\n");
      die (130, "interrupted: the drain goes on ('%s drain cancel' stops it)",
           prog);
    }
  }
}

/* ---- stats --watch ---- */

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_until (double t)
{
  double left = t - now ();
  struct timespec ts;

  if (left <= 0)
    return;
  ts.tv_sec = (time_t) left;
  ts.tv_nsec = (long) ((left - (double) ts.tv_sec) * 1e9);
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

static const char *
rate (uint64_t now_v, uint64_t then_v, double dt, bool bytes, char *buf,
      size_t len)
{
  double r = now_v >= then_v ? (double) (now_v - then_v) / dt : 0;

  if (bytes)
    return ctl_size_short ((uint64_t) (r + 0.5), opt.exact, buf, len);
  snprintf (buf, len, "%.0f", r);
  return buf;
}

/* watch_line - one line of rates between the samples @a (older) and @b. */
static void
watch_line (json_object *a, json_object *b, double dt, bool header)
{
  static const char *const head[] = {
    "TIME", "STORED", "RAM", "RATIO", "READS/s", "WRITES/s", "READ/s",
    "WRITE/s", "WB/s", "ERRORS",
  };
  static const bool left[] = {
    true, false, false, false, false, false, false, false, false, false,
  };
  static const size_t width[] = { 8, 7, 7, 6, 8, 8, 8, 8, 7, 6 };
  char c[10][32];
  const char *row[10];
  uint64_t slots = ctl_json_u64 (b, "slots");
  uint64_t empty = ctl_json_u64 (b, "slots_empty");
  time_t t = time (NULL);
  size_t k;

  strftime (c[0], sizeof c[0], "%H:%M:%S", localtime (&t));
  ctl_size_short ((slots - empty) * GS_SLOT_SIZE, opt.exact, c[1], 32);
  ctl_size_short (ctl_json_u64 (b, "pool_bytes")
                  + ctl_json_u64 (b, "metadata_bytes"), opt.exact, c[2], 32);
  snprintf (c[3], 32, "%.2f", ctl_json_num (b, "memory_ratio", 0));
  rate (ctl_json_u64 (b, "reads"), ctl_json_u64 (a, "reads"), dt, false,
        c[4], 32);
  rate (ctl_json_u64 (b, "writes"), ctl_json_u64 (a, "writes"), dt, false,
        c[5], 32);
  rate (ctl_json_u64 (b, "bytes_read"), ctl_json_u64 (a, "bytes_read"), dt,
        true, c[6], 32);
  rate (ctl_json_u64 (b, "bytes_written"), ctl_json_u64 (a, "bytes_written"),
        dt, true, c[7], 32);
  rate (ctl_json_u64 (b, "writeback_pages"),
        ctl_json_u64 (a, "writeback_pages"), dt, false, c[8], 32);
  snprintf (c[9], 32, "%" PRIu64,
            ctl_json_u64 (b, "errors") - ctl_json_u64 (a, "errors"));
  for (k = 0; k < 10; k++)
    row[k] = c[k];
  if (header) {
    for (k = 0; k < 10; k++)
      printf (left[k] ? "%s%-*s" : "%s%*s", k ? " " : "", (int) width[k],
              head[k]);
    putchar ('\n');
  }
  for (k = 0; k < 10; k++)
    printf (left[k] ? "%s%-*s" : "%s%*s", k ? " " : "", (int) width[k],
            row[k]);
  putchar ('\n');
  fflush (stdout);
}

/* watch_stats - sample "stats" every interval; one line each.
 * Return: the exit status. */
static int
watch_stats (struct ctl_conn *c)
{
  json_object *prev = NULL, *v;
  double t_prev = 0, t, next = now ();
  unsigned long lines = 0;
  char *raw;

  for (;;) {
    v = request_or_die (c, "stats\n", &raw);
    t = now ();
    if (!ctl_json_bool (v, "ok", false)) {
      fprintf (stderr, "%s: %s\n", prog, ctl_json_str (v, "error"));
      return EXIT_ANSWER_ERROR;
    }
    if (opt.json) {
      printf ("%s\n", raw);
      fflush (stdout);
      lines++;
    }
    else if (prev != NULL) {
      watch_line (ctl_json_get (prev, "stats"), ctl_json_get (v, "stats"),
                  t - t_prev, lines == 0 && !opt.noheadings);
      lines++;
    }
    free (raw);
    json_object_put (prev);
    prev = v;
    t_prev = t;
    if (opt.count && lines >= opt.count)
      break;
    next += opt.interval;
    sleep_until (next);
  }
  json_object_put (prev);
  return 0;
}

/* ---- Answers ---- */

/* print_answer - the human form of a successful answer to @c.
 * Return: the exit status. */
static int
print_answer (const struct command *c, char **words, json_object *v)
{
  char buf[64];

  if (strcmp (c->word, "stats") == 0) {
    json_object *info = ctl_json_get (v, "info");

    if (info != NULL) {         /* an older server sends none */
      ctl_print_stats (info, opt.exact);
      printf ("\n");
    }
    ctl_print_stats (ctl_json_get (v, "stats"), opt.exact);
    printf ("\n");
    ctl_print_backings (ctl_json_get (v, "backings"), opt.exact, false);
    ctl_print_drain_status (ctl_json_get (v, "drain"));
    return 0;
  }
  if (strcmp (c->word, "metrics") == 0) {
    const char *text = ctl_json_str (v, "text");
    fputs (text ? text : "", stdout);
    return 0;
  }
  if (strcmp (c->word, "backing") == 0 && strcmp (c->sub, "list") == 0)
    ctl_print_backings (ctl_json_get (v, "backings"), opt.exact,
                        opt.noheadings);
  else if (strcmp (c->word, "backing") == 0 && strcmp (c->sub, "add") == 0)
    printf ("attached %s\n", words[2]);
  else if (strcmp (c->word, "backing") == 0 && strcmp (c->sub, "remove") == 0)
    printf ("detached %s\n", words[2]);
  else if (strcmp (c->word, "backing") == 0 && strcmp (c->sub, "drain") == 0)
    printf ("draining %s in the background\n", words[2]);
  else if (strcmp (c->word, "migrate") == 0)
    printf ("migrating %s to %s in the background\n", words[1], words[2]);
  else if (strcmp (c->word, "drain") == 0 && strcmp (c->sub, "status") == 0)
    return ctl_print_drain_status (ctl_json_get (v, "drain"));
  else if (strcmp (c->word, "drain") == 0 && strcmp (c->sub, "wait") == 0)
    return drain_result (ctl_json_get (v, "drain"));
  else if (strcmp (c->word, "drain") == 0 && strcmp (c->sub, "cancel") == 0)
    printf ("the drain stops after its current batch\n");
  else if (strcmp (c->word, "reset-peak") == 0)
    printf ("memory peak reset to %s\n",
            ctl_size_long (ctl_json_u64 (v, "memory_peak_bytes"), buf,
                           sizeof buf));
  else if (strcmp (c->word, "ram-limit") == 0)
    printf ("ram-limit set to %s\n",
            ctl_size_long (ctl_json_u64 (v, "ram_limit"), buf, sizeof buf));
  else if (strcmp (c->word, "writeback") == 0)
    printf ("wrote back %" PRIu64 " pages\n", ctl_json_u64 (v, "pages"));
  else
    printf ("ok\n");
  return 0;
}

/* json_status - with --json, the exit status of a successful answer:
 * `drain status` and `drain wait` fail when the drain did. */
static int
json_status (const struct command *c, json_object *v)
{
  json_object *d = ctl_json_get (v, "drain");
  char line[8192];

  if (strcmp (c->word, "drain") == 0 && strcmp (c->sub, "cancel") != 0
      && !ctl_json_bool (d, "running", false)
      && ctl_drain_line (d, line, sizeof line) != 0)
    return EXIT_ANSWER_ERROR;
  return 0;
}

/* run_list - the device list: every socket, or the one chosen. */
static int
run_list (void)
{
  struct ctl_list_opts lo = {
    .exact = opt.exact, .noheadings = opt.noheadings, .json = opt.json,
    .columns = opt.columns,
  };
  char **paths = NULL, *one = NULL;
  int n, i, status;

  if (opt.socket || opt.name) {
    one = find_socket ();
    paths = &one;
    n = 1;
  }
  else {
    n = ctl_list_sockets (&paths);
    if (n < 0)
      die (EXIT_CONNECT, "cannot list %s: %s", ctl_rundir (), strerror (-n));
  }
  status = ctl_list_devices (paths, n, &lo);
  if (one)
    free (one);
  else {
    for (i = 0; i < n; i++)
      free (paths[i]);
    free (paths);
  }
  return status;
}

static void
run_help (void)
{
  json_object *o, *a;
  size_t i;

  if (!opt.json) {
    printf ("Commands:\n");
    print_commands (stdout);
    return;
  }
  o = json_object_new_object ();
  a = json_object_new_array ();
  for (i = 0; i < NCOMMANDS; i++)
    if (!commands[i].hidden)
      json_object_array_add (a, json_object_new_string (commands[i].usage));
  json_object_object_add (o, "commands", a);
  puts (json_object_to_json_string_ext (o, JSON_C_TO_STRING_PLAIN));
  json_object_put (o);
}

/* parse_options - every option, wherever it is; the other words are left
 * in argv[optind..] in order. */
static void
parse_options (int argc, char **argv)
{
  enum { OPT_NO_WAIT = 256, OPT_NOHEADINGS };
  static const struct option long_opts[] = {
    { "socket", required_argument, NULL, 's' },
    { "name", required_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { "no-wait", no_argument, NULL, OPT_NO_WAIT },
    { "bytes", no_argument, NULL, 'b' },
    { "noheadings", no_argument, NULL, OPT_NOHEADINGS },
    { "output", required_argument, NULL, 'o' },
    { "watch", optional_argument, NULL, 'w' },
    { "count", required_argument, NULL, 'c' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  int o;

  opterr = 0;
  while ((o = getopt_long (argc, argv, ":s:n:jbo:w::c:hV", long_opts,
                           NULL)) != -1) {
    switch (o) {
    case 's': opt.socket = optarg; break;
    case 'n': opt.name = optarg; break;
    case 'j': opt.json = true; break;
    case OPT_NO_WAIT: opt.no_wait = true; break;
    case 'b': opt.exact = true; break;
    case OPT_NOHEADINGS: opt.noheadings = true; break;
    case 'o': opt.columns = optarg; break;
    case 'w':
      opt.watch = true;
      if (optarg && !parse_seconds (optarg, &opt.interval))
        die (EXIT_USAGE, "--watch: '%s' is not a number of seconds from "
             "0.1 to %d", optarg, WATCH_MAX);
      break;
    case 'c':
      if (!parse_count (optarg, &opt.count) || opt.count == 0)
        die (EXIT_USAGE, "--count: '%s' is not a positive count", optarg);
      break;
    case 'h': usage (0);
    case 'V': printf ("ghostswapctl %s\n", PACKAGE_VERSION); exit (0);
    case ':':
      die (EXIT_USAGE, "option '%s' needs an argument", argv[optind - 1]);
    default:
      if (optopt)
        die (EXIT_USAGE, "unknown option '-%c' (try '%s --help')", optopt,
             prog);
      die (EXIT_USAGE, "unknown option '%s' (try '%s --help')",
           argv[optind - 1], prog);
    }
  }
}

/* main - check the command line, send the command, print its answer
 * (and follow a drain, or watch).
 * Context: the program.
 * Return: the exit status: 0, 1 (the server's error, a failed drain),
 * 2 (usage), 3 (no connection), 130 (interrupted while following a drain).
 */
int
main (int argc, char **argv)
{
  const struct command *c = NULL;
  char *socket_path, *line, *raw;
  json_object *v;
  struct ctl_conn conn;
  char **words;
  unsigned nwords;
  int status;

  parse_options (argc, argv);
  words = argv + optind;
  nwords = (unsigned) (argc - optind);
  /* `--watch 2 stats`: the interval came before the command. */
  if (opt.watch && nwords == 2 && strcmp (words[1], "stats") == 0
      && parse_seconds (words[0], &opt.interval)) {
    words++;
    nwords--;
  }
  if (nwords > 0)
    c = find_command (words, nwords);
  check_options (c);

  if (c == NULL || strcmp (c->word, "list") == 0)
    return run_list ();
  if (strcmp (c->word, "help") == 0) {
    run_help ();
    return 0;
  }
  /* `stats --watch 2`: the interval is not sent. */
  if (opt.watch)
    nwords = 1;
  line = join_words (words, nwords);

  socket_path = find_socket ();
  open_or_die (&conn, socket_path);
  if (opt.watch) {
    status = watch_stats (&conn);
    goto out;
  }
  v = request_or_die (&conn, line, &raw);

  if (!ctl_json_bool (v, "ok", false)) {
    const char *msg = ctl_json_str (v, "error");

    if (opt.json)
      printf ("%s\n", raw);
    else
      fprintf (stderr, "%s: %s\n", prog, msg ? msg : "the server failed");
    status = EXIT_ANSWER_ERROR;
  }
  else {
    /* A risk the server reports with a success (a remote backing over
     * TCP without TLS, say). */
    if (!opt.json && ctl_json_str (v, "warning"))
      fprintf (stderr, "%s: warning: %s\n", prog, ctl_json_str (v, "warning"));
    if (c->follows && !opt.no_wait)
      status = follow_drain (&conn);
    else if (opt.json) {
      printf ("%s\n", raw);
      status = json_status (c, v);
    }
    else
      status = print_answer (c, words, v);
  }
  json_object_put (v);
  free (raw);

 out:
  if (fflush (stdout) != 0 || ferror (stdout)) {
    fprintf (stderr, "%s: writing the output: %s\n", prog, strerror (errno));
    status = status ? status : EXIT_ANSWER_ERROR;
  }
  free (line);
  free (socket_path);
  ctl_conn_close (&conn);
  return status;
}
