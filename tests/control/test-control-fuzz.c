/* ghostswap control tests: random requests.
 *
 * 1. Random lines (command words, arguments, sizes, paths in a temporary
 *    directory, and random bytes, in random numbers and orders) through
 *    gs_control_handle, on a device with backings and fault injection:
 *    every answer is one line of valid JSON with "ok", and afterwards
 *    (faults cleared, drains finished) every page written before reads
 *    back unchanged.
 * 2. Several threads throwing random sessions at the socket (good lines,
 *    garbage, NULs, overlong lines, hang-ups in mid-line) while the main
 *    thread checks that the server keeps answering.
 *
 * GS_TEST_SEED replays a run; GS_FUZZ_ITERS sets the number of lines in
 * part 1 (default 20000).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ghostswap/service/control.h"
#include "ghostswap/device.h"
#include "jsonc_check.h"
#include "test.h"

#define NPAGES 64

static const char *const vocabulary[] = {
  "stats", "metrics", "backing", "add", "remove", "drain", "list", "migrate",
  "status", "cancel", "wait", "ram-limit", "writeback", "fault", "help",
  "reset-peak",
  "b1", "b2", "b3", "b1", "b2", "sub/b4", "/nonexistent/x", "",
  "0", "1", "7", "100", "4096", "1M", "4M", "8M", "1E", "16E", "-1", "x",
  "1.5G", "18446744073709551615", "99999999999999999999999",
  "read", "write", "enospc", "off", "\xc3\xa9", "\"", "\\", "{", "}",
};
#define NVOCAB (sizeof vocabulary / sizeof vocabulary[0])

/* Whole commands, so that the engine sees valid ones often. */
static const char *const sentences[] = {
  "backing add b1 8M", "backing add b2 4M", "backing add b3 16M",
  "writeback 10", "writeback", "backing drain b1", "backing drain b2",
  "migrate b1 b3", "migrate b2 b1 8M", "drain status", "drain wait",
  "drain cancel", "backing remove b1", "backing remove b2", "stats",
  "fault b1 read 0 100", "fault b2 write 0 1000", "fault b3 enospc 5 9",
  "fault b1 off 0 0", "ram-limit 64M", "ram-limit 1M", "backing list",
  "metrics", "reset-peak", "reset-peak now",
};
#define NSENTENCES (sizeof sentences / sizeof sentences[0])

static char answer_buf[4 << 20];

static void
random_line (uint64_t *s, char *line, size_t size)
{
  size_t len = 0;
  unsigned k, nwords;

  line[0] = '\0';
  switch (rnd_below (s, 4)) {
  case 0:                       /* a whole command */
    snprintf (line, size, "%s", sentences[rnd_below (s, NSENTENCES)]);
    return;
  case 1: {                     /* random bytes */
    size_t n = (size_t) rnd_below (s, 64);
    for (k = 0; k < n; k++)
      line[k] = (char) (rnd_below (s, 255) + 1);
    line[n] = '\0';
    return;
  }
  default:                      /* words, separated by spaces or tabs */
    nwords = (unsigned) rnd_below (s, 7);
    for (k = 0; k < nwords && len + 40 < size; k++) {
      const char *w = vocabulary[rnd_below (s, NVOCAB)];
      if (k > 0)
        line[len++] = rnd_below (s, 5) ? ' ' : '\t';
      len += (size_t) snprintf (line + len, size - len, "%s", w);
    }
    if (rnd_below (s, 10) == 0 && len + 2 < size)
      line[len++] = (char) (rnd_below (s, 255) + 1);    /* a stray byte */
    line[len] = '\0';
  }
}

static void
check_answer (const char *line, size_t n)
{
  struct json_object *v;
  char err[128];

  CHECKF (n > 0 && answer_buf[n - 1] == '\n'
          && memchr (answer_buf, '\n', n - 1) == NULL,
          "'%s': not one line", line);
  v = jc_parse (answer_buf, n, err, sizeof err);
  CHECKF (v != NULL, "'%s': invalid JSON (%s): %s", line, err, answer_buf);
  CHECKF (jc_get (v, "ok") && jc_is (jc_get (v, "ok"), json_type_boolean),
          "'%s': no ok: %s", line, answer_buf);
  if (!jc_bool (v, "ok", true))
    CHECKF (jc_str (v, "error") && jc_str (v, "error")[0],
            "'%s': no error text: %s", line, answer_buf);
  jc_free (v);
}

