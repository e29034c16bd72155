/* ghostswapd: the systemd readiness protocol (see sd_notify.h). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd_notify.h"

/* notify_systemd - see sd_notify.h. */
int
notify_systemd (const char *state)
{
  const char *path = getenv ("NOTIFY_SOCKET");
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  size_t len;
  socklen_t alen;
  ssize_t n;
  int fd, e;

  if (path == NULL || path[0] == '\0')
    return 0;
  len = strlen (path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path)
    return -EAFNOSUPPORT;       /* e.g. vsock: addresses, not used here */
  memcpy (addr.sun_path, path, len);
  if (path[0] == '@')
    addr.sun_path[0] = '\0';    /* abstract namespace: no terminating NUL */
  alen = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + len
                      + (path[0] == '/' ? 1 : 0));

  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  n = sendto (fd, state, strlen (state), MSG_NOSIGNAL,
              (struct sockaddr *) &addr, alen);
  e = errno;
  close (fd);
  if (n < 0)
    return -e;
  return 1;
}
