/* ghostswap control tests: the socket server (gs_control_start/stop).
 *
 * In a fresh temporary directory: the socket and its directory are
 * created with modes 0600 and 0700; a stale socket is replaced, a live one
 * or another file is not; answers arrive line by line, pipelined; an
 * oversized request is refused and its connection closed, garbage and NUL
 * bytes get an error; a silent client, a client that leaves mid-line and a
 * crowd of clients do not stop the server answering others; a peer of
 * another uid is refused (as root); gs_control_stop returns promptly with
 * clients still connected and removes the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ghostswap/service/control.h"
#include "ghostswap/device.h"
#include "jsonc_check.h"
#include "test.h"

static char dir[] = "/tmp/ghostswap-ctlsrv-XXXXXX";
static char sock[256];

static int
connect_to (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  CHECK (fd >= 0);
  snprintf (addr.sun_path, sizeof addr.sun_path, "%s", path);
  CHECKF (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0,
          "connect %s: %m", path);
  return fd;
}

static void
send_bytes (int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0) {
    ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
    CHECKF (n > 0, "send: %m");
    p += n;
    len -= (size_t) n;
  }
}

/* read_line - the next line (malloc'd, without newline) within
 * @timeout_ms, or NULL at end of file.  One byte at a time: a test has
 * no need for speed, and nothing past the line is consumed. */
static char *
read_line (int fd, int timeout_ms)
{
  size_t len = 0, cap = 256;
  char *buf = malloc (cap);

  CHECK (buf != NULL);
  for (;;) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    ssize_t n;
    char c;

    CHECKF (poll (&p, 1, timeout_ms) == 1, "no answer within %d ms",
            timeout_ms);
    n = recv (fd, &c, 1, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      CHECKF (len == 0, "connection closed in mid-line: %.*s", (int) len, buf);
      free (buf);
      return NULL;
    }
    CHECKF (n == 1, "recv: %m");
    if (c == '\n') {
      buf[len] = '\0';
      return buf;
    }
    if (len + 2 > cap) {
      cap *= 2;
      buf = realloc (buf, cap);
      CHECK (buf != NULL);
    }
    buf[len++] = c;
  }
}

/* answer - read one answer, which must be a JSON object with "ok". */
static struct json_object *
answer (int fd)
{
  char *line = read_line (fd, 10000);
  struct json_object *v;
  char err[128];

  CHECKF (line != NULL, "connection closed instead of an answer");
  v = jc_parse (line, strlen (line), err, sizeof err);
  CHECKF (v != NULL, "invalid JSON (%s): %s", err, line);
  CHECKF (jc_get (v, "ok") != NULL, "no \"ok\": %s", line);
  free (line);
  return v;
}

static struct json_object *
request (int fd, const char *line)
{
  send_bytes (fd, line, strlen (line));
  return answer (fd);
}

/* expect_closed - the server closes @fd (within 5 s). */
static void
expect_closed (int fd)
{
  CHECK (read_line (fd, 5000) == NULL);
}

static void
check_error (struct json_object *v, const char *want)
{
  const char *e = jc_str (v, "error");

  CHECKF (!jc_bool (v, "ok", true) && e && strstr (e, want),
          "expected an error with '%s', got '%s'", want, e ? e : "(none)");
  jc_free (v);
}

/* check_alive - a new client is served, promptly. */
static void
check_alive (const char *what)
{
  double t0 = now_seconds ();
  int fd = connect_to (sock);
  struct json_object *v = request (fd, "stats\n");

  CHECKF (jc_bool (v, "ok", false), "%s: stats failed", what);
  CHECKF (now_seconds () - t0 < 2, "%s: took %.1f s", what,
          now_seconds () - t0);
  jc_free (v);
  close (fd);
}

static void
test_modes (void)
{
  struct stat sb;
  char parent[300];

  CHECK (stat (sock, &sb) == 0);
  CHECK (S_ISSOCK (sb.st_mode));
  CHECKF ((sb.st_mode & 07777) == 0600, "socket mode %o", sb.st_mode & 07777);
  snprintf (parent, sizeof parent, "%s/run", dir);
  CHECK (stat (parent, &sb) == 0);
  CHECKF ((sb.st_mode & 07777) == 0700, "directory mode %o",
          sb.st_mode & 07777);
}

