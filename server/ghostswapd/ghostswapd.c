/* ghostswapd: the ghostswap engine served as a file in a FUSE mount.
 *
 *   ghostswapd [OPTIONS] MOUNTPOINT [SIZE] [KEY=VALUE ...]
 *
 * The mount holds `swap`, the device (attach it with losetup, then mkswap
 * and swapon the loop device), and `stats`, the engine's statistics.  The
 * keys are the nbdkit plugin's, parsed by the same code (gs_config_set).
 * See docs/ghostswapd.pod.
 *
 * Start-up, in order: parse and check the configuration; daemonize if
 * asked (before anything else, since memory locks are not inherited over
 * fork); block the stop signals (every later thread inherits the mask);
 * then the service library's start-up path, shared with the nbdkit
 * plugin (ghostswap/service/service.h): harden the process before any
 * thread exists, with one warning per measure that failed; create the
 * device and attach its backings; mount, and put the FUSE transport
 * under the session (its io_uring queue threads, if any, start here and
 * register once INIT is answered: fuse_transport.h); start the engine's thread and
 * the service (control socket, metrics; the device's name defaults to the
 * mount point's base name); tell systemd and a waiting parent that we
 * are ready; serve with libfuse's multi-threaded loop.
 *
 * Stopping: SIGTERM, SIGINT and SIGHUP stop cleanly, unless the swap file
 * is active swap (directly or through a loop device): then the daemon
 * says why and keeps serving, since stopping would fail every page still
 * swapped there and the kernel would kill their owners.  --force-stop, or
 * SIGQUIT at any time, stops regardless.  A second signal does not force
 * anything: `kill` run twice by a script must not lose memory.
 *
 * Exit status: 0 after a clean stop, 1 on any error at start.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "ghostfs.h"            /* first: it sets FUSE_USE_VERSION */

#include "daemon_log.h"
#include "fuse_transport.h"
#include "ghostswap/config.h"
#include "ghostswap/device.h"
#include "ghostswap/service/latency.h"
#include "ghostswap/service/service.h"
#include "ghostswap/stats.h"
#include "mountinfo.h"
#include "sd_notify.h"
#include "swap_use.h"

#ifndef PACKAGE_VERSION
#error "PACKAGE_VERSION must be defined by the build (server/meson.build)"
#endif

#define ERRLEN 1024

/* FUSE worker threads.  Each may run one engine request at a time
 * (compression is done in the requesting thread), and the kernel keeps up
 * to max_background asynchronous requests (a loop device with direct I/O
 * sends those) in flight; beyond a few threads per core they only wait.
 * See docs/benchmarks.md for the measurements behind the defaults. */
#define DEFAULT_THREADS 16
#define DEFAULT_MAX_BACKGROUND 64

/* How often the signal thread wakes the main thread out of libfuse's
 * loop while a stop is under way (ms): the loop checks for the exit flag
 * only when interrupted. */
#define KICK_MS 50

/* The stop signals; SIGQUIT stops even while in use as swap. */
static const int stop_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };

/* The wake-up signal sent to the main thread (no-op handler). */
#define KICK_SIGNAL SIGUSR2

struct options {
  bool daemonize;
  bool force_stop;
  bool verbose;
  bool direct_io_always;
  unsigned threads;
  unsigned max_background;
  enum fuse_transport_kind transport;
  struct fuse_ring_options ring;
  char *fuse_opts;              /* -o options, joined with commas (owned) */
  const char *mountpoint_arg;
};

static struct options opt = {
  .direct_io_always = true,
  .threads = DEFAULT_THREADS,
  .max_background = DEFAULT_MAX_BACKGROUND,
};

static struct gs_config cfg;
static struct gs_device *dev;
static struct ghostfs fs;
static struct fuse_session *se;
static struct gs_service *service;
static struct gs_latency latency;   /* request latency, recorded by ghostfs */
static struct fuse_transport *transport;
static char mountpoint[PATH_MAX];
static char swapfile[PATH_MAX + sizeof "/" GHOSTFS_SWAP_NAME];
static int ready_fd = -1;       /* -d: the parent waits on this pipe */
static pthread_t main_thread;
static bool loop_running;       /* atomic: fuse_session_loop_mt runs */
static bool loop_done;          /* atomic: it has returned */