static void
fuzz_handle (struct gs_device *dev, uint64_t *s, unsigned long iters)
{
  static unsigned char pages[NPAGES][PAGE];
  unsigned char back[PAGE];
  char line[512];
  unsigned long i;
  unsigned p;

  for (p = 0; p < NPAGES; p++) {
    fill_kind (pages[p], (enum page_kind) rnd_below (s, KIND_COUNT), s);
    CHECK_OK (gs_pwrite (dev, pages[p], PAGE, (uint64_t) p * 7 * PAGE));
  }

  for (i = 0; i < iters; i++) {
    random_line (s, line, sizeof line);
    check_answer (line, gs_control_handle (dev, NULL, line, answer_buf,
                                           sizeof answer_buf));
    /* Keep the data moving: rewrite a page now and then. */
    if (i % 100 == 0) {
      p = (unsigned) rnd_below (s, NPAGES);
      fill_kind (pages[p], (enum page_kind) rnd_below (s, KIND_COUNT), s);
      if (gs_pwrite (dev, pages[p], PAGE, (uint64_t) p * 7 * PAGE) < 0)
        memset (pages[p], 0xff, PAGE);          /* unknown now: skip it */
    }
  }

  /* Quiet down, then every page must read back as written. */
  gs_control_handle (dev, NULL, "drain wait", answer_buf, sizeof answer_buf);
  gs_control_handle (dev, NULL, "fault b1 off 0 0", answer_buf, sizeof answer_buf);
  gs_control_handle (dev, NULL, "fault b2 off 0 0", answer_buf, sizeof answer_buf);
  gs_control_handle (dev, NULL, "fault b3 off 0 0", answer_buf, sizeof answer_buf);
  gs_control_handle (dev, NULL, "fault sub/b4 off 0 0", answer_buf,
                     sizeof answer_buf);
  for (p = 0; p < NPAGES; p++) {
    unsigned char unknown[PAGE];

    memset (unknown, 0xff, PAGE);
    if (memcmp (pages[p], unknown, PAGE) == 0)
      continue;
    CHECK_OK (gs_pread (dev, back, PAGE, (uint64_t) p * 7 * PAGE));
    CHECKF (memcmp (back, pages[p], PAGE) == 0, "page %u differs", p);
  }
}

/* ---- The socket under attack ---- */

static char sock[100];
static bool stop_attack;           /* atomic: the attackers stop */

static int
try_connect (void)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  snprintf (addr.sun_path, sizeof addr.sun_path, "%s", sock);
  if (fd >= 0 && connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
    close (fd);
    fd = -1;
  }
  return fd;
}

/* drain_input - read what has arrived, without waiting long. */
static void
drain_input (int fd, int ms)
{
  char buf[8192];
  struct pollfd p = { .fd = fd, .events = POLLIN };

  while (poll (&p, 1, ms) == 1 && recv (fd, buf, sizeof buf, 0) > 0)
    ;
}

static void *
attacker (void *arg)
{
  uint64_t s = *(uint64_t *) arg;
  char buf[6000];

  while (!__atomic_load_n (&stop_attack, __ATOMIC_ACQUIRE)) {
    int fd = try_connect (), k, n = (int) rnd_below (&s, 8);

    if (fd < 0) {
      usleep (1000);
      continue;
    }
    for (k = 0; k < n; k++) {
      size_t len;

      switch (rnd_below (&s, 5)) {
      case 0:                   /* garbage, NULs included */
        len = (size_t) rnd_below (&s, sizeof buf);
        fill_random ((unsigned char *) buf, len, &s);
        break;
      case 1:                   /* overlong */
        len = 4096 + (size_t) rnd_below (&s, sizeof buf - 4096);
        memset (buf, 'a', len);
        buf[len - 1] = '\n';
        break;
      default:                  /* a line, maybe cut short */
        random_line (&s, buf, 512);
        len = strlen (buf);
        if (rnd_below (&s, 4) != 0)
          buf[len++] = '\n';
        break;
      }
      if (send (fd, buf, len, MSG_NOSIGNAL) < 0)
        break;
      if (rnd_below (&s, 2))
        drain_input (fd, (int) rnd_below (&s, 20));
    }
    close (fd);
  }
  return NULL;
}