static void
test_start_errors (struct gs_device *dev)
{
  struct gs_control *ctl = NULL;
  char err[256], path[100], longpath[200];
  int fd;

  /* A live server's socket is left alone. */
  err[0] = '\0';
  CHECK (gs_control_start (dev, sock, NULL, &ctl, err, sizeof err) == -EADDRINUSE);
  CHECKF (strstr (err, sock) != NULL, "error: %s", err);
  check_alive ("after a refused second start");

  /* A file that is not a socket is not replaced. */
  snprintf (path, sizeof path, "%s/file.sock", dir);
  fd = open (path, O_CREAT | O_WRONLY, 0600);
  CHECK (fd >= 0);
  close (fd);
  CHECK (gs_control_start (dev, path, NULL, &ctl, err, sizeof err) == -EEXIST);
  CHECK (access (path, F_OK) == 0);
  CHECKF (strstr (err, "not a socket") != NULL, "error: %s", err);

  /* A stale socket (nobody listening) is replaced. */
  {
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    snprintf (path, sizeof path, "%s/stale.sock", dir);
    snprintf (addr.sun_path, sizeof addr.sun_path, "%s", path);
    fd = socket (AF_UNIX, SOCK_STREAM, 0);
    CHECK (bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0);
    close (fd);
    CHECK_OK (gs_control_start (dev, path, NULL, &ctl, err, sizeof err));
    fd = connect_to (path);
    jc_free (request (fd, "stats\n"));
    close (fd);
    gs_control_stop (ctl);
    CHECK (access (path, F_OK) < 0 && errno == ENOENT);
  }

  /* Too long for sun_path; empty. */
  memset (longpath, 'a', sizeof longpath - 1);
  longpath[0] = '/';
  longpath[sizeof longpath - 1] = '\0';
  CHECK (gs_control_start (dev, longpath, NULL, &ctl, err, sizeof err)
         == -ENAMETOOLONG);
  CHECK (gs_control_start (dev, "", NULL, &ctl, err, sizeof err) == -EINVAL);
}

static void
test_requests (void)
{
  struct json_object *v;
  struct json_object *st;
  int fd = connect_to (sock);

  v = request (fd, "stats\n");
  CHECK (jc_bool (v, "ok", false));
  st = jc_get (v, "stats");
  CHECK (st != NULL && jc_u64 (st, "size") == 64 << 20);
  CHECK (jc_get (st, "pool_bytes") && jc_get (st, "compression_ratio"));
  CHECK (jc_get (v, "backings") && jc_get (v, "drain"));
  jc_free (v);

  /* Pipelined requests, a CRLF line and an empty line. */
  {
    static const char pipelined[] = "metrics\nbogus\r\n\ndrain status\n";
    send_bytes (fd, pipelined, sizeof pipelined - 1);
  }
  v = answer (fd);
  CHECK (jc_bool (v, "ok", false));
  CHECK (strstr (jc_str (v, "text"), "# TYPE ghostswap_") != NULL);
  jc_free (v);
  check_error (answer (fd), "unknown command 'bogus'");
  check_error (answer (fd), "empty request");
  v = answer (fd);
  CHECK (jc_bool (v, "ok", false));
  jc_free (v);

  /* A request in pieces. */
  send_bytes (fd, "sta", 3);
  usleep (50000);
  send_bytes (fd, "ts\n", 3);
  v = answer (fd);
  CHECK (jc_bool (v, "ok", false));
  jc_free (v);

  /* NUL and binary bytes: an error, and the connection goes on. */
  send_bytes (fd, "stats\0evil\n", 11);
  check_error (answer (fd), "malformed request");
  send_bytes (fd, "\xff\xfe\x01\x02\n", 5);
  check_error (answer (fd), "malformed request");
  v = request (fd, "stats\n");
  CHECK (jc_bool (v, "ok", false));
  jc_free (v);
  close (fd);
}

static void
test_oversized (void)
{
  char *big = malloc (10 * 1024 + 1);
  int fd;

  CHECK (big != NULL);
  memset (big, 'x', 10 * 1024);
  big[10 * 1024] = '\n';

  /* 10 KiB with a newline at the end. */
  fd = connect_to (sock);
  send_bytes (fd, big, 10 * 1024 + 1);
  check_error (answer (fd), "request too long (max 4096 bytes)");
  expect_closed (fd);
  close (fd);

  /* Exactly the limit without a newline, then silence. */
  fd = connect_to (sock);
  send_bytes (fd, big, GS_CONTROL_MAX_REQUEST);
  check_error (answer (fd), "request too long");
  expect_closed (fd);
  close (fd);

  /* The longest line allowed is answered. */
  fd = connect_to (sock);
  big[GS_CONTROL_MAX_REQUEST - 1] = '\n';
  send_bytes (fd, big, GS_CONTROL_MAX_REQUEST);
  check_error (answer (fd), "unknown command");
  close (fd);

  free (big);
  check_alive ("after oversized requests");
}

