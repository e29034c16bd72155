/* ghostswap unit test: the engine on a remote NBD backing, in process
 * (so that ThreadSanitizer sees the threads that drive libnbd).
 *
 * A second nbdkit (file plugin, a 64 MiB file) on a Unix socket in a
 * temporary directory is the remote; a device of 32 MiB with ram-limit
 * 1 MiB has it as its only backing (remote-timeout 60 s).  Three writer
 * threads, each on its own slots (slot % 3 == t), write pages of every
 * kind and read each back at once against the shadow, while the main
 * thread runs writeback and kills the remote (SIGKILL) and starts it
 * again on the same socket, three times.  No request may fail; the
 * reconnects figure must move.  Then, idle, the remote is killed once
 * more: the backing must show it gone without a request; it is started
 * again, and everything is written back, verified, drained into RAM and
 * verified again.
 *
 * With the argument "delay" the remote is behind nbdkit's delay filter
 * (1 ms per read and write), so that many threads wait on a connection
 * while another drives it.
 *
 * Environment: NBDKIT (default "nbdkit"); skip (77) without nbdkit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ghostswap/backing.h"
#include "ghostswap/device.h"
#include "test.h"

#define DEV_SIZE (32ull << 20)
#define NSLOTS (DEV_SIZE / PAGE)
#define NTHREADS 3

static char dir[256], sock[300], img[300], pidfile[300], uri[400];
static pid_t remote_pid;
static bool delayed;
static struct gs_device *dev;
static unsigned char *shadow;
static bool stop;

static void
msleep (unsigned ms)
{
  struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000 };
  nanosleep (&ts, NULL);
}

static void
remote_kill (void)
{
  if (remote_pid > 0) {
    kill (remote_pid, SIGKILL);
    waitpid (remote_pid, NULL, 0);
    remote_pid = 0;
  }
}

static void
cleanup (void)
{
  remote_kill ();
  unlink (sock);
  unlink (pidfile);
  unlink (img);
  rmdir (dir);
}

/* Start nbdkit on @sock; wait for its pid file. */
static void
remote_start (void)
{
  const char *nbdkit = getenv ("NBDKIT");
  char filearg[320];

  if (!nbdkit || !*nbdkit)
    nbdkit = "nbdkit";
  unlink (sock);
  unlink (pidfile);
  snprintf (filearg, sizeof filearg, "file=%s", img);
  remote_pid = fork ();
  CHECK (remote_pid >= 0);
  if (remote_pid == 0) {
    if (delayed)
      execlp (nbdkit, nbdkit, "-f", "--exit-with-parent", "-U", sock, "-P",
              pidfile, "--filter=delay", "file", filearg, "delay-read=1ms",
              "delay-write=1ms", (char *) NULL);
    else
      execlp (nbdkit, nbdkit, "-f", "--exit-with-parent", "-U", sock, "-P",
              pidfile, "file", filearg, (char *) NULL);
    _exit (127);
  }
  for (int tries = 0; tries < 3000; tries++) {
    struct stat st;
    int status;

    if (waitpid (remote_pid, &status, WNOHANG) == remote_pid) {
      remote_pid = 0;
      if (WIFEXITED (status) && WEXITSTATUS (status) == 127)
        SKIP ("cannot run %s", nbdkit);
      CHECKF (0, "the remote nbdkit exited (status 0x%x)", status);
    }
    if (stat (pidfile, &st) == 0 && st.st_size > 0)
      return;
    msleep (10);
  }
  CHECKF (0, "the remote nbdkit did not start in 30 s");
}

struct writer {
  pthread_t thread;
  unsigned t;
  uint64_t seed;
  uint64_t ops;                         /* atomic */
};

