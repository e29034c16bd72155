/* ghostswapctl: connections and socket discovery (see ctl_conn.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ghostswap/control.h"

#include "ctl_conn.h"

/* ctl_rundir - see ctl_conn.h. */
const char *
ctl_rundir (void)
{
  const char *env = getenv ("GHOSTSWAP_RUNDIR");

  return env && env[0] ? env : GS_CONTROL_DEFAULT_DIR;
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* ctl_list_sockets - see ctl_conn.h. */
int
ctl_list_sockets (char ***pathsp)
{
  const char *dir = ctl_rundir ();
  DIR *d = opendir (dir);
  char **paths = NULL, **p;
  struct dirent *e;
  size_t n = 0, len;
  int err;

  *pathsp = NULL;
  if (d == NULL)
    return errno == ENOENT ? 0 : -errno;
  while ((e = readdir (d)) != NULL) {
    len = strlen (e->d_name);
    if (len <= 5 || strcmp (e->d_name + len - 5, ".sock") != 0
        || (e->d_type != DT_SOCK && e->d_type != DT_UNKNOWN))
      continue;
    p = realloc (paths, (n + 1) * sizeof *paths);
    if (p == NULL)
      goto nomem;
    paths = p;
    if (asprintf (&paths[n], "%s/%s", dir, e->d_name) < 0)
      goto nomem;
    n++;
  }
  closedir (d);
  if (n > 0)
    qsort (paths, n, sizeof *paths, cmp_str);
  *pathsp = paths;
  return (int) n;

 nomem:
  err = -ENOMEM;
  closedir (d);
  while (n > 0)
    free (paths[--n]);
  free (paths);
  return err;
}

/* ctl_socket_name - see ctl_conn.h. */
const char *
ctl_socket_name (const char *path, char *buf, size_t len)
{
  const char *base = strrchr (path, '/');
  size_t n;

  base = base ? base + 1 : path;
  n = strlen (base);
  if (n > 5 && strcmp (base + n - 5, ".sock") == 0)
    n -= 5;
  snprintf (buf, len, "%.*s", (int) n, base);
  return buf;
}

/* ctl_conn_open - see ctl_conn.h. */
int
ctl_conn_open (struct ctl_conn *c, const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct ucred cred;
  socklen_t clen = sizeof cred;
  int err;

  memset (c, 0, sizeof *c);
  c->path = path;
  c->fd = -1;
  if (strlen (path) >= sizeof addr.sun_path)
    return -ENAMETOOLONG;
  memcpy (addr.sun_path, path, strlen (path) + 1);
  c->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    return -errno;
  if (connect (c->fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
    err = -errno;
    ctl_conn_close (c);
    return err;
  }
  if (getsockopt (c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
    c->peer = cred.pid;
  return 0;
}

/* ctl_conn_close - see ctl_conn.h. */
void
ctl_conn_close (struct ctl_conn *c)
{
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
  free (c->buf);
  c->buf = NULL;
  c->len = c->cap = 0;
}

/* conn_line - the next line from the server, without its newline
 * (malloc'd), or NULL with a message. */
static char *
conn_line (struct ctl_conn *c, const volatile int *stop,
           char *err, size_t errlen)
{
  for (;;) {
    char *nl = c->buf ? memchr (c->buf, '\n', c->len) : NULL;
    ssize_t n;

    if (nl != NULL) {
      size_t len = (size_t) (nl - c->buf);
      char *line = strndup (c->buf, len);

      if (line == NULL) {
        snprintf (err, errlen, "out of memory");
        return NULL;
      }
      c->len -= len + 1;
      memmove (c->buf, nl + 1, c->len);
      return line;
    }
    if (c->cap - c->len < 4096) {
      size_t cap = c->cap ? c->cap * 2 : 65536;
      char *p = realloc (c->buf, cap);

      if (p == NULL) {
        snprintf (err, errlen, "out of memory");
        return NULL;
      }
      c->buf = p;
      c->cap = cap;
    }
    n = read (c->fd, c->buf + c->len, c->cap - c->len);
    if (n < 0 && errno == EINTR) {
      if (stop && *stop) {
        snprintf (err, errlen, "interrupted");
        return NULL;
      }
      continue;
    }
    if (n < 0) {
      snprintf (err, errlen, "%s: %s", c->path, strerror (errno));
      return NULL;
    }
    if (n == 0) {
      snprintf (err, errlen, "%s: the server closed the connection "
                "without answering", c->path);
      return NULL;
    }
    c->len += (size_t) n;
  }
}

/* ctl_conn_request - see ctl_conn.h. */
json_object *
ctl_conn_request (struct ctl_conn *c, const char *line, char **rawp,
                  const volatile int *stop, char *err, size_t errlen)
{
  size_t len = strlen (line);
  const char *jerr = NULL;
  json_object *v;
  char *raw;

  while (len > 0) {
    ssize_t n = send (c->fd, line, len, MSG_NOSIGNAL);

    if (n < 0 && errno == EINTR && !(stop && *stop))
      continue;
    if (n <= 0) {
      snprintf (err, errlen, "%s: %s", c->path,
                n < 0 ? strerror (errno) : "cannot send");
      return NULL;
    }
    line += n;
    len -= (size_t) n;
  }
  raw = conn_line (c, stop, err, errlen);
  if (raw == NULL)
    return NULL;
  v = ctl_json_parse (raw, &jerr);
  if (v == NULL || ctl_json_get (v, "ok") == NULL) {
    snprintf (err, errlen, "%s: not an answer (%s): %.200s", c->path,
              v == NULL ? jerr : "no \"ok\"", raw);
    json_object_put (v);
    free (raw);
    return NULL;
  }
  if (rawp)
    *rawp = raw;
  else
    free (raw);
  return v;
}
