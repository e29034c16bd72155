/* ghostswap integration tests: shared harness (see harness.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

const char *test_name = "test";

#define MAX_SERVERS 8
static struct server *volatile servers[MAX_SERVERS];

/* Async-signal-safe removal of the server's files and directory. */
static void
remove_dir (const struct server *srv)
{
  if (srv->dir[0] == '\0')
    return;
  unlink (srv->sock);
  unlink (srv->pidfile);
  rmdir (srv->dir);
}

static void stop (struct server *srv, int ticks);

static void
kill_all_servers (void)
{
  for (int i = 0; i < MAX_SERVERS; i++) {
    struct server *srv = servers[i];
    if (srv != NULL)
      stop (srv, 50);
  }
}

static void
on_signal (int sig)
{
  /* Only async-signal-safe calls here. */
  for (int i = 0; i < MAX_SERVERS; i++) {
    struct server *srv = servers[i];
    if (srv == NULL)
      continue;
    if (srv->pid > 0) {
      kill (srv->pid, SIGKILL);
      waitpid (srv->pid, NULL, 0);
    }
    remove_dir (srv);
  }
  signal (sig, SIG_DFL);
  raise (sig);
}

static void __attribute__ ((format (printf, 2, 0)))
vmessage (const char *what, const char *fmt, va_list ap)
{
  char buf[4096];

  vsnprintf (buf, sizeof buf, fmt, ap);
  fflush (stdout);
  fprintf (stderr, "%s: %s: %s\n", test_name, what, buf);
  fflush (stderr);
}

/* Only the first failure is reported: once one thread fails, the others
 * (whose connections die as the cleanup kills nbdkit) wait for the exit. */
static void
first_failure_only (void)
{
  static int failing;

  if (__atomic_exchange_n (&failing, 1, __ATOMIC_SEQ_CST))
    for (;;)
      pause ();
}

void
test_fail (const char *fmt, ...)
{
  va_list ap;

  first_failure_only ();
  va_start (ap, fmt);
  vmessage ("test failed", fmt, ap);
  va_end (ap);
  exit (EXIT_FAILURE);
}

void
test_fail_nbd (const char *fmt, ...)
{
  char buf[3072];
  va_list ap;
  const char *msg = nbd_get_error ();
  int err = nbd_get_errno ();

  first_failure_only ();
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  fflush (stdout);
  fprintf (stderr, "%s: test failed: %s: %s (errno %d %s)\n", test_name, buf,
           msg ? msg : "(no libnbd message)", err, strerror (err));
  fflush (stderr);
  exit (EXIT_FAILURE);
}

void
test_skip (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vmessage ("skipped", fmt, ap);
  va_end (ap);
  exit (TEST_SKIP);
}

const char *
harness_init (int argc, char **argv)
{
  const char *plugin;
  static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT,
                              SIGSEGV, SIGBUS, SIGALRM, SIGFPE, SIGILL };
  struct sigaction sa;

  if (argc > 0 && argv[0] != NULL) {
    const char *slash = strrchr (argv[0], '/');
    test_name = slash ? slash + 1 : argv[0];
  }
  setvbuf (stdout, NULL, _IOLBF, 0);

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction (sigs[i], &sa, NULL);
  /* A dead server must not kill us with SIGPIPE; libnbd reports EPIPE. */
  signal (SIGPIPE, SIG_IGN);
  atexit (kill_all_servers);

  plugin = getenv ("GHOSTSWAP_PLUGIN");
  if (plugin == NULL || plugin[0] == '\0')
    test_skip ("GHOSTSWAP_PLUGIN is not set (run through meson test)");
  if (access (plugin, R_OK) != 0)
    test_skip ("plugin %s: %s", plugin, strerror (errno));
  return plugin;
}

static void
register_server (struct server *srv)
{
  for (int i = 0; i < MAX_SERVERS; i++) {
    if (servers[i] == srv)
      return;
  }
  for (int i = 0; i < MAX_SERVERS; i++) {
    if (servers[i] == NULL) {
      servers[i] = srv;
      return;
    }
  }
  test_fail ("harness: more than %d servers", MAX_SERVERS);
}

static void
unregister_server (struct server *srv)
{
  for (int i = 0; i < MAX_SERVERS; i++) {
    if (servers[i] == srv)
      servers[i] = NULL;
  }
}

static const char *plugin_path;

/* Run nbdkit in srv->dir ("-f --exit-with-parent -U sock -P pid", then
 * @plugin unless NULL, then @args) and wait until it listens.  The
 * wrapper applies only to the ghostswap plugin's nbdkit (@wrap). */
