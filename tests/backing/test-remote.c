/* ghostswap backing test: a remote NBD export as backing.
 *
 * A second nbdkit (the remote, started here on a Unix socket in its own
 * temporary directory) serves an export; the device (size=128M,
 * ram-limit=2M) has backing=nbd+unix:///?socket=... .  32 MiB of mixed
 * pages are written and pushed to the remote ("writeback"), and every
 * byte is checked against a shadow throughout.  Modes (argv[1]):
 *
 *  migrate [memory|file]  three clients write, read and trim while the
 *        remote is migrated to a local file b1, b1 back to the remote, the
 *        remote to a file b2 and b2 back (remote -> file -> remote twice),
 *        and the remote drained into RAM; the stats show the remote's figures
 *        (connected, requests, read latency), no error.
 *  delay  the remote behind --filter=delay (reads and writes 2 ms): as
 *        migrate; the median read latency reported is at least 1.5 ms.
 *  kill   (file plugin) the remote is killed with SIGKILL and started
 *        again on the same socket, three times, while the clients run
 *        and writeback goes on: nothing acknowledged is lost, no request
 *        fails, the reconnects counter moves, the backing stays healthy.
 *  down   (file plugin, remote-timeout=1) the remote is killed and left
 *        down: the state leaves "connected" without any request; reads of pages on it fail with EIO (never wrong data, never
 *        a hang), state "down"; writes go to RAM while it has room; with
 *        RAM full, writes fail with ENOSPC (bounded); restarted, every
 *        acknowledged byte reads back right.
 *  hung   reads take 3 s (delay filter), remote-timeout=1: a read of a
 *        remote page fails with EIO after the timeout, the hung
 *        connection is replaced (reconnects), nothing reads wrong.
 *  error-write  the remote behind --filter=error error-pwrite-rate=10%:
 *        a write the remote fails makes the backing unhealthy (a fault,
 *        as for files), its pages stay in RAM, and a drain empties it.
 *  error-read   error-pread-rate=20%: a read of a remote page may fail
 *        with EIO, never give wrong data.
 *  blocksize  the remote (nbdkit's blocksize-policy filter) refuses
 *        requests over 64K: as migrate, so every request must be cut to
 *        the advertised maximum.
 *  tls    the remote requires TLS with a PSK (nbdkit --tls=require
 *        --tls-psk=FILE), the backing is nbds+unix:// with tls-psk= and
 *        tls-username=: as migrate.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bk.h"

#define DEV_SIZE (128ull * MiB)
#define AREA_SLOTS 8192ull              /* 32 MiB used by the test */
#define NTHREADS 3
#define REMOTE_SIZE "256M"

static struct shadow sh;
static struct server srv;               /* the device */
static struct server rsrv;              /* the remote */
static const char *rcmd[12];
static char uri[400];
static bool stop;

/* ---- the remote ---- */

static void
remote_start (const char *const *cmd)
{
  size_t n = 0;

  while (cmd[n] && n < sizeof rcmd / sizeof rcmd[0] - 1) {
    rcmd[n] = cmd[n];
    n++;
  }
  rcmd[n] = NULL;
  if (server_start_cmd (&rsrv, rcmd) < 0)
    test_fail ("the remote nbdkit did not start (wait status 0x%x)",
               rsrv.exit_status);
  snprintf (uri, sizeof uri, "nbd+unix:///?socket=%s", rsrv.sock);
}

static void
remote_restart (void)
{
  if (server_respawn (&rsrv, rcmd) < 0)
    test_fail ("the remote nbdkit did not start again (wait status 0x%x)",
               rsrv.exit_status);
}

