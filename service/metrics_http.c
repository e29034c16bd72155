/* ghostswap service: the metrics over HTTP (see metrics_http.h). */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "errmsg.h"
#include "metrics_http.h"

struct gs_metrics_http {
  struct MHD_Daemon *daemon;
  char address[INET6_ADDRSTRLEN + 16];  /* as bound: [V6]:PORT or V4:PORT */
  int fd;                       /* the listening socket (ours to close) */
  struct gs_metrics_source *src;
};

static enum MHD_Result
reply (struct MHD_Connection *c, unsigned status, const char *body)
{
  struct MHD_Response *r;
  enum MHD_Result ret;

  r = MHD_create_response_from_buffer (strlen (body), (void *) body,
                                       MHD_RESPMEM_PERSISTENT);
  if (r == NULL)
    return MHD_NO;
  MHD_add_response_header (r, "Content-Type", "text/plain; charset=utf-8");
  ret = MHD_queue_response (c, status, r);
  MHD_destroy_response (r);
  return ret;
}

/* handle - every request: GET or HEAD of /metrics; the rest refused. */
static enum MHD_Result
handle (void *cls, struct MHD_Connection *c, const char *url,
        const char *method, const char *version, const char *upload_data,
        size_t *upload_data_size, void **req_cls)
{
  struct gs_metrics_http *http = cls;
  struct MHD_Response *r;
  enum MHD_Result ret;
  char *text;
  size_t len;

  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0)
    return reply (c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n");
  if (*upload_data_size != 0)
    return MHD_NO;              /* a GET with a body */
  if (strcmp (url, "/metrics") != 0)
    return reply (c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
  if (gs_metrics_collect (http->src, &text, &len) < 0)
    return reply (c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
  r = MHD_create_response_from_buffer (len, text, MHD_RESPMEM_MUST_FREE);
  if (r == NULL) {
    free (text);
    return MHD_NO;
  }
  MHD_add_response_header (r, "Content-Type",
                           "text/plain; version=0.0.4; charset=utf-8");
  ret = MHD_queue_response (c, MHD_HTTP_OK, r);
  MHD_destroy_response (r);
  return ret;
}

/* listen_on - a listening TCP socket on @addr (HOST:PORT or [V6]:PORT). */
static int
listen_on (const char *addr, int *fdp, char *err, size_t errlen)
{
  struct addrinfo hints = {
    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
  };
  struct addrinfo *res = NULL;
  char host[256];
  const char *colon = strrchr (addr, ':');
  size_t hlen;
  int fd, r, e, one = 1;

  if (colon == NULL || colon == addr || colon[1] == '\0'
      || (size_t) (colon - addr) >= sizeof host)
    return gs_errmsg (err, errlen, -EINVAL,
                      "metrics-listen: '%s' is not ADDR:PORT", addr);
  hlen = (size_t) (colon - addr);
  memcpy (host, addr, hlen);
  host[hlen] = '\0';
  if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
    memmove (host, host + 1, hlen - 2);
    host[hlen - 2] = '\0';
  }
  r = getaddrinfo (host, colon + 1, &hints, &res);
  if (r != 0)
    return gs_errmsg (err, errlen, -EINVAL,
                      "metrics-listen: '%s': %s (a numeric address and "
                      "port, as 127.0.0.1:9101)", addr, gai_strerror (r));
  fd = socket (res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
               res->ai_protocol);
  if (fd < 0) {
    e = errno;
    freeaddrinfo (res);
    return gs_errmsg (err, errlen, -e, "metrics-listen %s: socket: %s", addr,
                      strerrordesc_np (e));
  }
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (fd, res->ai_addr, res->ai_addrlen) < 0
      || listen (fd, GS_METRICS_HTTP_MAX_CLIENTS) < 0) {
    e = errno;
    close (fd);
    freeaddrinfo (res);
    return gs_errmsg (err, errlen, -e, "metrics-listen %s: %s", addr,
                      strerrordesc_np (e));
  }
  freeaddrinfo (res);
  *fdp = fd;
  return 0;
}

/* bound_address - "HOST:PORT" of the listening @fd (the port the kernel
 * chose for port 0). */
static void
bound_address (int fd, char *buf, size_t len)
{
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char host[INET6_ADDRSTRLEN];

  buf[0] = '\0';
  if (getsockname (fd, (struct sockaddr *) &ss, &sl) < 0)
    return;
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
    inet_ntop (AF_INET6, &a->sin6_addr, host, sizeof host);
    snprintf (buf, len, "[%s]:%u", host, ntohs (a->sin6_port));
  }
  else if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *) &ss;
    inet_ntop (AF_INET, &a->sin_addr, host, sizeof host);
    snprintf (buf, len, "%s:%u", host, ntohs (a->sin_port));
  }
}

/* gs_metrics_http_start - see metrics_http.h. */
int
gs_metrics_http_start (const char *addr, struct gs_metrics_source *src,
                       struct gs_metrics_http **httpp,
                       char *err, size_t errlen)
{
  struct gs_metrics_http *http;
  sigset_t all, old;
  int r;

  http = calloc (1, sizeof *http);
  if (http == NULL)
    return gs_errmsg (err, errlen, -ENOMEM, "metrics-listen: out of memory");
  http->src = src;
  r = listen_on (addr, &http->fd, err, errlen);
  if (r < 0) {
    free (http);
    return r;
  }
  bound_address (http->fd, http->address, sizeof http->address);
  /* Its thread takes no signal: they are the front end's. */
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  http->daemon = MHD_start_daemon (
    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC,
    0, NULL, NULL, handle, http,
    MHD_OPTION_LISTEN_SOCKET, (MHD_socket) http->fd,
    MHD_OPTION_CONNECTION_LIMIT, (unsigned) GS_METRICS_HTTP_MAX_CLIENTS,
    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) GS_METRICS_HTTP_CONN_MEMORY,
    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) GS_METRICS_HTTP_TIMEOUT,
    MHD_OPTION_END);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (http->daemon == NULL) {
    close (http->fd);
    free (http);
    return gs_errmsg (err, errlen, -ENOMEM,
                      "metrics-listen %s: cannot start the HTTP server", addr);
  }
  *httpp = http;
  return 0;
}

/* gs_metrics_http_address - see metrics_http.h. */
const char *
gs_metrics_http_address (const struct gs_metrics_http *http)
{
  return http->address;
}

/* gs_metrics_http_stop - see metrics_http.h. */
void
gs_metrics_http_stop (struct gs_metrics_http *http)
{
  if (http == NULL)
    return;
  /* Quiesced first, the listening socket stays ours to close (else MHD
   * would close it, and we would close it a second time). */
  MHD_quiesce_daemon (http->daemon);
  MHD_stop_daemon (http->daemon);
  close (http->fd);
  free (http);
}