/* ---- Usage ---- */

static void
usage (FILE *fp)
{
  fprintf (fp,
"Usage: ghostswapd [OPTIONS] MOUNTPOINT [SIZE] [KEY=VALUE ...]\n"
"Serve a ghostswap device as the file MOUNTPOINT/swap (with its statistics\n"
"in MOUNTPOINT/stats) for losetup + mkswap + swapon.\n"
"\n"
"Options:\n"
"  -f, --foreground       stay in the foreground (the default)\n"
"  -d, --daemonize        detach once the mount is ready; log to syslog\n"
"  -o OPT[,OPT...]        FUSE mount options (allow_other, auto_unmount, ...)\n"
"      --control PATH     control socket (as control=PATH; 'none': off)\n"
"      --force-stop       stop on SIGTERM even while the file is active swap\n"
"      --direct-io=MODE   'always' (default): no open of swap uses the page\n"
"                         cache; 'odirect': only O_DIRECT opens bypass it\n"
"  -t, --threads N        FUSE worker threads (default %d)\n"
"      --max-background N kernel's async FUSE requests in flight (default %d)\n"
"      --transport=MODE   FUSE requests over 'uring' (io_uring command\n"
"                         rings), 'dev' (read/write on /dev/fuse) or 'auto'\n"
"                         (default: uring if the kernel offers it; also\n"
"                         as the key transport=MODE)\n"
"      --queue-threads N  io_uring: threads per kernel queue (one queue\n"
"                         per possible CPU; default %d)\n"
"  -v, --verbose          say what happens; statistics at exit\n"
"  -h, --help             this help\n"
"  -V, --version          the version\n"
"\n"
"Keys (as for nbdkit ghostswap, see nbdkit-ghostswap-plugin(1)):\n"
"%s\n",
           DEFAULT_THREADS, DEFAULT_MAX_BACKGROUND,
           FUSE_RING_THREADS_PER_QUEUE, gs_config_help);
}

/* add_fuse_opts - append @o to the -o options. */
static void
add_fuse_opts (const char *o)
{
  size_t old = opt.fuse_opts ? strlen (opt.fuse_opts) : 0;
  char *s = realloc (opt.fuse_opts, old + strlen (o) + 2);

  if (s == NULL) {
    log_error ("out of memory");
    exit (EXIT_FAILURE);
  }
  if (old == 0)
    strcpy (s, o);
  else {
    s[old] = ',';
    strcpy (s + old + 1, o);
  }
  opt.fuse_opts = s;
}

static unsigned
parse_count (const char *name, const char *value, unsigned min, unsigned max)
{
  char *end;
  unsigned long v;

  errno = 0;
  v = strtoul (value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < min || v > max) {
    log_error ("%s: '%s' is not a number from %u to %u", name, value,
               min, max);
    exit (EXIT_FAILURE);
  }
  return (unsigned) v;
}

/* set_key - gs_config_set for "KEY=VALUE" or (@key, @value); exits with
 * its one-line message on error. */
static void
set_key (const char *key, const char *value)
{
  char err[ERRLEN];

  if (gs_config_set (&cfg, key, value, err, sizeof err) < 0) {
    log_error ("%s", err);
    exit (EXIT_FAILURE);
  }
}

static void warn_config (void);

/* set_transport - the transport option (@name as given); exits with a
 * one-line message if @value is not a transport. */
static void
set_transport (const char *name, const char *value)
{
  if (fuse_transport_parse (value, &opt.transport) < 0) {
    log_error ("%s: '%s' is not 'auto', 'uring' or 'dev'", name, value);
    exit (EXIT_FAILURE);
  }
}

