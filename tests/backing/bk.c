/* ghostswap backing-tier tests: shared helpers (see bk.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bk.h"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

char bk_dir[128];
static char ctl_path[160];

#define MAX_FILES 32
static char files[MAX_FILES][160];
static volatile int nfiles;

/* ---- cleanup ---- */

/* Remove the files and the directory: async-signal-safe. */
static void
remove_all (void)
{
  if (bk_dir[0] == '\0')
    return;
  for (int i = 0; i < nfiles; i++)
    if (unlink (files[i]) != 0 && errno == EISDIR)
      rmdir (files[i]);
  unlink (ctl_path);
  rmdir (bk_dir);
}

static void
at_exit (void)
{
  remove_all ();
  bk_dir[0] = '\0';
}

static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT,
                            SIGSEGV, SIGBUS, SIGALRM, SIGFPE, SIGILL };
static struct sigaction old_sa[sizeof sigs / sizeof sigs[0]];

/* Remove our files, then run the harness's handler (which kills nbdkit,
 * removes its directory and re-raises the signal). */
static void
on_signal (int sig)
{
  remove_all ();
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    if (sigs[i] == sig) {
      if (old_sa[i].sa_handler != SIG_DFL && old_sa[i].sa_handler != SIG_IGN)
        old_sa[i].sa_handler (sig);
      break;
    }
  }
  signal (sig, SIG_DFL);
  raise (sig);
}

/* Why @dir cannot hold backing files, or NULL. */
static const char *
unsuitable (const char *dir)
{
  struct statfs sfs;

  if (statfs (dir, &sfs) != 0)
    return strerror (errno);
  switch ((unsigned long) sfs.f_type) {
  case TMPFS_MAGIC: return "tmpfs";
  case RAMFS_MAGIC: return "ramfs";
  case FUSE_SUPER_MAGIC: return "FUSE";
  case NFS_SUPER_MAGIC: return "NFS";
  default: return NULL;
  }
}