/* "file=DIR/remote" of REMOTE_SIZE, made here. */
static const char *
remote_file (void)
{
  static char arg[300];
  const char *p = bk_path ("remote");
  int fd = open (p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  if (fd < 0 || ftruncate (fd, 256 * MiB) < 0)
    test_fail ("%s: %s", p, strerror (errno));
  close (fd);
  snprintf (arg, sizeof arg, "file=%s", p);
  return arg;
}

/* ---- the remote's figures ---- */

struct rfig {
  bool remote, connected, healthy;
  char state[32];
  uint64_t used, reads, writes, read_errors, write_errors, reconnects;
  uint64_t inflight, read_count, p50, p99;
};

static bool
rfig (struct rfig *f)
{
  char *a = ctl_ok ("backing list");
  const char *b = json_backing (a, uri);

  if (!b) {
    free (a);
    return false;
  }
  f->remote = json_bool (b, "remote");
  f->connected = json_bool (b, "remote_connected");
  f->healthy = json_bool (b, "healthy");
  json_str (b, "remote_state", f->state, sizeof f->state);
  f->used = json_u64 (b, "used");
  f->reads = json_u64 (b, "reads");
  f->writes = json_u64 (b, "writes");
  f->read_errors = json_u64 (b, "read_errors");
  f->write_errors = json_u64 (b, "write_errors");
  f->reconnects = json_u64 (b, "reconnects");
  f->inflight = json_u64 (b, "inflight");
  f->read_count = json_u64 (b, "read_count");
  f->p50 = json_u64 (b, "read_usec_p50");
  f->p99 = json_u64 (b, "read_usec_p99");
  free (a);
  return true;
}

static void
print_fig (const char *when, const struct rfig *f)
{
  printf ("%s: %s: remote %s, %" PRIu64 " pages, %" PRIu64 " reads, %"
          PRIu64 " writes, errors %" PRIu64 "/%" PRIu64 ", reconnects %"
          PRIu64 ", in flight %" PRIu64 ", read p50 %" PRIu64 " us p99 %"
          PRIu64 " us, %s\n", test_name, when, f->state, f->used, f->reads,
          f->writes, f->read_errors, f->write_errors, f->reconnects,
          f->inflight, f->p50, f->p99, f->healthy ? "healthy" : "unhealthy");
}

/* ---- clients ---- */

struct worker {
  unsigned t;
  pthread_t thread;
  struct nbd_handle *h;
  struct rng r;
  uint64_t ops;                         /* atomic */
};

static struct worker workers[NTHREADS];

/* Each worker owns the slots s % 4 == t of the area. */
static void *
work (void *arg)
{
  struct worker *w = arg;
  unsigned char buf[SLOT];

  while (!__atomic_load_n (&stop, __ATOMIC_ACQUIRE)) {
    uint64_t s = rng_below (&w->r, AREA_SLOTS / 4) * 4 + w->t;
    uint64_t in = rng_below (&w->r, SLOT), len = 1 + rng_below (&w->r, SLOT - in);
    unsigned op = (unsigned) rng_below (&w->r, 100);

    if (op < 40) {
      gen_slot (&w->r, buf, s, -1);
      sh_write (&sh, w->h, buf, SLOT, s * SLOT);
    }
    else if (op < 50) {
      fill_mixed (&w->r, buf, len, s * SLOT + in);
      sh_write (&sh, w->h, buf, len, s * SLOT + in);
    }
    else if (op < 85)
      sh_verify (&sh, w->h, s * SLOT + (op < 80 ? 0 : in),
                 op < 80 ? SLOT : len, "reading while the remote is used");
    else
      sh_trim (&sh, w->h, op < 95 ? SLOT : len,
               s * SLOT + (op < 95 ? 0 : in), op % 2 == 0);
    __atomic_add_fetch (&w->ops, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static void
workers_start (uint64_t seed)
{
  __atomic_store_n (&stop, false, __ATOMIC_RELEASE);
  for (unsigned t = 0; t < NTHREADS; t++) {
    workers[t].t = t;
    workers[t].h = server_connect (&srv);
    rng_seed (&workers[t].r, seed + 1000 + t);
    if (pthread_create (&workers[t].thread, NULL, work, &workers[t]) != 0)
      test_fail ("pthread_create");
  }
}

static void
workers_stop (void)
{
  __atomic_store_n (&stop, true, __ATOMIC_RELEASE);
  for (unsigned t = 0; t < NTHREADS; t++) {
    pthread_join (workers[t].thread, NULL);
    nbd_shutdown (workers[t].h, 0);
    nbd_close (workers[t].h);
  }
}

/* Wait until every worker has done @more operations more. */
static void
let_run (uint64_t more)
{
  uint64_t start[NTHREADS];

  for (unsigned t = 0; t < NTHREADS; t++)
    start[t] = __atomic_load_n (&workers[t].ops, __ATOMIC_ACQUIRE);
  for (unsigned t = 0; t < NTHREADS; t++)
    for (int tries = 0;
         __atomic_load_n (&workers[t].ops, __ATOMIC_ACQUIRE) < start[t] + more;
         tries++) {
      if (tries > 120 * 100)
        test_fail ("worker %u made no progress in 120 s", t);
      msleep (10);
    }
}

/* ---- steps ---- */

/* Start the device (ram-limit @ram) on the remote and fill the area onto
 * it; @verify: check every byte then. */
static struct nbd_handle *
start_and_fill (struct rng *r, const char *extra, const char *ram,
                bool verify, const char *extra2, const char *extra3)
{
  char barg[500], rarg[64];
  struct nbd_handle *h;
  unsigned char *buf = malloc (16 * SLOT);
  struct rfig f;

  if (!buf)
    test_fail ("out of memory");
  snprintf (barg, sizeof barg, "backing=%s", uri);
  snprintf (rarg, sizeof rarg, "ram-limit=%s", ram);
  bk_start (&srv, "size=128M", rarg, barg, extra, extra2, extra3, NULL);
  h = server_connect (&srv);
  shadow_init (&sh, DEV_SIZE);
  for (uint64_t s = 0; s < AREA_SLOTS; s += 16) {
    for (int k = 0; k < 16; k++)
      gen_slot (r, buf + k * SLOT, s + (uint64_t) k, -1);
    sh_write (&sh, h, buf, 16 * SLOT, s * SLOT);
  }
  free (buf);
  free (ctl_ok ("writeback"));
  if (!rfig (&f))
    test_fail ("%s is not in the backing list", uri);
  print_fig ("filled", &f);
  if (!f.remote || strcmp (f.state, "connected") != 0 || !f.connected)
    test_fail ("the remote backing is not shown as a connected remote");
  if (verify)
    sh_verify_all (&sh, h, "after filling the remote");
  return h;
}

/* Wait for the running drain or migration; fail unless it succeeded. */
static void
drain_ok (const char *what)
{
  for (int i = 0; ; i++) {
    char *a = bk_drain_finish (300, NULL);
    const char *d = json_at (a, "drain");
    int64_t res = json_i64 (d, "result");
    char msg[600];

    json_str (d, "message", msg, sizeof msg);
    printf ("%s: %s: %" PRIu64 " of %" PRIu64 " pages moved, result %"
            PRId64 "\n", test_name, what, json_u64 (d, "done"),
            json_u64 (d, "total"), res);
    free (a);
    if (res == 0)
      return;
    if (res != -EAGAIN || i == 3)
      test_fail ("%s failed: %" PRId64 ": %s", what, res, msg);
  }
}

static void
no_errors (void)
{
  struct bk_stats st;

  bk_stats (&st);
  if (st.errors || st.backing_read_errors || st.backing_write_errors)
    test_fail ("errors counted: requests %" PRIu64 ", backing read %" PRIu64
               " write %" PRIu64, st.errors, st.backing_read_errors,
               st.backing_write_errors);
}

static int
migrate_mode (uint64_t seed, bool delayed, const char *tls1,
              const char *tls2)
{
  struct rng r;
  struct nbd_handle *h;
  struct rfig f;
  const char *b1 = bk_path ("b1"), *b2 = bk_path ("b2");

  rng_seed (&r, seed);
  h = start_and_fill (&r, "remote-timeout=30", "2M", true, tls1, tls2);
  workers_start (seed);
  let_run (100);

  free (ctl_ok ("migrate %s %s 128M", uri, b1));
  drain_ok ("migrate remote -> b1");
  if (rfig (&f))
    test_fail ("the remote is still attached after its migration");
  let_run (100);
  free (ctl_ok ("migrate %s %s", b1, uri));
  drain_ok ("migrate b1 -> remote");
  if (!rfig (&f) || f.used == 0 || !f.healthy)
    test_fail ("after migrating back the remote holds nothing or is "
               "unhealthy");
  print_fig ("migrated back", &f);
  let_run (100);
  free (ctl_ok ("migrate %s %s 128M", uri, b2));
  drain_ok ("migrate remote -> b2");
  let_run (100);
  free (ctl_ok ("migrate %s %s", b2, uri));
  drain_ok ("migrate b2 -> remote");
  let_run (100);
  free (ctl_ok ("ram-limit 512M"));
  free (ctl_ok ("backing drain %s", uri));
  drain_ok ("drain remote -> RAM");
  let_run (50);
  workers_stop ();
  sh_verify_all (&sh, h, "after migrations and a drain");
  if (!rfig (&f) || f.used != 0)
    test_fail ("the remote still holds pages after its drain");
  print_fig ("drained", &f);
  if (f.reads == 0 || f.writes == 0 || f.read_count == 0 || f.inflight != 0)
    test_fail ("remote figures: %" PRIu64 " reads, %" PRIu64 " writes, %"
               PRIu64 " timed reads, %" PRIu64 " in flight", f.reads,
               f.writes, f.read_count, f.inflight);
  if (delayed && f.p50 < 1500)
    test_fail ("read p50 %" PRIu64 " us behind a 2 ms delay", f.p50);
  no_errors ();
  free (ctl_ok ("backing remove %s", uri));
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  server_stop (&rsrv);
  return 0;
}

static int
kill_mode (uint64_t seed)
{
  struct rng r;
  struct nbd_handle *h;
  struct rfig f;

  rng_seed (&r, seed);
  h = start_and_fill (&r, "remote-timeout=60", "2M", true, NULL, NULL);
  workers_start (seed);
  let_run (100);
  for (int round = 0; round < 3; round++) {
    server_kill (&rsrv);
    printf ("%s: round %d: remote killed\n", test_name, round);
    msleep (200 + 300 * (unsigned) round);
    remote_restart ();
    let_run (100);
    free (ctl_ok ("writeback"));
    let_run (50);
  }
  workers_stop ();
  sh_verify_all (&sh, h, "after killing the remote three times");
  if (!rfig (&f))
    test_fail ("the remote is gone from the backing list");
  print_fig ("after the kills", &f);
  if (f.reconnects == 0 || !f.healthy || strcmp (f.state, "connected") != 0)
    test_fail ("after the kills: reconnects %" PRIu64 ", healthy %d, %s",
               f.reconnects, f.healthy, f.state);
  /* Every page comes back from the remote as it was. */
  free (ctl_ok ("ram-limit 512M"));
  free (ctl_ok ("backing drain %s", uri));
  drain_ok ("drain after the kills");
  sh_verify_all (&sh, h, "after draining the remote");
  {
    struct bk_stats st;
    bk_stats (&st);
    if (st.errors)
      test_fail ("%" PRIu64 " client requests failed", st.errors);
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  server_stop (&rsrv);
  return 0;
}

static int
down_mode (uint64_t seed)
{
  struct rng r;
  struct nbd_handle *h;
  struct rfig f;
  unsigned char buf[SLOT];
  unsigned eio = 0, good = 0, enospc = 0, tries;

  rng_seed (&r, seed);
  h = start_and_fill (&r, "remote-timeout=1", "2M", true, NULL, NULL);
  if (!rfig (&f) || f.used < AREA_SLOTS / 2)
    test_fail ("too few pages on the remote before it goes down");
  server_kill (&rsrv);
  printf ("%s: remote killed, left down\n", test_name);
  /* Idle connections are probed every second: the state changes without
   * a request. */
  for (tries = 0; rfig (&f) && f.connected; tries++) {
    if (tries == 3000)
      test_fail ("the remote still shows connected 30 s after it died, "
                 "with no request made");
    msleep (10);
  }
  printf ("%s: with no request, after %u ms: remote %s\n", test_name,
          tries * 10, f.state);
  /* Reads: EIO or the right bytes (pages still in RAM). */
  for (int i = 0; i < 12; i++) {
    uint64_t s = rng_below (&r, AREA_SLOTS);
    int e = sh_read_slot (&sh, h, s, "reading while the remote is down");
    if (e == 0)
      good++;
    else if (e == EIO)
      eio++;
    else
      test_fail ("reading slot %" PRIu64 " with the remote down: %s", s,
                 strerror (e));
  }
  printf ("%s: with the remote down: %u reads failed with EIO, %u read "
          "right\n", test_name, eio, good);
  if (eio == 0)
    test_fail ("no read of a remote page failed while it was down");
  if (!rfig (&f) || strcmp (f.state, "down") != 0 || f.connected)
    test_fail ("remote state '%s' (connected %d) while it is down", f.state,
               f.connected);
  if (!f.healthy)
    test_fail ("a remote that is down was marked unhealthy");
  /* Writes stay in RAM while it has room. */
  free (ctl_ok ("ram-limit 64M"));
  for (uint64_t s = AREA_SLOTS; s < AREA_SLOTS + 2048; s++) {
    gen_slot (&r, buf, s, -1);
    sh_write (&sh, h, buf, SLOT, s * SLOT);
  }
  /* RAM full too: ENOSPC after a bounded wait (remote-timeout), never a
   * hang. */
  free (ctl_ok ("ram-limit 2M"));
  for (uint64_t s = AREA_SLOTS + 2048; s < AREA_SLOTS + 6144 && enospc < 3;
       s++) {
    int e;
    gen_slot (&r, buf, s, 3);
    e = sh_try_write (&sh, h, buf, SLOT, s * SLOT);
    if (e == ENOSPC)
      enospc++;
    else if (e != 0)
      test_fail ("a write with RAM full and the remote down failed: %s",
                 strerror (e));
  }
  printf ("%s: with RAM full and the remote down: %u writes got ENOSPC\n",
          test_name, enospc);
  if (enospc == 0)
    test_fail ("no write got ENOSPC with RAM full and the remote down");

  remote_restart ();
  free (ctl_ok ("ram-limit 512M"));
  /* The reconnect thread backs off up to 2 s; reads wait 1 s. */
  for (tries = 0; ; tries++) {
    if (rfig (&f) && f.connected)
      break;
    if (tries == 3000)
      test_fail ("no reconnection within 30 s of the restart");
    msleep (10);
  }
  sh_verify_all (&sh, h, "after the remote came back");
  print_fig ("back", &f);
  if (f.reconnects == 0 || !f.healthy)
    test_fail ("after the restart: reconnects %" PRIu64 ", healthy %d",
               f.reconnects, f.healthy);
  free (ctl_ok ("backing drain %s", uri));
  drain_ok ("drain after the restart");
  sh_verify_all (&sh, h, "after draining");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  server_stop (&rsrv);
  return 0;
}

/* Reads take 3 s, remote-timeout is 1 s: a read of a remote page fails
 * with EIO after the timeout (the hung handle is closed and a new one
 * made), never a hang, never wrong data; writes still work. */
static int
hung_mode (uint64_t seed)
{
  struct rng r;
  struct nbd_handle *h;
  struct rfig f;
  unsigned eio = 0, good = 0;

  rng_seed (&r, seed);
  h = start_and_fill (&r, "remote-timeout=1", "2M", false, NULL, NULL);
  for (int i = 0; i < 6; i++) {
    uint64_t s = rng_below (&r, AREA_SLOTS);
    int e = sh_read_slot (&sh, h, s, "reading from a hung remote");
    if (e == EIO)
      eio++;
    else if (e == 0)
      good++;
    else
      test_fail ("slot %" PRIu64 ": %s", s, strerror (e));
  }
  if (!rfig (&f))
    test_fail ("the remote is not attached");
  print_fig ("hung reads", &f);
  printf ("%s: %u reads right, %u EIO\n", test_name, good, eio);
  if (eio == 0 || f.reconnects == 0 || !f.healthy)
    test_fail ("a hung remote: %u EIO, %" PRIu64 " reconnects, healthy %d",
               eio, f.reconnects, f.healthy);
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  server_stop (&rsrv);
  return 0;
}

static int
error_write_mode (uint64_t seed)
{
  struct rng r;
  struct nbd_handle *h;
  struct rfig f;
  struct bk_stats st;

  rng_seed (&r, seed);
  /* All of it fits in RAM: writeback moves what the remote takes. */
  h = start_and_fill (&r, "remote-timeout=30", "64M", true, NULL, NULL);
  free (ctl ("writeback %llu", (unsigned long long) AREA_SLOTS));
  if (!rfig (&f))
    test_fail ("the remote is not attached");
  print_fig ("with write errors", &f);
  if (f.write_errors == 0 || f.healthy)
    test_fail ("write errors %" PRIu64 ", healthy %d: a remote that fails "
               "writes must be unhealthy", f.write_errors, f.healthy);
  bk_stats (&st);
  if (st.errors)
    test_fail ("%" PRIu64 " client requests failed", st.errors);
  free (ctl_ok ("ram-limit 512M"));
  free (ctl_ok ("backing drain %s", uri));
  drain_ok ("drain of the failing remote");
  sh_verify_all (&sh, h, "after draining the failing remote");
  if (!rfig (&f) || f.used != 0)
    test_fail ("the failing remote still holds pages");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  server_stop (&rsrv);
  return 0;
}

static int
error_read_mode (uint64_t seed)
{
  struct rng r;
  struct nbd_handle *h;
  unsigned eio = 0, good = 0;

  rng_seed (&r, seed);
  h = start_and_fill (&r, "remote-timeout=30", "2M", false, NULL, NULL);
  for (uint64_t s = 0; s < AREA_SLOTS; s += 7) {
    int e = sh_read_slot (&sh, h, s, "reading from a failing remote");
    if (e == EIO)
      eio++;
    else if (e == 0)
      good++;
    else
      test_fail ("slot %" PRIu64 ": %s", s, strerror (e));
  }
  printf ("%s: %u reads right, %u EIO\n", test_name, good, eio);
  if (eio == 0)
    test_fail ("no read failed with error-pread-rate=20%%");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop_check (&srv);
  server_stop (&rsrv);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "migrate";
  const char *kind = argc > 2 ? argv[2] : "memory";
  uint64_t seed;

  bk_init (argc, argv);
  seed = test_seed ();
  if (strcmp (mode, "migrate") == 0) {
    if (strcmp (kind, "file") == 0)
      remote_start ((const char *[]) { "file", remote_file (), NULL });
    else
      remote_start ((const char *[]) { "memory", "size=" REMOTE_SIZE, NULL });
    return migrate_mode (seed, false, NULL, NULL);
  }
  if (strcmp (mode, "delay") == 0) {
    remote_start ((const char *[]) { "--filter=delay", "memory",
                                     "size=" REMOTE_SIZE, "delay-read=2ms",
                                     "delay-write=2ms", NULL });
    return migrate_mode (seed, true, NULL, NULL);
  }
  if (strcmp (mode, "hung") == 0) {
    remote_start ((const char *[]) { "--filter=delay", "memory",
                                     "size=" REMOTE_SIZE, "delay-read=3",
                                     NULL });
    return hung_mode (seed);
  }
  if (strcmp (mode, "blocksize") == 0) {
    /* Requests over 64K or not aligned to 4K are refused (EINVAL) by the
     * remote: the backing must cut its 256K writeback writes and 512K
     * drain reads to the advertised maximum. */
    remote_start ((const char *[]) { "--filter=blocksize-policy", "memory",
                                     "size=" REMOTE_SIZE,
                                     "blocksize-error-policy=error",
                                     "blocksize-minimum=4096",
                                     "blocksize-preferred=4096",
                                     "blocksize-maximum=65536", NULL });
    return migrate_mode (seed, false, NULL, NULL);
  }
  if (strcmp (mode, "tls") == 0) {
    /* A PSK file as psktool(1) writes it: "USER:HEXKEY". */
    static char psk_arg[320], ndk_arg[330];
    const char *psk = bk_path ("keys.psk");
    struct rng kr;
    FILE *fp = fopen (psk, "w");

    if (!fp)
      test_fail ("%s: %s", psk, strerror (errno));
    rng_seed (&kr, seed ^ 0x5eed);
    fprintf (fp, "ghostswap-test:");
    for (int i = 0; i < 4; i++)
      fprintf (fp, "%016" PRIx64, rng_next (&kr));
    fprintf (fp, "\n");
    if (fclose (fp) != 0)
      test_fail ("%s: %s", psk, strerror (errno));
    snprintf (ndk_arg, sizeof ndk_arg, "--tls-psk=%s", psk);
    snprintf (psk_arg, sizeof psk_arg, "tls-psk=%s", psk);
    remote_start ((const char *[]) { "--tls=require", ndk_arg, "memory",
                                     "size=" REMOTE_SIZE, NULL });
    snprintf (uri, sizeof uri, "nbds+unix:///?socket=%s", rsrv.sock);
    return migrate_mode (seed, false, psk_arg, "tls-username=ghostswap-test");
  }
  if (strcmp (mode, "kill") == 0 || strcmp (mode, "down") == 0) {
    remote_start ((const char *[]) { "file", remote_file (), NULL });
    return mode[0] == 'k' ? kill_mode (seed) : down_mode (seed);
  }
  if (strcmp (mode, "error-write") == 0) {
    remote_start ((const char *[]) { "--filter=error", "memory",
                                     "size=" REMOTE_SIZE, "error=EIO",
                                     "error-pwrite-rate=10%", NULL });
    return error_write_mode (seed);
  }
  if (strcmp (mode, "error-read") == 0) {
    remote_start ((const char *[]) { "--filter=error", "memory",
                                     "size=" REMOTE_SIZE, "error=EIO",
                                     "error-pread-rate=20%", NULL });
    return error_read_mode (seed);
  }
  test_fail ("unknown mode %s", mode);
}