static int
spawn (struct server *srv, const char *plugin, const char *const *args,
       bool wrap)
{
  const char *nbdkit = getenv ("NBDKIT");
  const char *wrapper = getenv ("GHOSTSWAP_NBDKIT_WRAPPER");
  const char *argv[64];
  size_t n = 0;
  struct timespec ts = { 0, 10 * 1000 * 1000 };

  if (nbdkit == NULL || nbdkit[0] == '\0')
    nbdkit = "nbdkit";
  unlink (srv->sock);
  unlink (srv->pidfile);
  if (wrap && wrapper != NULL && wrapper[0] != '\0')
    argv[n++] = wrapper;
  argv[n++] = nbdkit;
  argv[n++] = "-f";
  argv[n++] = "--exit-with-parent";
  argv[n++] = "-U";
  argv[n++] = srv->sock;
  argv[n++] = "-P";
  argv[n++] = srv->pidfile;
  if (plugin != NULL)
    argv[n++] = plugin;
  for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
    if (n >= sizeof argv / sizeof argv[0] - 1)
      test_fail ("harness: too many arguments");
    argv[n++] = args[i];
  }
  argv[n] = NULL;

  fprintf (stderr, "%s: starting:", test_name);
  for (size_t i = 0; i < n; i++)
    fprintf (stderr, " %s", argv[i]);
  fprintf (stderr, "\n");
  fflush (stdout);
  fflush (stderr);

  srv->pid = fork ();
  if (srv->pid == -1)
    test_fail ("fork: %s", strerror (errno));
  if (srv->pid == 0) {
    signal (SIGPIPE, SIG_DFL);
    execvp (argv[0], (char **) argv);
    fprintf (stderr, "%s: exec %s: %s\n", test_name, argv[0], strerror (errno));
    _exit (127);
  }

  /* Wait until nbdkit has written its pid file: it does that once the
   * socket is bound and listening. */
  for (int tries = 0; tries < 60 * 100; tries++) {
    int status;
    pid_t r = waitpid (srv->pid, &status, WNOHANG);
    char buf[64];
    ssize_t len;
    int fd;

    if (r == srv->pid) {
      srv->exit_status = status;
      srv->pid = 0;
      remove_dir (srv);
      unregister_server (srv);
      srv->dir[0] = '\0';
      return -1;
    }
    if (r == -1)
      test_fail ("waitpid: %s", strerror (errno));
    fd = open (srv->pidfile, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      len = read (fd, buf, sizeof buf - 1);
      close (fd);
      if (len > 0 && buf[len - 1] == '\n') {
        struct stat st;
        buf[len] = '\0';
        if ((pid_t) strtol (buf, NULL, 10) != srv->pid)
          test_fail ("nbdkit pid file says %s, expected %d", buf,
                     (int) srv->pid);
        if (stat (srv->sock, &st) != 0 || !S_ISSOCK (st.st_mode))
          test_fail ("nbdkit wrote its pid file but %s is not a socket",
                     srv->sock);
        return 0;
      }
    }
    nanosleep (&ts, NULL);
  }
  test_fail ("nbdkit did not start listening within 60 s");
}

static void
make_dir (struct server *srv)
{
  const char *tmpdir = getenv ("TMPDIR");

  if (tmpdir == NULL || tmpdir[0] == '\0' || strlen (tmpdir) > 100)
    tmpdir = "/tmp";
  memset (srv, 0, sizeof *srv);
  snprintf (srv->dir, sizeof srv->dir, "%s/ghostswap-test-XXXXXX", tmpdir);
  if (mkdtemp (srv->dir) == NULL)
    test_fail ("mkdtemp %s: %s", srv->dir, strerror (errno));
  snprintf (srv->sock, sizeof srv->sock, "%s/sock", srv->dir);
  snprintf (srv->pidfile, sizeof srv->pidfile, "%s/pid", srv->dir);
  register_server (srv);
}

int
server_start (struct server *srv, const char *const *args)
{
  if (plugin_path == NULL)
    plugin_path = getenv ("GHOSTSWAP_PLUGIN");
  if (plugin_path == NULL)
    test_fail ("harness: server_start before harness_init");
  make_dir (srv);
  return spawn (srv, plugin_path, args, true);
}

int
server_start_cmd (struct server *srv, const char *const *cmd)
{
  make_dir (srv);
  return spawn (srv, NULL, cmd, false);
}

void
server_kill (struct server *srv)
{
  if (srv->pid > 0) {
    kill (srv->pid, SIGKILL);
    waitpid (srv->pid, &srv->exit_status, 0);
    srv->pid = 0;
  }
}