/* Make bk_dir under @base and check that O_DIRECT works there. */
static bool
try_dir (const char *base, char *why, size_t whylen)
{
  const char *bad = unsuitable (base);
  char probe[200];
  void *buf = NULL;
  int fd;
  bool ok;

  if (bad) {
    snprintf (why, whylen, "%s: %s", base, bad);
    return false;
  }
  if (strlen (base) > 80) {
    snprintf (why, whylen, "%s: path too long for a Unix socket", base);
    return false;
  }
  snprintf (bk_dir, sizeof bk_dir, "%s/gs-backing-XXXXXX", base);
  if (mkdtemp (bk_dir) == NULL) {
    snprintf (why, whylen, "mkdtemp in %s: %s", base, strerror (errno));
    bk_dir[0] = '\0';
    return false;
  }
  snprintf (probe, sizeof probe, "%s/probe", bk_dir);
  fd = open (probe, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ok = fd >= 0 && ftruncate (fd, 1 << 20) == 0;
  if (fd >= 0)
    close (fd);
  fd = ok ? open (probe, O_RDWR | O_DIRECT | O_CLOEXEC) : -1;
  ok = fd >= 0 && posix_memalign (&buf, SLOT, SLOT) == 0;
  if (ok) {
    memset (buf, 0x5a, SLOT);
    ok = pwrite (fd, buf, SLOT, 0) == SLOT;
  }
  if (!ok)
    snprintf (why, whylen, "%s: O_DIRECT I/O does not work: %s", base,
              strerror (errno));
  if (fd >= 0)
    close (fd);
  free (buf);
  unlink (probe);
  if (!ok) {
    rmdir (bk_dir);
    bk_dir[0] = '\0';
  }
  return ok;
}

const char *
bk_init (int argc, char **argv)
{
  const char *plugin = harness_init (argc, argv);
  const char *env = getenv ("GHOSTSWAP_BACKING_TMPDIR");
  char cwd[PATH_MAX], why[3][300];
  const char *cands[3];
  int n = 0;
  struct sigaction sa;

  if (env && env[0])
    cands[n++] = env;
  cands[n++] = "/var/tmp";
  if (getcwd (cwd, sizeof cwd))
    cands[n++] = cwd;

  /* Install our cleanup in front of the harness's before making files. */
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction (sigs[i], &sa, &old_sa[i]);
  atexit (at_exit);

  for (int i = 0; i < n; i++) {
    if (try_dir (cands[i], why[i], sizeof why[i])) {
      snprintf (ctl_path, sizeof ctl_path, "%s/ctl", bk_dir);
      printf ("%s: backing files in %s\n", test_name, bk_dir);
      return plugin;
    }
  }
  test_skip ("no directory for backing files (needs a local file system "
             "with O_DIRECT, not tmpfs): %s%s%s%s%s", why[0],
             n > 1 ? "; " : "", n > 1 ? why[1] : "",
             n > 2 ? "; " : "", n > 2 ? why[2] : "");
}

const char *
bk_path (const char *name)
{
  char p[160];

  snprintf (p, sizeof p, "%s/%s", bk_dir, name);
  for (int i = 0; i < nfiles; i++)
    if (strcmp (files[i], p) == 0)
      return files[i];
  if (nfiles == MAX_FILES)
    test_fail ("bk_path: too many files");
  strcpy (files[nfiles], p);
  __atomic_store_n (&nfiles, nfiles + 1, __ATOMIC_SEQ_CST);
  return files[nfiles - 1];
}

const char *
bk_ctl (void)
{
  return ctl_path;
}

void
msleep (unsigned ms)
{
  struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

  while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
}

/* ---- control socket ---- */

unsigned ctl_timeout_s = 300;

/* The server bk_start started last, to say so when it has died. */
static struct server *last_server;

/* " (nbdkit has died: ...)" if the last server is gone, else "". */
static const char *
server_fate (void)
{
  static char buf[160];
  int status;

  buf[0] = '\0';
  if (last_server && last_server->pid > 0
      && waitpid (last_server->pid, &status, WNOHANG) == last_server->pid) {
    last_server->pid = 0;
    last_server->exit_status = status;
    if (WIFSIGNALED (status))
      snprintf (buf, sizeof buf, " (nbdkit has died: killed by signal %d, %s)",
                WTERMSIG (status), strsignal (WTERMSIG (status)));
    else
      snprintf (buf, sizeof buf, " (nbdkit has exited with status %d)",
                WEXITSTATUS (status));
  }
  return buf;
}

static int
ctl_connect (void)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct timeval tv = { .tv_sec = ctl_timeout_s };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    test_fail ("socket: %s", strerror (errno));
  if (strlen (ctl_path) >= sizeof addr.sun_path)
    test_fail ("control socket path too long: %s", ctl_path);
  memcpy (addr.sun_path, ctl_path, strlen (ctl_path) + 1);
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
    int e = errno;
    close (fd);
    errno = e;
    return -1;
  }
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

