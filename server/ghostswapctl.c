/* ghostswapctl: the command line client of the ghostswap control socket.
 *
 *   ghostswapctl [--socket PATH] [--json] [--no-wait] COMMAND [ARGS...]
 *
 * Sends the command words, joined by spaces, as one line and reads one
 * line of JSON back; prints it as tables (or raw with --json).  For
 * `backing drain` and `migrate` it then follows the drain: a progress bar
 * on a terminal, otherwise one line when it ends.  See
 * docs/ghostswapctl.pod.
 *
 * Exit status: 0 ok, 1 the server answered an error, 2 usage error, 3 no
 * connection (or it broke before an answer).
 */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ghostswap/config.h"
#include "ghostswap/control.h"
#include "json_read.h"

#ifndef PACKAGE_VERSION
#error "PACKAGE_VERSION must be defined by the build (server/meson.build)"
#endif

#define EXIT_ANSWER_ERROR 1
#define EXIT_USAGE 2
#define EXIT_CONNECT 3

/* How often the progress bar asks for the drain's status (ms). */
#define POLL_MS 200

static const char *prog = "ghostswapctl";
static bool opt_json;
static bool opt_no_wait;
static volatile sig_atomic_t interrupted;

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

static void __attribute__ ((noreturn))
usage (int status)
{
  FILE *f = status == 0 ? stdout : stderr;

  fprintf (f,
"Usage: %s [--socket PATH] [--json] [--no-wait] COMMAND [ARGS...]\n"
"\n"
"Commands:\n"
"  stats                      figures of the device, backings and drain\n"
"  metrics                    the same in Prometheus text format\n"
"  backing list               the attached backings\n"
"  backing add PATH [SIZE]    attach a file or block device\n"
"  backing remove PATH        detach an empty backing\n"
"  backing drain PATH         move every page off a backing\n"
"  migrate A B [SIZE]         attach B, drain A into B, detach A\n"
"  drain status|wait|cancel   the running drain\n"
"  ram-limit SIZE             change the cap on the RAM tier\n"
"  writeback [PAGES]          move cold pages from RAM to backing now\n"
"  help                       the commands the server knows\n"
"\n"
"Options:\n"
"  -s, --socket PATH   the control socket (default: $GHOSTSWAP_SOCKET,\n"
"                      else the only *.sock in " GS_CONTROL_DEFAULT_DIR ")\n"
"  -j, --json          print the server's JSON answer as it is\n"
"  -n, --no-wait       do not wait for a drain or migration to finish\n"
"  -h, --help          this text\n"
"  -V, --version       the version\n"
"\n"
"Exit status: 0 ok, 1 the server answered an error, 2 usage error,\n"
"3 cannot connect to the socket.  See ghostswapctl(1).\n", prog);
  exit (status);
}

/* ---- The connection ---- */

struct conn {
  const char *path;
  int fd;
  char *buf;                    /* bytes read, not yet returned */
  size_t len, cap;
};

/* find_socket - $GHOSTSWAP_SOCKET, else the only socket in the default
 * directory. */
static char *
find_socket (void)
{
  const char *env = getenv ("GHOSTSWAP_SOCKET");
  glob_t g;
  char *path;
  size_t i;
  int r;

  if (env != NULL && env[0] != '\0')
    return strdup (env);

  r = glob (GS_CONTROL_DEFAULT_DIR "/*.sock", 0, NULL, &g);
  if (r == GLOB_NOMATCH || (r == 0 && g.gl_pathc == 0))
    die (EXIT_CONNECT, "no control socket in %s (is the server running? "
         "name one with --socket PATH or GHOSTSWAP_SOCKET)",
         GS_CONTROL_DEFAULT_DIR);
  if (r != 0)
    die (EXIT_CONNECT, "cannot list %s", GS_CONTROL_DEFAULT_DIR);
  if (g.gl_pathc > 1) {
    fprintf (stderr, "%s: several control sockets in %s; "
             "choose one with --socket PATH:\n", prog, GS_CONTROL_DEFAULT_DIR);
    for (i = 0; i < g.gl_pathc; i++)
      fprintf (stderr, "  %s\n", g.gl_pathv[i]);
    exit (EXIT_USAGE);
  }
  path = strdup (g.gl_pathv[0]);
  globfree (&g);
  return path;
}