int
server_respawn (struct server *srv, const char *const *cmd)
{
  if (srv->dir[0] == '\0' || srv->pid > 0)
    test_fail ("harness: server_respawn of a server that runs or was "
               "stopped");
  return spawn (srv, NULL, cmd, false);
}

/* Stop @srv, giving it @ticks * 10 ms to exit on SIGTERM.  (nbdkit waits
 * for its clients to disconnect, which at exit after a failure they may
 * not have done.) */
static void
stop (struct server *srv, int ticks)
{
  if (srv->pid > 0) {
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    int status = 0;
    pid_t r = 0;

    kill (srv->pid, SIGTERM);
    for (int tries = 0; tries < ticks; tries++) {
      r = waitpid (srv->pid, &status, WNOHANG);
      if (r != 0)
        break;
      nanosleep (&ts, NULL);
    }
    if (r == 0) {
      kill (srv->pid, SIGKILL);
      waitpid (srv->pid, &status, 0);
    }
    srv->exit_status = status;
    srv->pid = 0;
  }
  remove_dir (srv);
  srv->dir[0] = '\0';
  unregister_server (srv);
}

void
server_stop_check (struct server *srv)
{
  int st;

  if (srv->pid <= 0)
    test_fail ("nbdkit is no longer running");
  server_stop (srv);
  st = srv->exit_status;
  /* Known: an uninstrumented nbdkit with an AddressSanitizer plugin and
   * libasan preloaded can hang at exit, in libp11-kit's destructor, on
   * glibc's locale lock left inconsistent by the sanitizer's interceptors
   * (after the plugin formatted an errno message).  The run itself is
   * still checked; only that exit-time hang, which we end with SIGKILL,
   * is let through in sanitizer builds. */
  if (WIFSIGNALED (st) && WTERMSIG (st) == SIGKILL
      && getenv ("GHOSTSWAP_SANITIZE") != NULL) {
    fprintf (stderr, "%s: note: nbdkit hung at exit under the sanitizer "
             "and was killed (see harness.c)\n", test_name);
    return;
  }
  if (WIFSIGNALED (st))
    test_fail ("nbdkit was killed by signal %d (%s) at shutdown",
               WTERMSIG (st), strsignal (WTERMSIG (st)));
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    test_fail ("nbdkit exited with status %d at shutdown", WEXITSTATUS (st));
}

void
server_stop (struct server *srv)
{
  stop (srv, 1000);
}

uint64_t
server_rss_kib (const struct server *srv)
{
  char path[64], line[256];
  FILE *fp;
  uint64_t kib = 0;
  bool found = false;

  snprintf (path, sizeof path, "/proc/%d/status", (int) srv->pid);
  fp = fopen (path, "r");
  if (fp == NULL)
    test_fail ("%s: %s", path, strerror (errno));
  while (fgets (line, sizeof line, fp) != NULL) {
    if (strncmp (line, "VmRSS:", 6) == 0) {
      kib = strtoull (line + 6, NULL, 10);
      found = true;
      break;
    }
  }
  fclose (fp);
  if (!found)
    test_fail ("%s has no VmRSS line", path);
  return kib;
}

struct nbd_handle *
server_connect (const struct server *srv)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL)
    test_fail_nbd ("nbd_create");
  if (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1)
    test_fail_nbd ("nbd_add_meta_context");
  if (nbd_connect_unix (h, srv->sock) == -1)
    test_fail_nbd ("nbd_connect_unix %s", srv->sock);
  return h;
}

uint64_t
test_seed (void)
{
  const char *s = getenv ("GHOSTSWAP_SEED");
  uint64_t seed;

  if (s != NULL && s[0] != '\0') {
    char *end;
    errno = 0;
    seed = strtoull (s, &end, 0);
    if (errno != 0 || *end != '\0')
      test_fail ("GHOSTSWAP_SEED=%s is not a number", s);
  }
  else {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    seed = ((uint64_t) ts.tv_sec * 1000003u) ^ (uint64_t) ts.tv_nsec
      ^ ((uint64_t) getpid () << 32);
  }
  printf ("%s: seed %" PRIu64 " (repeat with GHOSTSWAP_SEED=%" PRIu64 ")\n",
          test_name, seed, seed);
  return seed;
}

