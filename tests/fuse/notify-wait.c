/* notify-wait: stand in for systemd's notification socket in tests.
 *
 *   notify-wait SOCKET SECONDS
 *
 * Binds a datagram socket at SOCKET (give the same path to the service
 * as NOTIFY_SOCKET), prints every message received on its own lines and
 * exits 0 after the first one that holds READY=1, or 1 after SECONDS
 * without it.  The socket is removed on exit.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int
has_ready (const char *msg)
{
  const char *p = msg;

  while (p != NULL && *p != '\0') {
    if (strncmp (p, "READY=1", 7) == 0 && (p[7] == '\n' || p[7] == '\0'))
      return 1;
    p = strchr (p, '\n');
    if (p != NULL)
      p++;
  }
  return 0;
}

int
main (int argc, char **argv)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct pollfd pfd;
  char buf[4096];
  time_t deadline;
  int fd, ready = 0;

  if (argc != 3 || strlen (argv[1]) >= sizeof addr.sun_path) {
    fprintf (stderr, "usage: notify-wait SOCKET SECONDS\n");
    return 2;
  }
  strcpy (addr.sun_path, argv[1]);
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
    fprintf (stderr, "notify-wait: %s: %s\n", argv[1], strerror (errno));
    return 2;
  }
  deadline = time (NULL) + atoi (argv[2]);
  pfd.fd = fd;
  pfd.events = POLLIN;
  while (!ready && time (NULL) < deadline) {
    ssize_t n;

    if (poll (&pfd, 1, 200) <= 0)
      continue;
    n = recv (fd, buf, sizeof buf - 1, 0);
    if (n < 0)
      continue;
    buf[n] = '\0';
    printf ("%s\n", buf);
    fflush (stdout);
    ready = has_ready (buf);
  }
  close (fd);
  unlink (argv[1]);
  if (!ready)
    fprintf (stderr, "notify-wait: no READY=1 within %s s\n", argv[2]);
  return ready ? 0 : 1;
}