static void
parse_args (int argc, char **argv)
{
  enum { OPT_CONTROL = 256, OPT_FORCE_STOP, OPT_DIRECT_IO, OPT_MAX_BG,
         OPT_TRANSPORT, OPT_QUEUE_THREADS };
  static const struct option longopts[] = {
    { "foreground", no_argument, NULL, 'f' },
    { "daemonize", no_argument, NULL, 'd' },
    { "control", required_argument, NULL, OPT_CONTROL },
    { "force-stop", no_argument, NULL, OPT_FORCE_STOP },
    { "direct-io", required_argument, NULL, OPT_DIRECT_IO },
    { "threads", required_argument, NULL, 't' },
    { "max-background", required_argument, NULL, OPT_MAX_BG },
    { "transport", required_argument, NULL, OPT_TRANSPORT },
    { "queue-threads", required_argument, NULL, OPT_QUEUE_THREADS },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  char err[ERRLEN];
  int c, i;

  while ((c = getopt_long (argc, argv, "fdo:t:vhV", longopts, NULL)) != -1) {
    switch (c) {
    case 'f': opt.daemonize = false; break;
    case 'd': opt.daemonize = true; break;
    case 'o': add_fuse_opts (optarg); break;
    case OPT_CONTROL: set_key ("control", optarg); break;
    case OPT_FORCE_STOP: opt.force_stop = true; break;
    case OPT_DIRECT_IO:
      if (strcmp (optarg, "always") == 0)
        opt.direct_io_always = true;
      else if (strcmp (optarg, "odirect") == 0)
        opt.direct_io_always = false;
      else {
        log_error ("--direct-io: '%s' is not 'always' or 'odirect'", optarg);
        exit (EXIT_FAILURE);
      }
      break;
    case 't': opt.threads = parse_count ("--threads", optarg, 1, 1024); break;
    case OPT_MAX_BG:
      opt.max_background = parse_count ("--max-background", optarg, 1, 65535);
      break;
    case OPT_TRANSPORT: set_transport ("--transport", optarg); break;
    case OPT_QUEUE_THREADS:
      opt.ring.threads_per_queue = parse_count ("--queue-threads", optarg,
                                                1, 64);
      break;
    case 'v': opt.verbose = true; break;
    case 'h': usage (stdout); exit (EXIT_SUCCESS);
    case 'V':
      printf ("ghostswapd %s (libfuse %s)\n", PACKAGE_VERSION,
              fuse_pkgversion ());
      exit (EXIT_SUCCESS);
    default:
      fprintf (stderr, "Try 'ghostswapd --help'.\n");
      exit (EXIT_FAILURE);
    }
  }
  if (optind >= argc) {
    log_error ("no MOUNTPOINT given (try 'ghostswapd --help')");
    exit (EXIT_FAILURE);
  }
  opt.mountpoint_arg = argv[optind++];
  for (i = optind; i < argc; i++) {
    char *eq = strchr (argv[i], '=');

    /* A bare value is the size, as nbdkit's magic key: ghostswapd MNT 1G. */
    if (eq == NULL && i == optind) {
      set_key ("size", argv[i]);
      continue;
    }
    if (eq == NULL || eq == argv[i]) {
      log_error ("'%s': not KEY=VALUE (the mount point comes first, then "
                 "the size or size=SIZE, then KEY=VALUE pairs)", argv[i]);
      exit (EXIT_FAILURE);
    }
    *eq = '\0';
    if (strcmp (argv[i], "transport") == 0)
      set_transport ("transport", eq + 1);     /* ours, not the engine's */
    else
      set_key (argv[i], eq + 1);
    *eq = '=';
  }
  if (gs_config_check (&cfg, err, sizeof err) < 0) {
    log_error ("%s", err);
    exit (EXIT_FAILURE);
  }
  warn_config ();
}

/* warn_config - what is valid but probably not meant (a key given twice,
 * ram-limit above the machine's memory, ...), one warning each. */
static void
warn_config (void)
{
  char buf[ERRLEN * 2];
  char *line, *save = NULL;

  if (gs_config_warnings (&cfg, buf, sizeof buf) == 0)
    return;
  for (line = strtok_r (buf, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    log_warning ("%s", line);
}

/* ---- Daemonizing ---- */

/* daemonize - fork; the parent stays until the child is ready (exit 0) or
 * has failed (its exit status), so that `ghostswapd -d` returns only
 * once the mount can be used. */
static void
daemonize (void)
{
  int pfd[2], status;
  pid_t pid;
  char c;

  if (pipe2 (pfd, O_CLOEXEC) < 0) {
    log_error ("pipe: %m");
    exit (EXIT_FAILURE);
  }
  pid = fork ();
  if (pid < 0) {
    log_error ("fork: %m");
    exit (EXIT_FAILURE);
  }
  if (pid > 0) {
    close (pfd[1]);
    if (read (pfd[0], &c, 1) == 1)
      _exit (EXIT_SUCCESS);
    if (waitpid (pid, &status, 0) == pid && WIFEXITED (status))
      _exit (WEXITSTATUS (status));
    _exit (EXIT_FAILURE);
  }
  close (pfd[0]);
  ready_fd = pfd[1];
  setsid ();
  if (chdir ("/") < 0) {
    /* Cannot happen; the mount point is absolute anyway. */
  }
}

/* detach_stdio - once ready in the background: messages go to syslog. */
static void
detach_stdio (void)
{
  int fd = open ("/dev/null", O_RDWR | O_CLOEXEC);

  if (fd < 0)
    return;
  dup2 (fd, STDIN_FILENO);
  dup2 (fd, STDOUT_FILENO);
  dup2 (fd, STDERR_FILENO);
  if (fd > STDERR_FILENO)
    close (fd);
}

/* libfuse's own messages follow ours (syslog once daemonized). */
static void __attribute__ ((format (printf, 2, 0)))
fuse_log_to_ours (enum fuse_log_level level, const char *fmt, va_list ap)
{
  char msg[1024];
  size_t n;

  vsnprintf (msg, sizeof msg, fmt, ap);
  n = strlen (msg);
  while (n > 0 && msg[n - 1] == '\n')
    msg[--n] = '\0';
  if (level <= FUSE_LOG_ERR)
    log_error ("fuse: %s", msg);
  else if (level <= FUSE_LOG_WARNING)
    log_warning ("fuse: %s", msg);
  else
    log_info ("fuse: %s", msg);
}

/* ---- Start-up (the service library's path) ---- */

/* daemon_log - the service's messages through ours. */
static void
daemon_log (enum gs_log_level level, const char *msg)
{
  switch (level) {
  case GS_LOG_ERROR: log_error ("%s", msg); break;
  case GS_LOG_WARNING: log_warning ("%s", msg); break;
  default: log_info ("%s", msg);
  }
}

/* abandon_device - for a start that fails: detach the backings, removing
 * the files this start created (nothing was written to them), and destroy
 * the device. */
static void
abandon_device (void)
{
  gs_service_withdraw_backings (dev, &cfg);
  gs_device_destroy (dev);
}

static void
start_engine (void)
{
  if (gs_service_create_device (&cfg, daemon_log, &dev) < 0)
    exit (EXIT_FAILURE);
}

/* mount_fs - create the FUSE session and mount it.  Mount options:
 * default_permissions (the kernel checks the files' modes: swap is
 * 0600, owned by our user) plus those given with -o. */
static void
mount_fs (void)
{
  char *mopts;
  char *args_v[] = { (char *) "ghostswapd", (char *) "-o", NULL, NULL };
  struct fuse_args args = FUSE_ARGS_INIT (3, args_v);
  int r;

  if (asprintf (&mopts, "fsname=ghostswap,subtype=ghostswap,"
                "default_permissions%s%s",
                opt.fuse_opts ? "," : "",
                opt.fuse_opts ? opt.fuse_opts : "") < 0) {
    log_error ("out of memory");
    exit (EXIT_FAILURE);
  }
  args_v[2] = mopts;
  ghostfs_init (&fs, dev, opt.direct_io_always, opt.max_background);
  fs.latency = &latency;
  se = fuse_session_new (&args, &ghostfs_ops, sizeof ghostfs_ops, &fs);
  fuse_opt_free_args (&args);
  free (mopts);
  if (se == NULL) {
    log_error ("cannot start a FUSE session (bad -o option?)");
    abandon_device ();
    exit (EXIT_FAILURE);
  }
  if (fuse_session_mount (se, mountpoint) != 0) {
    log_error ("cannot mount on %s (is /dev/fuse there, and may this user "
               "mount?)", mountpoint);
    fuse_session_destroy (se);
    abandon_device ();
    exit (EXIT_FAILURE);
  }
  log_info ("mounted on %s; the device is %s", mountpoint, swapfile);
  r = fuse_transport_start (se, opt.transport, &opt.ring, &transport);
  if (r < 0) {
    log_error ("cannot take over the FUSE session's I/O: %s", strerror (-r));
    fuse_session_unmount (se);
    fuse_session_destroy (se);
    gs_device_destroy (dev);
    exit (EXIT_FAILURE);
  }
  fs.transport = transport;
}

/* unmount_fs - unmount, stop the io_uring queues (the kernel ends their
 * commands at unmount; a lazy unmount leaves them to the stop) and end
 * the session (closing /dev/fuse aborts any request the kernel still
 * has). */
static void
unmount_fs (void)
{
  fuse_session_unmount (se);
  fuse_transport_stop (transport);
  fuse_session_destroy (se);
  se = NULL;
}

/* transport_now - the FUSE transport serving now, for the stats' info
 * and ghostswap_info (gs_transport_fn). */
static const char *
transport_now (void *arg, char *why, size_t len)
{
  return fuse_transport_describe (arg, why, len);
}

static void
start_service (void)
{
  const char *base = strrchr (mountpoint, '/');
  struct gs_service_params params = {
    .frontend = "fuse", .transport_fn = transport_now,
    .transport_arg = transport, .latency = &latency,
    .default_name = base && base[1] ? base + 1 : "root",
    .log = daemon_log,
  };

  if (gs_service_start (dev, &cfg, &params, &service) < 0) {
    unmount_fs ();
    abandon_device ();
    exit (EXIT_FAILURE);
  }
}

/* ---- Signals ---- */

static void
kick_handler (int sig)
{
  (void) sig;                   /* only interrupts the main thread's wait */
}

/* block_signals - block the stop signals (and SIGUSR1) in this thread and
 * so in every thread created after; the signal thread takes them with
 * sigtimedwait.  SIGPIPE is ignored (sockets). */
static void
block_signals (sigset_t *set)
{
  struct sigaction sa;
  size_t i;

  sigemptyset (set);
  for (i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
    sigaddset (set, stop_signals[i]);
  sigaddset (set, SIGUSR1);
  pthread_sigmask (SIG_BLOCK, set, NULL);

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction (SIGPIPE, &sa, NULL);
  /* Without SA_RESTART: the futex wait under sem_wait, where the main
   * thread waits in libfuse's loop, would be restarted and never
   * return. */
  sa.sa_handler = kick_handler;
  sigaction (KICK_SIGNAL, &sa, NULL);
}

/* log_stats - the statistics, one message per line: with -v at exit
 * (log_info), or on SIGUSR1 (@asked: always). */
static void
log_stats (bool asked)
{
  struct gs_stats st;
  char buf[8192];
  char *line, *save = NULL;
  int n;

  gs_get_stats (dev, &st);
  n = gs_stats_format (&st, buf, sizeof buf);
  if (transport != NULL && n >= 0 && (size_t) n < sizeof buf)
    fuse_transport_format (transport, buf + n, sizeof buf - (size_t) n);
  for (line = strtok_r (buf, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    if (asked)
      log_notice ("stats: %s", line);
    else
      log_info ("stats: %s", line);
}

/* may_stop - is a stop allowed now?  Not while our file is active swap,
 * unless forced.  Says why not, and names loop devices still attached
 * (or counts open handles). */
static bool
may_stop (bool forced, const char *signame)
{
  char what[4096], loops[1024];
  int r;

  r = swap_use_active (swapfile, what, sizeof what);
  if (r < 0)
    log_warning ("cannot read /proc/swaps (%s): cannot tell whether %s is "
                 "in use as swap", strerror (-r), swapfile);
  if (r > 0 && !forced) {
    log_warning ("%s received, but refusing to stop: %s is active swap on "
                 "%s, and stopping would fail every page still swapped "
                 "there (their processes would be killed).  Run 'swapoff "
                 "%s' and detach the loop device first, or send SIGQUIT "
                 "(or start with --force-stop) to stop anyway.",
                 signame, what, swapfile, what);
    notify_systemd ("STATUS=Refusing to stop: still in use as swap");
    return false;
  }
  if (r > 0)
    log_warning ("%s received: stopping although %s is active swap on %s "
                 "(forced): its pages are lost", signame, what, swapfile);
  if (swap_use_loops (swapfile, loops, sizeof loops) > 0)
    log_warning ("loop device(s) %s still attached to %s: their I/O will "
                 "fail from now on (losetup -d them)", loops, swapfile);
  else if (ghostfs_swap_opens (&fs) > 0)
    log_warning ("%s is still open (%u handle(s)): I/O through them will "
                 "fail from now on", swapfile, ghostfs_swap_opens (&fs));
  return true;
}

/* stop_loop - make libfuse's loop return: set the session's exit flag,
 * then interrupt the main thread's wait until the loop has returned (it
 * checks the flag only when interrupted, and a single signal could land
 * just before it waits). */
static void
stop_loop (void)
{
  struct timespec ts = { 0, KICK_MS * 1000000L };

  fuse_session_exit (se);
  while (!__atomic_load_n (&loop_done, __ATOMIC_ACQUIRE)) {
    if (__atomic_load_n (&loop_running, __ATOMIC_ACQUIRE))
      pthread_kill (main_thread, KICK_SIGNAL);
    nanosleep (&ts, NULL);
  }
}

static const char *
signal_name (int sig)
{
  switch (sig) {
  case SIGTERM: return "SIGTERM";
  case SIGINT: return "SIGINT";
  case SIGHUP: return "SIGHUP";
  case SIGQUIT: return "SIGQUIT";
  default: return "a signal";
  }
}

/* signal_thread - take the blocked signals one at a time; return once
 * the loop is over (stopped by us, or unmounted from outside). */
static void *
signal_thread (void *arg)
{
  const sigset_t *set = arg;
  const struct timespec poll = { 0, 250 * 1000000L };
  siginfo_t si;
  int sig;

  while (!__atomic_load_n (&loop_done, __ATOMIC_ACQUIRE)) {
    sig = sigtimedwait (set, &si, &poll);
    if (sig < 0)
      continue;                 /* EAGAIN (time out) or EINTR */
    if (sig == SIGUSR1) {
      log_stats (true);
      continue;
    }
    if (!may_stop (sig == SIGQUIT || opt.force_stop, signal_name (sig)))
      continue;
    log_info ("%s received: stopping", signal_name (sig));
    notify_systemd ("STOPPING=1");
    stop_loop ();
    break;
  }
  return NULL;
}

/* ---- Main ---- */

static void refuse_live_device (void);

static void
resolve_mountpoint (void)
{
  struct stat st;

  if (realpath (opt.mountpoint_arg, mountpoint) == NULL) {
    log_error ("%s: %m", opt.mountpoint_arg);
    exit (EXIT_FAILURE);
  }
  if (stat (mountpoint, &st) < 0 || !S_ISDIR (st.st_mode)) {
    log_error ("%s: not a directory", opt.mountpoint_arg);
    exit (EXIT_FAILURE);
  }
  snprintf (swapfile, sizeof swapfile, "%s%s%s", mountpoint,
            strcmp (mountpoint, "/") == 0 ? "" : "/", GHOSTFS_SWAP_NAME);
  refuse_live_device ();
}

/* refuse_live_device - never mount over a ghostswap device that is
 * already there: the new, empty device would hide the live one (and its
 * swap file, which may be active swap) from everyone but the kernel. */
static void
refuse_live_device (void)
{
  char type[64], what[4096];

  if (mountinfo_fstype (mountpoint, type, sizeof type) != 1
      || strcmp (type, MOUNTINFO_GHOSTSWAP) != 0)
    return;
  if (swap_use_active (swapfile, what, sizeof what) > 0)
    log_error ("%s is already a ghostswap device, and its file is active "
               "swap on %s: refusing to mount a second device over it",
               mountpoint, what);
  else
    log_error ("%s is already a ghostswap device (another ghostswapd "
               "serves it): refusing to mount a second device over it; "
               "stop that one first, or choose another directory",
               mountpoint);
  exit (EXIT_FAILURE);
}

static void
report_ready (void)
{
  char msg[sizeof swapfile + 64];

  snprintf (msg, sizeof msg, "READY=1\nMAINPID=%d\nSTATUS=Serving %s",
            (int) getpid (), swapfile);
  if (notify_systemd (msg) < 0)
    log_warning ("cannot notify systemd through $NOTIFY_SOCKET");
  if (ready_fd >= 0) {
    log_setup (true, opt.verbose);
    detach_stdio ();
    if (write (ready_fd, "R", 1) != 1) {
      /* The parent is gone: nobody to tell. */
    }
    close (ready_fd);
    ready_fd = -1;
  }
}

int
main (int argc, char **argv)
{
  struct fuse_loop_config *loop_cfg;
  pthread_t sig_thread;
  sigset_t sigs;
  int r;

  gs_config_init (&cfg);
  parse_args (argc, argv);
  resolve_mountpoint ();
  log_setup (false, opt.verbose);
  fuse_set_log_func (fuse_log_to_ours);

  if (opt.daemonize)
    daemonize ();               /* messages stay on stderr until ready */
  block_signals (&sigs);
  main_thread = pthread_self ();
  gs_service_harden (daemon_log);  /* before any thread: see harden.h */

  start_engine ();
  mount_fs ();
  r = gs_device_start (dev);
  if (r < 0) {
    log_error ("cannot start the engine's thread: %s", strerror (-r));
    unmount_fs ();
    abandon_device ();
    exit (EXIT_FAILURE);
  }
  start_service ();

  loop_cfg = fuse_loop_cfg_create ();
  if (loop_cfg == NULL) {
    log_error ("out of memory");
    gs_service_stop (service);
    unmount_fs ();
    gs_device_destroy (dev);
    exit (EXIT_FAILURE);
  }
  fuse_loop_cfg_set_max_threads (loop_cfg, opt.threads);
  fuse_loop_cfg_set_clone_fd (loop_cfg, 0);

  report_ready ();              /* the mount serves from here on */
  r = pthread_create (&sig_thread, NULL, signal_thread, &sigs);
  if (r != 0) {
    log_error ("cannot start the signal thread: %s", strerror (r));
    gs_service_stop (service);
    unmount_fs ();
    gs_device_destroy (dev);
    exit (EXIT_FAILURE);
  }
  __atomic_store_n (&loop_running, true, __ATOMIC_RELEASE);
  r = fuse_session_loop_mt (se, loop_cfg);
  __atomic_store_n (&loop_done, true, __ATOMIC_RELEASE);
  fuse_loop_cfg_destroy (loop_cfg);
  if (r != 0)
    log_warning ("the FUSE loop ended with an error (%d)", r);

  /* The signal thread returns once it sees loop_done (within 250 ms if
   * the file system was unmounted from outside). */
  pthread_join (sig_thread, NULL);

  gs_service_stop (service);
  unmount_fs ();
  log_stats (false);
  fuse_transport_free (transport);
  gs_device_destroy (dev);
  gs_config_free (&cfg);
  free (opt.fuse_opts);
  log_info ("stopped");
  return EXIT_SUCCESS;
}