/* splitmix64 to expand the seed. */
static uint64_t
splitmix64 (uint64_t *x)
{
  uint64_t z = (*x += UINT64_C (0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

void
rng_seed (struct rng *r, uint64_t seed)
{
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64 (&seed);
}

static inline uint64_t
rotl (uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

uint64_t
rng_next (struct rng *r)
{
  uint64_t *s = r->s;
  uint64_t result = rotl (s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;

  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl (s[3], 45);
  return result;
}

uint64_t
rng_below (struct rng *r, uint64_t n)
{
  /* Modulo bias is irrelevant here. */
  return rng_next (r) % n;
}

static const uint64_t words[] = {
  UINT64_C (0xdeadbeefcafef00d),
  UINT64_C (0xffffffffffffffff),
  UINT64_C (0x0101010101010101),
  UINT64_C (0x00000000000000ff),
  UINT64_C (0xff00000000000000),
  UINT64_C (0x0000000100000000),
  UINT64_C (1),
  0, /* replaced by a random word */
};

static const char *const text_words[] = {
  "the ", "ghost ", "swap ", "page ", "slot ", "cluster ", "zstd ",
  "compressed ", "kernel ", "memory ", "0x7ffd1234 ", "\n", "\t", "= ",
  "struct ", "{ ", "} ", "NULL ", "42 ", "reverse map ",
};

void
fill_kind (struct rng *r, unsigned char *buf, size_t len, uint64_t devoff,
           int kind)
{
  switch (kind) {
  case 0:
    memset (buf, 0, len);
    break;
  case 1: {
    size_t nw = sizeof words / sizeof words[0];
    uint64_t w = words[rng_below (r, nw)];
    unsigned phase = 0;
    if (w == 0)
      w = rng_next (r);
    if (rng_below (r, 10) == 0)
      phase = (unsigned) rng_below (r, 8);
    for (size_t i = 0; i < len; i++) {
      unsigned b = (unsigned) ((devoff + i + phase) % 8);
      buf[i] = (unsigned char) (w >> (8 * b));
    }
    break;
  }
  case 2: {
    size_t nt = sizeof text_words / sizeof text_words[0];
    size_t i = 0;
    while (i < len) {
      const char *wd = text_words[rng_below (r, nt)];
      size_t wl = strlen (wd);
      if (wl > len - i)
        wl = len - i;
      memcpy (buf + i, wd, wl);
      i += wl;
    }
    break;
  }
  default:
    for (size_t i = 0; i < len; i += 8) {
      uint64_t v = rng_next (r);
      size_t k = len - i < 8 ? len - i : 8;
      memcpy (buf + i, &v, k);
    }
    break;
  }
}

void
fill_mixed (struct rng *r, unsigned char *buf, size_t len, uint64_t devoff)
{
  size_t i = 0;

  if (rng_below (r, 2) == 0) {
    fill_kind (r, buf, len, devoff, (int) rng_below (r, 4));
    return;
  }
  while (i < len) {
    size_t seg;
    switch (rng_below (r, 3)) {
    case 0: seg = 1 + rng_below (r, 64); break;
    case 1: seg = 1 + rng_below (r, 1024); break;
    default: seg = 1 + rng_below (r, 8192); break;
    }
    if (seg > len - i)
      seg = len - i;
    fill_kind (r, buf + i, seg, devoff + i, (int) rng_below (r, 4));
    i += seg;
  }
}

ssize_t
first_diff (const void *a, const void *b, size_t len)
{
  const unsigned char *p = a, *q = b;

  if (memcmp (a, b, len) == 0)
    return -1;
  for (size_t i = 0; i < len; i++) {
    if (p[i] != q[i])
      return (ssize_t) i;
  }
  return -1;
}

bool
is_zero (const void *p, size_t len)
{
  const unsigned char *c = p;

  if (len == 0)
    return true;
  return c[0] == 0 && memcmp (c, c + 1, len - 1) == 0;
}

#define CHUNK (16u * 1024 * 1024)

void
xpread (struct nbd_handle *h, void *buf, uint64_t count, uint64_t off)
{
  unsigned char *p = buf;

  while (count > 0) {
    uint64_t n = count < CHUNK ? count : CHUNK;
    if (nbd_pread (h, p, n, off, 0) == -1)
      test_fail_nbd ("pread count=%" PRIu64 " offset=%" PRIu64, n, off);
    p += n;
    off += n;
    count -= n;
  }
}

void
xpwrite (struct nbd_handle *h, const void *buf, uint64_t count, uint64_t off)
{
  const unsigned char *p = buf;

  while (count > 0) {
    uint64_t n = count < CHUNK ? count : CHUNK;
    if (nbd_pwrite (h, p, n, off, 0) == -1)
      test_fail_nbd ("pwrite count=%" PRIu64 " offset=%" PRIu64, n, off);
    p += n;
    off += n;
    count -= n;
  }
}