static void
conn_open (struct conn *c, const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };

  memset (c, 0, sizeof *c);
  c->path = path;
  if (strlen (path) >= sizeof addr.sun_path)
    die (EXIT_USAGE, "socket path too long (at most %zu bytes): %s",
         sizeof addr.sun_path - 1, path);
  memcpy (addr.sun_path, path, strlen (path) + 1);
  c->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    die (EXIT_CONNECT, "socket: %s", strerror (errno));
  if (connect (c->fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    die (EXIT_CONNECT, "cannot connect to %s: %s", path, strerror (errno));
}

/* conn_line - the next line from the server, without its newline
 * (malloc'd).  Exits if the connection breaks (or on Ctrl-C). */
static char *
conn_line (struct conn *c)
{
  for (;;) {
    char *nl = c->buf ? memchr (c->buf, '\n', c->len) : NULL;
    ssize_t n;

    if (nl != NULL) {
      size_t len = (size_t) (nl - c->buf);
      char *line = strndup (c->buf, len);

      if (line == NULL)
        die (EXIT_CONNECT, "out of memory");
      c->len -= len + 1;
      memmove (c->buf, nl + 1, c->len);
      return line;
    }
    if (c->cap - c->len < 4096) {
      size_t cap = c->cap ? c->cap * 2 : 65536;
      char *p = realloc (c->buf, cap);

      if (p == NULL)
        die (EXIT_CONNECT, "out of memory");
      c->buf = p;
      c->cap = cap;
    }
    n = read (c->fd, c->buf + c->len, c->cap - c->len);
    if (n < 0 && errno == EINTR) {
      if (interrupted)
        die (130, "interrupted");
      continue;
    }
    if (n < 0)
      die (EXIT_CONNECT, "%s: %s", c->path, strerror (errno));
    if (n == 0)
      die (EXIT_CONNECT, "%s: the server closed the connection "
           "without answering", c->path);
    c->len += (size_t) n;
  }
}

/* conn_request - send @line and read the answer: the raw line in
 * *@rawp (malloc'd) and its tree (free with jr_free). */
static struct jr_value *
conn_request (struct conn *c, const char *line, char **rawp)
{
  size_t len = strlen (line);
  struct jr_value *v;
  char err[128];
  char *raw;

  while (len > 0) {
    ssize_t n = send (c->fd, line, len, MSG_NOSIGNAL);

    if (n < 0 && errno == EINTR && !interrupted)
      continue;
    if (n <= 0)
      die (EXIT_CONNECT, "%s: %s", c->path, strerror (errno));
    line += n;
    len -= (size_t) n;
  }
  raw = conn_line (c);
  v = jr_parse (raw, strlen (raw), err, sizeof err);
  if (v == NULL || v->type != JR_OBJECT || jr_get (v, "ok") == NULL)
    die (EXIT_CONNECT, "%s: not an answer (%s): %.200s", c->path,
         v == NULL ? err : "no \"ok\"", raw);
  *rawp = raw;
  return v;
}

/* ---- Human-readable output ---- */

static const char *
human_size (uint64_t bytes, char *buf, size_t len)
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

static bool
ends_with (const char *s, const char *tail)
{
  size_t n = strlen (s), m = strlen (tail);

  return n >= m && strcmp (s + n - m, tail) == 0;
}

/* stat_value - one figure of "stats", humanised by its name. */
static const char *
stat_value (const char *key, const struct jr_value *v, char *buf, size_t len)
{
  if (v->type != JR_NUMBER)
    return v->type == JR_STRING ? v->text : "?";
  if (strcmp (key, "size") == 0 || strcmp (key, "ram_limit") == 0
      || ends_with (key, "_bytes") || strncmp (key, "bytes_", 6) == 0)
    return human_size (jr_value_u64 (v), buf, len);
  if (ends_with (key, "_ratio"))
    snprintf (buf, len, "%.2fx", v->number);
  else if (strcmp (key, "pool_fragmentation") == 0)
    snprintf (buf, len, "%.1f %%", v->number * 100);
  else if (strncmp (key, "metadata_per_", 13) == 0)
    snprintf (buf, len, "%.1f B", v->number);
  else
    return v->text;
  return buf;
}

static void
print_stats (const struct jr_value *stats)
{
  size_t i, width = 0;
  char buf[64];

  if (stats == NULL || stats->type != JR_OBJECT)
    return;
  for (i = 0; i < stats->n; i++)
    if (strlen (stats->keys[i]) > width)
      width = strlen (stats->keys[i]);
  for (i = 0; i < stats->n; i++)
    printf ("%-*s  %s\n", (int) width, stats->keys[i],
            stat_value (stats->keys[i], stats->items[i], buf, sizeof buf));
}

#define NCOLS 9

static void
print_backings (const struct jr_value *list)
{
  static const char *const head[NCOLS] = {
    "PATH", "SIZE", "SLOTS", "USED", "USE%", "STATE", "READS", "WRITES",
    "ERRORS",
  };
  char (*cells)[NCOLS][64];
  size_t width[NCOLS];
  size_t i, k, n;

  if (list == NULL || list->type != JR_ARRAY || list->n == 0) {
    printf ("no backing attached\n");
    return;
  }
  n = list->n;
  cells = calloc (n, sizeof *cells);
  if (cells == NULL)
    die (EXIT_ANSWER_ERROR, "out of memory");
  for (k = 0; k < NCOLS; k++)
    width[k] = strlen (head[k]);
  for (i = 0; i < n; i++) {
    const struct jr_value *b = list->items[i];
    const char *path = jr_str (b, "path");
    uint64_t slots = jr_u64 (b, "slots"), used = jr_u64 (b, "used");
    char size[32];

    snprintf (cells[i][0], 64, "%s", path ? path : "?");
    snprintf (cells[i][1], 64, "%s",
              human_size (jr_u64 (b, "size"), size, sizeof size));
    snprintf (cells[i][2], 64, "%" PRIu64, slots);
    snprintf (cells[i][3], 64, "%" PRIu64, used);
    snprintf (cells[i][4], 64, "%.1f",
              slots ? 100.0 * (double) used / (double) slots : 0.0);
    snprintf (cells[i][5], 64, "%s",
              jr_bool (b, "draining", false) ? "draining"
              : jr_bool (b, "healthy", true) ? "ok" : "unhealthy");
    snprintf (cells[i][6], 64, "%" PRIu64, jr_u64 (b, "reads"));
    snprintf (cells[i][7], 64, "%" PRIu64, jr_u64 (b, "writes"));
    snprintf (cells[i][8], 64, "%" PRIu64 "/%" PRIu64,
              jr_u64 (b, "read_errors"), jr_u64 (b, "write_errors"));
    for (k = 0; k < NCOLS; k++)
      if (strlen (cells[i][k]) > width[k])
        width[k] = strlen (cells[i][k]);
  }
  /* Long paths are cut in the table only: --json has them whole. */
  for (k = 0; k < NCOLS; k++)
    printf (k == 0 ? "%-*s" : k == 5 ? "  %-*s" : "  %*s",
            (int) width[k], head[k]);
  putchar ('\n');
  for (i = 0; i < n; i++) {
    for (k = 0; k < NCOLS; k++)
      printf (k == 0 ? "%-*s" : k == 5 ? "  %-*s" : "  %*s",
              (int) width[k], cells[i][k]);
    putchar ('\n');
  }
  free (cells);
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
drain_progress (const struct jr_value *d)
{
  uint64_t total = jr_u64 (d, "total");
  uint64_t n = jr_u64 (d, "done") + jr_u64 (d, "skipped");

  return n < total ? n : total;
}

/* print_drain_result - one line about a finished drain.
 * Return: the exit status it calls for. */
static int
print_drain_result (const struct jr_value *d)
{
  const char *source = jr_str (d, "source");
  const char *target = jr_str (d, "target");
  const char *message = jr_str (d, "message");
  double result = jr_num (d, "result", 0);
  bool migrate = jr_bool (d, "migrate", false);

  if (source == NULL || source[0] == '\0') {
    printf ("no drain has run\n");
    return 0;
  }
  if (result != 0) {
    fflush (stdout);
    fprintf (stderr, "%s: %s of %s failed: %s\n", prog,
             migrate ? "migration" : "drain", source,
             message && message[0] ? message : "unknown error");
    return EXIT_ANSWER_ERROR;
  }
  if (migrate)
    printf ("migrated %s to %s", source, target ? target : "?");
  else
    printf ("drained %s", source);
  printf (": %" PRIu64 " slots moved, %" PRIu64 " skipped, in %.1f s "
          "(%.1f MB/s)\n",
          jr_u64 (d, "done"), jr_u64 (d, "skipped"),
          jr_num (d, "seconds", 0), jr_num (d, "bytes_per_sec", 0) / 1e6);
  return 0;
}

static void
print_drain_status (const struct jr_value *d)
{
  const char *source = jr_str (d, "source");
  const char *target = jr_str (d, "target");
  uint64_t total = jr_u64 (d, "total"), done = drain_progress (d);
  double bps = jr_num (d, "bytes_per_sec", 0);
  char eta[32];

  if (d == NULL)
    return;
  if (!jr_bool (d, "running", false)) {
    if (source == NULL || source[0] == '\0')
      printf ("drain: none has run\n");
    else {
      printf ("drain: last one: ");
      print_drain_result (d);
    }
    return;
  }
  format_eta (bps > 0 ? (double) (total - done) * GS_SLOT_SIZE / bps : -1,
              eta, sizeof eta);
  printf ("drain: %s %s -> %s: %" PRIu64 "/%" PRIu64 " slots (%.1f %%), "
          "%.1f MB/s, ETA %s\n",
          jr_bool (d, "migrate", false) ? "migrating" : "draining",
          source ? source : "?",
          target && target[0] ? target : "anywhere",
          done, total, total ? 100.0 * (double) done / (double) total : 100.0,
          bps / 1e6, eta);
}

/* draw_bar - one progress line, redrawn in place. */
static void
draw_bar (const struct jr_value *d)
{
  enum { WIDTH = 30 };
  uint64_t total = jr_u64 (d, "total"), done = drain_progress (d);
  double bps = jr_num (d, "bytes_per_sec", 0);
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

static void
on_interrupt (int sig)
{
  interrupted = 1;
}

/* follow_drain - after a drain or migration started: wait for it.
 * Return: the exit status. */
static int
follow_drain (struct conn *c)
{
  struct sigaction sa = { .sa_handler = on_interrupt };
  struct jr_value *v;
  char *raw;
  int status;

  /* No SA_RESTART: Ctrl-C interrupts the wait, the drain goes on. */
  sigaction (SIGINT, &sa, NULL);

  if (opt_json || !isatty (STDOUT_FILENO)) {
    v = conn_request (c, "drain wait\n", &raw);
    if (opt_json) {
      printf ("%s\n", raw);
      status = jr_bool (v, "ok", false) ? 0 : EXIT_ANSWER_ERROR;
    }
    else
      status = print_drain_result (jr_get (v, "drain"));
    free (raw);
    jr_free (v);
    return status;
  }

  for (;;) {
    const struct jr_value *d;
    struct timespec ts = { .tv_sec = 0, .tv_nsec = POLL_MS * 1000000L };

    v = conn_request (c, "drain status\n", &raw);
    free (raw);
    d = jr_get (v, "drain");
    if (!jr_bool (v, "ok", false) || d == NULL) {
      jr_free (v);
      die (EXIT_ANSWER_ERROR, "drain status: no answer");
    }
    if (!jr_bool (d, "running", false)) {
      draw_bar (d);
      putchar ('\n');
      status = print_drain_result (d);
      jr_free (v);
      return status;
    }
    draw_bar (d);
    jr_free (v);
    nanosleep (&ts, NULL);
    if (interrupted) {
      printf ("\n");
      die (130, "interrupted: the drain goes on ('%s drain cancel' stops it)",
           prog);
    }
  }
}

/* print_answer - the human form of a successful answer to @words. */
static void
print_answer (char **words, int nwords, const struct jr_value *v)
{
  const char *cmd = words[0];
  const char *sub = nwords > 1 ? words[1] : "";
  char buf[64];

  if (strcmp (cmd, "stats") == 0) {
    print_stats (jr_get (v, "stats"));
    printf ("\n");
    print_backings (jr_get (v, "backings"));
    print_drain_status (jr_get (v, "drain"));
  }
  else if (strcmp (cmd, "metrics") == 0) {
    const char *text = jr_str (v, "text");
    fputs (text ? text : "", stdout);
  }
  else if (strcmp (cmd, "backing") == 0 && strcmp (sub, "list") == 0)
    print_backings (jr_get (v, "backings"));
  else if (strcmp (cmd, "backing") == 0 && strcmp (sub, "add") == 0)
    printf ("attached %s\n", words[2]);
  else if (strcmp (cmd, "backing") == 0 && strcmp (sub, "remove") == 0)
    printf ("detached %s\n", words[2]);
  else if (strcmp (cmd, "backing") == 0 && strcmp (sub, "drain") == 0)
    printf ("draining %s in the background\n", words[2]);
  else if (strcmp (cmd, "migrate") == 0)
    printf ("migrating %s to %s in the background\n", words[1], words[2]);
  else if (strcmp (cmd, "drain") == 0 && strcmp (sub, "status") == 0)
    print_drain_status (jr_get (v, "drain"));
  else if (strcmp (cmd, "drain") == 0 && strcmp (sub, "wait") == 0)
    print_drain_result (jr_get (v, "drain"));
  else if (strcmp (cmd, "drain") == 0 && strcmp (sub, "cancel") == 0)
    printf ("the drain stops after its current batch\n");
  else if (strcmp (cmd, "ram-limit") == 0)
    printf ("ram-limit set to %s\n",
            human_size (jr_u64 (v, "ram_limit"), buf, sizeof buf));
  else if (strcmp (cmd, "writeback") == 0)
    printf ("wrote back %" PRIu64 " pages\n", jr_u64 (v, "pages"));
  else if (strcmp (cmd, "help") == 0) {
    const struct jr_value *list = jr_get (v, "commands");
    size_t i;

    for (i = 0; list && list->type == JR_ARRAY && i < list->n; i++)
      if (list->items[i]->type == JR_STRING)
        printf ("%s\n", list->items[i]->text);
  }
  else
    printf ("ok\n");
}

/* join_words - the request line: words joined by spaces, and a newline. */
static char *
join_words (char **words, int n)
{
  size_t len = 2;
  char *line, *p;
  int i;

  for (i = 0; i < n; i++) {
    const unsigned char *s;

    if (words[i][0] == '\0')
      die (EXIT_USAGE, "empty argument");
    for (s = (const unsigned char *) words[i]; *s; s++)
      if (*s <= ' ' || *s == 0x7f)
        die (EXIT_USAGE, "arguments cannot hold spaces or control "
             "characters: '%s'", words[i]);
    len += strlen (words[i]) + 1;
  }
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

/* main - parse the options, send the command, print its answer (and
 * follow a drain or migration).
 * Context: the program.
 * Return: the exit status: 0, 1 (the server's error), 2 (usage), 3 (no
 * connection), 130 (interrupted while following a drain).
 */
int
main (int argc, char **argv)
{
  static const struct option long_opts[] = {
    { "socket", required_argument, NULL, 's' },
    { "json", no_argument, NULL, 'j' },
    { "no-wait", no_argument, NULL, 'n' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  char *socket_path = NULL, *found = NULL, *line, *raw;
  struct jr_value *v;
  struct conn c;
  bool ok, follows;
  char **words;
  int opt, nwords, status;

  /* "+": options end at the command, whose words may start with '-'. */
  while ((opt = getopt_long (argc, argv, "+s:jnhV", long_opts, NULL)) != -1) {
    switch (opt) {
    case 's': socket_path = optarg; break;
    case 'j': opt_json = true; break;
    case 'n': opt_no_wait = true; break;
    case 'h': usage (0);
    case 'V': printf ("ghostswapctl %s\n", PACKAGE_VERSION); return 0;
    default: usage (EXIT_USAGE);
    }
  }
  if (optind >= argc) {
    fprintf (stderr, "%s: no command given\n", prog);
    usage (EXIT_USAGE);
  }
  words = argv + optind;
  nwords = argc - optind;
  line = join_words (words, nwords);

  if (socket_path == NULL)
    socket_path = found = find_socket ();
  if (socket_path == NULL)
    die (EXIT_USAGE, "out of memory");
  conn_open (&c, socket_path);
  v = conn_request (&c, line, &raw);
  ok = jr_bool (v, "ok", false);

  follows = ok && !opt_no_wait
    && ((strcmp (words[0], "backing") == 0 && nwords > 1
         && strcmp (words[1], "drain") == 0)
        || strcmp (words[0], "migrate") == 0);

  if (!ok) {
    const char *msg = jr_str (v, "error");

    if (opt_json)
      printf ("%s\n", raw);
    else
      fprintf (stderr, "%s: %s\n", prog, msg ? msg : "the server failed");
    status = EXIT_ANSWER_ERROR;
  }
  else if (follows)
    status = follow_drain (&c);
  else {
    if (opt_json)
      printf ("%s\n", raw);
    else
      print_answer (words, nwords, v);
    status = 0;
  }

  if (fflush (stdout) != 0 || ferror (stdout)) {
    fprintf (stderr, "%s: writing the output: %s\n", prog, strerror (errno));
    status = status ? status : EXIT_ANSWER_ERROR;
  }
  jr_free (v);
  free (raw);
  free (line);
  free (found);
  close (c.fd);
  free (c.buf);
  return status;
}