/* Send @len bytes of @req (n lines) and read @n answer lines. */
static void
exchange (const char *req, size_t len, unsigned n, char **ans)
{
  size_t cap = 4096, have = 0;
  char *buf = malloc (cap);
  int fd;

  if (!buf)
    test_fail ("out of memory");
  fd = ctl_connect ();
  if (fd < 0)
    test_fail ("control socket %s: connect: %s (request: %.*s)%s", ctl_path,
               strerror (errno), (int) len, req, server_fate ());
  for (size_t off = 0; off < len; ) {
    ssize_t w = send (fd, req + off, len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      test_fail ("control socket: send: %s", strerror (errno));
    off += (size_t) w;
  }
  for (unsigned got = 0; got < n; ) {
    char *nl = memchr (buf, '\n', have);
    ssize_t r;

    if (nl) {
      size_t l = (size_t) (nl - buf);
      ans[got] = strndup (buf, l);
      if (!ans[got])
        test_fail ("out of memory");
      got++;
      have -= l + 1;
      memmove (buf, nl + 1, have);
      continue;
    }
    if (have + 1 >= cap) {
      cap *= 2;
      buf = realloc (buf, cap);
      if (!buf)
        test_fail ("out of memory");
    }
    r = recv (fd, buf + have, cap - have - 1, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      test_fail ("control socket: no answer within %u s to: %.*s (the "
                 "server is stuck)", ctl_timeout_s, (int) len - 1, req);
    if (r < 0)
      test_fail ("control socket: recv (request: %.*s): %s%s", (int) len - 1,
                 req, strerror (errno), server_fate ());
    if (r == 0) {
      msleep (200);
      test_fail ("control socket: closed without an answer (request: %.*s)%s",
                 (int) len - 1, req, server_fate ());
    }
    have += (size_t) r;
  }
  close (fd);
  free (buf);
}

static char * __attribute__ ((format (printf, 1, 0)))
vctl (const char *fmt, va_list ap)
{
  char req[4096];
  size_t n;
  char *ans;

  n = (size_t) vsnprintf (req, sizeof req - 1, fmt, ap);
  if (n >= sizeof req - 1)
    test_fail ("control request too long");
  req[n++] = '\n';
  exchange (req, n, 1, &ans);
  return ans;
}

void
ctl_multi (unsigned n, const char *const *lines, char **ans)
{
  char req[8192];
  size_t len = 0;

  for (unsigned i = 0; i < n; i++) {
    size_t l = strlen (lines[i]);
    if (len + l + 1 > sizeof req)
      test_fail ("control requests too long");
    memcpy (req + len, lines[i], l);
    len += l;
    req[len++] = '\n';
  }
  exchange (req, len, n, ans);
}

char *
ctl (const char *fmt, ...)
{
  va_list ap;
  char *a;

  va_start (ap, fmt);
  a = vctl (fmt, ap);
  va_end (ap);
  return a;
}

char *
ctl_ok (const char *fmt, ...)
{
  char req[1024];
  va_list ap;
  char *a;

  va_start (ap, fmt);
  vsnprintf (req, sizeof req, fmt, ap);
  va_end (ap);
  a = ctl ("%s", req);
  if (!ans_ok (a))
    test_fail ("control request '%s' failed: %s", req, a);
  return a;
}

bool
ans_ok (const char *ans)
{
  return strncmp (ans, "{\"ok\":true", 10) == 0;
}

const char *
json_at (const char *from, const char *key)
{
  char pat[128];
  const char *p;

  if (from == NULL)
    return NULL;
  snprintf (pat, sizeof pat, "\"%s\":", key);
  p = strstr (from, pat);
  return p ? p + strlen (pat) : NULL;
}

uint64_t
json_u64 (const char *from, const char *key)
{
  const char *v = json_at (from, key);
  char *end;
  uint64_t x;

  if (!v || *v < '0' || *v > '9')
    test_fail ("answer has no unsigned number \"%s\": %.300s", key,
               from ? from : "(null)");
  errno = 0;
  x = strtoull (v, &end, 10);
  if (errno || (*end != ',' && *end != '}' && *end != ']'))
    test_fail ("answer's \"%s\" is not an integer: %.40s", key, v);
  return x;
}

int64_t
json_i64 (const char *from, const char *key)
{
  const char *v = json_at (from, key);
  char *end;
  int64_t x;

  if (!v || (*v != '-' && (*v < '0' || *v > '9')))
    test_fail ("answer has no number \"%s\": %.300s", key,
               from ? from : "(null)");
  errno = 0;
  x = strtoll (v, &end, 10);
  if (errno || (*end != ',' && *end != '}' && *end != ']'))
    test_fail ("answer's \"%s\" is not an integer: %.40s", key, v);
  return x;
}

bool
json_bool (const char *from, const char *key)
{
  const char *v = json_at (from, key);

  if (v && strncmp (v, "true", 4) == 0)
    return true;
  if (v && strncmp (v, "false", 5) == 0)
    return false;
  test_fail ("answer has no boolean \"%s\": %.300s", key,
             from ? from : "(null)");
}

/* Decode the JSON string at @v (at its opening quote) into @buf;
 * return the character after the closing quote, or NULL. */
static const char *
decode_str (const char *v, char *buf, size_t len)
{
  size_t n = 0;

  if (*v != '"')
    return NULL;
  for (v++; *v && *v != '"'; v++) {
    char c = *v;
    if (c == '\\') {
      v++;
      switch (*v) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'u': {
        unsigned u = 0;
        for (int i = 1; i <= 4; i++) {
          char h = v[i];
          if (!h)
            return NULL;
          u = u * 16 + (unsigned) (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
        }
        v += 4;
        c = u < 0x80 ? (char) u : '?';
        break;
      }
      case '\0': return NULL;
      default: c = *v; break;
      }
    }
    if (n + 1 < len)
      buf[n++] = c;
  }
  if (len)
    buf[n] = '\0';
  return *v == '"' ? v + 1 : NULL;
}

void
json_str (const char *from, const char *key, char *buf, size_t len)
{
  const char *v = json_at (from, key);

  if (!v || !decode_str (v, buf, len))
    test_fail ("answer has no string \"%s\": %.300s", key,
               from ? from : "(null)");
}

const char *
json_backing (const char *ans, const char *path)
{
  const char *p = json_at (ans, "backings");

  while ((p = json_at (p, "path")) != NULL) {
    char got[PATH_MAX];
    if (decode_str (p, got, sizeof got) && strcmp (got, path) == 0)
      return p;
  }
  return NULL;
}

/* See bk_stats in bk.h. */
static void
check_io_path (const struct bk_stats *st)
{
  const char *off = getenv ("GHOSTSWAP_IO_URING");
  const char *blocked = getenv ("GHOSTSWAP_TEST_URING_BLOCKED");

  if (!(off && strcmp (off, "0") == 0) && !(blocked && *blocked))
    return;
  if (st->io_uring_rings != 0)
    test_fail ("%" PRIu64 " io_uring rings were set up although %s",
               st->io_uring_rings, blocked && *blocked
               ? "the kernel refuses io_uring" : "GHOSTSWAP_IO_URING=0");
  if (st->writeback_pages > 0 && st->io_uring_fallback_batches == 0)
    test_fail ("%" PRIu64 " pages written back, but no batch went through "
               "the pread/pwrite fallback", st->writeback_pages);
  if (blocked && strcmp (blocked, "ENOSYS") == 0 && st->writeback_pages > 0
      && (st->io_uring_failures == 0 || st->io_uring_last_error != ENOSYS))
    test_fail ("io_uring refused with ENOSYS, but the figures say %"
               PRIu64 " failures, last error %" PRIu64,
               st->io_uring_failures, st->io_uring_last_error);
}

void
bk_stats (struct bk_stats *st)
{
  char *a = ctl_ok ("stats");
  const char *s = json_at (a, "stats");

#define G(f) st->f = json_u64 (s, #f)
  G (ram_limit); G (slots_same); G (slots_ram); G (slots_ram_raw);
  G (slots_backing); G (pool_bytes); G (backings); G (backing_slots);
  G (backing_used); G (writeback_pages); G (writeback_batches);
  G (backing_read_errors); G (backing_write_errors); G (errors); G (enospc);
  G (io_uring_rings); G (io_uring_failures); G (io_uring_fallback_batches);
  G (io_uring_last_error);
#undef G
  free (a);
  check_io_path (st);
}

bool
bk_backing (const char *path, struct bk_backing *b)
{
  char *a = ctl_ok ("backing list");
  const char *o = json_backing (a, path);

  if (o) {
#define G(f) b->f = json_u64 (o, #f)
    G (size); G (slots); G (used); G (reads); G (writes);
    G (read_errors); G (write_errors);
#undef G
    b->healthy = json_bool (o, "healthy");
    b->draining = json_bool (o, "draining");
  }
  free (a);
  return o != NULL;
}

char *
bk_drain_finish (unsigned timeout_s, uint64_t *max_done_seen)
{
  struct timespec t0, t;

  clock_gettime (CLOCK_MONOTONIC, &t0);
  if (max_done_seen)
    *max_done_seen = 0;
  for (;;) {
    char *a = ctl_ok ("drain status");
    const char *d = json_at (a, "drain");

    if (!json_bool (d, "running"))
      return a;
    if (max_done_seen) {
      uint64_t done = json_u64 (d, "done");
      if (done > *max_done_seen)
        *max_done_seen = done;
    }
    free (a);
    clock_gettime (CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > (time_t) timeout_s)
      test_fail ("the drain did not finish within %u s", timeout_s);
    msleep (10);
  }
}

void
bk_start (struct server *srv, ...)
{
  const char *args[40];
  char ctlarg[200];
  size_t n = 0;
  va_list ap;
  const char *a;

  va_start (ap, srv);
  while ((a = va_arg (ap, const char *)) != NULL) {
    if (n >= sizeof args / sizeof args[0] - 2)
      test_fail ("bk_start: too many arguments");
    args[n++] = a;
  }
  va_end (ap);
  snprintf (ctlarg, sizeof ctlarg, "control=%s", ctl_path);
  args[n++] = ctlarg;
  args[n] = NULL;
  if (server_start (srv, args) < 0)
    test_fail ("nbdkit did not start (wait status 0x%x)", srv->exit_status);
  last_server = srv;
  for (int tries = 0; ; tries++) {
    int fd = ctl_connect ();
    if (fd >= 0) {
      close (fd);
      break;
    }
    if (tries == 1000)
      test_fail ("control socket %s: no server after 10 s: %s", ctl_path,
                 strerror (errno));
    msleep (10);
  }
}

/* ---- shadow ---- */

void
shadow_init (struct shadow *sh, uint64_t size)
{
  sh->size = size;
  sh->data = calloc (1, size);
  if (!sh->data)
    test_fail ("out of memory for a %" PRIu64 "-byte shadow", size);
}

void
sh_write (struct shadow *sh, struct nbd_handle *h, const void *buf,
          uint64_t len, uint64_t off)
{
  if (off + len > sh->size)
    test_fail ("sh_write beyond the device");
  xpwrite (h, buf, len, off);
  memcpy (sh->data + off, buf, len);
}

int
sh_try_write (struct shadow *sh, struct nbd_handle *h, const void *buf,
              uint32_t len, uint64_t off)
{
  if (nbd_pwrite (h, buf, len, off, 0) == -1) {
    int e = nbd_get_errno ();
    return e ? e : -1;
  }
  memcpy (sh->data + off, buf, len);
  return 0;
}

void
sh_trim (struct shadow *sh, struct nbd_handle *h, uint64_t len, uint64_t off,
         bool zero)
{
  uint64_t done = 0;

  while (done < len) {
    uint64_t n = len - done < 64 * MiB ? len - done : 64 * MiB;
    int r = zero ? nbd_zero (h, n, off + done, 0)
                 : nbd_trim (h, n, off + done, 0);
    if (r == -1)
      test_fail_nbd ("%s count=%" PRIu64 " offset=%" PRIu64,
                     zero ? "zero" : "trim", n, off + done);
    done += n;
  }
  memset (sh->data + off, 0, len);
}

void
sh_verify (const struct shadow *sh, struct nbd_handle *h, uint64_t off,
           uint64_t len, const char *what)
{
  const uint64_t chunk = 16 * MiB;
  unsigned char *buf = malloc (chunk);

  if (!buf)
    test_fail ("out of memory");
  while (len > 0) {
    uint64_t n = len < chunk ? len : chunk;
    ssize_t d;

    if (nbd_pread (h, buf, n, off, 0) == -1)
      test_fail_nbd ("%s: pread count=%" PRIu64 " offset=%" PRIu64, what, n,
                     off);
    d = first_diff (buf, sh->data + off, n);
    if (d >= 0) {
      uint64_t at = off + (uint64_t) d;
      test_fail ("%s: byte %" PRIu64 " (slot %" PRIu64 " +%" PRIu64
                 ") reads 0x%02x, expected 0x%02x", what, at, at / SLOT,
                 at % SLOT, buf[d], sh->data[at]);
    }
    off += n;
    len -= n;
  }
  free (buf);
}

void
sh_verify_all (const struct shadow *sh, struct nbd_handle *h,
               const char *what)
{
  sh_verify (sh, h, 0, sh->size, what);
}

void
gen_slot (struct rng *r, unsigned char *buf, uint64_t slot, int kind)
{
  if (kind < 0) {
    unsigned x = (unsigned) rng_below (r, 100);
    kind = x < 10 ? 0 : x < 20 ? 1 : x < 50 ? 2 : x < 90 ? 3 : 4;
  }
  if (kind == 4)
    fill_mixed (r, buf, SLOT, slot * SLOT);
  else
    fill_kind (r, buf, SLOT, slot * SLOT, kind);
}

bool
page_same_filled (const unsigned char *p)
{
  uint64_t w, x;

  memcpy (&w, p, 8);
  for (size_t i = 8; i < SLOT; i += 8) {
    memcpy (&x, p + i, 8);
    if (x != w)
      return false;
  }
  return true;
}

/* ---- backing files ---- */

uint64_t
file_blocks (const char *path)
{
  struct stat st;

  if (stat (path, &st) != 0)
    test_fail ("stat %s: %s", path, strerror (errno));
  return (uint64_t) st.st_blocks;
}

static uint64_t
page_hash (const unsigned char *p)
{
  uint64_t h = UINT64_C (0xcbf29ce484222325), w;

  for (size_t i = 0; i < SLOT; i += 8) {
    memcpy (&w, p + i, 8);
    h = (h ^ w) * UINT64_C (0x100000001b3);
    h ^= h >> 29;
  }
  return h | 1;         /* 0 marks a free hash cell */
}

uint64_t
scan_raw_pages (const struct shadow *sh, const char *path, uint64_t nslots,
                uint64_t *map)
{
  const size_t chunk = 4 * MiB;
  unsigned char *buf = NULL;
  uint64_t fslots, cells, *hk, *hv, found = 0;
  struct stat st;
  int fd = open (path, O_RDONLY | O_DIRECT | O_CLOEXEC);

  if (fd < 0 || fstat (fd, &st) != 0)
    test_fail ("open %s: %s", path, strerror (errno));
  if (posix_memalign ((void **) &buf, SLOT, chunk) != 0)
    test_fail ("out of memory");
  fslots = (uint64_t) st.st_size / SLOT;
  for (cells = 1024; cells < 2 * fslots; cells *= 2)
    ;
  hk = calloc (cells, sizeof *hk);
  hv = calloc (cells, sizeof *hv);
  if (!hk || !hv)
    test_fail ("out of memory");

  /* Hash every block that is not same-filled. */
  for (uint64_t b = 0; b < fslots; ) {
    size_t n = (fslots - b) * SLOT < chunk ? (size_t) (fslots - b) * SLOT : chunk;
    ssize_t r = pread (fd, buf, n, (off_t) (b * SLOT));
    if (r != (ssize_t) n)
      test_fail ("read %s at %" PRIu64 ": %s", path, b * SLOT,
                 r < 0 ? strerror (errno) : "short read");
    for (size_t k = 0; k < n / SLOT; k++, b++) {
      const unsigned char *p = buf + k * SLOT;
      uint64_t hsh, c;
      if (page_same_filled (p))
        continue;
      hsh = page_hash (p);
      for (c = hsh & (cells - 1); hk[c]; c = (c + 1) & (cells - 1))
        ;
      hk[c] = hsh;
      hv[c] = b;
    }
  }

  /* Look every slot's contents up, confirming with the block itself. */
  for (uint64_t s = 0; s < nslots; s++) {
    const unsigned char *p = sh->data + s * SLOT;
    uint64_t hsh, c;

    map[s] = 0;
    if (page_same_filled (p))
      continue;
    hsh = page_hash (p);
    for (c = hsh & (cells - 1); hk[c]; c = (c + 1) & (cells - 1)) {
      if (hk[c] != hsh)
        continue;
      if (pread (fd, buf, SLOT, (off_t) (hv[c] * SLOT)) != SLOT)
        test_fail ("read %s: %s", path, strerror (errno));
      if (memcmp (buf, p, SLOT) == 0) {
        map[s] = hv[c] + 1;
        found++;
        break;
      }
    }
  }
  close (fd);
  free (hk);
  free (hv);
  free (buf);
  return found;
}

int
sh_read_slot (const struct shadow *sh, struct nbd_handle *h, uint64_t slot,
              const char *what)
{
  unsigned char buf[SLOT];

  if (nbd_pread (h, buf, SLOT, slot * SLOT, 0) == -1) {
    int e = nbd_get_errno ();
    return e ? e : -1;
  }
  if (memcmp (buf, sh->data + slot * SLOT, SLOT) != 0)
    test_fail ("%s: slot %" PRIu64 " reads wrong data (first difference at +%"
               PRId64 ")", what, slot,
               (int64_t) first_diff (buf, sh->data + slot * SLOT, SLOT));
  return 0;
}

/* ---- refusals ---- */

bool
bk_expect_refusal (const char *what, const char *name, const char *const *args)
{
  struct server srv;
  char log[200], text[16384], *line, *save = NULL;
  int fd, saved, r, nerr = 0;
  ssize_t n;
  bool good = true;

  snprintf (log, sizeof log, "%s/stderr", bk_dir);
  bk_path ("stderr");
  fflush (stderr);
  fd = open (log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  saved = dup (2);
  if (fd < 0 || saved < 0 || dup2 (fd, 2) < 0)
    test_fail ("redirecting stderr: %s", strerror (errno));
  r = server_start (&srv, args);
  fflush (stderr);
  dup2 (saved, 2);
  close (saved);
  if (r == 0) {
    server_stop (&srv);
    close (fd);
    fprintf (stderr, "%s: FAIL: %s: nbdkit started\n", test_name, what);
    return false;
  }
  n = pread (fd, text, sizeof text - 1, 0);
  close (fd);
  text[n > 0 ? n : 0] = '\0';
  if (!WIFEXITED (srv.exit_status) || WEXITSTATUS (srv.exit_status) == 0) {
    fprintf (stderr, "%s: FAIL: %s: nbdkit ended with wait status 0x%x\n",
             test_name, what, srv.exit_status);
    good = false;
  }
  for (line = strtok_r (text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    if (strstr (line, ": starting: "))
      continue;                 /* the harness's own line */
    if (!strstr (line, "error"))
      continue;
    nerr++;
    printf ("%s: %s: %s\n", test_name, what, line);
    if (!strstr (line, "backing") || !strstr (line, name)) {
      fprintf (stderr, "%s: FAIL: %s: error line does not name 'backing' "
               "and '%s': %s\n", test_name, what, name, line);
      good = false;
    }
  }
  if (nerr != 1) {
    fprintf (stderr, "%s: FAIL: %s: %d error lines (expected 1)\n", test_name,
             what, nerr);
    good = false;
  }
  return good;
}