static void *
writer (void *arg)
{
  struct writer *w = arg;
  unsigned char page[PAGE], back[PAGE];

  while (!__atomic_load_n (&stop, __ATOMIC_ACQUIRE)) {
    uint64_t slot = rnd_below (&w->seed, NSLOTS / NTHREADS) * NTHREADS + w->t;
    int r;

    if (rnd_below (&w->seed, 3) != 0) {
      fill_kind (page, rnd_below (&w->seed, 2) ? KIND_RANDOM
                 : (enum page_kind) rnd_below (&w->seed, KIND_COUNT),
                 &w->seed);
      r = gs_pwrite (dev, page, PAGE, slot * PAGE);
      CHECKF (r == 0, "writer %u: gs_pwrite slot %" PRIu64 ": %d", w->t, slot,
              r);
      memcpy (shadow + slot * PAGE, page, PAGE);
    }
    r = gs_pread (dev, back, PAGE, slot * PAGE);
    CHECKF (r == 0, "writer %u: gs_pread slot %" PRIu64 ": %d", w->t, slot, r);
    CHECKF (memcmp (back, shadow + slot * PAGE, PAGE) == 0,
            "writer %u: slot %" PRIu64 " reads wrong", w->t, slot);
    __atomic_add_fetch (&w->ops, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static void
verify (const char *what)
{
  unsigned char *buf = malloc (64 * PAGE);

  CHECK (buf != NULL);
  for (uint64_t s = 0; s < NSLOTS; s += 64) {
    int r = gs_pread (dev, buf, 64 * PAGE, s * PAGE);
    CHECKF (r == 0, "%s: gs_pread at slot %" PRIu64 ": %d", what, s, r);
    CHECKF (memcmp (buf, shadow + s * PAGE, 64 * PAGE) == 0,
            "%s: slots %" PRIu64 "..+64 read wrong", what, s);
  }
  free (buf);
}

static struct gs_backing_info
info (void)
{
  struct gs_backing_info bi;

  CHECK (gs_backing_list (dev, &bi, 1) == 1);
  return bi;
}

int
main (int argc, char **argv)
{
  struct writer w[NTHREADS];
  struct gs_config cfg = test_config (DEV_SIZE, 1u << 20);
  struct gs_backing_info bi;
  struct gs_drain_status ds;
  uint64_t seed = test_seed ();
  char err[512];
  int fd, r;

  TEST_INIT (argc, argv);
  delayed = argc > 1 && strcmp (argv[1], "delay") == 0;
  snprintf (dir, sizeof dir, "/tmp/gs-remote-XXXXXX");
  CHECK (mkdtemp (dir) != NULL);
  snprintf (sock, sizeof sock, "%s/sock", dir);
  snprintf (pidfile, sizeof pidfile, "%s/pid", dir);
  snprintf (img, sizeof img, "%s/img", dir);
  snprintf (uri, sizeof uri, "nbd+unix:///?socket=%s", sock);
  atexit (cleanup);
  fd = open (img, O_RDWR | O_CREAT | O_EXCL, 0600);
  CHECK (fd >= 0 && ftruncate (fd, 64u << 20) == 0);
  close (fd);
  remote_start ();

  cfg.remote_timeout = 60;
  CHECK_OK (gs_device_create (&cfg, &dev));
  shadow = calloc (1, DEV_SIZE);
  CHECK (shadow != NULL);
  r = gs_backing_add (dev, uri, 0, err, sizeof err);
  CHECKF (r == 0, "gs_backing_add %s: %d: %s", uri, r, err);
  bi = info ();
  CHECK (bi.remote && strcmp (bi.remote_state, "connected") == 0);
  CHECK_OK (gs_device_start (dev));

  for (unsigned t = 0; t < NTHREADS; t++) {
    w[t].t = t;
    w[t].seed = seed + t;
    w[t].ops = 0;
    CHECK (pthread_create (&w[t].thread, NULL, writer, &w[t]) == 0);
  }
  for (int round = 0; round < 3; round++) {
    msleep (300);
    (void) gs_writeback (dev, 0);   /* -ENOSPC while the remote is away */
    remote_kill ();
    msleep (100 + 200 * (unsigned) round);
    remote_start ();
    msleep (300);
  }
  __atomic_store_n (&stop, true, __ATOMIC_RELEASE);
  for (unsigned t = 0; t < NTHREADS; t++) {
    pthread_join (w[t].thread, NULL);
    fprintf (stderr, "%s: writer %u: %" PRIu64 " operations\n", test_argv0,
             t, w[t].ops);
  }
  bi = info ();
  fprintf (stderr, "%s: remote %s, %" PRIu64 " pages, %" PRIu64 " reads, %"
           PRIu64 " writes, reconnects %" PRIu64 "\n", test_argv0,
           bi.remote_state, bi.used, bi.reads, bi.writes, bi.reconnects);
  CHECK (bi.reconnects > 0);
  CHECK (bi.healthy);
  /* Idle: the reconnect thread's probe sees the remote go, with no
   * request made, and a new connection once it is back. */
  remote_kill ();
  for (int tries = 0; info ().remote_connected; tries++) {
    CHECKF (tries < 3000, "still connected 30 s after the remote died");
    msleep (10);
  }
  remote_start ();
  (void) gs_writeback (dev, 0);
  verify ("after the kills");
  CHECK_OK (gs_set_ram_limit (dev, DEV_SIZE * 2));
  r = gs_drain_start (dev, uri, NULL, false, err, sizeof err);
  CHECKF (r == 0, "gs_drain_start: %d: %s", r, err);
  r = gs_drain_wait (dev);
  gs_drain_get_status (dev, &ds);
  CHECKF (r == 0, "drain: %d: %s", r, ds.message);
  verify ("after the drain");
  CHECK (info ().used == 0);
  CHECK_OK (gs_backing_remove (dev, uri, err, sizeof err));
  gs_device_destroy (dev);
  free (shadow);
  return 0;
}