static void
fuzz_socket (struct gs_device *dev, const char *dir, uint64_t *s)
{
  enum { NATTACKERS = 6 };
  pthread_t t[NATTACKERS];
  uint64_t seeds[NATTACKERS];
  struct gs_control *ctl;
  char err[256];
  double t0;
  int i, checks = 0;

  snprintf (sock, sizeof sock, "%s/ctl.sock", dir);
  CHECKF (gs_control_start (dev, sock, NULL, &ctl, err, sizeof err) == 0, "%s", err);
  __atomic_store_n (&stop_attack, false, __ATOMIC_RELEASE);
  for (i = 0; i < NATTACKERS; i++) {
    seeds[i] = rnd_next (s);
    CHECK (pthread_create (&t[i], NULL, attacker, &seeds[i]) == 0);
  }
  t0 = now_seconds ();
  while (now_seconds () - t0 < 4) {
    /* A well-behaved client gets its answer, though the server may be
     * full of attackers for a moment ("too many clients"). */
    int fd = try_connect ();
    char line[65536];
    size_t len = 0;
    ssize_t n;

    CHECKF (fd >= 0, "cannot connect under attack: %m");
    CHECK (send (fd, "drain status\n", 13, MSG_NOSIGNAL) == 13
           || errno == EPIPE || errno == ECONNRESET);
    for (;;) {
      struct pollfd p = { .fd = fd, .events = POLLIN };

      CHECKF (poll (&p, 1, 10000) == 1, "no answer under attack");
      n = recv (fd, line + len, sizeof line - len - 1, 0);
      if (n <= 0)
        break;
      len += (size_t) n;
      if (memchr (line, '\n', len))
        break;
    }
    line[len] = '\0';
    CHECKF (strstr (line, "\"ok\":true") || strstr (line, "too many clients"),
            "under attack: %s", line);
    checks++;
    close (fd);
    usleep (20000);
  }
  __atomic_store_n (&stop_attack, true, __ATOMIC_RELEASE);
  for (i = 0; i < NATTACKERS; i++)
    pthread_join (t[i], NULL);
  fprintf (stderr, "%s: %d checks under attack\n", test_argv0, checks);
  gs_control_stop (ctl);
}

int
main (int argc, char **argv)
{
  struct gs_config cfg;
  struct gs_device *dev;
  char dir[] = "/var/tmp/ghostswap-ctlfuzz-XXXXXX", cmd[64 + sizeof dir];
  const char *env = getenv ("GS_FUZZ_ITERS");
  unsigned long iters = env ? strtoul (env, NULL, 0) : 20000;
  uint64_t seed;

  TEST_INIT (argc, argv);
  signal (SIGPIPE, SIG_IGN);
  seed = test_seed ();
  CHECK (mkdtemp (dir) != NULL);
  /* Relative backing paths in the requests land in the temporary
   * directory. */
  CHECK (chdir (dir) == 0);
  CHECK (mkdir ("sub", 0700) == 0);

  cfg = test_config (256 << 20, 64 << 20);
  cfg.fault_injection = true;
  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK_OK (gs_device_start (dev));

  fuzz_handle (dev, &seed, iters);
  fuzz_socket (dev, dir, &seed);

  gs_control_handle (dev, NULL, "drain wait", answer_buf, sizeof answer_buf);
  gs_device_destroy (dev);
  CHECK (chdir ("/") == 0);
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK (system (cmd) == 0);
  printf ("%s: ok (%lu lines)\n", test_argv0, iters);
  return 0;
}