/* Clients that stall, vanish mid-line or crowd in do not stop others. */
static void
test_bad_clients (void)
{
  int silent, partial, crowd[24], served = 0, refused = 0, i;

  silent = connect_to (sock);
  partial = connect_to (sock);
  send_bytes (partial, "stat", 4);
  check_alive ("with a silent and a partial client");

  i = connect_to (sock);
  send_bytes (i, "backing add /x", 14);
  close (i);                    /* leaves mid-line */
  check_alive ("after a client left mid-line");

  /* More clients than the server serves at once: the extra ones are told
   * so; the others are served. */
  for (i = 0; i < 24; i++)
    crowd[i] = connect_to (sock);
  for (i = 0; i < 24; i++) {
    /* A refused client may find the connection closed already. */
    (void) !send (crowd[i], "drain status\n", 13, MSG_NOSIGNAL);
    {
      char *line = read_line (crowd[i], 10000);
      CHECK (line != NULL);
      if (strstr (line, "too many clients (max ") != NULL)
        refused++;
      else {
        CHECKF (strstr (line, "\"ok\":true") != NULL, "%s", line);
        served++;
      }
      free (line);
    }
  }
  CHECKF (refused > 0 && served > 0, "served %d, refused %d", served, refused);
  for (i = 0; i < 24; i++)
    close (crowd[i]);
  close (partial);
  close (silent);
  /* Their threads end when they see the hang-ups. */
  usleep (200000);
  for (i = 0; i < 3; i++)
    check_alive ("after the crowd left");

  /* Garbage from many clients at once. */
  {
    uint64_t s = 42;
    unsigned char junk[1500];
    int k;

    for (i = 0; i < 10; i++)
      crowd[i] = connect_to (sock);
    for (k = 0; k < 20; k++)
      for (i = 0; i < 10; i++) {
        fill_random (junk, sizeof junk, &s);
        if (send (crowd[i], junk, sizeof junk, MSG_NOSIGNAL) < 0)
          break;
      }
    for (i = 0; i < 10; i++)
      close (crowd[i]);
    usleep (100000);
    check_alive ("after garbage");
  }
}

/* A peer of another uid is refused (needs root to be one). */
static void
test_other_uid (void)
{
  char parent[300];
  pid_t pid;
  int status;

  if (geteuid () != 0) {
    fprintf (stderr, "%s: note: not root: the refusal of another uid is "
             "not tested\n", test_argv0);
    return;
  }
  /* Let uid 65534 reach the socket at all (the test opens it up; the
   * server's own defence is SO_PEERCRED). */
  snprintf (parent, sizeof parent, "%s/run", dir);
  CHECK (chmod (dir, 0755) == 0 && chmod (parent, 0755) == 0);
  CHECK (chmod (sock, 0666) == 0);

  pid = fork ();
  CHECK (pid >= 0);
  if (pid == 0) {
    struct json_object *v;
    int fd;

    if (setgid (65534) < 0 || setuid (65534) < 0) {
      fprintf (stderr, "setuid: %m\n");
      _exit (2);
    }
    fd = connect_to (sock);
    send_bytes (fd, "stats\n", 6);
    v = answer (fd);
    check_error (v, "permission denied: uid 65534");
    expect_closed (fd);
    _exit (0);
  }
  CHECK (waitpid (pid, &status, 0) == pid);
  CHECKF (WIFEXITED (status) && WEXITSTATUS (status) == 0,
          "the uid 65534 client failed (status 0x%x)", status);
  CHECK (chmod (sock, 0600) == 0 && chmod (parent, 0700) == 0);
  check_alive ("after refusing a peer");
}

/* Stopping with clients connected (idle, mid-line) is prompt. */
static void
test_stop (struct gs_control *ctl)
{
  int idle = connect_to (sock), partial = connect_to (sock);
  double t0;
  struct json_object *v;

  v = request (idle, "stats\n");
  jc_free (v);
  send_bytes (partial, "sta", 3);
  usleep (50000);
  t0 = now_seconds ();
  gs_control_stop (ctl);
  CHECKF (now_seconds () - t0 < 2, "stop took %.1f s", now_seconds () - t0);
  CHECK (access (sock, F_OK) < 0 && errno == ENOENT);
  expect_closed (idle);
  expect_closed (partial);
  close (idle);
  close (partial);
}

int
main (int argc, char **argv)
{
  struct gs_config cfg;
  struct gs_device *dev;
  struct gs_control *ctl = NULL;
  char err[256], cmd[300];

  TEST_INIT (argc, argv);
  signal (SIGPIPE, SIG_IGN);
  CHECK (mkdtemp (dir) != NULL);
  /* A directory that does not exist yet: the server makes it. */
  snprintf (sock, sizeof sock, "%s/run/ctl.sock", dir);

  cfg = test_config (64 << 20, 16 << 20);
  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK_OK (gs_device_start (dev));
  err[0] = '\0';
  CHECKF (gs_control_start (dev, sock, NULL, &ctl, err, sizeof err) == 0, "%s", err);

  test_modes ();
  test_start_errors (dev);
  test_requests ();
  test_oversized ();
  test_bad_clients ();
  test_other_uid ();
  test_stop (ctl);

  /* It starts again on the same path. */
  CHECKF (gs_control_start (dev, sock, NULL, &ctl, err, sizeof err) == 0, "%s", err);
  check_alive ("restarted");
  gs_control_stop (ctl);

  gs_device_destroy (dev);
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK (system (cmd) == 0);
  printf ("%s: ok\n", test_argv0);
  return 0;
}
